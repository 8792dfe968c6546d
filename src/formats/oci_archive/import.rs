//! Import: an OCI archive's blobs stored, its entries tagged (see the
//! [module docs](super)).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use super::tar_in::{Kind, TarIn, bad, read_error};
use super::{ARCHIVE, OCI_LAYOUT_LIMIT};
use crate::error::{Error, Result};
use crate::io::digest::{Algorithm, Digest, Hasher};
use crate::io::durable;
use crate::io::progress::Progress;
use crate::model::name::RefName;
use crate::model::name::validate_ref;
use crate::model::{Descriptor, media_type};
use crate::store::graph::{Edge, Flaw, Graph};
use crate::store::index::Index;
use crate::store::layout::{INDEX_LIMIT, LAYOUT_VERSION, Layout};
use crate::store::writer::Writer;

/// Bytes copied at a time from a member into its blob.
const BUFFER: usize = 1 << 20;

/// How [`import_archive`] treats refs that exist already.
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

/// What [`import_archive`] did.
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

/// Stores an OCI archive (plain or gzip tar) read from `reader` in
/// `writer`'s layout and adds its `index.json` entries to ours. `progress`
/// counts blob bytes read (total unknown: 0). See the [module docs](super).
///
/// # Errors
/// Everything the module docs list as refused ([`Error::InvalidDocument`]
/// naming the member); a blob member whose content does not hash to its
/// name ([`Error::InvalidDocument`] naming the digest); truncated input
/// ([`Error::Io`]); an unsupported `oci-layout` version
/// ([`Error::UnsupportedLayoutVersion`]); a missing or malformed
/// `index.json`; an entry whose graph is incomplete (naming the missing
/// blob); a ref that exists here with another digest, unless
/// `options.force`; I/O errors. On error nothing is tagged; blobs stored
/// before it are unreferenced and go with the next gc.
pub fn import_archive<R: Read>(
    writer: &Writer<'_>,
    reader: R,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let layout = writer.layout();
    let mut tar = TarIn::new(reader)?;
    let mut report = ImportReport::default();
    let mut marker_seen = false;
    let mut index: Option<Index> = None;
    let mut blobs: HashSet<Digest> = HashSet::new();
    progress.begin("importing", 0);
    while let Some(member) = tar.next_member()? {
        let name = member.name.as_str();
        if member.kind == Kind::Dir {
            if !(name.is_empty() || name == "blobs" || name.starts_with("blobs/")) {
                return Err(outside(name));
            }
            continue;
        }
        match name {
            "oci-layout" => {
                if std::mem::replace(&mut marker_seen, true) {
                    return Err(bad("member \"oci-layout\" appears twice"));
                }
                if member.size > OCI_LAYOUT_LIMIT {
                    return Err(too_large("oci-layout", member.size, OCI_LAYOUT_LIMIT));
                }
                check_marker(&tar.read_body("oci-layout")?)?;
            }
            "index.json" => {
                if index.is_some() {
                    return Err(bad("member \"index.json\" appears twice"));
                }
                if member.size > INDEX_LIMIT {
                    return Err(too_large("index.json", member.size, INDEX_LIMIT));
                }
                let parsed = parse_index(&tar.read_body("index.json")?)?;
                // Fail early, before gigabytes of blobs, when a ref would
                // conflict; checked again under the lock at the end.
                plan_refs(&mut layout.read_index()?, &parsed, options)?;
                index = Some(parsed);
            }
            _ => {
                let digest = blob_name(name)?;
                let written = store_blob(writer, &mut tar, &digest, member.size, progress)?;
                if blobs.insert(digest) {
                    report.blobs += 1;
                    match written {
                        Some(n) => report.bytes_written += n,
                        None => report.blobs_skipped += 1,
                    }
                }
            }
        }
    }
    progress.finish();
    if !marker_seen {
        return Err(bad(
            "it has no oci-layout member; this is not an OCI archive (skopeo's oci-archive: \
             or `epoch-store export-archive` write one)",
        ));
    }
    let Some(index) = index else {
        return Err(bad(
            "it has no index.json member, so nothing in it can be tagged",
        ));
    };
    check_complete(layout, index.entries())?;
    report.refs = writer.update_index(|ours| plan_refs(ours, &index, options))?;
    Ok(report)
}

pub(super) fn outside(name: &str) -> Error {
    bad(format!(
        "member {name:?} refused: an OCI archive holds only oci-layout, index.json and \
         blobs/<alg>/<hex>"
    ))
}

fn too_large(member: &str, size: u64, limit: u64) -> Error {
    Error::TooLarge {
        what: format!("{ARCHIVE} member {member}"),
        size,
        limit,
    }
}

