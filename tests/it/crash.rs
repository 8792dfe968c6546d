//! Tests: crash safety and fault injection, with strace.
//!
//! Each sweep kills `epoch-store` (SIGKILL through `strace -e inject=...`) at
//! the 1st, 2nd, 3rd, ... call of one syscall (each of a class in turn: the
//! renames, fsyncs, writes or unlinks), on a fresh copy of a prepared layout,
//! until the command runs to completion without reaching the Nth call. After every kill the layout must be intact (`verify` exit 0, no
//! problems), hold either the old or the new state and nothing in between,
//! and the same command run again must succeed and leave the final state.
//!
//! strace keeps the `when=N` counter per thread and per syscall: "the Nth call"
//! is the Nth call of that syscall in any one thread (add hashes and copies
//! its files on rayon worker threads).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::util::{Store, bin, bytes, have_tool, sh};

/// The syscall classes. `?` ignores names that do not exist on the
/// architecture (aarch64 has no `rename` or `unlink`).
const RENAME: &str = "?rename,?renameat,renameat2";
const FSYNC: &str = "fsync,fdatasync";
const WRITE: &str = "write,pwrite64";
const UNLINK: &str = "?unlink,unlinkat";

/// No sweep here needs more kill points than this; reaching it means the
/// command never completes.
const MAX_KILL_POINTS: u32 = 100;

const TITLE: &str = "org.opencontainers.image.title";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One artifact as `cat` returns it: the manifest's digest and bytes, and
/// each layer's bytes by title.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Art {
    digest: String,
    manifest: Vec<u8>,
    layers: BTreeMap<String, Vec<u8>>,
}

/// Every root (`ls --json`) by ref name, untagged ones as `@<digest>`.
type Refs = BTreeMap<String, Art>;

/// What the layout held before the command.
struct Before {
    refs: Refs,
    index: Vec<u8>,
}

impl Before {
    fn of(s: &Store) -> Before {
        Before {
            refs: refs(s),
            index: index_bytes(s),
        }
    }
}

