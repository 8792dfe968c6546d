//! Reading an ECI manifest into its files: each layer's role (from its
//! `org.lfedge.eci.role`, else the config or another file), its name, its
//! type, and how it is stored.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{CONFIG_TITLE, Format, INITRD_TITLE, KERNEL_TITLE};
use crate::error::{Error, Result};
use crate::model::eci::{self, DiskType, Role};
use crate::model::name::validate_file_name;
use crate::model::{Descriptor, Kind, classify, media_type as mt};
use crate::store::layout::Layout;

/// How a file is stored in its blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Packing {
    /// The blob is the file (artifacts format).
    Raw,
    /// The blob is a tar, maybe gzip-compressed, holding the file alone
    /// (legacy format).
    Tar,
}

/// One file of an ECI.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// What it is.
    pub role: Role,
    /// The file it unpacks to: its title (a checked plain file name), or
    /// for an untitled kernel, initrd or config, that role's title.
    pub name: String,
    /// For an additional disk, its index (`disk-N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// For a disk, its type (from its lfedge media type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<DiskType>,
    /// Its lfedge media type (the annotation, else the layer's own).
    pub eci_media_type: String,
    /// How it is stored.
    pub packing: Packing,
    /// Its blob.
    pub layer: Descriptor,
}

/// An ECI manifest read into its files.
#[derive(Clone, Debug, Serialize)]
pub struct EciImage {
    /// Artifacts, or legacy when any file is in a tar.
    pub format: Format,
    /// The files, in manifest order (layers, then a config file).
    pub parts: Vec<Part>,
}

impl EciImage {
    /// The file of `role` (the first, for disks and others).
    pub fn part(&self, role: Role) -> Option<&Part> {
        self.parts.iter().find(|p| p.role == role)
    }
}

/// Reads the ECI manifest `manifest` into its files. Layer roles come from
/// `org.lfedge.eci.role`; without one, a layer whose lfedge media type is
/// the ECI config is the config, any other is an other file. The config
/// descriptor is a file too when it is an ECI config (artifacts) or a tar
/// layer (legacy with a config file); an OCI or Docker image config (the
/// generated one) is not.
///
/// # Errors
/// Not an ECI; a layer compressed with zstd; an other file without a
/// title; a name that is not a plain file name (a hostile title); two
/// files with one name.
pub fn read(layout: &Layout, manifest: &Descriptor) -> Result<EciImage> {
    let bad = |reason: String| Error::InvalidDocument {
        what: format!("ECI {}", manifest.digest),
        reason,
    };
    let (_, doc) = layout.read_document(manifest)?;
    let kind = classify(&doc, Some(&manifest.media_type));
    if kind != Kind::Eci {
        return Err(bad(format!("it is a {kind}, not an ECI")));
    }
    let mut parts = Vec::new();
    let mut disks = 0usize;
    for layer in doc.layers.iter().flatten() {
        let part = part_of(layer, &mut disks).map_err(bad)?;
        parts.push(part);
    }
    if let Some(config) = &doc.config
        && !matches!(
            config.media_type.as_str(),
            mt::OCI_IMAGE_CONFIG | mt::DOCKER_CONFIG
        )
    {
        let mut part = part_of(config, &mut disks).map_err(bad)?;
        part.role = Role::Config;
        parts.push(part);
    }
    let mut names = BTreeSet::new();
    for p in &parts {
        validate_file_name(&p.name)
            .map_err(|e| bad(format!("{} layer {}: {e}", p.role, p.layer.digest)))?;
        if !names.insert(p.name.as_str()) {
            return Err(bad(format!("two files are named {:?}", p.name)));
        }
    }
    let format = if parts.iter().any(|p| p.packing == Packing::Tar) {
        Format::Legacy
    } else {
        Format::Artifacts
    };
    Ok(EciImage { format, parts })
}

/// The file one layer holds; `disks` counts the additional disks so far.
fn part_of(layer: &Descriptor, disks: &mut usize) -> std::result::Result<Part, String> {
    let eci_media_type = layer
        .annotations
        .get(eci::ANNOTATION_MEDIA_TYPE)
        .cloned()
        .unwrap_or_else(|| layer.media_type.clone());
    let role_value = layer
        .annotations
        .get(eci::ANNOTATION_ROLE)
        .map(String::as_str);
    let role = match role_value.and_then(Role::from_annotation) {
        Some(r) => r,
        None if eci_media_type == eci::CONFIG => Role::Config,
        None => Role::Other,
    };
    let packing =
        packing(&layer.media_type).map_err(|why| format!("layer {}: {why}", layer.digest))?;
    let index = (role == Role::AdditionalDisk).then(|| {
        *disks += 1;
        *disks - 1
    });
    let disk_type = match role {
        Role::RootDisk | Role::AdditionalDisk => {
            Some(DiskType::from_media_type(&eci_media_type).unwrap_or(DiskType::Raw))
        }
        _ => None,
    };
    let name = match (layer.title(), role) {
        (Some(t), _) => t.to_string(),
        (None, Role::Kernel) => KERNEL_TITLE.into(),
        (None, Role::Initrd) => INITRD_TITLE.into(),
        (None, Role::Config) => CONFIG_TITLE.into(),
        (None, Role::RootDisk) => format!("disk-root.{}", disk_type.unwrap_or(DiskType::Raw)),
        (None, Role::AdditionalDisk) => {
            format!(
                "disk-{}.{}",
                index.unwrap_or(0),
                disk_type.unwrap_or(DiskType::Raw)
            )
        }
        (None, Role::Other) => {
            return Err(format!(
                "layer {} ({}) has no title to name its file",
                layer.digest, layer.media_type
            ));
        }
    };
    Ok(Part {
        role,
        name,
        index,
        disk_type,
        eci_media_type,
        packing,
        layer: layer.clone(),
    })
}

/// How a layer of `media_type` holds its file.
fn packing(media_type: &str) -> std::result::Result<Packing, String> {
    match media_type {
        mt::OCI_LAYER_TAR
        | mt::OCI_LAYER_TAR_GZIP
        | mt::DOCKER_LAYER_TAR_GZIP
        | DOCKER_LAYER_TAR => Ok(Packing::Tar),
        mt::OCI_LAYER_TAR_ZSTD => Err(format!(
            "{media_type} layers are not read in an ECI (lf-edge writes gzip)"
        )),
        _ => Ok(Packing::Raw),
    }
}

/// Docker's uncompressed layer (lf-edge's `MimeTypeDockerLayerTar`).
const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
