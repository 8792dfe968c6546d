//! Tests: interop. The real peers (skopeo, umoci, oci-image-tool) read what
//! we write and write what we read; hand-built layouts with Docker media types,
//! nested indexes and referrers survive our gc.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::util::{Store, bytes, have_tool, sh};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

// ---------------------------------------------------------------- helpers

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `oci:DIR:REF`, skopeo's OCI transport syntax.
fn oci(dir: &Path, r: &str) -> String {
    format!("oci:{}:{r}", dir.display())
}

/// `skopeo inspect --raw oci:DIR:REF`, whatever the exit code.
fn skopeo_raw(dir: &Path, r: &str) -> Output {
    Command::new("skopeo")
        .args(["inspect", "--raw", &oci(dir, r)])
        .output()
        .expect("run skopeo")
}

/// `skopeo inspect --raw`, asserting success; the raw manifest bytes.
fn skopeo_raw_ok(dir: &Path, r: &str) -> Vec<u8> {
    let out = skopeo_raw(dir, r);
    assert!(
        out.status.success(),
        "skopeo inspect --raw {}: {:?}\nstderr: {}",
        oci(dir, r),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `epoch-store cat TARGET`, asserting exit 0; the raw bytes (may be binary).
fn cat(s: &Store, target: &str) -> Vec<u8> {
    let out = s.run(&["cat", target]);
    assert!(
        out.status.success(),
        "epoch-store cat {target} in {}: {:?}\nstderr: {}",
        s.layout.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `epoch-store verify --json`, asserting exit 0 and no problems; the report.
fn assert_verify_clean(s: &Store) -> Value {
    let out = s.run(&["--json", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify of {} is not clean:\nstdout: {stdout}\nstderr: {}",
        s.layout.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).expect("verify --json prints JSON");
    assert_eq!(v["problems"], json!([]), "verify problems: {v:#}");
    v
}

/// Every blob under `blobs/sha256/` as `sha256:<hex>` with its bytes.
fn blobs(layout: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = layout.join("blobs").join("sha256");
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&dir).expect("read blobs/sha256") {
        let e = e.unwrap();
        let name = e.file_name().into_string().expect("UTF-8 blob name");
        out.insert(format!("sha256:{name}"), std::fs::read(e.path()).unwrap());
    }
    out
}

fn blob_names(layout: &Path) -> BTreeSet<String> {
    blobs(layout).into_keys().collect()
}

/// Builds a small container image with umoci: `init`, `new --image L:base`,
/// and one `insert` of a directory of files at `/data`. The insert leaves the
/// pre-insert manifest and config behind, unreferenced.
fn umoci_image(s: &Store) {
    let l = s.layout.to_str().unwrap();
    sh(Command::new("umoci").args(["init", "--layout", l]));
    sh(Command::new("umoci").args(["new", "--image", &format!("{l}:base")]));
    let src = s.path("rootfs-src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello from umoci\n").unwrap();
    std::fs::write(src.join("sub").join("data.bin"), bytes(48 * 1024, 7)).unwrap();
    sh(Command::new("umoci").args([
        "insert",
        "--rootless",
        "--image",
        &format!("{l}:base"),
        src.to_str().unwrap(),
        "/data",
    ]));
}

/// The rows of `epoch-store ls --json`.
fn ls(s: &Store) -> Vec<Value> {
    s.json(&["ls"])
        .as_array()
        .expect("ls --json is an array")
        .clone()
}

/// Builds layouts by hand: blobs written straight into `blobs/sha256/`.
struct Hand {
    layout: PathBuf,
    /// Every blob written, by digest.
    written: BTreeMap<String, Vec<u8>>,
}

impl Hand {
    fn new(layout: &Path) -> Hand {
        Hand {
            layout: layout.to_path_buf(),
            written: BTreeMap::new(),
        }
    }

    /// Writes a blob and returns its descriptor.
    fn blob(&mut self, media_type: &str, data: &[u8]) -> Value {
        let hex = sha256_hex(data);
        let dir = self.layout.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&hex), data).unwrap();
        let digest = format!("sha256:{hex}");
        self.written.insert(digest.clone(), data.to_vec());
        json!({ "mediaType": media_type, "digest": digest, "size": data.len() })
    }

    /// Writes a JSON document (compact) as a blob; returns its descriptor.
    fn doc(&mut self, media_type: &str, v: &Value) -> Value {
        self.blob(media_type, &serde_json::to_vec(v).unwrap())
    }

    /// Writes `index.json` with these entries (and an extra top-level
    /// annotation, which a reader must keep).
    fn index(&self, entries: Vec<Value>) -> Vec<u8> {
        let idx = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
            "annotations": { "com.example.written-by": "interop test" },
        });
        let raw = serde_json::to_vec_pretty(&idx).unwrap();
        std::fs::write(self.layout.join("index.json"), &raw).unwrap();
        raw
    }
}

