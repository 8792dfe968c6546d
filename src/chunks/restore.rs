//! Restoring files from their blobs: chunks are read verified, in parallel,
//! and written at their offsets in the logical file, so holes stay holes.
//! Every file is restored into a fresh temp file sized with `set_len` (or
//! grown by its writes where the filesystem cannot size a file so), so
//! all-zero 4 KiB blocks (aligned in the file) are skipped rather than
//! written: zero runs in the data (a qcow2's unused clusters, a raw disk
//! joined from parts, free guest pages) become holes too. The bytes are the
//! same; only fewer blocks are allocated.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::io::digest::Hasher;
use crate::io::durable::{self, Published, TempFile};
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::store::layout::Layout;

pub use super::read::ChunkRef;
use super::read::{ChunkReader, check_fills_map};
pub use super::resume::MARKER;
use crate::model::name::validate_file_name;

/// Bytes copied from a blob to the file at a time.
const COPY_BUF: usize = 1 << 20;

/// All-zero blocks of this size, aligned in the file, are left as holes.
const ZERO_BLOCK: usize = 4096;

/// Restores one file: `chunks` are the blobs of its stored stream in order,
/// `map` says where that stream lies in the logical file. The file is
/// written under a temp name in `dir`, chunks in parallel at their offsets,
/// every byte checked against its blob's digest, then fsynced, given `mode`
/// and renamed to `name`. An existing `name` is an error unless `force`.
///
/// # Errors
/// A bad name, an existing file, damaged or missing blobs, chunk sizes that
/// do not add up to the map, I/O errors. On error the temp file is removed
/// and `name` is untouched.
#[allow(clippy::too_many_arguments)]
pub fn restore_file(
    layout: &Layout,
    dir: &Path,
    name: &str,
    map: &SparseMap,
    chunks: &[ChunkRef],
    mode: u32,
    force: bool,
    progress: &dyn Progress,
) -> Result<PathBuf> {
    validate_file_name(name)?;
    let dest = dir.join(name);
    if !force && fs::symlink_metadata(&dest).is_ok() {
        return Err(Error::AlreadyExists {
            path: dest,
            advice: "remove it or pass --force",
        });
    }
    check_fills_map(chunks, map, || format!("file {name:?}"))?;
    let tmp = TempFile::beside(dir, name, 0o600)?;
    let file = tmp.file();
    let sized = crate::io::sparse::presize(file, tmp.path(), map.logical_size())?;
    let mut starts = Vec::with_capacity(chunks.len());
    let mut at = 0u64;
    for c in chunks {
        starts.push(at);
        at += c.decoded_len;
    }
    let jobs: Vec<(usize, u64)> = starts.into_iter().enumerate().collect();
    let copy = |&(i, start): &(usize, u64)| {
        copy_chunk(layout, &chunks[i], map, start, file, tmp.path(), progress)
    };
    if sized {
        let results = crate::io::schedule::by_size(
            &jobs,
            crate::io::schedule::Workers::Cores,
            |&(i, _)| chunks[i].decoded_len,
            copy,
        );
        results.into_iter().collect::<Result<Vec<()>>>()?;
    } else {
        // A file the filesystem would not size grows as it is written, so
        // it is written in order: fusefat loses writes made past the end
        // of a file by several threads at once.
        jobs.iter().try_for_each(copy)?;
        crate::io::sparse::grow_to(file, tmp.path(), map.logical_size())?;
    }
    set_mode(file, tmp.path(), mode)?;
    tmp.sync()?;
    if force {
        durable::replace_name(tmp, &dest)?;
    } else if let Published::Existed(_) = durable::publish_noclobber(tmp, &dest)? {
        return Err(Error::AlreadyExists {
            path: dest,
            advice: "it appeared while it was being restored; remove it or pass --force",
        });
    }
    durable::sync_dir(dir)?;
    Ok(dest)
}

