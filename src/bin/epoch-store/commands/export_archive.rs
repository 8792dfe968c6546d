//! `epoch-store export-archive`.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use epoch_store::formats::oci_archive::ArchivePlan;
use epoch_store::io::counting::Counting;

use crate::output::{duration, rate, size};
use crate::{Ctx, EXIT_OK};

/// Write refs and everything they reach as one OCI archive (a tar of an
/// OCI layout: skopeo's oci-archive:), for transports that carry one file.
///
/// The archive holds oci-layout, an index.json with exactly the entries of
/// the REFs given (their ref names kept, so `skopeo inspect
/// oci-archive:FILE:REF` finds them; a digest gives an untagged entry), and
/// every blob they reach, once. Members come in a fixed order with fixed
/// headers, so the same refs always give the same bytes. Every blob is
/// checked against its digest on the way out: up to 16 MiB before any of
/// its bytes is written, larger ones as they stream. On damage the command
/// exits 2 and the stream is left without its end-of-archive marker, so
/// readers refuse it; with -o FILE nothing is left behind (temp file,
/// fsync, rename).
///
/// Output: with -o FILE the summary goes to stdout (--json prints it as
/// JSON); with the archive on stdout the summary goes to stderr and --json
/// is refused.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store export-archive sre-bot:v2 ubuntu:24.04 -o /media/usb/bundle.tar\n  \
    epoch-store export-archive sre-bot:v2 -o - | ssh gw 'epoch-store import-archive -'\n  \
    skopeo inspect --raw oci-archive:/media/usb/bundle.tar:sre-bot:v2")]
pub struct Args {
    /// The refs or digests (sha256:...) to export.
    #[arg(value_name = "REF", required = true)]
    refs: Vec<String>,
    /// Write the archive to FILE (replaced atomically); `-` or absent: stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE|-")]
    output: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let dest = a.output.filter(|p| p.as_os_str() != "-");
    if dest.is_none() {
        if ctx.json {
            anyhow::bail!(
                "--json cannot share stdout with the archive; use -o FILE to get a JSON summary"
            );
        }
        if io::stdout().is_terminal() {
            anyhow::bail!(
                "refusing to write a binary archive to a terminal; redirect stdout \
                 (> FILE, | epoch-store import-archive -) or use -o FILE"
            );
        }
    }
    let layout = ctx.open()?;
    let started = Instant::now();
    let plan = ArchivePlan::new(&layout, &a.refs)?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    let written = match &dest {
        Some(path) => {
            epoch_store::formats::oci_archive::export_archive_file(&layout, &plan, path, &bar)?
        }
        None => {
            let out = Counting::new(BufWriter::with_capacity(1 << 20, io::stdout().lock()));
            let mut out = plan.write(&layout, out, &bar)?;
            out.inner.flush().context("write the archive to stdout")?;
            out.count
        }
    };
    let elapsed = started.elapsed();
    let shown: Vec<String> = plan
        .roots()
        .iter()
        .map(|d| {
            d.ref_name()
                .map_or_else(|| d.digest.to_string(), str::to_string)
        })
        .collect();
    let line = format!(
        "Exported {} ({} blobs, {}) to {}: {} in {} ({})",
        shown.join(", "),
        plan.blobs().len(),
        size(plan.blob_bytes()),
        dest.as_ref()
            .map_or_else(|| "stdout".to_string(), |p| p.display().to_string()),
        size(written),
        duration(elapsed),
        rate(written, elapsed)
    );
    match &dest {
        Some(path) => {
            if ctx.json {
                let refs: Vec<_> = plan
                    .roots()
                    .iter()
                    .map(|d| serde_json::json!({"ref": d.ref_name(), "digest": d.digest}))
                    .collect();
                crate::output::json(&serde_json::json!({
                    "refs": refs,
                    "blobs": plan.blobs().len(),
                    "blobBytes": plan.blob_bytes(),
                    "output": path,
                    "size": written,
                }))?;
            }
            ctx.say(line)?;
        }
        None if !ctx.quiet => crate::output::warn(line),
        None => {}
    }
    Ok(EXIT_OK)
}
