//! Reading a stored snapshot back: its config and layers checked against
//! each other, and what each chunk decodes to.

use super::CONFIG_LIMIT;
use crate::chunks::restore::ChunkRef;
use crate::error::{Error, Result};
use crate::formats::cocoon::config::SnapshotConfig;
use crate::io::size::checked_total;
use crate::io::sparse::SparseMap;
use crate::model::name::validate_file_name;
use crate::model::{Descriptor, media_type as mt};
use crate::store::layout::Layout;

/// A snapshot's config and which blobs make each file, read and checked.
#[derive(Clone, Debug)]
pub struct SnapshotPlan {
    /// The config blob.
    pub config: SnapshotConfig,
    /// Each file: name, its chunks in order, where its data goes, its mode.
    pub files: Vec<PlannedFile>,
}

impl SnapshotPlan {
    /// What the files take once unpacked, holes included (checked by
    /// [`plan`] to fit in 64 bits).
    pub fn logical_size(&self) -> u64 {
        self.files.iter().map(|f| f.map.logical_size()).sum()
    }

    /// The bytes the files' data extents hold, what unpacking writes
    /// (checked by [`plan`] to fit in 64 bits).
    pub fn stored_len(&self) -> u64 {
        self.files.iter().map(|f| f.map.stored_len()).sum()
    }
}

/// One file of a [`SnapshotPlan`].
#[derive(Clone, Debug)]
pub struct PlannedFile {
    /// Plain file name (checked).
    pub name: String,
    /// Its blobs, in order, with what each decodes to.
    pub chunks: Vec<ChunkRef>,
    /// Where its stored stream goes in the logical file.
    pub map: SparseMap,
    /// Unix mode (0o640 when the config has none, as cocoon-common).
    pub mode: u32,
}

impl PlannedFile {
    /// The bytes its blobs take in the layout (checked by [`plan`] to fit
    /// in 64 bits).
    pub fn blob_size(&self) -> u64 {
        self.chunks.iter().map(|c| c.blob.size).sum()
    }
}

/// Reads a snapshot manifest's config and matches layers to files as
/// cocoon-common does: by title in layer order; a file with `chunks` takes
/// those digests from the manifest's layers.
///
/// # Errors
/// Not a snapshot, a config that is not one, titles that are not plain
/// file names, chunk digests not in the manifest, sizes that do not add up,
/// bad sparse maps; [`Error::Overflow`] for sizes that add up past 64 bits.
pub fn plan(layout: &Layout, manifest: &Descriptor) -> Result<SnapshotPlan> {
    let bad = |reason: String| Error::InvalidDocument {
        what: format!("snapshot {}", manifest.digest),
        reason,
    };
    let (_, doc) = layout.read_document(manifest)?;
    let kind = crate::model::classify(&doc, Some(&manifest.media_type));
    if kind != crate::model::Kind::Snapshot {
        return Err(bad(format!("it is a {kind}, not a snapshot")));
    }
    let config_desc = doc.config.as_ref().ok_or_else(|| bad("no config".into()))?;
    if config_desc.media_type != mt::SNAPSHOT_CONFIG {
        return Err(bad(format!(
            "its config is {}, not {}",
            config_desc.media_type,
            mt::SNAPSHOT_CONFIG
        )));
    }
    let raw = layout.read_blob(config_desc, CONFIG_LIMIT)?;
    let config: SnapshotConfig = serde_json::from_slice(&raw)
        .map_err(|e| bad(format!("its config is not a snapshot config: {e}")))?;
    let layers = doc.layers.clone().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    for layer in &layers {
        let name = layer
            .title()
            .ok_or_else(|| bad(format!("layer {} has no title", layer.digest)))?;
        validate_file_name(name)?;
        if !seen.insert(name.to_string()) {
            continue; // later chunks of a file listed in `chunks`
        }
        let meta = config.files.get(name).cloned().unwrap_or_default();
        let blobs = file_blobs(&layers, layer, &meta.chunks, name).map_err(bad)?;
        let chunks = decoded_chunks(layout, name, blobs, meta.size).map_err(bad)?;
        let too_big = |what: &str| Error::Overflow {
            what: format!("the {what} of {name:?} in snapshot {}", manifest.digest),
        };
        let stored = checked_total(chunks.iter().map(|c| c.decoded_len))
            .ok_or_else(|| too_big("chunk lengths"))?;
        checked_total(chunks.iter().map(|c| c.blob.size)).ok_or_else(|| too_big("blob sizes"))?;
        let map = if meta.sparse_map.is_empty() {
            SparseMap::dense(stored)
        } else {
            let size = u64::try_from(meta.sparse_size)
                .map_err(|_| bad(format!("{name:?}: negative sparseSize")))?;
            SparseMap::from_cocoon(&meta.sparse_map, size)?
        };
        let mode = u32::try_from(meta.mode)
            .ok()
            .filter(|m| *m != 0)
            .unwrap_or(0o640);
        files.push(PlannedFile {
            name: name.to_string(),
            chunks,
            map,
            mode,
        });
    }
    // The totals its users show and unpack must fit (each file's do).
    let logical = checked_total(files.iter().map(|f| f.map.logical_size()));
    let blobs = checked_total(files.iter().map(PlannedFile::blob_size));
    let stored = checked_total(files.iter().map(|f| f.map.stored_len()));
    if logical.is_none() || blobs.is_none() || stored.is_none() {
        return Err(Error::Overflow {
            what: format!("the file sizes of snapshot {}", manifest.digest),
        });
    }
    Ok(SnapshotPlan { config, files })
}

