//! The JSON of a docker archive: `manifest.json` read and written, the
//! Docker v2 schema 2 manifest built from one of its items as skopeo
//! builds it, `repositories`, and RepoTags as refs.

use serde::{Deserialize, Serialize};

use super::DOCKER_ARCHIVE;
use crate::error::{Error, Result};
use crate::io::digest::{Algorithm, Digest};
use crate::model::name::{split_tag, validate_ref};
use crate::model::{Descriptor, media_type};

/// One image of `manifest.json`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct Item {
    /// The config's member name.
    #[serde(rename = "Config")]
    pub config: String,
    /// The image's names (`null` in docker save's output for an untagged image).
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// The layers' member names, bottom first.
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidDocument {
        what: format!("{DOCKER_ARCHIVE} member manifest.json"),
        reason: reason.into(),
    }
}

/// Parses `manifest.json`: a non-empty array of items, each with a
/// `Config` and `Layers` (fields we do not use, `LayerSources` and
/// `Parent`, are passed over).
pub(crate) fn parse(raw: &[u8]) -> Result<Vec<Item>> {
    let items: Vec<Item> = serde_json::from_slice(raw).map_err(|e| {
        bad(format!(
            "it is not an array of {{\"Config\", \"RepoTags\", \"Layers\"}} objects: {e}"
        ))
    })?;
    if items.is_empty() {
        return Err(bad("it lists no images; there is nothing to import"));
    }
    Ok(items)
}

/// A RepoTags entry as a ref name: `docker.io/library/x:t` and
/// `docker.io/u/x:t` in docker's familiar form (`x:t`, `u/x:t`, what
/// `docker save` itself writes and `docker images` shows), anything else as
/// written; the result must be a valid ref name.
pub(crate) fn ref_name(tag: &str) -> Result<String> {
    let mut name = tag;
    for registry in ["docker.io/", "index.docker.io/"] {
        if let Some(rest) = name.strip_prefix(registry) {
            name = rest.strip_prefix("library/").unwrap_or(rest);
            break;
        }
    }
    validate_ref(name).map_err(|e| bad(format!("its RepoTags entry {tag:?} is not a ref: {e}")))?;
    Ok(name.to_string())
}

/// The `rootfs.diff_ids` of a config, which must be a JSON object.
pub(crate) fn diff_ids(raw: &[u8], member: &str, digest: &Digest) -> Result<Vec<Digest>> {
    let what = || format!("{DOCKER_ARCHIVE} member {member} ({digest}), the image config");
    let value: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| Error::InvalidDocument {
            what: what(),
            reason: format!("it is not JSON: {e}"),
        })?;
    let ids = value
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| d.as_array())
        .ok_or_else(|| Error::InvalidDocument {
            what: what(),
            reason: "it has no rootfs.diff_ids list; it is not an image config".into(),
        })?;
    ids.iter()
        .map(|id| {
            id.as_str()
                .ok_or_else(|| Error::InvalidDocument {
                    what: what(),
                    reason: "a rootfs.diff_ids entry is not a string".into(),
                })
                .and_then(Digest::parse)
        })
        .collect()
}

#[derive(Serialize)]
struct Schema2<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Entry<'a>,
    layers: Vec<Entry<'a>>,
}

/// A descriptor in skopeo's field order.
#[derive(Serialize)]
struct Entry<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    size: u64,
    digest: String,
}

fn entry(d: &Descriptor) -> Entry<'_> {
    Entry {
        media_type: &d.media_type,
        size: d.size,
        digest: d.digest.to_string(),
    }
}

/// The Docker v2 schema 2 manifest of a config and its layers, as skopeo's
/// `docker-archive:` source generates it (Go's `json.Marshal`: compact,
/// fields in this order, no trailing newline).
pub(crate) fn schema2(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    let doc = Schema2 {
        schema_version: 2,
        media_type: media_type::DOCKER_MANIFEST,
        config: entry(config),
        layers: layers.iter().map(entry).collect(),
    };
    serde_json::to_vec(&doc).expect("a manifest always serializes")
}

/// The member name of a blob in an archive we write: `<hex>.json` for a
/// config, `<hex>.tar` for a layer (what skopeo writes).
pub(crate) fn member_name(digest: &Digest, extension: &str) -> String {
    format!("{}.{extension}", digest.hex())
}

/// A ref name as a RepoTags entry: with `:latest` when it has no tag
/// (docker load refuses a name without one).
pub(crate) fn repo_tag(name: &str) -> String {
    match split_tag(name) {
        (_, Some(_)) => name.to_string(),
        (repo, None) => format!("{repo}:latest"),
    }
}

/// The top layer's ID for `repositories`: the layers' chain ID (docker's
/// `layer.CreateChainID` over the diffIDs), as hex; the config's hex for
/// an image without layers.
pub(crate) fn top_layer_id(diff_ids: &[Digest], config: &Digest) -> String {
    let mut chain: Option<Digest> = None;
    for id in diff_ids {
        chain = Some(match chain {
            None => id.clone(),
            Some(c) => Digest::of_bytes(Algorithm::Sha256, format!("{c} {id}").as_bytes()),
        });
    }
    chain.map_or_else(|| config.hex().to_string(), |c| c.hex().to_string())
}
