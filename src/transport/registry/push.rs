//! Push: a root of the layout and everything it reaches to a registry.
//! Blobs first, several at once, each skipped when the registry has it
//! (HEAD) and otherwise uploaded in one PUT streamed from the store (its
//! digest is known: no temp file, no second hash; the reader checks the
//! bytes as they go); then the documents, children before the indexes
//! that name them, the root last under its tag.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ureq::SendBody;

use super::client::{Call, Client, check_status, header};
use super::reference::Reference;
use super::upload::upload_blob;
use crate::error::Result;
use crate::io::digest::Digest;
use crate::io::schedule::{Workers, until_error};
use crate::model::{Descriptor, media_type as mt};
use crate::store::layout::Layout;

/// What [`push`] did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PushReport {
    /// Documents (manifests, indexes) put.
    pub documents: u64,
    /// Blobs uploaded.
    pub blobs: u64,
    /// Blobs the registry had already.
    pub blobs_skipped: u64,
    /// Bytes of blobs uploaded.
    pub bytes: u64,
    /// Requests made again (a dropped connection, 408, 429, 5xx).
    pub retries: u64,
    /// Bytes sent again by those retries (at most a chunk each).
    pub resent_bytes: u64,
    /// Blobs mounted from another repository of the registry.
    pub blobs_mounted: u64,
}

/// How [`push`] sends blobs.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PushOptions {
    /// Blobs in flight at once.
    pub jobs: usize,
    /// Blobs over this go up in PATCHes of this size.
    pub chunk: u64,
}

impl PushOptions {
    /// `jobs` blobs at a time, PATCHes of `chunk` bytes.
    pub fn new(jobs: usize, chunk: u64) -> PushOptions {
        PushOptions {
            jobs: jobs.max(1),
            chunk: chunk.max(1),
        }
    }
}

/// Blobs known to be in some repository of one registry (pushed, or found
/// there), for cross-repository mounts across the pushes of one run.
#[derive(Debug, Default)]
pub struct KnownBlobs(Mutex<HashMap<Digest, String>>);

impl KnownBlobs {
    pub(crate) fn repository_of(&self, digest: &Digest) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }

    pub(crate) fn add(&self, digest: &Digest, repository: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(digest.clone())
            .or_insert_with(|| repository.to_string());
    }
}

/// Pushes `root` of `layout`, and everything it reaches, to `reference`
/// (its tag, else `latest`; a digest-only reference pushes by digest),
/// with `options`; a blob `known` to be in another repository of the
/// registry is mounted from there.
///
/// # Errors
/// A blob or document missing or damaged in the layout (nothing is put
/// that refers to it); the registry unreachable or refusing.
pub fn push(
    layout: &Layout,
    root: &Descriptor,
    client: &Client,
    reference: &Reference,
    options: &PushOptions,
    known: &KnownBlobs,
) -> Result<PushReport> {
    let (order, raws, blobs) = plan(layout, root)?;
    let mut report = PushReport::default();
    let repository = reference.repository.as_str();
    let sent = until_error(&blobs, Workers::Threads(options.jobs), |b| {
        let from = known.repository_of(&b.digest).filter(|r| r != repository);
        let sent = upload_blob(layout, client, b, options.chunk, from.as_deref())?;
        known.add(&b.digest, repository);
        Ok::<_, crate::Error>(sent)
    })?;
    for (desc, sent) in blobs.iter().zip(sent) {
        if sent.uploaded {
            report.blobs += 1;
            report.bytes += desc.size;
        } else if sent.mounted {
            report.blobs_mounted += 1;
        } else {
            report.blobs_skipped += 1;
        }
        report.retries += sent.retries;
        report.resent_bytes += sent.resent;
    }
    for desc in &order {
        let target = if desc.digest == root.digest {
            reference.tag.clone().unwrap_or_else(|| reference.target())
        } else {
            desc.digest.to_string()
        };
        put_manifest(client, desc, &raws[&desc.digest], &target)?;
        report.documents += 1;
    }
    Ok(report)
}

/// The documents children first (with their bytes), and the other blobs.
#[allow(clippy::type_complexity)]
fn plan(
    layout: &Layout,
    root: &Descriptor,
) -> Result<(Vec<Descriptor>, HashMap<Digest, Vec<u8>>, Vec<Descriptor>)> {
    let mut order = Vec::new();
    let mut raws = HashMap::new();
    let mut blobs = Vec::new();
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((desc, expanded)) = stack.pop() {
        if expanded {
            order.push(desc);
            continue;
        }
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let (raw, doc) = layout.read_document(&desc)?;
        let children: Vec<Descriptor> = doc.children().cloned().collect();
        raws.insert(desc.digest.clone(), raw);
        stack.push((desc, true));
        for child in children {
            if mt::is_document(&child.media_type) {
                stack.push((child, false));
            } else if seen.insert(child.digest.clone()) {
                blobs.push(child);
            }
        }
    }
    Ok((order, raws, blobs))
}

/// Puts a manifest or index as `target` (a tag or its digest); the
/// `OCI-Subject` header of the answer, if any (a registry with the
/// referrers API says so for a manifest with a `subject`).
pub(crate) fn put_manifest(
    client: &Client,
    desc: &Descriptor,
    raw: &[u8],
    target: &str,
) -> Result<Option<String>> {
    let bytes = raw.to_vec();
    let mut make = move || -> Result<(SendBody<'static>, u64)> {
        let len = bytes.len() as u64;
        Ok((
            SendBody::from_owned_reader(std::io::Cursor::new(bytes.clone())),
            len,
        ))
    };
    let resp = client.send(&mut Call {
        method: "PUT",
        url: client.url(&format!("manifests/{target}")),
        headers: vec![("content-type", desc.media_type.clone())],
        body: Some(&mut make),
    })?;
    check_status(
        client,
        &resp,
        &format!("putting manifest {} as {target}", desc.digest),
    )?;
    Ok(header(&resp, "oci-subject"))
}
