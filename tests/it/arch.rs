//! Issue 9's rules as the user meets them: one plain-name rule for every
//! name that becomes a path, checked when packing, not only when exporting.

use std::path::Path;

use crate::util::{OCI_MANIFEST, Store, desc, manifest_bytes};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_backslash_name_is_refused_when_packing_not_later_at_export() {
    let st = Store::new();
    let dir = st.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("disk.raw"), b"disk").unwrap();
    std::fs::write(dir.join("a\\b"), b"x").unwrap();
    // Blobs and index.json; the private directory may gain a lock file.
    let content = || {
        let mut v = st.snapshot();
        v.retain(|(p, _)| !p.to_string_lossy().contains(".epoch-store"));
        v
    };
    let before = content();
    let err = st.fails(
        2,
        &[
            "pack",
            "snapshot",
            s(&dir),
            "--ref",
            "vm:1",
            "--no-ch-config",
        ],
    );
    assert!(
        err.contains("a\\\\b") && err.contains("path separator"),
        "{err}"
    );
    assert!(content() == before, "nothing written");

    let disk = st.path("win\\disk.qcow2");
    std::fs::write(&disk, vec![1u8; 4096]).unwrap();
    let err = st.fails(2, &["pack", "image", s(&disk), "--ref", "img:1"]);
    assert!(err.contains("path separator"), "{err}");

    let err = st.fails(2, &["add", "--ref", "f:1", s(&disk)]);
    assert!(err.contains("path separator"), "{err}");
    st.ok(&["verify"]);
}

/// A v2 snapshot of three compressed files, each claiming (in its config)
/// to be 2^63 - 1 bytes: each is a valid size, but together they pass 2^64.
fn overflowing_snapshot(st: &Store) {
    let max = i64::MAX;
    let mut layers = Vec::new();
    let mut files = serde_json::Map::new();
    for name in ["m1", "m2", "m3"] {
        let frame = zstd::stream::encode_all(&b"x"[..], 1).unwrap();
        let digest = st.put_raw(&frame);
        let mut l = desc(
            "application/vnd.cocoonstack.disk.raw+zstd",
            &digest,
            frame.len(),
        );
        l["annotations"] = serde_json::json!({"org.opencontainers.image.title": name});
        layers.push(l);
        files.insert(
            name.into(),
            serde_json::json!({"size": max, "sparseMap": format!("[{{\"o\":0,\"l\":{max}}}]"), "sparseSize": max}),
        );
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": "v2", "snapshotId": "x", "files": files
    }))
    .unwrap();
    let config_digest = st.put_raw(&config);
    let mut m: serde_json::Value = serde_json::from_slice(&manifest_bytes(
        desc(
            "application/vnd.cocoonstack.snapshot.config.v1+json",
            &config_digest,
            config.len(),
        ),
        layers,
    ))
    .unwrap();
    m["artifactType"] = "application/vnd.cocoonstack.snapshot.v2+json".into();
    st.root_doc("vm:1", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap());
}

#[test]
fn sizes_that_add_up_past_64_bits_are_errors_not_panics_or_wraps() {
    let st = Store::new();
    overflowing_snapshot(&st);
    let out = st.run(&["--json", "ls"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ls: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(ls[0]["logicalSize"].is_null(), "{ls}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2^64"),
        "{out:?}"
    );
    for args in [
        &["inspect", "vm:1"][..],
        &["unpack", "vm:1", s(&st.path("out"))],
        &["export-tar", "vm:1", "-o", s(&st.path("x.tar"))],
    ] {
        let err = st.fails(2, args);
        assert!(err.contains("2^64"), "{args:?}: {err}");
    }
    assert!(!st.path("x.tar").exists());
    st.ok(&["du"]);
    st.ok(&["gc", "--dry-run"]);

    // Described sizes of present blobs that pass 2^64 together: gc refuses
    // to count them rather than wrap.
    let a = st.put_raw(b"a");
    let b = st.put_raw(b"b");
    let huge = serde_json::json!(u64::MAX / 2 + 1);
    let mut la = desc("application/octet-stream", &a, 1);
    let mut lb = desc("application/octet-stream", &b, 1);
    la["size"] = huge.clone();
    lb["size"] = huge;
    let m = manifest_bytes(
        desc("application/vnd.oci.empty.v1+json", &st.put_raw(b"{}"), 2),
        vec![la, lb],
    );
    st.root_doc("big:1", OCI_MANIFEST, &m);
    for args in [&["inspect", "big:1"][..], &["gc", "--dry-run"]] {
        let err = st.fails(2, args);
        assert!(err.contains("2^64"), "{args:?}: {err}");
    }
    let out = st.run(&["ls"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
