//! Copying refs and everything they reach from one layout to another (a USB
//! stick, an air-gapped share, and back): planned before a byte is written,
//! incremental (blobs the destination has are skipped), verified on the
//! way, published with the store's protocol, `index.json` last.
//!
//! [`plan`] walks the source graph, looks at the destination, and refuses
//! up front what cannot work: a ref the destination holds with another
//! digest (unless forced), a blob larger than the destination filesystem's
//! largest file (FAT32: 4 GiB - 1 byte), more bytes than it has free.
//! [`execute`] then copies the missing blobs in parallel, each checked
//! against its digest as it is written (a damaged source blob stops the copy
//! and nothing references it), fsyncs, and updates the destination's
//! `index.json` under its lock. A copy that is killed, or whose stick is
//! pulled, leaves published blobs and temp files; the same command skips
//! the former, and gc reclaims the latter.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::io::digest::Digest;
use crate::io::filesystem::{self, Medium};
use crate::io::input::{FileState, file_state};
use crate::io::progress::Progress;
use crate::model::name::RefName;
use crate::model::platform::PlatformSpec;
use crate::model::{Descriptor, annotation, media_type};
use crate::store::graph::Graph;
use crate::store::layout::Layout;

/// Bytes reserved beyond the blobs themselves: `index.json`, directory
/// entries, the private directory.
const METADATA_RESERVE: u64 = 1 << 20;

/// Blobs copied at once (each holds one 8 MiB mapped window at most).
const COPY_THREADS: usize = 8;

/// One root to copy: its ref name (`None`: copied as an untagged root) and
/// its descriptor in the source.
#[derive(Clone, Debug)]
pub struct Root {
    /// The ref name, if it is tagged.
    pub name: Option<String>,
    /// The source's `index.json` entry (or a descriptor made from a digest).
    pub descriptor: Descriptor,
}

/// A blob the copy must write.
#[derive(Clone, Debug)]
pub struct PlannedBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// A title for messages: the layer title, or the ref it belongs to.
    pub what: String,
}

/// What a copy will do, decided before it writes anything.
#[derive(Clone, Debug)]
pub struct CopyPlan {
    /// The destination directory.
    pub dest: PathBuf,
    /// Whether the destination is already a layout.
    pub dest_exists: bool,
    /// The roots to copy.
    pub roots: Vec<Root>,
    /// Blobs to write, largest first.
    pub blobs: Vec<PlannedBlob>,
    /// Their total size.
    pub bytes: u64,
    /// Blobs the destination already has (skipped).
    pub present: usize,
    /// Their total size.
    pub present_bytes: u64,
    /// Refs the destination holds with another digest, replaced (`force`).
    pub replaced: Vec<String>,
    /// The destination filesystem.
    pub medium: Medium,
    /// Documents the copy writes that the source does not hold: indexes
    /// narrowed to some platforms ([`plan_platforms`]).
    pub documents: Vec<(Descriptor, Vec<u8>)>,
}

impl Layout {
    /// The roots named by `specs` (refs or digests), or every `index.json`
    /// entry when `specs` is empty.
    ///
    /// # Errors
    /// A ref or digest that is not there; an unreadable `index.json`.
    /// Every root's ref name must be valid and unambiguous: a name that
    /// breaks the grammar is refused (naming its entry) rather than carried
    /// to a medium whose readers would refuse it, or silently dropped
    /// (which would leave its blobs to the other side's gc).
    ///
    /// # Errors
    /// A ref or digest that is not there; an entry whose ref name is
    /// invalid or ambiguous; an unreadable `index.json`.
    pub fn roots(&self, specs: &[String]) -> Result<Vec<Root>> {
        let index = self.read_index()?;
        let roots: Vec<Root> = if specs.is_empty() {
            index
                .entries()
                .iter()
                .map(|d| Root {
                    name: d.ref_name().map(str::to_string),
                    descriptor: d.clone(),
                })
                .collect()
        } else {
            specs
                .iter()
                .map(|s| {
                    let d = self.resolve_in(&index, s)?;
                    Ok(Root {
                        name: d.ref_name().map(str::to_string),
                        descriptor: d,
                    })
                })
                .collect::<Result<_>>()?
        };
        for root in &roots {
            if let Some(name) = &root.name {
                check_entry_name(name, &root.descriptor)?;
                index.find(name)?;
            }
        }
        Ok(roots)
    }
}