fn digest_of(desc: &Value) -> String {
    desc["digest"].as_str().unwrap().to_string()
}

fn tagged(desc: &Value, name: &str) -> Value {
    let mut d = desc.clone();
    d["annotations"] = json!({ REF_NAME: name });
    d
}

/// Sets the mtime of every file under `blobs/` to `age` ago.
fn age_blobs(layout: &Path, age: Duration) {
    let when = SystemTime::now() - age;
    let dir = layout.join("blobs").join("sha256");
    for e in std::fs::read_dir(dir).unwrap() {
        let f = std::fs::File::options()
            .write(true)
            .open(e.unwrap().path())
            .unwrap();
        f.set_modified(when).unwrap();
    }
}

// ---------------------------------------------------------------- tests

/// What `add` writes, skopeo reads byte for byte; skopeo follows our tag and
/// untag; `skopeo copy` out of our layout (after our gc) yields a layout we
/// verify clean with identical blobs.
#[test]
fn skopeo_reads_our_artifacts_and_follows_tag_untag_and_copy() {
    if !have_tool("skopeo") {
        return;
    }
    let s = Store::new();
    let disk = bytes(1 << 20, 1);
    let cfg = br#"{"cpu":2,"memory":1073741824}"#;
    let digest = s.add("a:1", &[("disk.qcow2", &disk), ("config.json", cfg)]);

    let ours = cat(&s, "a:1");
    assert_eq!(format!("sha256:{}", sha256_hex(&ours)), digest);
    let theirs = skopeo_raw_ok(&s.layout, "a:1");
    assert_eq!(
        String::from_utf8_lossy(&theirs),
        String::from_utf8_lossy(&ours),
        "skopeo reads other manifest bytes than epoch-store cat"
    );
    assert_eq!(theirs, ours);

    s.ok(&["tag", "a:1", "b:2"]);
    s.ok(&["untag", "a:1"]);
    assert_eq!(skopeo_raw_ok(&s.layout, "b:2"), ours);
    let gone = skopeo_raw(&s.layout, "a:1");
    assert!(
        !gone.status.success(),
        "skopeo still reads a:1 after untag: {}",
        String::from_utf8_lossy(&gone.stdout)
    );
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("a:1"),
        "skopeo failed for another reason: {}",
        String::from_utf8_lossy(&gone.stderr)
    );

    // Our gc must not take anything b:2 needs away from skopeo.
    s.ok(&["gc", "--grace", "0s"]);
    assert_eq!(skopeo_raw_ok(&s.layout, "b:2"), ours);

    let other = Store::empty();
    sh(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &oci(&s.layout, "b:2"),
        &oci(&other.layout, "b:2"),
    ]));
    let v = assert_verify_clean(&other);
    assert_eq!(v["roots"], 1, "{v:#}");
    // manifest, empty config, two layers
    assert_eq!(v["blobsChecked"], 4, "{v:#}");
    assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
    assert_eq!(cat(&other, "b:2"), ours);
    assert_eq!(cat(&other, &digest), ours);
    let m: Value = serde_json::from_slice(&ours).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for l in layers {
        let want: &[u8] = match l["annotations"]["org.opencontainers.image.title"].as_str() {
            Some("disk.qcow2") => &disk,
            Some("config.json") => cfg,
            t => panic!("unexpected layer title {t:?}"),
        };
        assert_eq!(cat(&other, l["digest"].as_str().unwrap()), want);
    }
    // Whatever skopeo wrote, the blobs are the ones we wrote.
    let src = blobs(&s.layout);
    for (d, data) in blobs(&other.layout) {
        assert_eq!(
            src.get(&d),
            Some(&data),
            "skopeo's copy has a blob we lack: {d}"
        );
    }
}

