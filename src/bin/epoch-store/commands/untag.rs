//! `epoch-store untag`.

use epoch_store::{Error, validate_ref};

use crate::{Ctx, EXIT_OK};

/// Remove refs from index.json. The data stays until `epoch-store gc`.
///
/// Every REF must exist; if one does not, nothing is removed. A name that
/// breaks the ref grammar (one another tool wrote, with a newline, say) is
/// removed too when an entry carries exactly that name: `verify` reports
/// such names and prints the command, quoted for the shell.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store untag vm:v1\n  epoch-store untag vm:v1 vm:v2 && epoch-store gc"
)]
pub struct Args {
    /// Ref names to remove.
    #[arg(required = true, value_name = "REF")]
    refs: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    // Names that are not in index.json must be valid: refused before the
    // writer's lock files are made.
    let index = layout.read_index()?;
    for r in args.refs.iter().filter(|r| !index.has_ref(r)) {
        validate_ref(r)?;
    }
    let writer = ctx.writer(&layout)?;
    writer.update_index(|index| {
        if let Some(missing) = args.refs.iter().find(|r| !index.has_ref(r)) {
            validate_ref(missing)?;
            return Err(Error::RefNotFound {
                name: missing.clone(),
                path: layout.index_path(),
            });
        }
        for r in &args.refs {
            index.remove_ref(r);
        }
        Ok(())
    })?;
    if ctx.json {
        crate::output::json(&serde_json::json!({ "removed": args.refs }))?;
    }
    for r in &args.refs {
        ctx.say(format_args!("Untagged {r}"))?;
    }
    ctx.say("Run `epoch-store gc` to reclaim the space once nothing else needs it.")?;
    Ok(EXIT_OK)
}
