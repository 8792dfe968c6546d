//! What a ref or manifest amounts to: its kind and the bytes it reaches.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::Result;
use crate::graph::Graph;
use crate::layout::Layout;
use crate::model::{Descriptor, Document, Kind, classify, media_type};

/// A root and what it reaches.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The root's descriptor.
    pub descriptor: Descriptor,
    /// The root document, when it is a manifest or index.
    pub document: Option<Document>,
    /// Its kind.
    pub kind: Kind,
    /// Distinct blobs reached, the root included.
    pub blobs: usize,
    /// Their total size in bytes, as described (each blob counted once).
    pub size: u64,
}

/// The JSON shape of one `ls` row.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// The ref name, `null` for an untagged root.
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    /// The manifest digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its artifact type, if any.
    pub artifact_type: Option<String>,
    /// Its kind.
    pub kind: Kind,
    /// Total bytes it reaches.
    pub size: u64,
    /// For snapshots and OS images: the bytes their files take once
    /// unpacked (holes included); `null` for other kinds.
    pub logical_size: Option<u64>,
}

impl Layout {
    /// Reads the document behind `desc` (if it is one), classifies it and
    /// adds up the distinct blobs it reaches.
    ///
    /// # Errors
    /// The first document on the way that cannot be read or parsed.
    pub fn summarize(&self, desc: &Descriptor) -> Result<Summary> {
        let mut graph = Graph::walk(self, std::slice::from_ref(desc));
        if !graph.failures.is_empty() {
            return Err(graph.failures.swap_remove(0).1);
        }
        let mut sizes: BTreeMap<&Digest, u64> = BTreeMap::new();
        for e in &graph.edges {
            sizes.insert(&e.digest, e.size);
        }
        let document = graph.documents.get(&desc.digest).cloned();
        let kind = match &document {
            Some(doc) => classify(doc, Some(&desc.media_type)),
            None if media_type::is_index(&desc.media_type) => Kind::ImageIndex,
            None => Kind::Unknown,
        };
        Ok(Summary {
            descriptor: desc.clone(),
            kind,
            blobs: sizes.len(),
            size: sizes.values().sum(),
            document,
        })
    }

    /// What a summarized VM artifact amounts to once unpacked: the sum of
    /// its files' logical sizes (holes included) for a snapshot, the joined
    /// disk for an OS image; `None` for other kinds.
    ///
    /// # Errors
    /// A snapshot or image whose config or layers do not make sense (as
    /// `unpack` would report).
    pub fn logical_size(&self, summary: &Summary) -> Result<Option<u64>> {
        match summary.kind {
            Kind::Snapshot => {
                let plan = crate::snapshot::plan(self, &summary.descriptor)?;
                Ok(Some(plan.files.iter().map(|f| f.map.logical_size()).sum()))
            }
            Kind::CloudImage => Ok(Some(
                crate::os_image::plan_image(self, &summary.descriptor)?.size,
            )),
            _ => Ok(None),
        }
    }
}
