//! cocoonstack VM snapshots as OCI artifacts, as cocoon-common writes and
//! reads them (`docs/cocoon-snapshot-format.md`): v1 stores one layer per
//! file; v2 cuts files larger than the chunk size at fixed offsets of their
//! stored stream, lists the chunk digests in `files[name].chunks`, and marks
//! itself v2 only when some file was split. Sparse files are stored compacted
//! (data extents back to back) with cocoon's sparse map in the config.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::chunks::restore::{ChunkRef, restore_file};
use crate::chunks::write::{Source, put_sources};
use crate::error::{Error, IoContext, Result};
use crate::formats::cocoon::config::{SnapshotConfig, SnapshotFile, media_type_for_cocoon_file};
use crate::formats::cocoon::tar::{Envelope, SNAPSHOT_JSON};
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::name::validate_file_name;
use crate::model::{Descriptor, annotation, media_type as mt};
use crate::store::layout::Layout;
use crate::store::writer::Writer;

/// Annotation: a chunk's zero-based index, on files of two or more chunks.
pub const CHUNK_INDEX: &str = "cocoonstack.chunk.index";
/// Annotation: a file's number of chunks, on files of two or more chunks.
pub const CHUNK_COUNT: &str = "cocoonstack.chunk.count";
/// Largest snapshot config read into memory (as cocoon-common).
pub const CONFIG_LIMIT: u64 = 64 << 20;
/// Files smaller than this are never compressed (as cocoon-common).
pub const COMPRESS_MIN: u64 = 1 << 20;
/// Largest chunk size cocoon-common accepts (4096 MiB).
pub const MAX_CHUNK_SIZE: u64 = 4096 << 20;

/// v1 (one layer per file) or v2 (chunked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One layer per file, for readers that predate chunks.
    V1,
    /// Files larger than the chunk size are cut into chunks.
    V2,
}

/// How to pack a snapshot directory.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PackOptions {
    /// v1 or v2.
    pub format: Format,
    /// v2: the chunk size (files larger than this are cut).
    pub chunk_size: u64,
    /// Free-text description, stored in the config and as an annotation.
    pub description: Option<String>,
    /// v2: zstd level for files of at least [`COMPRESS_MIN`] bytes.
    pub zstd_level: Option<i32>,
    /// [`pack_dir`] without a `snapshot.json`: read CPU and memory from a
    /// `config.json` in the directory, which must then be Cloud
    /// Hypervisor's (default). `false`: `config.json` is packed as a plain
    /// file and the config records no CPU or memory.
    pub ch_config: bool,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            format: Format::V2,
            chunk_size: 512 << 20,
            description: None,
            zstd_level: None,
            ch_config: true,
        }
    }
}

impl PackOptions {
    /// Sets the format.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
    /// Sets the v2 chunk size.
    pub fn chunk_size(mut self, size: u64) -> Self {
        self.chunk_size = size;
        self
    }
    /// Compresses files of at least [`COMPRESS_MIN`] bytes with zstd (v2 only).
    pub fn zstd_level(mut self, level: Option<i32>) -> Self {
        self.zstd_level = level;
        self
    }
    /// Sets the description.
    pub fn description(mut self, text: Option<String>) -> Self {
        self.description = text;
        self
    }
    /// Sets [`PackOptions::ch_config`].
    pub fn ch_config(mut self, read: bool) -> Self {
        self.ch_config = read;
        self
    }
}

/// One file of a snapshot directory, ready to pack.
struct DirFile {
    name: String,
    path: PathBuf,
    file: File,
    map: SparseMap,
    mode: u32,
}

