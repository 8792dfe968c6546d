//! `epoch-store init`.

use crate::{Ctx, EXIT_OK};

/// Create an OCI image layout (or complete an interrupted one).
///
/// Creates the directory if needed, `oci-layout`, an empty `index.json` and
/// `blobs/sha256/`. Running it on an existing layout changes nothing.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  epoch-store --layout /media/usb/store init")]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<u8> {
    let layout = epoch_store::Layout::init(&ctx.layout_dir)?;
    if ctx.json {
        crate::output::json(&serde_json::json!({ "layout": layout.root() }))?;
    }
    ctx.say(format_args!(
        "Initialized OCI image layout in {}",
        layout.root().display()
    ))?;
    Ok(EXIT_OK)
}
