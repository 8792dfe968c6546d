//! Read-only verification of a layout: every problem, not just the first.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::hash::{self, par_map_by_size};
use crate::inventory::{Inventory, StrayKind};
use crate::layout::Layout;
use crate::model::Descriptor;
use crate::progress::Progress;

/// Options for [`Layout::verify`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Check only what these refs (or digests) reach; empty: the whole layout,
    /// including every blob on disk.
    pub refs: Vec<String>,
}

impl VerifyOptions {
    /// Restricts verification to what `refs` reach.
    pub fn refs(mut self, refs: Vec<String>) -> Self {
        self.refs = refs;
        self
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// `index.json` is malformed.
    IndexJson,
    /// A referenced blob is absent.
    MissingBlob,
    /// A blob's content does not hash to its name.
    DigestMismatch,
    /// A descriptor's size disagrees with the (intact) blob it names.
    SizeMismatch,
    /// A manifest or index is malformed or ambiguous.
    BadDocument,
    /// A descriptor's embedded `data` does not match it.
    BadDataField,
    /// An entry in `blobs/` is a symlink, directory, FIFO, ...
    NotRegularFile,
    /// A file in `blobs/<alg>/` whose name is not a digest.
    BadBlobName,
    /// A blob could not be read.
    Unreadable,
    /// Information: a directory under `blobs/` for an unsupported algorithm.
    UnknownAlgorithm,
}

/// One problem or notice.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The digest, path or file it is about.
    pub subject: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Damage: anything here means the layout is not intact.
    pub problems: Vec<Finding>,
    /// Information that is not damage.
    pub notices: Vec<Finding>,
    /// Roots walked.
    pub roots: usize,
    /// Documents parsed.
    pub documents: usize,
    /// Blobs whose content was hashed.
    pub blobs_checked: usize,
    /// Their bytes.
    pub bytes_checked: u64,
    /// Blobs on disk that nothing reachable references (gc reclaims them).
    pub unreferenced_blobs: usize,
    /// Their bytes.
    pub unreferenced_bytes: u64,
    /// Leftover temp files from interrupted writes (gc reclaims them).
    pub temp_files: usize,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, kind: FindingKind, subject: impl ToString, message: impl Into<String>) {
        self.problems.push(Finding {
            kind,
            subject: subject.to_string(),
            message: message.into(),
        });
    }
}

