//! `epoch-store pack eci`.

use std::path::PathBuf;
use std::time::Instant;

use epoch_store::formats::eci::{self, Disk, EciFiles, Format, PackOptions};
use epoch_store::model::platform::PlatformSpec;
use epoch_store::validate_ref;

use crate::output::{duration, rate, size};
use crate::report::{report_json, tag_and_summarize};
use crate::{Ctx, EXIT_OK};

/// Pack files as an lf-edge edge-container image (ECI).
///
/// Each file becomes one layer of an OCI image manifest, with lf-edge's
/// media types and annotations (org.lfedge.eci.mediaType,
/// org.lfedge.eci.role, title), as github.com/lf-edge/edge-containers
/// writes it. Titles: kernel, initrd, disk-root-NAME, disk-N-NAME,
/// config.json, other files by their names. --format artifacts (the
/// default) stores each file as it is, with its lfedge media type; legacy
/// puts each file alone in a gzip tar layer (a container tool can pull it)
/// with the --timestamp as mtime. Without --config the config is an OCI
/// image config whose labels name each file's path.
///
/// A disk is FILE[:TYPE]; TYPE is one of raw, vmdk, vhd, iso, qcow, qcow2,
/// ova, vhdx. Without :TYPE it comes from FILE's extension (one of those,
/// .img is raw), else raw. Every file is opened before anything is written;
/// a missing file or an unknown type stops the pack (exit 2) and nothing
/// is tagged.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store pack eci --kernel vmlinuz --initrd initrd.img --root rootfs.img --ref eve/app:1\n  \
    epoch-store pack eci --root disk.qcow2 --disk data.img:raw --disk seed.iso --config eci.json \\\n    \
    --ref eve/app:2 --format legacy\n  \
    epoch-store --json pack eci --root win.vhdx --other README.txt --ref win:1")]
pub(crate) struct EciArgs {
    /// The kernel.
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// The initrd.
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// The root disk and its type.
    #[arg(long, value_name = "FILE[:TYPE]", value_parser = parse_disk)]
    root: Option<Disk>,
    /// An additional disk and its type (repeatable; disk-0, disk-1, ... in order).
    #[arg(long = "disk", value_name = "FILE[:TYPE]", value_parser = parse_disk)]
    disks: Vec<Disk>,
    /// The ECI config file (stored as config.json).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Another file, titled with its name (repeatable).
    #[arg(long = "other", value_name = "FILE")]
    others: Vec<PathBuf>,
    /// Tag it with this ref.
    #[arg(long = "ref", value_name = "REF")]
    ref_name: String,
    /// artifacts (each file its layer) or legacy (each file in a gzip tar).
    #[arg(long, value_name = "FORMAT", default_value = "artifacts")]
    format: Format,
    /// mtime of the legacy tar headers and `created` of the generated
    /// config, in seconds since 1970.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    timestamp: u64,
    /// os/arch of the generated config (default linux on this machine's
    /// architecture).
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<PlatformSpec>,
}

fn parse_disk(s: &str) -> Result<Disk, String> {
    Disk::parse(s).map_err(|e| e.to_string())
}

pub(crate) fn run(ctx: &Ctx, a: EciArgs) -> anyhow::Result<u8> {
    validate_ref(&a.ref_name)?;
    let layout = ctx.open()?;
    let files = EciFiles {
        kernel: a.kernel,
        initrd: a.initrd,
        root: a.root,
        disks: a.disks,
        config: a.config,
        others: a.others,
    };
    let mut options = PackOptions {
        format: a.format,
        timestamp: a.timestamp,
        ..PackOptions::default()
    };
    if let Some(p) = a.platform {
        options.platform = p;
    }
    let started = Instant::now();
    let writer = ctx.writer(&layout)?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    let manifest = eci::pack(&writer, &files, &options, &bar)?;
    let summary = tag_and_summarize(&layout, &writer, &a.ref_name, &manifest)?;
    let elapsed = started.elapsed();
    let image = eci::read(&layout, &manifest)?;
    let roles: Vec<_> = image
        .parts
        .iter()
        .map(|p| serde_json::json!({"role": p.role, "name": p.name, "diskType": p.disk_type}))
        .collect();
    report_json(
        ctx,
        &a.ref_name,
        &summary,
        serde_json::json!({ "kind": "eci", "format": image.format, "roles": roles }),
    )?;
    ctx.say(format_args!(
        "Packed {} file{} as {} ({}, {}): {} stored in {} ({})",
        image.parts.len(),
        if image.parts.len() == 1 { "" } else { "s" },
        a.ref_name,
        image.format,
        manifest.digest,
        size(summary.size),
        duration(elapsed),
        rate(summary.size, elapsed)
    ))?;
    Ok(EXIT_OK)
}
