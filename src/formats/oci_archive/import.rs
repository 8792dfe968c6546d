//! Import: an archive's members stored, its entries tagged (see the
//! [module docs](super)). The tar is read once; whether it is an OCI
//! archive or a docker archive (`docker save`, skopeo's `docker-archive:`)
//! is decided at its end by the members it held: `oci-layout` makes it an
//! OCI archive (docker save 25 and later writes both; the OCI index is
//! used then), else `manifest.json` a docker archive.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use super::blob_in::{store_blob, store_member};
use super::refs::{ImportOptions, ImportReport, check_complete, plan_refs};
use super::tar_in::{Kind, Member, TarIn, bad};
use super::{ARCHIVE, OCI_LAYOUT_LIMIT};
use crate::error::{Error, Result};
use crate::formats::docker_archive::DOCKER_ARCHIVE;
use crate::formats::docker_archive::import::Members;
use crate::io::digest::{Algorithm, Digest};
use crate::io::progress::Progress;
use crate::model::name::validate_ref;
use crate::store::index::Index;
use crate::store::layout::{INDEX_LIMIT, LAYOUT_VERSION};
use crate::store::writer::Writer;

/// Stores an archive read from `reader` in `writer`'s layout and adds its
/// entries to our `index.json`: an OCI archive (plain or gzip tar) or a
/// docker archive (what `docker save` and skopeo's `docker-archive:`
/// write; see [`crate::formats::docker_archive`]). `progress` counts blob
/// bytes read (total unknown: 0). See the [module docs](super).
///
/// # Errors
/// Everything the module docs list as refused ([`Error::InvalidDocument`]
/// naming the member); a blob member whose content does not hash to its
/// name ([`Error::InvalidDocument`] naming the digest); truncated input
/// ([`Error::Io`]); an unsupported `oci-layout` version
/// ([`Error::UnsupportedLayoutVersion`]); a missing or malformed
/// `index.json`; an entry whose graph is incomplete (naming the missing
/// blob); a ref that exists here with another digest, unless
/// `options.force`; what [`crate::formats::docker_archive`] refuses; I/O
/// errors. On error nothing is tagged; blobs stored before it are
/// unreferenced and go with the next gc.
pub fn import_archive<R: Read>(
    writer: &Writer<'_>,
    reader: R,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let mut tar = TarIn::new(reader)?;
    let mut state = State::default();
    progress.begin("importing", 0);
    while let Some(member) = tar.next_member()? {
        state.member(writer, &mut tar, member, options, progress)?;
    }
    progress.finish();
    state.finish(writer, options)
}

/// What the members read so far amount to.
#[derive(Default)]
struct State {
    marker_seen: bool,
    index: Option<Index>,
    blobs: HashSet<Digest>,
    report: ImportReport,
    /// The first member that has no place in an OCI archive.
    foreign: Option<String>,
    /// What a docker archive would be made of.
    docker: Members,
}

