//! Pull: a manifest or index from a registry and everything it reaches
//! (nested indexes, configs, layers of any media type) into a layout.
//! Documents are read whole (at most 4 MiB) and verified; blobs are
//! streamed straight into the store, several at once, each verified while
//! it is written and published with the store's protocol. Nothing is
//! tagged here: the caller tags the root once every blob is durable.

use std::collections::HashSet;
use std::io::Read;

use super::client::{Call, Client, check_status, header};
use super::fetch::{Counters, fetch_blob};
use super::reference::Reference;
use crate::error::{Error, ErrorKind, Result};
use crate::io::digest::{Algorithm, Digest};
use crate::io::input::{FileState, file_state};
use crate::io::schedule::{Workers, until_error};
use crate::model::platform::PlatformSpec;
use crate::model::{Descriptor, Document, media_type as mt};
use crate::store::layout::DOCUMENT_LIMIT;
use crate::store::writer::Writer;
use crate::transport::platforms::narrow;

/// What `Accept` asks for: every manifest and index type.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// What [`pull`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PullReport {
    /// The root pulled (to tag).
    pub root: Descriptor,
    /// Documents (manifests, indexes) fetched.
    pub documents: u64,
    /// Blobs fetched.
    pub blobs: u64,
    /// Blobs the layout had already (not fetched).
    pub blobs_skipped: u64,
    /// Bytes of blobs fetched.
    pub bytes: u64,
    /// Requests made again (a dropped connection, 408, 429, 5xx).
    pub retries: u64,
    /// Bytes not fetched again because a retry, or this run after a
    /// killed or failed one, went on after them.
    pub resumed_bytes: u64,
    /// Blobs taken up from what an earlier run left in the private
    /// directory.
    pub resumed_blobs: u64,
}

/// Pulls what `reference` names, and everything it reaches, into
/// `writer`'s layout, `jobs` blobs at a time. With `platforms`, an index
/// is narrowed to its best image for each (as `copy --platform` narrows
/// one: a new index of just those) before anything else is fetched. Tags
/// nothing.
///
/// # Errors
/// The registry unreachable or refusing ([`Error::Registry`]); a document
/// or blob that does not match its digest or size (nothing of it is
/// published); a document over 4 MiB or not a manifest or index; I/O
/// errors writing the layout.
pub fn pull(
    writer: &Writer<'_>,
    client: &Client,
    reference: &Reference,
    jobs: usize,
    platforms: &[PlatformSpec],
) -> Result<PullReport> {
    let (raw, media_type) =
        fetch_manifest(client, &reference.target(), reference.digest.as_ref(), None)?;
    let mut root = writer.put_bytes(&media_type, &raw)?;
    let mut raw = raw;
    if !platforms.is_empty() {
        let shown = reference.to_string();
        if let Some(narrowed) = narrow(writer.layout(), Some(&shown), &root, platforms)? {
            root = writer.put_bytes(&narrowed.descriptor.media_type, &narrowed.bytes)?;
            raw = narrowed.bytes;
        }
    }
    let mut report = PullReport {
        root: root.clone(),
        documents: 1,
        blobs: 0,
        blobs_skipped: 0,
        bytes: 0,
        retries: 0,
        resumed_bytes: 0,
        resumed_blobs: 0,
    };
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut seen: HashSet<Digest> = HashSet::from([root.digest.clone()]);
    let mut frontier = vec![(root, raw)];
    while let Some((desc, raw)) = frontier.pop() {
        let doc = Document::parse(&raw, Some(&desc.media_type))
            .map_err(|e| e.in_document(format!("{} {}", client.registry(), desc.digest)))?;
        for child in doc.children() {
            if !seen.insert(child.digest.clone()) {
                continue;
            }
            if mt::is_document(&child.media_type) {
                let (raw, _) = fetch_manifest(
                    client,
                    &child.digest.to_string(),
                    Some(&child.digest),
                    Some(child),
                )?;
                let stored = writer.put_bytes(&child.media_type, &raw)?;
                report.documents += 1;
                frontier.push((stored, raw));
            } else {
                blobs.push(child.clone());
            }
        }
    }
    let layout = writer.layout();
    let mut missing = Vec::new();
    for b in blobs {
        match file_state(&layout.blob_path(&b.digest), b.size)? {
            FileState::Present => report.blobs_skipped += 1,
            _ => missing.push(b),
        }
    }
    let counters = Counters::default();
    let fetched = until_error(&missing, Workers::Threads(jobs.max(1)), |b| {
        fetch_blob(writer, client, b, &counters)
    })?;
    report.blobs = fetched.len() as u64;
    report.bytes = fetched.iter().sum();
    report.retries = counters.retries.into_inner();
    report.resumed_bytes = counters.resumed.into_inner();
    report.resumed_blobs = counters.resumed_runs.into_inner();
    writer.sync()?;
    Ok(report)
}

/// A manifest or index by tag or digest: its bytes (verified against
/// `digest`, or the registry's `Docker-Content-Digest`) and media type.
pub(crate) fn fetch_manifest(
    client: &Client,
    target: &str,
    digest: Option<&Digest>,
    desc: Option<&Descriptor>,
) -> Result<(Vec<u8>, String)> {
    let mut call = Call {
        method: "GET",
        url: client.url(&format!("manifests/{target}")),
        headers: vec![("accept", ACCEPT.to_string())],
        body: None,
    };
    let mut resp = client.send(&mut call)?;
    check_status(client, &resp, &format!("manifest {target}"))?;
    let header_digest = header(&resp, "docker-content-digest");
    let content_type =
        header(&resp, "content-type").map(|t| t.split(';').next().unwrap_or("").trim().to_string());
    let mut raw = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(DOCUMENT_LIMIT + 1)
        .read_to_end(&mut raw)
        .map_err(|e| {
            client.error(
                ErrorKind::Network,
                format!("reading manifest {target}: {e}"),
            )
        })?;
    if raw.len() as u64 > DOCUMENT_LIMIT {
        return Err(Error::TooLarge {
            what: format!("manifest {target} from {}", client.registry()),
            size: raw.len() as u64,
            limit: DOCUMENT_LIMIT,
        });
    }
    let found = Digest::of_bytes(Algorithm::Sha256, &raw);
    let expected = digest
        .cloned()
        .or_else(|| header_digest.and_then(|d| Digest::parse(&d).ok()));
    if let Some(e) = expected
        && e.algorithm() == Algorithm::Sha256
        && e != found
    {
        return Err(Error::DigestMismatch { expected: e, found });
    }
    if let Some(d) = desc
        && d.size != raw.len() as u64
    {
        return Err(Error::SizeMismatch {
            digest: d.digest.clone(),
            expected: d.size,
            found: raw.len() as u64,
        });
    }
    let media_type = desc
        .map(|d| d.media_type.clone())
        .or(content_type.filter(|t| mt::is_document(t)))
        .or_else(|| Document::parse(&raw, None).ok().and_then(|d| d.media_type))
        .ok_or_else(|| {
            client.error(
                ErrorKind::Malformed,
                format!("manifest {target} has no media type"),
            )
        })?;
    Ok((raw, media_type))
}
