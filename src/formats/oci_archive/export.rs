//! Export: refs and everything they reach as one tar (see the
//! [module docs](super)).

use std::io::{self, Write};
use std::path::Path;

use serde_json::Value;
use tar::EntryType;

use crate::chunks::read::{ChunkReader, ChunkRef, open_verify_ahead};
use crate::error::{Error, Result};
use crate::io::counting::Counting;
use crate::io::digest::{Algorithm, Digest};
use crate::io::durable;
use crate::io::progress::Progress;
use crate::model::name::validate_ref;
use crate::model::{Descriptor, annotation, media_type};
use crate::store::layout::{LAYOUT_VERSION, Layout, looks_like_digest};
use crate::tar::write::{
    END_OF_ARCHIVE, OCI_STYLE, leave_incomplete, padding, pax_data, pax_records,
};

/// Bytes read and written at a time while a large blob streams.
const BUFFER: usize = 1 << 20;

/// What an archive will hold: the `index.json` entries asked for (as stored)
/// and every blob they reach, each once, checked present with the right
/// size. Build it with [`ArchivePlan::new`], write it with
/// [`ArchivePlan::write`].
#[derive(Clone, Debug)]
pub struct ArchivePlan {
    /// The archive's `index.json` entries, as stored in ours.
    entries: Vec<Value>,
    /// The same entries, parsed.
    roots: Vec<Descriptor>,
    /// Every blob reached, each once, in walk order.
    blobs: Vec<Descriptor>,
}

impl ArchivePlan {
    /// Resolves `refs` (ref names or digests) and walks everything they
    /// reach. A ref gives its `index.json` entry as stored, ref name
    /// included; a digest gives the entry of that digest as stored (an
    /// untagged one if there is one) without its ref name, or, for a
    /// manifest or index that is in no entry, a fresh untagged descriptor.
    /// Refs given twice are exported once.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `refs` is empty or a digest names a
    /// blob that is not a manifest or index; [`Error::RefNotFound`],
    /// [`Error::InvalidRef`], [`Error::InvalidDigest`]; a reachable
    /// document that is missing, damaged or unparseable; a reachable blob
    /// that is missing, not a regular file or of the wrong size.
    pub fn new(layout: &Layout, refs: &[impl AsRef<str>]) -> Result<ArchivePlan> {
        if refs.is_empty() {
            return Err(Error::InvalidArgument(
                "nothing to export: give at least one ref or digest".into(),
            ));
        }
        let (raw, index) = layout.read_index_raw()?;
        let stored: Value = serde_json::from_slice(&raw).map_err(|e| Error::InvalidDocument {
            what: layout.index_path().display().to_string(),
            reason: format!("malformed JSON: {e}"),
        })?;
        let list = match stored.get("manifests") {
            // As `Index::parse` reads it: oras writes an empty list as `null`.
            Some(Value::Null) => Some(&[][..]),
            other => other.and_then(Value::as_array).map(Vec::as_slice),
        };
        let list = list
            .filter(|l| l.len() == index.entries().len())
            .ok_or_else(|| Error::InvalidDocument {
                what: layout.index_path().display().to_string(),
                reason: "`manifests` is not an array".into(),
            })?;
        let entries = index.entries();
        let mut plan = ArchivePlan {
            entries: Vec::new(),
            roots: Vec::new(),
            blobs: Vec::new(),
        };
        for spec in refs {
            let spec = spec.as_ref();
            let (value, desc) = if looks_like_digest(spec) {
                let digest = Digest::parse(spec)?;
                let at = entries
                    .iter()
                    .position(|d| d.digest == digest && d.ref_name().is_none())
                    .or_else(|| entries.iter().position(|d| d.digest == digest));
                match at {
                    Some(i) => {
                        let mut value = list[i].clone();
                        untag(&mut value);
                        let mut desc = entries[i].clone();
                        desc.annotations.remove(annotation::REF_NAME);
                        (value, desc)
                    }
                    None => {
                        let desc = layout.resolve_in(&index, spec)?;
                        if !media_type::is_document(&desc.media_type) {
                            return Err(Error::InvalidArgument(format!(
                                "{spec} is a blob, not a manifest or index; an archive holds \
                                 images and artifacts (give the manifest's ref or digest)"
                            )));
                        }
                        let value =
                            serde_json::to_value(&desc).expect("a descriptor always serializes");
                        (value, desc)
                    }
                }
            } else {
                validate_ref(spec)?;
                index.find(spec)?;
                let i = entries
                    .iter()
                    .position(|d| d.ref_name() == Some(spec))
                    .ok_or_else(|| Error::RefNotFound {
                        name: spec.to_string(),
                        path: layout.index_path(),
                    })?;
                (list[i].clone(), entries[i].clone())
            };
            if !plan.entries.contains(&value) {
                plan.entries.push(value);
                plan.roots.push(desc);
            }
        }
        plan.collect_blobs(layout)?;
        Ok(plan)
    }

