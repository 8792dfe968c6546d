//! The CLI's behaviour on the real binary: commands, output, exit codes.

use crate::util::{Store, bin, bytes};
use serde_json::Value;

#[test]
fn init_creates_a_layout_and_is_idempotent() {
    let s = Store::empty();
    let out = s.ok(&["init"]);
    assert!(out.contains("Initialized"), "{out}");
    let marker: Value =
        serde_json::from_slice(&std::fs::read(s.layout.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(marker["imageLayoutVersion"], "1.0.0");
    assert_eq!(s.index()["manifests"], serde_json::json!([]));
    assert!(s.layout.join("blobs/sha256").is_dir());
    s.add("a:1", &[("f", b"x")]);
    let before = std::fs::read(s.layout.join("index.json")).unwrap();
    s.ok(&["init"]);
    assert_eq!(
        std::fs::read(s.layout.join("index.json")).unwrap(),
        before,
        "init again changes nothing"
    );
}

#[test]
fn init_refuses_a_foreign_index_json() {
    let s = Store::empty();
    std::fs::create_dir_all(&s.layout).unwrap();
    std::fs::write(s.layout.join("index.json"), b"{\"mine\":true}").unwrap();
    let err = s.fails(2, &["init"]);
    assert!(err.contains("no oci-layout"), "{err}");
    assert_eq!(
        std::fs::read(s.layout.join("index.json")).unwrap(),
        b"{\"mine\":true}"
    );
}

#[test]
fn add_ls_inspect_cat_round_trip() {
    let s = Store::new();
    let disk = bytes(300_000, 1);
    let digest = s.add(
        "vm:v1",
        &[("overlay.qcow2", &disk), ("config.json", b"{\"cpu\":2}")],
    );
    let ls = s.json(&["ls"]);
    assert_eq!(ls.as_array().unwrap().len(), 1);
    assert_eq!(ls[0]["ref"], "vm:v1");
    assert_eq!(ls[0]["digest"], digest.as_str());
    assert_eq!(
        ls[0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        ls[0]["artifactType"],
        "application/vnd.epoch-store.files.v1"
    );
    assert_eq!(ls[0]["kind"], "unknown");
    let total = ls[0]["size"].as_u64().unwrap();
    let independent = crate::util::independent_check(&s.layout, &["vm:v1"], "vm:v1");
    assert_eq!(
        total, independent.reachable_bytes,
        "size counts every blob once, as Python's walk of the manifests does"
    );

    let inspect = s.json(&["inspect", "vm:v1"]);
    let layers = inspect["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "overlay.qcow2"
    );
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.cocoonstack.disk.qcow2"
    );
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.cocoonstack.vm.config+json"
    );
    assert_eq!(inspect["size"].as_u64().unwrap(), total);

    // cat of a layer by digest gives the file back; cat of the ref gives the stored manifest bytes.
    let layer = layers[0]["digest"].as_str().unwrap();
    let out = s.cmd(&["cat", layer]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, disk);
    let manifest = s.cmd(&["cat", "vm:v1"]).output().unwrap().stdout;
    assert_eq!(manifest, std::fs::read(s.blob(&digest)).unwrap());
    let human = s.ok(&["inspect", "vm:v1"]);
    assert!(
        human.contains("overlay.qcow2") && human.contains("Layers (2)"),
        "{human}"
    );
}

#[test]
fn cat_streams_large_blobs_and_fails_on_damage() {
    let s = Store::new();
    let big = bytes(17 << 20, 7);
    s.add("big:1", &[("big.raw", &big)]);
    let layer = s.json(&["inspect", "big:1"])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.cmd(&["cat", &layer]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == big, "streamed bytes differ");
    // Flip a bit near the end: the stream is written but the exit code says it is bad.
    let p = s.blob(&layer);
    let mut data = std::fs::read(&p).unwrap();
    let n = data.len();
    data[n - 10] ^= 1;
    std::fs::write(&p, data).unwrap();
    let err = s.fails(2, &["cat", &layer]);
    assert!(err.contains("damaged"), "{err}");
}

#[test]
fn tags_move_share_and_never_duplicate() {
    let s = Store::new();
    let a = s.add("a:1", &[("f", b"one")]);
    let b = s.add("b:1", &[("f", b"two")]);
    s.ok(&["tag", "a:1", "latest"]);
    s.ok(&["tag", "a:1", "x/y:z"]);
    s.ok(&["tag", "b:1", "latest"]);
    let idx = s.index();
    let refs: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(
        refs.iter().filter(|r| **r == "latest").count(),
        1,
        "{refs:?}"
    );
    let ls = s.json(&["ls"]);
    let find = |r: &str| {
        ls.as_array()
            .unwrap()
            .iter()
            .find(|e| e["ref"] == r)
            .unwrap()["digest"]
            .clone()
    };
    assert_eq!(find("latest"), b.as_str());
    assert_eq!(find("x/y:z"), a.as_str());
    // Tag by digest.
    s.ok(&["tag", &a, "by-digest"]);
    assert_eq!(s.json(&["inspect", "by-digest"])["digest"], a.as_str());
}

#[test]
fn untag_is_all_or_nothing() {
    let s = Store::new();
    s.add("a:1", &[("f", b"one")]);
    s.add("b:1", &[("f", b"two")]);
    let err = s.fails(2, &["untag", "a:1", "nope:1"]);
    assert!(
        err.contains("nope:1") && err.contains("epoch-store ls"),
        "{err}"
    );
    assert_eq!(
        s.json(&["ls"]).as_array().unwrap().len(),
        2,
        "nothing removed"
    );
    s.ok(&["untag", "a:1", "b:1"]);
    assert_eq!(s.json(&["ls"]), serde_json::json!([]));
}

#[test]
fn gc_honours_the_grace_period_and_untagged_roots() {
    let s = Store::new();
    s.add("keep:1", &[("f", b"keep")]);
    let gone = s.add("gone:1", &[("g", &bytes(5000, 3))]);
    let out = s.json(&["add", s.file("untagged", b"root").to_str().unwrap()]);
    assert_eq!(out["ref"], Value::Null);
    s.ok(&["untag", "gone:1"]);
    // Default grace 24h: the fresh unreachable blobs stay.
    let r = s.json(&["gc"]);
    assert_eq!(r["removedBlobs"], 0, "{r}");
    assert!(r["plan"]["youngBlobs"].as_u64().unwrap() >= 2, "{r}");
    // Dry run lists but removes nothing.
    let before = s.snapshot();
    let plan = s.json(&["gc", "--dry-run", "--grace", "0s"]);
    assert_eq!(s.snapshot(), before);
    let doomed: Vec<&str> = plan["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["digest"].as_str().unwrap())
        .collect();
    assert!(doomed.contains(&gone.as_str()));
    let r = s.json(&["gc", "--grace", "0s"]);
    assert_eq!(r["removedBlobs"].as_u64().unwrap(), doomed.len() as u64);
    assert!(!s.blob(&gone).exists());
    assert!(
        s.blob(out["digest"].as_str().unwrap()).exists(),
        "untagged root kept"
    );
    s.ok(&["verify"]);
    s.ok(&["cat", "keep:1"]);
}

#[test]
fn gc_rejects_bad_durations() {
    let s = Store::new();
    let err = s.fails(2, &["gc", "--grace", "soon"]);
    assert!(err.contains("24h"), "{err}");
}

#[test]
fn help_has_examples_and_exit_codes() {
    let out = std::process::Command::new(bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("Exit codes"),
        "{text}"
    );
    for cmd in [
        "init", "add", "ls", "inspect", "cat", "tag", "untag", "gc", "verify",
    ] {
        let out = std::process::Command::new(bin())
            .args([cmd, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Examples:"),
            "{cmd} --help lacks examples"
        );
    }
}

#[test]
fn layout_comes_from_the_environment() {
    let s = Store::new();
    let out = std::process::Command::new(bin())
        .env("EPOCH_STORE_LAYOUT", &s.layout)
        .args(["--json", "ls"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn missing_ref_is_exit_2_with_advice() {
    let s = Store::new();
    for cmd in ["inspect", "cat", "verify"] {
        let err = s.fails(2, &[cmd, "nope:1"]);
        assert!(
            err.contains("no ref named \"nope:1\"") && err.contains("epoch-store ls"),
            "{cmd}: {err}"
        );
    }
    let err = s.fails(2, &["tag", "nope:1", "x"]);
    assert!(err.contains("nope:1"), "{err}");
}

#[test]
fn foreign_index_entries_and_fields_survive_our_writes() {
    let s = Store::new();
    let d = s.add("a:1", &[("f", b"one")]);
    let mut idx = s.index();
    idx["annotations"] = serde_json::json!({"org.example.keep": "yes"});
    idx["x-unknown"] = serde_json::json!([1, {"deep": true}]);
    idx["manifests"][0]["annotations"]["org.example.note"] = "mine".into();
    idx["manifests"][0]["x-extra"] = 42.into();
    s.set_index(&idx);
    s.ok(&["tag", "a:1", "b:1"]);
    s.ok(&["untag", "b:1"]);
    let after = s.index();
    assert_eq!(after["annotations"]["org.example.keep"], "yes");
    assert_eq!(after["x-unknown"][1]["deep"], true);
    assert_eq!(after["manifests"][0]["x-extra"], 42);
    assert_eq!(
        after["manifests"][0]["annotations"]["org.example.note"],
        "mine"
    );
    assert_eq!(after["manifests"][0]["digest"], d.as_str());
}

#[test]
fn add_rejects_duplicate_titles_and_non_files() {
    let s = Store::new();
    let d1 = s.path("d1");
    let d2 = s.path("d2");
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    std::fs::write(d1.join("same"), b"1").unwrap();
    std::fs::write(d2.join("same"), b"2").unwrap();
    let err = s.fails(
        2,
        &[
            "add",
            "--ref",
            "x:1",
            d1.join("same").to_str().unwrap(),
            d2.join("same").to_str().unwrap(),
        ],
    );
    assert!(err.contains("unique"), "{err}");
    let err = s.fails(2, &["add", "--ref", "x:1", d1.to_str().unwrap()]);
    assert!(err.contains("not a regular file"), "{err}");
    let err = s.fails(
        2,
        &["add", "--ref", "x:1", s.path("absent").to_str().unwrap()],
    );
    assert!(err.contains("absent"), "{err}");
    assert_eq!(s.json(&["ls"]), serde_json::json!([]));
}

#[test]
fn re_adding_repairs_a_truncated_blob() {
    let s = Store::new();
    let data = bytes(100_000, 9);
    s.add("a:1", &[("disk.raw", &data)]);
    let layer = s.json(&["inspect", "a:1"])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(s.blob(&layer), &data[..5000]).unwrap();
    s.fails(1, &["verify"]);
    s.add("a:2", &[("disk.raw", &data)]);
    s.ok(&["verify"]);
    assert_eq!(std::fs::read(s.blob(&layer)).unwrap(), data);
}

#[test]
fn quiet_prints_nothing_on_success() {
    let s = Store::new();
    let f = s.file("f", b"x");
    let out = s
        .cmd(&["-q", "add", "--ref", "q:1", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let out = s.cmd(&["-q", "verify"]).output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn an_unwritable_stdout_is_exit_2_not_a_panic() {
    let s = Store::new();
    for args in [&["ls"][..], &["verify"], &["--json", "ls"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = s.cmd(args).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("cannot write output"), "{args:?}: {err}");
    }
}