/// The blobs of the file `name` whose first layer is `layer`: that layer,
/// or, for a file with `chunks`, those digests from the manifest's layers.
fn file_blobs(
    layers: &[Descriptor],
    layer: &Descriptor,
    chunks: &[String],
    name: &str,
) -> std::result::Result<Vec<Descriptor>, String> {
    if chunks.is_empty() {
        return Ok(vec![layer.clone()]);
    }
    chunks
        .iter()
        .map(|d| {
            layers
                .iter()
                .find(|l| l.digest.to_string() == *d)
                .cloned()
                .ok_or_else(|| format!("{name:?}: chunk {d} is not a layer of the manifest"))
        })
        .collect()
}

/// What each blob of a file decodes to. Raw blobs are what they are. A
/// file in one zstd blob decodes to the config's `size`; a file cut into
/// several has each chunk's length in its frame header (both cocoon-common
/// and epoch-store record it), and together they must make `size`. The
/// lengths are checked again while decoding, and every blob's digest too.
fn decoded_chunks(
    layout: &Layout,
    name: &str,
    blobs: Vec<Descriptor>,
    size: i64,
) -> std::result::Result<Vec<ChunkRef>, String> {
    let zstd: Vec<bool> = blobs
        .iter()
        .map(|b| b.media_type.ends_with("+zstd"))
        .collect();
    if !zstd.iter().any(|z| *z) {
        let chunks: Vec<ChunkRef> = blobs.into_iter().map(ChunkRef::raw).collect();
        let stored = checked_total(chunks.iter().map(|c| c.decoded_len))
            .ok_or_else(|| format!("{name:?}: its chunks add up to more than 2^64 bytes"))?;
        if size > 0 && size as u64 != stored {
            return Err(format!(
                "{name:?}: its chunks hold {stored} bytes, the config says {size}"
            ));
        }
        return Ok(chunks);
    }
    if zstd.iter().any(|z| !*z) {
        return Err(format!(
            "{name:?}: some chunks are compressed and some are not"
        ));
    }
    let total = u64::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("{name:?} is compressed but its files[].size is missing"))?;
    if blobs.len() == 1 {
        let blob = blobs.into_iter().next().expect("one blob");
        return Ok(vec![ChunkRef {
            blob,
            decoded_len: total,
            zstd: true,
        }]);
    }
    let mut chunks = Vec::new();
    for blob in blobs {
        let decoded_len = frame_content_size(layout, &blob).ok_or_else(|| {
            format!(
                "{name:?}: chunk {} does not record its decoded size",
                blob.digest
            )
        })?;
        chunks.push(ChunkRef {
            blob,
            decoded_len,
            zstd: true,
        });
    }
    let sum = checked_total(chunks.iter().map(|c| c.decoded_len)).ok_or_else(|| {
        format!("{name:?}: its chunks' frames declare more than 2^64 bytes together")
    })?;
    if sum != total {
        return Err(format!(
            "{name:?}: its chunks decode to {sum} bytes, the config says {total}"
        ));
    }
    Ok(chunks)
}

/// The content size a zstd frame's header declares, if readable. Untrusted:
/// decoding checks it.
fn frame_content_size(layout: &Layout, blob: &Descriptor) -> Option<u64> {
    use std::io::Read;
    let (file, _) = crate::io::input::open_regular(&layout.blob_path(&blob.digest)).ok()?;
    let mut head = Vec::with_capacity(18);
    file.take(18).read_to_end(&mut head).ok()?;
    zstd::zstd_safe::get_frame_content_size(&head)
        .ok()
        .flatten()
}
