//! The atomic-rename blob writer and `index.json` updates: the publish
//! protocol of `docs/durability.md`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, IoContext, Result};
use crate::io::digest::{Algorithm, Digest, Hasher};
use crate::io::durable::{self, Published, TempFile};
use crate::io::hash;
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::Descriptor;
use crate::model::name::RefName;
use crate::store::index::Index;
use crate::store::layout::Layout;
use crate::store::lock::{self, GC_LOCK, INDEX_LOCK, Lock, Mode};

impl Layout {
    /// Starts writing: takes the shared writer lock, which gc waits for.
    ///
    /// # Errors
    /// I/O errors creating the private directory or taking the lock.
    pub fn writer(&self) -> Result<Writer<'_>> {
        Writer::new(self, &crate::io::progress::NoProgress)
    }

    /// [`Layout::writer`], telling `progress` when it has to wait for a
    /// running gc (naming its process id where the system says).
    ///
    /// # Errors
    /// As [`Layout::writer`].
    pub fn writer_with(&self, progress: &dyn Progress) -> Result<Writer<'_>> {
        Writer::new(self, progress)
    }
}

/// A write session on a layout. It holds the writer lock (shared with other
/// writers, exclusive of gc), publishes blobs, and makes them durable before
/// any `index.json` that references them: [`Writer::update_index`] fsyncs the
/// blob directories first.
#[derive(Debug)]
pub struct Writer<'a> {
    layout: &'a Layout,
    _lock: Lock,
    /// Blob directories with names not yet fsynced.
    dirty: Mutex<BTreeSet<Algorithm>>,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(layout: &'a Layout, progress: &dyn Progress) -> Result<Writer<'a>> {
        layout.ensure_private()?;
        let path = layout.lock_path(GC_LOCK);
        let lock = lock::acquire_noting(&path, Mode::Shared, &|pids| {
            progress.waiting(&format!(
                "waiting for the lock {} held by {}, a gc at work on this layout; \
                 writing starts when it is done (Ctrl-C to give up)",
                path.display(),
                lock::describe(pids)
            ));
        })?;
        Ok(Writer {
            layout,
            _lock: lock,
            dirty: Mutex::new(BTreeSet::new()),
        })
    }

    /// The layout being written.
    pub fn layout(&self) -> &Layout {
        self.layout
    }

    /// Starts a new blob (SHA-256) in a temp file.
    ///
    /// # Errors
    /// I/O errors creating the temp file.
    pub fn blob(&self) -> Result<BlobWriter<'_, 'a>> {
        Ok(BlobWriter {
            writer: self,
            tmp: TempFile::new_in(&self.layout.tmp_dir())?,
            hasher: Hasher::new(Algorithm::Sha256),
            len: 0,
        })
    }

    /// A blob writer for `digest` that goes on from what an interrupted
    /// write of it left in the private directory (those bytes are hashed
    /// first), or starts it there; with the number of bytes it starts
    /// from. [`BlobWriter::keep`] leaves it for the next run. While another
    /// process writes the same blob, an ordinary temp file instead.
    ///
    /// # Errors
    /// I/O errors opening or reading the partial file.
    pub fn resumable_blob(&self, digest: &Digest) -> Result<(BlobWriter<'_, 'a>, u64)> {
        let name = format!("partial-{}-{}", digest.algorithm().name(), digest.hex());
        let Some((tmp, len)) = TempFile::resume(&self.layout.tmp_dir(), &name)? else {
            return Ok((self.blob()?, 0));
        };
        let mut hasher = Hasher::new(Algorithm::Sha256);
        hash::for_each_range(tmp.file(), 0, len, &mut |bytes| {
            hasher.update(bytes);
            Ok(())
        })
        .ctx("read", tmp.path())?;
        Ok((
            BlobWriter {
                writer: self,
                tmp,
                hasher,
                len,
            },
            len,
        ))
    }

    /// Stores `bytes` as a blob.
    ///
    /// # Errors
    /// I/O errors; nothing is published on error.
    pub fn put_bytes(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let mut w = self.blob()?;
        w.write_all(bytes).ctx("write", w.tmp.path())?;
        w.commit(media_type, None)
    }

    /// Stores a file's content as a blob, reading it once (mapped where
    /// possible) while hashing and writing.
    ///
    /// # Errors
    /// I/O errors, a path that is not a regular file; nothing is published on error.
    pub fn put_file(
        &self,
        media_type: &str,
        path: &Path,
        progress: &dyn Progress,
    ) -> Result<Descriptor> {
        let (file, md) = crate::io::input::open_input(path)?;
        let map = SparseMap::dense(md.len());
        let range = StoredRange {
            file: &file,
            path,
            map: &map,
            offset: 0,
            len: md.len(),
        };
        self.put_stored(media_type, range, None, progress)
    }

    /// Stores a range of a file's *stored stream* (its data extents back to
    /// back) as one blob, zstd-compressed at `zstd_level` if given (one
    /// independent frame with the content size recorded, as cocoon-common's
    /// readers need): each byte is read once (mapped where possible), and
    /// hashed and written in the same pass; holes are never read. This packs
    /// a sparse file, or one chunk of one. The file must not be truncated
    /// meanwhile.
    ///
    /// # Errors
    /// I/O errors reading the file or writing the temp file; nothing is
    /// published on error.
    pub(crate) fn put_stored(
        &self,
        media_type: &str,
        range: StoredRange<'_>,
        zstd_level: Option<i32>,
        progress: &dyn Progress,
    ) -> Result<Descriptor> {
        let mut blob = self.blob()?;
        let tmp_path = blob.tmp.path().to_path_buf();
        if zstd_level.is_none() && self.layout.copy_mode().use_copy_range(blob.tmp.file()) {
            for (at, n) in range.map.locate(range.offset, range.len) {
                blob.copy_from(range.file, at, n)
                    .ctx("copy into a blob from", range.path)?;
                progress.advance(n);
            }
            return blob.commit(media_type, None);
        }
        let mut sink =
            Sink::new(blob, zstd_level, range.len).ctx("start compressing into", &tmp_path)?;
        // Errors writing the temp file and errors reading the source name different files.
        let mut write_error = None;
        let mut read = 0u64;
        for (at, n) in range.map.locate(range.offset, range.len) {
            let r = hash::for_each_range(range.file, at, n, &mut |bytes| {
                if let Err(e) = sink.write_all(bytes) {
                    write_error = Some(e);
                    return Err(io::Error::other("write failed"));
                }
                read += bytes.len() as u64;
                progress.advance(bytes.len() as u64);
                Ok(())
            });
            if let Some(e) = write_error.take() {
                return Err(Error::io("write", &tmp_path, e));
            }
            r.ctx("read", range.path)?;
        }
        if read != range.len {
            return Err(Error::InvalidArgument(format!(
                "{}: the stored stream has {read} bytes from offset {}, not {}",
                range.path.display(),
                range.offset,
                range.len
            )));
        }
        sink.finish()
            .ctx("write", &tmp_path)?
            .commit(media_type, None)
    }

    /// Stores a copy of `src` (another layout's blob, say), which must be
    /// `expected`: read once (mapped where safe) and hashed and written in
    /// the same pass, or, where the destination shares extents, cloned and
    /// read back. Published only if size and digest match.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] or [`Error::DigestMismatch`] if `src` is not
    /// what `expected` says; I/O errors on either side. Nothing is
    /// published on error.
    pub fn put_verified(
        &self,
        src: &File,
        path: &Path,
        expected: &Descriptor,
        progress: &dyn Progress,
    ) -> Result<Descriptor> {
        let mut blob = self.blob()?;
        if self.layout.copy_mode().use_copy_range(blob.tmp.file()) {
            blob.copy_from(src, 0, expected.size)
                .ctx("copy into a blob from", path)?;
            progress.advance(expected.size);
        } else {
            let mut write_error = None;
            let r = hash::for_each_range(src, 0, expected.size, &mut |bytes| {
                if let Err(e) = blob.write_all(bytes) {
                    write_error = Some(e);
                    return Err(io::Error::other("write failed"));
                }
                progress.advance(bytes.len() as u64);
                Ok(())
            });
            if let Some(e) = write_error {
                return Err(Error::io("write", blob.tmp.path(), e));
            }
            r.ctx("read", path)?;
        }
        blob.commit(&expected.media_type, Some(expected))
    }

    /// Fsyncs every blob directory that gained names, making the blobs
    /// published so far durable.
    ///
    /// # Errors
    /// An fsync error; the blobs may not be durable and nothing must reference them.
    pub fn sync(&self) -> Result<()> {
        // Held throughout: a blob renamed while we fsync marks its directory
        // dirty again only after we are done, so it is never lost.
        let mut dirty = self.dirty.lock().expect("poisoned");
        while let Some(&alg) = dirty.first() {
            durable::sync_dir(&self.layout.blobs_dir(alg))?;
            dirty.remove(&alg); // a directory that failed to sync stays dirty
        }
        Ok(())
    }

    /// Read-modify-writes `index.json`: makes published blobs durable, takes
    /// the exclusive index lock, re-reads the index under it, applies `f`,
    /// and replaces the file atomically if anything changed.
    ///
    /// # Errors
    /// `f`'s error (nothing is written), fsync and I/O errors.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        self.sync()?;
        let _guard = lock::acquire(&self.layout.lock_path(INDEX_LOCK), Mode::Exclusive)?;
        let (stored, mut index) = self.layout.read_index_raw()?;
        let before = index.to_bytes();
        let out = f(&mut index)?;
        let after = index.to_bytes();
        if after == before {
            return Ok(out);
        }
        let (tmp_dir, path) = (self.layout.tmp_dir(), self.layout.index_path());
        durable::replace_before_dir_sync(&tmp_dir, &path, &after)?;
        if let Err(e) = durable::sync_dir(self.layout.root()) {
            // The new index.json is visible but may not be durable, and the
            // command is about to fail: put the old one back, so that a
            // failed command changes nothing (best effort: the disk is failing).
            let _ = durable::replace(&tmp_dir, &path, &stored);
            return Err(e);
        }
        Ok(out)
    }

    /// Points `new_ref` at what `src` (a ref or digest) names, under the
    /// index lock: the target must be a manifest or index whose whole graph
    /// is in the layout and intact as far as can be seen without hashing
    /// every blob (documents verified, `data` fields, sizes; see
    /// `verify`), so that a tag never points at something incomplete (a
    /// young manifest whose layers an earlier gc removed, say). Moving a
    /// tag replaces its entry. Returns the entry as tagged.
    ///
    /// # Errors
    /// [`Error::InvalidRef`] for `new_ref`; `src` not found or ambiguous; a
    /// plain blob; [`Error::IncompleteGraph`]; I/O errors.
    pub fn tag(&self, src: &str, new_ref: &str) -> Result<Descriptor> {
        crate::model::name::validate_ref(new_ref)?;
        let layout = self.layout;
        self.update_index(|index| {
            let mut target = layout.resolve_in(index, src)?;
            if !crate::model::media_type::is_document(&target.media_type) {
                return Err(Error::InvalidArgument(format!(
                    "{} is a {} blob, not a manifest or index; only manifests can be tagged",
                    target.digest, target.media_type
                )));
            }
            layout.whole_graph(
                std::slice::from_ref(&target),
                &format!("cannot tag {} as {new_ref}", target.digest),
            )?;
            target
                .annotations
                .remove(crate::model::annotation::REF_NAME);
            index.set_ref(&RefName::new(new_ref)?, &target);
            Ok(target)
        })
    }

    fn mark_dirty(&self, alg: Algorithm) {
        self.dirty.lock().expect("poisoned").insert(alg);
    }
}

