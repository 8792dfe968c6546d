//! Hostile input: exit 2 (or a verify problem) with a message, never a panic,
//! never a hang, never a read outside the layout.

use crate::util::{OCI_INDEX, OCI_MANIFEST, Store, desc, manifest_bytes, sha256};
use serde_json::json;

fn assert_clean_failure(s: &Store, args: &[&str], needle: &str) {
    let out = s.run_timeout(args, 30);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

#[test]
fn traversal_and_malformed_digests_are_refused() {
    let s = Store::new();
    let upper = format!("sha256:{}", "A".repeat(64));
    for bad in [
        "sha256:../../etc/passwd",
        "sha256:/etc/passwd",
        upper.as_str(),
        "sha256:abc",
        "sha512:abc",
    ] {
        for cmd in ["cat", "inspect", "verify"] {
            assert_clean_failure(&s, &[cmd, bad], "invalid digest");
        }
        assert_clean_failure(&s, &["tag", bad, "x:1"], "invalid digest");
    }
    // An unregistered algorithm is not a digest; it is a valid ref name that does not exist.
    assert_clean_failure(
        &s,
        &["cat", "md5:d41d8cd98f00b204e9800998ecf8427e"],
        "no ref named",
    );
}

#[test]
fn bad_refs_are_refused_before_anything_is_written() {
    let s = Store::new();
    let f = s.file("f", b"x");
    let snap = s.path("snap");
    std::fs::create_dir(&snap).unwrap();
    std::fs::write(snap.join("memory-ranges"), b"guest ram").unwrap();
    // Every file of the layout, blobs and private directory included, must
    // be byte for byte as it was: a bad-ref command that stored blobs
    // before checking the name would change it.
    let refused = |args: &[&str]| {
        let before = s.snapshot();
        assert_clean_failure(&s, args, "invalid ref name");
        assert_eq!(s.snapshot(), before, "{args:?} wrote something");
    };
    for bad in ["../x", "/abs", "a b", "a//b", "-x", "x:", "a..b", ""] {
        let flag = format!("--ref={bad}");
        refused(&["add", &flag, f.to_str().unwrap()]);
        refused(&["pack", "snapshot", snap.to_str().unwrap(), &flag]);
        refused(&["untag", "--", bad]);
    }
    s.add("ok:1", &[("f", b"y")]);
    refused(&["tag", "ok:1", "../evil"]);
    refused(&["pack", "snapshot", snap.to_str().unwrap(), "--ref=a b"]);
    assert_eq!(s.json(&["ls"]).as_array().unwrap().len(), 1);
}

#[test]
fn broken_index_json_is_reported() {
    let s = Store::new();
    for (raw, needle) in [
        (&b"{not json"[..], "malformed JSON"),
        (b"[]", "not a JSON object"),
        (b"{\"schemaVersion\":1,\"manifests\":[]}", "schemaVersion"),
        (b"{\"schemaVersion\":2}", "manifests"),
        (
            b"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:../../etc/passwd\",\"size\":1}]}",
            "manifests[0]",
        ),
        (
            b"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\"size\":-1}]}",
            "manifests[0]",
        ),
    ] {
        std::fs::write(s.layout.join("index.json"), raw).unwrap();
        assert_clean_failure(&s, &["ls"], needle);
        assert_clean_failure(&s, &["tag", "a", "b"], needle);
        let out = s.run_timeout(&["--json", "verify"], 30);
        assert_eq!(out.status.code(), Some(1), "verify reports a broken index.json as damage");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["problems"][0]["kind"], "index-json");
        assert_eq!(std::fs::read(s.layout.join("index.json")).unwrap(), raw, "nothing rewritten");
    }
}

#[test]
fn huge_index_json_is_refused_without_reading_it() {
    let s = Store::new();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(s.layout.join("index.json"))
        .unwrap();
    f.set_len(65 << 20).unwrap(); // sparse: costs nothing on disk
    assert_clean_failure(&s, &["ls"], "limit");
}

#[test]
fn unknown_layout_version_and_non_layouts_are_refused() {
    let s = Store::new();
    std::fs::write(
        s.layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    for cmd in ["ls", "verify", "gc", "init"] {
        assert_clean_failure(&s, &[cmd], "unsupported imageLayoutVersion \"2.0.0\"");
    }
    std::fs::write(s.layout.join("oci-layout"), b"garbage").unwrap();
    assert_clean_failure(&s, &["ls"], "oci-layout is not valid JSON");

    let plain = Store::empty();
    std::fs::create_dir_all(&plain.layout).unwrap();
    assert_clean_failure(&plain, &["ls"], "epoch-store init");
    let file = Store::empty();
    std::fs::write(&file.layout, b"a file").unwrap();
    assert_clean_failure(&file, &["verify"], "not a directory");
}

/// A manifest whose layer is `target` (digest and size), tagged `evil:1`.
fn reference(s: &Store, digest: &str, size: usize) -> String {
    let m = manifest_bytes(
        desc("application/vnd.oci.empty.v1+json", &s.put_raw(b"{}"), 2),
        vec![desc("application/octet-stream", digest, size)],
    );
    s.root_doc("evil:1", OCI_MANIFEST, &m)
}

#[test]
fn symlinks_in_blobs_are_never_followed() {
    let s = Store::new();
    let secret = s.file("secret", b"outside the layout");
    let d = sha256(b"outside the layout");
    std::os::unix::fs::symlink(&secret, s.blob(&d)).unwrap();
    reference(&s, &d, 18);
    assert_clean_failure(&s, &["cat", &d], "symlink");
    let out = s.run_timeout(&["--json", "verify"], 30);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["not-regular-file"], "reported once, as what it is");
    assert!(
        std::fs::symlink_metadata(s.blob(&d))
            .unwrap()
            .file_type()
            .is_symlink(),
        "verify changed nothing"
    );
}

