//! Moving data with copy_file_range (EPOCH_STORE_COPY=copy, and the default
//! on filesystems that share extents) gives the same blobs and files as
//! reading and writing, and is verified just the same.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Store, sh, skip};
use crate::vm::{assert_same_tree, snapshot_dir};

fn with_mode(s: &Store, mode: &str, args: &[&str]) -> std::process::Output {
    let mut c = s.cmd(args);
    c.env("EPOCH_STORE_COPY", mode);
    c.output().expect("run epoch-store")
}

fn ok_with(s: &Store, mode: &str, args: &[&str]) -> String {
    let out = with_mode(s, mode, args);
    assert!(
        out.status.success(),
        "EPOCH_STORE_COPY={mode} epoch-store {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn layer_digests(s: &Store, r: &str) -> Vec<String> {
    s.json(&["inspect", r])["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn both_copy_modes_store_the_same_blobs_and_restore_the_same_files() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    for mode in ["write", "copy"] {
        let r = format!("vm:{mode}");
        ok_with(
            &s,
            mode,
            &[
                "pack",
                "snapshot",
                path(&dir),
                "--ref",
                &r,
                "--chunk-size",
                "1MiB",
            ],
        );
    }
    assert_eq!(layer_digests(&s, "vm:write"), layer_digests(&s, "vm:copy"));
    for mode in ["write", "copy"] {
        let out = s.path(&format!("out-{mode}"));
        ok_with(&s, mode, &["unpack", "vm:copy", path(&out)]);
        assert_same_tree(&dir, &out);
    }
    s.ok(&["verify"]);
}

#[test]
fn a_damaged_chunk_is_refused_when_copied_in_the_kernel() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    s.ok(&[
        "pack",
        "snapshot",
        path(&dir),
        "--ref",
        "vm:1",
        "--chunk-size",
        "1MiB",
    ]);
    let m = s.json(&["inspect", "vm:1"]);
    let layer = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["annotations"]["org.opencontainers.image.title"] == "memory-ranges")
        .unwrap();
    let digest = layer["digest"].as_str().unwrap();
    let blob = s.blob(digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let out_dir = s.path("out");
    let out = with_mode(&s, "copy", &["unpack", "vm:1", path(&out_dir)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(digest), "names the damaged chunk: {err}");
    assert!(
        !out_dir.join("memory-ranges").exists(),
        "nothing published from a damaged chunk"
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temp files removed: {leftovers:?}");
}

/// On a filesystem that shares extents (XFS with reflink, btrfs), the
/// default mode clones: blobs and restored files share the source's
/// extents, and everything still verifies. `.ci/run` makes an XFS loop
/// mount and names it in EPOCH_STORE_TEST_REFLINK_DIR.
#[test]
fn on_a_reflink_filesystem_pack_and_unpack_share_extents() {
    let Some(parent) = std::env::var_os("EPOCH_STORE_TEST_REFLINK_DIR") else {
        skip(
            "EPOCH_STORE_TEST_REFLINK_DIR is not set (.ci/run mounts XFS with reflink and sets it)",
        );
        return;
    };
    let s = Store::empty_in(Path::new(&parent));
    s.ok(&["init"]);
    let dir = snapshot_dir(&s);
    s.ok(&[
        "pack",
        "snapshot",
        path(&dir),
        "--ref",
        "vm:1",
        "--chunk-size",
        "1MiB",
    ]);
    let out = s.path("out");
    s.ok(&["unpack", "vm:1", path(&out)]);
    assert_same_tree(&dir, &out);
    s.ok(&["verify"]);
    let shared = |p: &Path| sh(Command::new("filefrag").arg("-v").arg(p)).contains("shared");
    assert!(
        shared(&out.join("memory-ranges")),
        "the restored file shares extents"
    );
    let m = s.json(&["inspect", "vm:1"]);
    let first = m["layers"][0]["digest"].as_str().unwrap().to_string();
    assert!(shared(&s.blob(&first)), "the blob shares extents");
}
