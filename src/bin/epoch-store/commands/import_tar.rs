//! `epoch-store import-tar`.

use std::path::PathBuf;
use std::time::Instant;

use epoch_store::{NoProgress, Progress, validate_ref};

use crate::output::{duration, rate, size};
use crate::report::{report_json, tag_and_summarize};
use crate::snapshot_options::SnapshotOptions;
use crate::{Ctx, EXIT_OK};

/// Store a `cocoon snapshot export` tar stream as a snapshot artifact.
///
/// Reads the tar (plain or gzip, detected by content) from FILE or stdin
/// once, front to back, without a temporary copy: each file's bytes are cut
/// into chunks, hashed, compressed if asked and written while they arrive.
/// The result is exactly what `pack snapshot` makes of the same files (only
/// the creation time differs): snapshot.json becomes the config, sparse
/// files keep their map. Links, devices, paths that are not plain file
/// names, bad sparse records and truncated streams are refused, and nothing
/// is tagged then. The layout is created if its directory does not exist
/// or is empty; a FILE that is a FIFO or device is refused (send a stream
/// on stdin).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    cocoon snapshot export sre-bot -o - | epoch-store import-tar - --ref sre-bot:v2\n  \
    epoch-store import-tar sre-bot.tar.gz --ref sre-bot:v2 --compress zstd\n  \
    epoch-store import-tar sre-bot.tar --ref sre-bot:v1 --format v1")]
pub struct Args {
    /// The tar stream, plain or gzip; `-` (the default) reads stdin.
    #[arg(value_name = "FILE|-", default_value = "-")]
    file: PathBuf,
    /// Tag it with this ref.
    #[arg(long = "ref", value_name = "REF")]
    ref_name: String,
    #[command(flatten)]
    options: SnapshotOptions,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    validate_ref(&a.ref_name)?;
    let input = crate::input::open(
        &a.file,
        "a tar stream; pipe one in (cocoon snapshot export NAME -o - | epoch-store import-tar - --ref NAME:TAG)",
    )?;
    let layout = ctx.open_or_create("import-tar")?;
    let options = a.options.to_pack_options();
    let started = Instant::now();
    let writer = ctx.writer(&layout)?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    bar.begin("importing", input.total);
    let mut counted = crate::input::Counted::new(input.reader, &bar);
    let epoch_store::formats::cocoon::snapshot::Packed {
        manifest, warnings, ..
    } = epoch_store::formats::cocoon::stream::import_tar(
        &writer,
        &mut counted,
        &options,
        &NoProgress,
    )?;
    bar.finish();
    for w in &warnings {
        crate::output::warn(format_args!("epoch-store: warning: {w}"));
    }
    let summary = tag_and_summarize(&layout, &writer, &a.ref_name, &manifest)?;
    let elapsed = started.elapsed();
    report_json(
        ctx,
        &a.ref_name,
        &summary,
        serde_json::json!({ "warnings": warnings }),
    )?;
    let from = input.name.clone();
    ctx.say(format_args!(
        "Imported {from} as {} ({}): {} read, {} stored in {} ({})",
        a.ref_name,
        manifest.digest,
        size(counted.count),
        size(summary.size),
        duration(elapsed),
        rate(counted.count, elapsed)
    ))?;
    Ok(EXIT_OK)
}