/// Gives the restored file its mode, where the filesystem keeps modes:
/// FAT has none, and fusefat refuses `chmod` outright (`ENOSYS`), which is
/// no reason to refuse the unpack.
pub(crate) fn set_mode(file: &File, path: &Path, mode: u32) -> Result<()> {
    use rustix::io::Errno;
    use std::os::unix::fs::PermissionsExt;
    match file.set_permissions(fs::Permissions::from_mode(mode & 0o7777)) {
        Err(e)
            if matches!(
                Errno::from_io_error(&e),
                Some(Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM)
            ) =>
        {
            Ok(())
        }
        other => other.ctx("chmod", path),
    }
}

/// Copies one verified chunk to its places in the file, decoding zstd on
/// the way; exactly `decoded_len` bytes must come out (no more: a
/// decompression bomb stops there).
fn copy_chunk(
    layout: &Layout,
    chunk: &ChunkRef,
    map: &SparseMap,
    start: u64,
    file: &File,
    path: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    if !chunk.zstd && layout.copy_mode().use_copy_range(file) {
        return copy_chunk_in_kernel(layout, chunk, map, start, file, path, progress);
    }
    let blob_path = layout.blob_path(&chunk.blob.digest);
    let raw = Box::new(layout.open_blob(&chunk.blob)?);
    let mut reader = ChunkReader::new(
        chunk,
        raw,
        &blob_path,
        "read blob",
        blob_path.display().to_string(),
    )?;
    let mut buf = vec![0u8; COPY_BUF.min(chunk.decoded_len.max(1) as usize)];
    let mut done = 0u64;
    loop {
        let n = reader.read_some(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut at_buf = 0usize;
        for (at, len) in map.locate(start + done, n as u64) {
            write_skipping_zeros(file, &buf[at_buf..at_buf + len as usize], at)
                .ctx("write", path)?;
            at_buf += len as usize;
        }
        done += n as u64;
        progress.advance(n as u64);
    }
}

/// [`copy_chunk`] for a raw chunk with `copy_file_range` (which shares
/// extents where the filesystem can): each piece is copied to its place,
/// then read back from the file and hashed, so the digest checked is that
/// of the bytes the file holds.
fn copy_chunk_in_kernel(
    layout: &Layout,
    chunk: &ChunkRef,
    map: &SparseMap,
    start: u64,
    file: &File,
    path: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let blob = layout.open_blob_file(&chunk.blob)?;
    // Holes in the blob (a part of a sparse disk) stay holes in the file.
    let blob_map =
        SparseMap::of_file(&blob).unwrap_or_else(|_| SparseMap::dense(chunk.decoded_len));
    let mut hasher = Hasher::new(chunk.blob.digest.algorithm());
    let mut blob_off = 0u64;
    for (at, len) in map.locate(start, chunk.decoded_len) {
        let extents = blob_map.extents();
        let first = extents.partition_point(|e| e.end() <= blob_off);
        for e in extents[first..]
            .iter()
            .take_while(|e| e.offset < blob_off + len)
        {
            let (from, to) = (e.offset.max(blob_off), e.end().min(blob_off + len));
            if from < to {
                crate::io::copy_range::copy_range(
                    &blob,
                    from,
                    file,
                    at + (from - blob_off),
                    to - from,
                )
                .ctx("copy into", path)?;
            }
        }
        crate::io::hash::for_each_range(file, at, len, &mut |bytes| {
            hasher.update(bytes);
            Ok(())
        })
        .ctx("read back", path)?;
        blob_off += len;
        progress.advance(len);
    }
    let found = hasher.finish();
    if found != chunk.blob.digest {
        return Err(Error::DigestMismatch {
            expected: chunk.blob.digest.clone(),
            found,
        });
    }
    Ok(())
}

/// Writes `bytes` at offset `at` of a fresh file (zeros everywhere, sized
/// with `set_len`), skipping each all-zero [`ZERO_BLOCK`] aligned in the
/// file (and zero pieces of blocks at the edges): those read as zeros
/// already and stay holes. Non-zero blocks next to each other go in one write.
fn write_skipping_zeros(file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    static ZEROS: [u8; ZERO_BLOCK] = [0; ZERO_BLOCK];
    let mut run: Option<usize> = None; // start of pending non-zero bytes
    let mut i = 0;
    while i < bytes.len() {
        let into_block = ((at + i as u64) % ZERO_BLOCK as u64) as usize;
        let n = (ZERO_BLOCK - into_block).min(bytes.len() - i);
        let zero = bytes[i..i + n] == ZEROS[..n];
        match (zero, run) {
            (true, Some(start)) => {
                file.write_all_at(&bytes[start..i], at + start as u64)?;
                run = None;
            }
            (false, None) => run = Some(i),
            _ => {}
        }
        i += n;
    }
    if let Some(start) = run {
        file.write_all_at(&bytes[start..], at + start as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::write::{Source, put_sources};
    use crate::io::progress::NoProgress;
    use crate::io::sparse::Extent;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_round_trip_keeps_bytes_and_holes() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l"))?;
        let src = dir.path().join("cow.raw");
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&src)
            .unwrap();
        f.set_len(64 << 20).unwrap();
        let data: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i % 251) as u8).collect();
        f.write_all_at(&data, 1 << 20).unwrap();
        f.write_all_at(&data[..4096], 40 << 20).unwrap();
        f.sync_all().unwrap();
        let map = SparseMap::of_file(&f).unwrap();
        let w = layout.writer()?;
        let chunks = put_sources(
            &w,
            &[Source {
                path: &src,
                file: &f,
                map: &map,
                media_type: "x/y",
                zstd_level: None,
            }],
            Some(1 << 20),
            &NoProgress,
        )?
        .remove(0);
        assert!(chunks.len() >= 3);
        let chunks: Vec<ChunkRef> = chunks.into_iter().map(ChunkRef::raw).collect();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let restored = restore_file(
            &layout,
            &out,
            "cow.raw",
            &map,
            &chunks,
            0o640,
            false,
            &NoProgress,
        )?;
        assert_eq!(fs::read(&restored).unwrap(), fs::read(&src).unwrap());
        let md = fs::metadata(&restored).unwrap();
        assert_eq!(md.mode() & 0o777, 0o640);
        assert!(
            md.blocks() * 512 < 8 << 20,
            "holes restored: {} blocks",
            md.blocks()
        );
        // Existing files are kept unless forced.
        assert!(
            restore_file(
                &layout,
                &out,
                "cow.raw",
                &map,
                &chunks,
                0o640,
                false,
                &NoProgress
            )
            .is_err()
        );
        restore_file(
            &layout,
            &out,
            "cow.raw",
            &map,
            &chunks,
            0o600,
            true,
            &NoProgress,
        )?;
        Ok(())
    }

    #[test]
    fn zero_blocks_are_skipped_and_the_bytes_are_the_same() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(8 << 20).unwrap();
        let mut data = vec![0u8; 6 << 20];
        data[100] = 1; // first (partial) block
        data[(3 << 20) + 5] = 2; // a block in the middle
        data[(6 << 20) - 1] = 3; // the last byte
        write_skipping_zeros(&f, &data, 1000).unwrap();
        let mut back = vec![0u8; 8 << 20];
        f.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back[1000..1000 + data.len()], data.as_slice());
        assert!(back[..1000].iter().all(|b| *b == 0));
        let blocks = f.metadata().unwrap().blocks();
        assert!(
            blocks * 512 <= 64 << 10,
            "zeros stayed holes: {blocks} blocks"
        );
    }

    #[test]
    fn damage_and_mismatched_maps_leave_nothing_behind() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l"))?;
        let w = layout.writer()?;
        let blob = w.put_bytes("x/y", &[5u8; 10_000])?;
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let map = SparseMap::new(
            20_000,
            [Extent {
                offset: 5_000,
                len: 10_000,
            }],
        )?;
        let wrong = SparseMap::dense(9_999);
        assert!(
            restore_file(
                &layout,
                &out,
                "f",
                &wrong,
                &[ChunkRef::raw(blob.clone())],
                0o644,
                false,
                &NoProgress
            )
            .is_err()
        );
        fs::write(layout.blob_path(&blob.digest), [6u8; 10_000]).unwrap();
        let err = restore_file(
            &layout,
            &out,
            "f",
            &map,
            &[ChunkRef::raw(blob)],
            0o644,
            false,
            &NoProgress,
        )
        .unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "no file, no temp file"
        );
        Ok(())
    }
}