/// A umoci image, retagged and untagged by us, still validates with
/// oci-image-tool under its new name (and no longer under the old one); umoci
/// sees only the new tag; we verify it clean and classify it as a container
/// image.
#[test]
fn oci_image_tool_validates_umoci_image_after_our_tag_and_untag() {
    if !have_tool("umoci") || !have_tool("oci-image-tool") {
        return;
    }
    let s = Store::empty();
    umoci_image(&s);
    let l = s.layout.to_str().unwrap();
    let validate = |r: &str| {
        Command::new("oci-image-tool")
            .args([
                "validate",
                "--type",
                "image",
                "--ref",
                &format!("name={r}"),
                l,
            ])
            .output()
            .expect("run oci-image-tool")
    };
    let before = validate("base");
    assert!(
        before.status.success(),
        "umoci's own image does not validate: {}{}",
        String::from_utf8_lossy(&before.stdout),
        String::from_utf8_lossy(&before.stderr)
    );
    let manifest = cat(&s, "base");

    s.ok(&["tag", "base", "v2"]);
    s.ok(&["untag", "base"]);

    let after = validate("v2");
    assert!(
        after.status.success(),
        "oci-image-tool rejects the layout after our tag/untag: {}{}\nindex.json: {}",
        String::from_utf8_lossy(&after.stdout),
        String::from_utf8_lossy(&after.stderr),
        std::fs::read_to_string(s.layout.join("index.json")).unwrap()
    );
    assert!(
        !validate("base").status.success(),
        "oci-image-tool still finds the untagged ref base"
    );
    assert_eq!(
        sh(Command::new("umoci").args(["ls", "--layout", l])).trim(),
        "v2"
    );
    sh(Command::new("umoci").args(["stat", "--image", &format!("{l}:v2")]));

    assert_verify_clean(&s);
    assert_eq!(cat(&s, "v2"), manifest);
    let rows = ls(&s);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["ref"], "v2");
    assert_eq!(rows[0]["kind"], "container-image", "{rows:#?}");
    assert_eq!(
        rows[0]["digest"].as_str().unwrap(),
        format!("sha256:{}", sha256_hex(&manifest))
    );
}

/// Layouts written by umoci and by `skopeo copy` (OCI and Docker v2s2 media
/// types) verify clean, every blob checked, and read back byte for byte.
#[test]
fn layouts_from_umoci_and_skopeo_copy_verify_clean() {
    if !have_tool("umoci") || !have_tool("skopeo") {
        return;
    }
    let u = Store::empty();
    umoci_image(&u);
    let v = assert_verify_clean(&u);
    assert_eq!(v["roots"], 1, "{v:#}");
    assert_eq!(
        v["blobsChecked"].as_u64().unwrap() as usize,
        blob_names(&u.layout).len(),
        "verify did not check every blob: {v:#}"
    );
    let rows = ls(&u);
    assert_eq!(rows[0]["kind"], "container-image", "{rows:#?}");

    let oci_copy = Store::empty();
    sh(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &oci(&u.layout, "base"),
        &oci(&oci_copy.layout, "img"),
    ]));
    let docker_copy = Store::empty();
    sh(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--format",
        "v2s2",
        &oci(&u.layout, "base"),
        &oci(&docker_copy.layout, "img"),
    ]));
    for (s, media_type) in [(&oci_copy, OCI_MANIFEST), (&docker_copy, DOCKER_MANIFEST)] {
        let v = assert_verify_clean(s);
        assert_eq!(v["roots"], 1, "{v:#}");
        // manifest, config, one layer
        assert_eq!(v["blobsChecked"], 3, "{v:#}");
        assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
        let rows = ls(s);
        assert_eq!(rows.len(), 1, "{rows:#?}");
        assert_eq!(rows[0]["ref"], "img");
        assert_eq!(rows[0]["mediaType"], media_type, "{rows:#?}");
        assert_eq!(rows[0]["kind"], "container-image", "{rows:#?}");
        let raw = cat(s, "img");
        assert_eq!(
            rows[0]["digest"].as_str().unwrap(),
            format!("sha256:{}", sha256_hex(&raw))
        );
        // skopeo 1.9's oci: reader only finds index.json entries with OCI
        // media types, so it cannot read back its own v2s2 copy; compare the
        // OCI one only.
        if media_type == OCI_MANIFEST {
            assert_eq!(raw, skopeo_raw_ok(&s.layout, "img"));
        }
        let m: Value = serde_json::from_slice(&raw).unwrap();
        // umoci's OCI manifests omit the optional mediaType; Docker's carry it.
        if media_type == DOCKER_MANIFEST {
            assert_eq!(m["mediaType"], DOCKER_MANIFEST);
        } else {
            assert!(m["mediaType"].is_null() || m["mediaType"] == OCI_MANIFEST);
        }
        for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
            let data = cat(s, d["digest"].as_str().unwrap());
            assert_eq!(data.len() as u64, d["size"].as_u64().unwrap());
        }
    }
}

