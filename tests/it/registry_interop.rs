//! Issue 12: every artifact kind through a registry, both ways, with the
//! peers' own clients. distribution 2.8 (Debian's `docker-registry`) on
//! 127.0.0.1, started and stopped by each test:
//!
//! - what `push` sends, skopeo (`copy --all --preserve-digests docker://…
//!   oci:`), crane (`pull --format=oci`) and oras (`copy --to-oci-layout`)
//!   read into layouts of their own whose manifests and blobs are ours,
//!   byte for byte;
//! - what they push from our layout (skopeo `copy oci:DIR:REF docker://…`,
//!   `crane push`, `oras cp --from-oci-layout-path`) or make themselves
//!   (`oras push`, `crane append`, `crane index append`, a skopeo
//!   `docker-archive:`), `pull` stores with their digest, and it verifies;
//! - oras-py (the `oras` Python package) pushes files we pull byte-identical
//!   and pulls the files we push;
//! - lf-edge edge-containers' Puller reads both ECI formats we push; its
//!   Pusher's manifests distribution 2.8 refuses (`schemaVersion` 0), so
//!   they go through go-containerregistry's registry, from which we pull and
//!   unpack them identically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::registry::Registry;
use crate::util::{Store, bytes, have_tool, sh, sha256, skip};

/// Each kind: (ref in our layout, repository it is pushed to).
const KINDS: &[(&str, &str)] = &[
    ("snap:1", "vms/snap-chunked"),
    ("snap-v1:1", "vms/snap-v1"),
    ("snap-zstd:1", "vms/snap-zstd"),
    ("os:1", "os/disk"),
    ("eci:1", "eci/artifacts"),
    ("eci-legacy:1", "eci/legacy"),
    ("multi:1", "images/multi"),
    ("docker:1", "images/docker"),
    ("files:1", "misc/files"),
];

/// Document media types whose children a walk follows.
const DOCS: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The fixture layout and the originals its artifacts were made from.
struct Kinds {
    s: Store,
    /// The snapshot directory of `snap*:1`.
    vm: PathBuf,
    /// The raw disk of `os:1`.
    disk: PathBuf,
    /// The files of `eci:1` and `eci-legacy:1` (with a config file).
    eci: crate::eci::Files,
}

/// Whether every tool is there (each missing one skips, or fails in CI).
fn tools(names: &[&str]) -> bool {
    names.iter().all(|t| have_tool(t))
}

