//! Docker archives (`docker save`, skopeo's `docker-archive:`): imported
//! into Docker v2 manifests that match skopeo's own conversion, exported
//! for skopeo (and docker load) to read, the layout of docker save before
//! 25 built by hand, and hostile archives.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::util::{Store, bytes, have_tool, sh, sha256};

mod hostile;

pub(super) const PLAIN: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub(super) const GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Raw tar member (ustar header, body, padding).
pub(super) fn member(out: &mut Vec<u8>, name: &str, kind: u8, body: &[u8], link: &str) {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.as_old_mut().linkflag = [kind];
    h.set_cksum();
    out.extend(h.as_bytes());
    out.extend(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A member list as a tar: (name, type, body, link target).
pub(super) type Members = Vec<(String, u8, Vec<u8>, String)>;

pub(super) fn assemble(list: &Members) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, body, link) in list {
        member(&mut out, name, *kind, body, link);
    }
    out.extend([0u8; 1024]);
    out
}

pub(super) fn file(name: &str, body: &[u8]) -> (String, u8, Vec<u8>, String) {
    (name.to_string(), b'0', body.to_vec(), String::new())
}

/// A layer: a plain tar of one file.
pub(super) fn layer_tar(path: &str, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    member(&mut out, path, b'0', content, "");
    out.extend([0u8; 1024]);
    out
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(data), &mut out).unwrap();
    out
}

pub(super) fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// `epoch-store cat TARGET`: the raw bytes.
pub(super) fn cat(s: &Store, target: &str) -> Vec<u8> {
    let out = s.run(&["cat", target]);
    assert!(out.status.success(), "cat {target}: {out:?}");
    out.stdout
}

pub(super) fn manifest_of(s: &Store, r: &str) -> (Vec<u8>, Value) {
    let raw = cat(s, r);
    let v = serde_json::from_slice(&raw).unwrap();
    (raw, v)
}

/// `verify --json`: exit 0 and no problems.
pub(super) fn assert_verify_clean(s: &Store) {
    let out = s.run(&["--json", "verify"]);
    assert_eq!(out.status.code(), Some(0), "verify: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"], json!([]), "{v:#}");
}

/// The refs in index.json, sorted.
pub(super) fn refs(s: &Store) -> Vec<String> {
    let mut r: Vec<String> = s.index()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    r.sort();
    r
}

/// A small umoci image (a gzip layer) in `s`'s layout, tagged `base`.
fn umoci_image(s: &Store) {
    let l = s.layout.to_str().unwrap();
    sh(Command::new("umoci").args(["init", "--layout", l]));
    sh(Command::new("umoci").args(["new", "--image", &format!("{l}:base")]));
    let src = s.path("rootfs-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello from umoci\n").unwrap();
    std::fs::write(src.join("data.bin"), bytes(16 * 1024, 3)).unwrap();
    sh(Command::new("umoci").args([
        "insert",
        "--rootless",
        "--image",
        &format!("{l}:base"),
        src.to_str().unwrap(),
        "/data",
    ]));
}

fn skopeo(args: &[&str]) -> String {
    sh(Command::new("skopeo").arg("--insecure-policy").args(args))
}

fn dir_file(dir: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(dir.join(hex(digest))).unwrap()
}

// ---------------------------------------------------------------- skopeo

/// skopeo's docker-archive (layers plain, `<id>/layer.tar` symlinks, two
/// tags): our manifest is the one skopeo generates for `dir:` but for the
/// plain layers' media type; config and layers byte-identical; refs in
/// docker's familiar form.
#[test]
fn we_read_skopeos_docker_archives() {
    if !have_tool("skopeo") || !have_tool("umoci") {
        return;
    }
    let src = Store::empty();
    umoci_image(&src);
    let f = src.path("d.tar");
    let oci = format!("oci:{}:base", src.layout.display());
    let dst = format!("docker-archive:{}:docker.io/library/demo:1", f.display());
    skopeo(&[
        "copy",
        "-q",
        "--additional-tag",
        "example.com/team/demo:2",
        &oci,
        &dst,
    ]);
    let d = src.path("dir");
    skopeo(&[
        "copy",
        "-q",
        &format!("docker-archive:{}", f.display()),
        &format!("dir:{}", d.display()),
    ]);
    let theirs = std::fs::read(d.join("manifest.json")).unwrap();
    let s = Store::new();
    s.ok(&["import-archive", f.to_str().unwrap()]);
    assert_eq!(refs(&s), ["demo:1", "example.com/team/demo:2"]);
    let (ours, m) = manifest_of(&s, "demo:1");
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let theirs_text = String::from_utf8(theirs).unwrap();
    assert!(
        theirs_text.contains(GZIP),
        "skopeo labels plain layers gzip: {theirs_text}"
    );
    assert_eq!(
        String::from_utf8(ours.clone()).unwrap(),
        theirs_text.replace(&format!("\"{GZIP}\""), &format!("\"{PLAIN}\"")),
        "our manifest is skopeo's, plain layers typed as plain"
    );
    assert_eq!(cat(&s, "example.com/team/demo:2"), ours);
    let config = m["config"]["digest"].as_str().unwrap();
    assert_eq!(cat(&s, config), dir_file(&d, config));
    for l in m["layers"].as_array().unwrap() {
        let digest = l["digest"].as_str().unwrap();
        assert_eq!(l["mediaType"], PLAIN);
        assert_eq!(cat(&s, digest), dir_file(&d, digest), "layer {digest}");
    }
    assert_verify_clean(&s);
}

