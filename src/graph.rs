//! The reference graph: from roots through manifests and indexes (OCI and
//! Docker, nested to any depth) to every blob they reach.
//!
//! The walk is breadth-first over a work list with a visited set, never
//! recursive, so a hostile layout cannot exhaust the stack; each level's
//! documents are read in parallel. Unknown media types are leaves.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::digest::Digest;
use crate::error::Error;
use crate::layout::Layout;
use crate::model::{Descriptor, Document, media_type};

/// A reference: what a descriptor says of its blob, and the document it was
/// found in (`None`: `index.json`). Only what the checks need is kept, so a
/// walk over many thousands of blobs allocates little.
#[derive(Clone, Debug)]
pub(crate) struct Edge {
    pub parent: Option<Digest>,
    pub digest: Digest,
    pub size: u64,
    /// What is wrong with the descriptor's embedded `data`, if anything.
    pub bad_data: Option<String>,
}

/// Everything reachable from a set of roots.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// Every descriptor seen, in walk order.
    pub edges: Vec<Edge>,
    /// Documents read, verified and parsed.
    pub documents: HashMap<Digest, Document>,
    /// Documents that could not be read, verified or parsed: their children
    /// are unknown.
    pub failures: Vec<(Descriptor, Error)>,
}

impl Graph {
    /// Walks from `roots`.
    pub(crate) fn walk(layout: &Layout, roots: &[Descriptor]) -> Graph {
        let mut graph = Graph::default();
        let mut seen: HashSet<Digest> = HashSet::new();
        let mut frontier: Vec<Descriptor> = Vec::new();
        for root in roots {
            graph.visit(None, root, &mut seen, &mut frontier);
        }
        while !frontier.is_empty() {
            let level: Vec<(Descriptor, Result<Document, Error>)> = std::mem::take(&mut frontier)
                .into_par_iter()
                .map(|d| {
                    let doc = layout.read_document(&d).map(|(_, doc)| doc);
                    (d, doc)
                })
                .collect();
            for (desc, doc) in level {
                match doc {
                    Ok(doc) => {
                        for child in doc.children() {
                            graph.visit(Some(&desc.digest), child, &mut seen, &mut frontier);
                        }
                        graph.documents.insert(desc.digest, doc);
                    }
                    Err(e) => graph.failures.push((desc, e)),
                }
            }
        }
        graph
    }

    fn visit(
        &mut self,
        parent: Option<&Digest>,
        desc: &Descriptor,
        seen: &mut HashSet<Digest>,
        frontier: &mut Vec<Descriptor>,
    ) {
        self.edges.push(Edge {
            parent: parent.cloned(),
            digest: desc.digest.clone(),
            size: desc.size,
            bad_data: desc.check_data().err(),
        });
        if media_type::is_document(&desc.media_type) && seen.insert(desc.digest.clone()) {
            frontier.push(desc.clone());
        }
    }
}
