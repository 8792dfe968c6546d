//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `epoch-store` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_epoch-store")
}

/// A temp dir with a layout at `<tmp>/layout` (not created until `init`).
pub struct Store {
    pub tmp: tempfile::TempDir,
    pub layout: PathBuf,
}

impl Store {
    /// A fresh temp dir; the layout is not initialized.
    pub fn empty() -> Store {
        let tmp = tempfile::Builder::new()
            .prefix("epoch-it-")
            .tempdir()
            .expect("tempdir");
        let layout = tmp.path().join("layout");
        Store { tmp, layout }
    }

    /// A fresh temp dir under `parent` (for tests on a given filesystem);
    /// the layout is not initialized.
    pub fn empty_in(parent: &Path) -> Store {
        let tmp = tempfile::Builder::new()
            .prefix("epoch-it-")
            .tempdir_in(parent)
            .expect("tempdir");
        let layout = tmp.path().join("layout");
        Store { tmp, layout }
    }

    /// A fresh, initialized layout.
    pub fn new() -> Store {
        let s = Store::empty();
        s.ok(&["init"]);
        s
    }

    /// A path inside the temp dir (outside the layout).
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes a file in the temp dir and returns its path.
    pub fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).expect("write test file");
        p
    }

    /// `epoch-store --layout <layout> ARGS...` as a Command.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--layout").arg(&self.layout).args(args);
        c.env_remove("EPOCH_STORE_LAYOUT");
        c
    }

    /// Runs and returns the output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run epoch-store")
    }

    /// Runs, asserts exit 0, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "epoch-store {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs, asserts the exit code, returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "epoch-store {args:?}: expected exit {code}:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }

    /// `--json` output parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).expect("valid JSON on stdout")
    }

    /// Adds the given (name, content) files under `r` and returns the manifest digest.
    pub fn add(&self, r: &str, files: &[(&str, &[u8])]) -> String {
        let dir = self.path(&format!("src-{}", r.replace([':', '/'], "_")));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["--json".to_string(), "add".into(), "--ref".into(), r.into()];
        for (name, content) in files {
            let p = dir.join(name);
            std::fs::write(&p, content).unwrap();
            args.push(p.to_string_lossy().into_owned());
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let v: serde_json::Value = serde_json::from_str(&self.ok(&a)).unwrap();
        v["digest"].as_str().unwrap().to_string()
    }

    /// The path of a blob in the layout.
    pub fn blob(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').unwrap();
        self.layout.join("blobs").join(alg).join(hex)
    }

    /// Every file under blobs/, sorted, with contents.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        snapshot_dir(&self.layout)
    }
}

/// Every regular file under `dir` (recursively, sorted) with its bytes.
pub fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Where skipped tests are recorded, one line each; `.ci/run` empties it
/// before the tests and prints how many lines it holds after.
pub const SKIP_LOG: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-tests.log");

/// A test (or part of one) cannot run here because `reason`. With
/// `EPOCH_STORE_REQUIRE_PEERS=1` (as `.ci/run` sets) that fails the test, so
/// that in CI every test either runs or fails; otherwise the skip is printed
/// and recorded in [`SKIP_LOG`]. Callers return (or leave out the part)
/// after it.
pub fn skip(reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string();
    if std::env::var("EPOCH_STORE_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!(
            "{test}: {reason} (EPOCH_STORE_REQUIRE_PEERS=1: nothing may be skipped; run .ci/run)"
        );
    }
    record_skip(&test, reason);
}

/// A peer that no machine of ours can install (the module proxy refuses
/// it; see docs/interop.md) is not built here. Unlike [`skip`] this never
/// fails, even in CI: the test is recorded in [`SKIP_LOG`], which `.ci/run`
/// prints by name, so the gap is said aloud on every run.
pub fn peer_unavailable(reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string();
    record_skip(&test, reason);
}

fn record_skip(test: &str, reason: &str) {
    eprintln!("skipping {test}: {reason}");
    use std::io::Write;
    if let Ok(mut log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(SKIP_LOG)
    {
        let _ = writeln!(log, "{test}: {reason}");
    }
}

/// Whether an external tool is on PATH; if not, the test [skips](skip) (or
/// fails, in CI).
pub fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        skip(&format!(
            "{name} is not installed (bash .ci/run installs it)"
        ));
    }
    found
}