/// `cat SPEC`, asserting success; raw bytes.
fn cat(s: &Store, spec: &str) -> Vec<u8> {
    let out = s.run(&["cat", spec]);
    assert!(
        out.status.success(),
        "cat {spec} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn refs(s: &Store) -> Refs {
    let ls = s.json(&["ls"]);
    let mut out = Refs::new();
    for row in ls.as_array().expect("ls --json is an array") {
        let digest = row["digest"].as_str().expect("digest").to_string();
        let (key, spec) = match row["ref"].as_str() {
            Some(r) => (r.to_string(), r.to_string()),
            None => (format!("@{digest}"), digest.clone()),
        };
        let manifest = cat(s, &spec);
        let doc: Value = serde_json::from_slice(&manifest).expect("manifest is JSON");
        let mut layers = BTreeMap::new();
        for l in doc["layers"].as_array().expect("layers") {
            let title = l["annotations"][TITLE].as_str().expect("title").to_string();
            let d = l["digest"].as_str().expect("layer digest");
            layers.insert(title, cat(s, d));
        }
        let art = Art {
            digest,
            manifest,
            layers,
        };
        assert!(out.insert(key.clone(), art).is_none(), "{key} listed twice");
    }
    out
}

fn index_bytes(s: &Store) -> Vec<u8> {
    std::fs::read(s.layout.join("index.json")).expect("read index.json")
}

/// `verify --json`: exit 0 and no problems. Returns the report.
fn verify_ok(s: &Store, ctx: &str) -> Value {
    let out = s.run(&["--json", "verify"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{ctx}: verify --json printed no JSON ({e}); exit {:?}, stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{ctx}: verify: {v:#}");
    assert_eq!(v["problems"], serde_json::json!([]), "{ctx}: verify: {v:#}");
    v
}

fn is_digest_hex(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// index.json parses as an OCI index without duplicate ref names; `blobs/`
/// holds only `sha256/`, and that only regular files named by 64 lowercase
/// hex; and, judged by tools that share no code with epoch-store (so that a
/// bug in `verify` cannot hide crash damage), every blob hashes to its name
/// (`sha256sum`) and everything `index.json` reaches is there with the
/// right size (Python's `json`).
fn check_shape(s: &Store, ctx: &str) {
    crate::util::independent_check(&s.layout, &[], ctx);
    let raw = index_bytes(s);
    let index: Value = serde_json::from_slice(&raw)
        .unwrap_or_else(|e| panic!("{ctx}: index.json does not parse ({e})"));
    assert_eq!(index["schemaVersion"], 2, "{ctx}: {index}");
    let mut names = BTreeSet::new();
    for m in index["manifests"].as_array().expect("manifests array") {
        if let Some(r) = m["annotations"][REF_NAME].as_str() {
            assert!(
                names.insert(r.to_string()),
                "{ctx}: ref {r} twice in index.json"
            );
        }
    }
    let blobs = s.layout.join("blobs");
    let top: Vec<String> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["sha256"], "{ctx}: blobs/ holds {top:?}");
    for e in std::fs::read_dir(blobs.join("sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            is_digest_hex(&name),
            "{ctx}: blobs/sha256/{name} is not named by a digest"
        );
        assert!(
            e.file_type().unwrap().is_file(),
            "{ctx}: blobs/sha256/{name} is not a regular file"
        );
    }
}

/// Regular files in `.epoch-store/tmp/`.
fn temp_files(s: &Store) -> Vec<PathBuf> {
    match std::fs::read_dir(s.layout.join(".epoch-store/tmp")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => vec![],
    }
}

/// A fresh copy of `prep`'s layout (`cp -a`, so mtimes are kept).
fn copy_of(prep: &Store) -> Store {
    let s = Store::empty();
    sh(Command::new("cp")
        .arg("-a")
        .arg(&prep.layout)
        .arg(&s.layout));
    s
}

/// Which threads strace injects into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Threads {
    /// `-f`: every thread; the fault hits the first thread to make its Nth call.
    All,
    /// Without `-f` only the main thread is traced: its Nth call, even when a
    /// worker thread made N calls before it.
    Main,
}

/// `strace [-f] -e inject=SYSCALLS:ACTION:when=N epoch-store --layout L -q ARGS`.
fn strace(
    s: &Store,
    threads: Threads,
    syscalls: &str,
    action: &str,
    n: u32,
    args: &[String],
    env: &[(&str, &str)],
) -> Output {
    let mut c = Command::new("strace");
    if threads == Threads::All {
        c.arg("-f");
    }
    c.args(["-o", "/dev/null", "-e"])
        .arg(format!("trace={syscalls}"))
        .arg("-e")
        .arg(format!("inject={syscalls}:{action}:when={n}"))
        .arg(bin())
        .arg("--layout")
        .arg(&s.layout)
        .arg("-q")
        .args(args)
        .env_remove("EPOCH_STORE_LAYOUT")
        .envs(env.iter().copied());
    c.output().expect("run strace")
}

/// The command under test and what it must leave.
enum Op {
    /// `add --ref R FILE...`; the files' names and bytes.
    Add {
        r: &'static str,
        files: Vec<(PathBuf, Vec<u8>)>,
    },
    /// `tag SRC DST`.
    Tag {
        src: &'static str,
        dst: &'static str,
    },
    /// `untag R`.
    Untag { r: &'static str },
    /// `gc --grace 0s`; the garbage (paths in the layout) it must remove.
    Gc { garbage: Vec<PathBuf> },
    /// `pack snapshot DIR --ref R --chunk-size 2KiB` (files cut into
    /// chunks, hashed on worker threads); the files' names and bytes.
    Pack {
        r: &'static str,
        dir: PathBuf,
        files: Vec<(String, Vec<u8>)>,
    },
}

impl Op {
    fn args(&self) -> Vec<String> {
        match self {
            Op::Add { r, files } => {
                let mut a = vec!["add".to_string(), "--ref".into(), r.to_string()];
                a.extend(files.iter().map(|(p, _)| p.to_string_lossy().into_owned()));
                a
            }
            Op::Tag { src, dst } => vec!["tag".into(), src.to_string(), dst.to_string()],
            Op::Untag { r } => vec!["untag".into(), r.to_string()],
            Op::Gc { .. } => vec!["gc".into(), "--grace".into(), "0s".into()],
            Op::Pack { r, dir, .. } => vec![
                "pack".into(),
                "snapshot".into(),
                dir.to_string_lossy().into_owned(),
                "--ref".into(),
                r.to_string(),
                "--chunk-size".into(),
                "2KiB".into(),
            ],
        }
    }

    /// Unpacks `r` and checks it gives back exactly `files`.
    fn check_unpacked(s: &Store, r: &str, files: &[(String, Vec<u8>)], ctx: &str) {
        let out = tempfile::tempdir_in(s.tmp.path()).unwrap();
        let target = out.path().join("out");
        s.ok(&["unpack", r, target.to_str().unwrap()]);
        let mut names: Vec<String> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        want.sort();
        assert_eq!(names, want, "{ctx}: {r} unpacks to other files");
        for (n, b) in files {
            assert!(
                std::fs::read(target.join(n)).unwrap() == *b,
                "{ctx}: {r}: {n} differs"
            );
        }
    }

    /// The layers `add` must have stored, by title.
    fn add_layers(files: &[(PathBuf, Vec<u8>)]) -> BTreeMap<String, Vec<u8>> {
        files
            .iter()
            .map(|(p, b)| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    b.clone(),
                )
            })
            .collect()
    }

    /// After a kill: every ref that existed is unchanged, except that the
    /// command's own effect may be there, but only whole; when it is not,
    /// index.json is byte for byte what it was.
    fn check_partial(&self, s: &Store, before: &Before, ctx: &str) {
        let now = refs(s);
        let unchanged_index = index_bytes(s) == before.index;
        let (may_change, applied) = match self {
            Op::Add { r, files } => {
                let applied = match now.get(*r) {
                    Some(art) => {
                        assert_eq!(
                            art.layers,
                            Op::add_layers(files),
                            "{ctx}: {r} is in index.json with the wrong content"
                        );
                        s.ok(&["verify", r]);
                        true
                    }
                    None => false,
                };
                (Some(*r), applied)
            }
            Op::Tag { src, dst } => {
                let applied = match now.get(*dst) {
                    Some(art) => {
                        assert_eq!(
                            Some(art),
                            before.refs.get(*src),
                            "{ctx}: {dst} is not what {src} was"
                        );
                        true
                    }
                    None => false,
                };
                (Some(*dst), applied)
            }
            Op::Untag { r } => {
                let applied = match now.get(*r) {
                    Some(art) => {
                        assert_eq!(Some(art), before.refs.get(*r), "{ctx}: {r} changed");
                        false
                    }
                    None => true,
                };
                (Some(*r), applied)
            }
            Op::Gc { .. } => (None, false),
            Op::Pack { r, files, .. } => {
                let applied = now.contains_key(*r);
                if applied {
                    Op::check_unpacked(s, r, files, ctx);
                }
                (Some(*r), applied)
            }
        };
        for (k, art) in &before.refs {
            if Some(k.as_str()) == may_change {
                continue;
            }
            assert_eq!(
                now.get(k),
                Some(art),
                "{ctx}: {k} was lost or changed by the crash"
            );
        }
        for k in now.keys() {
            assert!(
                before.refs.contains_key(k) || Some(k.as_str()) == may_change,
                "{ctx}: {k} appeared from nowhere"
            );
        }
        if !applied {
            assert!(
                unchanged_index,
                "{ctx}: the command's effect is not visible, yet index.json changed:\n{}",
                String::from_utf8_lossy(&index_bytes(s))
            );
        }
    }

    /// The command's full effect, nothing else changed.
    fn check_done(&self, s: &Store, before: &Before, ctx: &str) {
        let now = refs(s);
        let mut expected = before.refs.clone();
        match self {
            Op::Add { r, files } => {
                let art = now
                    .get(*r)
                    .unwrap_or_else(|| panic!("{ctx}: {r} is missing"));
                assert_eq!(art.layers, Op::add_layers(files), "{ctx}: {r} content");
                s.ok(&["verify", r]);
                expected.insert(r.to_string(), art.clone());
            }
            Op::Tag { src, dst } => {
                expected.insert(dst.to_string(), before.refs[*src].clone());
            }
            Op::Untag { r } => {
                expected.remove(*r);
            }
            Op::Gc { garbage } => {
                for g in garbage {
                    assert!(!s.layout.join(g).exists(), "{ctx}: gc left {g:?}");
                }
                assert_eq!(
                    temp_files(s),
                    Vec::<PathBuf>::new(),
                    "{ctx}: gc left temp files"
                );
                assert_eq!(index_bytes(s), before.index, "{ctx}: gc changed index.json");
            }
            Op::Pack { r, files, .. } => {
                let art = now
                    .get(*r)
                    .unwrap_or_else(|| panic!("{ctx}: {r} is missing"));
                Op::check_unpacked(s, r, files, ctx);
                s.ok(&["verify", r]);
                expected.insert(r.to_string(), art.clone());
            }
        }
        assert_eq!(now, expected, "{ctx}: final refs");
        verify_ok(s, ctx);
    }

    /// Runs the command again after a kill. `untag` of a ref the killed run
    /// already removed fails (every REF must exist), changing nothing.
    fn rerun(&self, s: &Store, ctx: &str) {
        let args = self.args();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Op::Untag { r } = self
            && !refs(s).contains_key(*r)
        {
            let index = index_bytes(s);
            let err = s.fails(2, &a);
            assert!(err.contains(r), "{ctx}: {err}");
            assert_eq!(
                index_bytes(s),
                index,
                "{ctx}: a failed untag wrote index.json"
            );
            return;
        }
        s.ok(&a);
    }
}

/// After the final state: `gc --grace 0s` removes every leftover (temp files,
/// blobs of the killed run) and nothing that is reachable.
fn settle(s: &Store, ctx: &str) {
    let before = refs(s);
    s.ok(&["gc", "--grace", "0s"]);
    let v = verify_ok(s, ctx);
    assert_eq!(v["unreferencedBlobs"], 0, "{ctx}: after gc: {v:#}");
    assert_eq!(v["tempFiles"], 0, "{ctx}: after gc: {v:#}");
    assert_eq!(temp_files(s), Vec::<PathBuf>::new(), "{ctx}");
    assert_eq!(refs(s), before, "{ctx}: gc after the crash changed refs");
}

/// Kills the command at each call of each syscall of `class` in turn, on a
/// fresh copy of `prep` each time, and checks the layout after each kill.
///
/// strace counts `when=N` per syscall (and per thread), so each syscall of
/// the class is swept on its own: with the whole set, the index.json
/// `rename` would never be reached, the blobs' `renameat2` #1 coming first.
/// `add` is swept twice: in any thread, then in the main thread only (its
/// config, manifest, blob directory, index.json and layout directory calls
/// come after the worker threads' and would otherwise never be reached).
fn sweep(prep: &Store, op: &Op, class: &str) {
    let passes: &[Threads] = match op {
        Op::Add { .. } | Op::Pack { .. } => &[Threads::All, Threads::Main],
        _ => &[Threads::All],
    };
    let mut kills = 0;
    for syscall in class.split(',') {
        for &threads in passes {
            kills += sweep_one(prep, op, syscall, threads);
        }
    }
    assert!(
        kills > 0,
        "{:?} made no {class} call: the injection does not work",
        op.args()
    );
}

/// [`sweep`] for one syscall; returns the number of kills.
fn sweep_one(prep: &Store, op: &Op, syscall: &str, threads: Threads) -> u32 {
    let before = Before::of(prep);
    let args = op.args();
    // Every run before the one that completes was killed at call #n.
    for n in 1..=MAX_KILL_POINTS {
        let s = copy_of(prep);
        let out = strace(&s, threads, syscall, "signal=KILL", n, &args, &[]);
        let ctx = format!("{args:?} killed at {syscall} call #{n} ({threads:?} threads)");
        if out.status.success() {
            let ctx = format!("{args:?} run to completion under strace (n = {n}, {threads:?})");
            check_shape(&s, &ctx);
            op.check_done(&s, &before, &ctx);
            settle(&s, &ctx);
            return n - 1;
        }
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{ctx}: expected SIGKILL or success, got {:?}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        check_shape(&s, &ctx);
        verify_ok(&s, &ctx);
        op.check_partial(&s, &before, &ctx);
        op.rerun(&s, &ctx);
        check_shape(&s, &ctx);
        op.check_done(&s, &before, &ctx);
        settle(&s, &ctx);
    }
    panic!("{args:?} still hits {syscall} call #{MAX_KILL_POINTS}");
}

/// A layout with `a:1` (two files), `c:1` (one) and an untagged root.
fn base() -> Store {
    let s = Store::new();
    s.add(
        "a:1",
        &[("one.bin", &bytes(3000, 1)), ("two.txt", b"two\n")],
    );
    s.add("c:1", &[("three.bin", &bytes(2000, 3))]);
    let loose = s.file("loose.bin", &bytes(1500, 4));
    s.ok(&["add", loose.to_str().unwrap()]);
    s
}

/// `add --ref new:1` of two new files and one (`dup.bin`) whose bytes are
/// already stored as a:1's `one.bin` (so its temp file is unlinked).
fn add_op(prep: &Store) -> Op {
    let dir = prep.path("new");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<(PathBuf, Vec<u8>)> = [
        ("n1.bin", bytes(4000, 10)),
        ("n2.bin", bytes(2500, 11)),
        ("dup.bin", bytes(3000, 1)),
    ]
    .into_iter()
    .map(|(name, b)| {
        let p = dir.join(name);
        std::fs::write(&p, &b).unwrap();
        (p, b)
    })
    .collect();
    Op::Add { r: "new:1", files }
}

/// `pack snapshot` of a directory of three files, two of them cut into
/// 2 KiB chunks, one (`dup.bin`) with bytes a:1 already stores.
fn pack_op(prep: &Store) -> Op {
    let dir = prep.path("snap");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<(String, Vec<u8>)> = [
        ("memory-ranges", bytes(5000, 20)),
        ("disk.raw", bytes(4100, 21)),
        ("dup.bin", bytes(2000, 3)),
    ]
    .into_iter()
    .map(|(n, b)| {
        std::fs::write(dir.join(n), &b).unwrap();
        (n.to_string(), b)
    })
    .collect();
    Op::Pack {
        r: "vm:1",
        dir,
        files,
    }
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::open(path)
        .and_then(|f| f.set_modified(t))
        .unwrap_or_else(|e| panic!("set mtime of {path:?}: {e}"));
}

/// [`base`] plus garbage three days old: the manifest and the one unshared
/// layer of an untagged `g:1` (its other layer is c:1's, and must stay), and
/// two abandoned temp files. Returns the garbage's paths in the layout.
fn garbage_layout() -> (Store, Vec<PathBuf>) {
    let s = base();
    let g = s.add(
        "g:1",
        &[
            ("g1.bin", &bytes(3500, 20)),
            ("shared.bin", &bytes(2000, 3)),
        ],
    );
    let g1 = crate::util::sha256(&bytes(3500, 20));
    s.ok(&["untag", "g:1"]);
    let tmp = s.layout.join(".epoch-store/tmp");
    std::fs::write(tmp.join("tmp-stale1.part"), bytes(1000, 21)).unwrap();
    std::fs::write(tmp.join("tmp-stale2.part"), b"x").unwrap();
    let old = SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
    for dir in ["blobs/sha256", ".epoch-store/tmp"] {
        for e in std::fs::read_dir(s.layout.join(dir)).unwrap() {
            set_mtime(&e.unwrap().path(), old);
        }
    }
    let rel = |d: &str| PathBuf::from("blobs/sha256").join(d.strip_prefix("sha256:").unwrap());
    let garbage = vec![
        rel(&g),
        rel(&g1),
        PathBuf::from(".epoch-store/tmp/tmp-stale1.part"),
        PathBuf::from(".epoch-store/tmp/tmp-stale2.part"),
    ];
    for p in &garbage {
        assert!(s.layout.join(p).is_file(), "{p:?}");
    }
    let v = verify_ok(&s, "garbage layout");
    assert_eq!(v["unreferencedBlobs"], 2, "{v:#}");
    assert_eq!(v["tempFiles"], 2, "{v:#}");
    (s, garbage)
}

#[test]
fn pack_killed_at_each_rename_and_fsync() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    let op = pack_op(&prep);
    sweep(&prep, &op, RENAME);
    sweep(&prep, &op, FSYNC);
}

#[test]
fn add_killed_at_each_rename() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    sweep(&prep, &add_op(&prep), RENAME);
}

