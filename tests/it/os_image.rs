//! cocoonstack OS images: split packing as cocoonstack's build does it,
//! reassembly as cocoon-common does it, holes, and hostile manifests.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{OCI_MANIFEST, Store, bytes, have_tool, sh};
use serde_json::{Value, json};

const TITLE: &str = "org.opencontainers.image.title";

fn title(l: &Value) -> &str {
    l["annotations"][TITLE].as_str().unwrap_or("")
}

/// The disk layers of a manifest in title order (cocoon-common's order).
fn disk_layers(m: &Value) -> Vec<Value> {
    let mut v: Vec<Value> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mediaType"].as_str().unwrap().contains(".disk."))
        .cloned()
        .collect();
    v.sort_by(|a, b| title(a).cmp(title(b)));
    v
}

/// A raw file of `size` logical bytes with data at the given offsets.
fn sparse_raw(path: &Path, size: u64, data: &[(u64, usize)]) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    for (i, &(at, len)) in data.iter().enumerate() {
        f.write_all_at(&bytes(len, 40 + i as u64), at).unwrap();
    }
    f.sync_all().unwrap();
}

fn cmp(a: &Path, b: &Path) {
    sh(Command::new("cmp").arg(a).arg(b));
}

/// The blobs of `layers` concatenated: what `cat NAME.*.part > NAME` gives.
fn cat_blobs(s: &Store, layers: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in layers {
        out.extend(std::fs::read(s.blob(l["digest"].as_str().unwrap())).unwrap());
    }
    out
}