/// Runs an external command, asserting success; returns stdout.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(data);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Store {
    /// Writes `data` straight into `blobs/sha256/` (as another tool would) and
    /// returns its digest.
    pub fn put_raw(&self, data: &[u8]) -> String {
        let d = sha256(data);
        let p = self.blob(&d);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        d
    }

    /// Stores a document (as another tool would) and makes it the only
    /// `index.json` entry, tagged `name`; returns its digest.
    pub fn root_doc(&self, name: &str, media_type: &str, doc: &[u8]) -> String {
        let d = self.put_raw(doc);
        let mut e = desc(media_type, &d, doc.len());
        e["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
        self.set_index(&serde_json::json!({"schemaVersion": 2, "manifests": [e]}));
        d
    }

    /// Replaces index.json with `value` (as another tool would).
    pub fn set_index(&self, value: &serde_json::Value) {
        std::fs::write(
            self.layout.join("index.json"),
            serde_json::to_vec(value).unwrap(),
        )
        .unwrap();
    }

    /// Reads index.json.
    pub fn index(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.layout.join("index.json")).unwrap()).unwrap()
    }

    /// Runs with a deadline; panics if the command hangs.
    pub fn run_timeout(&self, args: &[&str], secs: u64) -> Output {
        let mut child = self
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if std::time::Instant::now() > deadline {
                child.kill().ok();
                panic!("epoch-store {args:?} hung for {secs}s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A descriptor as JSON.
pub fn desc(media_type: &str, digest: &str, size: usize) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": size})
}

/// An OCI image manifest's bytes over a config and layers.
pub fn manifest_bytes(config: serde_json::Value, layers: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    }))
    .unwrap()
}

/// The OCI manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What [`independent_check`] found.
#[derive(Debug)]
pub struct Independent {
    /// Files under `blobs/`, each re-hashed by `sha256sum`/`sha512sum`.
    pub blobs: usize,
    /// Distinct blobs reachable from the roots.
    pub reachable: usize,
    /// Their bytes (file sizes on disk).
    pub reachable_bytes: u64,
}

/// Python's `json` and coreutils' `sha256sum`, not epoch-store's code.
const INDEPENDENT_CHECK: &str = r#"
import json, os, subprocess, sys
root, want = sys.argv[1], sys.argv[2:]
def fail(msg):
    print(msg, file=sys.stderr); sys.exit(1)
blobs = 0
for alg, tool in (("sha256", "sha256sum"), ("sha512", "sha512sum")):
    d = os.path.join(root, "blobs", alg)
    if not os.path.isdir(d):
        continue
    names = sorted(os.listdir(d))
    for n in names:
        if not os.path.isfile(os.path.join(d, n)) or os.path.islink(os.path.join(d, n)):
            fail(f"blobs/{alg}/{n} is not a regular file")
    for i in range(0, len(names), 500):
        out = subprocess.run([tool, "--"] + names[i:i + 500], cwd=d, check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            h, n = line.split(None, 1)
            if h != n.lstrip("*"):
                fail(f"blobs/{alg}/{n} hashes to {h}")
    blobs += len(names)
with open(os.path.join(root, "index.json"), "rb") as f:
    index = json.load(f)
if index.get("schemaVersion") != 2 or not isinstance(index.get("manifests"), list):
    fail("index.json is not an OCI index")
roots = index["manifests"]
if want:
    roots = [m for m in roots if m["digest"] in want
             or m.get("annotations", {}).get("org.opencontainers.image.ref.name") in want]
    if not roots:
        fail(f"no entry for {want}")
DOCS = {"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json"}
seen, size, todo = set(), 0, [(m, "index.json") for m in roots]
while todo:
    d, parent = todo.pop()
    alg, hexd = d["digest"].split(":")
    p = os.path.join(root, "blobs", alg, hexd)
    if not os.path.isfile(p):
        fail(f"{d['digest']}, referenced by {parent}, is missing")
    if os.path.getsize(p) != d["size"]:
        fail(f"{d['digest']}: {parent} says {d['size']} bytes, the file has {os.path.getsize(p)}")
    if d["digest"] in seen:
        continue
    seen.add(d["digest"])
    size += d["size"]
    if d["mediaType"] in DOCS:
        with open(p, "rb") as f:
            doc = json.load(f)
        kids = ([doc["config"]] if "config" in doc else []) + doc.get("layers", []) \
            + doc.get("manifests", []) + ([doc["subject"]] if "subject" in doc else [])
        todo += [(k, d["digest"]) for k in kids]
print(blobs, len(seen), size)
"#;

/// Checks a layout with tools that share no code with epoch-store: every
/// file under `blobs/<alg>/` re-hashed by `sha256sum` (or `sha512sum`) and
/// named by its hash; `index.json` and every reachable document parsed by
/// Python's `json`; every reachable blob present with the size its
/// descriptors say. `roots`: only what these refs or digests reach (all
/// entries if empty). Panics with the first problem, prefixed by `ctx`.
pub fn independent_check(layout: &Path, roots: &[&str], ctx: &str) -> Independent {
    assert!(have_tool("python3") && have_tool("sha256sum"));
    let out = Command::new("python3")
        .arg("-c")
        .arg(INDEPENDENT_CHECK)
        .arg(layout)
        .args(roots)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{ctx}: independent check of {}: {}",
        layout.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let n: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    Independent {
        blobs: n[0] as usize,
        reachable: n[1] as usize,
        reachable_bytes: n[2],
    }
}