/// Refuses an `index.json` entry whose ref name breaks the grammar, saying
/// how to rename it.
pub(crate) fn check_entry_name(name: &str, entry: &Descriptor) -> Result<()> {
    crate::model::name::validate_ref(name).map_err(|e| {
        let reason = match e {
            Error::InvalidRef { reason, .. } => reason,
            e => e.to_string(),
        };
        Error::InvalidArgument(format!(
            "the index.json entry for {} has the ref name {name:?}, which is not a valid ref \
             name ({reason}); other tools would refuse it, so it is not carried. Give it a valid \
             name (`epoch-store tag {} NEWREF`), remove this one (`epoch-store untag {}`), and \
             run the command again",
            entry.digest,
            entry.digest,
            crate::io::text::shell_quote(name)
        ))
    })
}

/// Plans copying `roots` of `src` into the layout at `dest` (created by
/// [`execute`] if absent).
///
/// # Errors
/// A destination that is a file or a non-empty directory that is not a
/// layout; a source document that cannot be read or verified; a ref the
/// destination holds with another digest (unless `force`); a blob larger
/// than the destination's largest file; not enough free space.
pub fn plan(src: &Layout, roots: Vec<Root>, dest: &Path, force: bool) -> Result<CopyPlan> {
    plan_platforms(src, roots, &[], dest, force)
}

/// [`plan`], where every root that is an index carries only its images for
/// `platforms` (each one's best match), under a new index of just those
/// ([`narrow`](super::platforms::narrow)); the rest is copied whole. No
/// platforms: [`plan`].
///
/// # Errors
/// As [`plan`], and an index with no image for one of `platforms`.
pub fn plan_platforms(
    src: &Layout,
    roots: Vec<Root>,
    platforms: &[PlatformSpec],
    dest: &Path,
    force: bool,
) -> Result<CopyPlan> {
    let dest_layout = open_dest(dest)?;
    let medium = filesystem::probe(dest).ctx("statfs", dest)?;
    let (roots, descriptors, documents) = narrow_roots(src, roots, platforms)?;
    let graph = src.whole_graph(&descriptors, "the source cannot be copied")?;
    let titles = titles(&graph, &roots);
    let sizes: BTreeMap<Digest, u64> = graph
        .blobs()
        .into_iter()
        .map(|(d, size)| (d.clone(), size))
        .collect();
    let mut replaced = Vec::new();
    if let Some(d) = &dest_layout {
        let index = d.read_index()?;
        for r in &roots {
            let Some(name) = &r.name else { continue };
            match index.find(name)? {
                Some(there) if there.digest != r.descriptor.digest => {
                    if !force {
                        return Err(Error::InvalidArgument(format!(
                            "{} already has {name} as {}, not {}; pass --force to replace it",
                            dest.display(),
                            there.digest,
                            r.descriptor.digest
                        )));
                    }
                    replaced.push(name.clone());
                }
                _ => {}
            }
        }
    }
    let (mut blobs, mut present, mut present_bytes) = (Vec::new(), 0, 0);
    for (digest, size) in sizes {
        let have = match &dest_layout {
            Some(d) => file_state(&d.blob_path(&digest), size)? == FileState::Present,
            None => false,
        };
        if have {
            present += 1;
            present_bytes += size;
        } else {
            let what = titles
                .get(&digest)
                .cloned()
                .unwrap_or_else(|| "a document".into());
            blobs.push(PlannedBlob { digest, size, what });
        }
    }
    blobs.sort_by_key(|b| std::cmp::Reverse(b.size));
    let bytes = blobs.iter().map(|b| b.size).sum();
    let plan = CopyPlan {
        dest: dest.to_path_buf(),
        dest_exists: dest_layout.is_some(),
        roots,
        blobs,
        bytes,
        present,
        present_bytes,
        replaced,
        medium,
        documents,
    };
    check_fits(&plan)?;
    Ok(plan)
}

