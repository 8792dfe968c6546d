//! `copy`: incremental, verified copies between layouts, onto FAT32, exFAT
//! and NTFS sticks (FUSE), refusals before a byte is written, damage in the
//! source, and kills at every rename and fsync.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::media::{Kind, Stick};
use crate::util::{OCI_MANIFEST, Store, bin, bytes, desc, have_tool, manifest_bytes};
use crate::vm::assert_same_tree;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A snapshot dir of a 6 MiB memory file and a 2 MiB disk, packed as vm:1
/// in 1 MiB chunks.
fn packed() -> (Store, PathBuf) {
    let st = Store::new();
    let dir = st.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes(6 << 20, 1)).unwrap();
    std::fs::write(dir.join("disk.raw"), bytes(2 << 20, 2)).unwrap();
    st.ok(&[
        "pack",
        "snapshot",
        s(&dir),
        "--ref",
        "vm:1",
        "--chunk-size",
        "1MiB",
    ]);
    (st, dir)
}

/// Blob count and bytes `copy --dry-run --json` plans.
fn planned(st: &Store, r: &str, to: &Path) -> (u64, u64, Value) {
    let v = st.json(&["copy", r, "--to", s(to), "--dry-run"]);
    (
        v["blobs"].as_u64().unwrap(),
        v["bytes"].as_u64().unwrap(),
        v,
    )
}

fn dest(to: &Path) -> Store {
    Store {
        tmp: tempfile::tempdir().unwrap(),
        layout: to.to_path_buf(),
    }
}