#[test]
fn fifos_and_directories_in_blobs_do_not_hang() {
    let s = Store::new();
    let d = sha256(b"fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        s.blob(&d),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let dir = sha256(b"dir");
    std::fs::create_dir(s.blob(&dir)).unwrap();
    reference(&s, &d, 4);
    assert_clean_failure(&s, &["cat", &d], "FIFO");
    assert_clean_failure(&s, &["cat", &dir], "directory");
    let out = s.run_timeout(&["verify"], 30);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FIFO") && err.contains("directory"), "{err}");
    // gc leaves what it does not understand.
    s.ok(&["gc", "--grace", "0s"]);
    assert!(s.blob(&dir).is_dir());
}

#[test]
fn hostile_digests_inside_manifests_are_refused() {
    let s = Store::new();
    let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:../../../etc/passwd","size":1},"layers":[]}"#;
    s.root_doc("evil:1", OCI_MANIFEST, raw);
    assert_clean_failure(&s, &["inspect", "evil:1"], "invalid digest");
    let err = s.fails(1, &["verify"]);
    assert!(err.contains("invalid digest"), "{err}");
    assert_clean_failure(&s, &["gc", "--grace", "0s"], "gc refused");
}

#[test]
fn ambiguous_documents_are_rejected() {
    let s = Store::new();
    let empty = s.put_raw(b"{}");
    let raw = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": desc("application/vnd.oci.empty.v1+json", &empty, 2),
        "layers": [],
        "manifests": [desc(OCI_MANIFEST, &empty, 2)],
    }))
    .unwrap();
    s.root_doc("amb:1", OCI_MANIFEST, &raw);
    assert_clean_failure(&s, &["inspect", "amb:1"], "ambiguous");
    let err = s.fails(1, &["verify"]);
    assert!(err.contains("ambiguous"), "{err}");
}

#[test]
fn absurd_sizes_are_not_trusted_for_allocation() {
    let s = Store::new();
    let d = s.put_raw(b"small");
    // Claims 2^62 bytes: neither inspect nor verify may try to allocate that.
    let empty = s.put_raw(b"{}");
    let raw = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.empty.v1+json", &empty, 2),
        "layers": [{"mediaType": OCI_MANIFEST, "digest": d, "size": 1u64 << 62}]}))
    .unwrap();
    s.root_doc("big:1", OCI_MANIFEST, &raw);
    let out = s.run_timeout(&["verify"], 30);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit"));
}

#[test]
fn deep_nesting_does_not_exhaust_anything() {
    let s = Store::new();
    let empty = s.put_raw(b"{}");
    let layer = s.put_raw(b"leaf layer");
    let m = manifest_bytes(
        desc("application/vnd.oci.empty.v1+json", &empty, 2),
        vec![desc("application/octet-stream", &layer, 10)],
    );
    let mut child = desc(OCI_MANIFEST, &s.put_raw(&m), m.len());
    for _ in 0..3000 {
        let idx = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}),
        )
        .unwrap();
        child = desc(OCI_INDEX, &s.put_raw(&idx), idx.len());
    }
    child["annotations"] = json!({"org.opencontainers.image.ref.name": "deep:1"});
    s.set_index(&json!({"schemaVersion": 2, "manifests": [child]}));
    let out = s.run_timeout(&["--json", "verify"], 120);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["documents"], 3001);
    s.ok(&["gc", "--grace", "0s"]);
    assert!(
        s.blob(&layer).exists(),
        "the leaf under 3000 indexes survives gc"
    );
}

#[test]
fn bad_embedded_data_is_reported() {
    let s = Store::new();
    let empty = s.put_raw(b"{}");
    let mut config = desc("application/vnd.oci.empty.v1+json", &empty, 2);
    config["data"] = "W10=".into(); // "[]", not "{}"
    let m = manifest_bytes(config, vec![]);
    s.root_doc("data:1", OCI_MANIFEST, &m);
    let out = s.run_timeout(&["--json", "verify"], 30);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["problems"][0]["kind"], "bad-data-field", "{r}");
}
