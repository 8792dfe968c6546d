//! The cocoonstack peers' own code as oracles: cocoon-common's library calls
//! (`tests/oracle-cocoon`: `snapshot.Stream`, `snapshot.Pusher`,
//! `cloudimg.Stream`, `manifest.Classify`) over our layouts, and the real
//! `cocoon` CLI importing and exporting what they produce.
//!
//! The Go module proxy refuses both modules, so they are built from source
//! by `tests/oracle-cocoon/build.sh` into the tools cache; where they are not
//! built, each test says so (recorded in the skip log, also in CI: see
//! docs/interop.md) instead of failing.

use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{Store, bytes, have_tool, peer_unavailable, sh};
use serde_json::{Value, json};

/// The built oracles and a private cocoon root.
pub(crate) struct Cocoon {
    oracle: PathBuf,
    cli: PathBuf,
    pub(crate) home: tempfile::TempDir,
}

fn tools_bin() -> PathBuf {
    let tools = std::env::var_os("EPOCH_STORE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/epoch-store/tools")
        });
    tools.join("bin")
}

/// The oracles, or `None` (with the reason recorded) where they are not built.
pub(crate) fn cocoon() -> Option<Cocoon> {
    let bin = tools_bin();
    let (oracle, cli) = (bin.join("oracle-cocoon"), bin.join("cocoon"));
    if !oracle.is_file() || !cli.is_file() {
        peer_unavailable(&format!(
            "{} or {} is not built: the Go module proxy refuses cocoon-common and cocoon; \
             build them from source with tests/oracle-cocoon/build.sh",
            oracle.display(),
            cli.display()
        ));
        return None;
    }
    let home = tempfile::Builder::new()
        .prefix("epoch-cocoon-")
        .tempdir()
        .unwrap();
    Some(Cocoon { oracle, cli, home })
}

impl Cocoon {
    pub(crate) fn oracle(&self, args: &[&str]) -> Output {
        Command::new(&self.oracle)
            .args(args)
            .output()
            .expect("run oracle-cocoon")
    }

    pub(crate) fn oracle_ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.oracle(args);
        assert!(
            out.status.success(),
            "oracle-cocoon {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `cocoon --root-dir ... ARGS`, in the private root.
    pub(crate) fn cli(&self, args: &[&str]) -> Command {
        let h = self.home.path();
        let mut c = Command::new(&self.cli);
        c.arg("--root-dir").arg(h.join("root"));
        c.arg("--run-dir").arg(h.join("run"));
        c.arg("--log-dir").arg(h.join("log"));
        c.args(args);
        c
    }

    /// cocoon-common's `snapshot.Stream` of `r` into `cocoon snapshot import
    /// --name NAME`; the directory cocoon keeps the files in.
    pub(crate) fn stream_into_cocoon(&self, layout: &Path, r: &str, name: &str) -> PathBuf {
        let tar = self.home.path().join(format!("{name}.tar"));
        std::fs::write(&tar, self.oracle_ok(&["stream", &path(layout), r])).unwrap();
        self.import(&tar, name)
    }

    /// `cocoon snapshot import TAR --name NAME`; the directory of its files.
    pub(crate) fn import(&self, tar: &Path, name: &str) -> PathBuf {
        sh(&mut self.cli(&["snapshot", "import", &path(tar), "--name", name]));
        let info: serde_json::Value =
            serde_json::from_str(&sh(&mut self.cli(&["snapshot", "inspect", name]))).unwrap();
        let id = info["id"]
            .as_str()
            .expect("cocoon snapshot inspect gives an id");
        self.home.path().join("root/snapshot/localfile").join(id)
    }

    /// `cocoon snapshot export NAME -o FILE`.
    pub(crate) fn export(&self, name: &str) -> PathBuf {
        let tar = self.home.path().join(format!("{name}.export.tar"));
        sh(&mut self.cli(&["snapshot", "export", name, "-o", &path(&tar)]));
        tar
    }
}

pub(crate) fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The data ranges of a file (SEEK_DATA / SEEK_HOLE), merged.
fn data_ranges(p: &Path) -> Vec<(u64, u64)> {
    use rustix::fs::{SeekFrom, seek};
    let f = std::fs::File::open(p).unwrap();
    let len = f.metadata().unwrap().len();
    let mut out: Vec<(u64, u64)> = vec![];
    let mut at = 0;
    while at < len {
        let Ok(start) = seek(&f, SeekFrom::Data(at)) else {
            break;
        };
        let end = seek(&f, SeekFrom::Hole(start)).unwrap();
        match out.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => out.push((start, end)),
        }
        at = end;
    }
    out
}

