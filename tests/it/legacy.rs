//! `import-legacy`: a legacy epoch store (catalog.json, manifests/NAME/TAG.json
//! with schemaVersion 1, blobs/sha256/HEX) written here as epoch's push
//! wrote it, converted, unpacked and compared byte for byte; hostile and
//! broken manifests reported and skipped.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Store, bytes, have_tool, sh, sha256};
use serde_json::{Value, json};

/// A legacy store being written.
pub(crate) struct Legacy {
    pub(crate) dir: PathBuf,
}

impl Legacy {
    pub(crate) fn new(dir: PathBuf) -> Legacy {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::create_dir_all(dir.join("manifests")).unwrap();
        Legacy { dir }
    }

    /// Copies `src` in as a blob (holes kept, as `cp --sparse=always`
    /// does) and returns its layer entry.
    pub(crate) fn layer(&self, src: &Path) -> Value {
        let data = fs::read(src).unwrap();
        let hex = sha256(&data).trim_start_matches("sha256:").to_string();
        let dest = self.dir.join("blobs/sha256").join(&hex);
        sh(Command::new("cp")
            .arg("--sparse=always")
            .arg(src)
            .arg(&dest));
        let name = src.file_name().unwrap().to_str().unwrap();
        json!({"digest": hex, "size": data.len(), "filename": name,
               "mediaType": "application/octet-stream"})
    }

    /// Writes `manifests/NAME/TAG.json` (as Go's MarshalIndent would).
    pub(crate) fn manifest(&self, name: &str, tag: &str, m: &Value) {
        let d = self.dir.join("manifests").join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join(format!("{tag}.json")),
            serde_json::to_string_pretty(m).unwrap(),
        )
        .unwrap();
    }

    fn raw_manifest(&self, name: &str, tag: &str, raw: &[u8]) {
        let d = self.dir.join("manifests").join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("{tag}.json")), raw).unwrap();
    }

    pub(crate) fn catalog(&self, refs: &[(&str, &str)]) {
        let mut repos = serde_json::Map::new();
        for (name, tag) in refs {
            let r = repos
                .entry(name.to_string())
                .or_insert_with(|| json!({"tags": {}, "updatedAt": "2026-03-02T00:00:00Z"}));
            r["tags"][*tag] = json!(format!("manifests/{name}/{tag}.json"));
        }
        fs::write(
            self.dir.join("catalog.json"),
            serde_json::to_vec(
                &json!({"repositories": repos, "updatedAt": "2026-03-02T00:00:00Z"}),
            )
            .unwrap(),
        )
        .unwrap();
    }
}

pub(crate) fn snapshot(name: &str, tag: &str, sid: &str, layers: Vec<Value>) -> Value {
    json!({
        "schemaVersion": 1, "name": name, "tag": tag, "snapshotId": sid,
        "image": "ghcr.io/cocoonstack/ubuntu:24.04",
        "cpu": 2, "memory": 1073741824_u64, "storage": 10737418240_u64, "nics": 1,
        "layers": layers,
        "totalSize": 0,
        "createdAt": "2026-03-01T12:34:56.789+08:00", "pushedAt": "2026-03-02T00:00:00Z"
    })
}

/// Original snapshot files in `dir`: a dense memory file, a qcow2 from
/// qemu-img (if installed), a 64 MiB sparse raw disk, config.json, cidata.
pub(crate) fn original_files(dir: &Path, seed: u64) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    let mut out = vec![];
    let mem = dir.join("memory-ranges");
    fs::write(&mem, bytes(3 << 20, seed)).unwrap();
    out.push(mem);
    if have_tool("qemu-img") {
        let q = dir.join("overlay.qcow2");
        sh(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&q)
            .arg("256M"));
        out.push(q);
    }
    let cow = dir.join("cow.raw");
    let f = fs::File::create(&cow).unwrap();
    f.set_len(64 << 20).unwrap();
    f.write_all_at(&bytes(1 << 20, 11), 8 << 20).unwrap();
    f.write_all_at(&bytes(512 << 10, 12), 40 << 20).unwrap();
    out.push(cow);
    let cfg = dir.join("config.json");
    fs::write(
        &cfg,
        br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824}}"#,
    )
    .unwrap();
    out.push(cfg);
    let ci = dir.join("cidata.img");
    fs::write(&ci, bytes(70_000, 13)).unwrap();
    out.push(ci);
    out
}

