//! `epoch-store import-archive`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use epoch_store::formats::oci_archive::{ImportOptions, ImportReport, RefChange};
use epoch_store::{NoProgress, Progress};

use crate::output::{duration, rate, size};
use crate::{Ctx, EXIT_OK};

/// Store an OCI archive (a tar of an OCI layout: what export-archive and
/// skopeo's oci-archive: write) or a docker archive (what docker save,
/// skopeo's docker-archive: and export-archive --format docker write) and
/// tag its refs.
///
/// Reads the tar (plain or gzip, detected by content) from FILE or stdin
/// once, front to back. Every blobs/<alg>/<hex> member is hashed while it
/// is written and kept only if it hashes to its name; blobs already here
/// are hashed, not written again. Links, devices, `..`, absolute paths and
/// names other than oci-layout, index.json and blobs/... are refused, as
/// are truncated archives. Then, before index.json is touched, every entry
/// must be complete (all it reaches present); its refs are added, or moved
/// with --force when they exist here with another digest. On any error
/// nothing is tagged; blobs already stored stay unreferenced until gc.
/// A tar with an oci-layout member is an OCI archive (docker save 25 and
/// later writes one beside its manifest.json; the OCI index is used). One
/// with manifest.json and no oci-layout is a docker archive: every member
/// is stored while it is hashed (symlinks followed inside the archive),
/// then each manifest.json item becomes a Docker v2 manifest over its
/// config and layers, byte for byte, tagged with its RepoTags
/// (docker.io/library/x:t as x:t, docker.io/u/x:t as u/x:t); members no
/// item names are left for gc.
/// The layout is created if its directory does not exist or is empty; a
/// FILE that is a FIFO or device is refused (send a stream on stdin).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store import-archive /media/usb/bundle.tar\n  \
    skopeo copy docker://alpine:3 oci-archive:alpine.tar:alpine:3 && epoch-store import-archive alpine.tar\n  \
    docker save alpine:3 -o alpine.tar && epoch-store import-archive alpine.tar\n  \
    ssh src 'epoch-store export-archive vm:v1 -o -' | epoch-store import-archive - --force")]
pub struct Args {
    /// The archive, plain or gzip; `-` (the default) reads stdin.
    #[arg(value_name = "FILE|-", default_value = "-")]
    file: PathBuf,
    /// Move refs that exist here with another digest to the archive's.
    #[arg(long)]
    force: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let input = crate::input::open(
        &a.file,
        "an archive; pipe one in (epoch-store export-archive REF -o - | epoch-store import-archive -)",
    )?;
    let layout = ctx.open_or_create("import-archive")?;
    let from = input.name.clone();
    let started = Instant::now();
    let writer = ctx.writer(&layout)?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    bar.begin("importing", input.total);
    let mut counted = crate::input::Counted::new(input.reader, &bar);
    let options = ImportOptions::default().force(a.force);
    let report = epoch_store::formats::oci_archive::import_archive(
        &writer,
        &mut counted,
        &options,
        &NoProgress,
    )
    .with_context(|| {
        format!(
            "import of {from} failed; nothing was tagged (blobs already stored are \
                     unreferenced and go with the next `epoch-store gc`)"
        )
    })?;
    bar.finish();
    drop(writer);
    let elapsed = started.elapsed();
    if ctx.json {
        print_json(&report)?;
    }
    print_human(ctx, &from, &report, counted.count, elapsed)?;
    Ok(EXIT_OK)
}

/// With `--json`: each ref and what happened to it, and the blob counts.
fn print_json(report: &ImportReport) -> anyhow::Result<()> {
    let refs: Vec<_> = report
        .refs
        .iter()
        .map(|r| {
            let (change, previous) = match &r.change {
                RefChange::Added => ("added", None),
                RefChange::Unchanged => ("unchanged", None),
                RefChange::Replaced(d) => ("replaced", Some(d.to_string())),
            };
            serde_json::json!({
                "ref": r.name,
                "digest": r.descriptor.digest,
                "mediaType": r.descriptor.media_type,
                "change": change,
                "previous": previous,
            })
        })
        .collect();
    crate::output::json(&serde_json::json!({
        "refs": refs,
        "blobs": report.blobs,
        "bytesWritten": report.bytes_written,
        "blobsSkipped": report.blobs_skipped,
    }))
}

/// The confirmation: the refs, the blobs and the bytes read.
fn print_human(
    ctx: &Ctx,
    from: &str,
    report: &ImportReport,
    read: u64,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let names: Vec<String> = report
        .refs
        .iter()
        .map(|r| {
            let name = r
                .name
                .clone()
                .unwrap_or_else(|| format!("<untagged> {}", r.descriptor.digest));
            match &r.change {
                RefChange::Added => name,
                RefChange::Unchanged => format!("{name} (unchanged)"),
                RefChange::Replaced(old) => format!("{name} (moved from {})", old.short()),
            }
        })
        .collect();
    ctx.say(format_args!(
        "Imported {from}: {}; {} blobs ({} already here), {} written, {} read in {} ({})",
        names.join(", "),
        report.blobs,
        report.blobs_skipped,
        size(report.bytes_written),
        size(read),
        duration(elapsed),
        rate(read, elapsed)
    ))?;
    Ok(())
}
