//! Tests: the real `oras` (v1.3.6) and `crane` (v0.22.1) CLIs as oracles,
//! installed by `.ci/go-peers.sh`. oras reads, copies and pulls what we
//! write and writes (push, attach, cocoonstack's split OS images, delete)
//! what we read; crane pushes our layouts through a registry on 127.0.0.1
//! and pulls them back. Mapping and findings: docs/interop.md.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Store, bytes, have_tool, sh, sha256};
use crate::vm::{assert_same_tree, snapshot_dir};

const TITLE: &str = "org.opencontainers.image.title";
const OS_IMAGE: &str = "application/vnd.cocoonstack.os-image.v1+json";
const WINDOWS_IMAGE: &str = "application/vnd.cocoonstack.windows-image.v1+json";
const QCOW2_PART: &str = "application/vnd.cocoonstack.disk.qcow2.part";
const WINDOWS_QCOW2_PART: &str = "application/vnd.cocoonstack.windows.disk.qcow2.part";

// ---------------------------------------------------------------- helpers

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A peer command with its registry credentials pointed at an empty dir,
/// so that nothing of the machine's own config is read.
fn peer(tool: &str, home: &Path) -> Command {
    let mut c = Command::new(tool);
    c.env("DOCKER_CONFIG", home).stdin(Stdio::null());
    c
}

