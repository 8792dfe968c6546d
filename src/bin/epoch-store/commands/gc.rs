//! `epoch-store gc`.

use std::time::{Duration, Instant};

use epoch_store::{GcOptions, GcPlan};

use crate::output::{duration, size};
use crate::{Ctx, EXIT_OK};

/// Remove blobs nothing references, and abandoned temp files.
///
/// Every index.json entry, tagged or not, is a root. Unreachable blobs and
/// temp files younger than the grace period are kept, so that tools which do
/// not take epoch-store's lock (skopeo, oras) are not raced. gc refuses to
/// delete anything while a reachable manifest is missing or damaged.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store gc --dry-run\n  epoch-store gc --grace 0s   # nothing else is writing"
)]
pub struct Args {
    /// Only say what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Keep unreachable files younger than this (e.g. 0s, 90m, 24h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    grace: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 0s, 90m, 24h, 7d)"))
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let options = GcOptions::default().grace(args.grace);
    let started = Instant::now();
    if args.dry_run {
        let plan = layout.plan_gc(&options)?;
        if ctx.json {
            crate::output::json(&plan)?;
            return Ok(EXIT_OK);
        }
        for g in plan.blobs.iter().chain(&plan.temp_files) {
            ctx.say(format_args!(
                "would remove {} ({})",
                g.path.display(),
                size(g.size)
            ))?;
        }
        ctx.say(format_args!(
            "Would remove {} blobs and {} temp files, freeing {}; {}.",
            plan.blobs.len(),
            plan.temp_files.len(),
            size(plan.bytes()),
            kept(&plan, args.grace)
        ))?;
        return Ok(EXIT_OK);
    }
    let report = layout.gc(&options)?;
    if ctx.json {
        crate::output::json(&report)?;
        return Ok(EXIT_OK);
    }
    ctx.say(format_args!(
        "Removed {} blobs and {} temp files, freeing {} in {}; {}.",
        report.removed_blobs,
        report.removed_temp_files,
        size(report.removed_bytes),
        duration(started.elapsed()),
        kept(&report.plan, args.grace)
    ))?;
    Ok(EXIT_OK)
}

/// What gc keeps, for the summary line.
fn kept(plan: &GcPlan, grace: Duration) -> String {
    format!(
        "kept {} reachable blobs ({}) and {} unreachable younger than {} ({})",
        plan.reachable_blobs,
        size(plan.reachable_bytes),
        plan.young_blobs,
        humantime::format_duration(grace),
        size(plan.young_bytes)
    )
}