/// `registry::fixture` (a snapshot in 1 MiB chunks, an index of three
/// platforms, a files artifact) and: the snapshot as v1 and as zstd in
/// 1 MiB chunks, a raw disk in 1 MiB parts, an ECI in both formats, and a
/// Docker v2 image (umoci's image through skopeo's `docker-archive:`).
fn kinds() -> Kinds {
    let (s, vm) = crate::registry::fixture();
    let v = vm.to_str().unwrap();
    s.ok(&[
        "pack",
        "snapshot",
        v,
        "--ref",
        "snap-v1:1",
        "--format",
        "v1",
        "--no-ch-config",
    ]);
    s.ok(&[
        "pack",
        "snapshot",
        v,
        "--ref",
        "snap-zstd:1",
        "--chunk-size",
        "1MiB",
        "--compress",
        "zstd",
        "--no-ch-config",
    ]);
    let disk = s.path("disk.raw");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&disk).unwrap();
        f.set_len(3 << 20).unwrap();
        f.write_all_at(&bytes((1 << 20) + 300, 21), 1 << 20)
            .unwrap();
    }
    s.ok(&[
        "pack",
        "image",
        disk.to_str().unwrap(),
        "--ref",
        "os:1",
        "--part-size",
        "1MiB",
    ]);
    let eci = crate::eci::Files::new(&s);
    crate::eci::pack(&s, &eci, "eci:1", "artifacts", true);
    crate::eci::pack(&s, &eci, "eci-legacy:1", "legacy", true);
    let u = s.path("umoci");
    let u = u.to_str().unwrap();
    sh(Command::new("umoci").args(["init", "--layout", u]));
    sh(Command::new("umoci").args(["new", "--image", &format!("{u}:base")]));
    let hello = s.file("hello", b"#!/bin/sh\necho hi\n");
    sh(Command::new("umoci")
        .args(["insert", "--rootless", "--image", &format!("{u}:base")])
        .arg(&hello)
        .arg("/hello"));
    let archive = s.path("docker.tar");
    sh(Command::new("skopeo").args([
        "copy",
        &format!("oci:{u}:base"),
        &format!(
            "docker-archive:{}:docker.io/library/docker:1",
            archive.display()
        ),
    ]));
    s.ok(&["import-archive", archive.to_str().unwrap()]);
    assert_eq!(
        s.json(&["inspect", "docker:1"])["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    Kinds { s, vm, disk, eci }
}

fn digest_of(s: &Store, r: &str) -> String {
    s.json(&["inspect", r])["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Everything `root` reaches in the layout at `dir`: digest -> size, every
/// blob read and hashed (so equal maps of two layouts mean equal bytes).
/// The root is a document; so is each child whose media type says so.
fn reach(dir: &Path, root: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut todo = vec![(root.to_string(), true)];
    while let Some((digest, doc)) = todo.pop() {
        if out.contains_key(&digest) {
            continue;
        }
        let p = dir.join("blobs/sha256").join(&digest["sha256:".len()..]);
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(sha256(&data), digest, "{} hashes to its name", p.display());
        out.insert(digest, data.len() as u64);
        if !doc {
            continue;
        }
        let v: Value = serde_json::from_slice(&data).unwrap();
        let kids = v["config"].as_object().map(|_| &v["config"]).into_iter();
        let lists = ["layers", "manifests"].map(|k| v[k].as_array().cloned().unwrap_or_default());
        for d in kids.cloned().chain(lists.into_iter().flatten()) {
            let mt = d["mediaType"].as_str().unwrap_or_default();
            todo.push((
                d["digest"].as_str().unwrap().to_string(),
                DOCS.contains(&mt),
            ));
        }
    }
    out
}

/// A peer's layout at `dir` holds `digest` in its index.json and reaches
/// exactly `ours` from it.
fn same_as_ours(dir: &Path, digest: &str, ours: &BTreeMap<String, u64>, ctx: &str) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["digest"] == digest),
        "{ctx}: the peer's index.json names our manifest {digest}: {index}"
    );
    assert_eq!(
        &reach(dir, digest),
        ours,
        "{ctx}: the same blobs, byte for byte"
    );
}

/// A peer command with its own docker config (no credentials), no stdin.
fn peer(s: &Store, tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.env("DOCKER_CONFIG", s.path("peer-home"))
        .stdin(Stdio::null());
    c
}

fn slug(r: &str) -> String {
    r.replace([':', '/'], "_")
}

