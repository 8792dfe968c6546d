//! `epoch-store build`.

use std::path::PathBuf;
use std::time::Instant;

use epoch_store::formats::image::build::{self, BuildOptions, LayerSource};
use epoch_store::model::platform::{PlatformSpec, describe};

use crate::output::{duration, size};
use crate::{Ctx, EXIT_OK};

/// Build a container image on a base without Docker: add a file as the
/// entrypoint, directories or tars as layers, set the command and the
/// environment.
///
/// The base (--from) is a ref or digest of this layout, or `scratch` (an
/// empty image). Where it is an index, each --platform takes its best image
/// by containerd's rules (none: every image); more than one image built
/// makes a new index of them. New layers are reproducible tars (sorted,
/// mtime 0, owners 0:0), gzipped on every core; their diffIDs are computed,
/// and the config gets them, a history entry each, the entrypoint, command
/// and environment. `created` is SOURCE_DATE_EPOCH, else 1970-01-01, so the
/// same inputs give the same digest. The base's layers are referenced, not
/// copied.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store build --from alpine:3.20 --entrypoint ./server --ref server:1.0\n  \
    epoch-store build --from scratch --platform linux/arm64 --entrypoint ./hello --ref hello:arm64\n  \
    epoch-store build --from debian:12 --platform linux/amd64 --platform linux/arm64 \\\n      \
    --layer ./rootfs-extra --layer site.tar.gz --env MODE=prod --cmd serve --cmd --port=80 --ref site:2\n\n\
Exit codes: 0 built and tagged, 2 error (a base that is not an image, no image for a\n\
platform, a missing file): nothing is tagged then.")]
pub struct Args {
    /// The base image: a ref, a digest, or `scratch`.
    #[arg(long, value_name = "REF")]
    from: String,
    /// The ref to tag the new image (or index) as.
    #[arg(long = "ref", value_name = "REF")]
    ref_name: String,
    /// Build for this platform (repeatable); of an index, its best image.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Vec<PlatformSpec>,
    /// A file to add at /NAME (mode 0755) and make the entrypoint.
    #[arg(long, value_name = "FILE")]
    entrypoint: Option<PathBuf>,
    /// A layer: a directory (its contents at /), or a tar, plain, gzip or
    /// zstd (repeatable, bottom first, after the entrypoint's).
    #[arg(long, value_name = "DIR|TAR")]
    layer: Vec<PathBuf>,
    /// An environment variable KEY=VALUE (repeatable; replaces the base's).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// One word of the command (the entrypoint's arguments), repeatable in
    /// order: `--cmd serve --cmd --port=80`. Replaces the base's command.
    #[arg(long, allow_hyphen_values = true, value_name = "ARG")]
    cmd: Vec<String>,
    /// gzip level of the new layers (libdeflate's: 0 stores, 1 fastest, 12
    /// smallest).
    #[arg(long, default_value_t = epoch_store::formats::image::build::DEFAULT_LEVEL,
          value_parser = clap::value_parser!(u32).range(0..=12))]
    level: u32,
    /// Replace the ref if it names something else already.
    #[arg(long)]
    force: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let new_ref = epoch_store::RefName::new(a.ref_name.as_str())?;
    let mut options = BuildOptions::reproducible();
    options.platforms = a.platform;
    options.level = a.level;
    options.env = a.env;
    options.cmd = (!a.cmd.is_empty()).then_some(a.cmd);
    if let Some(file) = &a.entrypoint {
        options.add_entrypoint(file)?;
    }
    for layer in &a.layer {
        options.layers.push(if layer.is_dir() {
            LayerSource::Tree(layer.clone())
        } else {
            LayerSource::Tar(layer.clone())
        });
    }
    let layout = ctx.open()?;
    if !a.force
        && let Some(old) = layout.read_index()?.find(new_ref.as_str())?
    {
        anyhow::bail!(
            "{} names {} already; pass --force to move it to the new image, or pick another --ref",
            new_ref.as_str(),
            old.digest
        );
    }
    let started = Instant::now();
    let writer = ctx.writer(&layout)?;
    let built = build::build(&writer, &a.from, &options)?;
    writer.update_index(|index| {
        index.set_ref(&new_ref, &built.root);
        Ok(())
    })?;
    report(ctx, &new_ref, &built, started.elapsed())?;
    Ok(EXIT_OK)
}

fn report(
    ctx: &Ctx,
    new_ref: &epoch_store::RefName,
    built: &build::Built,
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let added: u64 = built.layers.iter().map(|l| l.descriptor.size).sum();
    if ctx.json {
        let images: Vec<_> = built
            .images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "digest": i.manifest.digest,
                    "platform": describe(&i.platform),
                    "base": i.base.as_ref().map(|b| b.digest.to_string()),
                })
            })
            .collect();
        let layers: Vec<_> = built
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "digest": l.descriptor.digest,
                    "size": l.descriptor.size,
                    "diffID": l.diff_id,
                })
            })
            .collect();
        return crate::output::json(&serde_json::json!({
            "ref": new_ref.as_str(),
            "digest": built.root.digest,
            "mediaType": built.root.media_type,
            "images": images,
            "layers": layers,
            "seconds": elapsed.as_secs_f64(),
        }));
    }
    let platforms: Vec<String> = built.images.iter().map(|i| describe(&i.platform)).collect();
    ctx.say(format_args!(
        "Built {} ({}) for {}: {} new layer{} ({}) in {}",
        new_ref.as_str(),
        built.root.digest,
        platforms.join(", "),
        built.layers.len(),
        if built.layers.len() == 1 { "" } else { "s" },
        size(added),
        duration(elapsed)
    ))?;
    Ok(())
}
