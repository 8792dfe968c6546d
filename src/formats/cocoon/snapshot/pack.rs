//! Packing: a directory's files stored as blobs (whole, or cut into
//! chunks, zstd-compressed or not) and the snapshot manifest over them.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use super::scan::{Scanned, read_dir};
use super::{CHUNK_COUNT, CHUNK_INDEX, COMPRESS_MIN, Format, MAX_CHUNK_SIZE, PackOptions};
use crate::chunks::write::{Source, put_sources};
use crate::error::{Error, Result};
use crate::formats::cocoon::config::{SnapshotConfig, SnapshotFile, media_type_for_cocoon_file};
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::{Descriptor, annotation, media_type as mt};
use crate::store::writer::Writer;

/// Packs a snapshot directory as cocoon exports one: its regular files, in
/// name order; symlinks (never followed), directories and other entries are
/// skipped with a warning. A `snapshot.json` there is the envelope, not a
/// file: its fields go into the config; without one, CPU, memory and NICs
/// are read from Cloud Hypervisor's `config.json` when it is there (unless
/// [`PackOptions::ch_config`] is off), and a warning says what is unknown.
/// Each file is opened once, and the `config.json` parsed is the one
/// stored.
///
/// # Errors
/// A name that is not a plain file name, a directory with no regular
/// file, a `snapshot.json` that is not cocoon's envelope, a
/// `config.json` that cannot be read or is not Cloud Hypervisor's (naming
/// what is wrong), a bad chunk size, I/O errors. Nothing references the
/// blobs written before an error; gc reclaims them.
pub fn pack(
    writer: &Writer<'_>,
    dir: &Path,
    options: &PackOptions,
    progress: &dyn Progress,
) -> Result<Packed> {
    options.check()?;
    let Scanned {
        files,
        config,
        warnings,
    } = read_dir(dir, options.ch_config)?;
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
    let manifest = write_snapshot_manifest(writer, options, config, &stored)?;
    Ok(Packed { manifest, warnings })
}

/// What [`pack`] wrote, and what to tell the user about it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Packed {
    /// The snapshot manifest's descriptor, ready for [`crate::Index::set_ref`].
    pub manifest: Descriptor,
    /// Entries skipped (not regular files, as cocoon's export skips them)
    /// and fields that could not be known (no `snapshot.json`).
    pub warnings: Vec<String>,
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

/// Stores the blobs of a snapshot's files, as [`pack`] does: each
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
