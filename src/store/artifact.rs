//! Writing OCI 1.1 artifact manifests, and storing files as one artifact
//! ([`plan_files`], [`store_files`]: what `epoch-store add` does).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::input::open_input;
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::{Descriptor, annotation, media_type};
use crate::store::writer::{StoredRange, Writer};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    artifact_type: &'a str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// Writes an OCI 1.1 artifact manifest over `layers` (already stored), with
/// the empty config, the given artifact type (default
/// [`media_type::ARTIFACT_FILES`]) and annotations (a `created` time is added
/// unless present). Returns the manifest's descriptor, with its artifact type,
/// ready for [`crate::Index::set_ref`].
///
/// The manifest is serialized once, here; its bytes are what is stored and
/// hashed, and are never produced again.
///
/// # Errors
/// I/O errors writing the config or manifest blob.
pub fn files_manifest(
    writer: &Writer<'_>,
    layers: &[Descriptor],
    artifact_type: Option<&str>,
    annotations: Option<BTreeMap<String, String>>,
) -> Result<Descriptor> {
    let config = writer.put_bytes(media_type::OCI_EMPTY, b"{}")?;
    let artifact_type = artifact_type.unwrap_or(media_type::ARTIFACT_FILES);
    let mut annotations = annotations.unwrap_or_default();
    annotations
        .entry(annotation::CREATED.to_string())
        .or_insert_with(crate::io::timestamp::now_rfc3339);
    write_manifest(writer, artifact_type, &config, layers, &annotations)
}

/// Writes an OCI image manifest with `artifactType` over a config and
/// layers already stored, and returns its descriptor (with the artifact
/// type). The bytes serialized here are the manifest's identity; annotations
/// are sorted, so the same inputs always give the same digest.
///
/// # Errors
/// I/O errors writing the manifest blob.
pub fn write_manifest(
    writer: &Writer<'_>,
    artifact_type: &str,
    config: &Descriptor,
    layers: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<Descriptor> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: media_type::OCI_MANIFEST,
        artifact_type,
        config,
        layers,
        annotations,
    };
    let bytes = serde_json::to_vec(&manifest).expect("a manifest always serializes");
    let mut desc = writer.put_bytes(media_type::OCI_MANIFEST, &bytes)?;
    desc.artifact_type = Some(artifact_type.to_string());
    Ok(desc)
}

/// One file checked and opened by [`plan_files`].
#[derive(Debug)]
struct PlannedFile {
    path: PathBuf,
    title: String,
    file: File,
    len: u64,
}

/// Files checked and opened by [`plan_files`], for [`store_files`].
#[derive(Debug)]
pub struct FilesPlan {
    files: Vec<PlannedFile>,
}

impl FilesPlan {
    /// How many files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Their sizes, summed.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.len).sum()
    }
}

/// Checks and opens the files of a files artifact (what `epoch-store add`
/// stores), before anything is written: each is titled with its file name,
/// which must be UTF-8 and unique among them, and must be a regular file,
/// opened (symlinks followed, FIFOs never waited on) by
/// [`crate::io::input::open_input`]. The files stay open until
/// [`store_files`] reads them.
///
/// # Errors
/// [`Error::InvalidArgument`] for a name that cannot be a title or is
/// there twice; [`Error::NotRegularFile`]; I/O errors opening a file.
pub fn plan_files(paths: &[PathBuf]) -> Result<FilesPlan> {
    let mut titles = BTreeSet::new();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let title = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{}: not a file name epoch-store can use as a title (UTF-8 required)",
                    path.display()
                ))
            })?
            .to_string();
        // The title becomes a file name again when the artifact is unpacked.
        crate::model::name::validate_file_name(&title)?;
        if !titles.insert(title.clone()) {
            return Err(Error::InvalidArgument(format!(
                "two files are named {title:?}; layer titles must be unique, rename one"
            )));
        }
        let (file, md) = open_input(path)?;
        files.push(PlannedFile {
            path: path.clone(),
            title,
            file,
            len: md.len(),
        });
    }
    Ok(FilesPlan { files })
}

/// Options for [`store_files`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FilesOptions {
    /// The manifest's artifactType (default [`media_type::ARTIFACT_FILES`]).
    pub artifact_type: String,
    /// Every layer's media type; `None` (the default) takes
    /// [`FilesOptions::media_type_by_title`] of each layer's title.
    pub media_type: Option<String>,
    /// A layer's media type from its title, when `media_type` is `None`
    /// (default: [`media_type::GENERIC`] for every title; the CLI passes
    /// cocoonstack's names, `formats::cocoon::config::media_type_for_cocoon_file`).
    pub media_type_by_title: fn(&str) -> &'static str,
}

impl Default for FilesOptions {
    fn default() -> Self {
        FilesOptions {
            artifact_type: media_type::ARTIFACT_FILES.to_string(),
            media_type: None,
            media_type_by_title: |_| media_type::GENERIC,
        }
    }
}

impl FilesOptions {
    /// Sets [`FilesOptions::artifact_type`].
    pub fn artifact_type(mut self, artifact_type: String) -> Self {
        self.artifact_type = artifact_type;
        self
    }

    /// Sets [`FilesOptions::media_type`].
    pub fn media_type(mut self, media_type: Option<String>) -> Self {
        self.media_type = media_type;
        self
    }

    /// Sets [`FilesOptions::media_type_by_title`].
    pub fn media_type_by_title(mut self, by_title: fn(&str) -> &'static str) -> Self {
        self.media_type_by_title = by_title;
        self
    }
}

/// What [`store_files`] stored.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FilesArtifact {
    /// The manifest's descriptor (with its artifact type), ready for
    /// [`crate::Index::set_ref`] or [`crate::Index::add_untagged`].
    pub manifest: Descriptor,
    /// One layer per file, in the order given, each titled
    /// ([`annotation::TITLE`]) with the file's name.
    pub layers: Vec<Descriptor>,
    /// The files' bytes, summed.
    pub size: u64,
}

/// Stores the files of `plan` as one OCI 1.1 artifact: one layer per file,
/// titled with its name, hashed and written in parallel (each byte read
/// once), then the manifest over them ([`files_manifest`]). Progress is one
/// phase, `adding`, of the files' total size. Nothing is tagged: the caller
/// puts the manifest in `index.json`.
///
/// # Errors
/// I/O errors reading a file or writing a blob; blobs written before the
/// error are unreferenced, and gc reclaims them.
pub fn store_files(
    writer: &Writer<'_>,
    plan: &FilesPlan,
    options: &FilesOptions,
    progress: &dyn Progress,
) -> Result<FilesArtifact> {
    let size = plan.size();
    progress.begin("adding", size);
    let layers = plan
        .files
        .par_iter()
        .map(|f| {
            let mt = match &options.media_type {
                Some(mt) => mt.as_str(),
                None => (options.media_type_by_title)(&f.title),
            };
            let map = SparseMap::dense(f.len);
            let range = StoredRange {
                file: &f.file,
                path: &f.path,
                map: &map,
                offset: 0,
                len: f.len,
            };
            let mut d = writer.put_stored(mt, range, None, progress)?;
            d.annotations
                .insert(annotation::TITLE.into(), f.title.clone());
            Ok(d)
        })
        .collect::<Result<Vec<Descriptor>>>()?;
    progress.finish();
    let manifest = files_manifest(writer, &layers, Some(&options.artifact_type), None)?;
    Ok(FilesArtifact {
        manifest,
        layers,
        size,
    })
}
