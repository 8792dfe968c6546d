//! `epoch-store pack`.

use std::path::PathBuf;
use std::time::Instant;

use epoch_store::formats::cocoon::os_image::{ImageOptions, pack_image};
use epoch_store::formats::cocoon::snapshot::{Format, PackOptions, pack_dir};
use epoch_store::validate_ref;

use crate::output::{duration, rate, size};
use crate::{Ctx, EXIT_OK};

/// Pack VM artifacts into the layout.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    Snapshot(SnapshotArgs),
    Image(ImageArgs),
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

/// How a snapshot is laid out: shared by `pack snapshot` and `import-tar`.
#[derive(clap::Args, Debug)]
pub(crate) struct SnapshotOptions {
    /// v1: one layer per file; v2: chunked.
    #[arg(long, default_value = "v2", value_parser = ["v1", "v2"])]
    format: String,
    /// v2 chunk size (e.g. 64MiB, 512MiB; at most 4GiB).
    #[arg(long, value_name = "SIZE", default_value = "512MiB", value_parser = parse_size)]
    chunk_size: u64,
    /// Compress files of 1 MiB or more, chunk by chunk: zstd (level 3) or zstd:N (1-22). Needs v2.
    #[arg(long, value_name = "zstd[:N]", value_parser = parse_compress)]
    compress: Option<i32>,
    /// A description stored with the snapshot (for import-tar, it replaces the envelope's).
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

impl SnapshotOptions {
    /// The library's options.
    pub(crate) fn to_pack_options(&self) -> PackOptions {
        PackOptions::default()
            .format(if self.format == "v1" {
                Format::V1
            } else {
                Format::V2
            })
            .chunk_size(self.chunk_size)
            .description(self.description.clone())
            .zstd_level(self.compress)
    }
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

fn parse_compress(s: &str) -> Result<i32, String> {
    match s.split_once(':') {
        None if s == "zstd" => Ok(3),
        Some(("zstd", n)) => match n.parse::<i32>() {
            Ok(level @ 1..=22) => Ok(level),
            _ => Err(format!("zstd level {n:?} must be 1 to 22")),
        },
        _ => Err("expected zstd or zstd:LEVEL (e.g. zstd:3)".into()),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    epoch_store::io::size::parse_size(s).map_err(|e| e.to_string())
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    match args.what {
        What::Snapshot(a) => run_snapshot(ctx, a),
        What::Image(a) => run_image(ctx, a),
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
    let manifest = pack_image(&writer, &a.file, &options, &bar)?;
    let summary = tag(&layout, &writer, &a.ref_name, &manifest)?;
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
    let manifest = pack_dir(&writer, &a.dir, &options, &bar)?;
    let summary = tag(&layout, &writer, &a.ref_name, &manifest)?;
    let elapsed = started.elapsed();
    report_json(ctx, &a.ref_name, &summary, serde_json::json!({}))?;
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

/// Tags a manifest just written as `ref_name` and sums up what it reaches.
pub(crate) fn tag(
    layout: &epoch_store::Layout,
    writer: &epoch_store::Writer<'_>,
    ref_name: &str,
    manifest: &epoch_store::Descriptor,
) -> anyhow::Result<epoch_store::Summary> {
    writer.update_index(|index| {
        index.set_ref(ref_name, manifest);
        Ok(())
    })?;
    Ok(layout.summarize(manifest)?)
}

/// With `--json`: `{"ref", "digest", "artifactType", "size"}` plus `extra`'s fields.
pub(crate) fn report_json(
    ctx: &Ctx,
    ref_name: &str,
    summary: &epoch_store::Summary,
    extra: serde_json::Value,
) -> anyhow::Result<()> {
    if !ctx.json {
        return Ok(());
    }
    let mut v = serde_json::json!({
        "ref": ref_name,
        "digest": summary.descriptor.digest,
        "artifactType": summary.descriptor.artifact_type,
        "size": summary.size,
    });
    if let (Some(v), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    crate::output::json(&v)
}