/// `got` has exactly the files of `want`: same names, bytes and modes, and
/// every hole of the original is still a hole (no range is allocated that
/// was not). Extent-tree blocks do not count, unlike `st_blocks`.
pub(crate) fn assert_same_tree(want: &Path, got: &Path) {
    let names = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(want),
        names(got),
        "same file names in {}",
        got.display()
    );
    for n in names(want) {
        let (a, b) = (want.join(&n), got.join(&n));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{n:?} differs"
        );
        let (ma, mb) = (
            std::fs::metadata(&a).unwrap(),
            std::fs::metadata(&b).unwrap(),
        );
        assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "{n:?}: mode");
        let orig = data_ranges(&a);
        for (s, e) in data_ranges(&b) {
            assert!(
                orig.iter().any(|&(os, oe)| os <= s && e <= oe),
                "{n:?}: {s}..{e} is allocated in {} but a hole in the original",
                b.display()
            );
        }
    }
}

/// The `snapshot.json` our export-tar of `r` writes equals, as JSON, the
/// envelope cocoon-common writes for it (`snapshot.MarshalEnvelope`).
fn assert_envelope_matches(c: &Cocoon, s: &Store, r: &str, tar: &[u8]) {
    let mut a = ::tar::Archive::new(tar);
    let mut first = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first.path().unwrap().to_str(), Some("snapshot.json"), "{r}");
    let ours: Value = serde_json::from_reader(&mut first).unwrap();
    let theirs: Value =
        serde_json::from_slice(&c.oracle_ok(&["config", &path(&s.layout), r])).unwrap();
    assert_eq!(
        ours, theirs,
        "{r}: our envelope vs cocoon-common's MarshalEnvelope"
    );
}

