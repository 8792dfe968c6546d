//! What cocoon-common's pull refuses and takes, pinned without it: each case
//! here is one the cocoon oracle (`cocoon_oracle.rs`,
//! `we_refuse_exactly_the_snapshots_cocoon_commons_pull_refuses`) found us
//! disagreeing on (docs/interop.md).

use std::io::Write;

use crate::util::{OCI_INDEX, OCI_MANIFEST, Store, bytes, desc};
use serde_json::{Value, json};

fn manifest_of(s: &Store, r: &str) -> Value {
    serde_json::from_str(&s.ok(&["cat", r])).unwrap()
}

/// Tags `doc` as `name` beside the refs already there.
fn tag_doc(s: &Store, name: &str, media_type: &str, doc: &Value) -> String {
    let raw = serde_json::to_vec(doc).unwrap();
    let d = s.put_raw(&raw);
    let mut e = desc(media_type, &d, raw.len());
    e["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    let mut idx = s.index();
    idx["manifests"].as_array_mut().unwrap().push(e);
    s.set_index(&idx);
    d
}

/// A layout with `base:v1`, `base:chunked` (1 MiB chunks) and `base:zstd`.
fn bases() -> (Store, std::path::PathBuf) {
    let s = Store::new();
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":1},"memory":{"size":536870912}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes((2 << 20) + 16, 1)).unwrap();
    std::fs::write(dir.join("disk.raw"), bytes(3000, 2)).unwrap();
    let d = dir.to_str().unwrap();
    s.ok(&["pack", "snapshot", d, "--ref", "base:v1", "--format", "v1"]);
    s.ok(&[
        "pack",
        "snapshot",
        d,
        "--ref",
        "base:chunked",
        "--chunk-size",
        "1MiB",
    ]);
    s.ok(&[
        "pack",
        "snapshot",
        d,
        "--ref",
        "base:zstd",
        "--compress",
        "zstd",
    ]);
    (s, dir)
}

fn title(l: &Value) -> &str {
    l["annotations"]["org.opencontainers.image.title"]
        .as_str()
        .unwrap_or("")
}

/// `export-tar` and `unpack` of `r` both exit 2 before writing anything,
/// saying `says`.
fn refused_before_a_byte(s: &Store, r: &str, says: &str) {
    let out = s.run(&["export-tar", r]);
    assert_eq!(out.status.code(), Some(2), "{r}: export-tar");
    assert!(
        out.stdout.is_empty(),
        "{r}: {} bytes written",
        out.stdout.len()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says), "{r}: {err}");
    let dir = s.path(&format!("out-{}", r.replace(':', "-")));
    let err = s.fails(2, &["unpack", r, dir.to_str().unwrap()]);
    assert!(err.contains(says), "{r}: {err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{r}: unpack left {left:?}");
}

