//! Import: the members of a docker archive collected while the tar is read
//! (by [`crate::formats::oci_archive::import_archive`], which reads every
//! archive), then one Docker v2 manifest per `manifest.json` item, tagged
//! by its RepoTags (see the [module docs](super)).

use std::collections::HashMap;
use std::io::Read;

use super::DOCKER_ARCHIVE;
use super::manifest::{self, Item};
use crate::error::{Error, Result};
use crate::formats::oci_archive::refs::{ImportOptions, ImportedRef, check_complete, plan_refs};
use crate::formats::oci_archive::tar_in::normalize;
use crate::io::digest::Digest;
use crate::model::name::RefName;
use crate::model::{Descriptor, media_type};
use crate::store::index::Index;
use crate::store::layout::{DOCUMENT_LIMIT, Layout};
use crate::store::writer::Writer;

/// How many symlinks are followed from a name in `manifest.json`.
const LINK_DEPTH: usize = 8;

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidDocument {
        what: DOCKER_ARCHIVE.to_string(),
        reason: reason.into(),
    }
}

/// The members of a docker archive: regular files stored as blobs (by
/// name), symlinks (by name, their targets resolved inside the archive),
/// `manifest.json`.
#[derive(Debug, Default)]
pub(crate) struct Members {
    files: HashMap<String, Descriptor>,
    links: HashMap<String, String>,
    manifest: Option<Vec<u8>>,
    repositories: bool,
}

impl Members {
    /// The legacy per-layer metadata of docker save before 1.10's format
    /// (`<id>/json`, `<id>/VERSION`): read over, not stored; manifest.json
    /// describes the image.
    pub(crate) fn is_legacy_metadata(name: &str) -> bool {
        matches!(name.split_once('/'), Some((id, "json" | "VERSION")) if !id.contains('/'))
    }

    fn claim(&self, name: &str) -> Result<()> {
        if self.files.contains_key(name) || self.links.contains_key(name) {
            return Err(bad(format!(
                "member {name:?} appears twice; which one is meant cannot be told"
            )));
        }
        Ok(())
    }

    /// A regular member, stored as `desc`.
    pub(crate) fn add_file(&mut self, name: &str, desc: Descriptor) -> Result<()> {
        self.claim(name)?;
        self.files.insert(name.to_string(), desc);
        Ok(())
    }

    /// A `blobs/<alg>/<hex>` member (docker save 25 names its layers so),
    /// already checked against its name; given twice it is the same blob.
    pub(crate) fn add_blob(&mut self, name: &str, digest: &Digest, size: u64) -> Result<()> {
        let desc = Descriptor::new(media_type::GENERIC, digest.clone(), size);
        self.files.insert(name.to_string(), desc);
        Ok(())
    }

    /// A symlink (docker save links `<id>/layer.tar` to the copy of a layer
    /// it wrote already; skopeo links every one to `../<hex>.tar`). Its
    /// target is resolved against its directory and must stay inside.
    pub(crate) fn add_link(&mut self, name: &str, target: &str) -> Result<()> {
        self.claim(name)?;
        let resolved = resolve_link(name, target).ok_or_else(|| {
            bad(format!(
                "member {name:?} is a symbolic link to {target:?}, which leads outside the \
                 archive"
            ))
        })?;
        self.links.insert(name.to_string(), resolved);
        Ok(())
    }

    /// `manifest.json` or `repositories` (which docker load and skopeo
    /// read over when manifest.json is there, and so does this import).
    pub(crate) fn add_metadata(&mut self, name: &str, body: Vec<u8>) -> Result<()> {
        let twice = || bad(format!("member {name:?} appears twice"));
        if name == "manifest.json" {
            if self.manifest.replace(body).is_some() {
                return Err(twice());
            }
        } else if std::mem::replace(&mut self.repositories, true) {
            return Err(twice());
        }
        Ok(())
    }

    /// Whether a `manifest.json` was read.
    pub(crate) fn has_manifest(&self) -> bool {
        self.manifest.is_some()
    }

    /// The stored member `name` (as `manifest.json` gives it, in `field`),
    /// symlinks followed.
    fn resolve(&self, field: &str, name: &str) -> Result<&Descriptor> {
        let mut at = normalize(name.as_bytes()).map_err(|why| {
            bad(format!(
                "manifest.json's {field} names {name:?}, which is refused: {why}"
            ))
        })?;
        for _ in 0..LINK_DEPTH {
            if let Some(desc) = self.files.get(&at) {
                return Ok(desc);
            }
            match self.links.get(&at) {
                Some(next) => at = next.clone(),
                None => break,
            }
        }
        Err(bad(format!(
            "manifest.json's {field} names {name:?}, which is not a file in the archive \
             (the archive is incomplete)"
        )))
    }

