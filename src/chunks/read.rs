//! Reading a chunk's bytes, verified: [`ChunkReader`] yields exactly the
//! bytes a chunk decodes to (zstd decoded, with the window limit
//! [`WINDOW_LOG_MAX`]), no fewer and no more, and confirms the end of the
//! blob (where its digest is checked) before it hands out the last of them;
//! [`open_verify_ahead`] reads small blobs whole and verified first.
//! Restoring files, exporting a snapshot as cocoon's tar stream and
//! exporting an OCI archive all read blobs through it.

use std::io::{self, Cursor, Read};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::io::sparse::SparseMap;
use crate::model::Descriptor;
use crate::store::layout::Layout;

/// Blobs of at most this many bytes (16 MiB) are read and verified in
/// memory before any of their bytes is exported; larger ones stream, and
/// the last bytes of each are held back until the blob's end, where its
/// digest is checked, has been read.
pub const VERIFY_AHEAD: u64 = 16 << 20;

/// The largest zstd window accepted when decoding a chunk (2^29 bytes:
/// 512 MiB, as cocoon-common).
pub(crate) const WINDOW_LOG_MAX: u32 = 29;

/// One blob of a file: the blob, how many bytes of the stored stream it
/// yields, and whether it is a zstd frame.
#[derive(Clone, Debug)]
pub struct ChunkRef {
    /// The blob.
    pub blob: Descriptor,
    /// Bytes of the stored stream it holds once decoded.
    pub decoded_len: u64,
    /// Whether it is zstd-compressed.
    pub zstd: bool,
}

impl ChunkRef {
    /// A chunk stored as it is.
    pub fn raw(blob: Descriptor) -> ChunkRef {
        ChunkRef {
            decoded_len: blob.size,
            blob,
            zstd: false,
        }
    }
}

/// Checks that `chunks` decode to exactly the stored stream `map`
/// describes; `what` names the file in the error.
pub(crate) fn check_fills_map(
    chunks: &[ChunkRef],
    map: &SparseMap,
    what: impl FnOnce() -> String,
) -> Result<()> {
    let Some(total) = crate::io::size::checked_total(chunks.iter().map(|c| c.decoded_len)) else {
        return Err(Error::Overflow {
            what: format!("the chunk lengths of {}", what()),
        });
    };
    if total != map.stored_len() {
        return Err(Error::InvalidDocument {
            what: what(),
            reason: format!(
                "its chunks hold {total} bytes but its sparse map says {}",
                map.stored_len()
            ),
        });
    }
    Ok(())
}

/// Opens `blob` for reading, verified: one of at most [`VERIFY_AHEAD`]
/// bytes is read whole and checked before any of it is returned; a larger
/// one streams through a [`BlobReader`](crate::BlobReader), whose last
/// read checks it.
pub(crate) fn open_verify_ahead(layout: &Layout, blob: &Descriptor) -> Result<Box<dyn Read>> {
    Ok(if blob.size <= VERIFY_AHEAD {
        Box::new(Cursor::new(layout.read_blob(blob, VERIFY_AHEAD)?))
    } else {
        Box::new(layout.open_blob(blob)?)
    })
}

/// A chunk's decoded bytes, exactly [`ChunkRef::decoded_len`] of them.
pub(crate) struct ChunkReader<'a> {
    chunk: &'a ChunkRef,
    reader: Box<dyn Read + 'a>,
    left: u64,
    /// Whether the end has been read (checked to come right after the
    /// decoded length).
    ended: bool,
    /// Read errors are `Error::Stream` with this operation and name.
    op: &'static str,
    label: String,
}