#[test]
fn add_killed_at_each_fsync() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    sweep(&prep, &add_op(&prep), FSYNC);
}

#[test]
fn add_killed_at_each_write() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    sweep(&prep, &add_op(&prep), WRITE);
}

#[test]
fn add_killed_at_each_unlink() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    sweep(&prep, &add_op(&prep), UNLINK);
}

#[test]
fn tag_killed_at_each_rename_fsync_and_write() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    let op = Op::Tag {
        src: "a:1",
        dst: "b:1",
    };
    for class in [RENAME, FSYNC, WRITE] {
        sweep(&prep, &op, class);
    }
}

#[test]
fn untag_killed_at_each_rename_fsync_and_write() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    let op = Op::Untag { r: "a:1" };
    for class in [RENAME, FSYNC, WRITE] {
        sweep(&prep, &op, class);
    }
}

#[test]
fn gc_killed_at_each_unlink() {
    if !have_tool("strace") {
        return;
    }
    let (prep, garbage) = garbage_layout();
    sweep(&prep, &Op::Gc { garbage }, UNLINK);
}

#[test]
fn gc_killed_at_each_fsync() {
    if !have_tool("strace") {
        return;
    }
    let (prep, garbage) = garbage_layout();
    sweep(&prep, &Op::Gc { garbage }, FSYNC);
}

