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
    after_help = "Examples:\n  epoch-store gc --dry-run\n  epoch-store gc --grace 0s   # nothing else is writing\n  \
    epoch-store gc --grace 7d\n\n\
    Units: s, m, h, d, w (also sec, min, hour, day, week); `1h30m` and `1h 30m` work.\n\
    While an epoch-store writer runs, gc waits for it (and says so on a terminal)."
)]
pub struct Args {
    /// Only say what would be removed (takes no lock, changes nothing).
    #[arg(long)]
    dry_run: bool,
    /// Keep unreachable files younger than this (e.g. 0s, 90m, 24h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::duration::parse,
          allow_hyphen_values = true)]
    grace: Duration,
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
            ctx.answer(format_args!(
                "would remove {} ({})",
                g.path.display(),
                size(g.size)
            ))?;
        }
        ctx.answer(format_args!(
            "Would remove {} blobs and {} temp files, freeing {}; {}.",
            plan.blobs.len(),
            plan.temp_files.len(),
            size(plan.bytes()),
            kept(&plan, args.grace)
        ))?;
        future_note(ctx, &plan)?;
        return Ok(EXIT_OK);
    }
    let bar = crate::progress::Bar::new(ctx.quiet);
    let report = layout.gc_with(&options, &bar)?;
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
    future_note(ctx, &report.plan)?;
    Ok(EXIT_OK)
}

/// What gc keeps, for the summary line.
fn kept(plan: &GcPlan, grace: Duration) -> String {
    let mut s = format!(
        "kept {} reachable blobs ({})",
        plan.reachable_blobs,
        size(plan.reachable_bytes)
    );
    if plan.young_blobs > 0 || !grace.is_zero() {
        s.push_str(&format!(
            " and {} unreachable younger than {} ({})",
            plan.young_blobs,
            crate::duration::format(grace),
            size(plan.young_bytes)
        ));
    }
    if plan.future_blobs > 0 {
        s.push_str(&format!(
            " and {} unreachable dated in the future ({})",
            plan.future_blobs,
            size(plan.future_bytes)
        ));
    }
    s
}

/// Why blobs dated in the future are kept, and what to do.
fn future_note(ctx: &Ctx, plan: &GcPlan) -> std::io::Result<()> {
    if plan.future_blobs == 0 {
        return Ok(());
    }
    ctx.say(format_args!(
        "note: {} unreachable blobs have a modification time in the future (a clock was wrong \
         when they were written); their age is unknown, so gc keeps them whatever --grace says. \
         To let the grace period count from now, reset their times: \
         `find {} -type f -newermt now -exec touch {{}} +`",
        plan.future_blobs,
        epoch_store::io::text::shell_quote(&ctx.layout_dir.join("blobs").to_string_lossy())
    ))
}