/// `oras ARGS` in `cwd`, whatever the exit code.
fn oras(st: &Store, cwd: &Path, args: &[&str]) -> Output {
    peer("oras", &st.path("peer-home"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run oras")
}

/// `oras ARGS`, asserting success; stdout.
fn oras_ok(st: &Store, cwd: &Path, args: &[&str]) -> Vec<u8> {
    let out = oras(st, cwd, args);
    assert!(
        out.status.success(),
        "oras {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `oras manifest fetch --oci-layout-path DIR REF`: the raw manifest bytes.
fn oras_fetch(st: &Store, dir: &Path, r: &str) -> Vec<u8> {
    oras_ok(
        st,
        st.tmp.path(),
        &["manifest", "fetch", "--oci-layout-path", s(dir), r],
    )
}

/// `epoch-store cat TARGET` in `st`, asserting exit 0.
fn cat(st: &Store, target: &str) -> Vec<u8> {
    let out = st.run(&["cat", target]);
    assert!(
        out.status.success(),
        "cat {target} in {}: {}",
        st.layout.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `verify --json`, asserting exit 0 and no problems; the report.
fn assert_verify_clean(st: &Store) -> Value {
    let out = st.run(&["--json", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify of {}:\n{}\n{}",
        st.layout.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"], json!([]), "{v:#}");
    v
}

/// A `Store` handle on another layout directory.
fn at(layout: PathBuf) -> Store {
    let mut st = Store::empty();
    st.layout = layout;
    st
}

/// `ls --json` rows by ref (`<untagged>` for untagged roots, with the digest).
fn ls(st: &Store) -> Vec<(String, Value)> {
    let rows = st.json(&["ls"]);
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = match r["ref"].as_str() {
                Some(n) => n.to_string(),
                None => format!("<untagged>@{}", r["digest"].as_str().unwrap()),
            };
            (name, r.clone())
        })
        .collect()
}

fn row<'a>(rows: &'a [(String, Value)], name: &str) -> &'a Value {
    &rows
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no ls row {name}: {rows:#?}"))
        .1
}

fn titled<'a>(m: &'a Value, title: &str) -> &'a Value {
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["annotations"][TITLE] == title)
        .unwrap_or_else(|| panic!("no layer titled {title}: {m:#}"))
}

/// What every test starts from: one layout holding a chunked, compressed
/// snapshot (`vm:v2`), a qcow2 OS image in 1 MiB parts (`img:1`), a plain
/// artifact of two files (`files:1`) and an untagged root, with the
/// originals beside it.
struct Sources {
    st: Store,
    vm: PathBuf,
    raw: PathBuf,
    qcow2: PathBuf,
    files: Vec<(String, Vec<u8>)>,
    untagged: String,
}

/// A sparse raw disk, converted to a qcow2 of a few MiB by `qemu-img`.
fn qcow2_image(st: &Store, name: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::FileExt;
    let raw = st.path(&format!("{name}.raw"));
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(64 << 20).unwrap();
    f.write_all_at(&bytes(2 << 20, 21), 1 << 20).unwrap();
    f.write_all_at(&bytes(700_000, 22), 40 << 20).unwrap();
    f.sync_all().unwrap();
    let qcow2 = st.path(name);
    sh(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2));
    (raw, qcow2)
}

fn sources() -> Option<Sources> {
    if !have_tool("qemu-img") {
        return None;
    }
    let st = Store::new();
    let vm = snapshot_dir(&st);
    st.ok(&[
        "pack",
        "snapshot",
        s(&vm),
        "--ref",
        "vm:v2",
        "--chunk-size",
        "1MiB",
        "--compress",
        "zstd",
    ]);
    let (raw, qcow2) = qcow2_image(&st, "disk.qcow2");
    st.ok(&[
        "pack",
        "image",
        s(&qcow2),
        "--ref",
        "img:1",
        "--part-size",
        "1MiB",
    ]);
    let files = vec![
        ("runbook.md".to_string(), b"# restore the VM\n".to_vec()),
        ("payload.bin".to_string(), bytes(300_000, 23)),
    ];
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    st.add("files:1", &refs);
    let loose = st.file("loose.txt", b"an untagged root\n");
    let untagged = st.json(&["add", s(&loose)])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let v = st.json(&["inspect", "vm:v2"]);
    assert_eq!(
        v["artifactType"], "application/vnd.cocoonstack.snapshot.v2+json",
        "the fixture is a chunked snapshot"
    );
    Some(Sources {
        st,
        vm,
        raw,
        qcow2,
        files,
        untagged,
    })
}

impl Sources {
    /// The refs (and the untagged root's digest) every test checks.
    fn targets(&self) -> Vec<String> {
        vec![
            "vm:v2".into(),
            "img:1".into(),
            "files:1".into(),
            self.untagged.clone(),
        ]
    }

    /// Checks that `dst` holds the three artifacts whole: the snapshot
    /// unpacks to the directory, the image to the qcow2 (which qemu-img
    /// checks and compares with the raw disk), the files' layers are the
    /// files.
    fn assert_same_artifacts(&self, dst: &Store, vm: &str, img: &str, files: &str) {
        let out = dst.path("unpacked-vm");
        dst.ok(&["unpack", vm, s(&out)]);
        assert_same_tree(&self.vm, &out);
        let out = dst.path("unpacked-img");
        dst.ok(&["unpack", img, s(&out)]);
        let disk = out.join("disk.qcow2");
        assert!(std::fs::read(&disk).unwrap() == std::fs::read(&self.qcow2).unwrap());
        sh(Command::new("qemu-img").arg("check").arg(&disk));
        sh(Command::new("qemu-img")
            .args(["compare", "-q"])
            .arg(&self.raw)
            .arg(&disk));
        let m: Value = serde_json::from_slice(&cat(dst, files)).unwrap();
        for (name, data) in &self.files {
            let d = titled(&m, name)["digest"].as_str().unwrap();
            assert!(&cat(dst, d) == data, "{name}");
        }
    }
}

// ---------------------------------------------------------------- oras reads ours

/// `oras manifest fetch` reads every kind we write byte for byte, by ref
/// and by digest; `oras repo tags` lists our refs; `oras pull` of our OS
/// image gives parts that `sha256sum -c SHA256SUMS` accepts and that join
/// into the qcow2, and of our files artifact the files themselves.
#[test]
fn oras_fetches_and_pulls_what_we_write() {
    if !have_tool("oras") {
        return;
    }
    let Some(src) = sources() else { return };
    let st = &src.st;
    for t in src.targets() {
        let ours = cat(st, &t);
        let d = sha256(&ours);
        assert!(std::fs::read(st.blob(&d)).unwrap() == ours, "{t}");
        assert_eq!(oras_fetch(st, &st.layout, &t), ours, "{t}");
        assert_eq!(oras_fetch(st, &st.layout, &d), ours, "{t} by digest");
    }
    // `--oci-layout DIR:REF` splits at the last colon: a ref without one
    // works, `name:tag` is taken for the directory `DIR:name` and tag.
    st.ok(&["tag", "files:1", "plain"]);
    let plain = format!("{}:plain", st.layout.display());
    let got = oras_ok(
        st,
        st.tmp.path(),
        &["manifest", "fetch", "--oci-layout", &plain],
    );
    assert_eq!(got, cat(st, "files:1"));
    let split = format!("{}:files:1", st.layout.display());
    let out = oras(
        st,
        st.tmp.path(),
        &["manifest", "fetch", "--oci-layout", &split],
    );
    assert!(
        !out.status.success(),
        "oras no longer splits at the last colon"
    );

    let tags = oras_ok(
        st,
        st.tmp.path(),
        &["repo", "tags", "--oci-layout", s(&st.layout)],
    );
    let tags: BTreeSet<&str> = std::str::from_utf8(&tags).unwrap().lines().collect();
    let ours: BTreeSet<String> = ls(st)
        .into_iter()
        .filter(|(n, _)| !n.starts_with('<'))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(tags, ours.iter().map(String::as_str).collect());

    let pulled = st.path("pulled-img");
    std::fs::create_dir(&pulled).unwrap();
    oras_ok(
        st,
        &pulled,
        &[
            "pull",
            "--no-tty",
            "--oci-layout-path",
            s(&st.layout),
            "img:1",
        ],
    );
    sh(Command::new("sha256sum")
        .current_dir(&pulled)
        .args(["-c", "--quiet", "SHA256SUMS"]));
    let mut parts: Vec<String> = std::fs::read_dir(&pulled)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".qcow2.part"))
        .collect();
    parts.sort();
    assert!(parts.len() > 2, "{parts:?}");
    let joined: Vec<u8> = parts
        .iter()
        .flat_map(|p| std::fs::read(pulled.join(p)).unwrap())
        .collect();
    assert!(joined == std::fs::read(&src.qcow2).unwrap(), "cat *.part");

    let pulled = st.path("pulled-files");
    std::fs::create_dir(&pulled).unwrap();
    oras_ok(
        st,
        &pulled,
        &[
            "pull",
            "--no-tty",
            "--oci-layout-path",
            s(&st.layout),
            "files:1",
        ],
    );
    for (name, data) in &src.files {
        assert!(&std::fs::read(pulled.join(name)).unwrap() == data, "{name}");
    }

    // A chunked snapshot titles every chunk with its file's name, as
    // cocoon-common does: oras pull refuses it (unpack is the reader).
    let pulled = st.path("pulled-vm");
    std::fs::create_dir(&pulled).unwrap();
    let args = [
        "pull",
        "--no-tty",
        "--oci-layout-path",
        s(&st.layout),
        "vm:v2",
    ];
    let out = oras(st, &pulled, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("duplicate name"),
        "{err}"
    );
}