    fn collect_blobs(&mut self, layout: &Layout) -> Result<()> {
        let graph = layout.whole_graph(&self.roots, "cannot export")?;
        self.blobs = graph
            .blobs()
            .into_iter()
            .map(|(digest, size)| Descriptor::new(media_type::GENERIC, digest.clone(), size))
            .collect();
        Ok(())
    }

    /// The archive's `index.json` entries, parsed (in the order given).
    pub fn roots(&self) -> &[Descriptor] {
        &self.roots
    }

    /// Every blob the archive holds, each once, in member order (the media
    /// type is not known for leaves: `application/octet-stream`).
    pub fn blobs(&self) -> &[Descriptor] {
        &self.blobs
    }

    /// The bytes of all blobs together.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }

    /// The archive's `index.json`: compact JSON, the entries as stored.
    pub fn index_json(&self) -> Vec<u8> {
        let mut object = serde_json::Map::new();
        object.insert("schemaVersion".into(), 2.into());
        object.insert("mediaType".into(), media_type::OCI_INDEX.into());
        object.insert("manifests".into(), Value::Array(self.entries.clone()));
        serde_json::to_vec(&object).expect("a JSON map always serializes")
    }

    /// Writes the archive to `writer` and returns it. `progress` counts
    /// blob bytes (total: [`ArchivePlan::blob_bytes`]).
    ///
    /// # Errors
    /// A blob that is missing or damaged ([`Error::DigestMismatch`],
    /// [`Error::SizeMismatch`], [`Error::BlobNotFound`], or [`Error::Io`]
    /// naming the blob for damage found while a large blob streams); I/O
    /// errors writing. After an error the stream is incomplete (no
    /// end-of-archive marker, never ending on a member boundary) and every
    /// tar reader refuses it.
    pub fn write<W: Write>(
        &self,
        layout: &Layout,
        writer: W,
        progress: &dyn Progress,
    ) -> Result<W> {
        write_tar(writer, |out| self.write_stream(layout, out, progress))
    }

    fn write_stream<W: Write>(
        &self,
        layout: &Layout,
        out: &mut Counting<W>,
        progress: &dyn Progress,
    ) -> Result<()> {
        let marker = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
        put_member(
            out,
            "oci-layout",
            0o644,
            EntryType::Regular,
            marker.as_bytes(),
        )?;
        put_member(
            out,
            "index.json",
            0o644,
            EntryType::Regular,
            &self.index_json(),
        )?;
        put_member(out, "blobs/", 0o755, EntryType::Directory, &[])?;
        for alg in Algorithm::ALL {
            if self.blobs.iter().any(|b| b.digest.algorithm() == alg) {
                let dir = format!("blobs/{}/", alg.name());
                put_member(out, &dir, 0o755, EntryType::Directory, &[])?;
            }
        }
        progress.begin("exporting", self.blob_bytes());
        for blob in &self.blobs {
            let name = format!("blobs/{}/{}", blob.digest.algorithm(), blob.digest.hex());
            put_blob(layout, out, &name, blob, progress)?;
        }
        progress.finish();
        Ok(())
    }
}

/// Removes the ref name from a stored entry (and an `annotations` object
/// left empty).
fn untag(value: &mut Value) {
    if let Some(Value::Object(ann)) = value.get_mut("annotations") {
        ann.remove(annotation::REF_NAME);
        if ann.is_empty()
            && let Some(obj) = value.as_object_mut()
        {
            obj.remove("annotations");
        }
    }
}

