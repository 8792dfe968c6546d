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
    let v2 = doc.artifact_type.as_deref() == Some(mt::ARTIFACT_SNAPSHOT_V2);
    check_layers(&layers, &config, v2).map_err(bad)?;
    let mut seen = std::collections::BTreeMap::new();
    let mut files = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let name = layer
            .title()
            .ok_or_else(|| bad(format!("layer {} has no title", layer.digest)))?;
        validate_file_name(name)?;
        let meta = config.files.get(name).cloned().unwrap_or_default();
        if let Some(first) = seen.insert(name.to_string(), i) {
            if meta.chunks.is_empty() {
                return Err(bad(format!(
                    "layers {first} and {i} are both titled {name:?} and the config lists no \
                     chunks for it: which is the file? (cocoon's import would keep the last)"
                )));
            }
            continue; // later chunks of a file listed in `chunks`
        }
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

/// Refuses, before anything is read or written, what cocoon-common's pull
/// refuses (`snapshot/pull.go:validateSnapshotLayers`): a layer of a media
/// type it cannot decode (`manifest/media.go:IsSnapshotLayerMediaType`: the
/// VM file types, raw and qcow2 disks, octet-stream, each also `+zstd`;
/// unknown types "must fail the pull", and disk parts belong to OS images),
/// and, unless the manifest is marked v2, zstd layers or chunked files.
fn check_layers(
    layers: &[Descriptor],
    config: &SnapshotConfig,
    v2: bool,
) -> std::result::Result<(), String> {
    for (i, layer) in layers.iter().enumerate() {
        let shown = || {
            let title = layer
                .title()
                .map_or_else(String::new, |t| format!(" {t:?}"));
            format!("layer {i}{title} ({})", layer.digest)
        };
        let base = layer
            .media_type
            .strip_suffix("+zstd")
            .unwrap_or(&layer.media_type);
        if !matches!(
            base,
            mt::VM_CONFIG
                | mt::VM_STATE
                | mt::VM_MEMORY
                | mt::VM_CIDATA
                | mt::DISK_QCOW2
                | mt::DISK_RAW
                | mt::GENERIC
        ) {
            return Err(format!(
                "{} is {}, which a snapshot cannot hold (cocoon-common's pull refuses it too)",
                shown(),
                layer.media_type
            ));
        }
        if !v2 && base != layer.media_type {
            return Err(format!(
                "{} is zstd-compressed but the manifest is not marked {}",
                shown(),
                mt::ARTIFACT_SNAPSHOT_V2
            ));
        }
    }
    let chunked = config.files.iter().find(|(_, f)| !f.chunks.is_empty());
    if let (false, Some((name, _))) = (v2, chunked) {
        return Err(format!(
            "{name:?} is chunked but the manifest is not marked {}",
            mt::ARTIFACT_SNAPSHOT_V2
        ));
    }
    Ok(())
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
/// several has each chunk's length from [`chunk_lengths`], and together
/// they must make `size`. The lengths are checked again while decoding,
/// and every blob's digest too.
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
    let lens = chunk_lengths(layout, name, &blobs, total)?;
    let chunks: Vec<ChunkRef> = blobs
        .into_iter()
        .zip(lens)
        .map(|(blob, decoded_len)| ChunkRef {
            blob,
            decoded_len,
            zstd: true,
        })
        .collect();
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

/// cocoon-common's bound on what one chunk of a file of `size` bytes in `n`
/// chunks decodes to (`snapshot/pullencoded.go:rawChunkStride`).
fn raw_chunk_stride(size: u64, n: usize) -> u64 {
    if n <= 1 || size == 0 {
        return size;
    }
    (size - 1) / (n as u64 - 1) + 1
}

/// What each compressed chunk of a file of `total` bytes decodes to: the
/// content size its frame header declares, or, for a frame without one
/// (Go's `EncodeAll` leaves it out under 256 bytes, so a last chunk of
/// 1-255 bytes has none), what the others leave when it is the only one,
/// else what it decodes to, counted. Either way at most cocoon-common's
/// per-chunk bound; decoding checks every length again.
fn chunk_lengths(
    layout: &Layout,
    name: &str,
    blobs: &[Descriptor],
    total: u64,
) -> std::result::Result<Vec<u64>, String> {
    let bound = raw_chunk_stride(total, blobs.len());
    let declared: Vec<Option<u64>> = blobs
        .iter()
        .map(|b| frame_content_size(layout, b))
        .collect();
    let unknown = declared.iter().filter(|d| d.is_none()).count();
    let known = checked_total(declared.iter().flatten().copied()).ok_or_else(|| {
        format!("{name:?}: its chunks' frames declare more than 2^64 bytes together")
    })?;
    let over = |d: &Descriptor, len: u64| {
        format!(
            "{name:?}: chunk {} decodes to {len} bytes, more than the {bound} a chunk of it can \
             hold ({total} bytes in {} chunks)",
            d.digest,
            blobs.len()
        )
    };
    let mut lens = Vec::with_capacity(blobs.len());
    for (blob, d) in blobs.iter().zip(declared) {
        let len = match d {
            Some(len) => len,
            None if unknown == 1 => total.checked_sub(known).ok_or_else(|| {
                format!("{name:?}: its chunks' frames declare {known} bytes, more than the {total} of the file")
            })?,
            None => counted_len(layout, blob, bound).map_err(|e| format!("{name:?}: {e}"))?,
        };
        if len > bound {
            return Err(over(blob, len));
        }
        lens.push(len);
    }
    Ok(lens)
}

/// What a zstd blob decodes to, counted by decoding it, refused past `bound`.
fn counted_len(layout: &Layout, blob: &Descriptor, bound: u64) -> std::result::Result<u64, String> {
    use std::io::Read;
    let path = layout.blob_path(&blob.digest);
    let (file, _) = crate::io::input::open_regular(&path).map_err(|e| e.to_string())?;
    let mut d = zstd::stream::read::Decoder::new(file)
        .map_err(|e| format!("chunk {}: {e}", blob.digest))?;
    d.window_log_max(crate::chunks::read::WINDOW_LOG_MAX)
        .map_err(|e| format!("chunk {}: {e}", blob.digest))?;
    let n = std::io::copy(&mut d.take(bound + 1), &mut std::io::sink())
        .map_err(|e| format!("chunk {} does not decode: {e}", blob.digest))?;
    if n > bound {
        return Err(format!(
            "chunk {} decodes to more than {bound} bytes, the most a chunk of it can hold",
            blob.digest
        ));
    }
    Ok(n)
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
