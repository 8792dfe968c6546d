//! Reading a root into the images it reaches, and checking their layers.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use serde::Deserialize;

use super::Loader;
use crate::error::{Error, Result};
use crate::io::digest::{Algorithm, Digest};
use crate::model::platform::{PlatformSpec, rank};
use crate::model::{Descriptor, Document, Platform, media_type as mt};

/// How deep indexes may nest under the root.
pub const MAX_DEPTH: usize = 16;

/// Largest image config read (configs are a few KiB).
const CONFIG_LIMIT: u64 = 4 << 20;

/// Docker's schema 1 manifests (signed or not), which this reader refuses.
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// What epoch-store reads of an image config (OCI or Docker).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// OS version.
    #[serde(rename = "os.version", default)]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(rename = "os.features", default)]
    pub os_features: Option<Vec<String>>,
    /// The layers' uncompressed digests, in order.
    #[serde(default)]
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The diffID of each layer.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One filesystem layer of an image.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The layer blob.
    pub descriptor: Descriptor,
    /// Its diffID from the config (the digest of the uncompressed tar).
    pub diff_id: Digest,
}

/// A platform-specific image.
#[derive(Clone, Debug)]
pub struct Image {
    /// Its manifest.
    pub manifest: Descriptor,
    /// Its platform: from its index entry, else from its config.
    pub platform: Platform,
    /// The config blob.
    pub config_descriptor: Descriptor,
    /// The config, parsed.
    pub config: ImageConfig,
    /// Its layers, bottom first.
    pub layers: Vec<Layer>,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The images a root reaches, in the order of its (nested) indexes.
#[derive(Clone, Debug)]
pub struct LoadedIndex {
    /// The root's digest, if the loader knows it.
    pub root: Option<Digest>,
    /// The images.
    pub images: Vec<Image>,
}

impl LoadedIndex {
    /// The best image for `wanted`, by containerd's rules.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when none matches, naming `what` (the
    /// index, for the message) and the platforms it has.
    pub fn best_for(&self, what: &str, wanted: &PlatformSpec) -> Result<&Image> {
        self.select_by_platform(wanted)
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{what} has no image for platform {wanted}; it has: {}",
                    self.platforms_listed()
                ))
            })
    }

    /// The images' platforms, `linux/amd64, linux/arm64/v8` (`none` when
    /// there are none), for messages.
    pub fn platforms_listed(&self) -> String {
        if self.images.is_empty() {
            return "none".into();
        }
        let list: Vec<String> = self
            .images
            .iter()
            .map(|i| crate::model::platform::describe(&i.platform))
            .collect();
        list.join(", ")
    }

    /// The images for `wanted`, best match first, by containerd's rules.
    pub fn select_by_platform(&self, wanted: &PlatformSpec) -> Vec<&Image> {
        let entries: Vec<Descriptor> = self
            .images
            .iter()
            .map(|i| {
                let mut d = i.manifest.clone();
                d.platform = Some(i.platform.clone());
                d
            })
            .collect();
        rank(&entries, wanted)
            .into_iter()
            .map(|d| {
                let at = entries
                    .iter()
                    .position(|e| std::ptr::eq(e, d))
                    .expect("ranked from these");
                &self.images[at]
            })
            .collect()
    }
}

/// Reads the root of `loader` into its images: an OCI index or Docker list
/// (nested to [`MAX_DEPTH`]), or a bare manifest (a one-entry index).
/// Every manifest and config is verified (by the loader) and parsed;
/// entries that are not image manifests (artifacts, attestations) are
/// passed over.
///
/// # Errors
/// A Docker schema 1 manifest ([`Error::InvalidDocument`] saying to
/// convert it); a document that is not a manifest or index; nesting past
/// [`MAX_DEPTH`]; a config that is not an image config or whose
/// `diff_ids` do not match its layers; the loader's errors. An image
/// reached twice is loaded once.
pub fn load(loader: &dyn Loader) -> Result<LoadedIndex> {
    let (raw, media_type) = loader.root()?;
    let mut images = Vec::new();
    let mut seen = HashSet::new();
    let root = loader.root_digest();
    walk(loader, &raw, &media_type, None, 0, &mut seen, &mut images)?;
    Ok(LoadedIndex { root, images })
}

fn walk(
    loader: &dyn Loader,
    raw: &[u8],
    media_type: &str,
    entry: Option<&Descriptor>,
    depth: usize,
    seen: &mut HashSet<Digest>,
    out: &mut Vec<Image>,
) -> Result<()> {
    let what = entry.map_or_else(|| "the root".to_string(), |e| e.digest.to_string());
    let bad = |reason: String| Error::InvalidDocument {
        what: what.clone(),
        reason,
    };
    if depth > MAX_DEPTH {
        return Err(bad(format!("indexes nest more than {MAX_DEPTH} deep")));
    }
    refuse_schema1(raw, media_type).map_err(bad)?;
    let declared = mt::is_document(media_type).then_some(media_type);
    let doc = Document::parse(raw, declared).map_err(|e| bad(e.to_string()))?;
    if let Some(children) = &doc.manifests {
        for child in children {
            // The same document under two entries is one image (content
            // addressing makes a true cycle impossible; the depth limit
            // bounds the rest).
            if !seen.insert(child.digest.clone()) {
                continue;
            }
            if !mt::is_document(&child.media_type) {
                continue; // not a manifest or index: nothing to load
            }
            let bytes = loader.manifest(child)?;
            walk(
                loader,
                &bytes,
                &child.media_type,
                Some(child),
                depth + 1,
                seen,
                out,
            )?;
        }
        return Ok(());
    }
    let manifest = match entry {
        Some(e) => e.clone(),
        None => Descriptor::new(
            media_type,
            Digest::of_bytes(Algorithm::Sha256, raw),
            raw.len() as u64,
        ),
    };
    if let Some(image) = image_of(
        loader,
        &doc,
        manifest,
        entry.and_then(|e| e.platform.clone()),
    )? {
        out.push(image);
    }
    Ok(())
}

