//! `epoch-store export-archive`.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use epoch_store::formats::docker_archive::DockerArchivePlan;
use epoch_store::formats::oci_archive::ArchivePlan;
use epoch_store::io::counting::Counting;
use epoch_store::model::platform::PlatformSpec;

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
/// With --format docker it writes what `docker save` and skopeo's
/// docker-archive: write instead: manifest.json (one item per image, each
/// REF a RepoTags entry, `:latest` added to a ref without a tag),
/// repositories, and each config (<hex>.json) and layer (<hex>.tar) once,
/// as stored. A REF may be a Docker v2 or OCI image manifest; an index
/// needs --platform (its best image for it is taken).
///
/// Output: with -o FILE the summary goes to stdout (--json prints it as
/// JSON); with the archive on stdout the summary goes to stderr and --json
/// is refused.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store export-archive sre-bot:v2 ubuntu:24.04 -o /media/usb/bundle.tar\n  \
    epoch-store export-archive sre-bot:v2 -o - | ssh gw 'epoch-store import-archive -'\n  \
    skopeo inspect --raw oci-archive:/media/usb/bundle.tar:sre-bot:v2\n  \
    epoch-store export-archive --format docker alpine:3 --platform linux/arm64 -o alpine.tar && docker load -i alpine.tar\n  \
    epoch-store export-archive --format docker app:1 -o app.tar && skopeo copy docker-archive:app.tar oci:app-oci")]
pub struct Args {
    /// The refs or digests (sha256:...) to export.
    #[arg(value_name = "REF", required = true)]
    refs: Vec<String>,
    /// Write the archive to FILE (replaced atomically); `-` or absent: stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE|-")]
    output: Option<PathBuf>,
    /// What to write: an OCI archive (oci, skopeo's oci-archive:) or what
    /// docker save writes (docker, skopeo's docker-archive:).
    #[arg(long, value_enum, default_value_t = Format::Oci)]
    format: Format,
    /// With --format docker: of an index, export its best image for this
    /// platform.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<PlatformSpec>,
}

/// The archive formats `export-archive` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A tar of an OCI layout.
    Oci,
    /// A docker save tarball.
    Docker,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let dest = destination(ctx, &a)?;
    let layout = ctx.open()?;
    if a.format == Format::Docker {
        return run_docker(ctx, &layout, &a, dest);
    }
    if a.platform.is_some() {
        anyhow::bail!(
            "--platform is for --format docker; an OCI archive carries whole indexes (use \
             `epoch-store copy REF --platform P` to narrow one first)"
        );
    }
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

/// `-o FILE`, or `None` for stdout (refused on a terminal and with --json).
fn destination(ctx: &Ctx, a: &Args) -> anyhow::Result<Option<PathBuf>> {
    let dest = a.output.clone().filter(|p| p.as_os_str() != "-");
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
    Ok(dest)
}

/// `--format docker`: the archive, then the same summary as an OCI export.
fn run_docker(
    ctx: &Ctx,
    layout: &epoch_store::Layout,
    a: &Args,
    dest: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let started = Instant::now();
    let plan = DockerArchivePlan::new(layout, &a.refs, a.platform.as_ref())?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    let written = match &dest {
        Some(path) => epoch_store::formats::docker_archive::export_docker_archive_file(
            layout, &plan, path, &bar,
        )?,
        None => {
            let out = Counting::new(BufWriter::with_capacity(1 << 20, io::stdout().lock()));
            let mut out = plan.write(layout, out, &bar)?;
            out.inner.flush().context("write the archive to stdout")?;
            out.count
        }
    };
    let elapsed = started.elapsed();
    let mut shown: Vec<String> = plan.repo_tags().iter().map(|t| t.to_string()).collect();
    if shown.is_empty() {
        shown = plan
            .manifests()
            .iter()
            .map(|d| d.digest.to_string())
            .collect();
    }
    let line = format!(
        "Exported {} as a docker archive ({} blobs, {}) to {}: {} in {} ({})",
        shown.join(", "),
        plan.blob_count(),
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
                let images: Vec<_> = plan
                    .manifests()
                    .iter()
                    .map(|d| serde_json::json!({"digest": d.digest, "mediaType": d.media_type}))
                    .collect();
                crate::output::json(&serde_json::json!({
                    "format": "docker",
                    "images": images,
                    "repoTags": plan.repo_tags(),
                    "blobs": plan.blob_count(),
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
