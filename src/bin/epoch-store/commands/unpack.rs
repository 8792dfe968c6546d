//! `epoch-store unpack`.

use std::path::PathBuf;
use std::time::Instant;

use crate::output::{duration, size};
use crate::{Ctx, EXIT_OK};

/// Restore a snapshot's files into a directory.
///
/// Every byte is checked against its digest on the way; sparse files get
/// their holes back; modes are restored; each file is fsynced and renamed
/// into place. Existing files are refused without --force. Only plain file
/// names are ever written.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store unpack sre-bot:v2 /var/lib/cocoon/snapshots/sre-bot"
)]
pub struct Args {
    /// The snapshot's ref or digest.
    #[arg(value_name = "REF")]
    target: String,
    /// The directory to restore into (created if absent).
    dir: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let desc = layout.resolve(&args.target)?;
    let started = Instant::now();
    let bar = crate::progress::Bar::new(ctx.quiet);
    let files = epoch_store::snapshot::unpack(&layout, &desc, &args.dir, args.force, &bar)?;
    if ctx.json {
        crate::output::json(&serde_json::json!({ "files": files }))?;
    }
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    ctx.say(format_args!(
        "Unpacked {} files ({} logical) into {} in {}",
        files.len(),
        size(total),
        args.dir.display(),
        duration(started.elapsed())
    ))?;
    Ok(EXIT_OK)
}