/// Packs a snapshot directory (regular files only, in name order, as cocoon
/// exports them). A `snapshot.json` there is the envelope, not a file: its
/// fields go into the config; without one, CPU and memory are read from
/// Cloud Hypervisor's `config.json` when it is there (unless
/// [`PackOptions::ch_config`] is off). Each file is opened once, and the
/// `config.json` parsed is the one stored. Returns the manifest's
/// descriptor, ready for [`crate::Index::set_ref`].
///
/// # Errors
/// A name that is not a plain file name, a directory entry that is not a
/// regular file, a `snapshot.json` that is not cocoon's envelope, a
/// `config.json` that cannot be read or is not Cloud Hypervisor's (naming
/// what is wrong), a bad chunk size, I/O errors. Nothing references the
/// blobs written before an error; gc reclaims them.
pub fn pack_dir(
    writer: &Writer<'_>,
    dir: &Path,
    options: &PackOptions,
    progress: &dyn Progress,
) -> Result<Descriptor> {
    options.check()?;
    let (files, config) = read_dir(dir, options.ch_config)?;
    let sources: Vec<FileSource<'_>> = files
        .iter()
        .map(|f| FileSource {
            name: &f.name,
            path: &f.path,
            file: &f.file,
            map: &f.map,
            mode: f.mode,
        })
        .collect();
    progress.begin("packing", files.iter().map(|f| f.map.stored_len()).sum());
    let stored = store_files(writer, options, &sources, progress)?;
    progress.finish();
    write_snapshot_manifest(writer, options, config, &stored)
}

/// A file to store as one of a snapshot's files.
#[derive(Debug)]
pub(crate) struct FileSource<'a> {
    /// Plain file name.
    pub(crate) name: &'a str,
    /// Its path, for error messages.
    pub(crate) path: &'a Path,
    /// The open file.
    pub(crate) file: &'a File,
    /// Where its data is.
    pub(crate) map: &'a SparseMap,
    /// Permission bits.
    pub(crate) mode: u32,
}