/// The roots as copied (an index narrowed to `platforms` names its new
/// index), the descriptors whose graphs the copy carries, and the new
/// indexes' bytes.
#[allow(clippy::type_complexity)]
fn narrow_roots(
    src: &Layout,
    roots: Vec<Root>,
    platforms: &[PlatformSpec],
) -> Result<(Vec<Root>, Vec<Descriptor>, Vec<(Descriptor, Vec<u8>)>)> {
    let (mut kept, mut descriptors, mut documents) = (Vec::new(), Vec::new(), Vec::new());
    for root in roots {
        let narrowed = if platforms.is_empty() {
            None
        } else {
            super::platforms::narrow(src, root.name.as_deref(), &root.descriptor, platforms)?
        };
        match narrowed {
            Some(n) => {
                descriptors.extend(n.children);
                documents.push((n.descriptor.clone(), n.bytes));
                kept.push(Root {
                    name: root.name,
                    descriptor: n.descriptor,
                });
            }
            None => {
                descriptors.push(root.descriptor.clone());
                kept.push(root);
            }
        }
    }
    Ok((kept, descriptors, documents))
}

/// The destination as a layout, `None` if it is to be created.
fn open_dest(dest: &Path) -> Result<Option<Layout>> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("stat", dest, e)),
        Ok(md) if !md.is_dir() => Err(Error::InvalidArgument(format!(
            "{} is not a directory; copy --to needs a layout directory or a new path",
            dest.display()
        ))),
        Ok(_) => {
            if dest.join("oci-layout").exists() && dest.join("index.json").exists() {
                return Layout::open(dest).map(Some);
            }
            // Empty, or a layout whose creation was interrupted (a killed
            // copy): `Layout::init` completes it; the same rule as `init`.
            match crate::store::layout::foreign_entry(dest)? {
                None if !dest.join("index.json").exists() => Ok(None),
                _ => Err(Error::InvalidArgument(format!(
                    "{} is not an OCI image layout and not empty; copy into a layout, an empty directory or a new path",
                    dest.display()
                ))),
            }
        }
    }
}

/// For messages: each blob's layer title (or the ref of the manifest).
fn titles(graph: &Graph, roots: &[Root]) -> HashMap<Digest, String> {
    let mut out = HashMap::new();
    for (digest, doc) in &graph.documents {
        for l in doc.layers.iter().flatten() {
            if let Some(t) = l.annotations.get(annotation::TITLE) {
                out.entry(l.digest.clone()).or_insert_with(|| t.clone());
            }
        }
        out.entry(digest.clone())
            .or_insert_with(|| "a manifest".to_string());
    }
    for r in roots {
        if let Some(n) = &r.name {
            out.insert(r.descriptor.digest.clone(), format!("the manifest of {n}"));
        }
    }
    out
}

/// Refuses, before anything is written, blobs the destination filesystem
/// cannot hold and copies that do not fit in its free space.
fn check_fits(plan: &CopyPlan) -> Result<()> {
    let m = &plan.medium;
    if let Some(max) = m.kind.max_file_size()
        && let Some(b) = plan.blobs.iter().find(|b| b.size > max)
    {
        return Err(Error::InvalidArgument(format!(
            "{} is on {} ({}), whose files hold at most {} bytes; blob {} ({}, {} bytes) cannot be copied there. \
             Repack it in smaller pieces (`epoch-store pack snapshot DIR --ref REF --chunk-size 1GiB`, \
             or `pack image FILE --ref REF --part-size 1GiB`) and copy again, or use an exFAT or ext4 medium",
            plan.dest.display(),
            m.kind,
            if m.fuse {
                "through FUSE"
            } else {
                "kernel driver"
            },
            max,
            b.digest,
            b.what,
            b.size
        )));
    }
    if let Some(free) = m.free {
        let need: u64 =
            plan.blobs.iter().map(|b| m.allocated(b.size)).sum::<u64>() + METADATA_RESERVE;
        if need > free {
            return Err(Error::InvalidArgument(format!(
                "{} has {} bytes free; the copy needs {} ({} blobs, {} bytes, rounded to {}-byte blocks, plus 1 MiB for metadata). \
                 Free some space (`epoch-store --layout {} gc`) or copy fewer refs",
                plan.dest.display(),
                free,
                need,
                plan.blobs.len(),
                plan.bytes,
                m.block_size,
                plan.dest.display()
            )));
        }
    }
    Ok(())
}

/// What [`execute`] did.
#[derive(Clone, Debug, Default)]
pub struct CopyReport {
    /// Blobs written.
    pub blobs: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Refs (and untagged roots, by digest) now in the destination's index.
    pub refs: Vec<String>,
}