/// Writes a tar stream with `body` (its members), then the end-of-archive
/// marker; after an error, leaves the stream so that no tar reader takes
/// it for a complete one. Returns the writer.
pub(crate) fn write_tar<W: Write>(
    writer: W,
    body: impl FnOnce(&mut Counting<W>) -> Result<()>,
) -> Result<W> {
    let mut out = Counting::new(writer);
    let r = body(&mut out).and_then(|()| {
        out.write_all(&END_OF_ARCHIVE).map_err(write_error)?;
        out.flush().map_err(write_error)
    });
    match r {
        Ok(()) => Ok(out.inner),
        Err(e) => {
            leave_incomplete(&mut out);
            Err(e)
        }
    }
}

/// The member `name` holding the layout's blob `blob`, checked against
/// its digest as it is copied.
pub(crate) fn put_blob<W: Write>(
    layout: &Layout,
    out: &mut Counting<W>,
    name: &str,
    blob: &Descriptor,
    progress: &dyn Progress,
) -> Result<()> {
    let raw = open_verify_ahead(layout, blob)?;
    put_header(out, name, 0o644, EntryType::Regular, blob.size)?;
    copy_verified(layout, raw, blob, out, progress)?;
    out.write_all(padding(blob.size)).map_err(write_error)
}

/// Copies a blob opened with [`open_verify_ahead`]; a large one's last
/// bytes are held back until the reader has reached its end, where
/// [`crate::BlobReader`] checks size and digest.
fn copy_verified<W: Write>(
    layout: &Layout,
    raw: Box<dyn std::io::Read>,
    blob: &Descriptor,
    out: &mut Counting<W>,
    progress: &dyn Progress,
) -> Result<()> {
    let chunk = ChunkRef::raw(blob.clone());
    let path = layout.blob_path(&blob.digest);
    let mut reader = ChunkReader::new(&chunk, raw, &path, "read", format!("blob {}", blob.digest))?;
    let mut buf = vec![0u8; BUFFER.min(usize::try_from(blob.size).unwrap_or(BUFFER).max(1))];
    loop {
        let n = reader.read_some(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n]).map_err(write_error)?;
        progress.advance(n as u64);
    }
}

pub(crate) fn write_error(e: io::Error) -> Error {
    Error::stream("write", "the OCI archive", e)
}

/// A whole member: header, body, padding.
pub(crate) fn put_member<W: Write>(
    out: &mut W,
    name: &str,
    mode: u32,
    kind: EntryType,
    body: &[u8],
) -> Result<()> {
    put_header(out, name, mode, kind, body.len() as u64)?;
    out.write_all(body).map_err(write_error)?;
    out.write_all(padding(body.len() as u64))
        .map_err(write_error)
}

/// A member's header, preceded by a PAX header when the name is over 100
/// bytes (a sha512 blob) or the size over 8 GiB.
pub(crate) fn put_header<W: Write>(
    out: &mut W,
    name: &str,
    mode: u32,
    kind: EntryType,
    size: u64,
) -> Result<()> {
    let data = pax_data(&pax_records(name, size, Vec::new()));
    OCI_STYLE
        .write_headers(out, name, mode, kind, size, &data)
        .map_err(write_error)
}

/// Writes an archive of `refs` (ref names or digests) and everything they
/// reach to `writer`, and returns the writer. See the [module docs](super)
/// and [`ArchivePlan`].
///
/// # Errors
/// As [`ArchivePlan::new`] and [`ArchivePlan::write`]; after an error the
/// stream is incomplete and must be discarded.
pub fn export_archive<W: Write>(
    layout: &Layout,
    refs: &[impl AsRef<str>],
    writer: W,
    progress: &dyn Progress,
) -> Result<W> {
    ArchivePlan::new(layout, refs)?.write(layout, writer, progress)
}

/// Writes `plan`'s archive into the file `dest` as the layout's own files
/// are published: a temp file in `dest`'s directory (`.NAME.XXXX.part`),
/// fsynced, renamed over `dest`, the directory fsynced. On error the temp
/// file is removed and `dest` is untouched. Returns the bytes written.
///
/// # Errors
/// As [`ArchivePlan::write`], and I/O errors creating, syncing or renaming.
pub fn export_archive_file(
    layout: &Layout,
    plan: &ArchivePlan,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<u64> {
    durable::write_file_replacing(dest, |out| plan.write(layout, out, progress).map(drop))
}

/// [`put_header`] for the module's tests.
#[cfg(test)]
pub(super) fn tests_put_header(out: &mut Vec<u8>, name: &str, size: u64) -> Result<()> {
    put_header(out, name, 0o644, EntryType::Regular, size)
}
