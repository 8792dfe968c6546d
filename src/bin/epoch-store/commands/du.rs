//! `epoch-store du`.

use epoch_store::io::text::escape;
use epoch_store::store::du::{DuReport, disk_usage};

use crate::output::{size, warn};
use crate::{Ctx, EXIT_OK, EXIT_PROBLEMS};

/// Show stored bytes per manifest, what is shared, and what gc would free.
///
/// One row per manifest digest of index.json: all refs pointing at the same
/// manifest share a row (untagged entries show as <untagged>). STORED is
/// the bytes on disk of every blob the row reaches, each counted once;
/// UNIQUE the bytes no other row reaches: what untagging every ref of the
/// row, then `gc`, would free; SHARED the rest. A manifest tagged twice is
/// one row with both refs: untagging only one of them frees nothing.
///
/// The totals: all blobs in the layout, those reachable, and those nothing
/// reaches (what `gc --grace 0s` would remove now; plain `gc` keeps those
/// younger than 24 h).
///
/// Exit 1 if a reachable document cannot be read (the numbers are then
/// incomplete; run `epoch-store verify`).
/// JSON: {"rows": [{"refs", "untagged", "digest", "blobs", "stored", "unique",
/// "shared", "missingBlobs", "problem"}], "layoutBlobs", "layoutBytes",
/// "reachableBlobs", "reachableBytes", "unreferencedBlobs",
/// "unreferencedBytes", "tempFiles", "tempBytes", "problems"}.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store du\n  \
    epoch-store du sre-bot:v1 sre-bot:v2\n  \
    epoch-store --json du | jq '.rows[] | {refs, unique}'")]
pub struct Args {
    /// Only these refs (or digests of index.json entries); uniqueness is
    /// still judged against every entry.
    #[arg(value_name = "REF")]
    refs: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let refs: Vec<&str> = a.refs.iter().map(String::as_str).collect();
    let report = disk_usage(&layout, &refs)?;
    for p in &report.problems {
        warn(format_args!(
            "epoch-store: warning: {p}; the numbers are incomplete"
        ));
    }
    let code = if report.is_complete() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    };
    if ctx.json {
        crate::output::json(&report)?;
        return Ok(code);
    }
    print_rows(ctx, &report)?;
    print_totals(ctx, &report)?;
    Ok(code)
}

/// The table: one row per manifest, with the blobs it misses under it.
fn print_rows(ctx: &Ctx, report: &DuReport) -> anyhow::Result<()> {
    let header = ["REF", "STORED", "UNIQUE", "SHARED", "DIGEST"].map(String::from);
    let cells: Vec<[String; 5]> = report
        .rows
        .iter()
        .map(|r| {
            let mut n: Vec<String> = r.refs.iter().map(|n| escape(n).into_owned()).collect();
            n.extend((0..r.untagged).map(|_| "<untagged>".to_string()));
            [
                n.join(", "),
                size(r.stored),
                size(r.unique),
                size(r.shared),
                r.digest.to_string(),
            ]
        })
        .collect();
    let lines = crate::output::table(&header, &cells, &[false, true, true, true, false]);
    ctx.answer(&lines[0])?;
    for (r, line) in report.rows.iter().zip(&lines[1..]) {
        ctx.answer(line)?;
        if r.missing_blobs > 0 {
            ctx.answer(format_args!(
                "  {} referenced blob{} missing (not counted); run `epoch-store verify`",
                r.missing_blobs,
                if r.missing_blobs == 1 { " is" } else { "s are" }
            ))?;
        }
    }
    Ok(())
}

/// What a row of several refs means, and the layout's totals.
fn print_totals(ctx: &Ctx, report: &DuReport) -> anyhow::Result<()> {
    if report.rows.iter().any(|r| r.refs.len() + r.untagged > 1) {
        ctx.answer(format_args!("A row with several refs is one manifest: UNIQUE is freed only once all of them are untagged."
        ))?;
    }
    ctx.answer(format_args!("Layout: {} in {} blobs; reachable {} in {}; unreferenced {} in {} (gc --grace 0s would free it now){}",
        size(report.layout_bytes),
        report.layout_blobs,
        size(report.reachable_bytes),
        report.reachable_blobs,
        size(report.unreferenced_bytes),
        report.unreferenced_blobs,
        if report.temp_files > 0 {
            format!(
                "; {} in {} leftover temp files",
                size(report.temp_bytes),
                report.temp_files
            )
        } else {
            String::new()
        }
    ))?;
    Ok(())
}