/// A snapshot directory with every shape the formats care about: a sparse
/// raw disk (data runs in a large hole), a qcow2 from qemu-img, a dense
/// memory file (mode 0600) whose size leaves a 16-byte last chunk at 1 MiB
/// chunks, a memory file of 3000 extents, a file that is all hole (cocoon's
/// export writes its sparse map as `null`), an empty file, a small file and
/// CH's config.json.
pub(crate) fn shapes(s: &Store) -> PathBuf {
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    if have_tool("qemu-img") {
        sh(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(dir.join("overlay.qcow2"))
            .arg("64M"));
    }
    let cow = std::fs::File::create(dir.join("cow.raw")).unwrap();
    cow.set_len(256 << 20).unwrap();
    cow.write_all_at(&bytes(3 << 20, 1), 10 << 20).unwrap();
    cow.write_all_at(&bytes((1 << 20) + 300, 2), 200 << 20)
        .unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes((2 << 20) + 16, 3)).unwrap();
    std::fs::set_permissions(
        dir.join("memory-ranges"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let frag = std::fs::File::create(dir.join("memory-frag")).unwrap();
    frag.set_len(3000 * 8192).unwrap();
    for i in 0..3000u64 {
        frag.write_all_at(&bytes(4096, 100 + i), i * 8192).unwrap();
    }
    std::fs::File::create(dir.join("holes.raw"))
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::fs::write(dir.join("state.json"), br#"{"state":"paused"}"#).unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824},"net":[{"mac":"02:00:00:00:00:01"}]}"#,
    )
    .unwrap();
    dir
}

/// The pack forms we write, as `pack snapshot` arguments.
pub(crate) const FORMS: &[(&str, &[&str])] = &[
    ("v1", &["--format", "v1"]),
    ("v2", &[]),
    ("v2-chunked", &["--chunk-size", "1MiB"]),
    ("v2-zstd", &["--compress", "zstd"]),
    (
        "v2-zstd19-chunked",
        &["--chunk-size", "1MiB", "--compress", "zstd:19"],
    ),
];

#[test]
fn every_snapshot_form_we_write_streams_into_cocoon_byte_identical() {
    let Some(c) = cocoon() else { return };
    let s = Store::new();
    let dir = shapes(&s);
    for (form, args) in FORMS {
        let r = format!("vm:{form}");
        let mut a = vec!["pack", "snapshot", dir.to_str().unwrap(), "--ref", &r];
        a.extend_from_slice(args);
        s.ok(&a);
        assert_eq!(
            String::from_utf8(c.oracle_ok(&["classify", &path(&s.layout), &r]))
                .unwrap()
                .trim(),
            "snapshot",
            "{form}: cocoon-common's Classify"
        );
        let stored = c.stream_into_cocoon(&s.layout, &r, form);
        assert_same_tree(&dir, &stored);
        let tar = s.cmd(&["export-tar", &r]).output().unwrap();
        assert!(
            tar.status.success(),
            "{form}: {}",
            String::from_utf8_lossy(&tar.stderr)
        );
        assert_envelope_matches(&c, &s, &r, &tar.stdout);
    }
    // import-tar of what cocoon exports, streamed back by cocoon-common.
    let tar = c.export("v2-chunked");
    s.ok(&["import-tar", &path(&tar), "--ref", "vm:from-cocoon"]);
    let stored = c.stream_into_cocoon(&s.layout, "vm:from-cocoon", "from-cocoon");
    assert_same_tree(&dir, &stored);
}

#[test]
fn our_export_tar_imports_into_cocoon_and_its_export_comes_back_identical() {
    let Some(c) = cocoon() else { return };
    let s = Store::new();
    let dir = shapes(&s);
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "vm:1",
        "--chunk-size",
        "1MiB",
    ]);
    let ours = s.path("ours.tar");
    let out = s.cmd(&["export-tar", "vm:1"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&ours, out.stdout).unwrap();
    let stored = c.import(&ours, "ours");
    assert_same_tree(&dir, &stored);

    let back = c.export("ours");
    s.ok(&["import-tar", &path(&back), "--ref", "vm:back"]);
    let out = s.path("out");
    s.ok(&["unpack", "vm:back", &path(&out)]);
    assert_same_tree(&dir, &out);
}

/// cocoon-common's Pusher knobs: (name, flags after the tar).
pub(crate) const PUSHES: &[(&str, &[&str])] = &[
    ("v1", &[]),
    ("chunk1", &["-chunk", "1"]),
    ("zstd1", &["-zstd", "1"]),
    ("zstd3-chunk1", &["-zstd", "3", "-chunk", "1"]),
    (
        "zstd19-chunk2",
        &[
            "-zstd",
            "19",
            "-chunk",
            "2",
            "-concurrency",
            "2",
            "-budget",
            "64",
        ],
    ),
];