/// Carries out `plan`: creates the destination layout if needed, copies the
/// planned blobs in parallel (each verified and published on its own), makes
/// them durable, then adds the roots to the destination's `index.json`
/// under its lock.
///
/// # Errors
/// A source blob that is missing or damaged (named; nothing references it),
/// I/O errors on the destination (full, read-only, pulled out). The
/// destination stays verifiable; what was published is kept for a rerun.
pub fn execute(src: &Layout, plan: &CopyPlan, progress: &dyn Progress) -> Result<CopyReport> {
    // Keep the source's gc from sweeping while we read, where we can
    // (a read-only stick has no gc to fear and no lock to take).
    let _src_lock = src.reader_lock();
    let dest = if plan.dest_exists {
        Layout::open(&plan.dest)?
    } else {
        Layout::init(&plan.dest)?
    }
    .with_copy_mode(src.copy_mode());
    let writer = dest.writer_with(progress)?;
    progress.begin("copying", plan.bytes);
    // More threads than cores: each blob ends in an fsync that waits for
    // the disk, and small blobs are many; the hashing still uses every core.
    let results = crate::io::schedule::by_size(
        &plan.blobs,
        crate::io::schedule::Workers::Threads(COPY_THREADS),
        |b| b.size,
        |b| copy_blob(src, &writer, b, progress),
    );
    progress.finish();
    for (b, r) in plan.blobs.iter().zip(results) {
        r.map_err(|e| match e {
            Error::DigestMismatch { .. } | Error::SizeMismatch { .. } => Error::InvalidArgument(
                format!(
                    "source blob {} ({}) is damaged: {e}; nothing was tagged in {}. Run `epoch-store verify` on the source",
                    b.digest,
                    b.what,
                    plan.dest.display()
                ),
            ),
            // Any I/O error on the destination, when it cannot say how full it is.
            Error::Io { ref path, .. }
                if plan.medium.free.is_none() && path.starts_with(&plan.dest) =>
            {
                Error::InvalidArgument(format!(
                    "{e}. {} does not report its free space, so the copy could not be checked \
                     beforehand: it may be full (some FUSE drivers say \"Operation not permitted\" \
                     then). Free some space there and run the same copy again: it resumes",
                    plan.dest.display()
                ))
            }
            e => e,
        })?;
    }
    // The narrowed indexes, once everything they name is in place.
    write_documents(&writer, plan)?;
    let refs = writer.update_index(|index| {
        let mut refs = Vec::new();
        for r in &plan.roots {
            match &r.name {
                Some(name) => {
                    if let Some(there) = index.find(name)?
                        && there.digest != r.descriptor.digest
                        && !plan.replaced.contains(name)
                    {
                        return Err(Error::InvalidArgument(format!(
                            "{name} was tagged as {} in {} while copying; pass --force to replace it",
                            there.digest,
                            plan.dest.display()
                        )));
                    }
                    index.set_ref(&RefName::new(name.clone())?, &r.descriptor);
                    refs.push(name.clone());
                }
                None => {
                    index.add_untagged(&r.descriptor);
                    refs.push(r.descriptor.digest.to_string());
                }
            }
        }
        Ok(refs)
    })?;
    Ok(CopyReport {
        blobs: plan.blobs.len(),
        bytes: plan.bytes,
        refs,
    })
}

/// Writes the documents only the plan holds (narrowed indexes).
fn write_documents(writer: &crate::store::writer::Writer<'_>, plan: &CopyPlan) -> Result<()> {
    for (desc, bytes) in &plan.documents {
        let put = writer.put_bytes(&desc.media_type, bytes)?;
        debug_assert_eq!(put.digest, desc.digest);
    }
    Ok(())
}

/// Copies one blob: read from the source (mapped where safe), hashed and
/// written in one pass (or cloned and read back where the destination
/// shares extents), and published only if it matches its digest.
fn copy_blob(
    src: &Layout,
    writer: &crate::store::writer::Writer<'_>,
    b: &PlannedBlob,
    progress: &dyn Progress,
) -> Result<Descriptor> {
    let expected = Descriptor::new(media_type::GENERIC, b.digest.clone(), b.size);
    let path = src.blob_path(&b.digest);
    let file = src.open_blob_file(&expected)?;
    writer.put_verified(&file, &path, &expected, progress)
}
