//! `pack snapshot` as cocoon's export reads a snapshot directory: regular
//! files only (every other entry skipped, with a warning, never followed),
//! and, without `snapshot.json`, what Cloud Hypervisor's `config.json`
//! states (docs/interop.md).

use std::path::Path;

use crate::util::{Store, bytes};
use serde_json::Value;

const CH: &[u8] = br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824},
  "net":[{"tap":"tap0","mac":"02:00:00:00:00:01"},{"tap":"tap1","mac":"02:00:00:00:00:02"}],
  "disks":[{"path":"/var/lib/cocoon/run/vm1/cow.raw"}]}"#;

fn snapshot_dir(s: &Store) -> std::path::PathBuf {
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("config.json"), CH).unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes(100_000, 1)).unwrap();
    dir
}

/// The envelope our `export-tar` writes for `r`.
fn envelope(s: &Store, r: &str) -> Value {
    let out = s.cmd(&["export-tar", r]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut a = tar::Archive::new(&out.stdout[..]);
    let first = a.entries().unwrap().next().unwrap().unwrap();
    serde_json::from_reader(first).unwrap()
}

fn stored_names(s: &Store, r: &str) -> Vec<String> {
    s.json(&["inspect", r])["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn entries_that_are_not_regular_files_are_skipped_as_cocoons_export_skips_them() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    let outside = s.file("secret", b"never read");
    std::os::unix::fs::symlink(&outside, dir.join("disk.raw")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", dir.join("dangling")).unwrap();
    std::fs::create_dir(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/ch.log"), b"x").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(dir.join("api.sock")).unwrap();
    let d = dir.to_str().unwrap();

    let out = s.run(&["--json", "pack", "snapshot", d, "--ref", "vm:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for (name, kind) in [
        ("disk.raw", "symlink"),
        ("dangling", "symlink"),
        ("logs", "directory"),
        ("api.sock", "socket"),
    ] {
        assert!(
            err.contains(&format!("skipped \"{name}\": a {kind}")),
            "{name}: {err}"
        );
    }
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert!(warnings.len() >= 4, "{report}");
    assert_eq!(stored_names(&s, "vm:1"), ["config.json", "memory-ranges"]);
    let out = s.path("out");
    s.ok(&["unpack", "vm:1", out.to_str().unwrap()]);
    assert!(
        !out.join("disk.raw").exists(),
        "the link's target was not stored"
    );

    // Nothing regular at all: said, and nothing written.
    let empty = s.path("empty");
    std::fs::create_dir(&empty).unwrap();
    std::os::unix::fs::symlink(&outside, empty.join("memory-ranges")).unwrap();
    let err = s.fails(
        2,
        &["pack", "snapshot", empty.to_str().unwrap(), "--ref", "vm:2"],
    );
    assert!(
        err.contains("no regular files") && err.contains("memory-ranges"),
        "{err}"
    );
}

#[test]
fn without_snapshot_json_nics_come_from_cloud_hypervisors_net_devices() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    let d = dir.to_str().unwrap();
    let out = s.run(&["pack", "snapshot", d, "--ref", "vm:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("no snapshot.json") && err.contains("base image"),
        "{err}"
    );
    let env = envelope(&s, "vm:1");
    assert_eq!(env["config"]["nics"], 2, "{env}");
    assert_eq!(env["config"]["cpu"], 2, "{env}");
    assert_eq!(env["config"]["memory"], 1073741824_u64, "{env}");

    // With cocoon's envelope, its fields are the truth and nothing is unknown.
    std::fs::write(
        dir.join("snapshot.json"),
        br#"{"version":1,"config":{"id":"S1","name":"vm","image":"ghcr.io/x/y:1","cpu":4,"memory":2147483648,"nics":3,"network":"default"}}"#,
    )
    .unwrap();
    let out = s.run(&["pack", "snapshot", d, "--ref", "vm:2"]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "no warning"
    );
    let env = envelope(&s, "vm:2");
    assert_eq!(env["config"]["nics"], 3, "{env}");
    assert_eq!(env["config"]["id"], "S1", "{env}");
}

fn packs_with(s: &Store, dir: &Path, config: &[u8], r: &str) -> std::process::Output {
    std::fs::write(dir.join("config.json"), config).unwrap();
    s.run(&["pack", "snapshot", dir.to_str().unwrap(), "--ref", r])
}

#[test]
fn a_net_that_is_not_a_list_of_devices_is_refused_and_none_is_no_nics() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    let bad = packs_with(
        &s,
        &dir,
        br#"{"cpus":{"boot_vcpus":1},"memory":{"size":1024},"net":{"tap":"tap0"}}"#,
        "vm:bad",
    );
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("its net is") && err.contains("--no-ch-config"),
        "{err}"
    );
    let none = packs_with(
        &s,
        &dir,
        br#"{"cpus":{"boot_vcpus":1},"memory":{"size":1024}}"#,
        "vm:none",
    );
    assert!(none.status.success());
    assert_eq!(
        envelope(&s, "vm:none")["config"].get("nics"),
        None,
        "no NICs: omitted, as Go omits 0"
    );
}

/// `import-tar` passes over a symlink, a directory and a FIFO in the
/// stream, as cocoon's import and cocoon-common's push do, saying each.
#[test]
fn import_tar_passes_over_members_that_are_not_regular_files() {
    let s = Store::new();
    let t = s.path("t");
    std::fs::create_dir(&t).unwrap();
    std::fs::write(
        t.join("snapshot.json"),
        br#"{"version":1,"config":{"name":"x","cpu":1,"memory":1024}}"#,
    )
    .unwrap();
    std::fs::write(t.join("memory-ranges"), bytes(5000, 3)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", t.join("link")).unwrap();
    std::fs::create_dir(t.join("sub")).unwrap();
    let tar = s.path("x.tar");
    crate::util::sh(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&t)
            .arg("-cf")
            .arg(&tar)
            .args(["snapshot.json", "memory-ranges", "link", "sub"]),
    );
    let out = s.run(&[
        "--json",
        "import-tar",
        tar.to_str().unwrap(),
        "--ref",
        "vm:1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("\"link\": a symbolic link") && err.contains("\"sub/\": a directory"),
        "{err}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(stored_names(&s, "vm:1"), ["memory-ranges"]);
}
