//! Read-only verification of a layout: every problem, not just the first.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::io::hash;
use crate::io::progress::Progress;
use crate::io::schedule::{self, Workers};
use crate::model::Descriptor;
use crate::store::graph::Graph;
use crate::store::inventory::{Inventory, Stray, StrayKind};
use crate::store::layout::Layout;

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
    /// An `index.json` entry's ref name breaks the ref grammar (control
    /// characters, bidi controls, empty, ...): other tools refuse it.
    BadRefName,
    /// Two `index.json` entries carry one ref name for different manifests.
    AmbiguousRef,
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
            Ok(index) if options.refs.is_empty() => {
                check_ref_names(&index, &mut report);
                index.entries().to_vec()
            }
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
        let (graph, inventory) =
            rayon::join(|| Graph::walk(self, &roots), || Inventory::scan(self));
        let inventory = inventory?;
        report.documents = graph.documents.len();
        report.temp_files = inventory.temp_files.len();
        let mut check = Check {
            layout: self,
            graph: &graph,
            sizes: BTreeMap::new(),
            described: BTreeMap::new(),
            stray_paths: inventory.strays.iter().map(|s| s.path.clone()).collect(),
            reported: HashSet::new(),
            report,
        };
        for (digest, file) in &inventory.blobs {
            match file.stat() {
                Ok((size, _)) => {
                    check.sizes.insert(digest, (size, file.path.as_path()));
                }
                Err(e) => check
                    .report
                    .problem(FindingKind::Unreadable, digest, e.to_string()),
            }
        }
        check.documents_that_failed();
        check.references();
        check.strays(&inventory.strays);
        check.contents(options, progress);
        if options.refs.is_empty() {
            check.unreferenced();
        }
        Ok(check.report)
    }
}

/// The state of one verification, checked phase by phase.
struct Check<'a> {
    layout: &'a Layout,
    graph: &'a Graph,
    /// Every blob on disk: its size and path.
    sizes: BTreeMap<&'a Digest, (u64, &'a Path)>,
    /// Every descriptor reached, by digest, with the document it is in.
    described: BTreeMap<&'a Digest, Vec<(u64, Option<&'a Digest>)>>,
    /// Non-regular entries and bad names: reported once, as themselves.
    stray_paths: HashSet<PathBuf>,
    /// Digests already reported, not to be reported again.
    reported: HashSet<Digest>,
    report: VerifyReport,
}

impl<'a> Check<'a> {
    /// Documents the walk could not read, verify or parse.
    fn documents_that_failed(&mut self) {
        for (desc, e) in &self.graph.failures {
            self.reported.insert(desc.digest.clone());
            if self
                .stray_paths
                .contains(&self.layout.blob_path(&desc.digest))
            {
                continue;
            }
            let kind = match e {
                Error::BlobNotFound { .. } => FindingKind::MissingBlob,
                Error::DigestMismatch { .. } => FindingKind::DigestMismatch,
                Error::SizeMismatch { .. }
                | Error::InvalidDocument { .. }
                | Error::TooLarge { .. } => {
                    // A blob of the wrong size whose descriptor is right is damaged content.
                    if self
                        .sizes
                        .get(&desc.digest)
                        .is_some_and(|(size, _)| *size != desc.size)
                    {
                        FindingKind::DigestMismatch
                    } else {
                        FindingKind::BadDocument
                    }
                }
                Error::NotRegularFile { .. } => FindingKind::NotRegularFile,
                _ => FindingKind::Unreadable,
            };
            self.report.problem(kind, &desc.digest, e.to_string());
        }
    }

    /// Every descriptor: its `data` field, and that its blob exists.
    fn references(&mut self) {
        for edge in &self.graph.edges {
            if let Some(why) = &edge.bad_data {
                let msg = format!(
                    "{} describes this blob with an embedded `data` field that does not match \
                     it ({why}); the document is broken or crafted, not the blob: re-create the \
                     artifact or untag what reaches that document",
                    origin(edge.parent.as_ref())
                );
                self.report
                    .problem(FindingKind::BadDataField, &edge.digest, msg);
            }
            self.described
                .entry(&edge.digest)
                .or_default()
                .push((edge.size, edge.parent.as_ref()));
        }
        for digest in self.described.keys() {
            let path = self.layout.blob_path(digest);
            if !self.sizes.contains_key(digest)
                && !self.reported.contains(*digest)
                && !self.stray_paths.contains(&path)
            {
                self.report.problem(
                    FindingKind::MissingBlob,
                    digest,
                    format!("blob is missing ({})", path.display()),
                );
            }
        }
    }

