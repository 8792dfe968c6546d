//! `unpack` straight onto removable media (FAT32, exFAT, NTFS behind FUSE),
//! without `--force`: the no-clobber publish must work where the filesystem
//! has neither `renameat2(RENAME_NOREPLACE)` nor hard links, and must still
//! refuse to replace a file that is there.

use std::path::Path;

use crate::media::{Kind, Stick};
use crate::util::{Store, bytes};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every regular file of `dir`, by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn unpack_onto_each_stick_without_force_restores_every_byte() {
    let st = Store::new();
    let dir = st.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes(3 << 20, 1)).unwrap();
    std::fs::write(dir.join("disk.raw"), bytes(1 << 20, 2)).unwrap();
    std::fs::write(dir.join("config.json"), b"{}").unwrap();
    st.ok(&[
        "pack",
        "snapshot",
        s(&dir),
        "--ref",
        "vm:1",
        "--chunk-size",
        "1MiB",
        "--no-ch-config",
    ]);
    for kind in Kind::ALL {
        let work = tempfile::tempdir().unwrap();
        let Some(stick) = Stick::new(work.path(), kind, 64, false) else {
            continue;
        };
        let out = stick.path("vm");
        st.ok(&["unpack", "vm:1", s(&out)]);
        // Names and bytes; FAT keeps no modes.
        let (got, want) = (files(&out), files(&dir));
        let names = |v: &[(String, Vec<u8>)]| {
            v.iter()
                .map(|(n, b)| (n.clone(), b.len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&got), names(&want), "{kind:?}");
        for ((name, a), (_, b)) in got.iter().zip(&want) {
            let first = a.iter().zip(b).position(|(x, y)| x != y);
            assert!(
                first.is_none(),
                "{kind:?}: {name} differs first at byte {first:?}"
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".part"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{kind:?}: temp files left: {leftovers:?}"
        );
        // A file that is there is kept, whatever the filesystem lacks.
        // (Removed first: fusefat ignores O_TRUNC.)
        std::fs::remove_file(out.join("disk.raw")).unwrap();
        std::fs::write(out.join("disk.raw"), b"mine").unwrap();
        let err = st.fails(2, &["unpack", "vm:1", s(&out)]);
        assert!(err.contains("already exists"), "{kind:?}: {err}");
        assert_eq!(
            std::fs::read(out.join("disk.raw")).unwrap(),
            b"mine",
            "{kind:?}"
        );
    }
}