#[test]
fn qcow2_is_split_as_cocoonstack_splits_and_joins_back() {
    if !have_tool("qemu-img") {
        return;
    }
    let s = Store::new();
    let raw = s.path("data.raw");
    sparse_raw(
        &raw,
        64 << 20,
        &[(0, 1 << 20), (9 << 20, 700_000), (50 << 20, 1 << 20)],
    );
    let img = s.path("img.qcow2");
    sh(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&img));
    let img_len = std::fs::metadata(&img).unwrap().len();
    let out = s.json(&[
        "pack",
        "image",
        img.to_str().unwrap(),
        "--ref",
        "img:1",
        "--part-size",
        "256KiB",
    ]);
    let parts = img_len.div_ceil(256 << 10);
    assert!(parts >= 4, "{img_len}");
    assert_eq!(out["parts"], parts, "{out}");
    assert_eq!(
        out["artifactType"],
        "application/vnd.cocoonstack.os-image.v1+json"
    );

    let m = s.json(&["inspect", "img:1"]);
    assert_eq!(m["kind"], "cloud-image");
    let doc = &m["manifest"];
    assert_eq!(
        doc["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(doc["config"]["size"], 2);
    let ann = &doc["annotations"];
    assert_eq!(ann["cocoonstack.disk.format"], "qcow2");
    assert_eq!(
        ann["cocoonstack.disk.reassemble"],
        "cat img.qcow2.*.qcow2.part > img.qcow2"
    );
    assert!(ann["org.opencontainers.image.created"].is_string());
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len() as u64, parts + 1);
    let disks = disk_layers(doc);
    assert_eq!(disks.len() as u64, parts);
    for (i, l) in disks.iter().enumerate() {
        assert_eq!(title(l), format!("img.qcow2.{i:02}.qcow2.part"));
        assert_eq!(
            l["mediaType"],
            "application/vnd.cocoonstack.disk.qcow2.part"
        );
    }
    let sums = layers.last().unwrap();
    assert_eq!(title(sums), "SHA256SUMS");
    assert_eq!(sums["mediaType"], "text/plain");

    // The parts are exactly what `split -d` makes of the file, and the
    // SHA256SUMS layer checks them with `sha256sum -c`.
    let split_dir = s.path("split");
    std::fs::create_dir(&split_dir).unwrap();
    sh(Command::new("split")
        .current_dir(&split_dir)
        .args(["-b", "256K", "-d", "--additional-suffix=.qcow2.part"])
        .arg(&img)
        .arg("img.qcow2."));
    let mut names: Vec<String> = std::fs::read_dir(&split_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let titles: Vec<&str> = disks.iter().map(title).collect();
    assert_eq!(names, titles);
    for (name, l) in names.iter().zip(&disks) {
        assert!(
            std::fs::read(split_dir.join(name)).unwrap()
                == std::fs::read(s.blob(l["digest"].as_str().unwrap())).unwrap(),
            "{name}"
        );
    }
    let sums_text = std::fs::read(s.blob(sums["digest"].as_str().unwrap())).unwrap();
    let expected: String = disks
        .iter()
        .map(|l| {
            let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            format!("{hex}  {}\n", title(l))
        })
        .collect();
    assert_eq!(String::from_utf8(sums_text.clone()).unwrap(), expected);
    std::fs::write(split_dir.join("SHA256SUMS"), &sums_text).unwrap();
    sh(Command::new("sha256sum")
        .current_dir(&split_dir)
        .args(["-c", "--quiet", "SHA256SUMS"]));

    // cocoonstack's reassembly: the blobs in title order are the file.
    assert!(cat_blobs(&s, &disks) == std::fs::read(&img).unwrap());

    // unpack joins them into img.qcow2.
    let target = s.path("out");
    let files = s.json(&["unpack", "img:1", target.to_str().unwrap()]);
    assert_eq!(files["files"], json!([target.join("img.qcow2")]));
    cmp(&img, &target.join("img.qcow2"));
    sh(Command::new("qemu-img")
        .arg("compare")
        .arg(&img)
        .arg(target.join("img.qcow2")));
    sh(Command::new("qemu-img")
        .arg("compare")
        .arg(&raw)
        .arg(target.join("img.qcow2")));
    s.ok(&["verify"]);
}

#[test]
fn sparse_raw_parts_keep_their_holes_and_join_back() {
    let s = Store::new();
    let disk = s.path("disk.raw");
    sparse_raw(
        &disk,
        64 << 20,
        &[
            (1 << 20, 1 << 20),
            (40 << 20, 512 << 10),
            ((64 << 20) - 4096, 4096),
        ],
    );
    let out = s.json(&[
        "pack",
        "image",
        disk.to_str().unwrap(),
        "--ref",
        "disk:1",
        "--part-size",
        "8MiB",
    ]);
    assert_eq!(out["parts"], 8);
    let m = s.json(&["inspect", "disk:1"]);
    assert_eq!(m["files"][0]["name"], "disk.raw");
    assert_eq!(m["files"][0]["logicalSize"], 64 << 20);
    assert_eq!(m["files"][0]["chunks"], 8);
    let ls = s.json(&["ls"]);
    assert_eq!(ls[0]["kind"], "cloud-image");
    assert_eq!(ls[0]["logicalSize"], 64 << 20);
    let doc = &m["manifest"];
    assert_eq!(doc["annotations"]["cocoonstack.disk.format"], "raw");
    assert_eq!(
        doc["annotations"]["cocoonstack.disk.reassemble"],
        "cat disk.raw.*.raw.part > disk.raw"
    );
    let disks = disk_layers(doc);
    let mut blocks = 0;
    for (i, l) in disks.iter().enumerate() {
        assert_eq!(title(l), format!("disk.raw.{i:02}.raw.part"));
        assert_eq!(l["mediaType"], "application/vnd.cocoonstack.disk.raw.part");
        assert_eq!(l["size"], 8 << 20);
        let md = std::fs::metadata(s.blob(l["digest"].as_str().unwrap())).unwrap();
        assert_eq!(md.len(), 8 << 20);
        blocks += md.blocks();
    }
    assert!(
        blocks * 512 < 8 << 20,
        "holes were not written: {blocks} blocks for 64 MiB of parts"
    );
    assert!(cat_blobs(&s, &disks) == std::fs::read(&disk).unwrap());

    let target = s.path("out");
    s.ok(&["unpack", "disk:1", target.to_str().unwrap()]);
    let joined = target.join("disk.raw");
    cmp(&disk, &joined);
    let md = std::fs::metadata(&joined).unwrap();
    assert!(
        md.blocks() * 512 < 8 << 20,
        "holes restored: {} blocks",
        md.blocks()
    );
    s.ok(&["verify"]);
}

#[test]
fn a_small_image_is_one_layer_named_as_given() {
    let s = Store::new();
    let disk = s.file("small.img", &bytes(100_000, 9));
    s.ok(&["pack", "image", disk.to_str().unwrap(), "--ref", "small:1"]);
    let doc = s.json(&["inspect", "small:1"])["manifest"].clone();
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(title(&layers[0]), "small.img");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.cocoonstack.disk.raw"
    );
    assert_eq!(title(&layers[1]), "SHA256SUMS");
    assert!(
        doc["annotations"]
            .get("cocoonstack.disk.reassemble")
            .is_none()
    );

    s.ok(&[
        "pack",
        "image",
        disk.to_str().unwrap(),
        "--ref",
        "small:2",
        "--name",
        "ubuntu.raw",
        "--no-sha256sums",
    ]);
    let doc = s.json(&["inspect", "small:2"])["manifest"].clone();
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(title(&layers[0]), "ubuntu.raw");
    let target = s.path("out");
    s.ok(&["unpack", "small:2", target.to_str().unwrap()]);
    cmp(&disk, &target.join("ubuntu.raw"));

    let err = s.fails(
        2,
        &[
            "pack",
            "image",
            disk.to_str().unwrap(),
            "--ref",
            "x:1",
            "--name",
            "../evil",
        ],
    );
    assert!(err.contains("refusing file name"), "{err}");
}

