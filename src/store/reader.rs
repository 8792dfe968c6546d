//! Verified streaming reads of blobs.

use std::fs::File;
use std::io::{self, Read};

use crate::io::digest::{Digest, Hasher};

/// Reads a blob while checking it: more bytes than expected fail at once;
/// the `read` that brings the last byte checks the digest (and withholds
/// those bytes on a mismatch), and end of file before the size is an
/// error, each an `InvalidData` naming the blob. A consumer that reads the
/// blob's size, or to the end, has therefore seen exactly the right bytes.
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

impl<R: Read> BlobReader<R> {
    /// The hash so far against the digest: an error naming the blob if
    /// they differ (checked once).
    fn check(&mut self) -> io::Result<()> {
        let Some(h) = self.hasher.take() else {
            return Ok(());
        };
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
        Ok(())
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
            // The last byte: checked now, for consumers that stop at the
            // size (an HTTP body of known length) and never see the end;
            // on a mismatch the last bytes are not handed out.
            if self.read == self.size {
                self.check()?;
            }
            return Ok(n);
        }
        // End of file: short, or an empty blob.
        if self.hasher.is_some() && self.read != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} ended after {} of {} bytes",
                    self.digest, self.read, self.size
                ),
            ));
        }
        self.check()?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::digest::Algorithm;

    fn reader(data: &[u8], of: &[u8]) -> BlobReader<&'static [u8]> {
        let data: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
        BlobReader::new(
            data,
            Digest::of_bytes(Algorithm::Sha256, of),
            of.len() as u64,
        )
    }

    #[test]
    fn a_consumer_that_stops_at_the_size_still_gets_the_check() {
        let good = b"exactly these bytes";
        let mut bad = good.to_vec();
        bad[3] ^= 1;
        let mut out = Vec::new();
        // Reading just the size (as an HTTP body of known length does).
        let n = (&mut reader(good, good))
            .take(good.len() as u64)
            .read_to_end(&mut out);
        assert_eq!(n.unwrap(), good.len());
        let err = (&mut reader(&bad, good))
            .take(good.len() as u64)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("is damaged"), "{err}");
        // Short, long and empty.
        let err = reader(&good[..5], good)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("ended after 5"), "{err}");
        let mut long = good.to_vec();
        long.push(b'!');
        let err = reader(&long, good)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("longer"), "{err}");
        assert_eq!(reader(b"", b"").read_to_end(&mut Vec::new()).unwrap(), 0);
        assert!(reader(b"", b"x").read_to_end(&mut Vec::new()).is_err());
    }
}
