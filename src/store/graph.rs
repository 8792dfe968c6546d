//! The reference graph: from roots through manifests and indexes (OCI and
//! Docker, nested to any depth) to every blob they reach.
//!
//! The walk is breadth-first over a work list with a visited set, never
//! recursive, so a hostile layout cannot exhaust the stack; each level's
//! documents are read in parallel. Unknown media types are leaves.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::io::input::{FileState, file_state};
use crate::model::{Descriptor, Document, media_type};
use crate::store::layout::Layout;

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
            bad_data: desc.check_data().err().map(Error::into_reason),
        });
        if media_type::is_document(&desc.media_type) && seen.insert(desc.digest.clone()) {
            frontier.push(desc.clone());
        }
    }
}

/// The first thing that makes a graph unfit to be tagged, copied or
/// exported: what `verify` would report as a problem of what the roots
/// reach, short of re-hashing every blob.
#[derive(Debug)]
pub(crate) enum Flaw<'g> {
    /// A document could not be read, verified or parsed.
    Document(&'g Edge, &'g Error),
    /// A descriptor's embedded `data` disagrees with it.
    BadData(&'g Edge, &'g str),
    /// A blob is not in the layout.
    Missing(&'g Edge),
    /// A blob's entry is a symlink, directory, FIFO, ...
    NotRegular(&'g Edge, &'static str),
    /// A descriptor's size disagrees with the blob's file.
    WrongSize(&'g Edge, u64),
}

impl fmt::Display for Flaw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flaw::Document(e, Error::BlobNotFound { path, .. }) => write!(
                f,
                "document {}, referenced by {}, is missing ({})",
                e.digest,
                origin(e),
                path.display()
            ),
            Flaw::Document(e, err) => write!(
                f,
                "document {}, referenced by {}, cannot be used: {err}",
                e.digest,
                origin(e)
            ),
            Flaw::BadData(e, why) => write!(
                f,
                "{} describes blob {} with an embedded `data` field that does not match it \
                 ({why}); the document is broken or crafted, not the blob: re-create the artifact \
                 or untag what reaches that document",
                origin(e),
                e.digest
            ),
            Flaw::Missing(e) => write!(
                f,
                "blob {}, referenced by {}, is missing",
                e.digest,
                origin(e)
            ),
            Flaw::NotRegular(e, kind) => write!(
                f,
                "blob {}, referenced by {}, is a {kind}, not a regular file",
                e.digest,
                origin(e)
            ),
            Flaw::WrongSize(e, found) => write!(
                f,
                "{} describes blob {} as {} bytes, but the blob has {found}",
                origin(e),
                e.digest,
                e.size
            ),
        }
    }
}

/// Where a descriptor was found, for messages.
pub(crate) fn origin(e: &Edge) -> String {
    match &e.parent {
        Some(d) => format!("document {d}"),
        None => "index.json".into(),
    }
}

impl Graph {
    /// The first flaw of the graph, or `None` if it is whole: every
    /// document read, verified and parsed; every descriptor's `data` field
    /// right; every blob a regular file of the size every descriptor of it
    /// says (lstat: contents are hashed by whoever reads them).
    pub(crate) fn flaw(&self, layout: &Layout) -> Result<Option<Flaw<'_>>> {
        if let Some((desc, e)) = self.failures.first() {
            let edge = self
                .edges
                .iter()
                .find(|edge| edge.digest == desc.digest)
                .expect("every failed document was reached by an edge");
            return Ok(Some(Flaw::Document(edge, e)));
        }
        if let Some(edge) = self.edges.iter().find(|e| e.bad_data.is_some()) {
            let why = edge.bad_data.as_deref().unwrap_or_default();
            return Ok(Some(Flaw::BadData(edge, why)));
        }
        let mut seen: HashSet<(&Digest, u64)> = HashSet::new();
        for edge in &self.edges {
            if !seen.insert((&edge.digest, edge.size)) {
                continue;
            }
            match file_state(&layout.blob_path(&edge.digest), edge.size)? {
                FileState::Present => {}
                FileState::Missing => return Ok(Some(Flaw::Missing(edge))),
                FileState::NotRegular(kind) => return Ok(Some(Flaw::NotRegular(edge, kind))),
                FileState::WrongSize(len) => return Ok(Some(Flaw::WrongSize(edge, len))),
            }
        }
        Ok(None)
    }

    /// Every distinct blob reached, each once, in walk order (documents
    /// before what they reference).
    pub(crate) fn blobs(&self) -> Vec<(&Digest, u64)> {
        let mut seen = HashSet::new();
        self.edges
            .iter()
            .filter(|e| seen.insert(&e.digest))
            .map(|e| (&e.digest, e.size))
            .collect()
    }
}

impl Layout {
    /// Walks from `roots` and requires the graph to be whole (see
    /// [`Graph::flaw`]): what every command that tags, copies or exports a
    /// graph checks first, so that none of them passes on what `verify`
    /// would call a problem.
    ///
    /// # Errors
    /// [`Error::IncompleteGraph`] naming `what` was being done and the
    /// first flaw; I/O errors.
    pub(crate) fn whole_graph(&self, roots: &[Descriptor], what: &str) -> Result<Graph> {
        let graph = Graph::walk(self, roots);
        if let Some(flaw) = graph.flaw(self)? {
            return Err(Error::IncompleteGraph {
                what: what.to_string(),
                reason: flaw.to_string(),
            });
        }
        Ok(graph)
    }
}
