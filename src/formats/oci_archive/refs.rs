//! What an archive import reports, and how its entries become refs here:
//! shared by the OCI archive and the docker archive (`docker save`) import.

use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::model::Descriptor;
use crate::model::name::RefName;
use crate::store::graph::{Edge, Flaw, Graph};
use crate::store::index::Index;
use crate::store::layout::Layout;

use super::ARCHIVE;

/// How [`import_archive`](super::import_archive) treats refs that exist already.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Move a ref that exists here with another digest to the archive's
    /// (without it, that is an error and nothing is tagged).
    pub force: bool,
}

impl ImportOptions {
    /// Sets [`ImportOptions::force`].
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// What happened to one `index.json` entry of the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefChange {
    /// The ref (or untagged root) is new here.
    Added,
    /// It was here already with the same digest.
    Unchanged,
    /// The ref pointed at this other digest and was moved (`force`).
    Replaced(Digest),
}

/// One entry of the archive's `index.json`, as imported.
#[derive(Clone, Debug)]
pub struct ImportedRef {
    /// The ref name; `None` for an untagged root.
    pub name: Option<String>,
    /// The entry, as the archive describes it.
    pub descriptor: Descriptor,
    /// What changed in our `index.json`.
    pub change: RefChange,
}

/// What [`import_archive`](super::import_archive) did.
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    /// The archive's entries, in its `index.json`'s order.
    pub refs: Vec<ImportedRef>,
    /// Distinct blobs the archive held.
    pub blobs: u64,
    /// Bytes of blobs written to the layout.
    pub bytes_written: u64,
    /// Blobs that were already in the layout (hashed, not written again).
    pub blobs_skipped: u64,
}

/// Applies the archive's entries to `ours`; refuses (changing nothing the
/// caller will write) a ref that exists with another digest unless forced.
pub(crate) fn plan_refs(
    ours: &mut Index,
    archive: &Index,
    options: &ImportOptions,
) -> Result<Vec<ImportedRef>> {
    let mut out = Vec::new();
    for entry in archive.entries() {
        let name = entry.ref_name().map(str::to_string);
        let change = match &name {
            Some(name) => match ours.find(name)? {
                Some(d) if d.digest == entry.digest => RefChange::Unchanged,
                Some(d) if !options.force => {
                    return Err(Error::InvalidArgument(format!(
                        "ref {name:?} already exists here with {}, and the archive has it as {}; \
                         nothing was tagged. Import with --force to move it, or `epoch-store \
                         untag {name}` first",
                        d.digest, entry.digest
                    )));
                }
                Some(d) => {
                    let old = d.digest.clone();
                    ours.set_ref(&RefName::new(name.clone())?, entry);
                    RefChange::Replaced(old)
                }
                None => {
                    ours.set_ref(&RefName::new(name.clone())?, entry);
                    RefChange::Added
                }
            },
            None => {
                let exists = ours
                    .entries()
                    .iter()
                    .any(|d| d.digest == entry.digest && d.ref_name().is_none());
                ours.add_untagged(entry);
                if exists {
                    RefChange::Unchanged
                } else {
                    RefChange::Added
                }
            }
        };
        out.push(ImportedRef {
            name,
            descriptor: entry.clone(),
            change,
        });
    }
    Ok(out)
}

/// Checks that everything the entries reach is in our layout and whole, as
/// every command that tags a graph checks it ([`Graph::flaw`]): documents
/// verified and parsed, `data` fields right, other blobs present as regular
/// files of the right size.
pub(crate) fn check_complete(layout: &Layout, roots: &[Descriptor]) -> Result<()> {
    let graph = Graph::walk(layout, roots);
    let missing = |edge: &Edge| Error::InvalidDocument {
        what: ARCHIVE.to_string(),
        reason: format!(
            "blob {}, referenced by {}, is neither in the archive nor in this layout; the \
             archive is incomplete",
            edge.digest,
            crate::store::graph::origin(edge).replace("index.json", "the archive's index.json")
        ),
    };
    match graph.flaw(layout)? {
        None => Ok(()),
        Some(Flaw::Missing(edge) | Flaw::Document(edge, Error::BlobNotFound { .. })) => {
            Err(missing(edge))
        }
        Some(flaw) => Err(Error::IncompleteGraph {
            what: format!("the {ARCHIVE} cannot be imported"),
            reason: flaw.to_string(),
        }),
    }
}
