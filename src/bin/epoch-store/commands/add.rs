//! `epoch-store add`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use epoch_store::formats::cocoon::config::media_type_for_cocoon_file;
use epoch_store::store::artifact::{FilesArtifact, FilesOptions, plan_files, store_files};
use epoch_store::{Descriptor, validate_ref};

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
    let plan = plan_files(&args.files)?;
    let layout = ctx.open()?;
    let started = Instant::now();
    let writer = ctx.writer(&layout)?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    let options = FilesOptions::default()
        .artifact_type(args.artifact_type.clone())
        .media_type(args.media_type.clone())
        .media_type_by_title(media_type_for_cocoon_file);
    let added = store_files(&writer, &plan, &options, &bar)?;
    writer.update_index(|index| {
        match &args.ref_name {
            Some(r) => {
                index.set_ref(&epoch_store::RefName::new(r.as_str())?, &added.manifest);
            }
            None => index.add_untagged(&added.manifest),
        }
        Ok(())
    })?;
    report(ctx, &args, added, started.elapsed())
}

/// Prints what was added: JSON, the confirmation, and with `-q` an untagged
/// root's digest.
fn report(ctx: &Ctx, args: &Args, added: FilesArtifact, elapsed: Duration) -> anyhow::Result<u8> {
    let FilesArtifact {
        manifest,
        layers,
        size: total,
        ..
    } = added;
    let files = layers.len();
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
        files,
        if files == 1 { "" } else { "s" },
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
