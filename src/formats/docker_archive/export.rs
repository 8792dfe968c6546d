//! Export: images as a docker archive, what skopeo's `docker-archive:`
//! writes and `docker load` reads (see the [module docs](super)).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use tar::EntryType;

use super::manifest::{self, Item};
use crate::error::{Error, Result};
use crate::formats::image::{Image, LayoutLoader, load};
use crate::formats::oci_archive::export::{put_blob, put_member, write_tar};
use crate::io::counting::Counting;
use crate::io::durable;
use crate::io::progress::Progress;
use crate::model::name::{split_tag, validate_ref};
use crate::model::platform::PlatformSpec;
use crate::model::{Descriptor, media_type};
use crate::store::layout::{Layout, looks_like_digest};

/// What a docker archive will hold: one `manifest.json` item per image
/// (refs naming the same image share it), and each config and layer once.
/// Build it with [`DockerArchivePlan::new`], write it with
/// [`DockerArchivePlan::write`].
#[derive(Clone, Debug)]
pub struct DockerArchivePlan {
    /// The `manifest.json` items, with the manifest each came from.
    items: Vec<(Descriptor, Item)>,
    /// Member names and the blobs they hold, each once, in member order.
    blobs: Vec<(String, Descriptor)>,
    /// `repositories`: name, tag, top layer ID.
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

impl DockerArchivePlan {
    /// Resolves `refs` (ref names or digests) to images: a Docker v2 or OCI
    /// image manifest as it is; an index (or Docker list) to its best image
    /// for `platform`, which an index needs. A ref name becomes the image's
    /// RepoTags entry (`:latest` added when it has no tag); a digest gives
    /// an untagged image.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `refs` is empty, an index is given
    /// without `platform` or has no image for it (naming the platforms it
    /// has), or a ref names no image (an artifact); what
    /// [`crate::formats::image::load`] refuses (a damaged or missing
    /// manifest or config, Docker schema 1); refs that do not exist; a
    /// layer that is missing or of the wrong size.
    pub fn new(
        layout: &Layout,
        refs: &[impl AsRef<str>],
        platform: Option<&PlatformSpec>,
    ) -> Result<DockerArchivePlan> {
        if refs.is_empty() {
            return Err(Error::InvalidArgument(
                "nothing to export: give at least one ref or digest".into(),
            ));
        }
        let mut plan = DockerArchivePlan {
            items: Vec::new(),
            blobs: Vec::new(),
            repositories: BTreeMap::new(),
        };
        for spec in refs {
            let spec = spec.as_ref();
            let tag = if looks_like_digest(spec) {
                None
            } else {
                validate_ref(spec)?;
                Some(manifest::repo_tag(spec))
            };
            let image = pick_image(layout, spec, platform)?;
            plan.add(layout, &image, tag)?;
        }
        Ok(plan)
    }

    fn add(&mut self, layout: &Layout, image: &Image, tag: Option<String>) -> Result<()> {
        let at = match self
            .items
            .iter()
            .position(|(m, _)| m.digest == image.manifest.digest)
        {
            Some(at) => at,
            None => {
                // Every layer must be there, whole, before anything is written.
                layout.whole_graph(std::slice::from_ref(&image.manifest), "cannot export")?;
                let config = &image.config_descriptor;
                let config_name = manifest::member_name(&config.digest, "json");
                self.blob(config_name.clone(), config);
                let mut layers = Vec::new();
                for layer in &image.layers {
                    let name = manifest::member_name(&layer.descriptor.digest, "tar");
                    self.blob(name.clone(), &layer.descriptor);
                    layers.push(name);
                }
                let item = Item {
                    config: config_name,
                    repo_tags: Some(Vec::new()),
                    layers,
                };
                self.items.push((image.manifest.clone(), item));
                self.items.len() - 1
            }
        };
        let Some(tag) = tag else { return Ok(()) };
        let tags = self.items[at].1.repo_tags.get_or_insert_with(Vec::new);
        if !tags.contains(&tag) {
            tags.push(tag.clone());
        }
        let diff_ids: Vec<_> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        let id = manifest::top_layer_id(&diff_ids, &image.config_descriptor.digest);
        let (repo, t) = split_tag(&tag);
        self.repositories
            .entry(repo.to_string())
            .or_default()
            .insert(t.unwrap_or("latest").to_string(), id);
        Ok(())
    }

