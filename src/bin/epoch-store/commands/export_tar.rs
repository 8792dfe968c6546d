//! `epoch-store export-tar`.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use epoch_store::io::counting::Counting;

use crate::output::{duration, rate, size};
use crate::{Ctx, EXIT_OK};

/// Write a snapshot as the tar stream `cocoon snapshot import` reads.
///
/// snapshot.json comes first (written from the config, named after REF
/// without its tag, or the snapshot id when REF is a digest; --name sets
/// it), then each file with its mode, sparse files compacted with their
/// COCOON.sparse records. Chunks are joined and decompressed, and every one
/// is checked against its digest: chunks up to 16 MiB before any of their
/// bytes is written, larger ones as they stream. On damage the command
/// exits 2 and the stream is left without its end-of-archive marker, so
/// importers refuse it; with -o FILE nothing is left behind at all (the tar
/// is written to a temp file, fsynced, then renamed to FILE).
///
/// Output: with -o FILE the summary goes to stdout (--json prints it as
/// JSON); with stdout as the tar stream the summary goes to stderr and
/// --json is refused, so that nothing else is ever mixed into the tar.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store export-tar sre-bot:v2 -o - | cocoon snapshot import\n  \
    epoch-store export-tar sre-bot:v2 -o /media/usb/sre-bot.tar\n  \
    epoch-store export-tar sha256:4413... --name sre-bot > sre-bot.tar")]
pub struct Args {
    /// The snapshot's ref or digest.
    #[arg(value_name = "REF")]
    target: String,
    /// Write the tar to FILE (replaced atomically); `-` or absent: stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE|-")]
    output: Option<PathBuf>,
    /// The snapshot name in snapshot.json.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    platform: crate::target::PlatformArg,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let dest = a.output.filter(|p| p.as_os_str() != "-");
    if dest.is_none() {
        if ctx.json {
            anyhow::bail!(
                "--json cannot share stdout with the tar stream; use -o FILE to get a JSON summary"
            );
        }
        if io::stdout().is_terminal() {
            anyhow::bail!(
                "refusing to write a binary tar to a terminal; redirect stdout \
                 (> FILE, | cocoon snapshot import) or use -o FILE"
            );
        }
    }
    let layout = ctx.open()?;
    let desc = crate::target::resolve_following(&layout, &a.target, &a.platform)?;
    let started = Instant::now();
    let bar = crate::progress::Bar::new(ctx.quiet);
    let name = a.name.as_deref();
    let written = match &dest {
        Some(path) => {
            epoch_store::formats::cocoon::stream::export_tar_file(&layout, &desc, name, path, &bar)?
        }
        None => {
            let out = Counting::new(BufWriter::with_capacity(1 << 20, io::stdout().lock()));
            let mut out = epoch_store::formats::cocoon::stream::export_tar_as(
                &layout, &desc, name, out, &bar,
            )?;
            out.inner.flush().context("write the tar to stdout")?;
            out.count
        }
    };
    let elapsed = started.elapsed();
    let shown = desc.ref_name().unwrap_or(&a.target).to_string();
    match &dest {
        Some(path) => {
            if ctx.json {
                crate::output::json(&serde_json::json!({
                    "ref": desc.ref_name(),
                    "digest": desc.digest,
                    "output": path,
                    "size": written,
                }))?;
            }
            ctx.say(format_args!(
                "Exported {shown} ({}) to {}: {} in {} ({})",
                desc.digest,
                path.display(),
                size(written),
                duration(elapsed),
                rate(written, elapsed)
            ))?;
        }
        None if !ctx.quiet => crate::output::warn(format_args!(
            "Exported {shown} ({}) to stdout: {} in {} ({})",
            desc.digest,
            size(written),
            duration(elapsed),
            rate(written, elapsed)
        )),
        None => {}
    }
    Ok(EXIT_OK)
}
