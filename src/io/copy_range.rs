//! Copying byte ranges between files inside the kernel: `copy_file_range(2)`,
//! which shares extents (a reflink) on filesystems that can (XFS with
//! reflink, btrfs, bcachefs, ZFS with block cloning) and copies page cache to
//! page cache elsewhere.
//!
//! Callers never trust a copy they did not hash: after copying, they read
//! the destination back and check its digest, so that the bytes published
//! are the bytes hashed even if the source changed meanwhile.
//!
//! [`CopyMode`] picks the strategy, per layout handle
//! (`Layout::with_copy_mode`; the CLI reads `EPOCH_STORE_COPY=copy|write`,
//! for benchmarks and for filesystems that misbehave): the default
//! ([`CopyMode::Auto`]) uses `copy_file_range` only on filesystems that
//! share extents, where it saves writing the data at all.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// How file data is moved from a source file into a blob or a restored file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    /// `copy_file_range` where the destination's filesystem shares extents,
    /// read and write elsewhere.
    Auto,
    /// Always try `copy_file_range` first (falling back to read and write
    /// where the kernel refuses it).
    CopyRange,
    /// Always read the bytes into memory, hash them and write them.
    ReadWrite,
}

impl CopyMode {
    /// The mode a word names: `copy`, `write` or `auto` (the default, also
    /// for any other word).
    pub fn named(word: &str) -> CopyMode {
        match word {
            "copy" => CopyMode::CopyRange,
            "write" => CopyMode::ReadWrite,
            _ => CopyMode::Auto,
        }
    }

    /// Whether to try `copy_file_range` into `dest`.
    pub fn use_copy_range(self, dest: &File) -> bool {
        match self {
            CopyMode::CopyRange => true,
            CopyMode::ReadWrite => false,
            CopyMode::Auto => shares_extents(dest),
        }
    }
}

/// Whether `file` lives on a filesystem where `copy_file_range` shares
/// extents.
pub(crate) fn shares_extents(file: &File) -> bool {
    crate::io::filesystem::shares_extents(file)
}

/// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off` with
/// `copy_file_range`, finishing with `pread`/`pwrite` when the kernel
/// refuses (`EXDEV`, `EINVAL`, `EOPNOTSUPP`, `ENOSYS`: across filesystems,
/// on FUSE, old kernels) or stops early (the source is shorter than
/// expected: that is an `UnexpectedEof` error).
///
/// # Errors
/// I/O errors from either file; `UnexpectedEof` if `src` ends early.
pub(crate) fn copy_range(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
) -> io::Result<()> {
    use rustix::io::Errno;
    let mut done = 0u64;
    while done < len {
        let mut from = src_off + done;
        let mut to = dst_off + done;
        // At most 1 GiB per call: the kernel caps a call near 2 GiB anyway.
        let want = (len - done).min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, Some(&mut from), dst, Some(&mut to), want) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the source ends at {}", src_off + done),
                ));
            }
            Ok(n) => done += n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::OPNOTSUPP | Errno::NOSYS) => {
                return copy_with_buffer(src, src_off + done, dst, dst_off + done, len - done);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `pread`/`pwrite` through a 1 MiB buffer.
fn copy_with_buffer(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; (len.min(1 << 20)) as usize];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], src_off + done)?;
        dst.write_all_at(&buf[..n], dst_off + done)?;
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn copies_ranges_at_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(3 << 20);
        std::fs::write(dir.path().join("src"), &data).unwrap();
        let src = File::open(dir.path().join("src")).unwrap();
        let dst = File::create(dir.path().join("dst")).unwrap();
        copy_range(&src, 1000, &dst, 5, 2 << 20).unwrap();
        let got = std::fs::read(dir.path().join("dst")).unwrap();
        assert_eq!(got.len(), 5 + (2 << 20));
        assert_eq!(&got[..5], &[0; 5]);
        assert_eq!(&got[5..], &data[1000..1000 + (2 << 20)]);
        // The buffered fallback gives the same bytes.
        let dst2 = File::create(dir.path().join("dst2")).unwrap();
        copy_with_buffer(&src, 1000, &dst2, 5, 2 << 20).unwrap();
        assert_eq!(std::fs::read(dir.path().join("dst2")).unwrap(), got);
    }

    #[test]
    fn a_short_source_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("src"), pattern(100)).unwrap();
        let src = File::open(dir.path().join("src")).unwrap();
        let dst = File::create(dir.path().join("dst")).unwrap();
        let e = copy_range(&src, 50, &dst, 0, 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn modes_from_env_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("f")).unwrap();
        assert!(CopyMode::CopyRange.use_copy_range(&f));
        assert!(!CopyMode::ReadWrite.use_copy_range(&f));
        assert_eq!(CopyMode::Auto.use_copy_range(&f), shares_extents(&f));
    }
}
