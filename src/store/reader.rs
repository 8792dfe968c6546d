//! Verified streaming reads of blobs.

use std::fs::File;
use std::io::{self, Read};

use crate::io::digest::{Digest, Hasher};

/// Reads a blob while checking it: more bytes than expected fail at once,
/// and at end of file the byte count and digest must match, or the final
/// `read` returns an `InvalidData` error naming the blob. A consumer that
/// reads to the end has therefore seen exactly the right bytes.
#[derive(Debug)]
pub struct BlobReader<R: Read = File> {
    file: R,
    hasher: Option<Hasher>,
    digest: Digest,
    size: u64,
    read: u64,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl<R: Read> BlobReader<R> {
    pub(crate) fn new(file: R, digest: Digest, size: u64) -> BlobReader<R> {
        BlobReader {
            hasher: Some(Hasher::new(digest.algorithm())),
            file,
            digest,
            size,
            read: 0,
        }
    }

    /// The digest being checked.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The expected size.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl<R: Read> Read for BlobReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read += n as u64;
        if self.read > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} is longer than its {} bytes",
                    self.digest, self.size
                ),
            ));
        }
        if n > 0 {
            if let Some(h) = &mut self.hasher {
                h.update(&buf[..n]);
            }
            return Ok(n);
        }
        // End of file: check once.
        if let Some(h) = self.hasher.take() {
            if self.read != self.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} ended after {} of {} bytes",
                        self.digest, self.read, self.size
                    ),
                ));
            }
            let found = h.finish();
            if found != self.digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} is damaged: its content hashes to {found}",
                        self.digest
                    ),
                ));
            }
        }
        Ok(0)
    }
}