#[test]
fn every_kind_we_push_skopeo_crane_and_oras_read_byte_identically() {
    if !tools(&["docker-registry", "skopeo", "umoci", "crane", "oras"]) {
        return;
    }
    let k = kinds();
    let s = &k.s;
    let reg = Registry::start(s);
    for (r, repo) in KINDS {
        let digest = digest_of(s, r);
        let ours = reach(&s.layout, &digest);
        s.ok(&["push", r, &format!("{}/{repo}", reg.host), "--plain-http"]);
        let src = format!("{}/{repo}:1", reg.host);

        let dir = s.path(&format!("skopeo-{}", slug(r)));
        sh(peer(s, "skopeo").args([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            &format!("docker://{src}"),
            &format!("oci:{}:x", dir.display()),
        ]));
        same_as_ours(&dir, &digest, &ours, &format!("{r}: skopeo copy"));

        let dir = s.path(&format!("crane-{}", slug(r)));
        sh(peer(s, "crane")
            .args(["pull", "--insecure", "--format=oci", &src])
            .arg(&dir));
        same_as_ours(&dir, &digest, &ours, &format!("{r}: crane pull"));

        let dir = s.path(&format!("oras-{}", slug(r)));
        sh(peer(s, "oras").args([
            "copy",
            "--from-plain-http",
            &src,
            "--to-oci-layout",
            &format!("{}:x", dir.display()),
        ]));
        same_as_ours(&dir, &digest, &ours, &format!("{r}: oras copy"));

        // The manifest bytes each serves, and one blob through crane.
        let raw = sh(peer(s, "crane").args(["manifest", "--insecure", &src]));
        assert_eq!(sha256(raw.as_bytes()), digest, "{r}: crane manifest");
        let raw = sh(peer(s, "oras").args(["manifest", "fetch", "--plain-http", &src]));
        assert_eq!(sha256(raw.as_bytes()), digest, "{r}: oras manifest fetch");
        let m: Value = serde_json::from_str(&raw).unwrap();
        if let Some(config) = m["config"]["digest"].as_str() {
            let blob = peer(s, "crane")
                .args([
                    "blob",
                    "--insecure",
                    &format!("{}/{repo}@{config}", reg.host),
                ])
                .output()
                .unwrap();
            assert!(blob.status.success(), "{r}: crane blob: {blob:?}");
            assert_eq!(
                sha256(&blob.stdout),
                config,
                "{r}: crane blob of the config"
            );
        }
    }
}

/// `pull` of `src` into a new layout as `r`: the digest is `digest`, verify
/// is clean, and it reaches exactly `ours`. The layout.
fn pull_back(src: &str, r: &str, digest: &str, ours: &BTreeMap<String, u64>, ctx: &str) -> Store {
    let back = Store::empty();
    let out = back.json(&["pull", src, "--plain-http", "--ref", r]);
    assert_eq!(out["digest"], digest, "{ctx}: {out}");
    back.ok(&["verify"]);
    assert_eq!(
        &reach(&back.layout, digest),
        ours,
        "{ctx}: every blob, byte for byte"
    );
    back
}

#[test]
fn what_skopeo_crane_and_oras_copy_from_our_layout_we_pull_back_identical() {
    if !tools(&["docker-registry", "skopeo", "umoci", "crane", "oras"]) {
        return;
    }
    let k = kinds();
    let s = &k.s;
    let reg = Registry::start(s);
    let layout = s.layout.to_str().unwrap();
    for (r, repo) in KINDS {
        let digest = digest_of(s, r);
        let ours = reach(&s.layout, &digest);

        // skopeo, from our layout. Its oci: transport reads only OCI media
        // types from index.json: the Docker v2 image goes as a docker-archive.
        let dest = format!("{}/skopeo/{repo}:1", reg.host);
        let sk = peer(s, "skopeo")
            .args([
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                &format!("oci:{layout}:{r}"),
                &format!("docker://{dest}"),
            ])
            .output()
            .unwrap();
        if *r == "docker:1" {
            let err = String::from_utf8_lossy(&sk.stderr);
            assert!(
                !sk.status.success() && err.contains("no descriptor found"),
                "skopeo 1.9.3 still cannot read a Docker v2 manifest from an OCI layout: {err}"
            );
            let archive = s.path("ours-docker.tar");
            s.ok(&[
                "export-archive",
                r,
                "--format",
                "docker",
                "-o",
                archive.to_str().unwrap(),
            ]);
            sh(peer(s, "skopeo").args([
                "copy",
                "--dest-tls-verify=false",
                &format!("docker-archive:{}", archive.display()),
                &format!("docker://{dest}"),
            ]));
            let raw = sh(peer(s, "skopeo").args([
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{dest}"),
            ]));
            let theirs = sha256(raw.as_bytes());
            let back = Store::empty();
            let out = back.json(&["pull", &dest, "--plain-http"]);
            assert_eq!(
                out["digest"],
                theirs.as_str(),
                "skopeo's docker-archive copy"
            );
            back.ok(&["verify"]);
            let ls = back.json(&["ls"]);
            assert_eq!(ls[0]["kind"], "container-image", "{ls}");
        } else {
            assert!(
                sk.status.success(),
                "{r}: skopeo copy: {}",
                String::from_utf8_lossy(&sk.stderr)
            );
            pull_back(&dest, r, &digest, &ours, &format!("{r}: skopeo copy"));
        }

        // crane, a one-entry layout of ours.
        let one = s.path(&format!("one-{}", slug(r)));
        s.ok(&["copy", r, "--to", one.to_str().unwrap()]);
        let dest = format!("{}/crane/{repo}:1", reg.host);
        let said = sh(peer(s, "crane")
            .args(["push", "--insecure"])
            .arg(&one)
            .arg(&dest));
        assert!(said.contains(&digest), "{r}: crane push printed {said}");
        pull_back(&dest, r, &digest, &ours, &format!("{r}: crane push"));

        // oras, straight from our layout.
        let dest = format!("{}/oras/{repo}:1", reg.host);
        sh(peer(s, "oras").args([
            "cp",
            "--from-oci-layout-path",
            layout,
            r,
            "--to-plain-http",
            &dest,
        ]));
        let back = pull_back(&dest, r, &digest, &ours, &format!("{r}: oras cp"));
        unpacks_to_originals(&k, &back, r);
    }
}

