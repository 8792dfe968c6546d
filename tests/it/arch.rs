//! Issue 9's rules as the user meets them: one plain-name rule for every
//! name that becomes a path, checked when packing, not only when exporting.

use std::path::Path;

use crate::util::Store;

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