#[test]
fn windows_images_use_the_legacy_media_types() {
    let s = Store::new();
    let disk = s.path("win.raw");
    sparse_raw(&disk, 3 << 20, &[(0, 4096)]);
    s.ok(&[
        "pack",
        "image",
        disk.to_str().unwrap(),
        "--ref",
        "win:1",
        "--windows",
        "--part-size",
        "1MiB",
    ]);
    let doc = s.json(&["inspect", "win:1"])["manifest"].clone();
    let disks = disk_layers(&doc);
    assert_eq!(disks.len(), 3);
    assert!(
        disks
            .iter()
            .all(|l| l["mediaType"] == "application/vnd.cocoonstack.windows.disk.raw.part")
    );
    s.ok(&[
        "pack",
        "image",
        disk.to_str().unwrap(),
        "--ref",
        "win:2",
        "--windows",
    ]);
    let doc = s.json(&["inspect", "win:2"])["manifest"].clone();
    assert_eq!(
        doc["layers"][0]["mediaType"],
        "application/vnd.cocoonstack.windows.disk.raw"
    );
    let target = s.path("out");
    s.ok(&["unpack", "win:1", target.to_str().unwrap()]);
    cmp(&disk, &target.join("win.raw"));
}

#[test]
fn unpack_refuses_existing_files_and_what_it_cannot_unpack() {
    let s = Store::new();
    let disk = s.file("d.raw", &bytes(300_000, 4));
    s.ok(&[
        "pack",
        "image",
        disk.to_str().unwrap(),
        "--ref",
        "d:1",
        "--part-size",
        "100000",
    ]);
    let target = s.path("out");
    s.ok(&["unpack", "d:1", target.to_str().unwrap()]);
    std::fs::write(target.join("d.raw"), b"mine").unwrap();
    let err = s.fails(2, &["unpack", "d:1", target.to_str().unwrap()]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(target.join("d.raw")).unwrap(), b"mine");
    s.ok(&["unpack", "--force", "d:1", target.to_str().unwrap()]);
    cmp(&disk, &target.join("d.raw"));

    s.add("files:1", &[("a.txt", b"hello")]);
    let err = s.fails(2, &["unpack", "files:1", s.path("o2").to_str().unwrap()]);
    assert!(
        err.contains("unknown") && err.contains("snapshots") && err.contains("OS images"),
        "{err}"
    );
    assert!(!s.path("o2").exists());
}

