//! VM snapshots: pack and unpack round trips with real disk images, and
//! hostile snapshot manifests.

use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::util::{OCI_MANIFEST, Store, bytes, have_tool, sh};
use serde_json::{Value, json};

/// A snapshot directory: a qcow2 overlay made by qemu-img (if present), a
/// 1 GiB sparse raw disk with two data runs, a dense memory file (mode 0600)
/// and a Cloud Hypervisor config.json.
pub(crate) fn snapshot_dir(s: &Store) -> std::path::PathBuf {
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    if have_tool("qemu-img") {
        sh(std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(dir.join("overlay.qcow2"))
            .arg("256M"));
    }
    let cow = std::fs::File::create(dir.join("cow.raw")).unwrap();
    cow.set_len(1 << 30).unwrap();
    cow.write_all_at(&bytes(3 << 20, 1), 100 << 20).unwrap();
    cow.write_all_at(&bytes(1 << 20, 2), 900 << 20).unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes(5 << 20, 3)).unwrap();
    std::fs::set_permissions(
        dir.join("memory-ranges"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824}}"#,
    )
    .unwrap();
    dir
}

pub(crate) fn assert_same_tree(a: &Path, b: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut got: Vec<_> = std::fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    got.sort();
    assert_eq!(names, got, "same file names");
    for n in names {
        let (x, y) = (a.join(&n), b.join(&n));
        assert!(
            std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
            "{n:?} differs"
        );
        let (mx, my) = (
            std::fs::metadata(&x).unwrap(),
            std::fs::metadata(&y).unwrap(),
        );
        assert_eq!(mx.mode() & 0o7777, my.mode() & 0o7777, "{n:?} mode");
        assert!(
            my.blocks() <= mx.blocks() + 64,
            "{n:?}: holes restored ({} vs {} blocks)",
            my.blocks(),
            mx.blocks()
        );
    }
}

#[test]
fn v1_and_v2_round_trip_byte_identical_with_holes() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    let runs = [
        ("v1", "v1", "512MiB", None),
        ("v2", "v2", "1MiB", None),
        ("v2z", "v2", "2MiB", Some("zstd:3")),
        ("v2z1", "v2", "512MiB", Some("zstd")),
    ];
    for (name, format, chunk, compress) in runs {
        let r = format!("vm:{name}");
        let d = dir.to_str().unwrap();
        let mut args = vec![
            "pack",
            "snapshot",
            d,
            "--ref",
            &r,
            "--format",
            format,
            "--chunk-size",
            chunk,
        ];
        if let Some(c) = compress {
            args.extend(["--compress", c]);
        }
        let out = s.json(&args);
        assert!(
            out["size"].as_u64().unwrap() < 20 << 20,
            "holes not stored: {out}"
        );
        let target = s.path(&format!("out-{name}"));
        s.ok(&["unpack", &r, target.to_str().unwrap()]);
        assert_same_tree(&dir, &target);
        if have_tool("qemu-img") {
            sh(std::process::Command::new("qemu-img")
                .arg("compare")
                .arg(dir.join("overlay.qcow2"))
                .arg(target.join("overlay.qcow2")));
        }
    }
    s.ok(&["verify"]);
    let ls = s.json(&["ls"]);
    assert!(
        ls.as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] == "snapshot"),
        "{ls}"
    );
    // Every run packed the same files: the logical size is theirs, holes
    // included, whatever the format, chunking or compression.
    let logical: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    for e in ls.as_array().unwrap() {
        assert_eq!(e["logicalSize"].as_u64(), Some(logical), "{e}");
        assert!(e["size"].as_u64().unwrap() < logical / 10, "{e}");
    }
    let text = s.ok(&["ls"]);
    assert!(text.contains("LOGICAL") && text.contains("GiB"), "{text}");
}