/// The files unpacked in `got` are `want`'s, byte for byte, holes restored.
fn assert_same_files(want: &[PathBuf], got: &Path) {
    let mut names: Vec<String> = fs::read_dir(got)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = want
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    for w in want {
        let g = got.join(w.file_name().unwrap());
        assert!(
            fs::read(w).unwrap() == fs::read(&g).unwrap(),
            "{w:?} differs"
        );
        let (mw, mg) = (fs::metadata(w).unwrap(), fs::metadata(&g).unwrap());
        assert!(mg.blocks() <= mw.blocks() + 64, "{w:?}: holes restored");
    }
}

#[test]
fn a_legacy_store_converts_byte_for_byte() {
    let s = Store::new();
    let legacy = Legacy::new(s.path("epoch"));
    let v1 = original_files(&s.path("orig-v1"), 1);
    let v2 = original_files(&s.path("orig-v2"), 2); // memory differs, disks the same
    let base = s.file("0123abcd.qcow2", &bytes(10_000, 99));
    let base_layer = legacy.layer(&base);
    let mut m1 = snapshot(
        "sre-bot",
        "v1",
        "sid-1",
        v1.iter().map(|p| legacy.layer(p)).collect(),
    );
    m1["baseImages"] = json!([base_layer]);
    m1["imageBlobIDs"] = json!({"0123abcd": "blobs/sha256/x"});
    legacy.manifest("sre-bot", "v1", &m1);
    let m2 = snapshot(
        "sre-bot",
        "v2",
        "sid-2",
        v2.iter().map(|p| legacy.layer(p)).collect(),
    );
    legacy.manifest("sre-bot", "v2", &m2);
    legacy.catalog(&[("sre-bot", "v1"), ("sre-bot", "v2")]);
    // The source blob of the raw disk is sparse: it must stay so in the layout.
    let cow_hex = m1["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["filename"] == "cow.raw")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let cow_blob = legacy.dir.join("blobs/sha256").join(&cow_hex);
    assert!(
        fs::metadata(&cow_blob).unwrap().blocks() * 512 < 8 << 20,
        "source is sparse"
    );

    let dir = legacy.dir.to_str().unwrap();
    let dry = s.json(&["import-legacy", dir, "--dry-run"]);
    assert_eq!(dry["converted"].as_array().unwrap().len(), 2, "{dry}");
    assert!(
        s.index()["manifests"].as_array().unwrap().is_empty(),
        "dry run writes nothing"
    );

    let out = s.json(&["import-legacy", dir]);
    assert_eq!(out["skipped"], json!([]), "{out}");
    let conv = out["converted"].as_array().unwrap();
    assert_eq!(conv.len(), 2);
    assert_eq!(conv[0]["ref"], "sre-bot:v1");
    assert_eq!(conv[0]["files"].as_array().unwrap().len(), v1.len());
    assert!(conv[0]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(conv[0]["baseImages"][0]["filename"], "0123abcd.qcow2");
    assert!(conv[0]["baseImages"][0]["blob"].is_string(), "{out}");

    for (r, files) in [("sre-bot:v1", &v1), ("sre-bot:v2", &v2)] {
        let target = s.path(&format!("out-{}", r.replace(':', "-")));
        s.ok(&["unpack", r, target.to_str().unwrap()]);
        assert_same_files(files, &target);
        if have_tool("qemu-img") {
            sh(Command::new("qemu-img")
                .arg("compare")
                .arg(&files[1])
                .arg(target.join("overlay.qcow2")));
        }
    }
    let info = s.json(&["inspect", "sre-bot:v1"]);
    let c = &info["snapshotConfig"];
    assert_eq!(c["snapshotId"], "sid-1", "{info}");
    assert_eq!(c["cpu"], 2);
    assert_eq!(c["memory"], 1073741824_u64);
    assert_eq!(c["storage"], 10737418240_u64);
    assert_eq!(c["nics"], 1);
    assert_eq!(c["image"], "ghcr.io/cocoonstack/ubuntu:24.04");
    assert_eq!(c["createdAt"], "2026-03-01T12:34:56.789+08:00");
    assert_eq!(c["imageBlobIds"], json!({"0123abcd": {}}));
    assert_eq!(c["epochLegacy"]["path"], "manifests/sre-bot/v1.json");
    assert_eq!(c["epochLegacy"]["manifest"]["baseImages"][0], base_layer);
    assert_eq!(
        c["epochLegacy"]["manifest"]["pushedAt"],
        "2026-03-02T00:00:00Z"
    );
    assert_eq!(info["annotations"]["cocoonstack.snapshot.id"], "sid-1");
    let text = s.ok(&["inspect", "sre-bot:v1"]);
    assert!(text.contains("sid-1") && text.contains("2 vCPU"), "{text}");
    // The shared disks are stored once; the holes of cow.raw are not stored.
    let ls = s.json(&["ls"]);
    for e in ls.as_array().unwrap() {
        assert_eq!(e["kind"], "snapshot");
        assert!(
            e["size"].as_u64().unwrap() < 8 << 20,
            "holes not stored: {e}"
        );
    }
    s.ok(&["verify"]);

    // Again: recognised as already imported, nothing copied, same digests.
    let again = s.json(&["import-legacy", dir]);
    assert_eq!(again["converted"][0]["unchanged"], true, "{again}");
    assert_eq!(again["converted"][0]["digest"], conv[0]["digest"]);

    // Small chunks: v2, files cut, still byte for byte.
    let chunked = s.json(&[
        "import-legacy",
        dir,
        "--ref-prefix",
        "chunked/",
        "--chunk-size",
        "1MiB",
    ]);
    assert_eq!(chunked["converted"][1]["ref"], "chunked/sre-bot:v2");
    let info = s.json(&["inspect", "chunked/sre-bot:v2"]);
    assert_eq!(
        info["artifactType"],
        "application/vnd.cocoonstack.snapshot.v2+json"
    );
    let mem = info["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "memory-ranges")
        .unwrap();
    assert_eq!(mem["chunks"], 3, "{info}");
    let target = s.path("out-chunked");
    s.ok(&["unpack", "chunked/sre-bot:v2", target.to_str().unwrap()]);
    assert_same_files(&v2, &target);
    s.ok(&["verify"]);
}

#[test]
fn hostile_and_broken_manifests_are_reported_and_skipped() {
    let s = Store::new();
    let legacy = Legacy::new(s.path("epoch"));
    let files = s.path("files");
    fs::create_dir_all(&files).unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = files.join(name);
        fs::write(&p, data).unwrap();
        p
    };
    let mem = legacy.layer(&file("memory-ranges", &bytes(200_000, 1)));
    let cfg = legacy.layer(&file("config.json", b"{}"));
    let good = snapshot("good", "1", "sid-good", vec![mem.clone(), cfg.clone()]);
    legacy.manifest("good", "1", &good);
    legacy.manifest(
        "good",
        "2",
        &snapshot("good", "2", "sid-2", vec![cfg.clone()]),
    );

    let renamed = |name: &str| {
        let mut l = mem.clone();
        l["filename"] = json!(name);
        l
    };
    legacy.manifest(
        "bad",
        "dotdot",
        &snapshot("bad", "dotdot", "x", vec![renamed("../escape")]),
    );
    legacy.manifest(
        "bad",
        "abs",
        &snapshot("bad", "abs", "x", vec![renamed("/etc/passwd")]),
    );
    legacy.manifest(
        "bad",
        "slash",
        &snapshot("bad", "slash", "x", vec![renamed("a/b")]),
    );
    legacy.manifest(
        "bad",
        "dup",
        &snapshot("bad", "dup", "x", vec![mem.clone(), mem.clone()]),
    );
    // A blob whose content does not match its name.
    let damaged = legacy.layer(&file("cidata.img", &bytes(5000, 7)));
    let hex = damaged["digest"].as_str().unwrap();
    let mut wrong = bytes(5000, 7);
    wrong[100] ^= 1;
    fs::write(legacy.dir.join("blobs/sha256").join(hex), &wrong).unwrap();
    legacy.manifest(
        "bad",
        "mismatch",
        &snapshot("bad", "mismatch", "x", vec![cfg.clone(), damaged]),
    );
    let mut missing = cfg.clone();
    missing["digest"] = json!("ab".repeat(32));
    legacy.manifest(
        "bad",
        "missing",
        &snapshot("bad", "missing", "x", vec![missing]),
    );
    let mut size = cfg.clone();
    size["size"] = json!(3);
    legacy.manifest("bad", "size", &snapshot("bad", "size", "x", vec![size]));
    legacy.raw_manifest("bad", "json", b"{\"schemaVersion\": 1, \"layers\": [");
    legacy.manifest(
        "bad",
        "oci",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {}, "layers": []}),
    );
    legacy.manifest(
        "bad",
        "renamed",
        &snapshot("other", "1", "x", vec![cfg.clone()]),
    );
    legacy.catalog(&[("good", "1"), ("good", "2"), ("bad", "gone")]);
    // A ref that exists with other content.
    s.add("good:2", &[("notes.txt", b"not a snapshot")]);

    let out = s.run(&["--json", "import-legacy", legacy.dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let converted: Vec<&str> = v["converted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ref"].as_str().unwrap())
        .collect();
    assert_eq!(converted, ["good:1"], "{v}");
    let skipped: std::collections::BTreeMap<String, String> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["manifest"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("manifests/bad/abs.json", "absolute"),
        ("manifests/bad/dotdot.json", "climbs out"),
        ("manifests/bad/dup.json", "appears twice"),
        ("manifests/bad/gone.json", "missing"),
        ("manifests/bad/json.json", "not valid JSON"),
        ("manifests/bad/mismatch.json", "digest mismatch"),
        ("manifests/bad/missing.json", "is missing"),
        ("manifests/bad/oci.json", "schemaVersion 2"),
        ("manifests/bad/renamed.json", "stored as"),
        ("manifests/bad/size.json", "size mismatch"),
        ("manifests/bad/slash.json", "path separator"),
        ("manifests/good/2.json", "exists"),
    ];
    assert_eq!(skipped.len(), expect.len(), "{skipped:#?}");
    for (m, why) in expect {
        assert!(
            skipped.get(m).is_some_and(|r| r.contains(why)),
            "{m}: want {why:?} in {:?}",
            skipped.get(m)
        );
    }
    assert!(!s.path("escape").exists() && !s.tmp.path().join("escape").exists());
    s.ok(&["verify"]);
    let target = s.path("out-good");
    s.ok(&["unpack", "good:1", target.to_str().unwrap()]);
    assert_eq!(
        fs::read(target.join("memory-ranges")).unwrap(),
        bytes(200_000, 1)
    );
    // The human report names every skipped manifest on stderr.
    let err = s.fails(2, &["import-legacy", legacy.dir.to_str().unwrap()]);
    assert!(err.contains("skipped manifests/bad/dotdot.json"), "{err}");
    // --force replaces the ref that existed.
    let forced = s.run(&[
        "--json",
        "import-legacy",
        legacy.dir.to_str().unwrap(),
        "--force",
    ]);
    let v: Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert!(
        v["converted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["ref"] == "good:2"),
        "{v}"
    );
    assert_eq!(s.json(&["inspect", "good:2"])["kind"], "snapshot");
    s.ok(&["verify"]);
}

#[test]
fn a_directory_that_is_not_a_legacy_store_is_an_error() {
    let s = Store::new();
    let empty = s.path("empty");
    fs::create_dir(&empty).unwrap();
    let err = s.fails(2, &["import-legacy", empty.to_str().unwrap()]);
    assert!(err.contains("not a legacy epoch store"), "{err}");
    let err = s.fails(2, &["import-legacy", s.path("absent").to_str().unwrap()]);
    assert!(err.contains("absent"), "{err}");
}