impl State {
    fn member<R: Read>(
        &mut self,
        writer: &Writer<'_>,
        tar: &mut TarIn<R>,
        member: Member,
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<()> {
        let name = member.name.as_str();
        let oci_name = matches!(name, "" | "oci-layout" | "index.json" | "blobs")
            || name.starts_with("blobs/");
        if member.kind != Kind::File {
            return self.not_a_file(&member, oci_name);
        }
        match name {
            "oci-layout" => {
                if std::mem::replace(&mut self.marker_seen, true) {
                    return Err(bad("member \"oci-layout\" appears twice"));
                }
                if member.size > OCI_LAYOUT_LIMIT {
                    return Err(too_large("oci-layout", member.size, OCI_LAYOUT_LIMIT));
                }
                check_marker(&tar.read_body("oci-layout")?)?;
                if let Some(first) = &self.foreign {
                    return Err(outside(first));
                }
            }
            "index.json" => {
                if self.index.is_some() {
                    return Err(bad("member \"index.json\" appears twice"));
                }
                if member.size > INDEX_LIMIT {
                    return Err(too_large("index.json", member.size, INDEX_LIMIT));
                }
                let parsed = parse_index(&tar.read_body("index.json")?)?;
                // Fail early, before gigabytes of blobs, when a ref would
                // conflict; checked again under the lock at the end.
                plan_refs(&mut writer.layout().read_index()?, &parsed, options)?;
                self.index = Some(parsed);
            }
            "manifest.json" | "repositories" => {
                if member.size > INDEX_LIMIT {
                    return Err(Error::TooLarge {
                        what: format!("{DOCKER_ARCHIVE} member {name}"),
                        size: member.size,
                        limit: INDEX_LIMIT,
                    });
                }
                let body = tar.read_body(name)?;
                self.docker.add_metadata(name, body)?;
            }
            _ if name.starts_with("blobs/") => {
                let digest = blob_name(name)?;
                let written = store_blob(writer, tar, &digest, member.size, progress)?;
                self.docker.add_blob(name, &digest, member.size)?;
                self.count(digest, written);
            }
            _ => {
                self.foreign_member(name)?;
                if !Members::is_legacy_metadata(name) {
                    let desc = store_member(writer, tar, member.size, progress)?;
                    self.count(desc.digest.clone(), Some(desc.size));
                    self.docker.add_file(name, desc)?;
                }
            }
        }
        Ok(())
    }

    /// A directory or symlink: skipped in an OCI archive's tree, refused
    /// as a link there, else kept for a docker archive.
    fn not_a_file(&mut self, member: &Member, oci_name: bool) -> Result<()> {
        let name = member.name.as_str();
        match member.kind {
            Kind::Dir if oci_name => Ok(()),
            Kind::Symlink if oci_name => Err(bad(format!(
                "member {name:?} is a symbolic link; an OCI archive holds only regular \
                 files and directories"
            ))),
            Kind::Symlink => {
                self.foreign_member(name)?;
                self.docker.add_link(name, &member.link)
            }
            _ => self.foreign_member(name),
        }
    }

    /// Notes a member an OCI archive cannot hold: refused at once once
    /// `oci-layout` was seen, else kept for a docker archive.
    fn foreign_member(&mut self, name: &str) -> Result<()> {
        if self.marker_seen {
            return Err(outside(name));
        }
        self.foreign.get_or_insert_with(|| name.to_string());
        Ok(())
    }

    fn count(&mut self, digest: Digest, written: Option<u64>) {
        if self.blobs.insert(digest) {
            self.report.blobs += 1;
            match written {
                Some(n) => self.report.bytes_written += n,
                None => self.report.blobs_skipped += 1,
            }
        }
    }

    /// Tags the archive's entries: its `index.json`'s for an OCI archive,
    /// its `manifest.json`'s for a docker archive.
    fn finish(self, writer: &Writer<'_>, options: &ImportOptions) -> Result<ImportReport> {
        let mut report = self.report;
        if !self.marker_seen {
            if self.docker.has_manifest() {
                let refs = self.docker.finish(writer, options)?;
                report.refs = refs;
                return Ok(report);
            }
            return Err(bad(
                "it has no oci-layout member; this is not an OCI archive (skopeo's oci-archive: \
                 or `epoch-store export-archive` write one), and no manifest.json, so it is not \
                 a docker archive (docker save, skopeo's docker-archive:) either",
            ));
        }
        let Some(index) = self.index else {
            return Err(bad(
                "it has no index.json member, so nothing in it can be tagged",
            ));
        };
        let layout = writer.layout();
        check_complete(layout, index.entries())?;
        report.refs = writer.update_index(|ours| plan_refs(ours, &index, options))?;
        Ok(report)
    }
}

pub(super) fn outside(name: &str) -> Error {
    bad(format!(
        "member {name:?} refused: an OCI archive holds only oci-layout, index.json and \
         blobs/<alg>/<hex> (and, from docker save, manifest.json and repositories)"
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
