//! `epoch-store build`: images built on a base (umoci's, an index built
//! here, a Docker v2 manifest, scratch) and read by the peers: umoci
//! unpacks the rootfs, skopeo shows the config, oci-image-tool validates.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::{Value, json};

use crate::platforms::image;
use crate::util::{OCI_INDEX, Store, have_tool, sh};

/// A layout with umoci's image `base` holding /etc/motd.
fn umoci_base() -> Store {
    let s = Store::empty();
    let dir = s.layout.to_str().unwrap().to_string();
    sh(Command::new("umoci").args(["init", "--layout", &dir]));
    sh(Command::new("umoci").args(["new", "--image", &format!("{dir}:base")]));
    let motd = s.file("motd", b"base motd\n");
    sh(Command::new("umoci")
        .args(["insert", "--rootless", "--image", &format!("{dir}:base")])
        .arg(&motd)
        .arg("/etc/motd"));
    s
}

/// The document `digest` names, parsed.
fn doc(s: &Store, digest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(s.blob(digest)).unwrap()).unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn what_build_writes_umoci_unpacks_skopeo_reads_and_oci_image_tool_validates() {
    for tool in ["umoci", "skopeo", "oci-image-tool"] {
        if !have_tool(tool) {
            return;
        }
    }
    let s = umoci_base();
    let app = s.file("server", b"#!/bin/sh\necho serving\n");
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tree = s.path("extra");
    std::fs::create_dir_all(tree.join("srv/www")).unwrap();
    std::fs::write(tree.join("srv/www/index.html"), b"<h1>hi</h1>").unwrap();
    std::fs::set_permissions(
        tree.join("srv/www/index.html"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("www/index.html", tree.join("srv/home")).unwrap();
    // Over 1 MiB: the layer is several gzip members, which umoci (Go's
    // compress/gzip) must read whole.
    let big = crate::util::bytes(3 << 20, 9);
    std::fs::write(tree.join("srv/big"), &big).unwrap();
    let given = s.path("given.tar.gz");
    sh(Command::new("tar")
        .arg("-czf")
        .arg(&given)
        .arg("-C")
        .arg(&tree)
        .arg("srv/www"));

    let out = s.json(&[
        "build",
        "--from",
        "base",
        "--ref",
        "app:1",
        "--entrypoint",
        app.to_str().unwrap(),
        "--layer",
        tree.to_str().unwrap(),
        "--layer",
        given.to_str().unwrap(),
        "--env",
        "MODE=prod",
        "--cmd",
        "--port",
        "--cmd",
        "80",
    ]);
    assert_eq!(out["layers"].as_array().unwrap().len(), 3, "{out}");
    s.ok(&["verify"]);

    // The diffIDs are the digests of the uncompressed tars, computed.
    let manifest = doc(&s, out["digest"].as_str().unwrap());
    let config = doc(&s, manifest["config"]["digest"].as_str().unwrap());
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 4, "umoci's layer and three new ones");
    for (i, layer) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let blob = std::fs::read(s.blob(layer["digest"].as_str().unwrap())).unwrap();
        assert_eq!(
            diff_ids[i],
            crate::util::sha256(&gunzip(&blob)),
            "layer {i}"
        );
    }
    assert_eq!(config["history"].as_array().unwrap().len(), 4);

    let dir = s.layout.to_str().unwrap();
    let bundle = s.path("bundle");
    sh(Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &format!("{dir}:app:1")])
        .arg(&bundle));
    let root = bundle.join("rootfs");
    assert_eq!(
        std::fs::read(root.join("etc/motd")).unwrap(),
        b"base motd\n"
    );
    let server = std::fs::metadata(root.join("server")).unwrap();
    assert_eq!(
        server.permissions().mode() & 0o7777,
        0o755,
        "the entrypoint is executable"
    );
    assert_eq!(
        std::fs::read(root.join("server")).unwrap(),
        b"#!/bin/sh\necho serving\n"
    );
    let page = std::fs::metadata(root.join("srv/www/index.html")).unwrap();
    assert_eq!(page.permissions().mode() & 0o777, 0o640, "modes are kept");
    assert!(
        std::fs::read(root.join("srv/big")).unwrap() == big,
        "srv/big"
    );
    assert_eq!(
        std::fs::read_link(root.join("srv/home")).unwrap().to_str(),
        Some("www/index.html")
    );

    let shown: Value = serde_json::from_str(&sh(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{dir}:app:1"),
    ])))
    .unwrap();
    assert_eq!(shown["config"]["Entrypoint"], json!(["/server"]));
    assert_eq!(shown["config"]["Cmd"], json!(["--port", "80"]));
    assert_eq!(shown["config"]["Env"], json!(["MODE=prod"]));
    sh(Command::new("oci-image-tool").args([
        "validate",
        "--type",
        "image",
        "--ref",
        "name=app:1",
        dir,
    ]));
}

