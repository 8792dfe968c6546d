//! `epoch-store tag`.

use epoch_store::validate_ref;

use crate::{Ctx, EXIT_OK};

/// Point NEWREF at what SRC (a ref or a digest) names.
///
/// Moving an existing tag replaces its entry; several tags may share one
/// manifest. The target must be a manifest or index in the layout, and
/// everything it reaches must be there, intact (documents verified, sizes
/// and `data` fields right): a tag never points at an incomplete graph.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store tag vm:v1 vm:latest\n  epoch-store tag sha256:4413... vm:v2"
)]
pub struct Args {
    /// The ref or digest to tag.
    #[arg(value_name = "SRC")]
    src: String,
    /// The new ref name.
    #[arg(value_name = "NEWREF")]
    new_ref: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    validate_ref(&args.new_ref)?;
    let layout = ctx.open()?;
    let target = ctx.writer(&layout)?.tag(&args.src, &args.new_ref)?;
    if ctx.json {
        crate::output::json(&serde_json::json!({ "ref": args.new_ref, "digest": target.digest }))?;
    }
    ctx.say(format_args!("Tagged {} as {}", target.digest, args.new_ref))?;
    Ok(EXIT_OK)
}
