//! Loading container images (`formats::image`): indexes nested to any
//! depth, Docker v2 lists and manifests, a bare manifest as root, platform
//! selection, layer digests and diffIDs checked; images made by umoci and
//! copied by skopeo.

use std::process::Command;

use epoch_store::Layout;
use epoch_store::formats::image::{LayoutLoader, load};
use epoch_store::model::platform::PlatformSpec;
use serde_json::{Value, json};

use crate::platforms::image;
use crate::util::{OCI_INDEX, Store, have_tool, sh};

fn tag(s: &Store, name: &str, media_type: &str, doc: &Value) -> String {
    let raw = serde_json::to_vec(doc).unwrap();
    let d = s.put_raw(&raw);
    let mut e = crate::util::desc(media_type, &d, raw.len());
    e["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    let mut idx = s.index();
    idx["manifests"].as_array_mut().unwrap().push(e);
    s.set_index(&idx);
    d
}

fn platforms_of(layout: &Layout, r: &str) -> Vec<String> {
    let loaded = load(&LayoutLoader::new(layout, r).unwrap()).unwrap();
    loaded
        .images
        .iter()
        .map(|i| epoch_store::model::platform::describe(&i.platform))
        .collect()
}

#[test]
fn nested_indexes_docker_lists_and_bare_manifests_load_with_their_platforms() {
    let s = Store::new();
    let amd = image(&s, "linux", "amd64", "");
    let arm7 = image(&s, "linux", "arm", "v7");
    let arm6 = image(&s, "linux", "arm", "v6");
    let arm64 = image(&s, "linux", "arm64", "v8");
    // An artifact entry (not an image) is passed over.
    let art = s.put_raw(b"{}");
    let artifact = crate::util::manifest_bytes(
        crate::util::desc("application/vnd.example.thing", &art, 2),
        vec![],
    );
    let artifact = crate::util::desc(
        crate::util::OCI_MANIFEST,
        &s.put_raw(&artifact),
        artifact.len(),
    );
    let inner = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [arm7, arm6]});
    let inner_raw = serde_json::to_vec(&inner).unwrap();
    let inner_d = crate::util::desc(OCI_INDEX, &s.put_raw(&inner_raw), inner_raw.len());
    let deep = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [inner_d]});
    let deep_raw = serde_json::to_vec(&deep).unwrap();
    let deep_d = crate::util::desc(OCI_INDEX, &s.put_raw(&deep_raw), deep_raw.len());
    tag(
        &s,
        "multi:1",
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [amd, deep_d, artifact, arm64]}),
    );
    let layout = Layout::open(&s.layout).unwrap();
    assert_eq!(
        platforms_of(&layout, "multi:1"),
        [
            "linux/amd64",
            "linux/arm/v7",
            "linux/arm/v6",
            "linux/arm64/v8"
        ]
    );
    let loaded = load(&LayoutLoader::new(&layout, "multi:1").unwrap()).unwrap();
    let arm: PlatformSpec = "linux/arm".parse().unwrap();
    let picked: Vec<String> = loaded
        .select_by_platform(&arm)
        .iter()
        .map(|i| epoch_store::model::platform::describe(&i.platform))
        .collect();
    assert_eq!(picked, ["linux/arm/v7", "linux/arm/v6"]);
    let loader = LayoutLoader::new(&layout, "multi:1").unwrap();
    for i in &loaded.images {
        i.verify_layers(&loader).unwrap();
    }

    // A bare manifest is a one-entry index; its platform comes from its config.
    let bare = image(&s, "linux", "s390x", "");
    let digest = bare["digest"].as_str().unwrap().to_string();
    let layout = Layout::open(&s.layout).unwrap();
    assert_eq!(platforms_of(&layout, &digest), ["linux/s390x"]);

    // Docker v2: a manifest list of Docker manifests.
    let mut docker_entries = vec![];
    for e in [&amd, &arm64] {
        let raw = std::fs::read(s.blob(e["digest"].as_str().unwrap())).unwrap();
        let mut m: Value = serde_json::from_slice(&raw).unwrap();
        m["mediaType"] = json!("application/vnd.docker.distribution.manifest.v2+json");
        m["config"]["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
        m["layers"][0]["mediaType"] = json!("application/vnd.docker.image.rootfs.diff.tar.gzip");
        let raw = serde_json::to_vec(&m).unwrap();
        let mut d = crate::util::desc(
            "application/vnd.docker.distribution.manifest.v2+json",
            &s.put_raw(&raw),
            raw.len(),
        );
        d["platform"] = e["platform"].clone();
        docker_entries.push(d);
    }
    let list_mt = "application/vnd.docker.distribution.manifest.list.v2+json";
    tag(
        &s,
        "docker:1",
        list_mt,
        &json!({"schemaVersion": 2, "mediaType": list_mt,
        "manifests": docker_entries}),
    );
    let layout = Layout::open(&s.layout).unwrap();
    assert_eq!(
        platforms_of(&layout, "docker:1"),
        ["linux/amd64", "linux/arm64/v8"]
    );
    let loaded = load(&LayoutLoader::new(&layout, "docker:1").unwrap()).unwrap();
    let loader = LayoutLoader::new(&layout, "docker:1").unwrap();
    for i in &loaded.images {
        i.verify_layers(&loader).unwrap();
    }
}