#[test]
fn what_cocoon_commons_pusher_writes_verifies_lists_and_unpacks() {
    let Some(c) = cocoon() else { return };
    let s = Store::new();
    let dir = shapes(&s);
    // The fleet pushes what `cocoon snapshot export` writes.
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "vm:src",
        "--format",
        "v1",
    ]);
    c.stream_into_cocoon(&s.layout, "vm:src", "src");
    let tar = c.export("src");
    let logical: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    for (name, knobs) in PUSHES {
        let r = format!("pushed:{name}");
        let mut a = vec!["push".to_string(), path(&s.layout), r.clone(), path(&tar)];
        a.extend(knobs.iter().map(|k| k.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let digest = String::from_utf8(c.oracle_ok(&a))
            .unwrap()
            .trim()
            .to_string();

        let v = s.json(&["verify"]);
        assert_eq!(
            v["problems"],
            serde_json::json!([]),
            "{name}: verify after cocoon-common's push: {v}"
        );
        let ls = s.json(&["ls"]);
        let row = ls
            .as_array()
            .or(ls.as_array())
            .unwrap()
            .iter()
            .find(|e| e["ref"] == r.as_str())
            .unwrap_or_else(|| panic!("{r} listed: {ls}"))
            .clone();
        assert_eq!(row["kind"], "snapshot", "{name}: {row}");
        assert_eq!(row["digest"], digest.as_str(), "{name}: {row}");
        assert_eq!(row["logicalSize"], logical, "{name}: logical size: {row}");

        let out = s.path(&format!("out-{name}"));
        s.ok(&["unpack", &r, &path(&out)]);
        assert_same_tree(&dir, &out);
        let ours = s.path(&format!("{name}.tar"));
        let o = s.cmd(&["export-tar", &r]).output().unwrap();
        assert!(
            o.status.success(),
            "{name}: export-tar: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_envelope_matches(&c, &s, &r, &o.stdout);
        std::fs::write(&ours, o.stdout).unwrap();
        assert_same_tree(&dir, &c.import(&ours, &format!("back-{name}")));
    }
}

#[test]
fn cocoon_common_classifies_every_artifact_we_write_as_we_do() {
    let Some(c) = cocoon() else { return };
    let s = Store::new();
    let dir = shapes(&s);
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "a:snap-v1",
        "--format",
        "v1",
    ]);
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "a:snap-v2",
        "--chunk-size",
        "1MiB",
    ]);
    let raw = dir.join("cow.raw");
    s.ok(&[
        "pack",
        "image",
        &path(&raw),
        "--ref",
        "a:image",
        "--part-size",
        "8MiB",
    ]);
    s.ok(&[
        "pack",
        "image",
        &path(&raw),
        "--ref",
        "a:windows",
        "--windows",
    ]);
    s.add(
        "a:files",
        &[("notes.txt", b"hello"), ("blob.bin", &bytes(5000, 9))],
    );
    s.ok(&["tag", "a:image", "a:image-again"]);
    let ls = s.json(&["ls"]);
    let rows = ls.as_array().unwrap().clone();
    assert!(rows.len() >= 6, "{ls}");
    for row in rows {
        let r = row["ref"].as_str().unwrap();
        let theirs = String::from_utf8(c.oracle_ok(&["classify", &path(&s.layout), r])).unwrap();
        assert_eq!(
            row["kind"],
            theirs.trim(),
            "{r}: our kind vs cocoon-common's"
        );
    }
}

/// A qcow2 with data in two places, made by qemu-img.
pub(crate) fn qcow2(s: &Store, name: &str) -> PathBuf {
    let p = s.path(name);
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&p)
        .arg("64M"));
    sh(Command::new("qemu-io")
        .args(["-c", "write -P 7 1M 3M", "-c", "write -P 9 40M 2M"])
        .arg(&p));
    p
}

