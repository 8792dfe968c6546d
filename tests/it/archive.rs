//! OCI archives (`export-archive`, `import-archive`): read and written by
//! the real skopeo (`oci-archive:`), round trips through pipes and gzip,
//! snapshots, and hostile or damaged archives.

use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::util::{Store, bytes, have_tool, sh};

/// `oci-archive:FILE:REF`.
fn oci_archive(file: &Path, r: &str) -> String {
    format!("oci-archive:{}:{r}", file.display())
}

/// `epoch-store cat TARGET`, asserting exit 0; the raw bytes.
fn cat(s: &Store, target: &str) -> Vec<u8> {
    let out = s.run(&["cat", target]);
    assert!(
        out.status.success(),
        "cat {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `verify --json`, asserting exit 0 and no problems.
fn assert_verify_clean(s: &Store) -> Value {
    let out = s.run(&["--json", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify of {}: {}\n{}",
        s.layout.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"], json!([]), "{v:#}");
    v
}

/// The refs in index.json, sorted.
fn refs(s: &Store) -> Vec<String> {
    let mut r: Vec<String> = s.index()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    r.sort();
    r
}

/// A small container image made by umoci in `s`'s layout, tagged `base`.
fn umoci_image(s: &Store) {
    let l = s.layout.to_str().unwrap();
    sh(Command::new("umoci").args(["init", "--layout", l]));
    sh(Command::new("umoci").args(["new", "--image", &format!("{l}:base")]));
    let src = s.path("rootfs-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello from umoci\n").unwrap();
    std::fs::write(src.join("data.bin"), bytes(48 * 1024, 7)).unwrap();
    sh(Command::new("umoci").args([
        "insert",
        "--rootless",
        "--image",
        &format!("{l}:base"),
        src.to_str().unwrap(),
        "/data",
    ]));
}

/// Runs `args` with `input` on stdin; the output.
fn run_stdin(s: &Store, args: &[&str], input: &[u8]) -> Output {
    let mut child = s
        .cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// Exports `refs` from `s` to a file in its temp dir; returns the path.
fn export(s: &Store, refs: &[&str], name: &str) -> PathBuf {
    let file = s.path(name);
    let mut args = vec!["export-archive"];
    args.extend_from_slice(refs);
    args.extend(["-o", file.to_str().unwrap()]);
    s.ok(&args);
    file
}

/// `import-archive FILE` expected to fail with exit 2; stderr.
fn import_fails(s: &Store, file: &Path) -> String {
    s.fails(2, &["import-archive", file.to_str().unwrap()])
}

/// Raw tar member (ustar header, body, padding).
fn member(out: &mut Vec<u8>, name: &str, kind: u8, body: &[u8], link: &str) {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.as_old_mut().linkflag = [kind];
    h.set_cksum();
    out.extend(h.as_bytes());
    out.extend(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// The members of a tar (name, type, body), read with the `tar` crate.
fn members(tar: &[u8]) -> Vec<(String, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let kind = e.header().entry_type().as_byte();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        out.push((name, kind, body));
    }
    out
}

/// Re-assembles members into a tar with the end-of-archive marker.
fn assemble(list: &[(String, u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, body) in list {
        member(&mut out, name, *kind, body, "");
    }
    out.extend([0u8; 1024]);
    out
}

// ---------------------------------------------------------------- peers

/// Our archive of an artifact and a umoci image: skopeo reads both
/// manifests byte for byte, and copies them out into layouts that verify.
#[test]
fn skopeo_reads_our_archives() {
    if !have_tool("skopeo") || !have_tool("umoci") {
        return;
    }
    let s = Store::empty();
    umoci_image(&s);
    s.add(
        "art:1",
        &[
            ("memory-ranges", &bytes(300 * 1024, 1)),
            ("notes.md", b"# notes\n"),
        ],
    );
    let file = export(&s, &["art:1", "base"], "both.tar");
    for r in ["art:1", "base"] {
        let raw = sh(Command::new("skopeo").args(["inspect", "--raw", &oci_archive(&file, r)]));
        assert_eq!(raw.as_bytes(), cat(&s, r), "{r}: skopeo sees other bytes");
        let copy = Store::empty();
        sh(Command::new("skopeo").args([
            "copy",
            "--quiet",
            &oci_archive(&file, r),
            &format!("oci:{}:{r}", copy.layout.display()),
        ]));
        assert_verify_clean(&copy);
        assert_eq!(cat(&copy, r), cat(&s, r));
    }
    // The same refs give the same bytes.
    let again = export(&s, &["art:1", "base"], "again.tar");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

/// An archive written by `skopeo copy ... oci-archive:` imports, verifies,
/// and keeps the manifest's bytes.
#[test]
fn we_read_skopeos_archives() {
    if !have_tool("skopeo") || !have_tool("umoci") {
        return;
    }
    let u = Store::empty();
    umoci_image(&u);
    let file = u.path("skopeo.tar");
    sh(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:base", u.layout.display()),
        &oci_archive(&file, "img:1"),
    ]));
    let s = Store::new();
    let report = s.json(&["import-archive", file.to_str().unwrap()]);
    assert_eq!(report["refs"][0]["ref"], "img:1", "{report:#}");
    assert_eq!(report["refs"][0]["change"], "added", "{report:#}");
    assert_eq!(report["blobs"], 3, "{report:#}");
    assert_eq!(report["blobsSkipped"], 0, "{report:#}");
    assert_eq!(refs(&s), ["img:1"]);
    assert_verify_clean(&s);
    let raw = sh(Command::new("skopeo").args(["inspect", "--raw", &oci_archive(&file, "img:1")]));
    assert_eq!(cat(&s, "img:1"), raw.as_bytes());
    // Importing it again writes nothing and changes nothing.
    let again = s.json(&["import-archive", file.to_str().unwrap()]);
    assert_eq!(again["blobsSkipped"], 3, "{again:#}");
    assert_eq!(again["bytesWritten"], 0, "{again:#}");
    assert_eq!(again["refs"][0]["change"], "unchanged", "{again:#}");
}

// ---------------------------------------------------------------- round trips

/// `export-archive -o - | import-archive -` into a second layout, and a
/// gzip-compressed archive.
#[test]
fn round_trip_through_pipes_and_gzip() {
    let s = Store::new();
    let big = bytes(20 << 20, 3); // streams (over 16 MiB)
    s.add("big:1", &[("disk.raw", &big), ("small.txt", b"small")]);
    s.add("other:2", &[("x.bin", &bytes(1000, 4))]);
    let untagged = s.file("loose.txt", b"loose");
    let loose = s.json(&["add", untagged.to_str().unwrap()]);
    let loose = loose["digest"].as_str().unwrap().to_string();

    let out = s.run(&["export-archive", "big:1", "other:2", &loose, "-o", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tar = out.stdout;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Exported big:1, other:2"),
        "summary on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = members(&tar).into_iter().map(|m| m.0).collect();
    assert_eq!(
        &names[..4],
        ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]
    );

    let d = Store::new();
    let out = run_stdin(&d, &["--json", "import-archive", "-"], &tar);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["refs"].as_array().unwrap().len(), 3, "{report:#}");
    assert_eq!(report["refs"][2]["ref"], Value::Null, "{report:#}");
    assert_eq!(refs(&d), ["big:1", "other:2"]);
    assert_verify_clean(&d);
    for r in ["big:1", "other:2", loose.as_str()] {
        assert_eq!(cat(&d, r), cat(&s, r), "{r}");
    }
    let entries = d.index()["manifests"].as_array().unwrap().clone();
    assert!(
        entries
            .iter()
            .any(|e| e["digest"] == loose.as_str() && e.get("annotations").is_none())
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let g = Store::new();
    let file = g.file("bundle.tar.gz", &gz.finish().unwrap());
    let line = g.ok(&["import-archive", file.to_str().unwrap()]);
    assert!(line.contains("big:1"), "{line}");
    assert_eq!(refs(&g), ["big:1", "other:2"]);
    assert_verify_clean(&g);
    assert_eq!(cat(&g, "big:1"), cat(&s, "big:1"));

    // stdout as the archive refuses --json; the CLI needs a ref.
    let e = s.fails(2, &["--json", "export-archive", "big:1", "-o", "-"]);
    assert!(e.contains("--json"), "{e}");
    s.fails(2, &["export-archive", "-o", "x.tar"]);
    let e = s.fails(
        2,
        &[
            "export-archive",
            "nope:1",
            "-o",
            s.path("n.tar").to_str().unwrap(),
        ],
    );
    assert!(e.contains("nope:1"), "{e}");
    assert!(!s.path("n.tar").exists());
}

/// A snapshot packed with `pack snapshot` survives export, import and
/// unpack byte for byte, holes and modes included.
#[test]
fn a_snapshot_survives_export_import_unpack() {
    let s = Store::new();
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    let cow = std::fs::File::create(dir.join("cow.raw")).unwrap();
    cow.set_len(8 << 20).unwrap();
    cow.write_all_at(&bytes(64 << 10, 1), 1 << 20).unwrap();
    cow.write_all_at(&bytes(4096, 2), 6 << 20).unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes(256 << 10, 3)).unwrap();
    std::fs::set_permissions(
        dir.join("memory-ranges"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824}}"#,
    )
    .unwrap();
    s.ok(&["pack", "snapshot", dir.to_str().unwrap(), "--ref", "vm:v1"]);
    let file = export(&s, &["vm:v1"], "vm.tar");

    let d = Store::new();
    d.ok(&["import-archive", file.to_str().unwrap()]);
    assert_verify_clean(&d);
    assert_eq!(cat(&d, "vm:v1"), cat(&s, "vm:v1"));
    let target = d.path("restored");
    d.ok(&["unpack", "vm:v1", target.to_str().unwrap()]);
    crate::vm::assert_same_tree(&dir, &target);
}

// ---------------------------------------------------------------- bad input

/// A blob member whose bytes were changed (name kept) is refused, naming
/// the digest; nothing is tagged and the layout verifies.
#[test]
fn a_tampered_blob_member_is_refused() {
    let s = Store::new();
    let payload = b"the original payload".to_vec();
    s.add("a:1", &[("p.txt", &payload)]);
    let tar = std::fs::read(export(&s, &["a:1"], "a.tar")).unwrap();
    let mut list = members(&tar);
    let blob = list
        .iter_mut()
        .find(|m| m.2 == payload)
        .expect("the payload member");
    let name = blob.0.clone();
    blob.2 = b"the altered! payload".to_vec();
    let d = Store::new();
    let bad = d.file("bad.tar", &assemble(&list));
    let e = import_fails(&d, &bad);
    let hex = name.rsplit('/').next().unwrap();
    assert!(e.contains(hex), "the digest is named: {e}");
    assert!(e.contains("nothing was tagged"), "{e}");
    assert!(refs(&d).is_empty());
    assert_verify_clean(&d);
    // The same bytes, in place in our own archive's layout (same length).
    let mut raw = tar.clone();
    let at = raw
        .windows(payload.len())
        .position(|w| w == payload)
        .unwrap();
    raw[at] ^= 0x20;
    let bad = d.file("bad2.tar", &raw);
    let e = import_fails(&d, &bad);
    assert!(e.contains(hex), "{e}");
    assert!(refs(&d).is_empty());
}

/// Path tricks, links, devices, truncation and garbage are refused; nothing
/// is tagged.
#[test]
fn hostile_archives_are_refused() {
    let s = Store::new();
    s.add("a:1", &[("p.txt", b"payload")]);
    let good = members(&std::fs::read(export(&s, &["a:1"], "a.tar")).unwrap());
    let d = Store::new();
    let cases: Vec<(&str, u8, &str, &str)> = vec![
        ("../x", b'0', "", ".."),
        ("blobs/../../x", b'0', "", ".."),
        ("/etc/evil", b'0', "", "absolute"),
        ("blobs/sha256/evil", b'2', "/etc/shadow", "symbolic link"),
        ("blobs/sha256/evil", b'1', "index.json", "hard link"),
        ("dev", b'3', "", "character device"),
        ("dev", b'4', "", "block device"),
        ("fifo", b'6', "", "FIFO"),
        ("etc/passwd", b'0', "", "only oci-layout"),
        ("index.json.bak", b'0', "", "only oci-layout"),
    ];
    for (name, kind, link, needle) in cases {
        let mut out = Vec::new();
        for (n, k, body) in &good {
            member(&mut out, n, *k, body, "");
        }
        // Insert the hostile member before index.json's tagging can happen.
        let mut hostile = Vec::new();
        member(&mut hostile, name, kind, b"", link);
        let mut tar = hostile;
        tar.extend(out);
        tar.extend([0u8; 1024]);
        let f = d.file("hostile.tar", &tar);
        let e = import_fails(&d, &f);
        assert!(e.contains(needle), "{name}: {e}");
        assert!(refs(&d).is_empty(), "{name}");
    }
    let tar = assemble(&good);
    for (bytes, needle) in [
        (tar[..tar.len() - 1024].to_vec(), "end-of-archive marker"),
        (tar[..700].to_vec(), "truncated"),
        (b"this is not an archive".to_vec(), "truncated"),
        (vec![0x41; 4096], "not a tar"),
        (b"\x1f\x8b garbage".to_vec(), "gzip"),
    ] {
        let f = d.file("bad.tar", &bytes);
        let e = import_fails(&d, &f);
        assert!(e.to_lowercase().contains(needle), "{needle}: {e}");
    }
    assert!(refs(&d).is_empty());
    assert_verify_clean(&d);
}

/// An index.json that references a blob the archive does not hold (and
/// the layout does not have) is refused, naming the blob.
#[test]
fn an_archive_missing_a_blob_is_refused() {
    let s = Store::new();
    s.add("a:1", &[("p.txt", b"payload that is left out")]);
    let list: Vec<_> = members(&std::fs::read(export(&s, &["a:1"], "a.tar")).unwrap())
        .into_iter()
        .filter(|m| m.2 != b"payload that is left out")
        .collect();
    let d = Store::new();
    let f = d.file("incomplete.tar", &assemble(&list));
    let e = import_fails(&d, &f);
    let missing = crate::util::sha256(b"payload that is left out");
    assert!(e.contains(&missing), "{e}");
    assert!(
        e.contains("neither in the archive nor in this layout"),
        "{e}"
    );
    assert!(refs(&d).is_empty());
}

/// A ref that exists with another digest is refused, then moved with --force.
#[test]
fn an_existing_ref_with_another_digest_needs_force() {
    let s = Store::new();
    let theirs = s.add("app:1", &[("v.txt", b"version from the archive")]);
    let file = export(&s, &["app:1"], "app.tar");
    let d = Store::new();
    let ours = d.add("app:1", &[("v.txt", b"our own version")]);
    let e = import_fails(&d, &file);
    assert!(e.contains("--force") && e.contains(&ours), "{e}");
    assert_eq!(d.index()["manifests"][0]["digest"], ours.as_str());
    let report = d.json(&["import-archive", "--force", file.to_str().unwrap()]);
    assert_eq!(report["refs"][0]["change"], "replaced", "{report:#}");
    assert_eq!(report["refs"][0]["previous"], ours.as_str(), "{report:#}");
    assert_eq!(d.index()["manifests"][0]["digest"], theirs.as_str());
    assert_verify_clean(&d);
}

/// A damaged blob in the source layout: export exits 2 naming it and leaves
/// no file (small blobs are checked before they are written, large ones
/// while they stream); to stdout, the stream has no end marker.
#[test]
fn a_damaged_source_blob_fails_the_export_and_leaves_no_file() {
    for len in [1000usize, 17 << 20] {
        let s = Store::new();
        let data = bytes(len, 9);
        s.add("a:1", &[("d.bin", &data)]);
        let digest = crate::util::sha256(&data);
        let path = s.blob(&digest);
        let mut damaged = data.clone();
        *damaged.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        let out = s.path("out");
        std::fs::create_dir(&out).unwrap();
        let file = out.join("a.tar");
        let e = s.fails(2, &["export-archive", "a:1", "-o", file.to_str().unwrap()]);
        assert!(e.contains(digest.trim_start_matches("sha256:")), "{e}");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "no file, no temp file"
        );
        let piped = s.run(&["export-archive", "a:1", "-o", "-"]);
        assert_eq!(piped.status.code(), Some(2));
        assert!(!piped.stdout.ends_with(&[0u8; 1024]));
        assert!(!piped.stdout.len().is_multiple_of(512) || piped.stdout.is_empty());
        let d = Store::new();
        let f = d.file("piped.tar", &piped.stdout);
        d.fails(2, &["import-archive", f.to_str().unwrap()]);
        assert!(refs(&d).is_empty());
    }
}