impl Layout {
    /// Verifies the layout without changing anything: `index.json`, every
    /// reachable document (parsed, unambiguous, digests and `data` fields
    /// checked), every referenced blob present with the right size and
    /// digest (hashed in parallel, memory-mapped in bounded windows), and
    /// every entry under `blobs/` a regular file with a digest name.
    ///
    /// # Errors
    /// Only what prevents verifying at all (a ref that does not exist, I/O
    /// errors listing `blobs/`); damage is reported in the [`VerifyReport`].
    pub fn verify(&self, options: &VerifyOptions, progress: &dyn Progress) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let roots: Vec<Descriptor> = match self.read_index() {
            Ok(index) if options.refs.is_empty() => index.entries().to_vec(),
            Ok(index) => options
                .refs
                .iter()
                .map(|r| self.resolve_in(&index, r))
                .collect::<Result<_>>()?,
            Err(e) if options.refs.is_empty() => {
                report.problem(FindingKind::IndexJson, "index.json", e.to_string());
                vec![]
            }
            Err(e) => return Err(e),
        };
        report.roots = roots.len();
        let inventory = Inventory::scan(self)?;
        let graph = Graph::walk(self, &roots);
        report.documents = graph.documents.len();
        // A non-regular entry where a blob should be is reported once, as itself.
        let stray_paths: HashSet<&std::path::Path> =
            inventory.strays.iter().map(|s| s.path.as_path()).collect();
        let mut reported: HashSet<Digest> = HashSet::new();
        for (desc, e) in &graph.failures {
            reported.insert(desc.digest.clone());
            if stray_paths.contains(self.blob_path(&desc.digest).as_path()) {
                continue;
            }
            let kind = match e {
                Error::BlobNotFound { .. } => FindingKind::MissingBlob,
                Error::DigestMismatch { .. } => FindingKind::DigestMismatch,
                Error::SizeMismatch { .. }
                | Error::InvalidDocument { .. }
                | Error::TooLarge { .. } => {
                    if inventory
                        .blobs
                        .get(&desc.digest)
                        .is_some_and(|b| b.size != desc.size)
                    {
                        FindingKind::DigestMismatch
                    } else {
                        FindingKind::BadDocument
                    }
                }
                Error::NotRegularFile { .. } => FindingKind::NotRegularFile,
                _ => FindingKind::Unreadable,
            };
            report.problem(kind, &desc.digest, e.to_string());
        }
        // Sizes each blob is described with, and by whom.
        let mut described: BTreeMap<&Digest, Vec<(&Descriptor, Option<&Digest>)>> = BTreeMap::new();
        for edge in &graph.edges {
            if let Err(why) = edge.desc.check_data() {
                report.problem(
                    FindingKind::BadDataField,
                    &edge.desc.digest,
                    format!("{}: {why}", origin(edge.parent.as_ref())),
                );
            }
            described
                .entry(&edge.desc.digest)
                .or_default()
                .push((&edge.desc, edge.parent.as_ref()));
        }
        for digest in described.keys() {
            let path = self.blob_path(digest);
            if !inventory.blobs.contains_key(*digest)
                && !reported.contains(*digest)
                && !stray_paths.contains(path.as_path())
            {
                report.problem(
                    FindingKind::MissingBlob,
                    digest,
                    format!("blob is missing ({})", path.display()),
                );
            }
        }
        for stray in &inventory.strays {
            let subject = stray
                .path
                .strip_prefix(self.root())
                .unwrap_or(&stray.path)
                .display();
            match stray.what {
                StrayKind::NotRegular(kind) => report.problem(
                    FindingKind::NotRegularFile,
                    subject,
                    format!("is a {kind}, not a regular file; epoch-store never follows or reads it. Remove it"),
                ),
                StrayKind::BadName => report.problem(
                    FindingKind::BadBlobName,
                    subject,
                    "is not named by a digest; other tools' gc fails on such names. Remove it if no tool is writing it",
                ),
                StrayKind::UnknownAlgorithm => report.notices.push(Finding {
                    kind: FindingKind::UnknownAlgorithm,
                    subject: subject.to_string(),
                    message: "a digest algorithm epoch-store does not support; its blobs were not checked".into(),
                }),
            }
        }
        // Hash: every blob on disk for a full verify, what the refs reach otherwise;
        // documents were already verified while walking.
        let targets: Vec<(&Digest, &crate::inventory::BlobFile)> = inventory
            .blobs
            .iter()
            .filter(|(d, _)| !graph.documents.contains_key(*d) && !reported.contains(*d))
            .filter(|(d, _)| options.refs.is_empty() || described.contains_key(d))
            .collect();
        let total: u64 = targets.iter().map(|(_, f)| f.size).sum();
        progress.begin("verifying", total);
        let results = par_map_by_size(
            &targets,
            |(_, f)| f.size,
            |(digest, file)| hash_blob(digest, file, progress),
        );
        progress.finish();
        report.blobs_checked = targets.len() + graph.documents.len();
        report.bytes_checked = total;
        let mut intact: HashSet<&Digest> = graph.documents.keys().collect();
        for ((digest, file), result) in targets.iter().zip(results) {
            match result {
                Ok(found) if &found == *digest => {
                    intact.insert(digest);
                }
                Ok(found) => {
                    let sizes = described.get(digest).map(|v| v[0].0.size);
                    let extra = match sizes {
                        Some(s) if s != file.size => {
                            format!(" ({} bytes; described as {s})", file.size)
                        }
                        _ => String::new(),
                    };
                    report.problem(
                        FindingKind::DigestMismatch,
                        digest,
                        format!("content is damaged: it hashes to {found}{extra}"),
                    );
                }
                Err(e) => report.problem(FindingKind::Unreadable, digest, e.to_string()),
            }
        }
        for (digest, uses) in &described {
            let Some(file) = inventory.blobs.get(*digest) else {
                continue;
            };
            if !intact.contains(digest) {
                continue;
            }
            for (desc, parent) in uses {
                if desc.size != file.size {
                    report.problem(
                        FindingKind::SizeMismatch,
                        digest,
                        format!(
                            "{} describes it as {} bytes; the intact blob has {}",
                            origin(*parent),
                            desc.size,
                            file.size
                        ),
                    );
                }
            }
        }
        if options.refs.is_empty() {
            for (digest, file) in &inventory.blobs {
                if !described.contains_key(digest) {
                    report.unreferenced_blobs += 1;
                    report.unreferenced_bytes += file.size;
                }
            }
        }
        report.temp_files = inventory.temp_files.len();
        Ok(report)
    }
}

fn origin(parent: Option<&Digest>) -> String {
    match parent {
        Some(d) => format!("document {d}"),
        None => "index.json".into(),
    }
}

fn hash_blob(
    digest: &Digest,
    file: &crate::inventory::BlobFile,
    progress: &dyn Progress,
) -> Result<Digest> {
    let (f, md) = crate::durable::open_regular(&file.path)?;
    hash::hash_file(&f, md.len(), digest.algorithm(), progress)
        .map_err(|e| Error::io("read", &file.path, e))
}