#[test]
fn os_images_we_pack_stream_through_cloudimg_and_import_into_cocoon() {
    let Some(c) = cocoon() else { return };
    if !have_tool("qemu-img") || !have_tool("qemu-io") {
        return;
    }
    let s = Store::new();
    let q = qcow2(&s, "disk.qcow2");
    let raw = s.path("disk.raw");
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(48 << 20).unwrap();
    f.write_all_at(&bytes(2 << 20, 4), 30 << 20).unwrap();
    let cases: &[(&str, &Path, &[&str])] = &[
        ("img:qcow2", &q, &[]),
        ("img:qcow2-parts", &q, &["--part-size", "1MiB"]),
        ("img:windows", &q, &["--windows", "--part-size", "2MiB"]),
        ("img:raw-parts", &raw, &["--part-size", "8MiB"]),
    ];
    for (r, file, args) in cases {
        let mut a = vec!["pack", "image", file.to_str().unwrap(), "--ref", r];
        a.extend_from_slice(args);
        s.ok(&a);
        let disk = c.oracle_ok(&["cloudimg", &path(&s.layout), r]);
        assert!(
            disk == std::fs::read(file).unwrap(),
            "{r}: cloudimg.Stream gives the original bytes"
        );
    }
    // What we unpack, in parts as cocoonstack splits it, into `cocoon image import`.
    let out = s.path("out");
    s.ok(&["unpack", "img:qcow2-parts", &path(&out)]);
    let joined = out.join("disk.qcow2");
    sh(Command::new("split")
        .args(["-b", "1M", "-d", "--additional-suffix=.qcow2.part"])
        .arg(&joined)
        .arg(s.path("disk.qcow2.")));
    let mut parts: Vec<String> = std::fs::read_dir(s.tmp.path())
        .unwrap()
        .map(|e| path(&e.unwrap().path()))
        .filter(|p| p.ends_with(".qcow2.part"))
        .collect();
    parts.sort();
    assert!(parts.len() > 3, "{parts:?}");
    for (name, files) in [("whole", vec![path(&joined)]), ("parts", parts)] {
        let mut a = vec!["image".to_string(), "import".into(), name.into()];
        a.extend(files);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        sh(&mut c.cli(&a));
    }
    let blobs = c.home.path().join("root/cloudimg/blobs");
    let stored: Vec<PathBuf> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!stored.is_empty(), "cocoon stored the image");
    for p in stored {
        sh(Command::new("qemu-img").arg("check").arg(&p));
        sh(Command::new("qemu-img").arg("compare").arg(&q).arg(&p));
    }
}