/// `umoci gc` on a layout holding our artifacts and our `.epoch-store/` dir
/// works, removes exactly what our gc would, and leaves our refs readable.
#[test]
fn umoci_gc_keeps_our_artifacts_and_private_dir() {
    if !have_tool("umoci") {
        return;
    }
    let s = Store::empty();
    umoci_image(&s);
    let memory = bytes(256 * 1024, 11);
    let digest = s.add(
        "art:1",
        &[("memory-ranges", &memory), ("state.json", b"{}")],
    );
    let loose = s.file("notes.txt", b"untagged but rooted\n");
    let untagged: Value = s.json(&["add", loose.to_str().unwrap()]);
    let untagged = untagged["digest"].as_str().unwrap().to_string();
    s.ok(&["tag", "art:1", "art:latest"]);
    assert!(
        s.layout.join(".epoch-store").is_dir(),
        "no private dir to test with"
    );
    let private_before = crate::util::snapshot_dir(&s.layout.join(".epoch-store"));

    let art = cat(&s, "art:1");
    let loose_manifest = cat(&s, &untagged);
    let before = blobs(&s.layout);
    let plan = s.json(&["gc", "--dry-run", "--grace", "0s"]);
    let ours: BTreeSet<String> = plan["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["digest"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !ours.is_empty(),
        "umoci insert left no garbage to collect: {plan:#}"
    );

    sh(Command::new("umoci").args(["gc", "--layout", s.layout.to_str().unwrap()]));

    let after = blobs(&s.layout);
    let removed: BTreeSet<String> = before
        .keys()
        .filter(|d| !after.contains_key(*d))
        .cloned()
        .collect();
    assert_eq!(
        removed, ours,
        "umoci gc and our gc disagree on what is garbage"
    );
    for (d, data) in &after {
        assert_eq!(before.get(d), Some(data), "umoci changed blob {d}");
    }
    assert_eq!(
        crate::util::snapshot_dir(&s.layout.join(".epoch-store")),
        private_before,
        "umoci gc touched .epoch-store/"
    );

    let v = assert_verify_clean(&s);
    assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
    assert_eq!(v["roots"], 4, "{v:#}");
    assert_eq!(cat(&s, "art:1"), art);
    assert_eq!(cat(&s, "art:latest"), art);
    assert_eq!(cat(&s, &digest), art);
    assert_eq!(cat(&s, &untagged), loose_manifest);
    let m: Value = serde_json::from_slice(&art).unwrap();
    let layer = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["annotations"]["org.opencontainers.image.title"] == "memory-ranges")
        .expect("memory-ranges layer");
    assert_eq!(cat(&s, layer["digest"].as_str().unwrap()), memory);
    // umoci's own image survived too.
    sh(Command::new("umoci").args(["stat", "--image", &format!("{}:base", s.layout.display())]));
    // And we still can write after umoci gc.
    s.add("art:2", &[("after.txt", b"after umoci gc")]);
    assert_verify_clean(&s);
}