/// `oras cp` out of our layout into a new one: we verify the copy clean
/// (every blob, nothing unreferenced), unpack the snapshot and the image
/// to the originals, and can write to the layout oras made.
#[test]
fn oras_cp_of_our_artifacts_verifies_and_unpacks() {
    if !have_tool("oras") {
        return;
    }
    let Some(src) = sources() else { return };
    let st = &src.st;
    let dst = at(st.path("oras-copy"));
    for t in src.targets() {
        oras_ok(
            st,
            st.tmp.path(),
            &[
                "cp",
                "--no-tty",
                "--from-oci-layout-path",
                s(&st.layout),
                "--to-oci-layout-path",
                s(&dst.layout),
                &t,
                &t,
            ],
        );
        assert_eq!(cat(&dst, &t), cat(st, &t), "{t}");
    }
    let v = assert_verify_clean(&dst);
    let here = assert_verify_clean(st);
    assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
    assert_eq!(v["blobsChecked"], here["blobsChecked"], "{v:#}");
    let rows = ls(&dst);
    assert_eq!(row(&rows, "vm:v2")["kind"], "snapshot");
    assert_eq!(row(&rows, "img:1")["kind"], "cloud-image");
    assert_eq!(
        row(&rows, "img:1")["logicalSize"],
        std::fs::metadata(&src.qcow2).unwrap().len()
    );
    // Copied by digest, the root stays untagged there too.
    assert_eq!(
        row(&rows, &format!("<untagged>@{}", src.untagged))["kind"],
        "unknown"
    );
    src.assert_same_artifacts(&dst, "vm:v2", "img:1", "files:1");
    dst.add("ours:1", &[("after.txt", b"written after oras")]);
    assert_verify_clean(&dst);
    assert_eq!(oras_fetch(st, &dst.layout, "ours:1"), cat(&dst, "ours:1"));
}

// ---------------------------------------------------------------- we read oras's