#[test]
fn schema1_wrong_diff_ids_and_damaged_layers_are_refused_naming_them() {
    let s = Store::new();
    let schema1 = json!({"schemaVersion": 1, "name": "x", "tag": "1", "fsLayers": []});
    tag(
        &s,
        "old:1",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        &schema1,
    );
    let layout = Layout::open(&s.layout).unwrap();
    let err = load(&LayoutLoader::new(&layout, "old:1").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("schema 1") && err.contains("skopeo copy"),
        "{err}"
    );

    // A config whose diff_id is not the layer's.
    let good = image(&s, "linux", "amd64", "");
    let raw = std::fs::read(s.blob(good["digest"].as_str().unwrap())).unwrap();
    let mut m: Value = serde_json::from_slice(&raw).unwrap();
    let cfg_raw = std::fs::read(s.blob(m["config"]["digest"].as_str().unwrap())).unwrap();
    let mut cfg: Value = serde_json::from_slice(&cfg_raw).unwrap();
    cfg["rootfs"]["diff_ids"][0] = json!(crate::util::sha256(b"not the layer"));
    let cfg_raw = serde_json::to_vec(&cfg).unwrap();
    m["config"]["digest"] = json!(s.put_raw(&cfg_raw));
    m["config"]["size"] = json!(cfg_raw.len());
    tag(&s, "lie:1", crate::util::OCI_MANIFEST, &m);
    let layout = Layout::open(&s.layout).unwrap();
    let loader = LayoutLoader::new(&layout, "lie:1").unwrap();
    let loaded = load(&loader).unwrap();
    let err = loaded.images[0]
        .verify_layers(&loader)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 0") && err.contains("diff_id"), "{err}");

    // A damaged layer blob: the loader's digest check stops it.
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let path = s.blob(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let loader = LayoutLoader::new(&layout, "lie:1").unwrap();
    let err = loaded.images[0]
        .verify_layers(&loader)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&layer[7..19]) || err.contains("digest"),
        "{err}"
    );
}

#[test]
fn images_umoci_makes_and_skopeo_copies_load_and_verify() {
    if !have_tool("umoci") || !have_tool("skopeo") {
        return;
    }
    let s = Store::empty();
    let dir = s.layout.to_str().unwrap().to_string();
    sh(Command::new("umoci").args(["init", "--layout", &dir]));
    sh(Command::new("umoci").args(["new", "--image", &format!("{dir}:base")]));
    let src = s.path("rootfs-src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("bin/hello"), b"#!/bin/sh\necho hi\n").unwrap();
    sh(Command::new("umoci")
        .args(["insert", "--rootless", "--image", &format!("{dir}:base")])
        .arg(src.join("bin/hello"))
        .arg("/bin/hello"));
    let copy = format!("oci:{dir}:copied");
    sh(Command::new("skopeo").args(["copy", &format!("oci:{dir}:base"), &copy]));
    let layout = Layout::open(&s.layout).unwrap();
    for r in ["base", "copied"] {
        let loader = LayoutLoader::new(&layout, r).unwrap();
        let loaded = load(&loader).unwrap();
        assert_eq!(loaded.images.len(), 1, "{r}");
        let image = &loaded.images[0];
        assert_eq!(image.layers.len(), 1, "{r}: umoci insert made one layer");
        assert_eq!(image.platform.os, "linux");
        image.verify_layers(&loader).unwrap();
    }
}

#[test]
fn an_image_reached_twice_loads_once_and_nesting_is_bounded() {
    let s = Store::new();
    let amd = image(&s, "linux", "amd64", "");
    let arm = image(&s, "linux", "arm64", "");
    let wrap = |s: &Store, inner: &Value| {
        let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [inner]});
        let raw = serde_json::to_vec(&idx).unwrap();
        crate::util::desc(OCI_INDEX, &s.put_raw(&raw), raw.len())
    };
    let sub = wrap(&s, &amd);
    tag(
        &s,
        "twice:1",
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [amd, sub, arm]}),
    );
    let layout = Layout::open(&s.layout).unwrap();
    assert_eq!(
        platforms_of(&layout, "twice:1"),
        ["linux/amd64", "linux/arm64"]
    );
    let mut deep = amd.clone();
    for _ in 0..=epoch_store::formats::image::MAX_DEPTH {
        deep = wrap(&s, &deep);
    }
    tag(
        &s,
        "deep:1",
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [deep]}),
    );
    let layout = Layout::open(&s.layout).unwrap();
    let err = load(&LayoutLoader::new(&layout, "deep:1").unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nest more than 16"), "{err}");
}