/// Our docker archive of an OCI image (gzip layer) and of a Docker v2 one:
/// skopeo reads both (into dir: with the config and layers as ours, the
/// gzip one decompressed as skopeo does, and into oci: with the same
/// diffIDs), and our own import gives back the same config and layers.
#[test]
fn skopeo_reads_our_docker_archives() {
    if !have_tool("skopeo") || !have_tool("umoci") {
        return;
    }
    let s = Store::empty();
    umoci_image(&s);
    // A Docker v2 image too: skopeo's docker-archive of it, imported.
    let d1 = s.path("d1.tar");
    let oci = format!("oci:{}:base", s.layout.display());
    skopeo(&[
        "copy",
        "-q",
        &oci,
        &format!("docker-archive:{}:v2/img:1", d1.display()),
    ]);
    s.ok(&["import-archive", d1.to_str().unwrap()]);
    let f = s.path("ours.tar");
    s.ok(&[
        "export-archive",
        "--format",
        "docker",
        "base",
        "v2/img:1",
        "-o",
        f.to_str().unwrap(),
    ]);
    let list: Value = serde_json::from_slice(&tar_member(&f, "manifest.json")).unwrap();
    assert_eq!(list[0]["RepoTags"], json!(["base:latest"]));
    assert_eq!(list[1]["RepoTags"], json!(["v2/img:1"]));
    for (r, docker_ref) in [("base", "base:latest"), ("v2/img:1", "v2/img:1")] {
        let (_, m) = manifest_of(&s, r);
        let d = s.path(&format!("dir-{}", r.replace(['/', ':'], "-")));
        let src = format!("docker-archive:{}:{docker_ref}", f.display());
        skopeo(&["copy", "-q", &src, &format!("dir:{}", d.display())]);
        let theirs: Value =
            serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
        let config = m["config"]["digest"].as_str().unwrap();
        assert_eq!(theirs["config"]["digest"], config, "{r}");
        assert_eq!(dir_file(&d, config), cat(&s, config));
        let cfg: Value = serde_json::from_slice(&cat(&s, config)).unwrap();
        for (i, l) in m["layers"].as_array().unwrap().iter().enumerate() {
            let ours = cat(&s, l["digest"].as_str().unwrap());
            let plain = if ours.starts_with(&[0x1f, 0x8b]) {
                gunzip(&ours)
            } else {
                ours
            };
            let diff_id = cfg["rootfs"]["diff_ids"][i].as_str().unwrap();
            assert_eq!(
                theirs["layers"][i]["digest"], diff_id,
                "{r}: skopeo names layers by diffID"
            );
            assert_eq!(dir_file(&d, diff_id), plain, "{r} layer {i}");
        }
        let o = s.path(&format!("oci-{}", r.replace(['/', ':'], "-")));
        skopeo(&["copy", "-q", &src, &format!("oci:{}:x", o.display())]);
        let raw = skopeo(&[
            "inspect",
            "--config",
            "--raw",
            &format!("oci:{}:x", o.display()),
        ]);
        let converted: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(
            converted["rootfs"]["diff_ids"], cfg["rootfs"]["diff_ids"],
            "{r}"
        );
    }
    // Back in with us: the same config and layers, the refs as written.
    let back = Store::new();
    back.ok(&["import-archive", f.to_str().unwrap()]);
    assert_eq!(refs(&back), ["base:latest", "v2/img:1"]);
    for (r, b) in [("base", "base:latest"), ("v2/img:1", "v2/img:1")] {
        let (_, m) = manifest_of(&s, r);
        let (_, n) = manifest_of(&back, b);
        assert_eq!(m["config"]["digest"], n["config"]["digest"], "{r}");
        let digests = |v: &Value| -> Vec<Value> {
            v["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].clone())
                .collect()
        };
        assert_eq!(digests(&m), digests(&n), "{r}");
    }
    assert_verify_clean(&back);
}

pub(super) fn tar_member(f: &Path, name: &str) -> Vec<u8> {
    let data = std::fs::read(f).unwrap();
    let mut a = tar::Archive::new(&data[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            return body;
        }
    }
    panic!("{name} not in {}", f.display());
}

// ---------------------------------------------------------------- by hand

/// The parts of an old docker save tarball: a plain layer, a gzip layer,
/// and the plain one again as a symlink (docker save links a layer it has
/// written already), their config, manifest.json last.
pub(super) struct Old {
    pub(super) plain: Vec<u8>,
    pub(super) gz: Vec<u8>,
    pub(super) config: Vec<u8>,
    pub(super) manifest: Value,
}

impl Old {
    pub(super) fn new() -> Old {
        let plain = layer_tar("etc/hello", b"hello\n");
        let inner = layer_tar("bin/tool", &bytes(4096, 9));
        let gz = gzip(&inner);
        let diff_ids = [sha256(&plain), sha256(&inner), sha256(&plain)];
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let manifest = json!([{
            "Config": format!("{}.json", hex(&sha256(&config))),
            "RepoTags": ["docker.io/library/old:1", "docker.io/me/old:2", "reg.example:5000/x/old:3"],
            "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"],
        }]);
        Old {
            plain,
            gz,
            config,
            manifest,
        }
    }

    pub(super) fn members(&self) -> Members {
        let config_name = format!("{}.json", hex(&sha256(&self.config)));
        let link = (
            "ccc/layer.tar".into(),
            b'2',
            Vec::new(),
            "../aaa/layer.tar".into(),
        );
        vec![
            ("aaa".into(), b'5', Vec::new(), String::new()),
            file("aaa/VERSION", b"1.0"),
            file("aaa/json", br#"{"id":"aaa"}"#),
            file("aaa/layer.tar", &self.plain),
            file("bbb/VERSION", b"1.0"),
            file("bbb/json", br#"{"id":"bbb","parent":"aaa"}"#),
            file("bbb/layer.tar", &self.gz),
            file("ccc/VERSION", b"1.0"),
            link,
            file(&config_name, &self.config),
            file(
                "manifest.json",
                &serde_json::to_vec(&self.manifest).unwrap(),
            ),
            file("repositories", br#"{"old":{"1":"ccc"}}"#),
        ]
    }
}

/// docker save before 25: `<id>/layer.tar`, `<id>/json`, `<id>/VERSION`, a
/// layer as a symlink, manifest.json after the layers. Layers typed by
/// their bytes, kept as they are; the legacy metadata not stored.
#[test]
fn old_docker_save_layout() {
    let old = Old::new();
    let s = Store::new();
    let f = s.file("old.tar", &assemble(&old.members()));
    s.ok(&["import-archive", f.to_str().unwrap()]);
    assert_eq!(refs(&s), ["me/old:2", "old:1", "reg.example:5000/x/old:3"]);
    let (raw, m) = manifest_of(&s, "old:1");
    let config = sha256(&old.config);
    let want = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": old.config.len(), "digest": config},
        "layers": [
            {"mediaType": PLAIN, "size": old.plain.len(), "digest": sha256(&old.plain)},
            {"mediaType": GZIP, "size": old.gz.len(), "digest": sha256(&old.gz)},
            {"mediaType": PLAIN, "size": old.plain.len(), "digest": sha256(&old.plain)},
        ],
    });
    assert_eq!(m, want);
    assert!(
        raw.starts_with(br#"{"schemaVersion":2,"mediaType":"#),
        "compact, skopeo's order"
    );
    assert_eq!(cat(&s, &config), old.config);
    assert_eq!(cat(&s, &sha256(&old.gz)), old.gz);
    let stored = std::fs::read_dir(s.layout.join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(
        stored, 4,
        "two layers, the config, the manifest; no legacy json"
    );
    assert_verify_clean(&s);
    // Imported again: unchanged.
    let out = s.json(&["import-archive", f.to_str().unwrap()]);
    assert!(
        out["refs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["change"] == "unchanged"),
        "{out}"
    );
}