/// What `r` unpacks to in `back` is what it was made from.
fn unpacks_to_originals(k: &Kinds, back: &Store, r: &str) {
    let out = back.path("out");
    let _ = std::fs::remove_dir_all(&out);
    let files = |d: &Path| -> Vec<(String, Vec<u8>)> { crate::eci::dir_files(d) };
    match r {
        "snap:1" | "snap-v1:1" | "snap-zstd:1" => {
            back.ok(&["unpack", r, out.to_str().unwrap()]);
            assert_eq!(files(&out), files(&k.vm), "{r}: the snapshot's files");
        }
        "os:1" => {
            back.ok(&["unpack", r, out.to_str().unwrap()]);
            assert!(
                std::fs::read(out.join("disk.raw")).unwrap() == std::fs::read(&k.disk).unwrap(),
                "{r}: the disk"
            );
        }
        "eci:1" | "eci-legacy:1" => {
            back.ok(&["unpack", r, out.to_str().unwrap()]);
            crate::eci::same_files(files(&out), k.eci.expected(true), r);
        }
        _ => {}
    }
}

#[test]
fn what_oras_and_crane_make_and_push_we_pull_and_verify() {
    if !tools(&["docker-registry", "crane", "oras", "tar"]) {
        return;
    }
    let s = Store::empty();
    let reg = Registry::start(&s);
    let work = s.path("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("big.bin"), bytes(700_000, 31)).unwrap();
    std::fs::write(work.join("notes.txt"), b"runbook\n").unwrap();

    // oras push: an artifact of two files, with an artifact type.
    let dest = format!("{}/oras/made:1", reg.host);
    sh(peer(&s, "oras").current_dir(&work).args([
        "push",
        "--plain-http",
        "--artifact-type",
        "application/vnd.example.bundle",
        "--annotation",
        "org.example.k=v",
        &dest,
        "big.bin",
        "notes.txt:text/plain",
    ]));
    let raw = sh(peer(&s, "oras").args(["manifest", "fetch", "--plain-http", &dest]));
    let back = Store::empty();
    let out = back.json(&["pull", &dest, "--plain-http", "--ref", "made:1"]);
    assert_eq!(out["digest"], sha256(raw.as_bytes()).as_str());
    back.ok(&["verify"]);
    let m: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(m["artifactType"], "application/vnd.example.bundle");
    for l in m["layers"].as_array().unwrap() {
        let name = l["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap();
        assert!(
            std::fs::read(back.blob(l["digest"].as_str().unwrap())).unwrap()
                == std::fs::read(work.join(name)).unwrap(),
            "{name}: the layer is the file"
        );
    }
    // crane append: images of its own (Docker v2 and OCI), then an index of them.
    let tarball = s.path("layer.tar");
    sh(Command::new("tar")
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&work)
        .arg("notes.txt"));
    let mut imgs = vec![];
    for (name, extra) in [("docker", None), ("oci", Some("--oci-empty-base"))] {
        let dest = format!("{}/crane/{name}:1", reg.host);
        let mut c = peer(&s, "crane");
        c.args(["append", "--insecure", "-f"])
            .arg(&tarball)
            .args(["-t", &dest]);
        c.args(extra);
        sh(&mut c);
        let raw = sh(peer(&s, "crane").args(["manifest", "--insecure", &dest]));
        let out = back.json(&["pull", &dest, "--plain-http", "--ref", &format!("{name}:1")]);
        assert_eq!(out["digest"], sha256(raw.as_bytes()).as_str(), "{name}");
        let m: Value = serde_json::from_str(&raw).unwrap();
        let want = if name == "docker" {
            "application/vnd.docker.distribution.manifest.v2+json"
        } else {
            crate::util::OCI_MANIFEST
        };
        assert_eq!(m["mediaType"], want, "crane append --{name}");
        // The config's diffID is the tar we gave.
        let config: Value = serde_json::from_slice(
            &std::fs::read(back.blob(m["config"]["digest"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            sha256(&std::fs::read(&tarball).unwrap()).as_str(),
            "{name}"
        );
        imgs.push(dest);
    }
    let dest = format!("{}/crane/index:1", reg.host);
    let mut c = peer(&s, "crane");
    c.args(["index", "append", "--insecure", "-t", &dest]);
    for i in &imgs {
        c.args(["-m", i]);
    }
    sh(&mut c);
    let raw = sh(peer(&s, "crane").args(["manifest", "--insecure", &dest]));
    let out = back.json(&["pull", &dest, "--plain-http", "--ref", "index:1"]);
    assert_eq!(out["digest"], sha256(raw.as_bytes()).as_str());
    back.ok(&["verify"]);
    let ls = back.json(&["ls"]);
    let kind = |r: &str| {
        ls.as_array()
            .unwrap()
            .iter()
            .find(|e| e["ref"] == r)
            .map(|e| e["kind"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(kind("docker:1"), "container-image", "{ls}");
    assert_eq!(kind("oci:1"), "container-image", "{ls}");
    let idx: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2, "{idx}");
    assert_ne!(kind("index:1"), Value::Null, "{ls}");
}

// ---------------------------------------------------------------- oras-py

/// The venv `.ci/py-peers.sh` makes with the pinned oras-py; `None` (a
/// skip, a failure in CI) where it is not there.
fn oras_py() -> Option<PathBuf> {
    let tools = std::env::var_os("EPOCH_STORE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/epoch-store/tools")
        });
    let python = tools.join("oras-py/bin/python");
    let ok = python.is_file()
        && Command::new(&python)
            .args(["-c", "import oras.client"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!(
            "oras-py is not installed in {} (source .ci/py-peers.sh installs it)",
            python.display()
        ));
        return None;
    }
    Some(python)
}

/// oras-py's own calls: `push HOST TARGET FILE...` (in the files'
/// directory; prints the manifest digest the registry returned) and `pull
/// HOST TARGET OUTDIR` (prints the files it wrote, one a line).
const ORAS_PY: &str = r#"
import sys, oras.client
cmd, host, target = sys.argv[1:4]
c = oras.client.OrasClient(hostname=host, insecure=True)
if cmd == "push":
    r = c.push(files=sys.argv[4:], target=target)
    r.raise_for_status()
    print(r.headers["Docker-Content-Digest"])
else:
    for p in c.pull(target=target, outdir=sys.argv[4]):
        print(p)
"#;

fn oras_py_run(python: &Path, cwd: &Path, args: &[&str]) -> String {
    sh(Command::new(python)
        .current_dir(cwd)
        .arg("-c")
        .arg(ORAS_PY)
        .args(args)
        .env("DOCKER_CONFIG", cwd.join(".no-docker-config")))
}

#[test]
fn oras_py_pushes_files_we_pull_identical_and_pulls_the_files_we_push() {
    if !have_tool("docker-registry") {
        return;
    }
    let Some(python) = oras_py() else { return };
    let s = Store::new();
    let reg = Registry::start(&s);
    let work = s.path("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("model.bin"), bytes(1_500_000, 41)).unwrap();
    std::fs::write(work.join("README"), b"oras-py pushed this\n").unwrap();

    // oras-py pushes; we pull and verify, and its layers are its files.
    let target = format!("{}/py/files:1", reg.host);
    let digest = oras_py_run(
        &python,
        &work,
        &["push", &reg.host, &target, "model.bin", "README"],
    );
    let out = s.json(&["pull", &target, "--plain-http", "--ref", "py:1"]);
    assert_eq!(out["digest"], digest.trim(), "{out}");
    s.ok(&["verify"]);
    let m: Value = serde_json::from_slice(&std::fs::read(s.blob(digest.trim())).unwrap()).unwrap();
    assert_eq!(m["layers"].as_array().unwrap().len(), 2, "{m}");
    for l in m["layers"].as_array().unwrap() {
        let name = l["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap();
        assert!(
            std::fs::read(s.blob(l["digest"].as_str().unwrap())).unwrap()
                == std::fs::read(work.join(name)).unwrap(),
            "{name}: the layer is oras-py's file"
        );
    }
    // We push an `add` artifact; oras-py pulls the files.
    let src = s.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("disk.img"), bytes(2_100_000, 42)).unwrap();
    std::fs::write(src.join("notes.md"), b"# ours\n").unwrap();
    s.ok(&[
        "add",
        "--ref",
        "ours:1",
        src.join("disk.img").to_str().unwrap(),
        src.join("notes.md").to_str().unwrap(),
    ]);
    s.ok(&[
        "push",
        "ours:1",
        &format!("{}/py/ours", reg.host),
        "--plain-http",
    ]);
    let outdir = s.path("py-out");
    let wrote = oras_py_run(
        &python,
        &work,
        &[
            "pull",
            &reg.host,
            &format!("{}/py/ours:1", reg.host),
            outdir.to_str().unwrap(),
        ],
    );
    assert_eq!(wrote.lines().count(), 2, "{wrote}");
    assert_eq!(crate::eci::dir_files(&outdir), crate::eci::dir_files(&src));
}

// ---------------------------------------------------------------- lf-edge ECI

#[test]
fn lfedge_puller_reads_both_eci_formats_we_push_to_distribution() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    let files = crate::eci::Files::new(&s);
    let reg = Registry::start(&s);
    for format in ["artifacts", "legacy"] {
        let r = format!("eci-{format}:1");
        let digest = crate::eci::pack(&s, &files, &r, format, false)["digest"]
            .as_str()
            .unwrap()
            .to_string();
        s.ok(&[
            "push",
            &r,
            &format!("{}/eci/{format}", reg.host),
            "--plain-http",
        ]);
        let out = s.path(&format!("pulled-{format}"));
        std::fs::create_dir_all(&out).unwrap();
        let art: Value = serde_json::from_str(&lfedge(
            &s,
            &[
                "eci-pull-registry",
                &format!("{}/eci/{format}:1", reg.host),
                out.to_str().unwrap(),
                "2",
            ],
        ))
        .unwrap();
        assert_eq!(art["digest"], digest.as_str(), "{format}: {art}");
        assert_eq!(art["root"]["type"], "Raw", "{format}: {art}");
        let read = |n: &str| std::fs::read(out.join(n)).unwrap();
        let orig = |n: &str| std::fs::read(files.dir.join(n)).unwrap();
        assert!(read("kernel") == orig("vmlinuz"), "{format}: kernel");
        assert!(read("initrd") == orig("initrd.img"), "{format}: initrd");
        assert!(read("root") == orig("root.img"), "{format}: root");
        if format == "legacy" {
            assert!(read("disk-0") == orig("data.qcow2"), "legacy: disk 0");
            assert!(read("disk-1") == orig("seed.iso"), "legacy: disk 1");
        } else {
            // lf-edge's FilesTarget writes no additional disk of this format.
            assert!(!out.join("disk-0").exists());
        }
    }
}

/// `oracle-go ARGS` with an empty docker config; stdout, asserting success.
fn lfedge(s: &Store, args: &[&str]) -> String {
    let out = lfedge_run(s, args);
    assert!(
        out.status.success(),
        "oracle-go {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lfedge_run(s: &Store, args: &[&str]) -> Output {
    Command::new(crate::eci::oracle_go())
        .args(args)
        .env("DOCKER_CONFIG", s.path("peer-home"))
        .output()
        .unwrap()
}

#[test]
fn lfedge_pusher_eci_distribution_refuses_and_we_pull_from_go_containerregistrys_identically() {
    if !have_tool("docker-registry") || !have_tool("crane") {
        return;
    }
    let s = Store::new();
    let files = crate::eci::Files::new(&s);
    let dist = Registry::start(&s);
    let ggcr = crate::oras::Registry::start(&s);
    for format in ["artifacts", "legacy"] {
        let push = |host: &str| {
            let mut a = vec![
                "eci-push-registry".to_string(),
                format!("{host}/lfedge/{format}:1"),
                format.to_string(),
                "--timestamp".into(),
                "1000".into(),
            ];
            a.extend(files.args(true));
            lfedge_run(&s, &a.iter().map(String::as_str).collect::<Vec<_>>())
        };
        // distribution 2.8 refuses lf-edge's manifest: `"schemaVersion": 0`.
        let refused = push(&dist.host);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && err.contains("500"),
            "{format}: distribution 2.8 takes a schemaVersion 0 manifest now? {err}"
        );
        // go-containerregistry's registry takes it; we pull it and unpack
        // lf-edge's files.
        let pushed = push(&ggcr.host);
        assert!(
            pushed.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&pushed.stderr)
        );
        let digest = String::from_utf8(pushed.stdout).unwrap().trim().to_string();
        let r = format!("lfedge-{format}:1");
        let out = s.json(&[
            "pull",
            &format!("{}/lfedge/{format}:1", ggcr.host),
            "--plain-http",
            "--ref",
            &r,
        ]);
        assert_eq!(out["digest"], digest.as_str(), "{format}: {out}");
        s.ok(&["verify"]);
        let m: Value = serde_json::from_slice(&std::fs::read(s.blob(&digest)).unwrap()).unwrap();
        assert_eq!(m["schemaVersion"], 0, "{format}: lf-edge's bytes, kept");
        let ls = s.json(&["ls"]);
        let row = ls
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["ref"] == r.as_str())
            .unwrap();
        assert_eq!(row["kind"], "eci", "{format}: {row}");
        let unpacked = s.path(&format!("unpacked-{format}"));
        s.ok(&["unpack", &r, unpacked.to_str().unwrap()]);
        crate::eci::same_files(
            crate::eci::dir_files(&unpacked),
            files.expected(true),
            format,
        );
        // Our push of those bytes to distribution 2.8 is refused as lf-edge's is.
        let err = s.fails(
            2,
            &[
                "push",
                &r,
                &format!("{}/again/{format}", dist.host),
                "--plain-http",
            ],
        );
        assert!(err.contains("500"), "{format}: {err}");
    }
}
