//! Resolving what a command acts on: a ref or digest, and, where it names
//! an index, the entry cocoon-common would pull (or the one `--platform`
//! names).

use epoch_store::Layout;
use epoch_store::model::Descriptor;
use epoch_store::model::platform::PlatformSpec;

/// `--platform`, for commands that follow an index to one of its entries.
#[derive(clap::Args, Debug, Default)]
pub struct PlatformArg {
    /// Where REF is an index: take its entry for this platform (default:
    /// linux/amd64, else the first entry with a known architecture, as
    /// cocoon-common pulls).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<PlatformSpec>,
}

/// The manifest `target` names, or for an index the entry to follow; a
/// fallback to another platform than linux/amd64 is said on stderr.
pub fn resolve_following(
    layout: &Layout,
    target: &str,
    platform: &PlatformArg,
) -> anyhow::Result<Descriptor> {
    let desc = layout.resolve(target)?;
    let followed =
        epoch_store::formats::cocoon::follow_index(layout, &desc, platform.platform.as_ref())?;
    if let Some(note) = &followed.fallback {
        crate::output::warn(format_args!("epoch-store: warning: {note}"));
    }
    Ok(followed.manifest)
}
