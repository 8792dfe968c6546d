//! Hashing files: streamed, or memory-mapped in bounded windows, and many at
//! once in parallel with rayon.

use std::fs::File;
use std::io;

use crate::io::digest::{Algorithm, Digest, Hasher};
use crate::io::mmap;
use crate::io::progress::Progress;

/// Bytes mapped at a time when hashing a file. Small enough that two workers
/// keep resident memory far below 64 MiB, large enough that mapping costs vanish.
pub(crate) const WINDOW: usize = 8 << 20;

/// Size of the buffer used when a file is read instead of mapped.
const READ_BUF: usize = 1 << 20;

/// Hashes the first `len` bytes of `file` (the whole file, for a blob):
/// memory-mapped in [`WINDOW`]s on local filesystems, read otherwise.
///
/// # Errors
/// I/O errors, including the file being shorter than `len`.
pub(crate) fn hash_file(
    file: &File,
    len: u64,
    algorithm: Algorithm,
    progress: &dyn Progress,
) -> io::Result<Digest> {
    let mut hasher = Hasher::new(algorithm);
    for_each_chunk(file, len, &mut |bytes| {
        hasher.update(bytes);
        progress.advance(bytes.len() as u64);
        Ok(())
    })?;
    Ok(hasher.finish())
}

/// Calls `f` with the first `len` bytes of `file` in order; see [`for_each_range`].
///
/// # Errors
/// As [`for_each_range`].
pub(crate) fn for_each_chunk(
    file: &File,
    len: u64,
    f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    for_each_range(file, 0, len, f)
}

/// Calls `f` with the bytes `[start, start + len)` of `file` in order, in
/// pieces of at most [`WINDOW`] bytes: mapped on local filesystems, read
/// with `pread` elsewhere, so that each byte is read once and resident
/// memory stays bounded.
///
/// # Errors
/// I/O errors (also when the file ends before `start + len`) and `f`'s errors.
pub(crate) fn for_each_range(
    file: &File,
    start: u64,
    len: u64,
    f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let end = start
        .checked_add(len)
        .ok_or_else(|| io::Error::other("range overflows"))?;
    if mmap::is_mappable(file) && file.metadata()?.len() >= end {
        return mmap::for_each_window(file, start, len, WINDOW, f);
    }
    let mut buf = vec![0u8; READ_BUF.min(len as usize)];
    let mut pos = start;
    while pos < end {
        let want = buf.len().min((end - pos) as usize);
        let n = match file.read_at(&mut buf[..want], pos) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ended at {pos}, before {end}"),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f(&buf[..n])?;
        pos += n as u64;
    }
    Ok(())
}

/// The digest of everything `reader` gives (a decompressed layer, say).
///
/// # Errors
/// The reader's errors.
pub(crate) fn hash_reader(algorithm: Algorithm, mut reader: impl io::Read) -> io::Result<Digest> {
    let mut h = Hasher::new(algorithm);
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(h.finish()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A writer that hashes (SHA-256) what goes through it to `inner`: a
/// layer's diffID while its tar is compressed.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W> HashingWriter<W> {
    /// Hashes what is written to `inner`.
    pub(crate) fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Hasher::new(Algorithm::Sha256),
        }
    }

    /// The writer and the digest of everything written through it.
    pub(crate) fn finish(self) -> (W, Digest) {
        (self.inner, self.hasher.finish())
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> std::fmt::Debug for HashingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashingWriter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::progress::NoProgress;
    use proptest::prelude::*;
    use std::io::Write;

    fn file_with(data: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        f
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn mmap_stream_and_one_shot_agree(len in 0usize..(3 * WINDOW / 2 + 10), seed in any::<u8>()) {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let one_shot = Digest::of_bytes(Algorithm::Sha256, &data);
            let f = file_with(&data);
            let mapped = hash_file(&f, len as u64, Algorithm::Sha256, &NoProgress).unwrap();
            let mut streamed = Hasher::new(Algorithm::Sha256);
            for piece in data.chunks(4099) {
                streamed.update(piece);
            }
            prop_assert_eq!(&mapped, &one_shot);
            prop_assert_eq!(&streamed.finish(), &one_shot);
        }
    }

    #[test]
    fn parallel_hashing_matches_sequential() {
        let blobs: Vec<Vec<u8>> = (0..9).map(|i| vec![i as u8; i * 100_003]).collect();
        let files: Vec<File> = blobs.iter().map(|b| file_with(b)).collect();
        let par = crate::io::schedule::by_size(
            &files,
            crate::io::schedule::Workers::Cores,
            |f| f.metadata().unwrap().len(),
            |f| {
                hash_file(
                    f,
                    f.metadata().unwrap().len(),
                    Algorithm::Sha256,
                    &NoProgress,
                )
                .unwrap()
            },
        );
        let seq: Vec<Digest> = blobs
            .iter()
            .map(|b| Digest::of_bytes(Algorithm::Sha256, b))
            .collect();
        assert_eq!(par, seq);
    }

    #[test]
    fn short_file_is_an_error_not_a_wrong_digest() {
        let f = file_with(b"abc");
        assert!(hash_file(&f, 10, Algorithm::Sha256, &NoProgress).is_err());
    }
}