#[test]
fn v2_lists_chunks_and_titles_as_cocoon_common_does() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "vm:1",
        "--chunk-size",
        "1MiB",
        "--description",
        "nightly",
    ]);
    let m = s.json(&["inspect", "vm:1"]);
    assert_eq!(
        m["artifactType"],
        "application/vnd.cocoonstack.snapshot.v2+json"
    );
    let config_digest = m["config"]["digest"].as_str().unwrap();
    let config: Value =
        serde_json::from_slice(&std::fs::read(s.blob(config_digest)).unwrap()).unwrap();
    assert_eq!(config["schemaVersion"], "v2");
    assert_eq!(config["cpu"], 2);
    assert_eq!(config["memory"], 1073741824);
    assert_eq!(config["description"], "nightly");
    let mem = &config["files"]["memory-ranges"];
    assert_eq!(mem["size"], 5 << 20);
    assert_eq!(mem["mode"], 0o600);
    assert_eq!(mem["chunks"].as_array().unwrap().len(), 5);
    let cow = &config["files"]["cow.raw"];
    assert_eq!(cow["sparseSize"], 1u64 << 30);
    assert!(cow["sparseMap"].as_str().unwrap().starts_with("[{\"o\":"));
    let layers = m["layers"].as_array().unwrap();
    let mem_layers: Vec<&Value> = layers
        .iter()
        .filter(|l| l["annotations"]["org.opencontainers.image.title"] == "memory-ranges")
        .collect();
    assert_eq!(mem_layers.len(), 5, "bare title on every chunk");
    assert_eq!(mem_layers[4]["annotations"]["cocoonstack.chunk.index"], "4");
    assert_eq!(mem_layers[0]["annotations"]["cocoonstack.chunk.count"], "5");
    let small = layers
        .iter()
        .find(|l| l["annotations"]["org.opencontainers.image.title"] == "config.json")
        .unwrap();
    assert!(
        small["annotations"]
            .get("cocoonstack.chunk.index")
            .is_none()
    );
}

#[test]
fn compressed_chunks_are_zstd_frames_listed_as_cocoon_common_does() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "z:1",
        "--compress",
        "zstd:3",
        "--chunk-size",
        "2MiB",
    ]);
    let m = s.json(&["inspect", "z:1"]);
    assert_eq!(
        m["artifactType"],
        "application/vnd.cocoonstack.snapshot.v2+json"
    );
    let layers = m["layers"].as_array().unwrap();
    let title = |l: &Value| {
        l["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mem: Vec<&Value> = layers
        .iter()
        .filter(|l| title(l) == "memory-ranges")
        .collect();
    assert_eq!(mem.len(), 3, "5 MiB in 2 MiB chunks");
    for l in &mem {
        assert_eq!(l["mediaType"], "application/vnd.cocoonstack.vm.memory+zstd");
        let blob = std::fs::read(s.blob(l["digest"].as_str().unwrap())).unwrap();
        assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    }
    let config: Value = serde_json::from_slice(
        &std::fs::read(s.blob(m["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(config["files"]["memory-ranges"]["size"], 5 << 20);
    let chunks: Vec<&str> = config["files"]["memory-ranges"]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let digests: Vec<&str> = mem.iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(chunks, digests, "chunks list the compressed blobs in order");
    let small = layers.iter().find(|l| title(l) == "config.json").unwrap();
    assert_eq!(
        small["mediaType"], "application/vnd.cocoonstack.vm.config+json",
        "small files stay raw"
    );
    // Compression needs v2.
    let err = s.fails(
        2,
        &[
            "pack",
            "snapshot",
            dir.to_str().unwrap(),
            "--ref",
            "z:2",
            "--format",
            "v1",
            "--compress",
            "zstd",
        ],
    );
    assert!(err.contains("v2"), "{err}");
    // A damaged compressed chunk is caught and nothing is left behind.
    let p = s.blob(digests[1]);
    let mut bad = std::fs::read(&p).unwrap();
    let n = bad.len();
    bad[n / 2] ^= 0x20;
    std::fs::write(&p, bad).unwrap();
    let out = s.path("z-out");
    s.fails(2, &["unpack", "z:1", out.to_str().unwrap()]);
    assert!(!out.join("memory-ranges").exists());
}

#[test]
fn a_v2_pack_of_small_files_stays_v1() {
    let s = Store::new();
    let dir = s.path("small");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("state.json"), b"{}").unwrap();
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "small:1",
    ]);
    assert_eq!(
        s.json(&["inspect", "small:1"])["artifactType"],
        "application/vnd.cocoonstack.snapshot.v1+json"
    );
}

#[test]
fn unpack_refuses_existing_files_and_hostile_titles() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "vm:1",
        "--format",
        "v1",
    ]);
    let target = s.path("t");
    s.ok(&["unpack", "vm:1", target.to_str().unwrap()]);
    let err = s.fails(2, &["unpack", "vm:1", target.to_str().unwrap()]);
    assert!(err.contains("--force"), "{err}");
    s.ok(&["unpack", "--force", "vm:1", target.to_str().unwrap()]);

    // A snapshot whose layer title climbs out of the target.
    let layer = s.put_raw(b"evil");
    let config = s.put_raw(br#"{"schemaVersion":"v1","snapshotId":"x"}"#);
    for title in ["../escape", "/abs", ".", "a/b"] {
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.cocoonstack.snapshot.v1+json",
            "config": {"mediaType": "application/vnd.cocoonstack.snapshot.config.v1+json", "digest": config, "size": 39},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": 4,
                        "annotations": {"org.opencontainers.image.title": title}}],
        })).unwrap();
        s.root_doc("evil:1", OCI_MANIFEST, &m);
        let out = s.path("evil-out");
        let err = s.fails(2, &["unpack", "evil:1", out.to_str().unwrap()]);
        assert!(err.contains("refusing file name"), "{title}: {err}");
        assert!(!s.path("escape").exists() && !Path::new("/abs").exists());
        assert_eq!(
            std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0),
            0,
            "nothing written"
        );
    }
}