/// A hand-built layout with a Docker manifest list, a 3-deep nested OCI index,
/// a referrer listed untagged, and junk. gc --dry-run names exactly the junk;
/// gc removes exactly the junk; every reachable blob keeps its bytes;
/// index.json is untouched; verify stays clean.
#[test]
fn gc_keeps_docker_types_nested_indexes_and_referrers() {
    let s = Store::new();
    let mut h = Hand::new(&s.layout);
    let empty = h.blob(OCI_EMPTY, b"{}");

    // (a) Docker list -> two Docker manifests -> Docker config + layer each.
    let mut docker_manifests = vec![];
    for (arch, seed) in [("amd64", 100), ("arm64", 200)] {
        let layer = h.blob(DOCKER_LAYER, &bytes(20 * 1024, seed));
        let config = h.doc(
            DOCKER_CONFIG,
            &json!({
                "architecture": arch,
                "os": "linux",
                "config": { "Cmd": ["/bin/sh"] },
                "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", "ab".repeat(32))] },
            }),
        );
        let mut m = h.doc(
            DOCKER_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": config,
                "layers": [layer],
            }),
        );
        m["platform"] = json!({ "architecture": arch, "os": "linux" });
        docker_manifests.push(m);
    }
    let docker_list = h.doc(
        DOCKER_LIST,
        &json!({ "schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": docker_manifests }),
    );

    // (b) OCI index -> index -> index -> manifest -> config + two layers.
    let deep_config = h.doc(
        OCI_CONFIG,
        &json!({ "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": [] } }),
    );
    let deep_layers = vec![
        h.blob(OCI_LAYER, &bytes(30 * 1024, 300)),
        h.blob(OCI_LAYER, &bytes(10 * 1024, 301)),
    ];
    let deep_manifest = h.doc(
        OCI_MANIFEST,
        &json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": deep_config, "layers": deep_layers }),
    );
    let mut inner = deep_manifest.clone();
    for level in 0..3 {
        inner = h.doc(
            OCI_INDEX,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [inner],
                "annotations": { "com.example.level": level.to_string() },
            }),
        );
    }
    let nested = inner;

    // (c) a tagged image and an untagged referrer whose subject it is.
    let base_config = h.doc(
        OCI_CONFIG,
        &json!({ "architecture": "arm64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": [] } }),
    );
    let base_layer = h.blob(OCI_LAYER, &bytes(8 * 1024, 400));
    let base = h.doc(
        OCI_MANIFEST,
        &json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": base_config, "layers": [base_layer] }),
    );
    let sbom = h.blob("application/spdx+json", br#"{"spdxVersion":"SPDX-2.3"}"#);
    let mut referrer = h.doc(
        OCI_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": empty,
            "layers": [sbom],
            "subject": base,
        }),
    );
    referrer["artifactType"] = json!("application/spdx+json");
    let reachable = h.written.clone();

    // (d) junk: loose bytes, and an unreferenced manifest whose config is a
    // live blob and whose layer is junk too.
    let junk_layer = h.blob(OCI_LAYER, &bytes(12 * 1024, 500));
    let junk_bytes = h.blob("application/octet-stream", &bytes(5000, 501));
    let junk_manifest = h.doc(
        OCI_MANIFEST,
        &json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": base_config, "layers": [junk_layer] }),
    );
    let junk: BTreeSet<String> = [&junk_layer, &junk_bytes, &junk_manifest]
        .into_iter()
        .map(digest_of)
        .collect();
    assert_eq!(reachable.len() + junk.len(), h.written.len());

    let mut docker_entry = tagged(&docker_list, "docker/list:1");
    docker_entry["com.example.unknown-field"] = json!(true);
    let index_raw = h.index(vec![
        docker_entry,
        tagged(&nested, "nested:3"),
        tagged(&base, "base:1"),
        referrer.clone(),
    ]);
    age_blobs(&s.layout, Duration::from_secs(2 * 24 * 3600));
    assert_eq!(
        blobs(&s.layout),
        h.written,
        "the layout holds what the test wrote"
    );

    let v = assert_verify_clean(&s);
    assert_eq!(v["roots"], 4, "{v:#}");
    assert_eq!(v["unreferencedBlobs"], junk.len(), "{v:#}");
    let kinds: BTreeMap<String, String> = ls(&s)
        .iter()
        .map(|r| {
            (
                r["digest"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(kinds[&digest_of(&docker_list)], "image-index");
    assert_eq!(kinds[&digest_of(&nested)], "image-index");
    assert_eq!(kinds[&digest_of(&base)], "container-image");
    assert_eq!(kinds[&digest_of(&referrer)], "unknown");

    let snapshot = s.snapshot();
    let plan = s.json(&["gc", "--dry-run", "--grace", "0s"]);
    let planned: BTreeSet<String> = plan["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned, junk, "gc --dry-run plan: {plan:#}");
    assert_eq!(plan["reachableBlobs"], reachable.len(), "{plan:#}");
    assert_eq!(plan["tempFiles"], json!([]), "{plan:#}");
    assert_eq!(s.snapshot(), snapshot, "gc --dry-run changed the layout");

    s.ok(&["gc", "--grace", "0s"]);
    let left = blobs(&s.layout);
    for d in &junk {
        assert!(!left.contains_key(d), "gc kept junk blob {d}");
    }
    for (d, data) in &reachable {
        assert_eq!(
            left.get(d),
            Some(data),
            "gc removed or changed reachable blob {d}"
        );
    }
    assert_eq!(left.len(), reachable.len());
    assert_eq!(
        std::fs::read(s.layout.join("index.json")).unwrap(),
        index_raw,
        "gc rewrote index.json"
    );
    let v = assert_verify_clean(&s);
    assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
    assert_eq!(v["blobsChecked"], reachable.len(), "{v:#}");
    // A second gc finds nothing more.
    let plan = s.json(&["gc", "--dry-run", "--grace", "0s"]);
    assert_eq!(plan["blobs"], json!([]), "{plan:#}");
}

/// Tagging a manifest by digest gives skopeo a ref it reads byte for byte:
/// an untagged root added by us, and a manifest only reachable inside an
/// index (not in index.json at all).
#[test]
fn skopeo_reads_a_manifest_we_tagged_by_digest() {
    if !have_tool("skopeo") {
        return;
    }
    let s = Store::new();
    let f = s.file("payload.bin", &bytes(70 * 1024, 42));
    let added = s.json(&["add", f.to_str().unwrap()]);
    let digest = added["digest"].as_str().unwrap().to_string();
    assert_eq!(added["ref"], Value::Null);
    let raw = cat(&s, &digest);

    s.ok(&["tag", &digest, "x:1"]);
    assert_eq!(skopeo_raw_ok(&s.layout, "x:1"), raw);

    // The index.json entry we wrote describes the blob exactly.
    let index: Value =
        serde_json::from_slice(&std::fs::read(s.layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"][REF_NAME] == "x:1")
        .expect("an entry for x:1");
    assert_eq!(entry["digest"], digest);
    assert_eq!(entry["size"], raw.len());
    assert_eq!(entry["mediaType"], OCI_MANIFEST);

    // A child manifest of an index, absent from index.json.
    let mut h = Hand::new(&s.layout);
    let config = h.doc(
        OCI_CONFIG,
        &json!({ "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": [] } }),
    );
    let layer = h.blob(OCI_LAYER, &bytes(4096, 43));
    let child = h.doc(
        OCI_MANIFEST,
        &json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer] }),
    );
    let child_raw = h.written[&digest_of(&child)].clone();
    let mut child_entry = child.clone();
    child_entry["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    let idx = h.doc(
        OCI_INDEX,
        &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child_entry] }),
    );
    // Tag the index with our own tool (by digest: it is not in index.json yet).
    s.ok(&["tag", &digest_of(&idx), "idx:1"]);
    s.ok(&["tag", &digest_of(&child), "x:2"]);
    assert_eq!(skopeo_raw_ok(&s.layout, "x:2"), child_raw);
    assert_eq!(cat(&s, "x:2"), child_raw);
    sh(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &oci(&s.layout, "x:2"),
        &oci(&s.path("copy"), "x:2"),
    ]));
    assert_verify_clean(&s);
}