/// What an error sweep found.
struct ErrorSweep {
    /// Runs in which the fault was injected.
    injected: u32,
    /// Runs in which writing the error message itself failed (see
    /// [`enospc_on_file_writes_during_add_publishes_nothing`]).
    message_failed: u32,
    /// Failed expectations, one line per injection point.
    failures: Vec<String>,
}

/// Injects `error` at each call of `syscalls` in turn; every injected run must
/// exit 2 naming the failure (`says`) on stderr, and publish nothing:
/// index.json byte for byte as before, the same refs with the same bytes.
/// With `message_may_fail`, a run whose error message could not be written
/// (Rust's `eprintln!` panics) is only checked for publishing nothing.
#[allow(clippy::too_many_arguments)]
fn error_sweep(
    prep: &Store,
    op: &Op,
    threads: Threads,
    syscalls: &str,
    error: &str,
    says: &str,
    env: &[(&str, &str)],
    message_may_fail: bool,
) -> ErrorSweep {
    let before = Before::of(prep);
    let args = op.args();
    let mut found = ErrorSweep {
        injected: 0,
        message_failed: 0,
        failures: vec![],
    };
    for n in 1..=MAX_KILL_POINTS {
        let s = copy_of(prep);
        let out = strace(
            &s,
            threads,
            syscalls,
            &format!("error={error}"),
            n,
            &args,
            env,
        );
        if out.status.success() {
            let ctx = format!("{args:?} run to completion under strace (n = {n})");
            op.check_done(&s, &before, &ctx);
            settle(&s, &ctx);
            return found;
        }
        found.injected += 1;
        let ctx = format!("{args:?} with {error} at {syscalls} call #{n} ({threads:?} threads)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut wrong = vec![];
        if message_may_fail && stderr.contains("failed printing to stderr") {
            found.message_failed += 1;
        } else {
            if out.status.code() != Some(2) {
                wrong.push(format!("exit status {:?}, expected 2", out.status));
            }
            if !stderr.contains(says) {
                wrong.push(format!("stderr does not mention {says:?}"));
            }
        }
        if index_bytes(&s) != before.index {
            wrong.push("index.json changed".to_string());
        }
        let now = refs(&s);
        if now != before.refs {
            let added: Vec<&String> = now
                .keys()
                .filter(|k| !before.refs.contains_key(*k))
                .collect();
            wrong.push(format!("refs changed (new: {added:?})"));
        }
        if !wrong.is_empty() {
            found.failures.push(format!(
                "{ctx}: {}; stderr: {}",
                wrong.join("; "),
                stderr.trim()
            ));
        }
        // Whatever happened, nothing may be damaged, and the command must
        // succeed once the fault is gone.
        check_shape(&s, &ctx);
        verify_ok(&s, &ctx);
        s.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        op.check_done(&s, &before, &ctx);
        settle(&s, &ctx);
    }
    panic!("{args:?} still hits {syscalls} call #{MAX_KILL_POINTS}");
}

/// fsync failing with EIO at any point of `add` (file, blob directory,
/// index.json, layout directory) must fail the command with exit 2 and an
/// error naming fsync, and publish nothing. Swept in any thread, then in the
/// main thread only (config, manifest, blob directory, index.json, layout
/// directory).
#[test]
fn fsync_eio_during_add_fails_and_publishes_nothing() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    let op = add_op(&prep);
    let mut failures = vec![];
    for (threads, at_least) in [(Threads::All, 5), (Threads::Main, 5)] {
        let found = error_sweep(&prep, &op, threads, FSYNC, "EIO", "fsync", &[], false);
        assert!(
            found.injected >= at_least,
            "only {} fsync calls were failed ({threads:?} threads)",
            found.injected
        );
        failures.extend(found.failures);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The same for `tag`: its index.json fsync and the layout directory fsync.
#[test]
fn fsync_eio_during_tag_fails_and_publishes_nothing() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    let op = Op::Tag {
        src: "a:1",
        dst: "b:1",
    };
    let found = error_sweep(&prep, &op, Threads::All, FSYNC, "EIO", "fsync", &[], false);
    assert!(
        found.injected >= 2,
        "only {} fsync calls were failed",
        found.injected
    );
    assert!(found.failures.is_empty(), "\n{}", found.failures.join("\n"));
}

const ENOSPC_SAYS: &str = "No space left on device";

/// ENOSPC on the writes of the main thread (config, manifest, index.json).
/// Only the main thread is traced, so the failure lands on these writes and
/// never on a later write of the error message.
#[test]
fn enospc_on_main_thread_writes_during_add_publishes_nothing() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    let op = add_op(&prep);
    let found = error_sweep(
        &prep,
        &op,
        Threads::Main,
        WRITE,
        "ENOSPC",
        ENOSPC_SAYS,
        &[],
        false,
    );
    assert!(
        found.injected >= 3,
        "only {} writes were failed",
        found.injected
    );
    assert!(found.failures.is_empty(), "\n{}", found.failures.join("\n"));
}

