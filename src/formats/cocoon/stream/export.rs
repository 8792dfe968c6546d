//! Export: a stored snapshot as cocoon's tar stream (see the
//! [module docs](super)).

use std::io::{self, Cursor, Read, Write};
use std::path::Path;

use super::{VERIFY_AHEAD, WINDOW_LOG_MAX};
use crate::chunks::restore::ChunkRef;
use crate::error::{Error, IoContext, Result};
use crate::formats::cocoon::snapshot::{SnapshotPlan, plan};
use crate::formats::cocoon::tar::{Envelope, EnvelopeConfig, TarWriter};
use crate::io::counting::Counting;
use crate::io::durable;
use crate::io::progress::Progress;
use crate::model::Descriptor;
use crate::store::layout::Layout;
use crate::tar::write::leave_incomplete;

/// Writes the snapshot `manifest` as cocoon's tar stream to `writer` and
/// returns the writer. `snapshot.json` names the snapshot after the
/// manifest's ref (its `org.opencontainers.image.ref.name`, which
/// [`Layout::resolve`] sets for a ref or for the digest of a tagged entry)
/// without the tag, as cocoon-common names a pulled snapshot after its
/// repository; an untagged manifest is named by its `snapshotId`. See
/// [`export_tar_as`] and the [module docs](super).
///
/// # Errors
/// As [`export_tar_as`].
pub fn export_tar<W: Write>(
    layout: &Layout,
    manifest: &Descriptor,
    writer: W,
    progress: &dyn Progress,
) -> Result<W> {
    export_tar_as(layout, manifest, None, writer, progress)
}

/// [`export_tar`] with the snapshot's name in `snapshot.json` given (the
/// default when `None`).
///
/// # Errors
/// Not a snapshot, or one [`plan`] refuses; a missing or damaged blob
/// ([`Error::DigestMismatch`], [`Error::SizeMismatch`],
/// [`Error::BlobNotFound`], or [`Error::Io`] for damage found while
/// streaming a large chunk); I/O errors writing. After an error the stream
/// is incomplete (no end-of-archive marker) and must be discarded.
pub fn export_tar_as<W: Write>(
    layout: &Layout,
    manifest: &Descriptor,
    name: Option<&str>,
    writer: W,
    progress: &dyn Progress,
) -> Result<W> {
    layout.whole_graph(
        std::slice::from_ref(manifest),
        &format!("cannot export snapshot {}", manifest.digest),
    )?;
    let plan = plan(layout, manifest)?;
    for f in &plan.files {
        let decoded: u64 = f.chunks.iter().map(|c| c.decoded_len).sum();
        if decoded != f.map.stored_len() {
            return Err(Error::InvalidDocument {
                what: format!("snapshot {}, file {:?}", manifest.digest, f.name),
                reason: format!(
                    "its chunks hold {decoded} bytes but its sparse map says {}",
                    f.map.stored_len()
                ),
            });
        }
    }
    let name = match name {
        Some(n) => n.to_string(),
        None => default_name(manifest, &plan),
    };
    let envelope = Envelope::new(EnvelopeConfig::from_snapshot_config(&plan.config, &name));
    let mut out = Counting {
        inner: writer,
        count: 0,
    };
    match write_stream(layout, &plan, &envelope, &mut out, progress) {
        Ok(()) => Ok(out.inner),
        Err(e) => {
            leave_incomplete(&mut out);
            Err(e)
        }
    }
}

/// Writes the whole stream; on error it is incomplete.
fn write_stream<W: Write>(
    layout: &Layout,
    plan: &SnapshotPlan,
    envelope: &Envelope,
    out: &mut Counting<W>,
    progress: &dyn Progress,
) -> Result<()> {
    let mut tar = TarWriter::new(out, envelope)?;
    progress.begin(
        "exporting",
        plan.files.iter().map(|f| f.map.stored_len()).sum(),
    );
    for f in &plan.files {
        let sparse = (!f.map.is_dense()).then_some(&f.map);
        let mut body = FileStream {
            layout,
            chunks: &f.chunks,
            next: 0,
            current: None,
            failure: None,
            progress,
        };
        let appended = tar.append_file(&f.name, f.mode, f.map.logical_size(), sparse, &mut body);
        if let Err(e) = appended {
            return Err(body.failure.take().unwrap_or(e));
        }
    }
    tar.finish()?;
    progress.finish();
    Ok(())
}

