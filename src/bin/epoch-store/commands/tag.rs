//! `epoch-store tag`.

use epoch_store::model::media_type;
use epoch_store::{Error, validate_ref};

use crate::{Ctx, EXIT_OK};

/// Point NEWREF at what SRC (a ref or a digest) names.
///
/// Moving an existing tag replaces its entry; several tags may share one
/// manifest. The target must be a manifest or index in the layout.
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
    let writer = layout.writer()?;
    let target = writer.update_index(|index| {
        let mut target = layout.resolve_in(index, &args.src)?;
        if !media_type::is_document(&target.media_type) {
            return Err(Error::InvalidArgument(format!(
                "{} is a {} blob, not a manifest or index; only manifests can be tagged",
                target.digest, target.media_type
            )));
        }
        // The document must be intact: a tag must never point at damage.
        layout.read_document(&target)?;
        target
            .annotations
            .remove(epoch_store::model::annotation::REF_NAME);
        index.set_ref(&args.new_ref, &target);
        Ok(target)
    })?;
    if ctx.json {
        crate::output::json(&serde_json::json!({ "ref": args.new_ref, "digest": target.digest }))?;
    }
    ctx.say(format_args!("Tagged {} as {}", target.digest, args.new_ref))?;
    Ok(EXIT_OK)
}