/// Stores the blobs of a snapshot's files, as [`pack_dir`] does: each
/// file's stored stream compressed when [`PackOptions::level_for`] says so,
/// its layers' media type by its name, cut at the chunk size, all files at
/// once ([`put_sources`]). Returns them ready for
/// [`write_snapshot_manifest`], in order.
///
/// # Errors
/// As [`put_sources`].
pub(crate) fn store_files(
    writer: &Writer<'_>,
    options: &PackOptions,
    files: &[FileSource<'_>],
    progress: &dyn Progress,
) -> Result<Vec<StoredFile>> {
    let levels: Vec<Option<i32>> = files
        .iter()
        .map(|f| options.level_for(f.map.stored_len()))
        .collect();
    let media_types: Vec<String> = files
        .iter()
        .zip(&levels)
        .map(|(f, level)| layer_media_type(f.name, level.is_some()))
        .collect();
    let sources: Vec<Source<'_>> = files
        .iter()
        .zip(&levels)
        .zip(&media_types)
        .map(|((f, level), mt)| Source {
            path: f.path,
            file: f.file,
            map: f.map,
            media_type: mt,
            zstd_level: *level,
        })
        .collect();
    let stored = put_sources(writer, &sources, options.chunking(), progress)?;
    Ok(files
        .iter()
        .zip(stored)
        .zip(levels)
        .map(|((f, chunks), level)| StoredFile {
            name: f.name.to_string(),
            mode: f.mode,
            map: f.map.clone(),
            chunks,
            compressed: level.is_some(),
        })
        .collect())
}

/// One file of a snapshot whose blobs are stored: what
/// [`write_snapshot_manifest`] needs to describe it.
#[derive(Debug)]
pub(crate) struct StoredFile {
    /// Plain file name: the layers' title and the key in `files`.
    pub(crate) name: String,
    /// Permission bits.
    pub(crate) mode: u32,
    /// Where its stored stream lies in the logical file.
    pub(crate) map: SparseMap,
    /// Its blobs in order: the stored stream cut at the chunk size (one blob
    /// when not cut).
    pub(crate) chunks: Vec<Descriptor>,
    /// Whether each chunk is a zstd frame.
    pub(crate) compressed: bool,
}

impl PackOptions {
    /// Checks the options before anything is stored.
    pub(crate) fn check(&self) -> Result<()> {
        if self.format == Format::V2 && !(1..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(Error::InvalidArgument(format!(
                "chunk size {} is out of range: 1 byte to 4096 MiB",
                self.chunk_size
            )));
        }
        if self.format == Format::V1 && self.zstd_level.is_some() {
            return Err(Error::InvalidArgument(
                "compression needs --format v2 (v1 readers cannot decompress)".into(),
            ));
        }
        Ok(())
    }

    /// Where stored streams are cut: `None` for v1 (one blob per file).
    pub(crate) fn chunking(&self) -> Option<u64> {
        match self.format {
            Format::V1 => None,
            Format::V2 => Some(self.chunk_size),
        }
    }

    /// The zstd level for a file whose stored stream is `stored_len` bytes:
    /// none below [`COMPRESS_MIN`], as cocoon-common.
    pub(crate) fn level_for(&self, stored_len: u64) -> Option<i32> {
        self.zstd_level.filter(|_| stored_len >= COMPRESS_MIN)
    }
}

/// The media type of a file's layers: by its name, `+zstd` when compressed.
pub(crate) fn layer_media_type(name: &str, compressed: bool) -> String {
    let mt = media_type_for_cocoon_file(name);
    if compressed {
        format!("{mt}+zstd")
    } else {
        mt.to_string()
    }
}

/// Writes the config and manifest of a snapshot whose files are stored, in
/// `files` order, as cocoon-common lays them out: titles on every layer,
/// chunk annotations and `files[].chunks` on files of two or more chunks,
/// `files[].size` in v2, sparse maps of files with holes, and v2 markers
/// only if some file was cut or compressed. `config` carries the snapshot's
/// own fields (from `snapshot.json`, or a legacy manifest); `schemaVersion`,
/// `files`, `createdAt` (unless `config` has one) and (from `options`)
/// `description` are filled here.
pub(crate) fn write_snapshot_manifest(
    writer: &Writer<'_>,
    options: &PackOptions,
    mut config: SnapshotConfig,
    files: &[StoredFile],
) -> Result<Descriptor> {
    let encoded = files.iter().any(|f| f.chunks.len() > 1 || f.compressed);
    let v2 = options.format == Format::V2 && encoded;
    config.schema_version = if v2 { "v2" } else { "v1" }.into();
    if let Some(d) = &options.description {
        config.description = d.clone();
    }
    if config.created_at.is_empty() {
        config.created_at = crate::io::timestamp::now_rfc3339();
    }
    let mut layers = Vec::new();
    for f in files {
        let chunks = &f.chunks;
        let mut meta = SnapshotFile {
            mode: i64::from(f.mode),
            ..SnapshotFile::default()
        };
        if !f.map.is_dense() {
            meta.sparse_map = f.map.to_cocoon_json();
            meta.sparse_size = f.map.logical_size() as i64;
        }
        if options.format == Format::V2 {
            meta.size = f.map.stored_len() as i64;
        }
        if chunks.len() > 1 {
            meta.chunks = chunks.iter().map(|c| c.digest.to_string()).collect();
        }
        config.files.insert(f.name.clone(), meta);
        for (i, c) in chunks.iter().enumerate() {
            let mut layer = c.clone();
            layer
                .annotations
                .insert(annotation::TITLE.into(), f.name.clone());
            if chunks.len() > 1 {
                layer.annotations.insert(CHUNK_INDEX.into(), i.to_string());
                layer
                    .annotations
                    .insert(CHUNK_COUNT.into(), chunks.len().to_string());
            }
            layers.push(layer);
        }
    }
    let config_bytes = serde_json::to_vec(&config).expect("a config always serializes");
    let config_desc = writer.put_bytes(mt::SNAPSHOT_CONFIG, &config_bytes)?;
    let artifact_type = if v2 {
        mt::ARTIFACT_SNAPSHOT_V2
    } else {
        mt::ARTIFACT_SNAPSHOT
    };
    let mut annotations = BTreeMap::new();
    annotations.insert(annotation::CREATED.to_string(), config.created_at.clone());
    if !config.snapshot_id.is_empty() {
        annotations.insert(
            annotation::SNAPSHOT_ID.to_string(),
            config.snapshot_id.clone(),
        );
    }
    if !config.description.is_empty() {
        annotations.insert(
            annotation::DESCRIPTION.to_string(),
            config.description.clone(),
        );
    }
    crate::store::artifact::write_manifest(
        writer,
        artifact_type,
        &config_desc,
        &layers,
        &annotations,
    )
}

fn read_dir(dir: &Path, ch_config: bool) -> Result<(Vec<DirFile>, SnapshotConfig)> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).ctx("list directory", dir)? {
        let e = e.ctx("list directory", dir)?;
        let name = e.file_name().into_string().map_err(|n| {
            Error::InvalidArgument(format!("{}: file name {n:?} is not UTF-8", dir.display()))
        })?;
        names.push(name);
    }
    names.sort();
    let mut envelope = None;
    let mut files = Vec::new();
    for name in names {
        validate_file_name(&name)?;
        let path = dir.join(&name);
        let (file, md) = crate::io::durable::open_regular(&path)?;
        if name == SNAPSHOT_JSON {
            let raw = read_whole(
                &file,
                &path,
                crate::formats::cocoon::tar::ENVELOPE_LIMIT,
                SNAPSHOT_JSON,
            )?;
            let env: Envelope =
                serde_json::from_slice(&raw).map_err(|e| Error::InvalidDocument {
                    what: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            envelope = Some(env.config.to_snapshot_config());
            continue;
        }
        let map = SparseMap::of_file(&file).ctx("find data extents of", &path)?;
        files.push(DirFile {
            name,
            path,
            file,
            map,
            mode: md.permissions().mode() & 0o7777,
        });
    }
    let config = match envelope {
        Some(config) => config,
        None => {
            let mut config = SnapshotConfig::default();
            let ch = files.iter().find(|f| f.name == CH_CONFIG);
            if let (true, Some(f)) = (ch_config, ch) {
                vm_fields_from_ch_config(f, &mut config)?;
            }
            config
        }
    };
    Ok((files, config))
}

/// Cloud Hypervisor's VM config in a snapshot directory.
const CH_CONFIG: &str = "config.json";

/// Largest `config.json` read as Cloud Hypervisor's (theirs are a few KiB).
const CH_CONFIG_LIMIT: u64 = 16 << 20;

/// Reads a whole (small) file from an open descriptor, refusing one over `limit`.
fn read_whole(file: &File, path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .ctx("read", path)?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: format!("{what} ({})", path.display()),
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// CPU and memory from Cloud Hypervisor's `config.json` (`cpus.boot_vcpus`,
/// `memory.size`), read from the descriptor the file is stored from. A file
/// that cannot be read or is not such a config is an error that says what
/// is wrong: a snapshot must not be published with 0 vCPUs and 0 B memory
/// because its config went unread.
fn vm_fields_from_ch_config(f: &DirFile, config: &mut SnapshotConfig) -> Result<()> {
    let not_ch = |reason: String| Error::InvalidDocument {
        what: f.path.display().to_string(),
        reason: format!(
            "{reason}; it is not a Cloud Hypervisor config, so the snapshot's CPU and memory \
             are unknown. If this config.json is not Cloud Hypervisor's, pack with \
             --no-ch-config (it is then stored as a plain file), or add a snapshot.json"
        ),
    };
    // The stored bytes are read through the same descriptor later; read
    // from offset 0 without moving it.
    let mut raw = vec![0u8; f.map.logical_size().min(CH_CONFIG_LIMIT + 1) as usize];
    let n = read_at_full(&f.file, &mut raw).ctx("read", &f.path)?;
    raw.truncate(n);
    if raw.len() as u64 > CH_CONFIG_LIMIT {
        return Err(not_ch(format!("it is over {} MiB", CH_CONFIG_LIMIT >> 20)));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|e| not_ch(format!("it is not JSON ({e})")))?;
    let field = |pointer: &str, min: i64| -> Result<i64> {
        match v.pointer(pointer) {
            Some(x) => x.as_i64().filter(|&n| n >= min).ok_or_else(|| {
                not_ch(format!(
                    "{pointer} is {x}, not an integer of at least {min}"
                ))
            }),
            None => Err(not_ch(format!("it has no {pointer}"))),
        }
    };
    config.cpu = field("/cpus/boot_vcpus", 1)?;
    // Guest memory is `memory.size` plus any `memory.zones[].size`.
    let mut memory = field("/memory/size", 0)?;
    if let Some(zones) = v.pointer("/memory/zones").and_then(|z| z.as_array()) {
        for i in 0..zones.len() {
            memory = memory
                .checked_add(field(&format!("/memory/zones/{i}/size"), 1)?)
                .ok_or_else(|| not_ch("its memory sizes overflow".into()))?;
        }
    }
    if memory == 0 {
        return Err(not_ch(
            "its memory.size is 0 and it has no memory.zones".into(),
        ));
    }
    config.memory = memory;
    if config.hypervisor.is_empty() {
        config.hypervisor = "cloud-hypervisor".into();
    }
    Ok(())
}

/// Fills `buf` from offset 0 of `file` (less at end of file); returns the
/// bytes read.
fn read_at_full(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A snapshot's config and which blobs make each file, read and checked.
#[derive(Clone, Debug)]
pub struct SnapshotPlan {
    /// The config blob.
    pub config: SnapshotConfig,
    /// Each file: name, its chunks in order, where its data goes, its mode.
    pub files: Vec<PlannedFile>,
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

/// Reads a snapshot manifest's config and matches layers to files as
/// cocoon-common does: by title in layer order; a file with `chunks` takes
/// those digests from the manifest's layers.
///
/// # Errors
/// Not a snapshot, a config that is not one, titles that are not plain
/// file names, chunk digests not in the manifest, sizes that do not add up,
/// compressed chunks (not supported yet), bad sparse maps.
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
        let blobs: Vec<Descriptor> = if meta.chunks.is_empty() {
            vec![layer.clone()]
        } else {
            meta.chunks
                .iter()
                .map(|d| {
                    layers
                        .iter()
                        .find(|l| l.digest.to_string() == *d)
                        .cloned()
                        .ok_or_else(|| {
                            bad(format!(
                                "{name:?}: chunk {d} is not a layer of the manifest"
                            ))
                        })
                })
                .collect::<Result<_>>()?
        };
        let chunks = decoded_chunks(layout, name, blobs, meta.size).map_err(bad)?;
        let stored: u64 = chunks.iter().map(|c| c.decoded_len).sum();
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
    Ok(SnapshotPlan { config, files })
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
        let stored: u64 = chunks.iter().map(|c| c.decoded_len).sum();
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
    let sum: u64 = chunks.iter().map(|c| c.decoded_len).sum();
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
    let (file, _) = crate::io::durable::open_regular(&layout.blob_path(&blob.digest)).ok()?;
    let mut head = Vec::with_capacity(18);
    file.take(18).read_to_end(&mut head).ok()?;
    zstd::zstd_safe::get_frame_content_size(&head)
        .ok()
        .flatten()
}

/// Restores a snapshot's files into `dir` (created if absent): every byte
/// verified, holes restored, modes set, each file fsynced and renamed into
/// place. Existing files are refused unless `force`. Resumable: a rerun
/// after a kill or an error completes it without `force`, restoring every
/// file again and removing what the failed run left (see
/// [`crate::chunks::restore::MARKER`]).
///
/// # Errors
/// As [`plan`] and [`restore_file`].
pub fn unpack(
    layout: &Layout,
    manifest: &Descriptor,
    dir: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>> {
    layout.whole_graph(
        std::slice::from_ref(manifest),
        &format!("cannot unpack snapshot {}", manifest.digest),
    )?;
    let plan = plan(layout, manifest)?;
    let names: Vec<&str> = plan.files.iter().map(|f| f.name.as_str()).collect();
    let session = crate::chunks::resume::Session::begin(dir, &manifest.digest, &names, force)?;
    progress.begin(
        "unpacking",
        plan.files.iter().map(|f| f.map.stored_len()).sum(),
    );
    let mut out = Vec::new();
    for f in &plan.files {
        let replace = session.may_replace(&f.name);
        out.push(restore_file(
            layout, dir, &f.name, &f.map, &f.chunks, f.mode, replace, progress,
        )?);
    }
    progress.finish();
    session.finish()?;
    Ok(out)
}
