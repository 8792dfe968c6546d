//! Damage: verify finds it, says exactly what, reports every problem, and changes nothing.

use crate::util::{Store, bytes};
use serde_json::Value;

/// A layout with two artifacts; returns (store, layer digest of a:1, manifest digest of a:1).
fn layout() -> (Store, String, String) {
    let s = Store::new();
    let m = s.add(
        "a:1",
        &[("disk.raw", &bytes(200_000, 1)), ("mem", &bytes(50_000, 2))],
    );
    s.add("b:1", &[("other", &bytes(30_000, 3))]);
    let layer = s.json(&["inspect", "a:1"])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    (s, layer, m)
}

fn verify_problems(s: &Store, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["--json", "verify"];
    a.extend_from_slice(args);
    let before = s.snapshot();
    let out = s.run(&a);
    assert_eq!(s.snapshot(), before, "verify must change nothing");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = r["problems"].as_array().unwrap().clone();
    assert_eq!(
        out.status.code(),
        Some(if problems.is_empty() { 0 } else { 1 })
    );
    problems
}

fn mutate(path: &std::path::Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut d = std::fs::read(path).unwrap();
    f(&mut d);
    std::fs::write(path, d).unwrap();
}

#[test]
fn a_single_flipped_bit_is_found() {
    let (s, layer, _) = layout();
    mutate(&s.blob(&layer), |d| d[123_456] ^= 0x04);
    let p = verify_problems(&s, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["kind"], "digest-mismatch");
    assert_eq!(p[0]["subject"], layer.as_str());
    let err = s.fails(1, &["verify"]);
    assert!(err.contains(&layer) && err.contains("DAMAGED"), "{err}");
}

#[test]
fn truncation_and_extension_are_found() {
    for cut in [true, false] {
        let (s, layer, _) = layout();
        mutate(&s.blob(&layer), |d| {
            if cut {
                d.truncate(1000)
            } else {
                d.extend_from_slice(b"more")
            }
        });
        let p = verify_problems(&s, &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0]["kind"], "digest-mismatch");
        assert!(
            p[0]["message"]
                .as_str()
                .unwrap()
                .contains("described as 200000"),
            "{p:?}"
        );
    }
}

#[test]
fn a_missing_blob_is_found() {
    let (s, layer, _) = layout();
    std::fs::remove_file(s.blob(&layer)).unwrap();
    let p = verify_problems(&s, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["kind"], "missing-blob");
    assert_eq!(p[0]["subject"], layer.as_str());
}

#[test]
fn a_damaged_manifest_is_found_and_gc_refuses() {
    let (s, _, m) = layout();
    mutate(&s.blob(&m), |d| {
        let i = d.iter().position(|&b| b == b'{').unwrap();
        d[i] = b'[';
    });
    let p = verify_problems(&s, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["subject"], m.as_str());
    assert_eq!(p[0]["kind"], "digest-mismatch");
    let before = s.snapshot();
    let err = s.fails(2, &["gc", "--grace", "0s"]);
    assert!(
        err.contains("gc refused") && err.contains("verify"),
        "{err}"
    );
    assert_eq!(s.snapshot(), before, "gc deleted nothing");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let (s, layer, _) = layout();
    mutate(&s.blob(&layer), |d| d[0] ^= 1);
    let other = s.json(&["inspect", "b:1"])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(s.blob(&other)).unwrap();
    std::fs::write(s.layout.join("blobs/sha256/not-a-digest"), b"junk").unwrap();
    let p = verify_problems(&s, &[]);
    let kinds: Vec<&str> = p.iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 3, "{p:?}");
    for k in ["digest-mismatch", "missing-blob", "bad-blob-name"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
}

#[test]
fn verify_of_a_ref_checks_only_what_it_reaches() {
    let (s, layer, _) = layout();
    mutate(&s.blob(&layer), |d| d[0] ^= 1);
    assert!(verify_problems(&s, &["b:1"]).is_empty());
    assert_eq!(verify_problems(&s, &["a:1"]).len(), 1);
}

#[test]
fn leftovers_are_information_not_damage() {
    let (s, _, _) = layout();
    s.put_raw(b"an unreferenced blob");
    std::fs::write(
        s.layout.join(".epoch-store/tmp/tmp-abandoned.part"),
        b"half",
    )
    .unwrap();
    let out = s.run(&["--json", "verify"]);
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["unreferencedBlobs"], 1);
    assert_eq!(r["tempFiles"], 1);
    let text = s.ok(&["verify"]);
    assert!(
        text.contains("unreferenced") && text.contains("temp files"),
        "{text}"
    );
}

#[test]
fn verify_does_not_write_to_a_foreign_layout() {
    let s = Store::new();
    s.add("a:1", &[("f", b"x")]);
    std::fs::remove_dir_all(s.layout.join(".epoch-store")).unwrap();
    s.ok(&["verify"]);
    s.ok(&["ls"]);
    s.ok(&["gc", "--dry-run"]);
    assert!(
        !s.layout.join(".epoch-store").exists(),
        "read-only commands created the private dir"
    );
}

#[test]
fn a_wrong_size_in_a_descriptor_is_blamed_on_the_descriptor() {
    let s = Store::new();
    let layer = s.put_raw(b"exactly twenty bytes");
    let empty = s.put_raw(b"{}");
    let m = crate::util::manifest_bytes(
        crate::util::desc("application/vnd.oci.empty.v1+json", &empty, 2),
        vec![crate::util::desc("application/octet-stream", &layer, 21)],
    );
    let md = s.root_doc("sz:1", crate::util::OCI_MANIFEST, &m);
    let p = verify_problems(&s, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["kind"], "size-mismatch");
    assert!(p[0]["message"].as_str().unwrap().contains(&md), "{p:?}");
}
