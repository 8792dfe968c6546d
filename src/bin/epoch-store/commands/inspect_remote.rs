//! `epoch-store inspect docker://HOST/REPO:TAG`: a registry's image or
//! index, read through the registry `Loader` without pulling it.

use epoch_store::formats::image::{Loader, load};
use epoch_store::model::Document;
use epoch_store::model::platform::{PlatformSpec, describe};
use epoch_store::transport::registry::{Client, Reference, RegistryLoader};

use crate::output::size;
use crate::remote::ConnectArgs;
use crate::{Ctx, EXIT_OK};

/// Shows what `reference` names in its registry: the root's digest and
/// media type, its images with their platforms and layers (or, for an
/// artifact, its layers); with `platform`, the best image for it.
pub fn run(
    ctx: &Ctx,
    reference: &Reference,
    platform: Option<&PlatformSpec>,
    connect: &ConnectArgs,
) -> anyhow::Result<u8> {
    let client = Client::new(reference, &connect.options(&reference.host)?)?;
    let loader = RegistryLoader::new(&client, reference)?;
    let (raw, media_type) = loader.root()?;
    let digest = loader.root_digest().expect("a registry root has a digest");
    let loaded = load(&loader)?;
    let mut images: Vec<_> = loaded.images.iter().collect();
    if let Some(p) = platform {
        images = vec![loaded.best_for(&reference.to_string(), p)?];
    }
    let rows = image_rows(&images);
    // Not an image (an artifact: a snapshot, files): its own layers.
    let doc = Document::parse(&raw, Some(&media_type))?;
    let artifact_layers: Vec<serde_json::Value> = if loaded.images.is_empty() {
        doc.layers
            .iter()
            .flatten()
            .map(|l| {
                serde_json::json!({
                    "digest": l.digest, "mediaType": l.media_type, "size": l.size,
                    "title": l.annotations.get("org.opencontainers.image.title"),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    if ctx.json {
        crate::output::json(&serde_json::json!({
            "reference": reference.to_string(),
            "digest": digest,
            "mediaType": media_type,
            "artifactType": doc.artifact_type,
            "images": rows,
            "layers": artifact_layers,
        }))?;
        return Ok(EXIT_OK);
    }
    print_human(
        ctx,
        reference,
        &digest,
        &media_type,
        &doc,
        &images,
        platform.is_some(),
        &artifact_layers,
    )?;
    Ok(EXIT_OK)
}

fn image_rows(images: &[&epoch_store::formats::image::Image]) -> Vec<serde_json::Value> {
    images
        .iter()
        .map(|i| {
            serde_json::json!({
                "digest": i.manifest.digest,
                "platform": describe(&i.platform),
                "config": i.config_descriptor.digest,
                "layers": i.layers.iter().map(|l| serde_json::json!({
                    "digest": l.descriptor.digest, "mediaType": l.descriptor.media_type, "size": l.descriptor.size,
                })).collect::<Vec<_>>(),
                "size": i.layers.iter().map(|l| l.descriptor.size).sum::<u64>() + i.config_descriptor.size,
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn print_human(
    ctx: &Ctx,
    reference: &Reference,
    digest: &epoch_store::Digest,
    media_type: &str,
    doc: &Document,
    images: &[&epoch_store::formats::image::Image],
    show_layers: bool,
    artifact_layers: &[serde_json::Value],
) -> anyhow::Result<()> {
    ctx.answer(format_args!("Reference:     {reference}"))?;
    ctx.answer(format_args!("Digest:        {digest}"))?;
    ctx.answer(format_args!("Media type:    {media_type}"))?;
    if let Some(t) = &doc.artifact_type {
        ctx.answer(format_args!("Artifact type: {t}"))?;
    }
    for i in images {
        let total: u64 = i.layers.iter().map(|l| l.descriptor.size).sum();
        ctx.answer(format_args!(
            "Image:         {}  {}  {} layer{}, {}",
            describe(&i.platform),
            i.manifest.digest,
            i.layers.len(),
            if i.layers.len() == 1 { "" } else { "s" },
            size(total)
        ))?;
        if show_layers {
            for l in &i.layers {
                ctx.answer(format_args!(
                    "  {}  {}  {}",
                    size(l.descriptor.size),
                    l.descriptor.media_type,
                    l.descriptor.digest
                ))?;
            }
        }
    }
    for l in artifact_layers {
        ctx.answer(format_args!(
            "Layer:         {}  {}  {}  {}",
            l["title"].as_str().unwrap_or("-"),
            size(l["size"].as_u64().unwrap_or(0)),
            l["mediaType"].as_str().unwrap_or(""),
            l["digest"].as_str().unwrap_or("")
        ))?;
    }
    Ok(())
}