/// A range of a file's stored stream (its data extents back to back, per
/// `map`): what [`Writer::put_stored`] stores as one blob.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredRange<'a> {
    /// The open file.
    pub file: &'a File,
    /// Its path, for error messages.
    pub path: &'a Path,
    /// Where its data is.
    pub map: &'a SparseMap,
    /// Offset in the stored stream.
    pub offset: u64,
    /// Bytes of the stored stream.
    pub len: u64,
}

/// Where [`Writer::put_stored`] (and the tar import) sends a chunk's bytes:
/// straight to the blob, or through a zstd encoder in front of it that
/// writes one frame with the chunk's length pledged as its content size.
pub(crate) enum Sink<'w, 'a> {
    Raw(BlobWriter<'w, 'a>),
    Zstd(zstd::stream::write::Encoder<'static, BlobWriter<'w, 'a>>),
}

impl<'w, 'a> Sink<'w, 'a> {
    /// Starts a chunk of exactly `len` bytes, compressed at `level` if given.
    pub(crate) fn new(blob: BlobWriter<'w, 'a>, level: Option<i32>, len: u64) -> io::Result<Self> {
        let Some(level) = level else {
            return Ok(Sink::Raw(blob));
        };
        let mut enc = zstd::stream::write::Encoder::new(blob, level)?;
        enc.set_pledged_src_size(Some(len))?;
        enc.include_contentsize(true)?;
        Ok(Sink::Zstd(enc))
    }

