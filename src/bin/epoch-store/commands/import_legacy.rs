//! `epoch-store import-legacy`.

use std::path::PathBuf;
use std::time::Instant;

use epoch_store::formats::legacy::{
    LegacyOptions, LegacyReport, import_legacy, plan_legacy, preview_legacy,
};

use crate::output::{duration, size, warn};
use crate::snapshot_options::SnapshotOptions;
use crate::{Ctx, EXIT_ERROR, EXIT_OK};

/// Convert a legacy epoch store (epoch up to v0.1.5) into snapshot artifacts.
///
/// DIR is a directory copied out of a legacy epoch bucket: catalog.json,
/// manifests/NAME/TAG.json (schemaVersion 1) and blobs/sha256/HEX. Every
/// manifest becomes a cocoonstack snapshot tagged PREFIX + NAME:TAG, with
/// the same files holding the same bytes, stored as `pack snapshot` stores
/// them (v2, 512 MiB chunks, holes of sparse blobs left out). Every blob is
/// hashed while it is copied and must match its name and size. The
/// snapshot id, CPU, memory, storage, NICs, image and creation time go
/// into the config; the legacy manifest itself is kept whole in the
/// config's `epochLegacy` field. Base images are recorded there, not
/// copied: they are not files of the snapshot.
///
/// Manifests that cannot be converted (bad JSON, schemaVersion other than
/// 1, unsafe file names, duplicate files, missing or damaged blobs) are
/// reported and skipped; the rest are converted. A ref that exists is left
/// alone unless it is an import of the same manifest (reported unchanged)
/// or --force is given. The layout is created if its directory does not
/// exist or is empty.
///
/// Exit codes: 0 all converted, 1 some manifests skipped, 2 error (DIR is
/// not a legacy store, the layout cannot be written).
/// JSON: {"converted": [{"manifest", "ref", "digest", "files", "bytes",
/// "unchanged", "baseImages"}], "skipped": [{"manifest", "reason"}], "notes"}.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store import-legacy /media/usb/epoch-bucket --dry-run\n  \
    epoch-store import-legacy /media/usb/epoch-bucket\n  \
    epoch-store import-legacy ./epoch --ref-prefix legacy/ --force\n  \
    epoch-store --json import-legacy ./epoch | jq '.skipped'")]
pub struct Args {
    /// The legacy store: the directory holding catalog.json, manifests/ and blobs/.
    dir: PathBuf,
    /// Prepend this to every NAME:TAG (e.g. `legacy/`).
    #[arg(long, value_name = "P", default_value = "")]
    ref_prefix: String,
    /// Only list what would be converted and what not; write nothing.
    /// Blob contents are hashed only by a real import.
    #[arg(long)]
    dry_run: bool,
    /// Replace refs that exist and are not imports of the same manifest.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    options: SnapshotOptions,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    let plan = plan_legacy(&a.dir)?;
    let options = LegacyOptions::default()
        .ref_prefix(a.ref_prefix.clone())
        .force(a.force)
        .pack(a.options.to_pack_options());
    let report = if a.dry_run {
        let layout = epoch_store::Layout::open(&ctx.layout_dir).ok();
        preview_legacy(layout.as_ref(), &plan, &options)?
    } else {
        let layout = ctx.open_or_create("import-legacy")?;
        let writer = ctx.writer(&layout)?;
        let bar = crate::progress::Bar::new(ctx.quiet);
        import_legacy(&writer, &plan, &options, &bar)?
    };
    if ctx.json {
        let mut v = serde_json::to_value(&report)?;
        v["dryRun"] = a.dry_run.into();
        crate::output::json(&v)?;
    } else {
        print_human(ctx, &a, &report, started.elapsed())?;
    }
    // Bad manifests are bad input: exit 2, after the good ones were
    // converted and the report has named every one that was not.
    Ok(if report.is_complete() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

fn print_human(
    ctx: &Ctx,
    a: &Args,
    report: &LegacyReport,
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let verb = if a.dry_run {
        "Would convert"
    } else {
        "Converted"
    };
    for c in &report.converted {
        let what = match (&c.digest, c.unchanged) {
            (Some(d), true) => format!("{} (unchanged: already imported as {d})", c.ref_name),
            (Some(d), false) => format!("{} ({d})", c.ref_name),
            (None, _) => c.ref_name.clone(),
        };
        let line = format!(
            "{verb} {} -> {what}: {} file{}, {}",
            c.manifest,
            c.files.len(),
            if c.files.len() == 1 { "" } else { "s" },
            size(c.bytes)
        );
        if a.dry_run {
            ctx.answer(line)?;
        } else {
            ctx.say(line)?;
        }
        for b in &c.base_images {
            let hint = match &b.blob {
                Some(p) => format!(
                    "its blob is {}; keep it with `epoch-store pack image {} --ref NAME:TAG`",
                    p.display(),
                    p.display()
                ),
                None => "its blob is not in this store".to_string(),
            };
            ctx.say(format_args!(
                "  base image {} ({}) is recorded, not copied: {hint}",
                b.filename,
                size(b.size.max(0) as u64)
            ))?;
        }
    }
    for note in &report.notes {
        if !ctx.quiet {
            warn(format_args!("epoch-store: note: {note}"));
        }
    }
    for s in &report.skipped {
        warn(format_args!(
            "epoch-store: skipped {}: {}",
            s.manifest, s.reason
        ));
    }
    ctx.say(format_args!(
        "{} {}, {} skipped{}",
        report.converted.len(),
        if a.dry_run { "to convert" } else { "converted" },
        report.skipped.len(),
        if a.dry_run {
            String::new()
        } else {
            format!(" in {}", duration(elapsed))
        }
    ))?;
    Ok(())
}
