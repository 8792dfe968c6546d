//! Sparse files: where the data is (SEEK_DATA/SEEK_HOLE), and cocoon's
//! sparse map, `[{"o":OFFSET,"l":LENGTH},...]` with a logical size.
//!
//! A sparse file is stored as its data extents back to back (the *stored
//! stream*); holes are never read, hashed or stored. The map, with the
//! logical size, is what restores it: create, truncate to the logical size,
//! write each extent at its offset.

use std::fs::File;
use std::io;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One run of data in a sparse file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// Offset in the logical file.
    #[serde(rename = "o")]
    pub offset: u64,
    /// Length in bytes.
    #[serde(rename = "l")]
    pub len: u64,
}

impl Extent {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// Where a file's data is: ordered, non-overlapping, non-empty extents
/// within a logical size. Always valid once built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseMap {
    logical_size: u64,
    extents: Vec<Extent>,
}

impl SparseMap {
    /// Builds a map, merging touching extents.
    ///
    /// # Errors
    /// [`Error::InvalidSparseMap`] if extents are empty, out of order,
    /// overlapping, overflow, or run past the logical size.
    pub fn new(logical_size: u64, extents: impl IntoIterator<Item = Extent>) -> Result<SparseMap> {
        let bad = |reason: String| Error::InvalidSparseMap { reason };
        let mut merged: Vec<Extent> = Vec::new();
        for (i, e) in extents.into_iter().enumerate() {
            if e.len == 0 {
                return Err(bad(format!("segment {i} is empty")));
            }
            let end = e.offset.checked_add(e.len).ok_or_else(|| {
                bad(format!(
                    "segment {i} overflows: offset {} + length {}",
                    e.offset, e.len
                ))
            })?;
            if end > logical_size {
                return Err(bad(format!(
                    "segment {i} ends at {end}, past the logical size {logical_size}"
                )));
            }
            match merged.last_mut() {
                Some(last) if e.offset < last.end() => {
                    return Err(bad(format!(
                        "segment {i} at offset {} overlaps or precedes the one ending at {}",
                        e.offset,
                        last.end()
                    )));
                }
                Some(last) if e.offset == last.end() => last.len += e.len,
                _ => merged.push(e),
            }
        }
        Ok(SparseMap {
            logical_size,
            extents: merged,
        })
    }

    /// A file with no holes.
    pub fn dense(size: u64) -> SparseMap {
        let extents = if size == 0 {
            vec![]
        } else {
            vec![Extent {
                offset: 0,
                len: size,
            }]
        };
        SparseMap {
            logical_size: size,
            extents,
        }
    }

    /// Finds an open file's data extents with `SEEK_DATA`/`SEEK_HOLE`.
    /// Filesystems without them report the whole file as data, which is
    /// correct, only not compact.
    ///
    /// # Errors
    /// I/O errors other than "not supported".
    pub fn of_file(file: &File) -> io::Result<SparseMap> {
        use rustix::fs::{SeekFrom, seek};
        use rustix::io::Errno;
        let size = file.metadata()?.len();
        let mut extents = Vec::new();
        let mut pos = 0u64;
        while pos < size {
            let start = match seek(file, SeekFrom::Data(pos)) {
                Ok(s) => s,
                Err(Errno::NXIO) => break, // only a hole remains
                Err(Errno::INVAL | Errno::OPNOTSUPP) if pos == 0 => {
                    return Ok(SparseMap::dense(size));
                }
                Err(e) => return Err(e.into()),
            };
            if start >= size {
                break;
            }
            let end = match seek(file, SeekFrom::Hole(start)) {
                Ok(h) => h.min(size),
                Err(e) => return Err(e.into()),
            };
            extents.push(Extent {
                offset: start,
                len: end - start,
            });
            pos = end;
        }
        SparseMap::new(size, extents).map_err(|e| io::Error::other(e.to_string()))
    }

    /// Parses cocoon's `COCOON.sparse.map` JSON with its `COCOON.sparse.size`,
    /// refusing anything that does not describe a file: not JSON, negative or
    /// fractional numbers, overlaps, segments past the logical size.
    ///
    /// `null` is a file with no data at all: cocoon's export writes Go's nil
    /// slice so for an all-hole file, and cocoon-common's pusher copies the
    /// record verbatim into the config's `sparseMap`.
    ///
    /// # Errors
    /// [`Error::InvalidSparseMap`] saying what is wrong.
    pub fn from_cocoon(map_json: &str, logical_size: u64) -> Result<SparseMap> {
        if map_json.trim() == "null" {
            return SparseMap::new(logical_size, []);
        }
        let extents: Vec<Extent> = serde_json::from_str(map_json).map_err(|e| Error::InvalidSparseMap {
            reason: format!("not a JSON array of {{\"o\":OFFSET,\"l\":LENGTH}} with non-negative integers: {e}"),
        })?;
        SparseMap::new(logical_size, extents)
    }

    /// The map in cocoon's JSON form (compact, as cocoon writes it).
    pub fn to_cocoon_json(&self) -> String {
        serde_json::to_string(&self.extents).expect("extents always serialize")
    }

    /// The logical file size.
    pub fn logical_size(&self) -> u64 {
        self.logical_size
    }

    /// The data extents, in order.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// Bytes of data: the length of the stored stream.
    pub fn stored_len(&self) -> u64 {
        self.extents.iter().map(|e| e.len).sum()
    }

    /// Whether the file has no holes (so no map needs storing).
    pub fn is_dense(&self) -> bool {
        self.stored_len() == self.logical_size
    }