/// Refuses Docker schema 1, by media type or by `schemaVersion` 1.
fn refuse_schema1(raw: &[u8], media_type: &str) -> std::result::Result<(), String> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u64>,
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let head: Option<Head> = serde_json::from_slice(raw).ok();
    let own = head.as_ref().and_then(|h| h.media_type.as_deref());
    if DOCKER_SCHEMA1.contains(&media_type)
        || own.is_some_and(|m| DOCKER_SCHEMA1.contains(&m))
        || head.as_ref().and_then(|h| h.schema_version) == Some(1)
    {
        return Err(
            "a Docker schema 1 manifest, which this reader does not take (it has no \
                    config and no layer digests it can check); convert it first, e.g. \
                    `skopeo copy --format v2s2`"
                .into(),
        );
    }
    Ok(())
}

/// The image a manifest describes, or `None` for one that is not an
/// image (an artifact: its config is not an image config).
fn image_of(
    loader: &dyn Loader,
    doc: &Document,
    manifest: Descriptor,
    entry_platform: Option<Platform>,
) -> Result<Option<Image>> {
    let Some(config_descriptor) = doc.config.clone() else {
        return Ok(None);
    };
    if !matches!(
        config_descriptor.media_type.as_str(),
        mt::OCI_IMAGE_CONFIG | mt::DOCKER_CONFIG
    ) {
        return Ok(None);
    }
    let bad = |reason: String| Error::InvalidDocument {
        what: format!("image {}", manifest.digest),
        reason,
    };
    if config_descriptor.size > CONFIG_LIMIT {
        return Err(bad(format!(
            "its config is {} bytes, over {CONFIG_LIMIT}",
            config_descriptor.size
        )));
    }
    let mut raw = Vec::new();
    loader
        .blob(&config_descriptor)?
        .read_to_end(&mut raw)
        .map_err(|e| Error::stream("read", format!("config {}", config_descriptor.digest), e))?;
    let config: ImageConfig = serde_json::from_slice(&raw)
        .map_err(|e| bad(format!("its config is not an image config: {e}")))?;
    let layers = doc.layers.clone().unwrap_or_default();
    if layers.len() != config.rootfs.diff_ids.len() {
        return Err(bad(format!(
            "it has {} layers but its config lists {} diff_ids",
            layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let layers = layers
        .into_iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(descriptor, id)| {
            let diff_id: Digest = id
                .parse()
                .map_err(|e| bad(format!("diff_id {id:?} is not a digest: {e}")))?;
            Ok(Layer {
                descriptor,
                diff_id,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let platform = entry_platform.unwrap_or_else(|| Platform {
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        os_version: config.os_version.clone(),
        os_features: config.os_features.clone(),
        variant: config.variant.clone(),
    });
    Ok(Some(Image {
        annotations: doc.annotations.clone(),
        manifest,
        platform,
        config_descriptor,
        config,
        layers,
    }))
}

impl Image {
    /// Reads every layer: its blob must match its digest and size (the
    /// loader checks), and its uncompressed tar (gzip and zstd decoded,
    /// plain tar as it is) must hash to its diffID.
    ///
    /// # Errors
    /// [`Error::InvalidDocument`] naming the layer whose diffID does not
    /// match or whose media type is not a layer this reader can open; the
    /// loader's errors (a digest or size mismatch among them).
    pub fn verify_layers(&self, loader: &dyn Loader) -> Result<()> {
        for (i, l) in self.layers.iter().enumerate() {
            let what = format!(
                "layer {i} ({}) of image {}",
                l.descriptor.digest, self.manifest.digest
            );
            let blob = loader.blob(&l.descriptor)?;
            let m = l.descriptor.media_type.as_str();
            let plain: Box<dyn Read + '_> = if m.ends_with("+gzip") || m.ends_with(".tar.gzip") {
                Box::new(flate2::read::MultiGzDecoder::new(blob))
            } else if m.ends_with("+zstd") {
                let d = zstd::stream::read::Decoder::new(blob)
                    .map_err(|e| Error::stream("decompress", what.clone(), e))?;
                Box::new(d)
            } else if m.ends_with(".tar") {
                blob
            } else {
                return Err(Error::InvalidDocument {
                    what,
                    reason: format!("{m} is not a layer type this reader opens"),
                });
            };
            let got = crate::io::hash::hash_reader(l.diff_id.algorithm(), plain)
                .map_err(|e| Error::stream("read", what.clone(), e))?;
            if got != l.diff_id {
                return Err(Error::InvalidDocument {
                    what,
                    reason: format!(
                        "it uncompresses to {got}, but the config's diff_id is {}",
                        l.diff_id
                    ),
                });
            }
        }
        Ok(())
    }
}
