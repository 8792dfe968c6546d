//! Tests: many `epoch-store` processes on one layout at once.
//!
//! Writers (add, tag, untag) hold `gc.lock` shared and take `index.lock`
//! around each read-modify-write of index.json; gc takes `gc.lock`
//! exclusively. These tests run writers and gc together and check that no
//! successful command's ref is lost, that gc never deletes a blob a ref
//! reaches or a running writer has published, and that index.json never
//! holds a ref twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Store, bin, bytes, have_tool, sha256};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const TITLE: &str = "org.opencontainers.image.title";

/// Runs a command and panics, with its output, unless it exits 0.
fn must(s: &Store, args: &[&str]) -> Output {
    let out = s.run(args);
    assert!(
        out.status.success(),
        "epoch-store {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// `ls --json` as ref -> digest (tagged entries only).
fn ls(s: &Store) -> BTreeMap<String, String> {
    s.json(&["ls"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            Some((
                r["ref"].as_str()?.to_string(),
                r["digest"].as_str().unwrap().to_string(),
            ))
        })
        .collect()
}

/// `verify --json`: exit 0, no problems.
fn verify_ok(s: &Store) -> Value {
    let out = s.run(&["--json", "verify"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "verify: {v:#}");
    assert_eq!(v["problems"], serde_json::json!([]), "verify: {v:#}");
    v
}

/// Ref names in index.json bytes, with a complaint for every duplicate.
/// `Err` when the bytes do not parse as an index.
fn ref_names(raw: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    let index: Value = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    let list = index["manifests"]
        .as_array()
        .ok_or_else(|| format!("no manifests array: {index}"))?;
    let mut seen = BTreeSet::new();
    let mut names = vec![];
    let mut dups = vec![];
    for m in list {
        if let Some(r) = m["annotations"][REF_NAME].as_str() {
            if !seen.insert(r) {
                dups.push(r.to_string());
            }
            names.push(r.to_string());
        }
    }
    Ok((names, dups))
}

/// Sets the flag when dropped, so that the watcher stops even when a worker
/// panics (a scope waits for all its threads).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Checks, until `stop`, what another process could see at any moment:
/// index.json always parses and holds no ref twice, and `blobs/sha256/`
/// holds nothing but digest-named files (no temp names). Returns the
/// violations seen and how many rounds ran.
fn watch(layout: &Path, stop: &AtomicBool) -> (Vec<String>, usize) {
    let mut bad = vec![];
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        rounds += 1;
        match std::fs::read(layout.join("index.json")) {
            Ok(raw) => match ref_names(&raw) {
                Ok((_, dups)) if !dups.is_empty() => {
                    bad.push(format!("index.json holds {dups:?} twice"))
                }
                Ok(_) => {}
                Err(e) => bad.push(format!("index.json does not parse: {e}")),
            },
            Err(e) => bad.push(format!("index.json unreadable: {e}")),
        }
        if let Ok(rd) = std::fs::read_dir(layout.join("blobs/sha256")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let hex = name.len() == 64
                    && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if !hex {
                    bad.push(format!("blobs/sha256/{name} appeared"));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (bad, rounds)
}

/// 8 adders (3 adds each, plus an add that is untagged at once, making
/// garbage), 4 taggers (6 tags each) and 3 gc loops (4 runs of
/// `gc --grace 0s` each), all on one layout at once. Every command must
/// succeed; afterwards every ref a command created points at the digest it
/// reported, nothing else is there, and verify finds no damage.
#[test]
fn adds_tags_and_gc_at_once_lose_nothing() {
    let s = Store::new();
    let seeds: Vec<String> = (0..4u64)
        .map(|k| s.add(&format!("s:{k}"), &[("seed.bin", &bytes(2048, 100 + k))]))
        .collect();
    let shared = bytes(3000, 999);
    // Input files, written before anything starts.
    let mut inputs = BTreeMap::new();
    for i in 0..8u64 {
        for j in 0..4u64 {
            let dir = s.path(&format!("in-{i}-{j}"));
            std::fs::create_dir_all(&dir).unwrap();
            let unique = bytes(1000 + (i * 4 + j) as usize * 37, 1000 + i * 10 + j);
            std::fs::write(dir.join("unique.bin"), &unique).unwrap();
            std::fs::write(dir.join("shared.bin"), &shared).unwrap();
            inputs.insert((i, j), (dir, unique));
        }
    }

    let created: Mutex<Vec<(String, String)>> = Mutex::new(vec![]);
    let added: Mutex<Vec<(String, Vec<u8>)>> = Mutex::new(vec![]);
    let gc_runs = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (violations, rounds) = std::thread::scope(|sc| {
        let watcher = sc.spawn(|| watch(&s.layout, &stop));
        let guard = StopOnDrop(&stop);
        let mut workers = vec![];
        for i in 0..8u64 {
            let (s, inputs, created, added) = (&s, &inputs, &created, &added);
            workers.push(sc.spawn(move || {
                for j in 0..4u64 {
                    let (dir, unique) = &inputs[&(i, j)];
                    let u = dir.join("unique.bin");
                    let sh = dir.join("shared.bin");
                    let (u, sh) = (u.to_str().unwrap(), sh.to_str().unwrap());
                    let r = if j == 3 {
                        format!("x{i}:{j}")
                    } else {
                        format!("p{i}:{j}")
                    };
                    let out = must(s, &["--json", "add", "--ref", &r, u, sh]);
                    let digest = json_of(&out)["digest"].as_str().unwrap().to_string();
                    if j == 3 {
                        // Garbage for the concurrent gc runs.
                        must(s, &["untag", &r]);
                    } else {
                        created.lock().unwrap().push((r.clone(), digest));
                        added.lock().unwrap().push((r, unique.clone()));
                    }
                }
            }));
        }
        for i in 0..4usize {
            let (s, seeds, created) = (&s, &seeds, &created);
            workers.push(sc.spawn(move || {
                for j in 0..6usize {
                    let k = (i + j) % seeds.len();
                    let r = format!("t{i}:{j}");
                    let out = must(s, &["--json", "tag", &format!("s:{k}"), &r]);
                    let v = json_of(&out);
                    assert_eq!(v["digest"], seeds[k], "tag reported another digest");
                    created
                        .lock()
                        .unwrap()
                        .push((r, v["digest"].as_str().unwrap().to_string()));
                }
            }));
        }
        for _ in 0..3 {
            let (s, gc_runs) = (&s, &gc_runs);
            workers.push(sc.spawn(move || {
                for _ in 0..4 {
                    must(s, &["--json", "gc", "--grace", "0s"]);
                    gc_runs.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for w in workers {
            w.join().expect("a worker failed");
        }
        drop(guard);
        watcher.join().unwrap()
    });
    assert!(
        violations.is_empty(),
        "seen while running:\n{}",
        violations.join("\n")
    );
    assert!(rounds > 0);
    assert_eq!(gc_runs.load(Ordering::Relaxed), 12);

    let created = created.into_inner().unwrap();
    assert_eq!(created.len(), 8 * 3 + 4 * 6);
    let mut expected: BTreeMap<String, String> = (0..4)
        .map(|k| (format!("s:{k}"), seeds[k].clone()))
        .collect();
    for (r, d) in &created {
        assert!(expected.insert(r.clone(), d.clone()).is_none(), "{r} twice");
    }
    assert_eq!(ls(&s), expected, "refs after the storm");

    let (names, dups) = ref_names(&std::fs::read(s.layout.join("index.json")).unwrap()).unwrap();
    assert!(dups.is_empty(), "duplicate refs {dups:?}");
    assert_eq!(names.len(), expected.len());

    verify_ok(&s);
    // Each added ref's layers are the exact input bytes.
    for (r, unique) in added.into_inner().unwrap() {
        let manifest: Value = serde_json::from_str(&s.ok(&["cat", &r])).unwrap();
        let layers: BTreeMap<&str, &str> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["annotations"][TITLE].as_str().unwrap(),
                    l["digest"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(layers["unique.bin"], sha256(&unique), "{r}");
        assert_eq!(layers["shared.bin"], sha256(&shared), "{r}");
    }
    // gc removed the untagged adds' unique layers, and nothing else is left over.
    s.ok(&["gc", "--grace", "0s"]);
    let v = verify_ok(&s);
    assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
    assert_eq!(v["tempFiles"], 0, "{v:#}");
    assert_eq!(ls(&s), expected);
}

/// Two storms of `tag` and `untag` on the same ref names, with a third
/// process tagging its own names: index.json never holds a ref twice (not
/// at any moment a reader sees, not at the end), and no tag is lost.
#[test]
fn tag_untag_storms_never_duplicate_refs() {
    let s = Store::new();
    let x1 = s.add("x:1", &[("one", &bytes(500, 1))]);
    let x2 = s.add("x:2", &[("two", &bytes(500, 2))]);
    let stop = AtomicBool::new(false);
    let kept: Mutex<Vec<(String, String)>> = Mutex::new(vec![]);
    let (violations, rounds) = std::thread::scope(|sc| {
        let watcher = sc.spawn(|| watch(&s.layout, &stop));
        let guard = StopOnDrop(&stop);
        let mut storms = vec![];
        for (src, digest) in [("x:1", &x1), ("x:2", &x2)] {
            let (s, kept) = (&s, &kept);
            storms.push(sc.spawn(move || {
                for k in 0..25usize {
                    must(s, &["tag", src, &format!("r:{}", k % 3)]);
                    // Several refs in one untag; the other storm may have
                    // removed one of them already.
                    let a = format!("r:{}", (k + 1) % 3);
                    let b = format!("r:{}", (k + 2) % 3);
                    let out = s.run(&["untag", &a, &b]);
                    match out.status.code() {
                        Some(0) => {}
                        Some(2) => {
                            let err = String::from_utf8_lossy(&out.stderr);
                            assert!(
                                err.contains("not found") || err.contains("no ref"),
                                "untag failed oddly: {err}"
                            );
                        }
                        _ => panic!("untag: {out:?}"),
                    }
                    if k % 5 == 0 {
                        let r = format!("keep-{}:{k}", &src[2..]);
                        must(s, &["tag", src, &r]);
                        kept.lock().unwrap().push((r, digest.clone()));
                    }
                }
            }));
        }
        {
            let (s, kept, x1) = (&s, &kept, &x1);
            storms.push(sc.spawn(move || {
                for k in 0..15usize {
                    let r = format!("own:{k}");
                    must(s, &["tag", "x:1", &r]);
                    kept.lock().unwrap().push((r, x1.clone()));
                }
            }));
        }
        for t in storms {
            t.join().expect("a storm failed");
        }
        drop(guard);
        watcher.join().unwrap()
    });
    assert!(
        violations.is_empty(),
        "seen while running:\n{}",
        violations.join("\n")
    );
    assert!(rounds > 0);

    let (names, dups) = ref_names(&std::fs::read(s.layout.join("index.json")).unwrap()).unwrap();
    assert!(dups.is_empty(), "duplicate refs at the end: {dups:?}");
    let refs = ls(&s);
    assert_eq!(names.len(), refs.len());
    assert_eq!(refs["x:1"], x1);
    assert_eq!(refs["x:2"], x2);
    for (r, d) in kept.into_inner().unwrap() {
        assert_eq!(refs.get(&r), Some(&d), "{r} was lost");
    }
    for (r, d) in &refs {
        assert!(d == &x1 || d == &x2, "{r} points at {d}");
        assert!(
            r.starts_with("x:")
                || r.starts_with("r:")
                || r.starts_with("keep-")
                || r.starts_with("own:"),
            "unexpected ref {r}"
        );
    }
    verify_ok(&s);
}

/// `add --ref big:1` of a few MB; `gc --grace 0s` runs over and over while
/// it does. The add's blobs are unreferenced until its index.json update,
/// and younger than no grace at all: only the lock keeps gc off them.
#[test]
fn gc_during_a_large_add_keeps_its_blobs() {
    let s = Store::new();
    s.add("old:1", &[("old.bin", &bytes(4096, 5))]);
    let big = bytes(6 << 20, 77);
    let big2 = bytes(3 << 20, 78);
    let f1 = s.file("big.bin", &big);
    let f2 = s.file("big2.bin", &big2);
    let mut adder = s
        .cmd(&[
            "--json",
            "add",
            "--ref",
            "big:1",
            f1.to_str().unwrap(),
            f2.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut gc_runs = 0;
    while adder.try_wait().unwrap().is_none() {
        must(&s, &["gc", "--grace", "0s"]);
        gc_runs += 1;
    }
    let out = adder.wait_with_output().unwrap();
    assert!(out.status.success(), "add: {out:?}");
    assert!(gc_runs > 0);
    let digest = json_of(&out)["digest"].as_str().unwrap().to_string();
    must(&s, &["gc", "--grace", "0s"]);
    assert_eq!(ls(&s)["big:1"], digest);
    verify_ok(&s);
    let manifest: Value = serde_json::from_str(&s.ok(&["cat", "big:1"])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers[0]["digest"], sha256(&big));
    assert_eq!(layers[1]["digest"], sha256(&big2));
    let out = s.run(&["cat", &sha256(&big)]);
    assert!(out.status.success() && out.stdout == big, "big.bin's bytes");
}

/// The same race made certain: strace holds `add` for 1.5 s at its
/// index.json rename, when all its blobs are published and none is
/// referenced yet. A `gc --grace 0s` started then must wait for the add
/// (its exclusive lock against the writer's shared one) and remove nothing
/// of it.
#[test]
fn gc_waits_for_a_writer_paused_before_its_index_update() {
    if !have_tool("strace") {
        return;
    }
    let s = Store::new();
    s.add("old:1", &[("old.bin", &bytes(4096, 5))]);
    let big = bytes(2 << 20, 91);
    let f = s.file("paused.bin", &big);
    let blob = s.blob(&sha256(&big));
    let mut adder = Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-e", "trace=?rename,?renameat"])
        .arg("-e")
        .arg("inject=?rename,?renameat:delay_enter=1500ms")
        .arg(bin())
        .arg("--layout")
        .arg(&s.layout)
        .args(["--json", "add", "--ref", "paused:1"])
        .arg(&f)
        .env_remove("EPOCH_STORE_LAYOUT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the layer is published, i.e. the add is in its pause.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !blob.exists() {
        assert!(
            Instant::now() < deadline,
            "the add never published its layer"
        );
        assert!(adder.try_wait().unwrap().is_none(), "the add ended early");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let gc = s.run_timeout(&["--json", "gc", "--grace", "0s"], 30);
    let waited = started.elapsed();
    assert!(gc.status.success(), "gc: {gc:?}");
    let out = adder.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&gc);
    assert_eq!(report["removedBlobs"], 0, "gc removed blobs: {report:#}");
    assert!(
        waited > Duration::from_millis(500),
        "gc did not wait for the writer ({waited:?})"
    );
    let digest = json_of(&out)["digest"].as_str().unwrap().to_string();
    assert_eq!(ls(&s)["paused:1"], digest);
    assert!(blob.is_file());
    verify_ok(&s);
}