/// ENOSPC on the writes of the files' temp copies, on one worker thread
/// (`RAYON_NUM_THREADS=1`). strace counts per thread, so for small N the main
/// thread's Nth write, one piece of the error message, fails too and Rust's
/// `eprintln!` panics (exit 101): for those N only "failed, published
/// nothing, no damage" is asserted; the N past the message's writes are
/// checked in full.
#[test]
fn enospc_on_file_writes_during_add_publishes_nothing() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    let dir = prep.path("many");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<(PathBuf, Vec<u8>)> = (0..24u64)
        .map(|i| {
            let p = dir.join(format!("f{i:02}.bin"));
            let b = bytes(200 + i as usize, 50 + i);
            std::fs::write(&p, &b).unwrap();
            (p, b)
        })
        .collect();
    let op = Op::Add { r: "new:1", files };
    let found = error_sweep(
        &prep,
        &op,
        Threads::All,
        WRITE,
        "ENOSPC",
        ENOSPC_SAYS,
        &[("RAYON_NUM_THREADS", "1")],
        true,
    );
    assert!(
        found.injected >= 24,
        "only {} writes were failed",
        found.injected
    );
    assert!(found.failures.is_empty(), "\n{}", found.failures.join("\n"));
    assert!(
        found.injected - found.message_failed >= 4,
        "the error message itself failed for {} of {} points: too few checked in full",
        found.message_failed,
        found.injected
    );
}

