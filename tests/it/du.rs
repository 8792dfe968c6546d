//! `du`: stored, unique and shared bytes per manifest, checked against the
//! blob sizes read from the manifests, and against what gc then frees.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::{Store, bytes};
use serde_json::Value;

/// Every blob a manifest reaches (itself, config, layers) with its size.
fn blobs_of(s: &Store, r: &str) -> BTreeMap<String, u64> {
    let raw = s.ok(&["cat", r]);
    let m: Value = serde_json::from_str(&raw).unwrap();
    let digest = s.json(&["inspect", r])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut out = BTreeMap::new();
    out.insert(digest, raw.len() as u64);
    for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
        out.insert(
            d["digest"].as_str().unwrap().to_string(),
            d["size"].as_u64().unwrap(),
        );
    }
    out
}

fn row<'a>(du: &'a Value, r: &str) -> &'a Value {
    du["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["refs"].as_array().unwrap().iter().any(|x| x == r))
        .unwrap_or_else(|| panic!("no row for {r}: {du}"))
}

#[test]
fn unique_and_shared_bytes_match_the_blobs_and_gc() {
    let s = Store::new();
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    let mut mem = bytes(3 << 20, 1);
    std::fs::write(dir.join("memory-ranges"), &mem).unwrap();
    std::fs::write(dir.join("cow.raw"), bytes(2 << 20, 2)).unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":1},"memory":{"size":1073741824}}"#,
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    s.ok(&[
        "pack",
        "snapshot",
        d,
        "--ref",
        "vm:a",
        "--chunk-size",
        "1MiB",
    ]);
    // Only the middle MiB of the memory changes: two of its chunks and the
    // whole disk stay shared.
    mem[(1 << 20) + 5] ^= 0xff;
    std::fs::write(dir.join("memory-ranges"), &mem).unwrap();
    s.ok(&[
        "pack",
        "snapshot",
        d,
        "--ref",
        "vm:b",
        "--chunk-size",
        "1MiB",
    ]);
    s.ok(&["tag", "vm:b", "vm:latest"]);

    let a = blobs_of(&s, "vm:a");
    let b = blobs_of(&s, "vm:b");
    let (ka, kb): (BTreeSet<&String>, BTreeSet<&String>) = (a.keys().collect(), b.keys().collect());
    let sum = |m: &BTreeMap<String, u64>, keep: &dyn Fn(&String) -> bool| -> u64 {
        m.iter().filter(|(k, _)| keep(k)).map(|(_, v)| v).sum()
    };
    let unique_a = sum(&a, &|k| !kb.contains(k));
    let unique_b = sum(&b, &|k| !ka.contains(k));
    let shared = sum(&a, &|k| kb.contains(k));
    assert!(shared >= 4 << 20, "chunks are shared: {shared}");
    assert!(unique_a > 1 << 20 && unique_a < 2 << 20, "{unique_a}");

    let du = s.json(&["du"]);
    assert_eq!(du["rows"].as_array().unwrap().len(), 2, "{du}");
    let (ra, rb) = (row(&du, "vm:a"), row(&du, "vm:b"));
    assert_eq!(
        rb["refs"],
        serde_json::json!(["vm:b", "vm:latest"]),
        "one row per manifest"
    );
    assert_eq!(ra["stored"], a.values().sum::<u64>());
    assert_eq!(ra["unique"], unique_a);
    assert_eq!(ra["shared"], shared);
    assert_eq!(rb["stored"], b.values().sum::<u64>());
    assert_eq!(rb["unique"], unique_b);
    assert_eq!(rb["shared"], shared);
    assert_eq!(ra["blobs"], a.len());
    let all: u64 = a
        .iter()
        .chain(&b)
        .collect::<BTreeMap<_, _>>()
        .values()
        .copied()
        .sum();
    assert_eq!(du["reachableBytes"], all);
    assert_eq!(du["layoutBytes"], all);
    assert_eq!(du["unreferencedBytes"], 0);

    // Only the refs asked for; uniqueness still against everything.
    let only = s.json(&["du", "vm:latest"]);
    assert_eq!(only["rows"].as_array().unwrap().len(), 1);
    assert_eq!(only["rows"][0]["unique"], unique_b);
    let table = s.ok(&["du"]);
    assert!(
        table.contains("vm:b, vm:latest") && table.contains("UNIQUE"),
        "{table}"
    );
    assert!(
        table.contains("untagged"),
        "the note on shared rows: {table}"
    );
    s.fails(2, &["du", "vm:nope"]);

    // A manifest tagged twice: untagging one ref frees nothing.
    s.ok(&["untag", "vm:latest"]);
    let gc = s.json(&["gc", "--grace", "0s"]);
    assert_eq!(gc["removedBytes"], 0, "{gc}");
    // Untagging vm:a frees exactly its unique bytes; du says so before gc.
    s.ok(&["untag", "vm:a"]);
    let du = s.json(&["du"]);
    assert_eq!(du["unreferencedBytes"], unique_a, "{du}");
    assert_eq!(row(&du, "vm:b")["unique"], b.values().sum::<u64>());
    let gc = s.json(&["gc", "--grace", "0s"]);
    assert_eq!(gc["removedBytes"], unique_a, "{gc}");
    assert_eq!(s.json(&["du"])["layoutBytes"], b.values().sum::<u64>());
    s.ok(&["verify"]);
}

#[test]
fn an_empty_layout_has_no_rows() {
    let s = Store::new();
    let du = s.json(&["du"]);
    assert_eq!(du["rows"], serde_json::json!([]));
    assert_eq!(du["layoutBytes"], 0);
    assert!(s.ok(&["du"]).contains("REF"));
}