/// `blobs/<alg>/<hex>` as a digest, or why the name is refused.
pub(super) fn blob_name(name: &str) -> Result<Digest> {
    let Some(rest) = name.strip_prefix("blobs/") else {
        return Err(outside(name));
    };
    let Some((alg, hex)) = rest.split_once('/') else {
        return Err(outside(name));
    };
    let algorithm = Algorithm::from_name(alg).ok_or_else(|| {
        bad(format!(
            "member {name:?} refused: {alg:?} is not a digest algorithm epoch-store accepts \
             (sha256, sha512)"
        ))
    })?;
    Digest::from_hex(algorithm, hex).map_err(|_| {
        bad(format!(
            "member {name:?} refused: {hex:?} is not a lowercase {alg} digest"
        ))
    })
}

pub(super) fn check_marker(raw: &[u8]) -> Result<()> {
    let value: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|e| bad(format!("its oci-layout is not valid JSON: {e}")))?;
    match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(LAYOUT_VERSION) => Ok(()),
        Some(other) => Err(Error::UnsupportedLayoutVersion {
            path: format!("{ARCHIVE} member oci-layout").into(),
            version: other.to_string(),
        }),
        None => Err(bad("its oci-layout has no imageLayoutVersion string")),
    }
}

/// Parses the archive's `index.json`: a valid index, at least one entry,
/// valid ref names, no ref named twice with different digests.
fn parse_index(raw: &[u8]) -> Result<Index> {
    let what = format!("{ARCHIVE} member index.json");
    let index = Index::parse(raw).map_err(|e| e.in_document(what.clone()))?;
    if index.entries().is_empty() {
        return Err(Error::InvalidDocument {
            what,
            reason: "it lists no manifests; there is nothing to import".into(),
        });
    }
    let mut names: HashMap<&str, &Digest> = HashMap::new();
    for entry in index.entries() {
        if let Some(name) = entry.ref_name() {
            validate_ref(name)?;
            if let Some(other) = names.insert(name, &entry.digest)
                && *other != entry.digest
            {
                return Err(Error::InvalidDocument {
                    what,
                    reason: format!(
                        "the ref {name:?} names two different manifests, {other} and {}",
                        entry.digest
                    ),
                });
            }
        }
    }
    Ok(index)
}

/// Applies the archive's entries to `ours`; refuses (changing nothing the
/// caller will write) a ref that exists with another digest unless forced.
fn plan_refs(
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
fn check_complete(layout: &Layout, roots: &[Descriptor]) -> Result<()> {
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

/// Stores one blob member, published only if it hashes to `digest`.
/// Returns the bytes written, or `None` if the layout had the blob already
/// (then the member is hashed, not written, and the blob's mtime refreshed
/// for gc's grace period).
fn store_blob<R: Read>(
    writer: &Writer<'_>,
    tar: &mut TarIn<R>,
    digest: &Digest,
    size: u64,
    progress: &dyn Progress,
) -> Result<Option<u64>> {
    let member = format!(
        "{ARCHIVE} member blobs/{}/{}",
        digest.algorithm(),
        digest.hex()
    );
    let tampered = |found: &Digest| Error::InvalidDocument {
        what: member.clone(),
        reason: format!(
            "its content hashes to {found}, not to {digest} as its name says; the archive is \
             damaged or was altered"
        ),
    };
    let path = writer.layout().blob_path(digest);
    let present =
        crate::io::input::file_state(&path, size)? == crate::io::input::FileState::Present;
    let mut body = tar.body();
    let mut buf = vec![0u8; BUFFER.min(usize::try_from(size).unwrap_or(BUFFER).max(1))];
    if present {
        let mut hasher = Hasher::new(digest.algorithm());
        copy(&mut body, &mut buf, progress, |bytes| {
            hasher.update(bytes);
            Ok(())
        })?;
        let found = hasher.finish();
        if &found != digest {
            return Err(tampered(&found));
        }
        durable::touch(&path)?;
        return Ok(None);
    }
    let mut blob = writer.blob()?;
    let tmp = blob.temp_path().to_path_buf();
    copy(&mut body, &mut buf, progress, |bytes| {
        io::Write::write_all(&mut blob, bytes).map_err(|e| Error::io("write", &tmp, e))
    })?;
    let expected = Descriptor::new(media_type::GENERIC, digest.clone(), size);
    match blob.commit(media_type::GENERIC, Some(&expected)) {
        Ok(_) => Ok(Some(size)),
        Err(Error::DigestMismatch { found, .. }) => Err(tampered(&found)),
        Err(e) => Err(e),
    }
}

/// Feeds every byte of `body` to `sink`.
fn copy(
    body: &mut dyn Read,
    buf: &mut [u8],
    progress: &dyn Progress,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    loop {
        let n = match body.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        sink(&buf[..n])?;
        progress.advance(n as u64);
    }
}
