//! Writing OCI 1.1 artifact manifests.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::model::{Descriptor, annotation, media_type};
use crate::store::writer::Writer;

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