#[test]
fn an_oci_archive_loads_in_place_plain_or_gzip_and_a_damaged_layer_is_caught() {
    use epoch_store::formats::oci_archive::ArchiveLoader;
    use std::io::Write;
    let s = Store::new();
    let entries: Vec<Value> = [
        ("linux", "amd64", ""),
        ("linux", "arm64", "v8"),
        ("linux", "arm", "v6"),
    ]
    .iter()
    .map(|(os, arch, v)| image(&s, os, arch, v))
    .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    tag(&s, "multi:1", OCI_INDEX, &index);
    let plain = s.path("multi.tar");
    s.ok(&["export-archive", "multi:1", "-o", plain.to_str().unwrap()]);
    let gz = s.path("multi.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    enc.finish().unwrap();
    let want = platforms_of(&Layout::open(&s.layout).unwrap(), "multi:1");
    for archive in [&plain, &gz] {
        for target in [Some("multi:1"), None] {
            let loader = ArchiveLoader::open(archive, target).unwrap();
            let loaded = load(&loader).unwrap();
            let got: Vec<String> = loaded
                .images
                .iter()
                .map(|i| epoch_store::model::platform::describe(&i.platform))
                .collect();
            assert_eq!(got, want, "{archive:?} {target:?}");
            for i in &loaded.images {
                i.verify_layers(&loader).unwrap();
            }
            let best = loaded.select_by_platform(&"linux/arm/v7".parse::<PlatformSpec>().unwrap());
            assert_eq!(best[0].platform.variant.as_deref(), Some("v6"));
        }
    }
    let err = ArchiveLoader::open(&plain, Some("nope:1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope:1") && err.contains("multi:1"), "{err}");

    // One byte of the arm64 layer changed in place: the load still works
    // (documents are intact), the layer check names the layer.
    let arm = &load(&ArchiveLoader::open(&plain, Some("multi:1")).unwrap())
        .unwrap()
        .images[1];
    let layer = arm.layers[0].descriptor.clone();
    let mut bytes = std::fs::read(&plain).unwrap();
    let blob = std::fs::read(s.blob(&layer.digest.to_string())).unwrap();
    let at = bytes
        .windows(blob.len())
        .position(|w| w == blob.as_slice())
        .unwrap();
    bytes[at + blob.len() / 2] ^= 0x55;
    std::fs::write(&plain, &bytes).unwrap();
    let loader = ArchiveLoader::open(&plain, Some("multi:1")).unwrap();
    let loaded = load(&loader).unwrap();
    let err = loaded.images[1]
        .verify_layers(&loader)
        .unwrap_err()
        .to_string();
    assert!(err.contains(layer.digest.hex()), "{err}");
    loaded.images[0].verify_layers(&loader).unwrap();
}

#[test]
fn an_oci_archive_skopeo_writes_loads() {
    use epoch_store::formats::oci_archive::ArchiveLoader;
    if !have_tool("skopeo") {
        return;
    }
    let s = Store::new();
    let amd = image(&s, "linux", "amd64", "");
    let raw = std::fs::read(s.blob(amd["digest"].as_str().unwrap())).unwrap();
    s.root_doc("app:1", crate::util::OCI_MANIFEST, &raw);
    let archive = s.path("app.tar");
    sh(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:app:1", s.layout.display()),
        &format!("oci-archive:{}:app:2", archive.display()),
    ]));
    let loader = ArchiveLoader::open(&archive, Some("app:2")).unwrap();
    let loaded = load(&loader).unwrap();
    assert_eq!(loaded.images.len(), 1);
    assert_eq!(loaded.images[0].platform.architecture, "amd64");
    loaded.images[0].verify_layers(&loader).unwrap();
}
