//! What the commands that read input files do with a FIFO (refuse it at
//! once, naming it, exit 2, the layout untouched), and where the commands
//! that bring data in put a layout that is not there yet.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Store, bytes, sha256, snapshot_dir};

/// Long enough for a slow machine, short enough that a hang fails the test.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

/// Runs `epoch-store ARGS` on `s` with stdin closed, killing it (and
/// failing the test) if it does not end within [`TIMEOUT`]: a command
/// waiting on a FIFO hangs forever otherwise.
fn run_with_timeout(s: &Store, args: &[&str]) -> Output {
    let mut child = s
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run epoch-store");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("epoch-store {args:?} hung (killed after {TIMEOUT:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `epoch-store ARGS` fails at once with exit 2, naming `fifo` and saying
/// what it is, and the layout is as it was and verifies.
fn refuses_fifo(s: &Store, args: &[&str], fifo: &Path) {
    let before = layout_files(s);
    let out = run_with_timeout(s, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "epoch-store {args:?}: {err}");
    assert!(
        err.contains(&fifo.display().to_string()),
        "epoch-store {args:?}: the error names the FIFO: {err}"
    );
    assert!(err.contains("FIFO"), "epoch-store {args:?}: {err}");
    assert_eq!(
        layout_files(s),
        before,
        "epoch-store {args:?} left the layout as it was"
    );
    s.ok(&["verify"]);
}

/// The layout's files and their bytes, but for its private directory
/// (where a writer leaves its lock file).
fn layout_files(s: &Store) -> Vec<(PathBuf, Vec<u8>)> {
    let private = s.layout.join(".epoch-store");
    snapshot_dir(&s.layout)
        .into_iter()
        .filter(|(f, _)| !f.starts_with(&private))
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A VM snapshot directory with a memory file, a CH config and a disk.
fn snapshot_files(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("memory-ranges"), bytes(100_000, 1)).unwrap();
    fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824}}"#,
    )
    .unwrap();
    fs::write(dir.join("disk.raw"), bytes(50_000, 2)).unwrap();
}

/// cocoon's export skips every entry that is not a regular file
/// (`utils/tar.go:TarDir`), and so does `pack snapshot`: a FIFO is skipped
/// with a warning naming it, at once, never opened (which would block).
#[test]
fn pack_snapshot_skips_a_fifo_in_the_directory_without_opening_it() {
    let s = Store::new();
    // A FIFO in place of a data file, of CH's config.json (the CPU and
    // memory input), and of snapshot.json (the envelope).
    for (i, name) in ["memory-ranges", "config.json", "snapshot.json"]
        .iter()
        .enumerate()
    {
        let dir = s.path(&format!("snap-{name}"));
        snapshot_files(&dir);
        let fifo = dir.join(name);
        let _ = fs::remove_file(&fifo);
        mkfifo(&fifo);
        let r = format!("vm:{i}");
        for extra in [&[][..], &["--no-ch-config"][..]] {
            let mut args = vec!["pack", "snapshot", p(&dir), "--ref", &r];
            args.extend_from_slice(extra);
            let out = run_with_timeout(&s, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "epoch-store {args:?}: {err}");
            assert!(
                err.contains(&format!("skipped \"{name}\": a FIFO")),
                "epoch-store {args:?}: {err}"
            );
            let files = s.json(&["inspect", &r])["files"].clone();
            let names: Vec<&str> = files
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap())
                .collect();
            assert!(!names.contains(name), "{name} not stored: {names:?}");
        }
    }
    s.ok(&["verify"]);
}

