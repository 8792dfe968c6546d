//! `epoch-store copy`.

use std::path::PathBuf;
use std::time::Instant;

use epoch_store::transport::copy::{self, CopyPlan};

use crate::output::{duration, rate, size};
use crate::{Ctx, EXIT_OK};

/// Copy refs and everything they reach into another layout (a USB stick,
/// a share), incrementally and verified.
///
/// Blobs DIR already has are skipped, so copying next week's snapshot writes
/// only its changed chunks. Every byte is checked against its digest on the
/// way; blobs are published one by one (temp file, fsync, rename) and DIR's
/// index.json is updated last, under DIR's lock. Before writing anything the
/// plan is checked against DIR's filesystem: free space, and the largest
/// file it holds (FAT32: 4 GiB - 1 byte, also behind FUSE). A killed copy,
/// or a pulled stick, is completed by running the same command again.
/// Copying back is the same command with --layout and --to swapped.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store copy sre-bot:v2 --to /media/usb/store\n  \
    epoch-store copy --all --to /media/usb/store --dry-run\n  \
    epoch-store copy alpine:3 --platform linux/arm64 --platform linux/arm/v7 --to /media/usb/store\n  \
    epoch-store --layout /media/usb/store copy --all --to /var/lib/epoch-store\n  \
    epoch-store --json copy sre-bot:v2 --to /media/usb/store --dry-run | jq .bytes")]
pub struct Args {
    /// Refs or digests to copy.
    #[arg(value_name = "REF")]
    refs: Vec<String>,
    /// Copy every index.json entry (refs and untagged roots).
    #[arg(long, conflicts_with = "refs")]
    all: bool,
    /// The destination layout (created if absent; must be a layout or empty).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Say what would be written, check that it fits, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace refs the destination holds with another digest.
    #[arg(long)]
    force: bool,
    /// Of an index, carry only the image for this platform (its best match
    /// by containerd's rules), under a new index of just the images chosen;
    /// repeatable. What is not an index is copied whole.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Vec<epoch_store::model::platform::PlatformSpec>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    if args.refs.is_empty() && !args.all {
        anyhow::bail!("name the refs to copy, or pass --all to copy every ref and root");
    }
    let src = ctx.open()?;
    let roots = src.roots(&args.refs)?;
    let started = Instant::now();
    let plan = copy::plan_platforms(&src, roots, &args.platform, &args.to, args.force)?;
    if args.dry_run {
        report_plan(ctx, &plan)?;
        return Ok(EXIT_OK);
    }
    let bar = crate::progress::Bar::new(ctx.quiet);
    let report = copy::execute(&src, &plan, &bar)?;
    let elapsed = started.elapsed();
    if ctx.json {
        crate::output::json(&serde_json::json!({
            "to": args.to,
            "refs": report.refs,
            "blobs": report.blobs,
            "bytes": report.bytes,
            "skippedBlobs": plan.present,
            "skippedBytes": plan.present_bytes,
            "replaced": plan.replaced,
        }))?;
    }
    ctx.say(format_args!(
        "Copied {} to {}: {} blobs, {} written in {} ({}); {} blobs ({}) were already there",
        report.refs.join(", "),
        args.to.display(),
        report.blobs,
        size(report.bytes),
        duration(elapsed),
        rate(report.bytes, elapsed),
        plan.present,
        size(plan.present_bytes),
    ))?;
    Ok(EXIT_OK)
}

fn report_plan(ctx: &Ctx, plan: &CopyPlan) -> anyhow::Result<()> {
    let refs: Vec<String> = plan
        .roots
        .iter()
        .map(|r| {
            r.name
                .clone()
                .unwrap_or_else(|| r.descriptor.digest.to_string())
        })
        .collect();
    if ctx.json {
        crate::output::json(&serde_json::json!({
            "to": plan.dest,
            "refs": refs,
            "blobs": plan.blobs.len(),
            "bytes": plan.bytes,
            "skippedBlobs": plan.present,
            "skippedBytes": plan.present_bytes,
            "replaced": plan.replaced,
            "filesystem": plan.medium.kind.to_string(),
            "fuse": plan.medium.fuse,
            "free": plan.medium.free,
            "maxFileSize": plan.medium.kind.max_file_size(),
        }))?;
        return Ok(());
    }
    let free = plan.medium.free.map_or_else(
        || "free space not reported".to_string(),
        |f| format!("{} free", size(f)),
    );
    ctx.answer(format_args!(
        "Would copy {} to {} ({}{}, {}): {} blobs, {}; {} blobs ({}) already there{}",
        refs.join(", "),
        plan.dest.display(),
        plan.medium.kind,
        if plan.medium.fuse { " via FUSE" } else { "" },
        free,
        plan.blobs.len(),
        size(plan.bytes),
        plan.present,
        size(plan.present_bytes),
        if plan.replaced.is_empty() {
            String::new()
        } else {
            format!("; would replace {}", plan.replaced.join(", "))
        }
    ))?;
    Ok(())
}
