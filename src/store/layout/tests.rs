//! Unit tests of the layout: init, open, refusals, reads.

use super::*;
use crate::io::progress::NoProgress;

fn layout() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::init(dir.path().join("l")).unwrap();
    (dir, layout)
}

#[test]
fn expected_descriptor_mismatch_publishes_nothing() -> Result<()> {
    let (_d, layout) = layout();
    let w = layout.writer()?;
    let right = Descriptor::new(
        media_type::GENERIC,
        Digest::of_bytes(Algorithm::Sha256, b"abc"),
        3,
    );
    let mut blob = w.blob()?;
    std::io::Write::write_all(&mut blob, b"abd").unwrap();
    assert!(matches!(
        blob.commit(media_type::GENERIC, Some(&right)),
        Err(Error::DigestMismatch { .. })
    ));
    let mut blob = w.blob()?;
    std::io::Write::write_all(&mut blob, b"abcd").unwrap();
    assert!(matches!(
        blob.commit(media_type::GENERIC, Some(&right)),
        Err(Error::SizeMismatch { .. })
    ));
    assert!(!layout.blob_path(&right.digest).exists());
    assert_eq!(
        fs::read_dir(layout.tmp_dir()).unwrap().count(),
        0,
        "temp files removed"
    );
    let mut blob = w.blob()?;
    std::io::Write::write_all(&mut blob, b"abc").unwrap();
    assert_eq!(blob.commit(media_type::GENERIC, Some(&right))?, right);
    Ok(())
}

#[test]
fn sha512_expected_digests_are_published_under_sha512() -> Result<()> {
    let (_d, layout) = layout();
    let w = layout.writer()?;
    let want = Descriptor::new(
        media_type::GENERIC,
        Digest::of_bytes(Algorithm::Sha512, b"x"),
        1,
    );
    let mut blob = w.blob()?;
    std::io::Write::write_all(&mut blob, b"x").unwrap();
    blob.commit(media_type::GENERIC, Some(&want))?;
    assert_eq!(layout.read_blob(&want, 10)?, b"x");
    assert!(
        layout
            .blob_path(&want.digest)
            .starts_with(layout.root().join("blobs/sha512"))
    );
    Ok(())
}

#[test]
fn resolve_refs_digests_and_catalog() -> Result<()> {
    let (_d, layout) = layout();
    let w = layout.writer()?;
    let layer = w.put_bytes(media_type::GENERIC, b"data")?;
    let m = crate::store::artifact::files_manifest(&w, std::slice::from_ref(&layer), None, None)?;
    w.update_index(|i| {
        i.set_ref(&"repo/vm:v1".parse().unwrap(), &m);
        i.set_ref(&"base".parse().unwrap(), &m);
        Ok(())
    })?;
    assert_eq!(layout.resolve("repo/vm:v1")?.digest, m.digest);
    assert_eq!(layout.resolve(&m.digest.to_string())?.digest, m.digest);
    let plain = layout.resolve(&layer.digest.to_string())?;
    assert_eq!(
        (plain.media_type.as_str(), plain.size),
        (media_type::GENERIC, 4)
    );
    assert!(matches!(
        layout.resolve("nope"),
        Err(Error::RefNotFound { .. })
    ));
    assert!(matches!(
        layout.resolve("sha256:zz"),
        Err(Error::InvalidDigest { .. })
    ));
    let catalog = layout.catalog()?;
    assert_eq!(
        catalog.repositories["repo/vm"].tags["v1"],
        m.digest.to_string()
    );
    assert!(catalog.repositories.contains_key("base"));
    Ok(())
}

#[test]
fn verified_reads_catch_damage() -> Result<()> {
    let (_d, layout) = layout();
    let w = layout.writer()?;
    let d = w.put_bytes(media_type::GENERIC, b"hello world")?;
    fs::write(layout.blob_path(&d.digest), b"hello World").unwrap();
    assert!(matches!(
        layout.read_blob(&d, 100),
        Err(Error::DigestMismatch { .. })
    ));
    let mut r = layout.open_blob(&d)?;
    let mut out = Vec::new();
    let err = std::io::Read::read_to_end(&mut r, &mut out).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    fs::write(layout.blob_path(&d.digest), b"hello").unwrap();
    assert!(matches!(
        layout.open_blob(&d),
        Err(Error::SizeMismatch { .. })
    ));
    Ok(())
}

#[test]
fn put_file_matches_put_bytes() -> Result<()> {
    let (dir, layout) = layout();
    let src = dir.path().join("src");
    let data: Vec<u8> = (0..3 * crate::io::hash::WINDOW / 2)
        .map(|i| (i % 251) as u8)
        .collect();
    fs::write(&src, &data).unwrap();
    let w = layout.writer()?;
    let a = w.put_file(media_type::GENERIC, &src, &NoProgress)?;
    assert_eq!(a.digest, Digest::of_bytes(Algorithm::Sha256, &data));
    assert_eq!(fs::read(layout.blob_path(&a.digest)).unwrap(), data);
    Ok(())
}

#[test]
fn open_refuses_what_is_not_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Layout::open(dir.path()),
        Err(Error::NotALayout { .. })
    ));
    fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"9"}"#,
    )
    .unwrap();
    assert!(matches!(
        Layout::open(dir.path()),
        Err(Error::UnsupportedLayoutVersion { .. })
    ));
    fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let err = Layout::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("index.json is missing"), "{err}");
    // init completes an interrupted init.
    Layout::init(dir.path()).unwrap();
    Layout::open(dir.path()).unwrap();
}
