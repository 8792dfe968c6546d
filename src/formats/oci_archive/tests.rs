use std::io::{Read, Write};

use super::*;
use crate::error::{Error, Result};
use crate::io::progress::NoProgress;
use crate::model::Descriptor;
use crate::store::layout::Layout;
use crate::store::verify::VerifyOptions;

fn layout(dir: &tempfile::TempDir, name: &str) -> Layout {
    Layout::init(dir.path().join(name)).expect("init")
}

/// A layout with `a:1` (two files, one of 17 MiB so that it streams) and
/// `b:1` (one small file).
fn source(dir: &tempfile::TempDir) -> Result<(Layout, Descriptor, Descriptor)> {
    let l = layout(dir, "src");
    let w = l.writer()?;
    let big: Vec<u8> = (0..17u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let x = w.put_bytes("application/octet-stream", &big)?;
    let y = w.put_bytes("application/octet-stream", b"small")?;
    let a = crate::store::artifact::files_manifest(&w, &[x, y.clone()], None, None)?;
    let b = crate::store::artifact::files_manifest(&w, &[y], None, None)?;
    w.update_index(|i| {
        i.set_ref(&"a:1".parse().unwrap(), &a);
        i.set_ref(&"b:1".parse().unwrap(), &b);
        Ok(())
    })?;
    drop(w);
    Ok((l, a, b))
}

fn import(l: &Layout, bytes: &[u8], force: bool) -> Result<ImportReport> {
    let w = l.writer()?;
    import_archive(
        &w,
        bytes,
        &ImportOptions::default().force(force),
        &NoProgress,
    )
}

fn assert_clean(l: &Layout) {
    let r = l.verify(&VerifyOptions::default(), &NoProgress).unwrap();
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn export_import_round_trip_and_determinism() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (src, a, b) = source(&dir)?;
    let tar = export_archive(&src, &["a:1", "b:1", "a:1"], Vec::new(), &NoProgress)?;
    let again = export_archive(&src, &["a:1", "b:1"], Vec::new(), &NoProgress)?;
    assert_eq!(tar, again, "the same refs give the same bytes");
    let plan = ArchivePlan::new(&src, &["a:1", "b:1"])?;
    assert_eq!(plan.roots().len(), 2);
    // a's manifest, empty config, big, small; b's manifest.
    assert_eq!(plan.blobs().len(), 5);

    let dst = layout(&dir, "dst");
    let report = import(&dst, &tar, false)?;
    assert_eq!(report.blobs, 5);
    assert_eq!(report.blobs_skipped, 0);
    assert_eq!(report.bytes_written, plan.blob_bytes());
    assert_eq!(report.refs.len(), 2);
    assert!(report.refs.iter().all(|r| r.change == RefChange::Added));
    assert_eq!(dst.resolve("a:1")?.digest, a.digest);
    assert_eq!(dst.resolve("b:1")?.digest, b.digest);
    assert_clean(&dst);

    // Again: every blob is there already, nothing changes.
    let report = import(&dst, &tar, false)?;
    assert_eq!((report.blobs_skipped, report.bytes_written), (5, 0));
    assert!(report.refs.iter().all(|r| r.change == RefChange::Unchanged));

    // gzip is detected by its magic.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let dst2 = layout(&dir, "dst2");
    import(&dst2, &gz.finish().unwrap(), false)?;
    assert_eq!(dst2.resolve("b:1")?.digest, b.digest);

    // A digest exports an untagged entry.
    let tar = export_archive(&src, &[b.digest.to_string()], Vec::new(), &NoProgress)?;
    let dst3 = layout(&dir, "dst3");
    let report = import(&dst3, &tar, false)?;
    assert_eq!(report.refs[0].name, None);
    assert_eq!(dst3.read_index()?.entries()[0].digest, b.digest);
    assert_eq!(dst3.read_index()?.entries()[0].ref_name(), None);
    Ok(())
}

#[test]
fn the_tar_crate_reads_our_archives() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (src, _, _) = source(&dir)?;
    let tar = export_archive(&src, &["a:1"], Vec::new(), &NoProgress)?;
    let mut archive = tar::Archive::new(&tar[..]);
    let mut names = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(e.header().mtime().unwrap(), 0);
        assert_eq!(e.header().uid().unwrap(), 0);
        if name.starts_with("blobs/sha256/") && e.header().entry_type().is_file() {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            assert_eq!(
                crate::Digest::of_bytes(crate::Algorithm::Sha256, &data).hex(),
                &name["blobs/sha256/".len()..]
            );
        }
        names.push(name);
    }
    assert_eq!(
        &names[..4],
        ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]
    );
    assert_eq!(names.len(), 8);
    Ok(())
}