    /// Entries under `blobs/` that are not blobs.
    fn strays(&mut self, strays: &[Stray]) {
        for stray in strays {
            let subject = stray
                .path
                .strip_prefix(self.layout.root())
                .unwrap_or(&stray.path)
                .display();
            match stray.what {
                StrayKind::NotRegular(kind) => self.report.problem(
                    FindingKind::NotRegularFile,
                    subject,
                    format!("is a {kind}, not a regular file; epoch-store never follows or reads it. Remove it"),
                ),
                StrayKind::BadName => self.report.problem(
                    FindingKind::BadBlobName,
                    subject,
                    "is not named by a digest; other tools' gc fails on such names. Remove it if no tool is writing it",
                ),
                StrayKind::UnknownAlgorithm => self.report.notices.push(Finding {
                    kind: FindingKind::UnknownAlgorithm,
                    subject: subject.to_string(),
                    message: "a digest algorithm epoch-store does not support; its blobs were not checked".into(),
                }),
            }
        }
    }

    /// Re-hashes blobs in parallel (every blob on disk for a full verify,
    /// what the refs reach otherwise; documents were verified while walking),
    /// then checks descriptor sizes against the intact ones.
    fn contents(&mut self, options: &VerifyOptions, progress: &dyn Progress) {
        let targets: Vec<(&Digest, u64, &Path)> = self
            .sizes
            .iter()
            .filter(|(d, _)| {
                !self.graph.documents.contains_key(**d) && !self.reported.contains(**d)
            })
            .filter(|(d, _)| options.refs.is_empty() || self.described.contains_key(*d))
            .map(|(d, (size, path))| (*d, *size, *path))
            .collect();
        let total: u64 = targets.iter().map(|t| t.1).sum();
        progress.begin("verifying", total);
        let results = schedule::by_size(
            &targets,
            Workers::Cores,
            |t| t.1,
            |(digest, _, path)| hash_blob(digest, path, progress),
        );
        progress.finish();
        self.report.blobs_checked = targets.len() + self.graph.documents.len();
        self.report.bytes_checked = total;
        let mut intact: HashSet<&Digest> = self.graph.documents.keys().collect();
        for ((digest, size, _), result) in targets.iter().zip(results) {
            match result {
                Ok(found) if &found == *digest => {
                    intact.insert(digest);
                }
                Ok(found) => {
                    let extra = match self.described.get(digest).map(|v| v[0].0) {
                        Some(s) if s != *size => format!(" ({size} bytes; described as {s})"),
                        _ => String::new(),
                    };
                    let msg = format!("content is damaged: it hashes to {found}{extra}");
                    self.report
                        .problem(FindingKind::DigestMismatch, digest, msg);
                }
                Err(e) => self
                    .report
                    .problem(FindingKind::Unreadable, digest, e.to_string()),
            }
        }
        for (digest, uses) in &self.described {
            let Some((size, _)) = self.sizes.get(digest) else {
                continue;
            };
            if !intact.contains(digest) {
                continue;
            }
            for (described_size, parent) in uses {
                if described_size != size {
                    let msg = format!(
                        "{} describes it as {described_size} bytes; the intact blob has {size}",
                        origin(*parent),
                    );
                    self.report.problem(FindingKind::SizeMismatch, digest, msg);
                }
            }
        }
    }

    /// Blobs nothing reaches: information.
    fn unreferenced(&mut self) {
        for (digest, (size, _)) in &self.sizes {
            if !self.described.contains_key(digest) {
                self.report.unreferenced_blobs += 1;
                self.report.unreferenced_bytes += size;
            }
        }
    }
}

/// Ref names that break the grammar, and names given to two manifests.
fn check_ref_names(index: &crate::Index, report: &mut VerifyReport) {
    for (i, entry) in index.entries().iter().enumerate() {
        let Some(name) = entry.ref_name() else {
            continue;
        };
        if let Err(e) = crate::model::name::validate_ref(name) {
            let reason = match e {
                Error::InvalidRef { reason, .. } => reason,
                e => e.to_string(),
            };
            report.problem(
                FindingKind::BadRefName,
                format!("index.json manifests[{i}]"),
                format!(
                    "its ref name {name:?} ({}) is not a valid ref name: {reason}; other tools \
                     refuse it and epoch-store will not copy or export it. Give it a valid name \
                     (`epoch-store tag {} NEWREF`), then remove this one (`epoch-store untag {}`)",
                    entry.digest,
                    entry.digest,
                    crate::io::text::shell_quote(name)
                ),
            );
        }
    }
    for (name, digests) in index.ambiguous_refs() {
        let list: Vec<String> = digests.iter().map(|d| d.to_string()).collect();
        report.problem(
            FindingKind::AmbiguousRef,
            format!("ref {name:?}"),
            format!(
                "index.json has it for {} different manifests ({}); tools pick either. Keep the \
                 right one with `epoch-store tag DIGEST {}`",
                digests.len(),
                list.join(", "),
                crate::io::text::shell_quote(name)
            ),
        );
    }
}

fn origin(parent: Option<&Digest>) -> String {
    match parent {
        Some(d) => format!("document {d}"),
        None => "index.json".into(),
    }
}

fn hash_blob(digest: &Digest, path: &Path, progress: &dyn Progress) -> Result<Digest> {
    let (f, md) = crate::io::input::open_regular(path)?;
    hash::hash_file(&f, md.len(), digest.algorithm(), progress)
        .map_err(|e| Error::io("read", path, e))
}
