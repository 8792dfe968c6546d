//! lf-edge edge-container images (ECI): `pack eci`, `unpack`, `inspect`
//! and `ls` on our own, and against lf-edge's own
//! `github.com/lf-edge/edge-containers/pkg/registry` (through `oracle-go
//! eci-push` / `eci-pull`, built from `tests/oracle` by `.ci/go-peers.sh`):
//! its Puller reads what we pack, we unpack what its Pusher writes, and
//! the bytes we store are the ones it stores (artifacts) or hold the same
//! tar (legacy).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::util::{OCI_MANIFEST, Store, bytes, desc, manifest_bytes, sha256};

/// `oracle-go` as `.ci/run` builds it. It is always built in CI, so a
/// missing one fails the test.
pub(crate) fn oracle_go() -> PathBuf {
    let tools = std::env::var_os("EPOCH_STORE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/epoch-store/tools")
        });
    let bin = tools.join("bin/oracle-go");
    assert!(
        bin.is_file(),
        "{} is not built: `source .ci/go-peers.sh` builds it from tests/oracle",
        bin.display()
    );
    bin
}

/// Runs `oracle-go ARGS`, asserting success; stdout.
pub(crate) fn go(args: &[&str]) -> String {
    let out = Command::new(oracle_go()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "oracle-go {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The files of a test ECI, in a directory of the store's temp dir.
pub(crate) struct Files {
    pub(crate) dir: PathBuf,
}

impl Files {
    pub(crate) fn new(s: &Store) -> Files {
        let dir = s.path("in");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in [
            ("vmlinuz", bytes(3000, 1)),
            ("initrd.img", bytes(2000, 2)),
            ("root.img", bytes(9000, 3)),
            ("data.qcow2", bytes(700, 4)),
            ("seed.iso", bytes(1100, 5)),
            ("eci.json", b"{\"name\":\"app\"}\n".to_vec()),
            ("notes.txt", b"hello\n".to_vec()),
        ] {
            std::fs::write(dir.join(name), data).unwrap();
        }
        Files { dir }
    }

    fn p(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Our `pack eci` options (or lf-edge's: the same flags) for all files.
    pub(crate) fn args(&self, config: bool) -> Vec<String> {
        let mut a = vec![
            "--kernel".into(),
            self.p("vmlinuz"),
            "--initrd".into(),
            self.p("initrd.img"),
            "--root".into(),
            format!("{}:raw", self.p("root.img")),
            "--disk".into(),
            format!("{}:qcow2", self.p("data.qcow2")),
            "--disk".into(),
            format!("{}:iso", self.p("seed.iso")),
            "--other".into(),
            self.p("notes.txt"),
        ];
        if config {
            a.extend(["--config".into(), self.p("eci.json")]);
        }
        a
    }

    /// What an unpack must write: file name -> the original's bytes.
    pub(crate) fn expected(&self, config: bool) -> Vec<(&'static str, Vec<u8>)> {
        let mut e = vec![
            ("kernel", "vmlinuz"),
            ("initrd", "initrd.img"),
            ("disk-root-root.img", "root.img"),
            ("disk-0-data.qcow2", "data.qcow2"),
            ("disk-1-seed.iso", "seed.iso"),
            ("notes.txt", "notes.txt"),
        ];
        if config {
            e.push(("config.json", "eci.json"));
        }
        let mut out: Vec<_> = e
            .into_iter()
            .map(|(n, src)| (n, std::fs::read(self.dir.join(src)).unwrap()))
            .collect();
        out.sort();
        out
    }
}

/// Packs `files` under `r` in `format`; the JSON report.
pub(crate) fn pack(s: &Store, files: &Files, r: &str, format: &str, config: bool) -> Value {
    let mut a = vec![
        "pack",
        "eci",
        "--ref",
        r,
        "--format",
        format,
        "--timestamp",
        "1000",
    ];
    let extra = files.args(config);
    a.extend(extra.iter().map(String::as_str));
    s.json(&a)
}

/// The regular files in `dir`, sorted, with contents.
pub(crate) fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn same_files(got: Vec<(String, Vec<u8>)>, want: Vec<(&str, Vec<u8>)>, ctx: &str) {
    let got_names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let want_names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    assert_eq!(got_names, want_names, "{ctx}");
    for ((n, g), (_, w)) in got.iter().zip(&want) {
        assert!(g == w, "{ctx}: {n} differs");
    }
}

/// A blob of the store, read.
fn blob(s: &Store, digest: &str) -> Vec<u8> {
    std::fs::read(s.blob(digest)).unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn round_trips_in_both_formats_with_roles_kind_and_verify() {
    for format in ["artifacts", "legacy"] {
        for config in [false, true] {
            let ctx = format!("{format}, config file {config}");
            let s = Store::new();
            let files = Files::new(&s);
            let packed = pack(&s, &files, "eve/app:1", format, config);
            assert_eq!(packed["kind"], "eci", "{ctx}");
            assert_eq!(packed["format"], format, "{ctx}");
            let ls = s.json(&["ls"]);
            assert_eq!(ls[0]["kind"], "eci", "{ctx}");
            let inspect = s.json(&["inspect", "eve/app:1"]);
            assert_eq!(inspect["kind"], "eci", "{ctx}");
            let eci = &inspect["eci"];
            assert_eq!(eci["format"], format, "{ctx}");
            let roles: Vec<(String, String)> = eci["roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let role = r["role"].as_str().unwrap().to_string();
                    (role, r["name"].as_str().unwrap().to_string())
                })
                .collect();
            let mut want = vec![
                ("kernel", "kernel"),
                ("initrd", "initrd"),
                ("root-disk", "disk-root-root.img"),
                ("additional-disk", "disk-0-data.qcow2"),
                ("additional-disk", "disk-1-seed.iso"),
                ("other", "notes.txt"),
            ];
            if config {
                want.push(("config", "config.json"));
            }
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            assert_eq!(roles, want, "{ctx}");
            assert_eq!(eci["roles"][3]["diskType"], "qcow2", "{ctx}");
            assert_eq!(eci["roles"][4]["diskType"], "iso", "{ctx}");
            let human = s.ok(&["inspect", "eve/app:1"]);
            assert!(
                human.contains("ECI roles") && human.contains("disk-1-seed.iso"),
                "{human}"
            );
            let out = s.path("out");
            let unpacked = s.json(&["unpack", "eve/app:1", out.to_str().unwrap()]);
            assert_eq!(
                unpacked["files"].as_array().unwrap().len(),
                want.len(),
                "{ctx}"
            );
            same_files(dir_files(&out), files.expected(config), &ctx);
            s.fails(2, &["unpack", "eve/app:1", out.to_str().unwrap()]);
            s.ok(&["unpack", "--force", "eve/app:1", out.to_str().unwrap()]);
            s.ok(&["verify"]);
        }
    }
}

/// The manifest we pack: lf-edge's media types and annotations; legacy
/// layers are one-file gzip tars whose diffIDs the config lists.
#[test]
fn manifests_carry_lfedge_media_types_annotations_and_labels() {
    let s = Store::new();
    let files = Files::new(&s);
    let d = pack(&s, &files, "a:1", "artifacts", false)["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let m: Value = serde_json::from_slice(&blob(&s, &d)).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.lfedge.eci.kernel.layer.v1+kernel"
    );
    assert_eq!(
        m["layers"][0]["annotations"]["org.lfedge.eci.role"],
        "kernel"
    );
    assert_eq!(
        m["layers"][2]["mediaType"],
        "application/vnd.lfedge.disk.layer.v1+raw"
    );
    assert_eq!(
        m["layers"][2]["annotations"]["org.lfedge.eci.role"],
        "disk-root"
    );
    assert_eq!(
        m["layers"][3]["annotations"]["org.lfedge.eci.role"],
        "disk-additional"
    );
    assert_eq!(m["layers"][5]["annotations"]["org.lfedge.eci.role"], "");
    assert_eq!(
        m["layers"][5]["mediaType"],
        "application/vnd.lfedge.eci.layer.v1"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let c: Value =
        serde_json::from_slice(&blob(&s, m["config"]["digest"].as_str().unwrap())).unwrap();
    let labels = &c["config"]["Labels"];
    assert_eq!(labels["org.lfedge.eci.artifact.kernel"], "/kernel");
    assert_eq!(
        labels["org.lfedge.eci.artifact.root"],
        "/disk-root-root.img"
    );
    assert_eq!(labels["org.lfedge.eci.artifact.disk-1"], "/disk-1-seed.iso");
    assert_eq!(c["created"], "1970-01-01T00:16:40Z");

    let d = pack(&s, &files, "l:1", "legacy", false)["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let m: Value = serde_json::from_slice(&blob(&s, &d)).unwrap();
    let c: Value =
        serde_json::from_slice(&blob(&s, m["config"]["digest"].as_str().unwrap())).unwrap();
    for (i, l) in m["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let tar = gunzip(&blob(&s, l["digest"].as_str().unwrap()));
        assert_eq!(
            c["rootfs"]["diff_ids"][i],
            sha256(&tar).as_str(),
            "layer {i}"
        );
        let title = l["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap();
        assert_eq!(&tar[..title.len()], title.as_bytes());
        assert_eq!(&tar[136..148], b"00000001750\0", "the fixed timestamp");
    }
}

/// A store holding only `r`, packed from `files` (lf-edge's directory
/// resolver reads the first `index.json` entry, whatever the ref).
fn one_ref_store(files_from: &Store, format: &str) -> (Store, Files) {
    let s = Store::new();
    let files = Files::new(files_from);
    pack(&s, &files, "local/eci:v1", format, false);
    (s, files)
}

#[test]
fn lfedge_puller_gets_the_original_bytes_from_ours() {
    for format in ["artifacts", "legacy"] {
        let src = Store::empty();
        let (s, files) = one_ref_store(&src, format);
        let out = s.path("pulled");
        std::fs::create_dir_all(&out).unwrap();
        let art: Value = serde_json::from_str(&go(&[
            "eci-pull",
            s.layout.to_str().unwrap(),
            "local/eci:v1",
            out.to_str().unwrap(),
            "2",
        ]))
        .unwrap();
        assert_eq!(art["kernel"], "kernel", "{format}");
        assert_eq!(
            art["root"],
            json!({"title": "disk-root-root.img", "type": "Raw"})
        );
        assert_eq!(
            art["disks"][1],
            json!({"title": "disk-1-seed.iso", "type": "ISO"})
        );
        let read = |n: &str| std::fs::read(out.join(n)).unwrap();
        let orig = |n: &str| std::fs::read(files.dir.join(n)).unwrap();
        assert!(read("kernel") == orig("vmlinuz"), "{format}");
        assert!(read("initrd") == orig("initrd.img"), "{format}");
        assert!(read("root") == orig("root.img"), "{format}");
        if format == "legacy" {
            // Through the config's labels, its FilesTarget finds the disks too.
            assert!(read("disk-0") == orig("data.qcow2"));
            assert!(read("disk-1") == orig("seed.iso"));
        } else {
            // Its FilesTarget writes no additional disk of the artifacts
            // format (target.go: `case RoleAdditionalDisk:` is empty).
            assert!(!out.join("disk-0").exists());
        }
    }
}

/// Makes the directory lf-edge's resolver wrote a layout we open: it
/// writes no `oci-layout`, `schemaVersion` 0 in `index.json`, and names the
/// entry `REF@DIGEST`.
fn adopt(dir: &Path, r: &str) -> Store {
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    index["schemaVersion"] = json!(2);
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = json!(r);
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    Store {
        tmp: tempfile::tempdir().unwrap(),
        layout: dir.to_path_buf(),
    }
}

#[test]
fn lfedge_pusher_output_unpacks_identically_and_matches_ours() {
    for format in ["artifacts", "legacy"] {
        for config in [false, true] {
            let ctx = format!("{format}, config file {config}");
            let ours = Store::new();
            let files = Files::new(&ours);
            let theirs_dir = ours.path("theirs");
            let mut a = vec![
                theirs_dir.to_string_lossy().into_owned(),
                "local/eci:v1".into(),
            ];
            a.extend([format.to_string(), "--timestamp".into(), "1000".into()]);
            a.extend(files.args(config));
            a.insert(0, "eci-push".into());
            let pushed = go(&a.iter().map(String::as_str).collect::<Vec<_>>());
            let theirs = adopt(&theirs_dir, "eci:v1");
            let ls = theirs.json(&["ls"]);
            assert_eq!(ls[0]["kind"], "eci", "{ctx}");
            assert_eq!(ls[0]["digest"], pushed.trim(), "{ctx}");
            theirs.ok(&["verify"]);
            let out = ours.path("out");
            theirs.ok(&["unpack", "eci:v1", out.to_str().unwrap()]);
            same_files(dir_files(&out), files.expected(config), &ctx);
            let roles = theirs.json(&["inspect", "eci:v1"])["eci"]["roles"].clone();
            assert_eq!(
                roles.as_array().unwrap().len(),
                files.expected(config).len(),
                "{ctx}"
            );

            // Ours, from the same files: the same layers (artifacts), or
            // the same tars inside (legacy).
            let d = pack(&ours, &files, "o:1", format, config)["digest"]
                .as_str()
                .unwrap()
                .to_string();
            let mine: Value = serde_json::from_slice(&blob(&ours, &d)).unwrap();
            let td = pushed.trim();
            let their_m: Value = serde_json::from_slice(&blob(&theirs, td)).unwrap();
            assert_eq!(
                their_m["schemaVersion"], 0,
                "lf-edge writes no schemaVersion"
            );
            compare_layers(&ours, &mine, &theirs, &their_m, format, &ctx);
            if config && format == "artifacts" {
                let mut their_m = their_m.clone();
                their_m["schemaVersion"] = json!(2);
                assert_eq!(mine, their_m, "{ctx}: the whole manifest");
            }
        }
    }
}

/// Layer by layer: identical descriptors (artifacts), or identical
/// annotations and identical tars inside the gzip (legacy).
fn compare_layers(
    ours: &Store,
    mine: &Value,
    theirs: &Store,
    their_m: &Value,
    format: &str,
    ctx: &str,
) {
    let (a, b) = (
        mine["layers"].as_array().unwrap(),
        their_m["layers"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len(), "{ctx}");
    for (x, y) in a.iter().zip(b) {
        if format == "artifacts" {
            assert_eq!(x, y, "{ctx}");
            continue;
        }
        assert_eq!(x["annotations"], y["annotations"], "{ctx}");
        assert_eq!(x["mediaType"], y["mediaType"], "{ctx}");
        let tx = gunzip(&blob(ours, x["digest"].as_str().unwrap()));
        let ty = gunzip(&blob(theirs, y["digest"].as_str().unwrap()));
        assert!(
            tx == ty,
            "{ctx}: the tar of {} differs from Go's",
            x["annotations"]
        );
    }
    assert_eq!(
        mine["config"]["annotations"], their_m["config"]["annotations"],
        "{ctx}"
    );
}

#[test]
fn bad_input_exits_2_naming_the_file_and_tags_nothing() {
    let s = Store::new();
    let files = Files::new(&s);
    let missing = s.path("no-such-kernel");
    let err = s.fails(
        2,
        &[
            "pack",
            "eci",
            "--ref",
            "x:1",
            "--kernel",
            missing.to_str().unwrap(),
            "--root",
            &files.p("root.img"),
        ],
    );
    assert!(err.contains("no-such-kernel"), "{err}");
    let err = s.fails(
        2,
        &[
            "pack",
            "eci",
            "--ref",
            "x:1",
            "--root",
            &format!("{}:vdi", files.p("root.img")),
        ],
    );
    assert!(
        err.contains("root.img") && err.contains("vdi") && err.contains("qcow2"),
        "{err}"
    );
    let err = s.fails(
        2,
        &[
            "pack",
            "eci",
            "--ref",
            "x:1",
            "--disk",
            &format!("{}:QCOW2", files.p("data.qcow2")),
        ],
    );
    assert!(err.contains("data.qcow2") && err.contains("QCOW2"), "{err}");
    let err = s.fails(
        2,
        &[
            "pack",
            "eci",
            "--ref",
            "x:1",
            "--other",
            &files.p("notes.txt"),
            "--other",
            &files.p("notes.txt"),
        ],
    );
    assert!(err.contains("notes.txt"), "{err}");
    let err = s.fails(
        2,
        &[
            "pack",
            "eci",
            "--ref",
            "x:1",
            "--format",
            "docker",
            "--kernel",
            &files.p("vmlinuz"),
        ],
    );
    assert!(err.contains("docker"), "{err}");
    s.fails(2, &["pack", "eci", "--ref", "x:1"]);
    assert_eq!(s.json(&["ls"]), json!([]));
    s.ok(&["verify"]);
}

/// An ECI whose other file is titled to escape the directory: refused
/// before anything is written, naming the title.
#[test]
fn hostile_titles_are_refused() {
    for title in ["../evil", "a/b", ".", ""] {
        let s = Store::new();
        let data = b"payload";
        let d = s.put_raw(data);
        let mut layer = desc("application/vnd.lfedge.eci.layer.v1", &d, data.len());
        layer["annotations"] = json!({
            "org.lfedge.eci.mediaType": "application/vnd.lfedge.eci.layer.v1",
            "org.lfedge.eci.role": "",
            "org.opencontainers.image.title": title,
        });
        let c = s.put_raw(b"{}");
        let m = manifest_bytes(
            desc("application/vnd.lfedge.eci.config.v1+json", &c, 2),
            vec![layer],
        );
        s.root_doc("bad:1", OCI_MANIFEST, &m);
        assert_eq!(s.json(&["ls"])[0]["kind"], "eci");
        let out = s.path("out/sub");
        let err = s.fails(2, &["unpack", "bad:1", out.to_str().unwrap()]);
        assert!(
            err.contains(&format!("{title:?}")) || title.is_empty(),
            "{title}: {err}"
        );
        assert!(!s.path("out/evil").exists() && !s.path("evil").exists());
        s.ok(&["verify"]);
    }
}

/// Every byte is checked: a damaged legacy layer (same size) or raw layer
/// fails the unpack and leaves no file under its name.
#[test]
fn damaged_layers_fail_the_unpack() {
    for format in ["artifacts", "legacy"] {
        let s = Store::new();
        let files = Files::new(&s);
        let d = pack(&s, &files, "a:1", format, false)["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let m: Value = serde_json::from_slice(&blob(&s, &d)).unwrap();
        let root = m["layers"][2]["digest"].as_str().unwrap();
        let path = s.blob(root);
        let mut data = std::fs::read(&path).unwrap();
        let at = data.len() / 2;
        data[at] ^= 0x40;
        std::fs::write(&path, &data).unwrap();
        let out = s.path("out");
        let err = s.fails(2, &["unpack", "a:1", out.to_str().unwrap()]);
        assert!(
            err.contains(root.split(':').nth(1).unwrap())
                || err.contains("CRC")
                || err.contains("corrupt"),
            "{format}: {err}"
        );
        assert!(!out.join("disk-root-root.img").exists(), "{format}");
    }
}