/// Stores an os-image manifest over hand-made layers `(media type, title, content)`.
fn craft(s: &Store, artifact_type: &str, layers: &[(&str, &str, &[u8])]) {
    let empty = s.put_raw(b"{}");
    let layers: Vec<Value> = layers
        .iter()
        .map(|(mt, t, data)| {
            json!({"mediaType": mt, "digest": s.put_raw(data), "size": data.len(),
                   "annotations": {TITLE: t}})
        })
        .collect();
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": layers,
    }))
    .unwrap();
    s.root_doc("img:1", OCI_MANIFEST, &m);
}

const OS: &str = "application/vnd.cocoonstack.os-image.v1+json";
const PART: &str = "application/vnd.cocoonstack.disk.qcow2.part";
const QCOW2: &str = "application/vnd.cocoonstack.disk.qcow2";

fn unpack_fails(s: &Store, out: &PathBuf) -> String {
    let err = s.fails(2, &["unpack", "img:1", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_dir(out).map(|d| d.count()).unwrap_or(0),
        0,
        "nothing written"
    );
    err
}

#[test]
fn hostile_and_inconsistent_titles_are_refused_before_anything_is_written() {
    let s = Store::new();
    let out = s.path("out");
    for t in ["../x", "/abs", "a/b", "..", ""] {
        craft(&s, OS, &[(QCOW2, t, b"evil")]);
        let err = unpack_fails(&s, &out);
        assert!(err.contains("refusing file name"), "{t:?}: {err}");
    }
    for t in [
        "../x.00.qcow2.part",
        "/abs.00.qcow2.part",
        "a/b.00.qcow2.part",
    ] {
        craft(&s, OS, &[(PART, t, b"evil")]);
        let err = unpack_fails(&s, &out);
        assert!(err.contains("refusing file name"), "{t:?}: {err}");
    }
    assert!(!s.path("x").exists() && !Path::new("/abs").exists());

    // A missing part, parts of two files, a part title that is not one.
    for titles in [
        &["w.qcow2.00.qcow2.part", "w.qcow2.02.qcow2.part"][..],
        &["w.qcow2.00.qcow2.part", "v.qcow2.01.qcow2.part"],
        &["w.qcow2.00.qcow2.part", "w.qcow2"],
    ] {
        let layers: Vec<(&str, &str, &[u8])> =
            titles.iter().map(|t| (PART, *t, &b"part"[..])).collect();
        craft(&s, OS, &layers);
        let err = unpack_fails(&s, &out);
        assert!(err.contains("part"), "{titles:?}: {err}");
    }
    // No disk layer at all.
    craft(&s, OS, &[("text/plain", "SHA256SUMS", b"x")]);
    let err = unpack_fails(&s, &out);
    assert!(err.contains("no disk layers"), "{err}");
}

#[test]
fn a_legacy_windows_image_joins_in_title_order() {
    let s = Store::new();
    craft(
        &s,
        "application/vnd.cocoonstack.windows-image.v1+json",
        &[
            ("text/plain", "SHA256SUMS", b"ignored"),
            (
                "application/vnd.cocoonstack.windows.disk.qcow2.part",
                "w.qcow2.01.qcow2.part",
                b"world",
            ),
            (PART, "w.qcow2.00.qcow2.part", b"hello "),
        ],
    );
    let out = s.path("out");
    s.ok(&["unpack", "img:1", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("w.qcow2")).unwrap(), b"hello world");
}
