//! Archive members stored as blobs while they are read: checked against
//! the digest their name gives (`blobs/<alg>/<hex>`), or hashed into one
//! (a docker archive's `<hex>.tar`, `<id>/layer.tar`, `<hex>.json`).

use std::io::{self, Read};

use super::ARCHIVE;
use super::tar_in::{TarIn, read_error};
use crate::error::{Error, Result};
use crate::io::digest::{Digest, Hasher};
use crate::io::durable;
use crate::io::progress::Progress;
use crate::model::{Descriptor, media_type};
use crate::store::writer::Writer;

/// Bytes copied at a time from a member into its blob.
const BUFFER: usize = 1 << 20;

/// Stores one blob member, published only if it hashes to `digest`.
/// Returns the bytes written, or `None` if the layout had the blob already
/// (then the member is hashed, not written, and the blob's mtime refreshed
/// for gc's grace period).
pub(super) fn store_blob<R: Read>(
    writer: &Writer<'_>,
    tar: &mut TarIn<R>,
    digest: &Digest,
    size: u64,
    progress: &dyn Progress,
) -> Result<Option<u64>> {
    let member = format!(
        "{ARCHIVE} member blobs/{}/{}",
        digest.algorithm(),
        digest.hex()
    );
    let tampered = |found: &Digest| Error::InvalidDocument {
        what: member.clone(),
        reason: format!(
            "its content hashes to {found}, not to {digest} as its name says; the archive is \
             damaged or was altered"
        ),
    };
    let path = writer.layout().blob_path(digest);
    let present =
        crate::io::input::file_state(&path, size)? == crate::io::input::FileState::Present;
    let mut body = tar.body();
    let mut buf = vec![0u8; BUFFER.min(usize::try_from(size).unwrap_or(BUFFER).max(1))];
    if present {
        let mut hasher = Hasher::new(digest.algorithm());
        copy(&mut body, &mut buf, progress, |bytes| {
            hasher.update(bytes);
            Ok(())
        })?;
        let found = hasher.finish();
        if &found != digest {
            return Err(tampered(&found));
        }
        durable::touch(&path)?;
        return Ok(None);
    }
    let mut blob = writer.blob()?;
    let tmp = blob.temp_path().to_path_buf();
    copy(&mut body, &mut buf, progress, |bytes| {
        io::Write::write_all(&mut blob, bytes).map_err(|e| Error::io("write", &tmp, e))
    })?;
    let expected = Descriptor::new(media_type::GENERIC, digest.clone(), size);
    match blob.commit(media_type::GENERIC, Some(&expected)) {
        Ok(_) => Ok(Some(size)),
        Err(Error::DigestMismatch { found, .. }) => Err(tampered(&found)),
        Err(e) => Err(e),
    }
}

/// Feeds every byte of `body` to `sink`.
fn copy(
    body: &mut dyn Read,
    buf: &mut [u8],
    progress: &dyn Progress,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    loop {
        let n = match body.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        sink(&buf[..n])?;
        progress.advance(n as u64);
    }
}

/// Stores the current member, whatever its name, under the digest of its
/// bytes (sha256); returns its descriptor (`application/octet-stream`).
pub(crate) fn store_member<R: Read>(
    writer: &Writer<'_>,
    tar: &mut TarIn<R>,
    size: u64,
    progress: &dyn Progress,
) -> Result<Descriptor> {
    let mut body = tar.body();
    let mut buf = vec![0u8; BUFFER.min(usize::try_from(size).unwrap_or(BUFFER).max(1))];
    let mut blob = writer.blob()?;
    let tmp = blob.temp_path().to_path_buf();
    copy(&mut body, &mut buf, progress, |bytes| {
        io::Write::write_all(&mut blob, bytes).map_err(|e| Error::io("write", &tmp, e))
    })?;
    blob.commit(media_type::GENERIC, None)
}