impl<'a> ChunkReader<'a> {
    /// Reads `chunk` from `raw`, its blob's bytes (verified by whoever
    /// opened it: [`open_verify_ahead`], or a [`BlobReader`](crate::BlobReader)),
    /// decoding zstd if it is compressed. Read errors name `op` and `label`
    /// (each caller keeps the words it has always used); `path` is the
    /// blob's file, named if the decoder cannot start.
    pub(crate) fn new(
        chunk: &'a ChunkRef,
        raw: Box<dyn Read + 'a>,
        path: &Path,
        op: &'static str,
        label: impl Into<String>,
    ) -> Result<ChunkReader<'a>> {
        let reader: Box<dyn Read + 'a> = if chunk.zstd {
            let mut d = zstd::stream::read::Decoder::new(raw).ctx("decompress", path)?;
            d.window_log_max(WINDOW_LOG_MAX).ctx("decompress", path)?;
            Box::new(d)
        } else {
            raw
        };
        Ok(ChunkReader {
            chunk,
            reader,
            left: chunk.decoded_len,
            ended: false,
            op,
            label: label.into(),
        })
    }

    /// Reads up to `buf.len()` decoded bytes; `Ok(0)` once all are read
    /// (at once for a chunk of no bytes, after its end was checked).
    /// Before the last bytes are returned the chunk is read to its end: a
    /// streamed blob's digest is checked then, and a chunk that decodes to
    /// more than its `decoded_len` (a decompression bomb) stops there.
    ///
    /// # Errors
    /// The blob's read errors (damage found at its end among them), and
    /// [`Error::InvalidDocument`] for a chunk that decodes to fewer or
    /// more bytes than its `decoded_len`.
    pub(crate) fn read_some(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        if self.left > 0 {
            let want = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            if want == 0 {
                return Ok(0);
            }
            n = self.read_retrying(&mut buf[..want])?;
            if n == 0 {
                return Err(self.bad(format!(
                    "it ends {} bytes short of what its file needs",
                    self.left
                )));
            }
            self.left -= n as u64;
        }
        if self.left == 0 && !self.ended {
            let mut one = [0u8; 1];
            if self.read_retrying(&mut one)? != 0 {
                return Err(self.bad(format!(
                    "it holds more than the {} bytes its file needs",
                    self.chunk.decoded_len
                )));
            }
            self.ended = true;
        }
        Ok(n)
    }

    fn read_retrying(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.reader.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::stream(self.op, self.label.clone(), e)),
                Ok(n) => return Ok(n),
            }
        }
    }

    fn bad(&self, reason: String) -> Error {
        Error::InvalidDocument {
            what: format!("chunk {}", self.chunk.blob.digest),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::digest::{Algorithm, Digest};
    use crate::model::media_type;

    fn chunk(data: &[u8], decoded_len: u64, zstd: bool) -> ChunkRef {
        let digest = Digest::of_bytes(Algorithm::Sha256, data);
        ChunkRef {
            blob: Descriptor::new(media_type::GENERIC, digest, data.len() as u64),
            decoded_len,
            zstd,
        }
    }

    fn read_all(c: &ChunkRef, raw: Vec<u8>) -> Result<Vec<u8>> {
        let mut r = ChunkReader::new(c, Box::new(Cursor::new(raw)), Path::new("b"), "read", "b")?;
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            match r.read_some(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn exactly_the_decoded_length_comes_out() -> Result<()> {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 13) as u8).collect();
        let packed = zstd::encode_all(&data[..], 3).unwrap();
        assert_eq!(read_all(&chunk(&packed, 1000, true), packed.clone())?, data);
        assert_eq!(read_all(&chunk(&data, 1000, false), data.clone())?, data);
        let short = read_all(&chunk(&packed, 1001, true), packed.clone()).unwrap_err();
        assert!(short.to_string().contains("1 bytes short"), "{short}");
        let long = read_all(&chunk(&packed, 999, true), packed).unwrap_err();
        assert!(long.to_string().contains("more than the 999"), "{long}");
        let empty = read_all(&chunk(b"", 0, false), Vec::new())?;
        assert!(empty.is_empty());
        let err = read_all(&chunk(b"x", 0, false), b"x".to_vec()).unwrap_err();
        assert!(err.to_string().contains("more than the 0"), "{err}");
        Ok(())
    }
}