    /// Stores a Docker v2 manifest for each item of `manifest.json` and
    /// tags them. Called when the tar has been read.
    pub(crate) fn finish(
        self,
        writer: &Writer<'_>,
        options: &ImportOptions,
    ) -> Result<Vec<ImportedRef>> {
        let raw = self
            .manifest
            .as_deref()
            .expect("finish is called with a manifest");
        let items = manifest::parse(raw)?;
        let mut archive = Index::new();
        let mut names: HashMap<String, Digest> = HashMap::new();
        for item in &items {
            let desc = self.image(writer, item)?;
            let tags = item.repo_tags.as_deref().unwrap_or_default();
            if tags.is_empty() {
                archive.add_untagged(&desc);
            }
            for tag in tags {
                let name = manifest::ref_name(tag)?;
                if let Some(other) = names.insert(name.clone(), desc.digest.clone())
                    && other != desc.digest
                {
                    return Err(bad(format!(
                        "manifest.json tags two different images {name:?} ({other} and {})",
                        desc.digest
                    )));
                }
                archive.set_ref(&RefName::new(name)?, &desc);
            }
        }
        check_complete(writer.layout(), archive.entries())?;
        writer.update_index(|ours| plan_refs(ours, &archive, options))
    }

    /// One item's manifest: its config (JSON, with as many diffIDs as the
    /// item has layers) and layers (an uncompressed one must hash to its
    /// diffID), stored; returns the manifest's descriptor.
    fn image(&self, writer: &Writer<'_>, item: &Item) -> Result<Descriptor> {
        let layout = writer.layout();
        let config = self.resolve("Config", &item.config)?;
        let raw = layout.read_blob(config, DOCUMENT_LIMIT)?;
        let diff_ids = manifest::diff_ids(&raw, &item.config, &config.digest)?;
        if diff_ids.len() != item.layers.len() {
            return Err(bad(format!(
                "the config {} ({}) has {} diffIDs, and manifest.json lists {} layers for it",
                item.config,
                config.digest,
                diff_ids.len(),
                item.layers.len()
            )));
        }
        let mut layers = Vec::with_capacity(item.layers.len());
        for (name, diff_id) in item.layers.iter().zip(&diff_ids) {
            let blob = self.resolve("Layers", name)?;
            let media = layer_type(layout, blob, name)?;
            if media == media_type::DOCKER_LAYER_TAR && blob.digest != *diff_id {
                return Err(bad(format!(
                    "layer {name} is an uncompressed tar hashing to {}, but the config gives \
                     its diffID as {diff_id}",
                    blob.digest
                )));
            }
            layers.push(Descriptor::new(media, blob.digest.clone(), blob.size));
        }
        let config = Descriptor::new(
            media_type::DOCKER_CONFIG,
            config.digest.clone(),
            config.size,
        );
        writer.put_bytes(
            media_type::DOCKER_MANIFEST,
            &manifest::schema2(&config, &layers),
        )
    }
}

/// `target` of the link `name` as a member name, or `None` when it is
/// absolute or climbs out of the archive.
fn resolve_link(name: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// A layer's media type, from its first bytes: gzip, else a plain tar.
/// zstd, bzip2 and xz layers are refused (a Docker v2 manifest has no type
/// this project's readers open for them).
fn layer_type(layout: &Layout, blob: &Descriptor, name: &str) -> Result<&'static str> {
    let path = layout.blob_path(&blob.digest);
    let mut head = Vec::with_capacity(6);
    std::fs::File::open(&path)
        .and_then(|f| f.take(6).read_to_end(&mut head))
        .map_err(|e| Error::io("read", &path, e))?;
    let other = match head.as_slice() {
        [0x1f, 0x8b, ..] => return Ok(media_type::DOCKER_LAYER_TAR_GZIP),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        [b'B', b'Z', b'h', ..] => "bzip2",
        [0xfd, b'7', b'z', b'X', b'Z', 0] => "xz",
        _ => return Ok(media_type::DOCKER_LAYER_TAR),
    };
    Err(bad(format!(
        "layer {name} ({}) is compressed with {other}; only plain and gzip tar layers can \
         be imported into a Docker v2 manifest",
        blob.digest
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_inside_the_archive_only() {
        let ok = |n: &str, t: &str| resolve_link(n, t);
        assert_eq!(
            ok("a/layer.tar", "../b/layer.tar").as_deref(),
            Some("b/layer.tar")
        );
        assert_eq!(ok("a/layer.tar", "../x.tar").as_deref(), Some("x.tar"));
        assert_eq!(ok("a/layer.tar", "./y").as_deref(), Some("a/y"));
        assert_eq!(ok("a/layer.tar", "../../x"), None);
        assert_eq!(ok("x", "../y"), None);
        assert_eq!(ok("a/b", "/etc/passwd"), None);
        assert!(Members::is_legacy_metadata("abc/json"));
        assert!(Members::is_legacy_metadata("abc/VERSION"));
        assert!(!Members::is_legacy_metadata("abc/layer.tar"));
        assert!(!Members::is_legacy_metadata("a/b/json"));
    }
}
