//! Packing files into blobs: each file's stored stream (its data extents
//! back to back) is cut at fixed offsets, and the chunks of all files are
//! read, hashed and written in parallel, each byte once.

use std::fs::File;
use std::path::Path;

use crate::error::Result;
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::Descriptor;
use crate::store::writer::Writer;

/// Cuts a stored stream of `stored_len` bytes at multiples of `chunk_size`
/// into `(offset, len)` ranges; the last may be shorter. An empty stream is
/// one empty chunk, so that every file has at least one blob.
///
/// ```
/// assert_eq!(epoch_store::chunks::write::cut(10, 4), vec![(0, 4), (4, 4), (8, 2)]);
/// assert_eq!(epoch_store::chunks::write::cut(0, 4), vec![(0, 0)]);
/// ```
///
/// # Panics
/// If `chunk_size` is 0.
pub fn cut(stored_len: u64, chunk_size: u64) -> Vec<(u64, u64)> {
    assert!(chunk_size > 0, "chunk size must be positive");
    if stored_len == 0 {
        return vec![(0, 0)];
    }
    (0..stored_len.div_ceil(chunk_size))
        .map(|i| {
            let offset = i * chunk_size;
            (offset, chunk_size.min(stored_len - offset))
        })
        .collect()
}

/// A file to pack.
#[derive(Debug)]
pub struct Source<'a> {
    /// Its path, for error messages.
    pub path: &'a Path,
    /// The open file.
    pub file: &'a File,
    /// Where its data is.
    pub map: &'a SparseMap,
    /// Media type of its blobs (with `+zstd` when compressed).
    pub media_type: &'a str,
    /// zstd level to compress its chunks at, if any.
    pub zstd_level: Option<i32>,
}

/// Stores every source's stored stream, cut at `chunk_size` (`None`: one
/// blob per source), all chunks of all sources at once on rayon's pool,
/// largest first. Returns each source's chunk descriptors in order.
///
/// # Errors
/// The first error of any chunk; blobs already published stay (they are
/// unreferenced until an `index.json` update, so gc reclaims them).
pub fn put_sources(
    writer: &Writer<'_>,
    sources: &[Source<'_>],
    chunk_size: Option<u64>,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Descriptor>>> {
    let jobs: Vec<(usize, u64, u64)> = sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let len = s.map.stored_len();
            let ranges = match chunk_size {
                Some(size) => cut(len, size),
                None => vec![(0, len)],
            };
            ranges.into_iter().map(move |(off, n)| (i, off, n))
        })
        .collect();
    let results = crate::io::schedule::by_size(
        &jobs,
        crate::io::schedule::Workers::Cores,
        |j| j.2,
        |&(i, off, n)| {
            let s = &sources[i];
            let range = crate::store::writer::StoredRange {
                file: s.file,
                path: s.path,
                map: s.map,
                offset: off,
                len: n,
            };
            writer.put_stored(s.media_type, range, s.zstd_level, progress)
        },
    );
    let mut out: Vec<Vec<Descriptor>> = sources.iter().map(|_| Vec::new()).collect();
    for (&(i, _, _), r) in jobs.iter().zip(results) {
        out[i].push(r?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::digest::{Algorithm, Digest};
    use crate::io::progress::NoProgress;
    use crate::io::sparse::Extent;
    use crate::store::layout::Layout;
    use proptest::prelude::*;
    use std::os::unix::fs::FileExt;

    /// A sparse file with data at the given extents; returns it with its stored stream.
    fn sparse_file(
        dir: &Path,
        size: u64,
        extents: &[(u64, u64)],
        seed: u8,
    ) -> (std::path::PathBuf, Vec<u8>) {
        let path = dir.join(format!("f{seed}"));
        let f = File::create(&path).unwrap();
        f.set_len(size).unwrap();
        let mut stored = Vec::new();
        for &(o, l) in extents {
            let data: Vec<u8> = (0..l)
                .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(o as u8))
                .collect();
            f.write_all_at(&data, o).unwrap();
            stored.extend_from_slice(&data);
        }
        (path, stored)
    }

    #[test]
    fn cut_covers_the_stream_exactly() {
        for (len, size) in [(1, 1), (10, 3), (12, 4), (5, 100), (1 << 20, 4096)] {
            let c = cut(len, size);
            assert_eq!(c.iter().map(|x| x.1).sum::<u64>(), len);
            assert!(
                c.windows(2)
                    .all(|w| w[0].0 + w[0].1 == w[1].0 && w[0].1 == size)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Chunks hashed in parallel from mapped windows have the digests of
        /// the stored stream's slices, and together they are the stream.
        #[test]
        fn parallel_chunks_match_one_shot_digests(
            chunk in 1u64..300_000,
            gaps in proptest::collection::vec((1u64..200_000, 1u64..150_000), 1..6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let layout = Layout::init(dir.path().join("l")).unwrap();
            let mut extents = Vec::new();
            let mut at = 0;
            for (gap, len) in gaps {
                at += gap;
                extents.push((at, len));
                at += len;
            }
            let size = at + 12_345;
            let (path, stored) = sparse_file(dir.path(), size, &extents, 7);
            let file = File::open(&path).unwrap();
            let map = SparseMap::new(size, extents.iter().map(|&(offset, len)| Extent { offset, len })).unwrap();
            let w = layout.writer().unwrap();
            let src = [Source { path: &path, file: &file, map: &map, media_type: "x/y", zstd_level: None }];
            let out = put_sources(&w, &src, Some(chunk), &NoProgress).unwrap();
            let mut joined = Vec::new();
            for ((off, n), d) in cut(stored.len() as u64, chunk).into_iter().zip(&out[0]) {
                let slice = &stored[off as usize..(off + n) as usize];
                prop_assert_eq!(&d.digest, &Digest::of_bytes(Algorithm::Sha256, slice));
                joined.extend(layout.read_blob(d, u64::MAX).unwrap());
            }
            prop_assert_eq!(joined, stored);
        }
    }

    #[test]
    fn one_blob_per_source_without_chunking() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l"))?;
        let (p1, s1) = sparse_file(dir.path(), 1 << 20, &[(4096, 8192)], 3);
        let (p2, s2) = sparse_file(dir.path(), 0, &[], 5);
        let (f1, f2) = (File::open(&p1).unwrap(), File::open(&p2).unwrap());
        let m1 = SparseMap::of_file(&f1).unwrap();
        let m2 = SparseMap::dense(0);
        let w = layout.writer()?;
        let out = put_sources(
            &w,
            &[
                Source {
                    path: &p1,
                    file: &f1,
                    map: &m1,
                    media_type: "a/b",
                    zstd_level: None,
                },
                Source {
                    path: &p2,
                    file: &f2,
                    map: &m2,
                    media_type: "a/b",
                    zstd_level: None,
                },
            ],
            None,
            &NoProgress,
        )?;
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 1);
        // The filesystem may report data at block granularity, so compare
        // against what the map says is stored: our bytes are in it.
        let blob = layout.read_blob(&out[0][0], u64::MAX)?;
        assert_eq!(blob.len() as u64, m1.stored_len());
        assert!(blob.windows(s1.len()).any(|w| w == s1.as_slice()));
        assert_eq!(out[1][0].size, 0);
        assert!(s2.is_empty());
        Ok(())
    }
}
