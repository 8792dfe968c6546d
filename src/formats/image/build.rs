//! Building images on a base (seed 001's `AppendLayer` and `SetPlatform`,
//! the job of zeroimage): new layers appended to each chosen image of a
//! base, the config's `rootfs.diff_ids`, history, entrypoint, command,
//! environment and platform updated, and a new manifest written for each
//! (or an index of them when more than one is built). Nothing of the base
//! is rewritten: its layers are referenced as they are.

mod config;
mod layer;

pub use layer::{LayerSource, NewLayer};

use serde_json::{Map, Value};

use super::{LayoutLoader, load};
use crate::error::{Error, Result};
use crate::model::platform::PlatformSpec;
use crate::model::{Descriptor, Platform, media_type as mt};
use crate::store::layout::DOCUMENT_LIMIT;
use crate::store::writer::Writer;

/// The gzip level of the layers `build` makes, chosen by measurement
/// (`benches/images.sh build`, docs/performance.md).
pub const DEFAULT_LEVEL: u32 = 1;

/// The base that is no image at all: an empty root filesystem.
pub const SCRATCH: &str = "scratch";

/// What [`build`] does to each image.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct BuildOptions {
    /// The platforms to build for: the best image of the base for each. Empty:
    /// every image of the base (for `scratch`: this host's platform).
    pub platforms: Vec<PlatformSpec>,
    /// The layers to append, bottom first.
    pub layers: Vec<LayerSource>,
    /// The new `Entrypoint`; when set without `cmd`, the base's `Cmd` is
    /// dropped (as Docker does when an entrypoint is set).
    pub entrypoint: Option<Vec<String>>,
    /// The new `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// Environment variables set (replacing one of the same name).
    pub env: Vec<(String, String)>,
    /// The config's `created` and the new history entries' time (RFC 3339).
    pub created: String,
    /// gzip level of the layers made here (0-12, libdeflate's).
    pub level: u32,
}

/// One image [`build`] wrote.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    /// Its manifest.
    pub manifest: Descriptor,
    /// Its platform.
    pub platform: Platform,
    /// The base image's manifest it was built on (`None` on scratch).
    pub base: Option<Descriptor>,
}

/// What [`build`] wrote.
#[derive(Clone, Debug)]
pub struct Built {
    /// What to tag: the one image's manifest, or an index of the images.
    pub root: Descriptor,
    /// The images, in the base's order.
    pub images: Vec<BuiltImage>,
    /// The new layers, shared by every image.
    pub layers: Vec<NewLayer>,
}

/// A base image to build on.
struct Base {
    manifest: Option<(Descriptor, Vec<u8>)>,
    config: Vec<u8>,
    platform: Platform,
}

/// Builds `options`' layers and settings onto `from` (a ref or digest of
/// `writer`'s layout, or [`SCRATCH`]) and returns what to tag; tags
/// nothing. Every new blob is durable when it returns.
///
/// # Errors
/// A base that is not an image or an index of images (naming what it is);
/// a platform the base has no image for (listing those it has); a layer
/// source that is missing or unreadable; a zstd layer on a Docker base;
/// the load's errors (damaged documents).
pub fn build(writer: &Writer<'_>, from: &str, options: &BuildOptions) -> Result<Built> {
    let (bases, root_media_type) = bases(writer, from, &options.platforms)?;
    let mut layers = Vec::with_capacity(options.layers.len());
    for source in &options.layers {
        layers.push(layer::write_layer(writer, source, options.level)?);
    }
    let mut images = Vec::with_capacity(bases.len());
    for base in &bases {
        images.push(build_one(writer, base, &layers, options)?);
    }
    let root = match images.as_slice() {
        [one] => one.manifest.clone(),
        _ => write_index(writer, &images, root_media_type.as_deref())?,
    };
    writer.sync()?;
    Ok(Built {
        root,
        images,
        layers,
    })
}

/// The base images for `platforms`, and the base's media type when it is
/// an index.
fn bases(
    writer: &Writer<'_>,
    from: &str,
    platforms: &[PlatformSpec],
) -> Result<(Vec<Base>, Option<String>)> {
    if from == SCRATCH {
        let wanted = if platforms.is_empty() {
            vec![
                "linux"
                    .parse::<PlatformSpec>()
                    .map_err(Error::InvalidArgument)?,
            ]
        } else {
            platforms.to_vec()
        };
        let bases = wanted.iter().map(|p| {
            let platform = spec_platform(p);
            Base {
                manifest: None,
                config: config::scratch(&platform),
                platform,
            }
        });
        return Ok((bases.collect(), None));
    }
    let layout = writer.layout();
    let loader = LayoutLoader::new(layout, from)?;
    let loaded = load(&loader)?;
    if loaded.images.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{from} holds no container image; build needs an image, an index of images, or `scratch`"
        )));
    }
    let mut chosen = Vec::new();
    if platforms.is_empty() {
        chosen.extend(loaded.images.iter());
    }
    for p in platforms {
        let best = loaded.best_for(from, p)?;
        if !chosen
            .iter()
            .any(|c| c.manifest.digest == best.manifest.digest)
        {
            chosen.push(best);
        }
    }
    let root = loader.root_descriptor();
    let index_type = mt::is_index(&root.media_type).then(|| root.media_type.clone());
    let mut bases = Vec::with_capacity(chosen.len());
    for image in chosen {
        bases.push(Base {
            manifest: Some((
                image.manifest.clone(),
                layout.read_blob(&image.manifest, DOCUMENT_LIMIT)?,
            )),
            config: layout.read_blob(&image.config_descriptor, config::LIMIT)?,
            platform: image.platform.clone(),
        });
    }
    Ok((bases, index_type))
}

