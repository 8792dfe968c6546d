//! `epoch-store push`.

use std::time::Instant;

use epoch_store::transport::registry::{self, Client, Reference};

use crate::output::{duration, rate, size};
use crate::remote::{RemoteArgs, parse_reference};
use crate::{Ctx, EXIT_OK};

/// Push a ref and everything it reaches to an OCI registry.
///
/// Blobs the registry has are skipped (HEAD); the others are uploaded,
/// several at once, streamed from the store and checked as they are read;
/// then the manifests, children before the indexes that name them, the
/// ref's last under DEST's tag (default: REF's tag).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store push sre-bot:v1 registry.internal:5000/vms/sre-bot\n  \
    epoch-store push alpine:3.20 127.0.0.1:5000/library/alpine:3.20 --plain-http\n  \
    echo \"$TOKEN\" | epoch-store push app:1 ghcr.io/team/app:1 --username bot --password-stdin\n\n\
Exit codes: 0 pushed, 2 error (unreachable, refused, a damaged blob): what was\n\
put stays, and the same command finishes the push.")]
pub struct Args {
    /// The ref (or digest) to push.
    #[arg(value_name = "REF")]
    source: String,
    /// Where: HOST[:PORT]/REPO[:TAG|@DIGEST].
    #[arg(value_name = "DEST", value_parser = parse_reference)]
    dest: Reference,
    /// Blobs larger than this go up in PATCHes of this size, in order
    /// (smaller blobs in one PUT); keep it under a proxy's body limit.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_chunk)]
    chunk_size: u64,
    #[command(flatten)]
    remote: RemoteArgs,
}

fn parse_chunk(s: &str) -> Result<u64, String> {
    match epoch_store::io::size::parse_size(s) {
        Ok(0) => Err("the chunk size must be more than 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let root = layout.resolve(&a.source)?;
    let mut dest = a.dest;
    if dest.tag.is_none() && dest.digest.is_none() {
        let (_, tag) = epoch_store::split_tag(&a.source);
        dest.tag = Some(
            tag.filter(|t| registry::reference::valid_tag(t))
                .unwrap_or("latest")
                .to_string(),
        );
    }
    let client = Client::new(&dest, &a.remote.options()?);
    let started = Instant::now();
    let report = registry::push(
        &layout,
        &root,
        &client,
        &dest,
        a.remote.jobs as usize,
        a.chunk_size,
    )?;
    let elapsed = started.elapsed();
    if ctx.json {
        return crate::output::json(&serde_json::json!({
            "ref": a.source,
            "to": dest.to_string(),
            "digest": root.digest,
            "documents": report.documents,
            "blobs": report.blobs,
            "blobsSkipped": report.blobs_skipped,
            "bytes": report.bytes,
            "retries": report.retries,
            "resentBytes": report.resent_bytes,
            "seconds": elapsed.as_secs_f64(),
        }))
        .map(|()| EXIT_OK);
    }
    ctx.say(format_args!(
        "Pushed {} to {} ({}): {} blob{} sent ({}), {} already there, {} document{} in {} ({})",
        a.source,
        dest,
        root.digest,
        report.blobs,
        if report.blobs == 1 { "" } else { "s" },
        size(report.bytes),
        report.blobs_skipped,
        report.documents,
        if report.documents == 1 { "" } else { "s" },
        duration(elapsed),
        rate(report.bytes, elapsed)
    ))?;
    Ok(EXIT_OK)
}