    /// Where the stored-stream range `[offset, offset + len)` lies in the
    /// logical file, as `(logical offset, length)` pieces in order.
    pub fn locate(&self, offset: u64, len: u64) -> Vec<(u64, u64)> {
        let mut pieces = Vec::new();
        let (mut want, mut left) = (offset, len);
        let mut stored = 0u64;
        for e in &self.extents {
            if left == 0 {
                break;
            }
            if want < stored + e.len {
                let skip = want - stored;
                let n = (e.len - skip).min(left);
                pieces.push((e.offset + skip, n));
                want += n;
                left -= n;
            }
            stored += e.len;
        }
        pieces
    }
}

/// Sizes a new, empty file to `len` bytes of zeros with `set_len`, which
/// leaves a hole on filesystems that have them. Where the filesystem
/// refuses to grow a file that way (fusefat has no truncate), returns
/// `false`: the caller writes its data at its offsets anyway (POSIX makes a
/// gap left by a write past the end read as zeros) and then calls
/// [`grow_to`]. Either way every byte not written reads as zero, so a caller
/// may skip writing zero blocks.
///
/// # Errors
/// I/O errors naming `path`.
pub(crate) fn presize(file: &File, path: &std::path::Path, len: u64) -> Result<bool> {
    use rustix::io::Errno;
    match file.set_len(len) {
        Ok(()) => Ok(true),
        Err(e)
            if matches!(
                Errno::from_io_error(&e),
                Some(Errno::PERM | Errno::OPNOTSUPP | Errno::NOSYS)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(crate::error::Error::io("truncate", path, e)),
    }
}

/// Grows a file that [`presize`] could not size to `len` bytes, by writing
/// its last byte (a zero) if the data written did not reach that far.
///
/// # Errors
/// I/O errors naming `path`.
pub(crate) fn grow_to(file: &File, path: &std::path::Path, len: u64) -> Result<()> {
    use crate::error::IoContext;
    use std::os::unix::fs::FileExt;
    let now = file.metadata().ctx("stat", path)?.len();
    if len > now {
        file.write_all_at(&[0], len - 1).ctx("write", path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn ext(offset: u64, len: u64) -> Extent {
        Extent { offset, len }
    }

    #[test]
    fn cocoon_json_round_trips() -> Result<()> {
        let m = SparseMap::from_cocoon(r#"[{"o":0,"l":4096},{"o":1048576,"l":8192}]"#, 4 << 20)?;
        assert_eq!(m.stored_len(), 12288);
        assert_eq!(
            m.to_cocoon_json(),
            r#"[{"o":0,"l":4096},{"o":1048576,"l":8192}]"#
        );
        assert!(!m.is_dense());
        assert_eq!(SparseMap::from_cocoon("[]", 10)?.stored_len(), 0);
        assert_eq!(SparseMap::from_cocoon("null", 10)?.stored_len(), 0);
        assert_eq!(SparseMap::from_cocoon("null", 10)?.logical_size(), 10);
        Ok(())
    }

    #[test]
    fn hostile_maps_are_refused() {
        for (map, size) in [
            ("not json", 10),
            (r#"{"o":0,"l":1}"#, 10),
            (r#"[{"o":-1,"l":4}]"#, 10),
            (r#"[{"o":0,"l":-4}]"#, 10),
            (r#"[{"o":0.5,"l":4}]"#, 10),
            (r#"[{"o":0,"l":8},{"o":4,"l":2}]"#, 10),
            (r#"[{"o":6,"l":2},{"o":0,"l":2}]"#, 10),
            (r#"[{"o":8,"l":4}]"#, 10),
            (r#"[{"o":0,"l":0}]"#, 10),
            (r#"[{"o":18446744073709551615,"l":2}]"#, u64::MAX),
        ] {
            assert!(SparseMap::from_cocoon(map, size).is_err(), "{map} accepted");
        }
    }

    #[test]
    fn touching_extents_merge() -> Result<()> {
        let m = SparseMap::new(100, [ext(0, 10), ext(10, 5), ext(50, 1)])?;
        assert_eq!(m.extents(), &[ext(0, 15), ext(50, 1)]);
        Ok(())
    }

    #[test]
    fn locate_maps_stored_ranges_to_the_file() -> Result<()> {
        let m = SparseMap::new(1000, [ext(100, 10), ext(500, 20), ext(900, 5)])?;
        assert_eq!(m.locate(0, 35), vec![(100, 10), (500, 20), (900, 5)]);
        assert_eq!(m.locate(5, 10), vec![(105, 5), (500, 5)]);
        assert_eq!(m.locate(30, 100), vec![(900, 5)]);
        assert_eq!(m.locate(35, 10), vec![]);
        Ok(())
    }

    #[test]
    fn finds_the_holes_of_a_real_file() -> io::Result<()> {
        let mut f = tempfile::tempfile()?;
        let block = vec![7u8; 64 << 10];
        f.set_len(16 << 20)?;
        f.seek(io::SeekFrom::Start(1 << 20))?;
        f.write_all(&block)?;
        f.seek(io::SeekFrom::Start(8 << 20))?;
        f.write_all(&block)?;
        f.sync_all()?;
        let m = SparseMap::of_file(&f)?;
        assert_eq!(m.logical_size(), 16 << 20);
        // The filesystem reports data at block granularity: at least our two
        // writes, far less than the whole file.
        assert!(m.stored_len() >= 2 * block.len() as u64, "{m:?}");
        assert!(m.stored_len() < 4 << 20, "holes were found: {m:?}");
        for (off, _) in [(1u64 << 20, 0), (8 << 20, 0)] {
            assert!(
                m.extents().iter().any(|e| e.offset <= off && off < e.end()),
                "{off} not covered: {m:?}"
            );
        }
        let dense = tempfile::tempfile()?;
        (&dense).write_all(&block)?;
        assert!(SparseMap::of_file(&dense)?.is_dense());
        Ok(())
    }
}
