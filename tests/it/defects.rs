//! Regression tests for the defects an adversarial run found (issue 8),
//! one test per defect, named after it: each failed on the code before the
//! fix. Wrong metadata published with exit 0, symlinked layout
//! directories, crafted ref names, closed pipes, hostile `data` fields,
//! incomplete graphs tagged, half-done unpacks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::util::{OCI_MANIFEST, Store, bin, bytes, desc, have_tool, manifest_bytes};
use crate::vm::assert_same_tree;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A snapshot directory with Cloud Hypervisor's `config.json` set to `config`.
fn ch_dir(st: &Store, name: &str, config: &[u8]) -> PathBuf {
    let dir = st.path(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes(64 << 10, 7)).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    dir
}

/// Item 1: `pack snapshot` published 0 vCPU / 0 B snapshots with exit 0 when
/// `config.json` could not be read or parsed.
#[test]
fn pack_with_an_unreadable_or_foreign_ch_config_fails_instead_of_publishing_zero_vcpus() {
    let st = Store::new();
    let index = || std::fs::read(st.layout.join("index.json")).unwrap();
    let before = index();
    for (name, config, says) in [
        ("garbage", &b"garbage{"[..], "not JSON"),
        ("wrongtype", br#"{"cpus":"two"}"#, "/cpus/boot_vcpus"),
        ("nomemory", br#"{"cpus":{"boot_vcpus":2}}"#, "/memory/size"),
        (
            "zerocpu",
            br#"{"cpus":{"boot_vcpus":0},"memory":{"size":1024}}"#,
            "at least 1",
        ),
    ] {
        let dir = ch_dir(&st, name, config);
        let err = st.fails(2, &["pack", "snapshot", s(&dir), "--ref", "vm:1"]);
        assert!(err.contains("config.json"), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(
            err.contains("--no-ch-config"),
            "{name}: says what to do: {err}"
        );
        assert_eq!(index(), before, "{name}: nothing tagged");
    }

    // A read error on the one open of config.json is an error too: EIO on
    // the pread that reads it (found in a traced run that succeeds).
    if have_tool("strace") {
        let dir = ch_dir(
            &st,
            "eio",
            br#"{"cpus":{"boot_vcpus":2},"memory":{"size":4096}}"#,
        );
        let probe = Store::new();
        let n = config_pread(&probe, &dir);
        let out = Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e", "trace=pread64"])
            .arg("-e")
            .arg(format!("inject=pread64:error=EIO:when={n}"))
            .arg(bin())
            .arg("--layout")
            .arg(&st.layout)
            .args(["pack", "snapshot", s(&dir), "--ref", "vm:1"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("config.json") && err.contains("Input/output error"),
            "{err}"
        );
        assert_eq!(index(), before, "nothing tagged");
    }

    // Zones add to memory.size, as Cloud Hypervisor sizes guest memory.
    let dir = ch_dir(
        &st,
        "good",
        br#"{"cpus":{"boot_vcpus":4},"memory":{"size":1024,"zones":[{"size":2048}]}}"#,
    );
    st.ok(&["pack", "snapshot", s(&dir), "--ref", "vm:good"]);
    let c = &st.json(&["inspect", "vm:good"])["snapshotConfig"];
    assert_eq!(
        (c["cpu"].as_i64(), c["memory"].as_i64()),
        (Some(4), Some(3072)),
        "{c}"
    );
    assert_eq!(c["hypervisor"], "cloud-hypervisor");

    // --no-ch-config: config.json is a plain file and no CPU is claimed.
    let dir = st.path("garbage");
    st.ok(&[
        "pack",
        "snapshot",
        s(&dir),
        "--ref",
        "vm:plain",
        "--no-ch-config",
    ]);
    let v = st.json(&["inspect", "vm:plain"]);
    assert_eq!(v["snapshotConfig"]["cpu"].as_i64().unwrap_or(0), 0, "{v}");
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "config.json"),
        "{v}"
    );
}

/// Which pread64 of its thread reads `dir/config.json` when `pack snapshot`
/// packs `dir` (strace counts injections per thread).
fn config_pread(st: &Store, dir: &Path) -> usize {
    let log = st.path("strace.log");
    crate::util::sh(
        Command::new("strace")
            .args(["-f", "-o", s(&log), "-e", "trace=openat,pread64"])
            .arg(bin())
            .arg("--layout")
            .arg(&st.layout)
            .args(["pack", "snapshot", s(dir), "--ref", "probe:1"]),
    );
    let log = std::fs::read_to_string(&log).unwrap();
    let opened = log
        .lines()
        .find(|l| l.contains("openat(") && l.contains("/config.json\""))
        .expect("config.json opened");
    let (pid, rest) = opened.split_once(' ').unwrap();
    let fd = rest.rsplit("= ").next().unwrap().trim().to_string();
    let mut n = 0;
    for l in log.lines().filter(|l| l.starts_with(&format!("{pid} "))) {
        if l.contains("pread64(") {
            n += 1;
            if l.contains(&format!("pread64({fd},")) {
                return n;
            }
        }
    }
    panic!("no pread64 of config.json in:\n{log}");
}

/// Item 2: Writers followed a symlinked `blobs/sha256` out of the layout, and gc
/// reported an empty reachable set with exit 0.
#[test]
fn writers_verify_and_gc_refuse_symlinked_or_foreign_layout_directories() {
    let st = Store::new();
    st.add("a:1", &[("f", b"kept")]);
    let outside = st.path("elsewhere");
    std::fs::rename(st.layout.join("blobs/sha256"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, st.layout.join("blobs/sha256")).unwrap();
    let f = st.file("new", b"new bytes");
    let files_outside = || std::fs::read_dir(&outside).unwrap().count();
    let n = files_outside();
    let index = std::fs::read(st.layout.join("index.json")).unwrap();
    for args in [
        vec!["add", "--ref", "b:1", s(&f)],
        vec!["gc", "--grace", "0s"],
        vec!["gc", "--dry-run"],
        vec!["verify"],
        vec!["ls"],
        vec!["init"],
    ] {
        let err = st.fails(2, &args);
        assert!(
            err.contains("blobs/sha256 is a symlink, not a directory"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("outside the layout"),
            "{args:?}: says why: {err}"
        );
    }
    assert_eq!(
        files_outside(),
        n,
        "nothing written through the link, nothing removed"
    );
    assert_eq!(std::fs::read(st.layout.join("index.json")).unwrap(), index);

    // The private directory's tmp/ is a file: even read-only verify says
    // what it is and what to do.
    let st = Store::new();
    let tmp = st.layout.join(".epoch-store/tmp");
    std::fs::remove_dir(&tmp).unwrap();
    std::fs::write(&tmp, b"").unwrap();
    for args in [
        vec!["verify"],
        vec!["gc"],
        vec!["add", s(&st.file("x", b"x"))],
    ] {
        let err = st.fails(2, &args);
        assert!(
            err.contains("tmp is a regular file, not a directory"),
            "{args:?}: {err}"
        );
        assert!(err.contains("recreates it"), "{args:?}: {err}");
    }
    // blobs/ itself a link, and the private directory a link.
    let st = Store::new();
    let away = st.path("away");
    std::fs::rename(st.layout.join("blobs"), &away).unwrap();
    std::os::unix::fs::symlink(&away, st.layout.join("blobs")).unwrap();
    assert!(st.fails(2, &["verify"]).contains("blobs is a symlink"));
    let st = Store::new();
    let away = st.path("private");
    std::fs::rename(st.layout.join(".epoch-store"), &away).unwrap();
    std::os::unix::fs::symlink(&away, st.layout.join(".epoch-store")).unwrap();
    assert!(st.fails(2, &["gc"]).contains(".epoch-store is a symlink"));
}

/// An index.json whose entries carry crafted ref names, and a good one.
fn crafted_refs(st: &Store) -> Vec<(String, String)> {
    let good = st.add("good:1", &[("f", b"good")]);
    let mut entries = vec![st.index()["manifests"][0].clone()];
    let names = [
        "evil\nFORGED ROW",
        "\x1b[31mred\x1b[0m",
        "rtl\u{202e}cod.exe",
        "",
    ];
    let mut out = vec![("good:1".to_string(), good)];
    for (i, name) in names.iter().enumerate() {
        let d = st.add(
            &format!("tmp{i}:1"),
            &[("f", format!("file {i}").as_bytes())],
        );
        let mut e = st.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["digest"] == d.as_str())
            .unwrap()
            .clone();
        e["annotations"]["org.opencontainers.image.ref.name"] = json!(name);
        entries.push(e);
        out.push((name.to_string(), d));
    }
    st.set_index(&json!({"schemaVersion": 2, "manifests": entries}));
    out
}

/// Item 3: Ref names that break the grammar were printed raw (a newline forged
/// an `ls` row), passed verify and were carried by transfers.
#[test]
fn crafted_ref_names_are_escaped_reported_and_never_carried() {
    let st = Store::new();
    let refs = crafted_refs(&st);
    let ls = st.ok(&["ls"]);
    assert_eq!(
        ls.lines().count(),
        1 + refs.len(),
        "one row per entry:\n{ls}"
    );
    assert!(!ls.contains('\x1b') && !ls.contains('\u{202e}'), "{ls:?}");
    assert!(ls.contains("evil\\nFORGED ROW"), "{ls}");
    assert!(ls.contains("\\u{1b}[31mred"), "{ls}");
    assert!(ls.contains("rtl\\u{202e}cod.exe"), "{ls}");
    // JSON keeps the names exactly, escaped so a terminal shows no control.
    let raw = st.run(&["--json", "ls"]).stdout;
    let text = String::from_utf8(raw).unwrap();
    assert!(
        !text.contains('\u{202e}') && !text.contains('\x1b'),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["ref"].as_str())
        .collect();
    for (name, _) in &refs {
        assert!(names.contains(&name.as_str()), "{name:?} in {names:?}");
    }

    // verify reports every one, with the command that fixes it.
    let out = st.run(&["--json", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bad: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "bad-ref-name")
        .collect();
    assert_eq!(bad.len(), 4, "{report}");
    assert!(bad.iter().any(|p| {
        p["message"]
            .as_str()
            .unwrap()
            .contains("untag $'evil\\nFORGED ROW'")
    }));
    let text = stderr(&st.run(&["verify"]));
    assert!(
        !text.contains('\x1b') && !text.contains('\u{202e}'),
        "{text:?}"
    );

    // Transfers refuse them, naming the entry; nothing is made at the
    // destination and no archive is left.
    let to = st.path("stick");
    let err = st.fails(2, &["copy", "--all", "--to", s(&to)]);
    assert!(
        err.contains("not a valid ref name") && err.contains("epoch-store tag"),
        "{err}"
    );
    assert!(!to.exists());
    let err = st.fails(2, &["copy", &refs[1].1, "--to", s(&to)]);
    assert!(err.contains("not a valid ref name"), "{err}");
    // A digest given to export-archive exports the entry untagged: fine.
    let archive = st.path("a.tar");
    st.ok(&["export-archive", &refs[1].1, "-o", s(&archive)]);
    let other = Store::new();
    other.ok(&["import-archive", s(&archive)]);
    other.ok(&["verify"]);

    // untag takes the exact bad name, as verify prints it.
    st.ok(&[
        "untag",
        "evil\nFORGED ROW",
        "",
        "\x1b[31mred\x1b[0m",
        "rtl\u{202e}cod.exe",
    ]);
    st.ok(&["verify"]);
    st.ok(&["copy", "--all", "--to", s(&to)]);
    Store {
        tmp: tempfile::tempdir().unwrap(),
        layout: to,
    }
    .ok(&["verify"]);
}

/// Item 3: Two entries with one ref and different digests: verify reports it,
/// inspect and the others refuse to pick one, `tag` settles it.
#[test]
fn an_ambiguous_ref_is_a_problem_not_a_silent_pick() {
    let st = Store::new();
    let a = st.add("dup:1", &[("f", b"first")]);
    let b = st.add("other:1", &[("f", b"second")]);
    let mut index = st.index();
    index["manifests"][1]["annotations"]["org.opencontainers.image.ref.name"] = json!("dup:1");
    st.set_index(&index);
    let out = st.run(&["--json", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &report["problems"][0];
    assert_eq!(p["kind"], "ambiguous-ref", "{report}");
    assert!(
        p["message"].as_str().unwrap().contains(&a) && p["message"].as_str().unwrap().contains(&b)
    );
    for args in [
        vec!["inspect", "dup:1"],
        vec!["cat", "dup:1"],
        vec!["unpack", "dup:1", "out"],
        vec!["copy", "dup:1", "--to", "x"],
        vec!["copy", "--all", "--to", "x"],
        vec!["export-archive", "dup:1", "-o", "x.tar"],
        vec!["tag", "dup:1", "new:1"],
    ] {
        let err = st.fails(2, &args);
        assert!(err.contains("ambiguous"), "{args:?}: {err}");
    }
    st.ok(&["tag", &b, "dup:1"]);
    st.ok(&["verify"]);
    assert_eq!(st.json(&["inspect", "dup:1"])["digest"], b.as_str());
}

/// Runs `epoch-store --layout L ARGS` with stdout a pipe whose reading end
/// is already closed (`| head -1` after head has gone).
fn into_closed_pipe(st: &Store, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    st.cmd(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// Item 4: `--json` output into a closed pipe exited 2 "Broken pipe".
#[test]
fn json_output_into_a_closed_pipe_is_not_an_error() {
    let st = Store::new();
    st.add("a:1", &[("f", b"x")]);
    for args in [
        vec!["ls"],
        vec!["inspect", "a:1"],
        vec!["du"],
        vec!["gc", "--dry-run"],
        vec!["verify"],
    ] {
        for json in [true, false] {
            let mut a = if json { vec!["--json"] } else { vec![] };
            a.extend(&args);
            let out = into_closed_pipe(&st, &a);
            assert_eq!(out.status.code(), Some(0), "{a:?}: {}", stderr(&out));
            assert_eq!(stderr(&out), "", "{a:?}");
        }
    }
}

/// A layout whose one manifest has a layer descriptor with a `data` field
/// that is not the layer's bytes; returns the manifest's digest.
fn hostile_data_field(st: &Store) -> String {
    let layer = st.put_raw(b"the real layer");
    let config = st.put_raw(b"{}");
    let mut l = desc("application/octet-stream", &layer, 14);
    l["data"] = json!("bm90IHRoZSBsYXllcg=="); // "not the layer"
    let m = manifest_bytes(
        desc("application/vnd.oci.empty.v1+json", &config, 2),
        vec![l],
    );
    st.root_doc("bad:1", OCI_MANIFEST, &m)
}

/// Item 5: copy, export-archive and import-archive carried a manifest whose
/// `data` field disagrees with the blob; verify blamed the blob.
#[test]
fn transfers_refuse_documents_verify_rejects() {
    let st = Store::new();
    let m = hostile_data_field(&st);
    let to = st.path("stick");
    let err = st.fails(2, &["copy", "bad:1", "--to", s(&to)]);
    assert!(err.contains("`data` field") && err.contains(&m), "{err}");
    assert!(!to.exists(), "refused before anything is written");
    let archive = st.path("bad.tar");
    let err = st.fails(2, &["export-archive", "bad:1", "-o", s(&archive)]);
    assert!(err.contains("`data` field"), "{err}");
    assert!(!archive.exists());
    let err = st.fails(2, &["export-tar", "bad:1", "-o", s(&archive)]);
    assert!(err.contains("`data` field"), "{err}");
    // An archive made by another tool (tar of the layout) is refused too,
    // and nothing is tagged.
    sh_tar(&st.layout, &archive);
    let other = Store::new();
    let err = other.fails(2, &["import-archive", s(&archive)]);
    assert!(err.contains("`data` field"), "{err}");
    assert_eq!(other.json(&["ls"]), json!([]));
    // verify's advice: the document is at fault, not the blob.
    let out = st.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("the document is broken or crafted, not the blob"),
        "{err}"
    );
    assert!(!err.contains("Restore the damaged blobs"), "{err}");

    // Two descriptors of one blob with different sizes: refused as well.
    let st = Store::new();
    let layer = st.put_raw(b"twelve bytes");
    let config = st.put_raw(b"{}");
    let m = manifest_bytes(
        desc("application/vnd.oci.empty.v1+json", &config, 2),
        vec![
            desc("application/octet-stream", &layer, 12),
            desc("application/octet-stream", &layer, 13),
        ],
    );
    st.root_doc("sizes:1", OCI_MANIFEST, &m);
    let err = st.fails(2, &["copy", "sizes:1", "--to", s(&st.path("stick"))]);
    assert!(err.contains("as 13 bytes, but the blob has 12"), "{err}");
    let err = st.fails(
        2,
        &["export-archive", "sizes:1", "-o", s(&st.path("x.tar"))],
    );
    assert!(err.contains("as 13 bytes"), "{err}");
}

/// `tar -cf ARCHIVE -C LAYOUT oci-layout index.json blobs`, as a user would.
fn sh_tar(layout: &Path, archive: &Path) {
    crate::util::sh(
        Command::new("tar")
            .arg("-cf")
            .arg(archive)
            .arg("-C")
            .arg(layout)
            .args(["oci-layout", "index.json", "blobs"]),
    );
}

/// Item 6: `tag DIGEST REF` checked only the manifest, so it tagged one whose
/// layers an earlier gc had removed.
#[test]
fn tag_refuses_a_manifest_whose_graph_is_incomplete() {
    let st = Store::new();
    let m = st.add(
        "a:1",
        &[("disk.raw", &bytes(4096, 1)), ("f", b"second layer")],
    );
    let layers = st.json(&["inspect", "a:1"])["layers"].clone();
    st.ok(&["untag", "a:1"]);
    // A young manifest whose layers an earlier gc removed: the manifest is
    // here, one layer is not.
    std::fs::remove_file(st.blob(layers[1]["digest"].as_str().unwrap())).unwrap();
    let before = std::fs::read(st.layout.join("index.json")).unwrap();
    let err = st.fails(2, &["tag", &m, "a:2"]);
    assert!(
        err.contains("is missing") && err.contains(layers[1]["digest"].as_str().unwrap()),
        "{err}"
    );
    assert_eq!(std::fs::read(st.layout.join("index.json")).unwrap(), before);
    // A layer of the wrong size is refused as well; an intact graph is tagged.
    std::fs::write(st.blob(layers[1]["digest"].as_str().unwrap()), b"short").unwrap();
    assert!(
        st.fails(2, &["tag", &m, "a:2"])
            .contains("but the blob has 5")
    );
    std::fs::write(
        st.blob(layers[1]["digest"].as_str().unwrap()),
        b"second layer",
    )
    .unwrap();
    st.ok(&["tag", &m, "a:2"]);
    st.ok(&["verify"]);
}

/// A snapshot of three files, 1 MiB chunks, packed as `vm:1`.
fn three_files(st: &Store) -> PathBuf {
    let dir = st.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a-memory"), bytes(3 << 20, 1)).unwrap();
    std::fs::write(dir.join("b-disk.raw"), bytes(2 << 20, 2)).unwrap();
    std::fs::write(dir.join("c-state"), bytes(10_000, 3)).unwrap();
    st.ok(&[
        "pack",
        "snapshot",
        s(&dir),
        "--ref",
        "vm:1",
        "--chunk-size",
        "1MiB",
    ]);
    dir
}

/// Runs `unpack vm:1 OUT` under strace with `inject` on `syscall`.
fn unpack_under(st: &Store, out: &Path, syscall: &str, inject: &str) -> Output {
    Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:{inject}"))
        .arg(bin())
        .arg("--layout")
        .arg(&st.layout)
        .args(["unpack", "vm:1", s(out)])
        .output()
        .unwrap()
}

/// Hidden entries epoch-store left in `dir` (temp files, the marker).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Item 7: A killed or failed unpack left final files and `.NAME.XXXXXX.part`
/// temp files; the rerun refused without --force, and --force kept the
/// temp files forever.
#[test]
fn a_killed_or_failed_unpack_completes_on_rerun_and_leaves_no_temp_files() {
    if !have_tool("strace") {
        return;
    }
    let st = Store::new();
    let dir = three_files(&st);
    let mut partial_seen = false;
    let mut temp_seen = false;
    let mut runs = 0;
    // Renames: the marker's is the first, then one per file; fsyncs: the
    // marker's file and directory, then one per file.
    const RENAME: &str = "?rename,?renameat,renameat2";
    const FSYNC: &str = "fsync,fdatasync";
    for (syscall, inject) in [
        (RENAME, "signal=KILL:when=3"),
        ("pwrite64", "signal=KILL:when=3"),
        (FSYNC, "signal=KILL:when=3"),
        (RENAME, "error=EIO:when=3"),
        (FSYNC, "error=EIO:when=4"),
        ("pwrite64", "error=ENOSPC:when=2"),
    ] {
        let out = st.path(&format!(
            "out-{}-{}",
            syscall.replace([',', '?'], ""),
            inject.replace([':', '='], "-")
        ));
        let first = unpack_under(&st, &out, syscall, inject);
        assert_ne!(
            first.status.code(),
            Some(0),
            "{syscall} {inject}: the injection took"
        );
        runs += 1;
        if first.status.code() == Some(2) {
            let err = stderr(&first);
            assert!(
                err.contains("run the same command again"),
                "{syscall} {inject}: {err}"
            );
        }
        let names = std::fs::read_dir(&out).unwrap().count();
        partial_seen |= out.join("a-memory").exists();
        temp_seen |= leftovers(&out).iter().any(|n| n.ends_with(".part"));
        assert!(names > 0, "{syscall} {inject}: the marker at least");
        // The same command, without --force, completes it.
        st.ok(&["unpack", "vm:1", s(&out)]);
        assert_same_tree(&dir, &out);
        assert_eq!(leftovers(&out), Vec::<String>::new(), "{syscall} {inject}");
    }
    assert_eq!(runs, 6);
    assert!(partial_seen, "some run left a restored file behind");
    assert!(temp_seen, "some run left a temp file behind");

    // A half-done unpack is another ref's business only with --force.
    let out = st.path("half");
    let first = unpack_under(&st, &out, RENAME, "signal=KILL:when=3");
    assert_ne!(first.status.code(), Some(0));
    st.add("other:1", &[("f", b"x")]);
    let img = st.path("disk.raw");
    std::fs::write(&img, bytes(8192, 9)).unwrap();
    st.ok(&["pack", "image", s(&img), "--ref", "img:1"]);
    let err = st.fails(2, &["unpack", "img:1", s(&out)]);
    assert!(err.contains("unfinished unpack"), "{err}");
    st.ok(&["unpack", "img:1", s(&out), "--force"]);
    assert!(
        !leftovers(&out).iter().any(|n| n.ends_with(".part")),
        "{:?}",
        leftovers(&out)
    );
    assert_eq!(std::fs::read(out.join("disk.raw")).unwrap(), bytes(8192, 9));
    // A completed unpack still refuses to overwrite without --force.
    let err = st.fails(2, &["unpack", "img:1", s(&out)]);
    assert!(err.contains("already exists"), "{err}");
}