/// The name `snapshot.json` carries by default: the ref's name without its
/// tag, else the snapshot id.
fn default_name(manifest: &Descriptor, plan: &SnapshotPlan) -> String {
    match manifest.ref_name() {
        Some(r) => crate::split_tag(r).0.to_string(),
        None => plan.config.snapshot_id.clone(),
    }
}

/// [`export_tar_as`] into the file `dest`, published as the layout's own
/// files are: written to a temp file in `dest`'s directory, fsynced, renamed
/// over `dest`, the directory fsynced. On error the temp file is removed
/// and `dest` is untouched. Returns the bytes written.
///
/// # Errors
/// As [`export_tar_as`], and I/O errors creating, syncing or renaming.
pub fn export_tar_file(
    layout: &Layout,
    manifest: &Descriptor,
    name: Option<&str>,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<u64> {
    durable::write_file_replacing(dest, |out| {
        export_tar_as(layout, manifest, name, out, progress).map(drop)
    })
}

/// One file's stored stream: its chunks joined, decoded and verified.
struct FileStream<'l> {
    layout: &'l Layout,
    chunks: &'l [ChunkRef],
    next: usize,
    current: Option<ChunkStream<'l>>,
    /// The error behind the last failed read, for the caller.
    failure: Option<Error>,
    progress: &'l dyn Progress,
}

/// One chunk being read: its decoded bytes and how many are still due.
struct ChunkStream<'l> {
    chunk: &'l ChunkRef,
    reader: Box<dyn Read + 'l>,
    left: u64,
}

impl<'l> FileStream<'l> {
    fn open(&self, chunk: &'l ChunkRef) -> Result<ChunkStream<'l>> {
        let path = self.layout.blob_path(&chunk.blob.digest);
        let raw: Box<dyn Read> = if chunk.blob.size <= VERIFY_AHEAD {
            Box::new(Cursor::new(
                self.layout.read_blob(&chunk.blob, VERIFY_AHEAD)?,
            ))
        } else {
            Box::new(self.layout.open_blob(&chunk.blob)?)
        };
        let reader: Box<dyn Read> = if chunk.zstd {
            let mut d = zstd::stream::read::Decoder::new(raw).ctx("decompress", &path)?;
            d.window_log_max(WINDOW_LOG_MAX).ctx("decompress", &path)?;
            Box::new(d)
        } else {
            raw
        };
        Ok(ChunkStream {
            chunk,
            reader,
            left: chunk.decoded_len,
        })
    }

    fn read_chunks(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            let cur = match &mut self.current {
                Some(c) => c,
                None => {
                    let Some(chunk) = self.chunks.get(self.next) else {
                        return Ok(0);
                    };
                    self.next += 1;
                    self.current.insert(self.open(chunk)?)
                }
            };
            let mut n = 0;
            if cur.left > 0 {
                let want = buf
                    .len()
                    .min(usize::try_from(cur.left).unwrap_or(usize::MAX));
                n = read_retrying(&mut cur.reader, &mut buf[..want], cur.chunk)?;
                if n == 0 {
                    return Err(chunk_bad(
                        cur.chunk,
                        format!("it ends {} bytes short of what its file needs", cur.left),
                    ));
                }
                cur.left -= n as u64;
            }
            if cur.left == 0 {
                // Read to the end before the last bytes go out: that is when
                // a streamed blob's digest is checked.
                let mut one = [0u8; 1];
                if read_retrying(&mut cur.reader, &mut one, cur.chunk)? != 0 {
                    return Err(chunk_bad(
                        cur.chunk,
                        format!(
                            "it holds more than the {} bytes its file needs",
                            cur.chunk.decoded_len
                        ),
                    ));
                }
                self.current = None;
            }
            if n > 0 {
                self.progress.advance(n as u64);
                return Ok(n);
            }
        }
    }
}

fn read_retrying(r: &mut dyn Read, buf: &mut [u8], chunk: &ChunkRef) -> Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read blob", chunk_label(chunk), e)),
            Ok(n) => return Ok(n),
        }
    }
}

fn chunk_label(chunk: &ChunkRef) -> String {
    format!("{} (a chunk of the snapshot)", chunk.blob.digest)
}

fn chunk_bad(chunk: &ChunkRef, reason: String) -> Error {
    Error::InvalidDocument {
        what: format!("chunk {}", chunk.blob.digest),
        reason,
    }
}

impl Read for FileStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_chunks(buf).map_err(|e| {
            let shown = io::Error::other(e.to_string());
            self.failure = Some(e);
            shown
        })
    }
}