/// Tags `doc` (stored raw, as another tool would) as `name` in index.json,
/// beside the refs already there.
fn tag_doc(s: &Store, name: &str, media_type: &str, doc: &[u8]) {
    let d = s.put_raw(doc);
    let mut e = crate::util::desc(media_type, &d, doc.len());
    e["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    let mut idx = s.index();
    idx["manifests"].as_array_mut().unwrap().push(e);
    s.set_index(&idx);
}

fn manifest_of(s: &Store, r: &str) -> Value {
    serde_json::from_str(&s.ok(&["cat", r])).unwrap()
}

/// Each case: a manifest (or index) made from a good one. cocoon-common's
/// pull (`snapshot.Stream`) is the judge of what a snapshot is: `export-tar`
/// (and so `unpack`, which plans the same way) must refuse exactly what it
/// refuses, before writing a byte, and take what it takes.
#[test]
fn we_refuse_exactly_the_snapshots_cocoon_commons_pull_refuses() {
    let Some(c) = cocoon() else { return };
    let s = Store::new();
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":1},"memory":{"size":536870912}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes((2 << 20) + 16, 1)).unwrap();
    std::fs::write(dir.join("disk.raw"), bytes(3000, 2)).unwrap();
    let d = dir.to_str().unwrap();
    s.ok(&["pack", "snapshot", d, "--ref", "base:v1", "--format", "v1"]);
    s.ok(&[
        "pack",
        "snapshot",
        d,
        "--ref",
        "base:chunked",
        "--chunk-size",
        "1MiB",
    ]);
    s.ok(&[
        "pack",
        "snapshot",
        d,
        "--ref",
        "base:zstd",
        "--compress",
        "zstd",
    ]);
    let v1 = manifest_of(&s, "base:v1");
    let title = |l: &Value| {
        l["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut cases: Vec<(&str, Value)> = vec![];
    let mut m = v1.clone();
    m["layers"][0]["mediaType"] = json!("application/vnd.example.unknown");
    cases.push(("unknown-layer-type", m));
    let mut m = v1.clone();
    for l in m["layers"].as_array_mut().unwrap() {
        if title(l) == "disk.raw" {
            l["mediaType"] = json!("application/vnd.cocoonstack.disk.raw.part");
        }
    }
    cases.push(("disk-part-layer", m));
    let mut m = v1.clone();
    m["layers"][0]["annotations"] = json!({});
    cases.push(("missing-title", m));
    let mut m = v1.clone();
    m["layers"][0]["mediaType"] = json!("application/octet-stream");
    cases.push(("generic-layer-type", m));
    let mut m = v1.clone();
    m["config"]["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    cases.push(("wrong-config-type", m));
    for base in ["base:zstd", "base:chunked"] {
        let mut m = manifest_of(&s, base);
        m["artifactType"] = json!("application/vnd.cocoonstack.snapshot.v1+json");
        cases.push((
            if base == "base:zstd" {
                "zstd-in-v1"
            } else {
                "chunks-in-v1"
            },
            m,
        ));
    }
    for (name, m) in &cases {
        tag_doc(
            &s,
            &format!("case:{name}"),
            crate::util::OCI_MANIFEST,
            &serde_json::to_vec(m).unwrap(),
        );
    }
    // Indexes over the chunked snapshot: cocoon-common takes linux/amd64,
    // else the first child with a known architecture.
    let child = s.json(&["inspect", "base:chunked"]);
    let child_digest = child["digest"].as_str().unwrap().to_string();
    let child_size = std::fs::metadata(s.blob(&child_digest)).unwrap().len();
    let entry = |os: &str, arch: &str| {
        let mut e = crate::util::desc(
            crate::util::OCI_MANIFEST,
            &child_digest,
            child_size as usize,
        );
        e["platform"] = json!({"os": os, "architecture": arch});
        e
    };
    for (name, entries) in [
        (
            "index-amd64",
            vec![entry("linux", "arm64"), entry("linux", "amd64")],
        ),
        ("index-arm64-only", vec![entry("linux", "arm64")]),
        ("index-unknown-only", vec![entry("unknown", "unknown")]),
    ] {
        let idx =
            json!({"schemaVersion": 2, "mediaType": crate::util::OCI_INDEX, "manifests": entries});
        tag_doc(
            &s,
            &format!("case:{name}"),
            crate::util::OCI_INDEX,
            &serde_json::to_vec(&idx).unwrap(),
        );
    }

    let mut disagreements = vec![];
    let idx = s.index();
    for e in idx["manifests"].as_array().unwrap() {
        let r = e["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap();
        if !r.starts_with("case:") {
            continue;
        }
        let theirs = c.oracle(&["stream", &path(&s.layout), r]);
        let ours = s.run(&["export-tar", r]);
        let (t, o) = (theirs.status.success(), ours.status.success());
        if t != o {
            disagreements.push(format!(
                "{r}: cocoon-common {}, epoch-store {} ({})",
                if t { "streams it" } else { "refuses it" },
                if o { "streams it" } else { "refuses it" },
                String::from_utf8_lossy(if t { &ours.stderr } else { &theirs.stderr }).trim()
            ));
        } else if !o {
            assert!(
                ours.stdout.is_empty(),
                "{r}: refused, yet {} bytes written",
                ours.stdout.len()
            );
            assert_eq!(ours.status.code(), Some(2), "{r}");
        }
    }
    assert!(
        disagreements.is_empty(),
        "disagreements:\n{}",
        disagreements.join("\n")
    );
}

#[test]
fn a_legacy_store_we_import_streams_into_cocoon_byte_identical() {
    use crate::legacy::{Legacy, original_files, snapshot};
    let Some(c) = cocoon() else { return };
    let s = Store::new();
    let legacy = Legacy::new(s.path("epoch"));
    let orig = s.path("orig");
    let files = original_files(&orig, 7);
    let m = snapshot(
        "sre-bot",
        "v1",
        "sid-1",
        files.iter().map(|p| legacy.layer(p)).collect(),
    );
    legacy.manifest("sre-bot", "v1", &m);
    legacy.catalog(&[("sre-bot", "v1")]);
    s.ok(&["import-legacy", &path(&legacy.dir)]);
    let stored = c.stream_into_cocoon(&s.layout, "sre-bot:v1", "legacy");
    // A legacy store keeps no modes: files come back 0640, cocoon-common's
    // default for a file whose mode is not recorded (pull.go layerHeader).
    for f in &files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    assert_same_tree(&orig, &stored);
    let env: Value =
        serde_json::from_slice(&c.oracle_ok(&["config", &path(&s.layout), "sre-bot:v1"])).unwrap();
    assert_eq!(env["config"]["id"], "sid-1", "{env}");
    assert_eq!(env["config"]["nics"], 1, "{env}");
    assert_eq!(env["config"]["storage"], 10737418240_u64, "{env}");
}

/// The manifest and config without what differs by design (docs/interop.md,
/// "Byte forms that differ"): creation times, our `cocoonstack.snapshot.id`.
fn comparable(s: &Store, r: &str) -> (Value, Value) {
    let mut m: Value = serde_json::from_str(&s.ok(&["cat", r])).unwrap();
    let cfg_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(s.blob(&cfg_digest)).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("createdAt");
    let ann = m["annotations"].as_object_mut().unwrap();
    ann.remove("org.opencontainers.image.created");
    ann.remove("cocoonstack.snapshot.id");
    m.as_object_mut().unwrap().remove("config");
    (m, cfg)
}

/// The JSON paths at which `ours` and `theirs` differ, each with both
/// values cut short (a sparse map can be thousands of segments).
fn differences(ours: &Value, theirs: &Value) -> Vec<String> {
    fn walk(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = Value::Null;
                    walk(
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        format!("{at}/{k}"),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(p, q, format!("{at}/{i}"), out);
                }
            }
            _ if a != b => {
                let cut = |v: &Value| v.to_string().chars().take(120).collect::<String>();
                out.push(format!("{at}: ours {} theirs {}", cut(a), cut(b)));
            }
            _ => {}
        }
    }
    let mut out = vec![];
    walk(ours, theirs, String::new(), &mut out);
    out
}

/// Where neither side compresses, cocoon-common's Pusher and our
/// `import-tar` of one export tar must write the same layers (digests,
/// sizes, titles, chunk annotations, media types, order), artifact type
/// and config fields.
#[test]
fn pusher_and_import_tar_write_the_same_snapshot_from_one_export() {
    let Some(c) = cocoon() else { return };
    let s = Store::new();
    let dir = shapes(&s);
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "vm:src",
        "--format",
        "v1",
    ]);
    c.stream_into_cocoon(&s.layout, "vm:src", "src");
    let tar = c.export("src");
    for (name, knobs, ours) in [
        ("v1", &[][..], &["--format", "v1"][..]),
        (
            "chunk1",
            &["-chunk", "1"][..],
            &["--chunk-size", "1MiB"][..],
        ),
        (
            "chunk2",
            &["-chunk", "2"][..],
            &["--chunk-size", "2MiB"][..],
        ),
    ] {
        let theirs = format!("go:{name}");
        let mut a = vec![
            "push".to_string(),
            path(&s.layout),
            theirs.clone(),
            path(&tar),
        ];
        a.extend(knobs.iter().map(|k| k.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        c.oracle_ok(&a);
        let mine = format!("ours:{name}");
        let mut a = vec!["import-tar", tar.to_str().unwrap(), "--ref", &mine];
        a.extend_from_slice(ours);
        s.ok(&a);
        let (gm, gc) = comparable(&s, &theirs);
        let (om, oc) = comparable(&s, &mine);
        let none: Vec<String> = vec![];
        assert_eq!(differences(&om, &gm), none, "{name}: manifests");
        // The one difference by design: cocoon's export writes an all-hole
        // file's map as `null`, which the Pusher copies and we write `[]`.
        let all_hole = r#"/files/holes.raw/sparseMap: ours "[]" theirs "null""#;
        let mut d = differences(&oc, &gc);
        d.retain(|x| x != all_hole);
        assert_eq!(d, none, "{name}: configs");
    }
}
