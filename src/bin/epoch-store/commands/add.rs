//! `epoch-store add`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use epoch_store::formats::cocoon::config::media_type_for_cocoon_file;
use epoch_store::model::annotation;
use epoch_store::{Descriptor, validate_ref};
use rayon::prelude::*;

use crate::output::{duration, rate, size};
use crate::{Ctx, EXIT_OK};

/// Store files as one OCI 1.1 artifact: one layer per file, titled with its name.
///
/// Files are hashed and copied in parallel. Without --ref the artifact is
/// kept as an untagged root (gc keeps it); its digest is printed.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store add --ref vm:v1 overlay.qcow2 memory-ranges config.json\n  \
    epoch-store add --ref notes:1 --artifact-type application/vnd.example.notes --media-type text/plain notes.txt"
)]
pub struct Args {
    /// Tag the artifact with this ref (e.g. `name:tag`).
    #[arg(long = "ref", value_name = "REF")]
    ref_name: Option<String>,
    /// The manifest's artifactType.
    #[arg(long, value_name = "T", default_value = epoch_store::model::media_type::ARTIFACT_FILES)]
    artifact_type: String,
    /// Media type of every layer (default: by file name, as cocoonstack does).
    #[arg(long, value_name = "M")]
    media_type: Option<String>,
    /// The files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Added {
    #[serde(rename = "ref")]
    ref_name: Option<String>,
    digest: String,
    media_type: String,
    artifact_type: String,
    size: u64,
    layers: Vec<Descriptor>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    if let Some(r) = &args.ref_name {
        validate_ref(r)?;
    }
    let mut titles = BTreeSet::new();
    let mut inputs = Vec::new();
    for path in &args.files {
        let title = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| {
                format!(
                    "{}: not a file name epoch-store can use as a title (UTF-8 required)",
                    path.display()
                )
            })?
            .to_string();
        // The title becomes a file name again when the artifact is unpacked.
        epoch_store::model::name::validate_file_name(&title)?;
        if !titles.insert(title.clone()) {
            bail!("two files are named {title:?}; layer titles must be unique, rename one");
        }
        let md =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !md.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        inputs.push((path.clone(), title, md.len()));
    }
    let layout = ctx.open()?;
    let started = Instant::now();
    let writer = ctx.writer(&layout)?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    let total: u64 = inputs.iter().map(|(_, _, n)| n).sum();
    epoch_store::Progress::begin(&bar, "adding", total);
    let layers = inputs
        .par_iter()
        .map(|(path, title, _)| {
            let mt = args
                .media_type
                .as_deref()
                .unwrap_or_else(|| media_type_for_cocoon_file(title));
            let mut d = writer.put_file(mt, path, &bar)?;
            d.annotations
                .insert(annotation::TITLE.into(), title.clone());
            Ok(d)
        })
        .collect::<epoch_store::Result<Vec<Descriptor>>>()?;
    epoch_store::Progress::finish(&bar);
    let manifest = epoch_store::store::artifact::files_manifest(
        &writer,
        &layers,
        Some(&args.artifact_type),
        None,
    )?;
    writer.update_index(|index| {
        match &args.ref_name {
            Some(r) => {
                index.set_ref(r, &manifest);
            }
            None => index.add_untagged(&manifest),
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    if ctx.json {
        crate::output::json(&Added {
            ref_name: args.ref_name.clone(),
            digest: manifest.digest.to_string(),
            media_type: manifest.media_type.clone(),
            artifact_type: args.artifact_type.clone(),
            size: total,
            layers,
        })?;
    }
    ctx.say(format_args!(
        "Added {} ({}): {} file{}, {} in {} ({})",
        args.ref_name.as_deref().unwrap_or("untagged artifact"),
        manifest.digest,
        inputs.len(),
        if inputs.len() == 1 { "" } else { "s" },
        size(total),
        duration(elapsed),
        rate(total, elapsed)
    ))?;
    if ctx.quiet && args.ref_name.is_none() {
        // The digest is the only handle on an untagged root: it is the answer.
        ctx.answer(&manifest.digest)?;
    }
    Ok(EXIT_OK)
}
