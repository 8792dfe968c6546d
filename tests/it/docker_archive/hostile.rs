//! Docker archives by hand: docker save 25's OCI layout with a
//! manifest.json, hostile archives, and what an export refuses.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{
    Members, Old, assemble, assert_verify_clean, cat, file, hex, layer_tar, manifest_of, refs,
    tar_member,
};
use crate::util::{Store, desc, sha256};

/// docker save 25 and later writes an OCI layout and manifest.json: the
/// OCI index is what is imported.
#[test]
fn an_oci_layout_with_a_manifest_json_is_read_as_oci() {
    let s = Store::new();
    s.add("a:1", &[("p.txt", b"payload")]);
    let f = s.path("a.tar");
    s.ok(&["export-archive", "a:1", "-o", f.to_str().unwrap()]);
    let data = std::fs::read(&f).unwrap();
    let mut list: Members = Vec::new();
    for e in tar::Archive::new(&data[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let kind = e.header().entry_type().as_byte();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        list.push((name, kind, body, String::new()));
    }
    list.push(file(
        "manifest.json",
        br#"[{"Config":"x.json","RepoTags":["other:1"],"Layers":[]}]"#,
    ));
    list.push(file("repositories", b"{}"));
    let d = Store::new();
    let g = d.file("hybrid.tar", &assemble(&list));
    d.ok(&["import-archive", g.to_str().unwrap()]);
    assert_eq!(refs(&d), ["a:1"]);
    assert_verify_clean(&d);
}

/// Traversal, missing layers, names not in the tar, malformed manifest.json,
/// a config that is not JSON, duplicates, links out: exit 2 naming the
/// member or digest, nothing tagged, the layout still verifies.
#[test]
fn hostile_docker_archives_are_refused() {
    let old = Old::new();
    let base = old.members();
    let config_name = format!("{}.json", hex(&sha256(&old.config)));
    let with_manifest = |m: Value| -> Members {
        let mut l = base.clone();
        let at = l.iter().position(|e| e.0 == "manifest.json").unwrap();
        l[at].2 = serde_json::to_vec(&m).unwrap();
        l
    };
    let layers = |list: Value| {
        let mut m = old.manifest.clone();
        m[0]["Layers"] = list;
        with_manifest(m)
    };
    let without =
        |name: &str| -> Members { base.iter().filter(|e| e.0 != name).cloned().collect() };
    let replaced = |name: &str, body: &[u8]| -> Members {
        let mut l = base.clone();
        l.iter_mut().find(|e| e.0 == name).unwrap().2 = body.to_vec();
        l
    };
    let plus = |extra: (String, u8, Vec<u8>, String)| -> Members {
        let mut l = vec![extra];
        l.extend(base.clone());
        l
    };
    let mut tags = old.manifest.clone();
    tags[0]["RepoTags"] = json!(["../evil:1"]);
    let cases: Vec<(&str, Members, String)> = vec![
        ("traversal", plus(file("../x", b"x")), "..".into()),
        ("absolute", plus(file("/etc/x", b"x")), "absolute".into()),
        (
            "missing layer",
            without("bbb/layer.tar"),
            "bbb/layer.tar".into(),
        ),
        (
            "dangling link",
            without("aaa/layer.tar"),
            "aaa/layer.tar".into(),
        ),
        (
            "not in tar",
            layers(json!(["aaa/layer.tar", "nope.tar", "ccc/layer.tar"])),
            "nope.tar".into(),
        ),
        (
            "traversal in manifest",
            layers(json!([
                "../../etc/passwd",
                "bbb/layer.tar",
                "ccc/layer.tar"
            ])),
            "../../etc/passwd".into(),
        ),
        (
            "layer count",
            layers(json!(["aaa/layer.tar"])),
            "diffIDs".into(),
        ),
        (
            "malformed manifest.json",
            replaced("manifest.json", b"{not json"),
            "manifest.json".into(),
        ),
        (
            "empty manifest.json",
            replaced("manifest.json", b"[]"),
            "no images".into(),
        ),
        (
            "config not JSON",
            replaced(&config_name, b"not json"),
            "not JSON".into(),
        ),
        ("missing config", without(&config_name), config_name.clone()),
        (
            "duplicate member",
            plus(file("aaa/layer.tar", b"other")),
            "appears twice".into(),
        ),
        (
            "duplicate manifest.json",
            plus(file("manifest.json", b"[]")),
            "appears twice".into(),
        ),
        (
            "link out",
            plus((
                "zzz/layer.tar".into(),
                b'2',
                vec![],
                "../../etc/passwd".into(),
            )),
            "outside".into(),
        ),
        (
            "absolute link",
            plus(("zzz/layer.tar".into(), b'2', vec![], "/etc/passwd".into())),
            "outside".into(),
        ),
        ("bad tag", with_manifest(tags), "RepoTags".into()),
        (
            "neither kind",
            without("manifest.json"),
            "no manifest.json".into(),
        ),
        (
            "hard link",
            plus(("h".into(), b'1', vec![], "aaa/layer.tar".into())),
            "hard link".into(),
        ),
    ];
    let s = Store::new();
    for (what, list, needle) in cases {
        let f = s.file("bad.tar", &assemble(&list));
        let e = s.fails(2, &["import-archive", f.to_str().unwrap()]);
        assert!(e.contains(&needle), "{what}: {e}");
        assert!(refs(&s).is_empty(), "{what}");
    }
    // A plain layer that does not hash to its diffID.
    let mut bad = Old::new();
    bad.plain = layer_tar("etc/hello", b"tampered\n");
    let mut list = bad.members();
    list.iter_mut().find(|e| e.0 == "aaa/layer.tar").unwrap().2 = bad.plain.clone();
    let f = s.file("bad.tar", &assemble(&list));
    let e = s.fails(2, &["import-archive", f.to_str().unwrap()]);
    assert!(e.contains("aaa/layer.tar") && e.contains("diffID"), "{e}");
    assert!(refs(&s).is_empty());
    assert_verify_clean(&s);
}

/// An index needs --platform (and one it has); an artifact is not an
/// image; --platform belongs to --format docker.
#[test]
fn export_refuses_what_a_docker_archive_cannot_hold() {
    let old = Old::new();
    let s = Store::new();
    let f = s.file("old.tar", &assemble(&old.members()));
    s.ok(&["import-archive", f.to_str().unwrap()]);
    let (raw, _) = manifest_of(&s, "old:1");
    let mut entry = desc(
        "application/vnd.docker.distribution.manifest.v2+json",
        &sha256(&raw),
        raw.len(),
    );
    entry["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry],
    }))
    .unwrap();
    let digest = s.put_raw(&list);
    let mut index = s.index();
    let mut e = desc(
        "application/vnd.oci.image.index.v1+json",
        &digest,
        list.len(),
    );
    e["annotations"] = json!({"org.opencontainers.image.ref.name": "multi:1"});
    index["manifests"].as_array_mut().unwrap().push(e);
    s.set_index(&index);
    s.add("files:1", &[("a.txt", b"a")]);
    let out = |name: &str| -> PathBuf { s.path(name) };
    let o = out("x.tar");
    let o = o.to_str().unwrap();
    let e = s.fails(
        2,
        &["export-archive", "--format", "docker", "multi:1", "-o", o],
    );
    assert!(e.contains("--platform") && e.contains("linux/amd64"), "{e}");
    let e = s.fails(
        2,
        &[
            "export-archive",
            "--format",
            "docker",
            "multi:1",
            "--platform",
            "linux/arm64",
            "-o",
            o,
        ],
    );
    assert!(e.contains("no image for platform linux/arm64"), "{e}");
    let e = s.fails(
        2,
        &["export-archive", "--format", "docker", "files:1", "-o", o],
    );
    assert!(e.contains("not a container image"), "{e}");
    let e = s.fails(
        2,
        &[
            "export-archive",
            "old:1",
            "--platform",
            "linux/amd64",
            "-o",
            o,
        ],
    );
    assert!(e.contains("--format docker"), "{e}");
    assert!(!Path::new(o).exists(), "nothing written");
    s.ok(&[
        "export-archive",
        "--format",
        "docker",
        "multi:1",
        "--platform",
        "linux/amd64",
        "-o",
        o,
    ]);
    let m: Value = serde_json::from_slice(&tar_member(Path::new(o), "manifest.json")).unwrap();
    assert_eq!(m[0]["RepoTags"], json!(["multi:1"]));
    let named = m[0]["Layers"].as_array().unwrap();
    assert_eq!(
        (named.len(), &named[0]),
        (3, &named[2]),
        "a layer given twice is named twice"
    );
    let data = std::fs::read(o).unwrap();
    let count = tar::Archive::new(&data[..]).entries().unwrap().count();
    assert_eq!(
        count, 5,
        "manifest.json, repositories, the config, each layer once"
    );
    assert_eq!(
        tar_member(Path::new(o), &format!("{}.tar", hex(&sha256(&old.gz)))),
        old.gz
    );
    let back = Store::new();
    back.ok(&["import-archive", o]);
    assert_eq!(cat(&back, "multi:1"), raw, "the same manifest, rebuilt");
}