#[test]
fn copies_only_what_changed_and_copies_back() {
    let (st, dir) = packed();
    let to = st.path("stick");
    let all: u64 = st.json(&["inspect", "vm:1"])["size"].as_u64().unwrap();
    let independent = crate::util::independent_check(&st.layout, &["vm:1"], "source");
    assert_eq!(
        all, independent.reachable_bytes,
        "inspect's size, summed by Python"
    );
    assert_eq!(independent.reachable, 10);
    let (blobs, bytes1, _) = planned(&st, "vm:1", &to);
    assert!(!to.exists(), "a dry run creates nothing");
    assert_eq!(blobs, 10, "8 chunks, config, manifest");
    st.ok(&["copy", "vm:1", "--to", s(&to)]);
    let d = dest(&to);
    d.ok(&["verify"]);
    assert_eq!(bytes1, all, "the whole artifact, manifest included");
    let there = crate::util::independent_check(&to, &[], "stick");
    assert_eq!(
        (there.blobs, there.reachable_bytes),
        (10, all),
        "what the stick holds"
    );

    // Next week: one chunk of the memory file changed.
    let mem = dir.join("memory-ranges");
    let mut m = std::fs::read(&mem).unwrap();
    m[(3 << 20) + 17] ^= 0xff;
    std::fs::write(&mem, &m).unwrap();
    st.ok(&[
        "pack",
        "snapshot",
        s(&dir),
        "--ref",
        "vm:2",
        "--chunk-size",
        "1MiB",
    ]);
    let (blobs, bytes2, _) = planned(&st, "vm:2", &to);
    assert_eq!(blobs, 3, "the changed chunk, the config and the manifest");
    assert!(bytes2 < (1 << 20) + 8192, "{bytes2}");
    let out = st.json(&["copy", "vm:2", "--to", s(&to)]);
    assert_eq!(out["blobs"], 3);
    assert_eq!(out["skippedBlobs"], 7);
    d.ok(&["verify"]);
    let restored = st.path("restored");
    d.ok(&["unpack", "vm:2", s(&restored)]);
    assert_same_tree(&dir, &restored);

    // Copying again writes nothing; copying back is the same command.
    assert_eq!(planned(&st, "vm:2", &to).0, 0);
    let back = st.path("back");
    d.ok(&["copy", "--all", "--to", s(&back)]);
    let b = dest(&back);
    b.ok(&["verify"]);
    let refs: Vec<String> = b
        .json(&["ls"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ref"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(refs, ["vm:1", "vm:2"]);
}

#[test]
fn a_ref_with_another_digest_needs_force() {
    let (st, dir) = packed();
    let to = st.path("stick");
    st.ok(&["copy", "vm:1", "--to", s(&to)]);
    std::fs::write(dir.join("disk.raw"), bytes(2 << 20, 9)).unwrap();
    st.ok(&[
        "pack",
        "snapshot",
        s(&dir),
        "--ref",
        "vm:1",
        "--chunk-size",
        "1MiB",
    ]);
    let err = st.fails(2, &["copy", "vm:1", "--to", s(&to)]);
    assert!(err.contains("--force"), "{err}");
    let d = dest(&to);
    let before = d.json(&["inspect", "vm:1"])["digest"].clone();
    assert_ne!(before, st.json(&["inspect", "vm:1"])["digest"]);
    st.ok(&["copy", "vm:1", "--to", s(&to), "--force"]);
    assert_eq!(
        d.json(&["inspect", "vm:1"])["digest"],
        st.json(&["inspect", "vm:1"])["digest"]
    );
    d.ok(&["verify"]);
}

#[test]
fn destinations_that_are_not_layouts_are_refused() {
    let (st, _) = packed();
    let file = st.file("a-file", b"x");
    let err = st.fails(2, &["copy", "vm:1", "--to", s(&file)]);
    assert!(err.contains("not a directory"), "{err}");
    let busy = st.path("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("photo.jpg"), b"x").unwrap();
    let err = st.fails(2, &["copy", "vm:1", "--to", s(&busy)]);
    assert!(err.contains("not an OCI image layout"), "{err}");
    assert_eq!(
        std::fs::read_dir(&busy).unwrap().count(),
        1,
        "nothing written"
    );
    let err = st.fails(2, &["copy", "--to", s(&st.path("x"))]);
    assert!(err.contains("--all"), "{err}");
}

#[test]
fn a_damaged_source_blob_stops_the_copy_and_nothing_references_it() {
    let (st, _) = packed();
    let m = st.json(&["inspect", "vm:1"]);
    let chunk = m["layers"][2]["digest"].as_str().unwrap().to_string();
    let path = st.blob(&chunk);
    let mut b = std::fs::read(&path).unwrap();
    b[100] ^= 1;
    std::fs::write(&path, b).unwrap();
    let to = st.path("stick");
    let err = st.fails(2, &["copy", "vm:1", "--to", s(&to)]);
    assert!(err.contains(&chunk) && err.contains("damaged"), "{err}");
    let d = dest(&to);
    assert_eq!(d.json(&["ls"]), Value::Array(vec![]), "nothing tagged");
    d.ok(&["verify"]);
    assert!(
        !d.blob(&chunk).exists(),
        "the damaged blob was not published"
    );
}

/// A layout whose one layer is a 5 GiB sparse file: too big for FAT32. The
/// blob's content is never read by the plan, so it need not match its name.
fn huge_blob_layout() -> Store {
    let st = Store::new();
    let hex = "ab".repeat(32);
    let path = st.layout.join("blobs/sha256").join(&hex);
    std::fs::File::create(&path)
        .unwrap()
        .set_len(5 << 30)
        .unwrap();
    let layer = desc(
        "application/vnd.cocoonstack.vm.memory",
        &format!("sha256:{hex}"),
        5 << 30,
    );
    let config = st.put_raw(b"{}");
    let manifest = manifest_bytes(
        desc("application/vnd.oci.empty.v1+json", &config, 2),
        vec![layer],
    );
    st.root_doc("big:1", OCI_MANIFEST, &manifest);
    st
}

#[test]
fn media_fat32_exfat_ntfs_take_a_copy_verify_and_unpack() {
    let (st, dir) = packed();
    let mut tried = 0;
    for kind in Kind::ALL {
        let Some(stick) = Stick::new(st.tmp.path(), kind, 64, false) else {
            continue;
        };
        tried += 1;
        let to = stick.path("store");
        let (_, _, plan) = planned(&st, "vm:1", &to);
        assert_eq!(plan["filesystem"], kind.name(), "{plan}");
        assert_eq!(plan["fuse"], true);
        st.ok(&["copy", "vm:1", "--to", s(&to)]);
        let d = dest(&to);
        d.ok(&["verify"]);
        let out = st.path(&format!("out-{kind:?}"));
        d.ok(&["unpack", "vm:1", s(&out)]);
        assert_same_tree(&dir, &out);
        drop(stick);
    }
    if tried < Kind::ALL.len() {
        crate::util::skip(&format!(
            "only {tried} of {} media could be mounted",
            Kind::ALL.len()
        ));
    }
}

#[test]
fn an_over_limit_blob_is_refused_before_anything_is_written() {
    let st = huge_blob_layout();
    let Some(stick) = Stick::new(st.tmp.path(), Kind::Fat32, 64, false) else {
        return;
    };
    let to = stick.path("store");
    let err = st.fails(2, &["copy", "big:1", "--to", s(&to)]);
    assert!(
        err.contains("FAT") && err.contains("4294967295") && err.contains("--chunk-size"),
        "{err}"
    );
    assert!(!to.exists(), "nothing written to the stick");
    // exFAT has no such limit: only the free space stops it, also before writing.
    let Some(ex) = Stick::new(st.tmp.path(), Kind::Exfat, 64, false) else {
        return;
    };
    let err = st.fails(2, &["copy", "big:1", "--to", s(&ex.path("store"))]);
    assert!(err.contains("free"), "{err}");
    assert!(!ex.path("store").exists());
}

#[test]
fn a_read_only_stick_fails_cleanly() {
    let (st, _) = packed();
    let Some(stick) = Stick::new(st.tmp.path(), Kind::Fat32, 64, true) else {
        return;
    };
    let err = st.fails(2, &["copy", "vm:1", "--to", s(&stick.path("store"))]);
    assert!(err.to_lowercase().contains("read-only"), "{err}");
}

/// Runs copy under strace, killing it at call `n` of `syscall`.
fn killed_copy(st: &Store, to: &Path, syscall: &str, n: u32) -> std::process::Output {
    Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=KILL:when={n}"))
        .arg(bin())
        .arg("--layout")
        .arg(&st.layout)
        .args(["-q", "copy", "vm:1", "--to"])
        .arg(to)
        .env_remove("EPOCH_STORE_LAYOUT")
        .output()
        .unwrap()
}

#[test]
fn a_killed_copy_leaves_a_verifiable_layout_and_completes_on_rerun() {
    if !have_tool("strace") {
        return;
    }
    let (st, dir) = packed();
    let mut kills = 0;
    for syscall in ["renameat2", "fsync", "pwrite64,write"] {
        for n in 1..=60 {
            let to = st.path(&format!("stick-{}-{n}", syscall.replace(',', "-")));
            let out = killed_copy(&st, &to, syscall, n);
            if out.status.success() {
                break;
            }
            kills += 1;
            let ctx = format!("killed at {syscall} #{n}");
            if to.join("oci-layout").exists() && to.join("index.json").exists() {
                let d = dest(&to);
                let v = d.json(&["verify"]);
                assert!(v["problems"].as_array().unwrap().is_empty(), "{ctx}: {v}");
                let ls = d.json(&["ls"]);
                assert!(
                    ls.as_array().unwrap().is_empty() || ls[0]["ref"] == "vm:1",
                    "{ctx}: {ls}"
                );
            }
            // The rerun copies only what the killed run did not publish.
            let published = std::fs::read_dir(to.join("blobs/sha256"))
                .map(|d| d.count() as u64)
                .unwrap_or(0);
            let (left, _, _) = planned(&st, "vm:1", &to);
            assert_eq!(
                left + published,
                10,
                "{ctx}: {published} published, {left} left"
            );
            st.ok(&["copy", "vm:1", "--to", s(&to)]);
            let d = dest(&to);
            d.ok(&["verify"]);
            let restored = st.path(&format!("r-{}-{n}", syscall.replace(',', "-")));
            d.ok(&["unpack", "vm:1", s(&restored)]);
            assert_same_tree(&dir, &restored);
            std::fs::remove_dir_all(&to).unwrap();
            std::fs::remove_dir_all(&restored).unwrap();
        }
    }
    assert!(kills > 10, "the injection does not work ({kills} kills)");
}

#[test]
fn a_full_stick_that_reports_no_free_space_fails_mid_copy_and_stays_verifiable() {
    // fusefat reports no free space, so the plan cannot refuse the copy:
    // the disk fills up while blobs are written.
    let st = Store::new();
    let dir = st.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes(48 << 20, 5)).unwrap();
    st.ok(&[
        "pack",
        "snapshot",
        s(&dir),
        "--ref",
        "vm:1",
        "--chunk-size",
        "4MiB",
    ]);
    let Some(stick) = Stick::new(st.tmp.path(), Kind::Fat32, 40, false) else {
        return;
    };
    let to = stick.path("store");
    let plan = st.json(&["copy", "vm:1", "--to", s(&to), "--dry-run"]);
    assert_eq!(plan["free"], Value::Null, "{plan}");
    let err = st.fails(2, &["copy", "vm:1", "--to", s(&to)]);
    assert!(
        err.contains("may be full") && err.contains("resumes"),
        "{err}"
    );
    let d = dest(&to);
    assert_eq!(d.json(&["ls"]), Value::Array(vec![]), "nothing tagged");
    let v = d.json(&["verify"]);
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn enospc_and_eio_mid_copy_fail_cleanly_and_a_rerun_completes() {
    if !have_tool("strace") {
        return;
    }
    let (st, dir) = packed();
    for (syscall, error) in [("pwrite64,write", "ENOSPC"), ("fsync", "EIO")] {
        let to = st.path(&format!("stick-{error}"));
        let out = Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e"])
            .arg(format!("trace={syscall}"))
            .arg("-e")
            .arg(format!("inject={syscall}:error={error}:when=3"))
            .arg(bin())
            .arg("--layout")
            .arg(&st.layout)
            .args(["copy", "vm:1", "--to"])
            .arg(&to)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{error}");
        let d = dest(&to);
        if to.join("index.json").exists() {
            assert_eq!(
                d.json(&["ls"]),
                Value::Array(vec![]),
                "{error}: nothing tagged"
            );
            d.ok(&["verify"]);
        }
        st.ok(&["copy", "vm:1", "--to", s(&to)]);
        let restored = st.path(&format!("r-{error}"));
        d.ok(&["unpack", "vm:1", s(&restored)]);
        assert_same_tree(&dir, &restored);
    }
}
