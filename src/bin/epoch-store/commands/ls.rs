//! `epoch-store ls`.

use std::io::Write;

use epoch_store::Listing;

use crate::output::size;
use crate::{Ctx, EXIT_OK};

/// List refs and untagged roots with their kind and total size.
///
/// JSON: `[{"ref","digest","mediaType","artifactType","kind","size"}]`, where
/// `size` is the bytes the entry reaches (each blob once) and `ref` is null
/// for untagged roots.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  epoch-store ls\n  epoch-store --json ls | jq -r '.[].ref'")]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let index = layout.read_index()?;
    let mut rows = Vec::new();
    for entry in index.entries() {
        let summary = layout.summarize(entry);
        let (kind, total) = match &summary {
            Ok(s) => (s.kind, s.size),
            Err(e) => {
                crate::output::warn(format_args!(
                    "epoch-store: warning: {}: {e}; run `epoch-store verify`",
                    entry.digest
                ));
                (epoch_store::model::Kind::Unknown, entry.size)
            }
        };
        let artifact_type = entry.artifact_type.clone().or_else(|| {
            summary
                .as_ref()
                .ok()
                .and_then(|s| s.document.as_ref())
                .and_then(|d| d.artifact_type.clone())
        });
        rows.push(Listing {
            ref_name: entry.ref_name().map(str::to_string),
            digest: entry.digest.clone(),
            media_type: entry.media_type.clone(),
            artifact_type,
            kind,
            size: total,
        });
    }
    if ctx.json {
        crate::output::json(&rows)?;
        return Ok(EXIT_OK);
    }
    if ctx.quiet {
        return Ok(EXIT_OK);
    }
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(
            out,
            "No refs. Add some with `epoch-store add --ref NAME:TAG FILE...`."
        )?;
        return Ok(EXIT_OK);
    }
    let width = rows
        .iter()
        .map(|r| r.ref_name.as_deref().unwrap_or("<untagged>").len())
        .max()
        .unwrap_or(3)
        .max(3);
    writeln!(
        out,
        "{:<width$}  {:<15}  {:>10}  DIGEST",
        "REF", "KIND", "SIZE"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<width$}  {:<15}  {:>10}  {}",
            r.ref_name.as_deref().unwrap_or("<untagged>"),
            r.kind.as_str(),
            size(r.size),
            r.digest
        )?;
    }
    Ok(EXIT_OK)
}