    /// Writes (compresses) more of the chunk.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Raw(w) => w.write_all(bytes),
            Sink::Zstd(e) => e.write_all(bytes),
        }
    }

    /// Ends the frame; the blob is then ready to commit.
    pub(crate) fn finish(self) -> io::Result<BlobWriter<'w, 'a>> {
        match self {
            Sink::Raw(w) => Ok(w),
            Sink::Zstd(e) => e.finish(),
        }
    }
}

/// A blob being written: bytes go to a temp file outside `blobs/` and into
/// the hasher; [`BlobWriter::commit`] checks, fsyncs and publishes it.
/// Dropped without commit, the temp file is removed.
pub struct BlobWriter<'w, 'a> {
    writer: &'w Writer<'a>,
    tmp: TempFile,
    hasher: Hasher,
    len: u64,
}

impl std::fmt::Debug for BlobWriter<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("tmp", &self.tmp.path())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Write for BlobWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.file().write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter<'_, '_> {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `n` zero bytes without writing them: they are hashed (from a
    /// static zero buffer) and the temp file is extended with `set_len`, so
    /// they stay a hole on filesystems that have holes. This stores a hole
    /// of a sparse file that must be part of the blob (a byte range of the
    /// logical file) without reading or writing it.
    ///
    /// # Errors
    /// I/O errors extending the temp file.
    pub fn write_zeros(&mut self, n: u64) -> Result<()> {
        use std::io::Seek;
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        if n == 0 {
            return Ok(());
        }
        let end = self
            .len
            .checked_add(n)
            .ok_or_else(|| Error::InvalidArgument("blob length overflows".into()))?;
        let file = self.tmp.file();
        file.set_len(end).ctx("extend", self.tmp.path())?;
        (&*file)
            .seek(io::SeekFrom::Start(end))
            .ctx("seek", self.tmp.path())?;
        let mut left = n;
        while left > 0 {
            let k = left.min(ZEROS.len() as u64) as usize;
            self.hasher.update(&ZEROS[..k]);
            left -= k as u64;
        }
        self.len = end;
        Ok(())
    }

    /// Appends `n` bytes of `src` from offset `at` with `copy_file_range`
    /// (sharing extents where the filesystem can), then reads them back from
    /// the temp file to hash them: the digest is always that of the bytes
    /// the blob holds, even if `src` changes meanwhile.
    ///
    /// # Errors
    /// I/O errors on either file; `UnexpectedEof` if `src` is shorter.
    pub(crate) fn copy_from(&mut self, src: &File, at: u64, n: u64) -> io::Result<()> {
        use std::io::Seek;
        let file = self.tmp.file();
        crate::io::copy_range::copy_range(src, at, file, self.len, n)?;
        let hasher = &mut self.hasher;
        hash::for_each_range(file, self.len, n, &mut |bytes| {
            hasher.update(bytes);
            Ok(())
        })?;
        self.len += n;
        (&*file).seek(io::SeekFrom::Start(self.len))?;
        Ok(())
    }

    /// Leaves what was written in the private directory for a later
    /// [`Writer::resumable_blob`] of the same digest (a failed download
    /// that can go on from here next time), its data synced.
    ///
    /// # Errors
    /// An fsync error (the partial file may then be cut short; the digest
    /// check at the end catches anything wrong in it).
    pub fn keep(self) -> Result<()> {
        self.tmp.keep()
    }

    /// The temp file's path, for error messages.
    pub(crate) fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Publishes the blob: checks it against `expected` (size and digest) if
    /// given, fsyncs it, renames it into `blobs/` without clobbering. A blob
    /// of that name already there is success (its mtime is refreshed for
    /// gc's grace period); one there with the wrong size is damaged and is
    /// replaced by this verified copy. The directory fsync is deferred to
    /// [`Writer::sync`], which [`Writer::update_index`] calls.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`], [`Error::DigestMismatch`], fsync and rename
    /// errors; nothing is published on error.
    pub fn commit(self, media_type: &str, expected: Option<&Descriptor>) -> Result<Descriptor> {
        let digest = self.hasher.finish();
        if let Some(exp) = expected {
            if exp.size != self.len {
                return Err(Error::SizeMismatch {
                    digest: exp.digest.clone(),
                    expected: exp.size,
                    found: self.len,
                });
            }
            let found = if exp.digest.algorithm() == Algorithm::Sha256 {
                digest.clone()
            } else {
                hash::hash_file(
                    self.tmp.file(),
                    self.len,
                    exp.digest.algorithm(),
                    &crate::NoProgress,
                )
                .ctx("read", self.tmp.path())?
            };
            if found != exp.digest {
                return Err(Error::DigestMismatch {
                    expected: exp.digest.clone(),
                    found,
                });
            }
        }
        let layout = self.writer.layout;
        let publish_as = expected.map_or(&digest, |e| &e.digest);
        self.tmp.sync()?;
        let dir = layout.blobs_dir(publish_as.algorithm());
        if !dir.is_dir() {
            durable::create_dir_durable(&dir)?;
        }
        let dest = layout.blob_path(publish_as);
        match durable::publish_noclobber(self.tmp, &dest)? {
            Published::New => self.writer.mark_dirty(publish_as.algorithm()),
            Published::Existed(tmp) => {
                let md = fs::symlink_metadata(&dest).ctx("stat", &dest)?;
                if !md.is_file() {
                    return Err(Error::NotRegularFile {
                        path: dest,
                        kind: crate::io::input::kind_name(&md),
                    });
                }
                if md.len() == self.len {
                    drop(tmp);
                    durable::touch(&dest)?;
                } else {
                    durable::replace_name(tmp, &dest)?;
                    self.writer.mark_dirty(publish_as.algorithm());
                }
            }
        }
        Ok(Descriptor::new(media_type, publish_as.clone(), self.len))
    }
}