fn spec_platform(p: &PlatformSpec) -> Platform {
    Platform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        os_version: p.os_version.clone(),
        os_features: (!p.os_features.is_empty()).then(|| p.os_features.clone()),
        variant: p.variant.clone(),
    }
}

/// One image: the new config, then the base's manifest with that config
/// and the new layers appended.
fn build_one(
    writer: &Writer<'_>,
    base: &Base,
    layers: &[NewLayer],
    options: &BuildOptions,
) -> Result<BuiltImage> {
    let mut manifest: Map<String, Value> = match &base.manifest {
        Some((desc, raw)) => serde_json::from_slice(raw)
            .map_err(|e| Error::document(format!("manifest {}", desc.digest), e.to_string()))?,
        None => config::scratch_manifest(),
    };
    let docker = manifest.get("mediaType").and_then(Value::as_str) == Some(mt::DOCKER_MANIFEST);
    let config_type = manifest
        .get("config")
        .and_then(|c| c.get("mediaType"))
        .and_then(Value::as_str)
        .unwrap_or(mt::OCI_IMAGE_CONFIG)
        .to_string();
    let config_bytes = config::edit(&base.config, layers, options, &base.platform)?;
    let config_desc = writer.put_bytes(&config_type, &config_bytes)?;
    manifest.insert("config".into(), descriptor_json(&config_desc, None));
    let list = manifest
        .entry("layers")
        .or_insert_with(|| Value::Array(vec![]));
    let Value::Array(list) = list else {
        return Err(Error::document(
            "the base manifest",
            "`layers` is not a list",
        ));
    };
    for layer in layers {
        let media_type = match (docker, layer.descriptor.media_type.as_str()) {
            (true, mt::OCI_LAYER_TAR_GZIP) => mt::DOCKER_LAYER_TAR_GZIP,
            (true, other) => {
                return Err(Error::InvalidArgument(format!(
                    "a {other} layer cannot go into a Docker v2 manifest; give it gzipped or as a plain tar"
                )));
            }
            (false, other) => other,
        };
        list.push(descriptor_json(&layer.descriptor, Some(media_type)));
    }
    manifest.remove("subject");
    let media_type = if docker {
        mt::DOCKER_MANIFEST
    } else {
        mt::OCI_MANIFEST
    };
    let bytes = serde_json::to_vec(&manifest).expect("JSON values serialize");
    let desc = writer.put_bytes(media_type, &bytes)?;
    Ok(BuiltImage {
        manifest: desc,
        platform: config::platform_of(&config_bytes).unwrap_or_else(|| base.platform.clone()),
        base: base.manifest.as_ref().map(|(d, _)| d.clone()),
    })
}

/// `{"mediaType", "digest", "size"}`, the media type as given or the
/// descriptor's.
fn descriptor_json(desc: &Descriptor, media_type: Option<&str>) -> Value {
    serde_json::json!({
        "mediaType": media_type.unwrap_or(&desc.media_type),
        "digest": desc.digest.to_string(),
        "size": desc.size,
    })
}

/// An index of `images` with their platforms: a Docker list when the base
/// was one, else an OCI index.
fn write_index(
    writer: &Writer<'_>,
    images: &[BuiltImage],
    base_type: Option<&str>,
) -> Result<Descriptor> {
    let media_type = match base_type {
        Some(mt::DOCKER_INDEX) => mt::DOCKER_INDEX,
        _ => mt::OCI_INDEX,
    };
    let manifests: Vec<Value> = images
        .iter()
        .map(|i| {
            let mut d = descriptor_json(&i.manifest, None);
            d["platform"] = serde_json::to_value(&i.platform).expect("platforms serialize");
            d
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).expect("JSON values serialize");
    writer.put_bytes(media_type, &bytes)
}

impl BuildOptions {
    /// Options with `created` from `SOURCE_DATE_EPOCH` (seconds) when it is
    /// set, else the Unix epoch, so that the same inputs build the same
    /// digests (as ko does); gzip at [`DEFAULT_LEVEL`].
    pub fn reproducible() -> BuildOptions {
        let secs = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        BuildOptions {
            created: crate::io::timestamp::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            ),
            level: DEFAULT_LEVEL,
            ..BuildOptions::default()
        }
    }

    /// Adds `file` as `/NAME` (its file name, mode 0755) in a layer of its
    /// own and makes it the entrypoint.
    ///
    /// # Errors
    /// A path whose file name cannot be a name in the image.
    pub fn add_entrypoint(&mut self, file: &std::path::Path) -> Result<()> {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(flaw) = crate::model::name::file_name_flaw(name) {
            return Err(Error::InvalidArgument(format!(
                "{}: the entrypoint's file name {flaw}",
                file.display()
            )));
        }
        self.entrypoint = Some(vec![format!("/{name}")]);
        self.layers.push(LayerSource::File {
            path: file.to_path_buf(),
            name: name.to_string(),
            mode: 0o755,
        });
        Ok(())
    }
}
