//! `epoch-store pack`.

use std::path::PathBuf;
use std::time::Instant;

use epoch_store::formats::cocoon::os_image::{self, ImageOptions};
use epoch_store::formats::cocoon::snapshot;
use epoch_store::validate_ref;

use crate::output::{duration, rate, size};
use crate::report::{report_json, tag_and_summarize};
use crate::snapshot_options::{SnapshotOptions, parse_size};
use crate::{Ctx, EXIT_OK};

/// Pack VM artifacts (snapshots, OS images, edge-container images) into the layout.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    Snapshot(SnapshotArgs),
    Image(ImageArgs),
    Eci(Box<super::pack_eci::EciArgs>),
}

/// Pack a VM snapshot directory as a cocoonstack snapshot artifact.
///
/// Sparse files are stored compacted (holes are never read or stored), with
/// cocoon's sparse map in the config. v2 cuts files larger than --chunk-size
/// at fixed offsets; chunks of all files are hashed and written on all cores.
/// A snapshot.json in DIR is the envelope (its fields go into the config),
/// not one of the files. Without one, CPU and memory come from Cloud
/// Hypervisor's config.json, which must then be one: a config.json that
/// cannot be read or is not CH's (not JSON, no cpus.boot_vcpus or
/// memory.size integers) stops the pack with exit 2, unless
/// --no-ch-config says it is some other file.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store pack snapshot /var/lib/cocoon/snapshots/sre-bot --ref sre-bot:v2\n  \
    epoch-store pack snapshot ./snap --ref vm:1 --format v1\n  \
    epoch-store pack snapshot ./firecracker-snap --ref fc:1 --no-ch-config"
)]
struct SnapshotArgs {
    /// The snapshot directory.
    dir: PathBuf,
    /// Tag it with this ref.
    #[arg(long = "ref", value_name = "REF")]
    ref_name: String,
    /// config.json is not Cloud Hypervisor's: store it as a plain file and
    /// record no CPU or memory.
    #[arg(long)]
    no_ch_config: bool,
    #[command(flatten)]
    options: SnapshotOptions,
}

/// Pack a disk image as a cocoonstack OS image (os-image artifact).
///
/// The format (qcow2 or raw) is detected from the content. A file larger
/// than --part-size is split at fixed offsets into parts titled as
/// `split -b SIZE -d --additional-suffix=.qcow2.part FILE FILE.` names them
/// (NAME.00.qcow2.part, NAME.01.qcow2.part, ...), so that cocoon-common, or
/// `cat NAME.*.qcow2.part > NAME`, joins them back; a SHA256SUMS layer
/// covers the parts. Holes are never read, and stay holes in the stored
/// parts. Parts are hashed and written on all cores.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store pack image ubuntu-24.04.qcow2 --ref ubuntu:24.04\n  \
    epoch-store pack image win11.qcow2 --ref windows:11 --name windows-11-25h2.qcow2\n  \
    epoch-store pack image disk.raw --ref disk:1 --part-size 512MiB --no-sha256sums"
)]
struct ImageArgs {
    /// The disk image file (qcow2 or raw).
    file: PathBuf,
    /// Tag it with this ref.
    #[arg(long = "ref", value_name = "REF")]
    ref_name: String,
    /// Split files larger than this into parts of this size (e.g. 512MiB; 1900MiB as cocoonstack's build).
    #[arg(long, value_name = "SIZE", default_value = "512MiB", value_parser = parse_size)]
    part_size: u64,
    /// Use the legacy Windows disk media types (application/vnd.cocoonstack.windows.disk.*).
    #[arg(long)]
    windows: bool,
    /// The file name in layer titles (default: FILE's name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Do not add the SHA256SUMS layer.
    #[arg(long)]
    no_sha256sums: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    match args.what {
        What::Snapshot(a) => run_snapshot(ctx, a),
        What::Image(a) => run_image(ctx, a),
        What::Eci(a) => super::pack_eci::run(ctx, *a),
    }
}

fn run_image(ctx: &Ctx, a: ImageArgs) -> anyhow::Result<u8> {
    validate_ref(&a.ref_name)?;
    let layout = ctx.open()?;
    let options = ImageOptions::default()
        .part_size(a.part_size)
        .windows(a.windows)
        .name(a.name.clone())
        .sha256sums(!a.no_sha256sums);
    let started = Instant::now();
    let writer = ctx.writer(&layout)?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    let manifest = os_image::pack(&writer, &a.file, &options, &bar)?;
    let summary = tag_and_summarize(&layout, &writer, &a.ref_name, &manifest)?;
    let elapsed = started.elapsed();
    let logical = std::fs::metadata(&a.file).map(|m| m.len()).unwrap_or(0);
    let parts = summary
        .document
        .iter()
        .flat_map(|d| d.layers.iter().flatten())
        .filter(|l| epoch_store::formats::cocoon::config::is_disk_media_type(&l.media_type))
        .count();
    report_json(
        ctx,
        &a.ref_name,
        &summary,
        serde_json::json!({ "parts": parts }),
    )?;
    ctx.say(format_args!(
        "Packed {} as {} ({}): {} in {} part{} in {} ({})",
        a.file.display(),
        a.ref_name,
        manifest.digest,
        size(logical),
        parts,
        if parts == 1 { "" } else { "s" },
        duration(elapsed),
        rate(logical, elapsed)
    ))?;
    Ok(EXIT_OK)
}

fn run_snapshot(ctx: &Ctx, a: SnapshotArgs) -> anyhow::Result<u8> {
    validate_ref(&a.ref_name)?;
    let layout = ctx.open()?;
    let options = a.options.to_pack_options().ch_config(!a.no_ch_config);
    let started = Instant::now();
    let writer = ctx.writer(&layout)?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    let snapshot::Packed {
        manifest, warnings, ..
    } = snapshot::pack(&writer, &a.dir, &options, &bar)?;
    for w in &warnings {
        crate::output::warn(format_args!("epoch-store: warning: {w}"));
    }
    let summary = tag_and_summarize(&layout, &writer, &a.ref_name, &manifest)?;
    let elapsed = started.elapsed();
    report_json(
        ctx,
        &a.ref_name,
        &summary,
        serde_json::json!({ "warnings": warnings }),
    )?;
    ctx.say(format_args!(
        "Packed {} as {} ({}): {} stored in {} ({})",
        a.dir.display(),
        a.ref_name,
        manifest.digest,
        size(summary.size),
        duration(elapsed),
        rate(summary.size, elapsed)
    ))?;
    Ok(EXIT_OK)
}