#[test]
fn pack_refuses_what_is_not_a_snapshot_directory() {
    let s = Store::new();
    let dir = s.path("d");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let err = s.fails(
        2,
        &["pack", "snapshot", dir.to_str().unwrap(), "--ref", "x:1"],
    );
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_dir(dir.join("sub")).unwrap();
    let err = s.fails(
        2,
        &[
            "pack",
            "snapshot",
            dir.to_str().unwrap(),
            "--ref",
            "x:1",
            "--chunk-size",
            "8GiB",
        ],
    );
    assert!(err.contains("4096 MiB"), "{err}");
    let err = s.fails(
        2,
        &[
            "pack",
            "snapshot",
            dir.to_str().unwrap(),
            "--ref",
            "x:1",
            "--chunk-size",
            "1GB",
        ],
    );
    assert!(err.contains("decimal units"), "{err}");
    assert_eq!(s.json(&["ls"]), json!([]));
}

/// cocoon's export writes `COCOON.sparse.map: null` for a file with no data
/// at all (Go's nil slice), and cocoon-common's pusher copies the record into
/// the config verbatim: such a snapshot must unpack and export (found by the
/// cocoon oracle, tests/it/cocoon_oracle.rs; docs/interop.md).
#[test]
fn a_null_sparse_map_as_cocoon_commons_pusher_copies_it_unpacks_and_exports() {
    let s = Store::new();
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::File::create(dir.join("holes.raw"))
        .unwrap()
        .set_len(10 << 20)
        .unwrap();
    std::fs::write(dir.join("state.json"), b"{}").unwrap();
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "vm:1",
        "--no-ch-config",
    ]);
    let mut m: Value = serde_json::from_str(&s.ok(&["cat", "vm:1"])).unwrap();
    let cfg = std::fs::read_to_string(s.blob(m["config"]["digest"].as_str().unwrap())).unwrap();
    assert!(cfg.contains(r#""sparseMap":"[]""#), "{cfg}");
    let cfg = cfg.replace(r#""sparseMap":"[]""#, r#""sparseMap":"null""#);
    m["config"]["digest"] = json!(s.put_raw(cfg.as_bytes()));
    m["config"]["size"] = json!(cfg.len());
    let raw = serde_json::to_vec(&m).unwrap();
    s.root_doc("vm:null", OCI_MANIFEST, &raw);

    let out = s.path("out");
    s.ok(&["unpack", "vm:null", out.to_str().unwrap()]);
    let f = std::fs::metadata(out.join("holes.raw")).unwrap();
    assert_eq!(
        (f.len(), f.blocks()),
        (10 << 20, 0),
        "all hole, logical size kept"
    );
    let tar = s.cmd(&["export-tar", "vm:null"]).output().unwrap();
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let listing = s.json(&["ls"]);
    assert_eq!(listing[0]["logicalSize"], (10 << 20) + 2, "{listing}");
}