/// A writer killed before its rename leaves temp files in
/// `.epoch-store/tmp/`, never in `blobs/`. verify notes them (exit 0), gc
/// with the default grace keeps them (they are young), `gc --grace 0s`
/// removes them.
#[test]
fn killed_writer_leaves_temp_files_that_gc_removes() {
    if !have_tool("strace") {
        return;
    }
    let prep = base();
    let op = add_op(&prep);
    let before = Before::of(&prep);
    let s = copy_of(&prep);
    let out = strace(&s, Threads::All, FSYNC, "signal=KILL", 1, &op.args(), &[]);
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    check_shape(&s, "killed at the first fsync");
    let left = temp_files(&s);
    assert!(!left.is_empty(), "no temp file left by the killed writer");
    for p in &left {
        let name = p.file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with("tmp-") && p.is_file(),
            "{p:?} in .epoch-store/tmp"
        );
    }
    let v = verify_ok(&s, "after the kill");
    assert_eq!(v["tempFiles"], left.len(), "{v:#}");
    let human = s.ok(&["verify"]);
    assert!(human.contains("temp files"), "verify says nothing: {human}");
    assert_eq!(refs(&s), before.refs);
    assert_eq!(index_bytes(&s), before.index);

    s.ok(&["gc"]);
    assert_eq!(
        temp_files(&s),
        left,
        "gc with a 24h grace removed young temp files"
    );

    let report = s.json(&["gc", "--grace", "0s"]);
    assert_eq!(report["removedTempFiles"], left.len(), "{report:#}");
    assert_eq!(temp_files(&s), Vec::<PathBuf>::new());
    let v = verify_ok(&s, "after gc");
    assert_eq!(v["tempFiles"], 0, "{v:#}");
    assert_eq!(refs(&s), before.refs);
}
