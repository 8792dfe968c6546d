//! `epoch-store verify`.

use std::time::Instant;

use epoch_store::{FindingKind, VerifyOptions, VerifyReport};

use crate::output::{duration, rate, size};
use crate::{Ctx, EXIT_OK, EXIT_PROBLEMS};

/// Check the layout without changing it; exit 1 if anything is damaged.
///
/// Re-hashes every blob (both cores, memory-mapped), checks that every
/// referenced blob exists with the right size and digest, that manifests and
/// indexes parse and are unambiguous, that embedded data matches, and that
/// blobs/ holds only regular files named by digests. With REFs, checks only
/// what they reach. Unreferenced blobs and leftover temp files are reported as
/// information, not damage.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store verify\n  epoch-store verify vm:v1 vm:v2\n  epoch-store --json verify | jq '.problems'"
)]
pub struct Args {
    /// Refs or digests to check (default: the whole layout).
    #[arg(value_name = "REF")]
    refs: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let started = Instant::now();
    let bar = crate::progress::Bar::new(ctx.quiet);
    let report = layout.verify(&VerifyOptions::default().refs(args.refs), &bar)?;
    let code = if report.is_ok() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    };
    if ctx.json {
        crate::output::json(&report)?;
        return Ok(code);
    }
    for p in &report.problems {
        crate::output::warn(format_args!("problem: {p}"));
    }
    for n in &report.notices {
        ctx.say(format_args!("note: {n}"))?;
    }
    if report.unreferenced_blobs > 0 {
        ctx.say(format_args!(
            "note: {} unreferenced blobs ({}); `epoch-store gc` reclaims them once older than its grace period",
            report.unreferenced_blobs,
            size(report.unreferenced_bytes)
        ))?;
    }
    if report.temp_files > 0 {
        ctx.say(format_args!(
            "note: {} temp files left by interrupted writes; `epoch-store gc` removes them",
            report.temp_files
        ))?;
    }
    let elapsed = started.elapsed();
    let summary = format!(
        "{} roots, {} documents, {} blobs ({}) checked in {} ({})",
        report.roots,
        report.documents,
        report.blobs_checked,
        size(report.bytes_checked),
        duration(elapsed),
        rate(report.bytes_checked, elapsed)
    );
    if report.is_ok() {
        ctx.say(format_args!("OK: {summary}"))?;
    } else {
        crate::output::warn(format_args!(
            "DAMAGED: {} problems; {summary}.{}",
            report.problems.len(),
            advice(&report)
        ));
    }
    Ok(code)
}

/// What to do about the problems found, by kind: damaged or missing blobs
/// can be restored from another copy; a broken document or index entry is
/// fixed by re-creating or re-tagging, never by restoring blobs.
fn advice(report: &VerifyReport) -> String {
    let has = |kinds: &[FindingKind]| report.problems.iter().any(|p| kinds.contains(&p.kind));
    let mut out = String::new();
    if has(&[
        FindingKind::MissingBlob,
        FindingKind::DigestMismatch,
        FindingKind::Unreadable,
    ]) {
        out.push_str(
            " Damaged or missing blobs: restore them from another copy (`epoch-store copy` from it, \
             or `epoch-store add`/`skopeo copy` re-publishes them), or untag what reaches them.",
        );
    }
    if has(&[
        FindingKind::BadDocument,
        FindingKind::BadDataField,
        FindingKind::SizeMismatch,
    ]) {
        out.push_str(
            " Broken documents (the blobs may be fine): re-create the artifact, or untag what \
             reaches the document.",
        );
    }
    if has(&[
        FindingKind::BadRefName,
        FindingKind::AmbiguousRef,
        FindingKind::IndexJson,
    ]) {
        out.push_str(" index.json entries: each problem above says the command that fixes it.");
    }
    if has(&[FindingKind::NotRegularFile, FindingKind::BadBlobName]) {
        out.push_str(" Stray entries in blobs/: remove them.");
    }
    out
}