#[test]
fn a_tampered_member_is_refused_and_nothing_tagged() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (src, _, _) = source(&dir)?;
    let mut tar = export_archive(&src, &["b:1"], Vec::new(), &NoProgress)?;
    let at = tar
        .windows(5)
        .position(|w| w == b"small")
        .expect("the small blob");
    tar[at] = b'S';
    let dst = layout(&dir, "dst");
    let err = import(&dst, &tar, false).expect_err("tampered");
    let msg = err.to_string();
    let small = crate::Digest::of_bytes(crate::Algorithm::Sha256, b"small");
    assert!(msg.contains(small.hex()), "{msg}");
    assert!(msg.contains("altered"), "{msg}");
    assert!(dst.read_index()?.entries().is_empty());
    assert_clean(&dst);
    Ok(())
}

#[test]
fn a_damaged_source_never_ends_the_stream() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (src, _, _) = source(&dir)?;
    let plan = ArchivePlan::new(&src, &["a:1"])?;
    let big = plan
        .blobs()
        .iter()
        .find(|b| b.size > 1 << 20)
        .expect("big blob")
        .clone();
    // Damage the last byte: the stream has most of the blob out already.
    let path = src.blob_path(&big.digest);
    let mut data = std::fs::read(&path).unwrap();
    *data.last_mut().unwrap() ^= 1;
    std::fs::write(&path, &data).unwrap();
    let mut out = Vec::new();
    let err = plan
        .write(&src, &mut out, &NoProgress)
        .expect_err("damaged");
    assert!(err.to_string().contains(big.digest.hex()), "{err}");
    assert!(out.len() as u64 > (16 << 20), "it streamed");
    assert!(!out.ends_with(&[0u8; 1024]));
    assert!(!out.len().is_multiple_of(512));
    let dst = layout(&dir, "dst");
    assert!(import(&dst, &out, false).is_err());
    assert!(dst.read_index()?.entries().is_empty());
    // A small damaged blob is found before any of its bytes go out, and
    // a file export leaves nothing behind.
    let small = crate::Digest::of_bytes(crate::Algorithm::Sha256, b"small");
    std::fs::write(src.blob_path(&small), b"smalL").unwrap();
    let dest = dir.path().join("out").join("b.tar");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let plan = ArchivePlan::new(&src, &["b:1"])?;
    let mut out = Vec::new();
    let err = plan
        .write(&src, &mut out, &NoProgress)
        .expect_err("damaged");
    assert!(err.to_string().contains(small.hex()), "{err}");
    assert!(
        !out.windows(5).any(|w| w == b"smalL"),
        "no byte of it went out"
    );
    assert!(export_archive_file(&src, &plan, &dest, &NoProgress).is_err());
    assert_eq!(
        std::fs::read_dir(dir.path().join("out")).unwrap().count(),
        0
    );
    Ok(())
}

#[test]
fn refs_existing_with_another_digest_need_force() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (src, a, _) = source(&dir)?;
    let tar = export_archive(&src, &["a:1"], Vec::new(), &NoProgress)?;
    let dst = layout(&dir, "dst");
    {
        let w = dst.writer()?;
        let other = w.put_bytes("application/octet-stream", b"other")?;
        let m = crate::store::artifact::files_manifest(&w, &[other], None, None)?;
        w.update_index(|i| Ok(i.set_ref(&"a:1".parse().unwrap(), &m)))?;
    }
    let before = std::fs::read(dst.index_path()).unwrap();
    let err = import(&dst, &tar, false).expect_err("conflict");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read(dst.index_path()).unwrap(), before);
    let report = import(&dst, &tar, true)?;
    assert!(matches!(report.refs[0].change, RefChange::Replaced(_)));
    assert_eq!(dst.resolve("a:1")?.digest, a.digest);
    Ok(())
}

