//! cocoon-common over a registry: its own client (`oci.OCIRegistry`, over
//! go-containerregistry's `remote`) under its Pusher, `snapshot.Stream` and
//! `cloudimg.Stream` (`oracle-cocoon push-registry`, `stream-registry`,
//! `cloudimg-registry`), against distribution 2.8 on 127.0.0.1. Like the
//! other cocoon oracle tests, each records a skip where the oracle is not
//! built (the module proxy refuses cocoon-common; docs/interop.md).

use std::os::unix::fs::FileExt;

use crate::cocoon_oracle::{FORMS, PUSHES, assert_same_tree, cocoon, path, qcow2, shapes};
use crate::registry::Registry;
use crate::util::{Store, bytes, have_tool};

#[test]
fn snapshots_cocoon_commons_pusher_sends_to_distribution_we_pull_and_unpack_identical() {
    let Some(c) = cocoon() else { return };
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    let dir = shapes(&s);
    // What the fleet pushes: `cocoon snapshot export` of an imported snapshot.
    s.ok(&[
        "pack",
        "snapshot",
        &path(&dir),
        "--ref",
        "vm:src",
        "--format",
        "v1",
    ]);
    c.stream_into_cocoon(&s.layout, "vm:src", "src");
    let tar = c.export("src");
    let reg = Registry::start(&s);
    for (name, knobs) in PUSHES {
        let src = format!("{}/cocoon/vm:{name}", reg.host);
        let mut a = vec!["push-registry".to_string(), src.clone(), path(&tar)];
        a.extend(knobs.iter().map(|k| k.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let digest = String::from_utf8(c.oracle_ok(&a))
            .unwrap()
            .trim()
            .to_string();

        let back = Store::empty();
        let out = back.json(&["pull", &src, "--plain-http", "--ref", "vm:1"]);
        assert_eq!(out["digest"], digest.as_str(), "{name}: {out}");
        back.ok(&["verify"]);
        let ls = back.json(&["ls"]);
        assert_eq!(ls[0]["kind"], "snapshot", "{name}: {ls}");
        let unpacked = back.path("out");
        back.ok(&["unpack", "vm:1", &path(&unpacked)]);
        assert_same_tree(&dir, &unpacked);
    }
}

#[test]
fn snapshots_we_push_cocoon_commons_stream_takes_from_the_registry_into_cocoon() {
    let Some(c) = cocoon() else { return };
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    let dir = shapes(&s);
    let reg = Registry::start(&s);
    for (form, args) in FORMS {
        let r = format!("vm:{form}");
        let mut a = vec!["pack", "snapshot", dir.to_str().unwrap(), "--ref", &r];
        a.extend_from_slice(args);
        s.ok(&a);
        s.ok(&["push", &r, &format!("{}/ours/vm", reg.host), "--plain-http"]);
        let src = format!("{}/ours/vm:{form}", reg.host);
        let tar = c.home.path().join(format!("{form}.tar"));
        std::fs::write(&tar, c.oracle_ok(&["stream-registry", &src])).unwrap();
        assert_same_tree(&dir, &c.import(&tar, form));
    }
}

#[test]
fn os_images_we_push_cloudimg_streams_from_the_registry_byte_identical() {
    let Some(c) = cocoon() else { return };
    if !have_tool("docker-registry") || !have_tool("qemu-img") || !have_tool("qemu-io") {
        return;
    }
    let s = Store::new();
    let q = qcow2(&s, "disk.qcow2");
    let raw = s.path("disk.raw");
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(24 << 20).unwrap();
    f.write_all_at(&bytes(2 << 20, 4), 10 << 20).unwrap();
    let reg = Registry::start(&s);
    let cases: &[(&str, &std::path::Path, &[&str])] = &[
        ("img:qcow2", &q, &[]),
        ("img:qcow2-parts", &q, &["--part-size", "1MiB"]),
        ("img:windows", &q, &["--windows", "--part-size", "2MiB"]),
        ("img:raw-parts", &raw, &["--part-size", "8MiB"]),
    ];
    for (r, file, args) in cases {
        let mut a = vec!["pack", "image", file.to_str().unwrap(), "--ref", r];
        a.extend_from_slice(args);
        s.ok(&a);
        s.ok(&["push", r, &format!("{}/ours/img", reg.host), "--plain-http"]);
        let tag = r.split_once(':').unwrap().1;
        let disk = c.oracle_ok(&["cloudimg-registry", &format!("{}/ours/img:{tag}", reg.host)]);
        assert!(
            disk == std::fs::read(file).unwrap(),
            "{r}: cloudimg.Stream from the registry gives the original bytes"
        );
    }
}
