//! `epoch-store unpack`.

use std::path::PathBuf;
use std::time::Instant;

use epoch_store::model::{Kind, classify};

use crate::output::{duration, size};
use crate::{Ctx, EXIT_OK};

/// Restore a snapshot's files, an OS image's disk, or an ECI's files into a directory.
///
/// A snapshot becomes its files; an OS image (cloud-image) becomes one disk
/// file, its parts joined in title order as cocoon-common does and named
/// after them (NAME.00.qcow2.part, ... -> NAME); an edge-container image
/// (eci) becomes one file per role, named by its title (kernel, initrd,
/// disk-root-NAME, disk-N-NAME, config.json, other files by their names),
/// from its layer or, in the legacy format, from the tar the layer holds. Every byte is checked
/// against its digest on the way; holes and all-zero blocks are left as
/// holes; modes are restored; each file is fsynced and renamed into place.
/// Existing files are refused without --force. Only plain file names are
/// ever written.
///
/// Resumable: until every file is in place, DIR holds a marker
/// (.epoch-store-unpack.json) naming the manifest. If the unpack is killed
/// or fails, running the same command again completes it without --force:
/// every file is restored again from verified blobs, and the temp files
/// the failed run left are removed. Another REF into that DIR is refused
/// unless --force.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store unpack sre-bot:v2 /var/lib/cocoon/snapshots/sre-bot\n  \
    epoch-store unpack windows:11 /var/lib/cocoon/images\n  \
    epoch-store unpack eve/app:1 ./app\n  \
    epoch-store unpack sre-bot:multi ./sre-bot --platform linux/arm64"
)]
pub struct Args {
    /// The snapshot's, OS image's or ECI's ref or digest.
    #[arg(value_name = "REF")]
    target: String,
    /// The directory to restore into (created if absent).
    dir: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    platform: crate::target::PlatformArg,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let desc = crate::target::resolve_following(&layout, &args.target, &args.platform)?;
    let (_, doc) = layout.read_document(&desc)?;
    let kind = classify(&doc, Some(&desc.media_type));
    let started = Instant::now();
    let bar = crate::progress::Bar::new(ctx.quiet);
    let options = epoch_store::formats::cocoon::UnpackOptions::default().force(args.force);
    let unpacked = match kind {
        Kind::Snapshot => epoch_store::formats::cocoon::snapshot::unpack(
            &layout, &desc, &args.dir, &options, &bar,
        ),
        Kind::CloudImage => epoch_store::formats::cocoon::os_image::unpack(
            &layout, &desc, &args.dir, &options, &bar,
        )
        .map(|f| vec![f]),
        Kind::Eci => epoch_store::formats::eci::unpack(&layout, &desc, &args.dir, args.force, &bar)
            .map(|files| files.into_iter().map(|f| f.path).collect()),
        other => anyhow::bail!(
            "{} is of kind {other}; unpack restores snapshots (into their files), OS images \
             (cloud-image, into one disk file) and edge-container images (eci, a file per role); \
             use `epoch-store cat` for single blobs",
            args.target
        ),
    };
    let files = match unpacked {
        Ok(files) => files,
        Err(e)
            if std::fs::read_to_string(args.dir.join(epoch_store::chunks::restore::MARKER))
                .is_ok_and(|m| m.contains(&desc.digest.to_string())) =>
        {
            return Err(anyhow::Error::new(e).context(format!(
                "the unpack into {} is unfinished; once the cause is fixed, run the same command \
                 again to complete it",
                args.dir.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if ctx.json {
        crate::output::json(&serde_json::json!({ "files": files }))?;
    }
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    ctx.say(format_args!(
        "Unpacked {} file{} ({} logical) into {} in {}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        size(total),
        args.dir.display(),
        duration(started.elapsed())
    ))?;
    Ok(EXIT_OK)
}
