//! Export: a stored snapshot as cocoon's tar stream (see the
//! [module docs](super)).

use std::io::{self, Read, Write};
use std::path::Path;

use crate::chunks::read::{ChunkReader, ChunkRef, check_fills_map, open_verify_ahead};
use crate::error::{Error, Result};
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
        check_fills_map(&f.chunks, &f.map, || {
            format!("snapshot {}, file {:?}", manifest.digest, f.name)
        })?;
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
    current: Option<ChunkReader<'l>>,
    /// The error behind the last failed read, for the caller.
    failure: Option<Error>,
    progress: &'l dyn Progress,
}

impl<'l> FileStream<'l> {
    fn open(&self, chunk: &'l ChunkRef) -> Result<ChunkReader<'l>> {
        let path = self.layout.blob_path(&chunk.blob.digest);
        let raw = open_verify_ahead(self.layout, &chunk.blob)?;
        let label = format!("{} (a chunk of the snapshot)", chunk.blob.digest);
        ChunkReader::new(chunk, raw, &path, "read blob", label)
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
            match cur.read_some(buf)? {
                0 => self.current = None,
                n => {
                    self.progress.advance(n as u64);
                    return Ok(n);
                }
            }
        }
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