#[test]
fn an_index_gives_one_image_per_platform_and_an_unknown_platform_is_refused() {
    let s = Store::new();
    let entries: Vec<Value> = [
        ("linux", "amd64", ""),
        ("linux", "arm64", "v8"),
        ("linux", "arm", "v7"),
    ]
    .iter()
    .map(|(os, arch, v)| image(&s, os, arch, v))
    .collect();
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
    )
    .unwrap();
    s.root_doc("multi:1", OCI_INDEX, &index);
    let app = s.file("tool", b"binary");

    let two = s.json(&[
        "build",
        "--from",
        "multi:1",
        "--platform",
        "linux/arm64",
        "--platform",
        "linux/arm",
        "--entrypoint",
        app.to_str().unwrap(),
        "--ref",
        "tool:2",
    ]);
    assert_eq!(two["mediaType"], OCI_INDEX);
    let built = doc(&s, two["digest"].as_str().unwrap());
    let platforms: Vec<&str> = built["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["arm64", "arm"]);
    for (m, base) in built["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .zip([&entries[1], &entries[2]])
    {
        let ours = doc(&s, m["digest"].as_str().unwrap());
        let theirs = doc(&s, base["digest"].as_str().unwrap());
        assert_eq!(
            ours["layers"][0], theirs["layers"][0],
            "the base layer is referenced"
        );
        assert_eq!(ours["layers"].as_array().unwrap().len(), 2);
    }

    let all = s.json(&[
        "build", "--from", "multi:1", "--env", "A=1", "--ref", "all:1",
    ]);
    assert_eq!(all["images"].as_array().unwrap().len(), 3);

    let one = s.json(&[
        "build",
        "--from",
        "multi:1",
        "--platform",
        "linux/arm/v7",
        "--ref",
        "one:1",
    ]);
    assert_eq!(
        one["mediaType"],
        crate::util::OCI_MANIFEST,
        "one image: a manifest"
    );

    let before = std::fs::read(s.layout.join("index.json")).unwrap();
    let err = s.fails(
        2,
        &[
            "build",
            "--from",
            "multi:1",
            "--platform",
            "windows/amd64",
            "--ref",
            "no:1",
        ],
    );
    assert!(
        err.contains("windows/amd64") && err.contains("linux/arm64"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(s.layout.join("index.json")).unwrap(),
        before,
        "nothing tagged"
    );
    s.ok(&["verify"]);
}

#[test]
fn scratch_builds_are_reproducible_and_take_the_platform_asked_for() {
    let s = Store::new();
    let app = s.file("hello", &crate::util::bytes(3 << 20, 7));
    let args = |r: &'static str| {
        vec![
            "build",
            "--from",
            "scratch",
            "--platform",
            "linux/arm64",
            "--entrypoint",
            app.to_str().unwrap(),
            "--ref",
            r,
        ]
    };
    let a = s.json(&args("a:1"));
    let b = s.json(&args("b:1"));
    assert_eq!(a["digest"], b["digest"], "the same inputs, the same digest");
    let manifest = doc(&s, a["digest"].as_str().unwrap());
    let config = doc(&s, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("arm64"))
    );
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    let layer = std::fs::read(s.blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let mut tar = tar::Archive::new(std::io::Cursor::new(gunzip(&layer)));
    let mut entries = tar.entries().unwrap();
    let mut e = entries.next().unwrap().unwrap();
    assert_eq!(e.path().unwrap().to_str(), Some("hello"));
    let mut body = Vec::new();
    e.read_to_end(&mut body).unwrap();
    assert_eq!(
        body,
        crate::util::bytes(3 << 20, 7),
        "a multi-block gzip reads back whole"
    );

    let out = s
        .cmd(&args("c:1"))
        .arg("--json")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(c["digest"], a["digest"]);
    let config = doc(
        &s,
        doc(&s, c["digest"].as_str().unwrap())["config"]["digest"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
}

#[test]
fn a_docker_base_gets_docker_layers_and_bad_input_tags_nothing() {
    let s = Store::new();
    let amd = image(&s, "linux", "amd64", "");
    let m = doc(&s, amd["digest"].as_str().unwrap());
    let mut docker = m.clone();
    docker["mediaType"] = json!("application/vnd.docker.distribution.manifest.v2+json");
    docker["config"]["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
    docker["layers"][0]["mediaType"] = json!("application/vnd.docker.image.rootfs.diff.tar.gzip");
    let raw = serde_json::to_vec(&docker).unwrap();
    s.root_doc(
        "dock:1",
        "application/vnd.docker.distribution.manifest.v2+json",
        &raw,
    );
    let app = s.file("app", b"x");
    let out = s.json(&[
        "build",
        "--from",
        "dock:1",
        "--entrypoint",
        app.to_str().unwrap(),
        "--ref",
        "d:2",
    ]);
    let built = doc(&s, out["digest"].as_str().unwrap());
    assert_eq!(
        built["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        built["layers"][1]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );

    let before = std::fs::read(s.layout.join("index.json")).unwrap();
    let missing = s.path("nope");
    let err = s.fails(
        2,
        &[
            "build",
            "--from",
            "dock:1",
            "--entrypoint",
            missing.to_str().unwrap(),
            "--ref",
            "x:1",
        ],
    );
    assert!(err.contains("nope"), "{err}");
    let mut bad = std::fs::File::create(s.path("bad.tar.gz")).unwrap();
    bad.write_all(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    let err = s.fails(
        2,
        &[
            "build",
            "--from",
            "dock:1",
            "--layer",
            s.path("bad.tar.gz").to_str().unwrap(),
            "--ref",
            "x:1",
        ],
    );
    assert!(err.contains("bad.tar.gz") && err.contains("gzip"), "{err}");
    let files = s.file("plain", b"not an image");
    s.ok(&["add", "--ref", "files:1", files.to_str().unwrap()]);
    let err = s.fails(2, &["build", "--from", "files:1", "--ref", "x:1"]);
    assert!(
        err.contains("files:1") && err.contains("no container image"),
        "{err}"
    );
    let err = s.fails(2, &["build", "--from", "dock:1", "--ref", "d:2"]);
    assert!(err.contains("--force"), "{err}");
    let err = s.fails(
        2,
        &[
            "build",
            "--from",
            "dock:1",
            "--platform",
            "linux/s390x",
            "--ref",
            "x:1",
        ],
    );
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64"),
        "{err}"
    );
    let err = s.fails(
        2,
        &[
            "build",
            "--from",
            "dock:1",
            "--platform",
            "linux/amd64/v3/x",
            "--ref",
            "x:1",
        ],
    );
    assert!(err.contains("linux/amd64/v3/x"), "{err}");
    let after: Value =
        serde_json::from_slice(&std::fs::read(s.layout.join("index.json")).unwrap()).unwrap();
    let before: Value = serde_json::from_slice(&before).unwrap();
    let refs = |v: &Value| {
        v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .map(String::from)
            })
            .collect::<Vec<_>>()
    };
    let mut want = refs(&before);
    want.push("files:1".into());
    assert_eq!(refs(&after), want, "only the add tagged anything");
    s.ok(&["verify"]);
}
