//! Narrowing an index to the images of some platforms, for `copy
//! --platform`: the best match for each platform asked for (containerd's
//! rules, [`rank`]), in a new index that keeps everything of the old one
//! but the entries left out.

use crate::error::{Error, Result};
use crate::io::digest::{Algorithm, Digest};
use crate::model::platform::{PlatformSpec, describe, rank};
use crate::model::{Descriptor, Kind, classify};
use crate::store::layout::Layout;

/// An index narrowed to some of its entries.
#[derive(Clone, Debug)]
pub struct Narrowed {
    /// The new index's descriptor: the old one's, with the new digest and
    /// size.
    pub descriptor: Descriptor,
    /// The new index's bytes.
    pub bytes: Vec<u8>,
    /// The entries it keeps: what the copy must carry.
    pub children: Vec<Descriptor>,
}

/// The index `root` (known as `name`) narrowed to its entries for `wanted` (each platform's best
/// match, once each, in the index's order), or `None` when it is not an
/// index (it is copied whole). The new index is the old one's JSON with
/// only those entries in `manifests`: every other field, and each kept
/// entry, as it was written.
///
/// # Errors
/// [`Error::InvalidArgument`] for a platform no entry matches, naming the
/// platforms the index has; read errors of the index.
pub fn narrow(
    src: &Layout,
    name: Option<&str>,
    root: &Descriptor,
    wanted: &[PlatformSpec],
) -> Result<Option<Narrowed>> {
    let (raw, doc) = src.read_document(root)?;
    narrow_document(name, root, &raw, &doc, wanted)
}

/// [`narrow`] of a document already read: `raw`, parsed as `doc`.
///
/// # Errors
/// As [`narrow`].
pub fn narrow_document(
    name: Option<&str>,
    root: &Descriptor,
    raw: &[u8],
    doc: &crate::model::Document,
    wanted: &[PlatformSpec],
) -> Result<Option<Narrowed>> {
    if classify(doc, Some(&root.media_type)) != Kind::ImageIndex {
        return Ok(None);
    }
    let entries = doc.manifests.clone().unwrap_or_default();
    let mut keep: Vec<usize> = Vec::new();
    for w in wanted {
        let best = rank(&entries, w).into_iter().next().ok_or_else(|| {
            let have: Vec<String> = entries
                .iter()
                .map(|e| {
                    e.platform
                        .as_ref()
                        .map_or_else(|| "no platform".into(), describe)
                })
                .collect();
            Error::InvalidArgument(format!(
                "{} ({}) has no image for {w}; it has: {}",
                name.unwrap_or("the index"),
                root.digest,
                if have.is_empty() {
                    "nothing".into()
                } else {
                    have.join(", ")
                }
            ))
        })?;
        let i = entries
            .iter()
            .position(|e| std::ptr::eq(e, best))
            .expect("ranked from these entries");
        if !keep.contains(&i) {
            keep.push(i);
        }
    }
    keep.sort_unstable();
    let mut value: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| Error::InvalidDocument {
            what: format!("index {}", root.digest),
            reason: e.to_string(),
        })?;
    let all = value["manifests"].as_array().cloned().unwrap_or_default();
    value["manifests"] = serde_json::Value::Array(keep.iter().map(|&i| all[i].clone()).collect());
    let bytes = serde_json::to_vec(&value).expect("JSON values serialize");
    let mut descriptor = root.clone();
    descriptor.digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    descriptor.size = bytes.len() as u64;
    Ok(Some(Narrowed {
        descriptor,
        bytes,
        children: keep.iter().map(|&i| entries[i].clone()).collect(),
    }))
}
