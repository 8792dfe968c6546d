//! `epoch-store init`.

use crate::{Ctx, EXIT_OK};

/// Create an OCI image layout (or complete an interrupted one).
///
/// Creates the directory if needed, `oci-layout`, an empty `index.json` and
/// `blobs/sha256/`. Running it on an existing layout changes nothing. A
/// directory that holds other files is refused unless --force.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store --layout /media/usb/store init\n  \
    epoch-store --layout ./shared init --force   # it holds a README too"
)]
pub struct Args {
    /// Make a layout of a directory that holds other files too.
    #[arg(long)]
    force: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let options = epoch_store::InitOptions::default().force(args.force);
    let layout = epoch_store::Layout::init_with(&ctx.layout_dir, &options)?;
    if ctx.json {
        crate::output::json(&serde_json::json!({ "layout": layout.root() }))?;
    }
    ctx.say(format_args!(
        "Initialized OCI image layout in {}",
        layout.root().display()
    ))?;
    Ok(EXIT_OK)
}
