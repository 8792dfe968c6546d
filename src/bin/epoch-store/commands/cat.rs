//! `epoch-store cat`.

use std::io::{self, Write};

use anyhow::Context;
use epoch_store::DOCUMENT_LIMIT;

use crate::{Ctx, EXIT_OK};

/// Write the raw bytes of a manifest or blob to stdout, verified.
///
/// Documents (up to 16 MiB) are verified before a byte is written. Larger
/// blobs are streamed and checked as they go: if the content turns out
/// damaged, the command fails with exit code 2 after the last byte, so treat
/// the output as bad unless the exit code is 0.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store cat vm:v1 | jq .\n  epoch-store cat sha256:4413... > blob"
)]
pub struct Args {
    /// A ref name or a digest.
    #[arg(value_name = "REF|DIGEST")]
    target: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let desc = layout.resolve(&args.target)?;
    let mut out = io::stdout().lock();
    if desc.size <= DOCUMENT_LIMIT {
        let bytes = layout.read_blob(&desc, DOCUMENT_LIMIT)?;
        out.write_all(&bytes)?;
    } else {
        let mut reader = layout.open_blob(&desc)?;
        io::copy(&mut reader, &mut out).with_context(|| format!("reading blob {}", desc.digest))?;
    }
    out.flush()?;
    Ok(EXIT_OK)
}
