//! One legacy ECI layer: a file alone in a gzip tar, as lf-edge's
//! `tgz.Compress` writes it (Go's `archive/tar` header of the name, size,
//! mode and timestamp, the body, padding, the end-of-archive marker),
//! gzip-compressed on the way into the blob while the tar is hashed for
//! its diffID.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::{Error, IoContext, Result};
use crate::io::digest::Digest;
use crate::io::hash::HashingWriter;
use crate::io::progress::Progress;
use crate::model::{Descriptor, media_type as mt};
use crate::store::writer::Writer;
use crate::tar::write::{END_OF_ARCHIVE, go_file_headers, padding};

/// The largest timestamp a ustar header holds (11 octal digits).
pub(super) const MAX_TIMESTAMP: u64 = 0o777_7777_7777;

/// Stores `size` bytes of `file` (at `path`) as a gzip tar layer holding
/// one regular file `name` with `mode` and `mtime`, and returns the layer's
/// descriptor (media type OCI tar+gzip) and its diffID (the tar's digest).
///
/// # Errors
/// A file shorter than `size` (it changed while being read), I/O errors;
/// nothing is published on error.
#[allow(clippy::too_many_arguments)]
pub(super) fn put_tar_gzip(
    writer: &Writer<'_>,
    file: &File,
    path: &Path,
    name: &str,
    mode: u32,
    mtime: u64,
    size: u64,
    progress: &dyn Progress,
) -> Result<(Descriptor, Digest)> {
    let blob = writer.blob()?;
    let tmp = blob.temp_path().to_path_buf();
    // The tar bytes, hashed (the diffID) on their way into the gzip stream.
    let mut sink = HashingWriter::new(GzEncoder::new(blob, Compression::default()));
    let write_err = |e: io::Error| Error::io("write", &tmp, e);
    sink.write_all(&go_file_headers(name, mode, mtime, size))
        .map_err(write_err)?;
    let mut failed = None;
    let read = crate::io::hash::for_each_range(file, 0, size, &mut |bytes| {
        if let Err(e) = sink.write_all(bytes) {
            failed = Some(e);
            return Err(io::Error::other("write failed"));
        }
        progress.advance(bytes.len() as u64);
        Ok(())
    });
    if let Some(e) = failed {
        return Err(write_err(e));
    }
    read.ctx("read", path)?;
    sink.write_all(padding(size)).map_err(write_err)?;
    sink.write_all(&END_OF_ARCHIVE).map_err(write_err)?;
    let (gz, diff) = sink.finish();
    let blob = gz.finish().map_err(write_err)?;
    let desc = blob.commit(mt::OCI_LAYER_TAR_GZIP, None)?;
    Ok((desc, diff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::progress::NoProgress;
    use crate::store::layout::Layout;
    use std::io::Read;

    /// The tar inside is Go's: one ustar header, the body padded, two zero
    /// blocks (Go's writer adds no record padding); the diffID is its digest.
    #[test]
    fn a_layer_is_one_file_in_a_gzip_tar() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l"))?;
        let path = dir.path().join("cfg.json");
        std::fs::write(&path, b"{\"a\":1}\n").unwrap();
        let file = File::open(&path).unwrap();
        let w = layout.writer()?;
        let (desc, diff) = put_tar_gzip(&w, &file, &path, "cfg.json", 0o644, 1000, 8, &NoProgress)?;
        assert_eq!(desc.media_type, mt::OCI_LAYER_TAR_GZIP);
        let gz = layout.read_blob(&desc, u64::MAX)?;
        assert_eq!(
            &gz[..10],
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
            "Go's gzip header"
        );
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(tar.len(), 2048);
        assert_eq!(
            diff,
            Digest::of_bytes(crate::io::digest::Algorithm::Sha256, &tar)
        );
        assert_eq!(&tar[512..520], b"{\"a\":1}\n");
        assert!(tar[520..].iter().all(|&b| b == 0));
        assert!(put_tar_gzip(&w, &file, &path, "x", 0o644, 0, 9, &NoProgress).is_err());
        Ok(())
    }
}