#[test]
fn layers_cocoon_commons_pull_cannot_decode_are_refused_naming_the_layer() {
    let (s, _) = bases();
    let v1 = manifest_of(&s, "base:v1");
    let mut m = v1.clone();
    m["layers"][0]["mediaType"] = json!("application/vnd.example.unknown");
    let first = title(&v1["layers"][0]).to_string();
    tag_doc(&s, "case:unknown", OCI_MANIFEST, &m);
    refused_before_a_byte(&s, "case:unknown", &format!("layer 0 \"{first}\""));
    refused_before_a_byte(&s, "case:unknown", "application/vnd.example.unknown");
    // Reading tools still show it, and say why it will not unpack.
    let out = s.run(&["inspect", "case:unknown"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("cannot be listed"),
        "{err}"
    );
    let out = s.run(&["ls"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("epoch-store inspect"),
        "{err}"
    );

    let mut m = v1.clone();
    for l in m["layers"].as_array_mut().unwrap() {
        if title(l) == "disk.raw" {
            l["mediaType"] = json!("application/vnd.cocoonstack.disk.raw.part");
        }
    }
    tag_doc(&s, "case:part", OCI_MANIFEST, &m);
    refused_before_a_byte(&s, "case:part", "application/vnd.cocoonstack.disk.raw.part");

    // octet-stream is a type cocoon-common takes: so do we.
    let mut m = v1.clone();
    m["layers"][0]["mediaType"] = json!("application/octet-stream");
    tag_doc(&s, "case:generic", OCI_MANIFEST, &m);
    let out = s.run(&["export-tar", "case:generic"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zstd_layers_and_chunked_files_under_a_v1_marker_are_refused() {
    let (s, _) = bases();
    for (base, r, says) in [
        (
            "base:zstd",
            "case:zstd-v1",
            "is zstd-compressed but the manifest is not marked",
        ),
        (
            "base:chunked",
            "case:chunks-v1",
            "is chunked but the manifest is not marked",
        ),
    ] {
        let mut m = manifest_of(&s, base);
        m["artifactType"] = json!("application/vnd.cocoonstack.snapshot.v1+json");
        tag_doc(&s, r, OCI_MANIFEST, &m);
        refused_before_a_byte(&s, r, says);
        // As marked v2 they are fine.
        let out = s.run(&["export-tar", base]);
        assert!(
            out.status.success(),
            "{base}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn two_plain_layers_with_one_title_are_refused_as_ambiguous() {
    let (s, _) = bases();
    let mut m = manifest_of(&s, "base:v1");
    let layers = m["layers"].as_array_mut().unwrap();
    let copy = layers[0].clone();
    layers.push(copy);
    tag_doc(&s, "case:twice", OCI_MANIFEST, &m);
    refused_before_a_byte(&s, "case:twice", "are both titled");
}

/// An index over `base:chunked` with entries of these platforms.
fn index_over(s: &Store, r: &str, platforms: &[(&str, &str)]) {
    let digest = crate::util::sha256(&s.ok(&["cat", "base:chunked"]).into_bytes());
    let size = std::fs::metadata(s.blob(&digest)).unwrap().len();
    let entries: Vec<Value> = platforms
        .iter()
        .map(|(os, arch)| {
            let mut e = desc(OCI_MANIFEST, &digest, size as usize);
            e["platform"] = json!({"os": os, "architecture": arch});
            e
        })
        .collect();
    let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    tag_doc(s, r, OCI_INDEX, &idx);
}

#[test]
fn a_snapshot_behind_an_index_is_followed_as_cocoon_common_follows_it() {
    let (s, dir) = bases();
    index_over(&s, "multi:v1", &[("linux", "arm64"), ("linux", "amd64")]);
    index_over(&s, "arm:v1", &[("unknown", "unknown"), ("linux", "arm64")]);
    index_over(&s, "none:v1", &[("unknown", "unknown")]);
    let direct = s.run(&["export-tar", "base:chunked", "--name", "multi"]);
    assert!(direct.status.success());

    let via = s.run(&["export-tar", "multi:v1"]);
    assert!(
        via.status.success(),
        "{}",
        String::from_utf8_lossy(&via.stderr)
    );
    assert!(
        via.stdout == direct.stdout,
        "the index's linux/amd64 entry, named after the ref"
    );
    let out = s.path("out");
    s.ok(&["unpack", "multi:v1", out.to_str().unwrap()]);
    for n in ["config.json", "memory-ranges", "disk.raw"] {
        assert!(
            std::fs::read(out.join(n)).unwrap() == std::fs::read(dir.join(n)).unwrap(),
            "{n}"
        );
    }

    // No linux/amd64: the first known architecture, said on stderr.
    let arm = s.run(&["export-tar", "arm:v1"]);
    assert!(
        arm.status.success(),
        "{}",
        String::from_utf8_lossy(&arm.stderr)
    );
    let err = String::from_utf8_lossy(&arm.stderr);
    assert!(
        err.contains("warning") && err.contains("linux/arm64"),
        "{err}"
    );

    // A platform asked for must be there; the refusal lists what is.
    let err = s.fails(2, &["export-tar", "multi:v1", "--platform", "linux/s390x"]);
    assert!(err.contains("linux/arm64, linux/amd64"), "{err}");
    let err = s.fails(2, &["export-tar", "none:v1"]);
    assert!(err.contains("unknown/unknown"), "{err}");
    let ok = s.run(&["export-tar", "arm:v1", "--platform", "linux/arm64"]);
    assert!(ok.status.success());
    assert!(!String::from_utf8_lossy(&ok.stderr).contains("warning"));
    let err = s.fails(
        2,
        &["unpack", "multi:v1", "x", "--platform", "linux/amd64/v2/x"],
    );
    assert!(err.contains("OS/ARCH"), "{err}");

    // ls shows an index's platforms.
    let ls = s.json(&["ls"]);
    let row = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ref"] == "multi:v1")
        .unwrap();
    assert_eq!(
        row["platforms"],
        json!(["linux/arm64", "linux/amd64"]),
        "{row}"
    );
    let snap = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ref"] == "base:v1")
        .unwrap();
    assert!(snap.get("platforms").is_none(), "{snap}");
    assert!(
        s.ok(&["ls"])
            .contains("image-index (linux/arm64, linux/amd64)")
    );
    // inspect shows the index, or with --platform the entry.
    let i = s.json(&["inspect", "multi:v1"]);
    assert_eq!(i["kind"], "image-index", "{i}");
    let i = s.json(&["inspect", "multi:v1", "--platform", "linux/amd64"]);
    assert_eq!(i["kind"], "snapshot", "{i}");
}

/// Several frames without a content size (no Go encoder writes them, but
/// any zstd writer may): their lengths are counted by decoding, within
/// cocoon-common's per-chunk bound.
#[test]
fn chunks_whose_frames_all_lack_a_content_size_are_counted() {
    let (s, dir) = bases();
    let mut m = manifest_of(&s, "base:zstd");
    let cfg_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(s.blob(&cfg_digest)).unwrap()).unwrap();
    let data = std::fs::read(dir.join("memory-ranges")).unwrap();
    let mut chunk_layers = vec![];
    let mut digests = vec![];
    for piece in data.chunks(1 << 20) {
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(piece).unwrap();
        let frame = enc.finish().unwrap();
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&frame),
            Ok(None)
        ));
        let d = s.put_raw(&frame);
        let mut l = desc(
            "application/vnd.cocoonstack.vm.memory+zstd",
            &d,
            frame.len(),
        );
        l["annotations"] = json!({"org.opencontainers.image.title": "memory-ranges"});
        chunk_layers.push(l);
        digests.push(d);
    }
    cfg["files"]["memory-ranges"]["chunks"] = json!(digests);
    cfg["files"]["memory-ranges"]["size"] = json!(data.len());
    let cfg_raw = serde_json::to_vec(&cfg).unwrap();
    m["config"]["digest"] = json!(s.put_raw(&cfg_raw));
    m["config"]["size"] = json!(cfg_raw.len());
    let mut layers: Vec<Value> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| title(l) != "memory-ranges")
        .cloned()
        .collect();
    layers.extend(chunk_layers);
    m["layers"] = json!(layers);
    tag_doc(&s, "case:counted", OCI_MANIFEST, &m);
    let out = s.path("out");
    s.ok(&["unpack", "case:counted", out.to_str().unwrap()]);
    assert!(std::fs::read(out.join("memory-ranges")).unwrap() == data);

    // One that decodes past the bound is refused before a byte.
    cfg["files"]["memory-ranges"]["size"] = json!(data.len() - 20);
    let cfg_raw = serde_json::to_vec(&cfg).unwrap();
    m["config"]["digest"] = json!(s.put_raw(&cfg_raw));
    m["config"]["size"] = json!(cfg_raw.len());
    tag_doc(&s, "case:over", OCI_MANIFEST, &m);
    refused_before_a_byte(&s, "case:over", "memory-ranges");
}
