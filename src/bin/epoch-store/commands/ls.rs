//! `epoch-store ls`.

use epoch_store::io::text::escape;
use epoch_store::model::Kind;
use epoch_store::{Digest, formats};
use serde::Serialize;

use crate::output::size;
use crate::{Ctx, EXIT_OK};

/// List refs and untagged roots with their kind, stored and logical size.
///
/// STORED is the bytes an entry reaches in the layout (each blob once).
/// LOGICAL is what a snapshot's files or an OS image's disk take once
/// unpacked, holes included ("-" for other kinds).
///
/// An index is shown with the platforms of its entries.
///
/// JSON: `[{"ref","digest","mediaType","artifactType","kind","size","logicalSize","platforms"}]`,
/// where `ref` and `logicalSize` may be null, and `platforms` (an index's
/// entries, `OS/ARCH[/VARIANT]`, `null` for an entry without one) is left
/// out for what is not an index.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  epoch-store ls\n  epoch-store --json ls | jq -r '.[].ref'")]
pub struct Args {}

/// The JSON shape of one `ls` row.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    /// The ref name, `null` for an untagged root.
    #[serde(rename = "ref")]
    ref_name: Option<String>,
    digest: Digest,
    media_type: String,
    artifact_type: Option<String>,
    kind: Kind,
    /// Total bytes it reaches.
    size: u64,
    /// For snapshots and OS images: the bytes their files take once
    /// unpacked (holes included); `null` for other kinds.
    logical_size: Option<u64>,
    /// For an index: each entry's platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    platforms: Option<Vec<Option<String>>>,
}

pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let index = layout.read_index()?;
    let mut rows = Vec::new();
    for entry in index.entries() {
        let summary = layout.summarize(entry);
        let (kind, total, logical) = match &summary {
            Ok(s) => match formats::logical_size(&layout, s) {
                Ok(logical) => (s.kind, s.size, logical),
                Err(e) => {
                    warn_broken(&entry.digest, &e);
                    (s.kind, s.size, None)
                }
            },
            Err(e) => {
                warn_broken(&entry.digest, e);
                (Kind::Unknown, entry.size, None)
            }
        };
        let artifact_type = entry.artifact_type.clone().or_else(|| {
            summary
                .as_ref()
                .ok()
                .and_then(|s| s.document.as_ref())
                .and_then(|d| d.artifact_type.clone())
        });
        let platforms = summary.as_ref().ok().and_then(platforms_of);
        rows.push(Listing {
            ref_name: entry.ref_name().map(str::to_string),
            digest: entry.digest.clone(),
            media_type: entry.media_type.clone(),
            artifact_type,
            kind,
            size: total,
            logical_size: logical,
            platforms,
        });
    }
    if ctx.json {
        crate::output::json(&rows)?;
        return Ok(EXIT_OK);
    }
    if rows.is_empty() {
        ctx.say("No refs. Add some with `epoch-store add --ref NAME:TAG FILE...`.")?;
        return Ok(EXIT_OK);
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.ref_name
                    .as_deref()
                    .map_or_else(|| "<untagged>".to_string(), |n| escape(n).into_owned()),
                kind_shown(r),
                size(r.size),
                r.logical_size.map_or_else(|| "-".to_string(), size),
                r.digest.to_string(),
            ]
        })
        .collect();
    let header = ["REF", "KIND", "STORED", "LOGICAL", "DIGEST"].map(String::from);
    for row in crate::output::table(&header, &table, &[false, false, true, true, false]) {
        ctx.answer(row)?;
    }
    Ok(EXIT_OK)
}

fn warn_broken(digest: &Digest, e: &epoch_store::Error) {
    // verify checks blobs against their digests; a manifest that does not
    // follow its format (a layer type a snapshot cannot hold) is whole.
    let next = match e.kind() {
        epoch_store::ErrorKind::Malformed => {
            format!("`epoch-store inspect {digest}` shows what it holds")
        }
        _ => "run `epoch-store verify`".to_string(),
    };
    crate::output::warn(format_args!("epoch-store: warning: {digest}: {e}; {next}"));
}

/// An index's entries' platforms; `None` for what is not an index.
fn platforms_of(s: &epoch_store::Summary) -> Option<Vec<Option<String>>> {
    let doc = s.document.as_ref().filter(|_| s.kind == Kind::ImageIndex)?;
    Some(
        doc.manifests
            .iter()
            .flatten()
            .map(|m| {
                m.platform
                    .as_ref()
                    .map(epoch_store::model::platform::describe)
            })
            .collect(),
    )
}

/// The KIND column: an index with its entries' platforms.
fn kind_shown(r: &Listing) -> String {
    match &r.platforms {
        Some(p) if !p.is_empty() => {
            let names: Vec<String> = p
                .iter()
                .map(|p| escape(p.as_deref().unwrap_or("-")).into_owned())
                .collect();
            format!("{} ({})", r.kind.as_str(), names.join(", "))
        }
        _ => r.kind.as_str().to_string(),
    }
}