/// What `oras push` and `oras attach` write into a layout of ours verifies
/// clean and lists: oras rewrites `index.json` (in its own order) and keeps
/// our entries; the referrer is an untagged entry. Our gc keeps the
/// referrer, and through its `subject` the artifact it refers to even
/// once that is untagged; `copy --all` carries both and `oras discover`
/// finds the referrer on the other side. `untag DIGEST` drops the
/// referrer's entry, and then gc takes both away.
#[test]
fn oras_push_and_attach_into_our_layout_verify_and_survive_our_gc() {
    if !have_tool("oras") {
        return;
    }
    let st = Store::new();
    let mine = st.add("mine:1", &[("mine.txt", b"written by epoch-store")]);
    // What another tool put into index.json beside the entries.
    let mut index = st.index();
    index["annotations"] = json!({"com.example.kept": "yes"});
    index["com.example.field"] = json!(1);
    index["manifests"][0]["com.example.entry-field"] = json!(true);
    st.set_index(&index);
    let work = st.path("oras-files");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("hello.txt"), b"hello from oras\n").unwrap();
    std::fs::write(work.join("blob.bin"), bytes(200_000, 31)).unwrap();
    std::fs::write(work.join("sbom.json"), br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    let l = s(&st.layout);
    oras_ok(
        &st,
        &work,
        &[
            "push",
            "--no-tty",
            "--oci-layout-path",
            l,
            "pushed:1",
            "--artifact-type",
            "application/vnd.example.thing",
            "hello.txt:text/plain",
            "blob.bin",
        ],
    );
    let attach = oras_ok(
        &st,
        &work,
        &[
            "attach",
            "--no-tty",
            "--format",
            "json",
            "--oci-layout-path",
            l,
            "pushed:1",
            "--artifact-type",
            "application/spdx+json",
            "sbom.json:application/spdx+json",
        ],
    );
    let attach: Value = serde_json::from_slice(&attach).unwrap();
    let referrer = attach["digest"].as_str().unwrap().to_string();

    let v = assert_verify_clean(&st);
    assert_eq!(v["roots"], 3, "{v:#}");
    assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
    let rows = ls(&st);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(row(&rows, "mine:1")["digest"], mine);
    // oras rewrites index.json from its own model: annotations stay, fields
    // it does not know go (we keep them: docs/format.md).
    let index = st.index();
    assert_eq!(index["annotations"]["com.example.kept"], "yes");
    assert!(index.get("com.example.field").is_none(), "{index:#}");
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["digest"] == mine)
        .unwrap();
    assert!(entry.get("com.example.entry-field").is_none(), "{index:#}");
    let pushed = row(&rows, "pushed:1")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        row(&rows, "pushed:1")["artifactType"],
        "application/vnd.example.thing"
    );
    let r = row(&rows, &format!("<untagged>@{referrer}"));
    assert_eq!(r["artifactType"], "application/spdx+json");
    let m: Value = serde_json::from_slice(&cat(&st, &referrer)).unwrap();
    assert_eq!(m["subject"]["digest"], pushed);
    assert_eq!(
        cat(
            &st,
            titled(
                &serde_json::from_slice(&cat(&st, "pushed:1")).unwrap(),
                "blob.bin"
            )["digest"]
                .as_str()
                .unwrap()
        ),
        bytes(200_000, 31)
    );

    // oras finds the referrer of a subject it can resolve (an index.json
    // entry): here, and in what `copy --all` made of this layout.
    let discover = |layout: &Path, subject: &str| -> Vec<String> {
        let out = oras_ok(
            &st,
            st.tmp.path(),
            &[
                "discover",
                "--format",
                "json",
                "--oci-layout-path",
                s(layout),
                subject,
            ],
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        v["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["digest"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(discover(&st.layout, "pushed:1"), vec![referrer.clone()]);
    let other = st.path("copied");
    st.ok(&["copy", "--all", "--to", s(&other)]);
    assert_verify_clean(&at(other.clone()));
    assert_eq!(discover(&other, "pushed:1"), vec![referrer.clone()]);

    // gc: nothing reachable goes, even with the subject untagged: the
    // referrer's `subject` keeps it. Tagged again, oras finds its referrer.
    st.ok(&["untag", "pushed:1"]);
    let plan = st.json(&["gc", "--dry-run", "--grace", "0s"]);
    assert_eq!(plan["blobs"], json!([]), "{plan:#}");
    st.ok(&["gc", "--grace", "0s"]);
    assert_verify_clean(&st);
    assert_eq!(oras_fetch(&st, &st.layout, &pushed), cat(&st, &pushed));
    st.ok(&["tag", &pushed, "pushed:again"]);
    assert_eq!(discover(&st.layout, "pushed:again"), vec![referrer.clone()]);
    st.ok(&["untag", "pushed:again"]);

    // The referrer's entry goes by its digest; then gc takes it and its subject.
    let before = st.json(&["gc", "--dry-run", "--grace", "0s"]);
    st.ok(&["untag", &referrer]);
    assert_eq!(ls(&st).len(), 1, "{:#?}", ls(&st));
    let plan = st.json(&["gc", "--dry-run", "--grace", "0s"]);
    let gone: BTreeSet<&str> = plan["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    assert!(
        gone.contains(referrer.as_str()) && gone.contains(pushed.as_str()),
        "{plan:#}"
    );
    assert_eq!(before["blobs"], json!([]));
    st.ok(&["gc", "--grace", "0s"]);
    assert_verify_clean(&st);
    assert!(!st.blob(&pushed).exists() && !st.blob(&referrer).exists());
    assert_eq!(cat(&st, "mine:1"), cat(&st, &mine));
    let err = st.fails(2, &["untag", &referrer]);
    assert!(err.contains(&referrer), "{err}");
}

/// `oras manifest delete` of a layout's last manifest leaves `index.json`
/// with `"manifests": null` (Go's nil slice). Every command of ours reads
/// that as an empty layout; the next write makes it an array.
#[test]
fn a_layout_oras_emptied_reads_as_empty() {
    if !have_tool("oras") {
        return;
    }
    let st = Store::empty();
    let work = st.path("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("a.txt"), b"gone soon").unwrap();
    let l = s(&st.layout);
    oras_ok(
        &st,
        &work,
        &["push", "--no-tty", "--oci-layout-path", l, "a:1", "a.txt"],
    );
    oras_ok(
        &st,
        &work,
        &[
            "manifest",
            "delete",
            "--force",
            "--oci-layout-path",
            l,
            "a:1",
        ],
    );
    let raw = std::fs::read_to_string(st.layout.join("index.json")).unwrap();
    assert!(raw.contains(r#""manifests":null"#), "oras wrote {raw}");

    assert_eq!(st.json(&["ls"]), json!([]));
    let v = assert_verify_clean(&st);
    assert_eq!(v["roots"], 0, "{v:#}");
    st.ok(&["gc", "--grace", "0s"]);
    st.ok(&["du"]);
    let err = st.fails(2, &["export-archive", "a:1", "-o", s(&st.path("x.tar"))]);
    assert!(err.contains("a:1"), "{err}");
    let d = st.add("b:1", &[("b.txt", b"after oras")]);
    let index = st.index();
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index:#}"
    );
    assert_eq!(index["manifests"][0]["digest"], d);
    assert_eq!(oras_fetch(&st, &st.layout, "b:1"), cat(&st, "b:1"));
    assert_verify_clean(&st);
}

// ---------------------------------------------------------------- cocoonstack's oras push

/// cocoonstack's Windows build (its workflow's split and `oras push`
/// steps, as shell), pushing into the layout `LAYOUT` instead of a
/// registry. The current form: os-image artifact type,
/// `disk.qcow2.part` parts, `cocoonstack.disk.*` annotations.
const COCOONSTACK_PUSH: &str = r#"
set -euo pipefail
cd "$QCOW2_DIR"
split -b "$PART" -d --additional-suffix=.qcow2.part "$QCOW2_BASENAME" "${QCOW2_BASENAME}."
rm "$QCOW2_BASENAME"
sha256sum "${QCOW2_BASENAME}."* > SHA256SUMS
ARGS=()
for part in "${QCOW2_BASENAME}."*; do
  ARGS+=("${part}:application/vnd.cocoonstack.disk.qcow2.part")
done
ARGS+=("SHA256SUMS:text/plain")
oras push --oci-layout-path "$LAYOUT" "$REF" \
  --artifact-type "application/vnd.cocoonstack.os-image.v1+json" \
  --annotation "org.opencontainers.image.source=https://example.invalid/cocoonstack/windows" \
  --annotation "org.opencontainers.image.revision=0123abcd" \
  --annotation "cocoonstack.os.name=windows" \
  --annotation "cocoonstack.os.version=win11-25h2" \
  --annotation "cocoonstack.disk.format=qcow2" \
  --annotation "cocoonstack.disk.reassemble=cat ${QCOW2_BASENAME}.*.qcow2.part > ${QCOW2_BASENAME}" \
  "${ARGS[@]}"
"#;

/// The same build before cocoonstack unified its types: windows-image
/// artifact type, `windows.disk.qcow2.part` parts, the
/// `cocoonstack.windows.reassemble` annotation.
const COCOONSTACK_PUSH_LEGACY: &str = r#"
set -euo pipefail
cd "$QCOW2_DIR"
split -b "$PART" -d --additional-suffix=.qcow2.part "$QCOW2_BASENAME" "${QCOW2_BASENAME}."
rm "$QCOW2_BASENAME"
sha256sum "${QCOW2_BASENAME}."* > SHA256SUMS
ARGS=()
for part in "${QCOW2_BASENAME}."*; do
  ARGS+=("${part}:application/vnd.cocoonstack.windows.disk.qcow2.part")
done
ARGS+=("SHA256SUMS:text/plain")
oras push --oci-layout-path "$LAYOUT" "$REF" \
  --artifact-type "application/vnd.cocoonstack.windows-image.v1+json" \
  --annotation "org.opencontainers.image.source=https://example.invalid/cocoonstack/windows" \
  --annotation "org.opencontainers.image.revision=0123abcd" \
  --annotation "org.opencontainers.image.description=Windows 11 25H2 qcow2, split parts" \
  --annotation "cocoonstack.windows.reassemble=cat ${QCOW2_BASENAME}.*.qcow2.part > ${QCOW2_BASENAME}" \
  "${ARGS[@]}"
"#;

/// Runs `script` on a copy of `qcow2` named `name` with parts of `part`
/// bytes (split's syntax), pushing `r` into `st`'s layout; the manifest.
fn cocoonstack_push(
    st: &Store,
    script: &str,
    qcow2: &Path,
    name: &str,
    part: &str,
    r: &str,
) -> Value {
    let dir = st.path(&format!("build-{}", r.replace(':', "-")));
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(qcow2, dir.join(name)).unwrap();
    let out = peer("bash", &st.path("peer-home"))
        .args(["-c", script])
        .env("QCOW2_DIR", &dir)
        .env("QCOW2_BASENAME", name)
        .env("PART", part)
        .env("LAYOUT", &st.layout)
        .env("REF", r)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cocoonstack's push: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&cat(st, r)).unwrap()
}

/// The disk layers' (title, media type, digest, size), in manifest order.
fn disk_layers(m: &Value) -> Vec<(String, String, String, u64)> {
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mediaType"].as_str().unwrap().contains(".disk."))
        .map(|l| {
            (
                l["annotations"][TITLE].as_str().unwrap().to_string(),
                l["mediaType"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// An OS image pushed into our layout by `oras push` exactly as
/// cocoonstack's Windows build pushes it (both the current and the legacy
/// form) lists as a cloud image of the qcow2's size, inspects as one disk
/// file in parts, and unpacks to the qcow2 byte for byte, which
/// `qemu-img check` passes. Its parts and SHA256SUMS are the very blobs
/// `pack image --part-size 1MiB` makes of the same file.
#[test]
fn an_os_image_oras_pushed_as_cocoonstack_builds_it_unpacks_to_the_qcow2() {
    if !have_tool("oras") || !have_tool("qemu-img") || !have_tool("split") {
        return;
    }
    let st = Store::new();
    let (raw, qcow2) = qcow2_image(&st, "source.qcow2");
    let len = std::fs::metadata(&qcow2).unwrap().len();
    let name = "windows-11-25h2.qcow2";
    for (script, r, artifact_type, part_type) in [
        (COCOONSTACK_PUSH, "windows:win11", OS_IMAGE, QCOW2_PART),
        (
            COCOONSTACK_PUSH_LEGACY,
            "windows:legacy",
            WINDOWS_IMAGE,
            WINDOWS_QCOW2_PART,
        ),
    ] {
        let m = cocoonstack_push(&st, script, &qcow2, name, "1M", r);
        assert_eq!(m["artifactType"], artifact_type, "{m:#}");
        let disks = disk_layers(&m);
        assert_eq!(disks.len() as u64, len.div_ceil(1 << 20), "{m:#}");
        for (i, (title, mt, _, _)) in disks.iter().enumerate() {
            assert_eq!(title, &format!("{name}.{i:02}.qcow2.part"));
            assert_eq!(mt, part_type);
        }
        let rows = ls(&st);
        let row = row(&rows, r);
        assert_eq!(row["kind"], "cloud-image", "{rows:#?}");
        assert_eq!(row["logicalSize"], len, "{row:#}");
        let v = st.json(&["inspect", r]);
        assert_eq!(
            v["files"],
            json!([{
                "name": name, "logicalSize": len, "storedSize": len,
                "chunks": disks.len(), "compressed": false, "mode": v["files"][0]["mode"],
            }]),
            "{v:#}"
        );
        let out = st.path(&format!("out-{}", r.replace(':', "-")));
        let got = st.json(&["unpack", r, s(&out)]);
        assert_eq!(got["files"], json!([out.join(name)]));
        assert!(std::fs::read(out.join(name)).unwrap() == std::fs::read(&qcow2).unwrap());
        sh(Command::new("qemu-img").arg("check").arg(out.join(name)));
        sh(Command::new("qemu-img")
            .args(["compare", "-q"])
            .arg(&raw)
            .arg(out.join(name)));
    }
    assert_verify_clean(&st);

    // What we pack of the same file is what cocoonstack pushes, blob for blob.
    let named = st.path(name);
    std::fs::copy(&qcow2, &named).unwrap();
    st.ok(&[
        "pack",
        "image",
        s(&named),
        "--ref",
        "ours:1",
        "--part-size",
        "1MiB",
    ]);
    let ours: Value = serde_json::from_slice(&cat(&st, "ours:1")).unwrap();
    let theirs: Value = serde_json::from_slice(&cat(&st, "windows:win11")).unwrap();
    assert_eq!(disk_layers(&ours), disk_layers(&theirs));
    assert_eq!(
        titled(&ours, "SHA256SUMS")["digest"],
        titled(&theirs, "SHA256SUMS")["digest"],
        "our SHA256SUMS is sha256sum's"
    );
    assert_eq!(titled(&ours, "SHA256SUMS")["mediaType"], "text/plain");
    for key in ["cocoonstack.disk.format", "cocoonstack.disk.reassemble"] {
        assert_eq!(
            ours["annotations"][key], theirs["annotations"][key],
            "{key}"
        );
    }
    assert_eq!(ours["artifactType"], theirs["artifactType"]);
    // oras inlines the empty config (`"data": "e30="`); we do not.
    for key in ["mediaType", "digest", "size"] {
        assert_eq!(ours["config"][key], theirs["config"][key], "config {key}");
    }
    assert_eq!(theirs["config"]["data"], "e30=");
}

/// More than 90 parts: GNU split widens the suffix (`89`, then `9000`),
/// the parts still sort in order, and the image joins back.
#[test]
fn an_oras_pushed_os_image_of_over_90_parts_joins_in_split_order() {
    if !have_tool("oras") || !have_tool("qemu-img") || !have_tool("split") {
        return;
    }
    let st = Store::new();
    let (_, qcow2) = qcow2_image(&st, "source.qcow2");
    let len = std::fs::metadata(&qcow2).unwrap().len();
    let part = len.div_ceil(100);
    let m = cocoonstack_push(
        &st,
        COCOONSTACK_PUSH,
        &qcow2,
        "w.qcow2",
        &part.to_string(),
        "w:1",
    );
    let titles: Vec<String> = disk_layers(&m).into_iter().map(|l| l.0).collect();
    assert!(titles.len() >= 95, "{}", titles.len());
    assert_eq!(titles[89], "w.qcow2.89.qcow2.part");
    assert_eq!(titles[90], "w.qcow2.9000.qcow2.part");
    let out = st.path("out");
    st.ok(&["unpack", "w:1", s(&out)]);
    assert!(std::fs::read(out.join("w.qcow2")).unwrap() == std::fs::read(&qcow2).unwrap());
    assert_eq!(
        st.json(&["inspect", "w:1"])["files"][0]["chunks"],
        titles.len()
    );
}

// ---------------------------------------------------------------- crane

/// `crane registry serve` on 127.0.0.1 and a free port (`:0`), killed when
/// dropped (also when the test panics).
pub(crate) struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) host: String,
}

impl Registry {
    pub(crate) fn start(st: &Store) -> Registry {
        let mut child = peer("crane", &st.path("peer-home"))
            .args(["registry", "serve", "--address", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run crane registry serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the port from "serving on port N", then drains the request
        // log so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(port) = line.split("serving on port ").nth(1) {
                    let _ = tx.send(port.trim().to_string());
                }
            }
        });
        let mut reg = Registry {
            child,
            host: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => reg.host = format!("127.0.0.1:{port}"),
            Err(e) => panic!("crane registry serve did not say its port: {e}"),
        }
        reg
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `crane ARGS`, asserting success; stdout.
fn crane_ok(st: &Store, args: &[&str]) -> Vec<u8> {
    let out = peer("crane", &st.path("peer-home"))
        .args(args)
        .output()
        .expect("run crane");
    assert!(
        out.status.success(),
        "crane {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap().trim().to_string()
}

/// crane has no reader of local layouts but `push`: each of our artifacts,
/// in a one-entry layout of its own, `crane push`es into a registry on
/// 127.0.0.1 with its digest unchanged; `crane manifest`, `digest` and
/// `blob` give back our bytes, `crane validate --remote` passes, and
/// `crane pull --format oci` makes a layout that we verify clean and
/// unpack to the originals. The whole layout goes as one index
/// (`push --index`: our `index.json` itself becomes the pushed index) and
/// comes back, nested, with every artifact reachable; pulled into a layout
/// of ours, crane keeps our entries.
#[test]
fn crane_pushes_our_layouts_through_a_registry_and_pulls_them_back_whole() {
    if !have_tool("crane") {
        return;
    }
    let Some(src) = sources() else { return };
    let st = &src.st;
    let reg = Registry::start(st);
    let pulled = at(st.path("crane-pull"));
    for (t, repo) in [
        ("vm:v2", "vm:v2"),
        ("img:1", "img:1"),
        ("files:1", "files:1"),
    ] {
        let ours = cat(st, t);
        let digest = sha256(&ours);
        let single = st.path(&format!("single-{}", t.replace(':', "-")));
        st.ok(&["copy", t, "--to", s(&single)]);
        let r = format!("{}/{repo}", reg.host);
        let pushed = text(crane_ok(st, &["push", s(&single), &r]));
        assert_eq!(
            pushed,
            format!("{}/{}@{digest}", reg.host, repo.split(':').next().unwrap())
        );
        assert_eq!(crane_ok(st, &["manifest", &r]), ours, "{t}");
        assert_eq!(text(crane_ok(st, &["digest", &r])), digest);
        let m: Value = serde_json::from_slice(&ours).unwrap();
        let layer = m["layers"][0]["digest"].as_str().unwrap();
        let repo_name = r.rsplit_once(':').unwrap().0;
        let blob = crane_ok(st, &["blob", &format!("{repo_name}@{layer}")]);
        assert!(blob == cat(st, layer), "{t}: layer {layer}");
        let ok = text(crane_ok(st, &["validate", "--remote", &r]));
        assert!(ok.starts_with("PASS"), "{ok}");
        crane_ok(st, &["pull", "--format", "oci", &r, s(&pulled.layout)]);
        assert_eq!(cat(&pulled, &digest), ours);
    }
    let v = assert_verify_clean(&pulled);
    assert_eq!(v["roots"], 3, "{v:#}");
    assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
    // crane's entries are untagged (no --annotate-ref): name them by digest.
    for t in ["vm:v2", "img:1", "files:1"] {
        pulled.ok(&["tag", &sha256(&cat(st, t)), t]);
    }
    src.assert_same_artifacts(&pulled, "vm:v2", "img:1", "files:1");

    // The whole layout as one index.
    let all = format!("{}/all:1", reg.host);
    let index = std::fs::read(st.layout.join("index.json")).unwrap();
    let pushed = text(crane_ok(st, &["push", "--index", s(&st.layout), &all]));
    assert!(pushed.ends_with(&sha256(&index)), "{pushed}");
    assert_eq!(crane_ok(st, &["manifest", &all]), index);
    let ok = text(crane_ok(st, &["validate", "--remote", &all]));
    assert!(ok.starts_with("PASS"), "{ok}");
    let nested = at(st.path("crane-nested"));
    crane_ok(
        st,
        &[
            "pull",
            "--format",
            "oci",
            "--annotate-ref",
            &all,
            s(&nested.layout),
        ],
    );
    let v = assert_verify_clean(&nested);
    assert_eq!(v["unreferencedBlobs"], 0, "{v:#}");
    let rows = ls(&nested);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(row(&rows, &all)["kind"], "image-index");
    let vm = sha256(&cat(st, "vm:v2"));
    let img = sha256(&cat(st, "img:1"));
    let files = sha256(&cat(st, "files:1"));
    src.assert_same_artifacts(&nested, &vm, &img, &files);
    assert_eq!(cat(&nested, &src.untagged), cat(st, &src.untagged));

    // Pulled into a layout of ours, crane rewrites index.json: ours stay.
    let before = ls(st);
    crane_ok(
        st,
        &[
            "pull",
            "--format",
            "oci",
            "--annotate-ref",
            &all,
            s(&st.layout),
        ],
    );
    let after = ls(st);
    for (name, r) in &before {
        assert_eq!(row(&after, name)["digest"], r["digest"], "{name}");
    }
    assert_eq!(after.len(), before.len() + 1);
    assert_verify_clean(st);
}