/// One raw tar member.
fn member(out: &mut Vec<u8>, name: &str, kind: u8, body: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.as_old_mut().linkflag = [kind];
    h.set_cksum();
    out.extend(h.as_bytes());
    out.extend(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn small_archive(extra: impl FnOnce(&mut Vec<u8>)) -> (Vec<u8>, Vec<u8>) {
    let blob = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let digest = crate::Digest::of_bytes(crate::Algorithm::Sha256, blob);
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"x"}}}}]}}"#,
        blob.len()
    );
    let mut out = Vec::new();
    member(&mut out, "./", b'5', b"");
    member(
        &mut out,
        &format!("blobs/sha256/{}", digest.hex()),
        b'0',
        blob,
    );
    extra(&mut out);
    member(&mut out, "index.json", b'0', index.as_bytes());
    member(
        &mut out,
        "oci-layout",
        b'0',
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    let body = out.clone();
    out.extend([0u8; 1024]);
    (out, body)
}

#[test]
fn hostile_members_are_refused() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let dst = layout(&dir, "dst");
    let (good, body) = small_archive(|_| {});
    import(&dst, &good, false)?;
    assert!(dst.resolve("x").is_ok());
    let dst = layout(&dir, "dst2");
    for (name, kind, needle) in [
        ("../x", b'0', ".."),
        ("/etc/x", b'0', "absolute"),
        ("blobs/sha256/x", b'2', "symbolic link"),
        ("blobs/sha256/x", b'1', "hard link"),
        ("blobs/sha256/x", b'3', "character device"),
        ("blobs/sha256/x", b'4', "block device"),
        ("blobs/sha256/x", b'6', "FIFO"),
        ("etc/passwd", b'0', "only oci-layout"),
        ("blobs/md5/abc", b'0', "not a digest algorithm"),
        ("blobs/sha256/ABC", b'0', "not a lowercase"),
        ("etc", b'5', "only oci-layout"),
        ("x", b'g', "global header"),
    ] {
        let (tar, _) = small_archive(|out| member(out, name, kind, b""));
        let err = import(&dst, &tar, false).expect_err(name);
        assert!(err.to_string().contains(needle), "{name}: {err}");
        assert!(dst.read_index()?.entries().is_empty());
    }
    for (bytes, needle) in [
        (body.clone(), "end-of-archive"),
        (body[..body.len() - 700].to_vec(), "truncated"),
        (b"garbage, not a tar".to_vec(), "truncated"),
        (vec![b'g'; 2048], "not a tar"),
        (Vec::new(), "empty"),
    ] {
        let err = import(&dst, &bytes, false).expect_err(needle);
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    assert!(dst.read_index()?.entries().is_empty());
    assert_clean(&dst);
    Ok(())
}

#[test]
fn an_index_reaching_a_blob_the_archive_lacks_is_refused() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (src, _, _) = source(&dir)?;
    let tar = export_archive(&src, &["b:1"], Vec::new(), &NoProgress)?;
    // The archive without the "small" blob's member.
    let mut archive = tar::Archive::new(&tar[..]);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if data == b"small" {
            continue;
        }
        let kind = e.header().entry_type().as_byte();
        member(&mut out, &name, kind, &data);
    }
    out.extend([0u8; 1024]);
    let dst = layout(&dir, "dst");
    let err = import(&dst, &out, false).expect_err("incomplete");
    let small = crate::Digest::of_bytes(crate::Algorithm::Sha256, b"small");
    assert!(err.to_string().contains(small.hex()), "{err}");
    assert!(err.to_string().contains("neither in the archive"), "{err}");
    assert!(dst.read_index()?.entries().is_empty());
    Ok(())
}

#[test]
fn wrong_layout_versions_and_missing_members_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dst = layout(&dir, "dst");
    let mut out = Vec::new();
    member(
        &mut out,
        "oci-layout",
        b'0',
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    );
    out.extend([0u8; 1024]);
    let err = import(&dst, &out, false).expect_err("version");
    assert!(
        matches!(err, Error::UnsupportedLayoutVersion { .. }),
        "{err}"
    );
    let mut out = Vec::new();
    member(
        &mut out,
        "oci-layout",
        b'0',
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    out.extend([0u8; 1024]);
    let err = import(&dst, &out, false).expect_err("no index");
    assert!(err.to_string().contains("no index.json"), "{err}");
}

#[test]
fn sha512_names_use_a_pax_path() -> Result<()> {
    let name = format!("blobs/sha512/{}", "a".repeat(128));
    let mut out = Vec::new();
    export::tests_put_header(&mut out, &name, 3)?;
    let mut tin = tar_in::TarIn::new(&out[..])?;
    // The header is followed by nothing: reading the member works, the
    // body is then short.
    let m = tin.next_member()?.expect("a member");
    assert_eq!(m.name, name);
    assert_eq!(m.size, 3);
    Ok(())
}
