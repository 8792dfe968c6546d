//! What a ref or manifest amounts to: its kind and the bytes it reaches.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::model::{Descriptor, Document, Kind, classify, media_type};
use crate::store::graph::Graph;
use crate::store::layout::Layout;

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
            size: crate::io::size::checked_total(sizes.values().copied()).ok_or_else(|| {
                Error::Overflow {
                    what: format!("the sizes of the blobs {} reaches", desc.digest),
                }
            })?,
            document,
        })
    }
}