#[test]
fn pack_snapshot_refuses_a_fifo_as_the_directory() {
    let s = Store::new();
    let fifo = s.path("snap");
    mkfifo(&fifo);
    let out = run_with_timeout(&s, &["pack", "snapshot", p(&fifo), "--ref", "vm:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(p(&fifo)), "{err}");
    s.ok(&["verify"]);
}

#[test]
fn pack_image_refuses_a_fifo() {
    let s = Store::new();
    let fifo = s.path("disk.qcow2");
    mkfifo(&fifo);
    refuses_fifo(&s, &["pack", "image", p(&fifo), "--ref", "img:1"], &fifo);
}

#[test]
fn add_refuses_a_fifo() {
    let s = Store::new();
    let file = s.file("notes.txt", b"notes");
    let fifo = s.path("memory-ranges");
    mkfifo(&fifo);
    refuses_fifo(&s, &["add", "--ref", "a:1", p(&file), p(&fifo)], &fifo);
}

#[test]
fn import_tar_refuses_a_fifo_and_still_reads_stdin() {
    let s = Store::new();
    let fifo = s.path("snap.tar");
    mkfifo(&fifo);
    refuses_fifo(&s, &["import-tar", p(&fifo), "--ref", "vm:1"], &fifo);
    // A stream still comes in on stdin.
    let tar = snapshot_tar(&s);
    let out = s
        .cmd(&["import-tar", "-", "--ref", "vm:1"])
        .stdin(fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    s.ok(&["verify"]);
    s.ok(&["inspect", "vm:1"]);
}

#[test]
fn import_archive_refuses_a_fifo_and_still_reads_stdin() {
    let s = Store::new();
    let fifo = s.path("bundle.tar");
    mkfifo(&fifo);
    refuses_fifo(&s, &["import-archive", p(&fifo)], &fifo);
    let archive = archive(&s);
    let out = s
        .cmd(&["import-archive", "-"])
        .stdin(fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    s.ok(&["verify"]);
    s.ok(&["inspect", "a:1"]);
}

#[test]
fn import_legacy_refuses_fifos_in_the_legacy_store() {
    let s = Store::new();
    // A blob or a manifest a FIFO: the manifest is skipped (exit 2)
    // naming it, nothing is written.
    for what in ["blob", "manifest"] {
        let dir = s.path(&format!("legacy-{what}"));
        let (blob, manifest) = legacy_store(&dir);
        let (fifo, shown) = match what {
            "blob" => (
                blob.clone(),
                format!(
                    "blobs/sha256/{}",
                    blob.file_name().unwrap().to_str().unwrap()
                ),
            ),
            _ => (manifest, "manifests/vm/v1.json".to_string()),
        };
        fs::remove_file(&fifo).unwrap();
        mkfifo(&fifo);
        let before = layout_files(&s);
        let out = run_with_timeout(&s, &["import-legacy", p(&dir)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(&shown), "{what}: names {shown}: {err}");
        assert!(
            err.contains("FIFO") || err.contains("not a regular file"),
            "{what}: {err}"
        );
        assert_eq!(layout_files(&s), before, "{what}: nothing written");
        s.ok(&["verify"]);
    }
    // catalog.json a FIFO: noted, never read, and manifests/ used alone
    // (as for any unreadable catalog).
    let dir = s.path("legacy-catalog");
    legacy_store(&dir);
    let catalog = dir.join("catalog.json");
    fs::remove_file(&catalog).unwrap();
    mkfifo(&catalog);
    let out = run_with_timeout(&s, &["import-legacy", p(&dir)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(p(&catalog)) && err.contains("FIFO"), "{err}");
    s.ok(&["verify"]);
    s.ok(&["inspect", "vm:v1"]);
    // The store itself a FIFO.
    let fifo = s.path("legacy-fifo");
    mkfifo(&fifo);
    let out = run_with_timeout(&s, &["import-legacy", p(&fifo)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(p(&fifo)), "{err}");
}

#[test]
fn a_fifo_as_the_layout_is_refused() {
    let s = Store::empty();
    mkfifo(&s.layout);
    let archive = archive(&s);
    for args in [
        vec!["ls"],
        vec!["verify"],
        vec!["import-archive", p(&archive)],
    ] {
        let out = run_with_timeout(&s, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(p(&s.layout)), "{args:?}: {err}");
    }
}

/// An OCI archive of a files artifact tagged `a:1`, made in another layout.
fn archive(s: &Store) -> PathBuf {
    let src = Store::empty_in(s.tmp.path());
    src.ok(&["init"]);
    src.add(
        "a:1",
        &[("notes.txt", b"notes"), ("data", &bytes(20_000, 3))],
    );
    let out = s.path("bundle-made.tar");
    src.ok(&["export-archive", "a:1", "-o", p(&out)]);
    out
}

/// A cocoon snapshot tar stream (`export-tar` of a packed snapshot).
fn snapshot_tar(s: &Store) -> PathBuf {
    let src = Store::empty_in(s.tmp.path());
    src.ok(&["init"]);
    let dir = s.path("tar-src");
    snapshot_files(&dir);
    src.ok(&["pack", "snapshot", p(&dir), "--ref", "vm:1"]);
    let out = s.path("snap-made.tar");
    src.ok(&["export-tar", "vm:1", "-o", p(&out)]);
    out
}

/// A legacy epoch store in `dir` with one manifest, `vm:v1`, of one file;
/// returns the blob's and the manifest's paths.
fn legacy_store(dir: &Path) -> (PathBuf, PathBuf) {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::create_dir_all(dir.join("manifests/vm")).unwrap();
    let data = bytes(30_000, 4);
    let hex = sha256(&data).trim_start_matches("sha256:").to_string();
    let blob = dir.join("blobs/sha256").join(&hex);
    fs::write(&blob, &data).unwrap();
    let manifest = dir.join("manifests/vm/v1.json");
    let m = json!({
        "schemaVersion": 1, "name": "vm", "tag": "v1", "snapshotId": "sid-1",
        "image": "ghcr.io/cocoonstack/ubuntu:24.04",
        "cpu": 2, "memory": 1073741824_u64, "storage": 10737418240_u64, "nics": 1,
        "layers": [{"digest": hex, "size": data.len(), "filename": "memory-ranges",
                    "mediaType": "application/octet-stream"}],
        "totalSize": data.len(),
        "createdAt": "2026-03-01T12:34:56.789+08:00", "pushedAt": "2026-03-02T00:00:00Z"
    });
    fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let catalog = json!({
        "repositories": {"vm": {"tags": {"v1": "manifests/vm/v1.json"},
                                "updatedAt": "2026-03-02T00:00:00Z"}},
        "updatedAt": "2026-03-02T00:00:00Z"
    });
    fs::write(
        dir.join("catalog.json"),
        serde_json::to_vec(&catalog).unwrap(),
    )
    .unwrap();
    (blob, manifest)
}

/// The three ways data comes in, each as `epoch-store ARGS` (the layout
/// given by the caller), with the ref it tags.
fn imports(s: &Store) -> Vec<(Vec<String>, &'static str)> {
    let archive = archive(s);
    let tar = snapshot_tar(s);
    let legacy = s.path("legacy");
    legacy_store(&legacy);
    vec![
        (vec!["import-archive".into(), p(&archive).into()], "a:1"),
        (
            vec![
                "import-tar".into(),
                p(&tar).into(),
                "--ref".into(),
                "vm:1".into(),
            ],
            "vm:1",
        ),
        (vec!["import-legacy".into(), p(&legacy).into()], "vm:v1"),
    ]
}

/// A store whose layout is at `layout`.
fn at(layout: &Path) -> Store {
    Store {
        tmp: tempfile::Builder::new()
            .prefix("epoch-it-")
            .tempdir()
            .expect("tempdir"),
        layout: layout.to_path_buf(),
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn imports_create_the_layout_in_a_new_or_empty_directory() {
    let s = Store::empty();
    for (i, (args, r)) in imports(&s).into_iter().enumerate() {
        let fresh = s.path(&format!("new-{i}/store"));
        let empty = s.path(&format!("empty-{i}"));
        fs::create_dir(&empty).unwrap();
        for layout in [&fresh, &empty] {
            let t = at(layout);
            t.ok(&strs(&args));
            t.ok(&["verify"]);
            let v: Value = t.json(&["ls"]);
            assert!(
                v.as_array().unwrap().iter().any(|e| e["ref"] == r),
                "{args:?} into {}: {v}",
                layout.display()
            );
        }
    }
}

#[test]
fn imports_refuse_a_directory_of_other_files_and_touch_nothing() {
    let s = Store::empty();
    for (args, _) in imports(&s) {
        let busy = s.path("busy");
        let _ = fs::remove_dir_all(&busy);
        fs::create_dir(&busy).unwrap();
        fs::write(busy.join("photo.jpg"), b"x").unwrap();
        let out = run_with_timeout(&at(&busy), &strs(&args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("not an OCI image layout"), "{args:?}: {err}");
        assert!(err.contains("--layout"), "says what to do: {err}");
        assert!(err.contains("init --force"), "says what to do: {err}");
        let names: Vec<_> = fs::read_dir(&busy)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["photo.jpg"], "{args:?}: nothing written");
    }
}

#[test]
fn a_missing_layout_says_what_to_do() {
    let s = Store::empty();
    for cmd in ["ls", "verify", "gc"] {
        let err = s.fails(2, &[cmd]);
        assert!(err.contains("does not exist"), "{cmd}: {err}");
        assert!(err.contains("--layout"), "{cmd}: {err}");
        assert!(err.contains("init"), "{cmd}: {err}");
        assert!(!s.layout.exists(), "{cmd} created nothing");
    }
}
