//! `epoch-store untag`.

use epoch_store::{Digest, Error, Index, looks_like_digest, validate_ref};

use crate::{Ctx, EXIT_OK};

/// Remove refs from index.json. The data stays until `epoch-store gc`.
///
/// Every REF must exist; if one does not, nothing is removed. A name that
/// breaks the ref grammar (one another tool wrote, with a newline, say) is
/// removed too when an entry carries exactly that name: `verify` reports
/// such names and prints the command, quoted for the shell. A digest
/// removes the untagged entries of that manifest (an `add` without `--ref`,
/// a referrer `oras attach` listed); entries with a ref name stay.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store untag vm:v1\n  epoch-store untag vm:v1 vm:v2 && epoch-store gc\n  epoch-store untag sha256:<hex>   # an <untagged> row of `ls`"
)]
pub struct Args {
    /// Ref names to remove, or digests of untagged entries.
    #[arg(required = true, value_name = "REF")]
    refs: Vec<String>,
}

/// What a REF that no entry carries as its name must be: a valid digest
/// with an untagged entry, or a valid ref name (then it is missing).
fn check_missing(index: &Index, r: &str, path: &std::path::Path) -> epoch_store::Result<()> {
    if !looks_like_digest(r) {
        validate_ref(r)?;
        return Err(Error::RefNotFound {
            name: r.to_string(),
            path: path.to_path_buf(),
        });
    }
    let digest = Digest::parse(r)?;
    if index
        .entries()
        .iter()
        .any(|d| d.digest == digest && d.ref_name().is_none())
    {
        return Ok(());
    }
    let names: Vec<String> = index
        .refs()
        .filter(|(_, d)| d.digest == digest)
        .map(|(n, _)| format!("{n:?}"))
        .collect();
    let where_ = path.display();
    Err(Error::InvalidArgument(if names.is_empty() {
        format!(
            "{digest} has no entry in {where_}; `epoch-store ls` lists the entries, untagged ones as <untagged>"
        )
    } else {
        format!(
            "{digest} has no untagged entry in {where_}; it is tagged {}: untag it by name",
            names.join(", ")
        )
    }))
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let path = layout.index_path();
    // What is not in index.json is refused before the writer's lock files
    // are made, and again under the lock.
    let index = layout.read_index()?;
    for r in args.refs.iter().filter(|r| !index.has_ref(r)) {
        check_missing(&index, r, &path)?;
    }
    let writer = ctx.writer(&layout)?;
    writer.update_index(|index| {
        for r in args.refs.iter().filter(|r| !index.has_ref(r)) {
            check_missing(index, r, &path)?;
        }
        for r in &args.refs {
            // Not a name: checked above to be a digest with an untagged
            // entry (which a repeated REF may have just removed).
            if !index.remove_ref(r) && looks_like_digest(r) {
                index.remove_untagged(&Digest::parse(r)?);
            }
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