    fn blob(&mut self, name: String, desc: &Descriptor) {
        if !self.blobs.iter().any(|(n, _)| *n == name) {
            self.blobs.push((name, desc.clone()));
        }
    }

    /// The manifests exported (one per image, in the order given).
    pub fn manifests(&self) -> Vec<&Descriptor> {
        self.items.iter().map(|(m, _)| m).collect()
    }

    /// The RepoTags written, over all images.
    pub fn repo_tags(&self) -> Vec<&str> {
        self.items
            .iter()
            .flat_map(|(_, i)| i.repo_tags.iter().flatten().map(String::as_str))
            .collect()
    }

    /// How many blobs (configs and layers) the archive holds.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// The bytes of all blobs together.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, b)| b.size).sum()
    }

    /// `manifest.json`: compact JSON, as skopeo writes it.
    pub fn manifest_json(&self) -> Vec<u8> {
        let items: Vec<&Item> = self.items.iter().map(|(_, i)| i).collect();
        serde_json::to_vec(&items).expect("items always serialize")
    }

    /// `repositories`: compact JSON.
    pub fn repositories_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.repositories).expect("a map always serializes")
    }

    /// Writes the archive to `writer` and returns it: `manifest.json`,
    /// `repositories`, then each config (`<hex>.json`) and layer
    /// (`<hex>.tar`), every blob checked against its digest on the way out.
    /// `progress` counts blob bytes (total: [`DockerArchivePlan::blob_bytes`]).
    ///
    /// # Errors
    /// A blob that is missing or damaged; I/O errors writing. After an
    /// error the stream is incomplete and every tar reader refuses it.
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
        let regular = EntryType::Regular;
        put_member(out, "manifest.json", 0o644, regular, &self.manifest_json())?;
        put_member(
            out,
            "repositories",
            0o644,
            regular,
            &self.repositories_json(),
        )?;
        progress.begin("exporting", self.blob_bytes());
        for (name, blob) in &self.blobs {
            put_blob(layout, out, name, blob, progress)?;
        }
        progress.finish();
        Ok(())
    }
}

/// The image `spec` names: a manifest as it is, an index's best match for
/// `platform`.
fn pick_image(layout: &Layout, spec: &str, platform: Option<&PlatformSpec>) -> Result<Image> {
    let loader = LayoutLoader::new(layout, spec)?;
    let root = loader.root_descriptor().clone();
    let loaded = load(&loader)?;
    if !media_type::is_index(&root.media_type) {
        return loaded.images.into_iter().next().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{spec} is not a container image ({}); a docker archive holds images",
                root.media_type
            ))
        });
    }
    let Some(wanted) = platform else {
        return Err(Error::InvalidArgument(format!(
            "{spec} is an index and a docker archive holds single images: give --platform \
             (it has: {})",
            loaded.platforms_listed()
        )));
    };
    loaded.best_for(spec, wanted).cloned()
}

/// Writes `plan`'s archive into the file `dest` as the layout's own files
/// are published (temp file beside it, fsync, rename; nothing left on
/// error). Returns the bytes written.
///
/// # Errors
/// As [`DockerArchivePlan::write`], and I/O errors creating, syncing or
/// renaming.
pub fn export_docker_archive_file(
    layout: &Layout,
    plan: &DockerArchivePlan,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<u64> {
    durable::write_file_replacing(dest, |out| plan.write(layout, out, progress).map(drop))
}
