//! Push: a root of the layout and everything it reaches to a registry.
//! Blobs first, several at once, each skipped when the registry has it
//! (HEAD) and otherwise uploaded in one PUT streamed from the store (its
//! digest is known: no temp file, no second hash; the reader checks the
//! bytes as they go); then the documents, children before the indexes
//! that name them, the root last under its tag.

use std::collections::{HashMap, HashSet};

use ureq::SendBody;

use super::client::{Call, Client, check_status};
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
}

/// Pushes `root` of `layout`, and everything it reaches, to `reference`
/// (its tag, else `latest`; a digest-only reference pushes by digest),
/// `jobs` blobs at a time, blobs over `chunk` bytes in PATCHes of `chunk`.
///
/// # Errors
/// A blob or document missing or damaged in the layout (nothing is put
/// that refers to it); the registry unreachable or refusing.
pub fn push(
    layout: &Layout,
    root: &Descriptor,
    client: &Client,
    reference: &Reference,
    jobs: usize,
    chunk: u64,
) -> Result<PushReport> {
    let (order, raws, blobs) = plan(layout, root)?;
    let mut report = PushReport::default();
    let chunk = chunk.max(1);
    let sent = until_error(&blobs, Workers::Threads(jobs.max(1)), |b| {
        upload_blob(layout, client, b, chunk)
    })?;
    for (desc, sent) in blobs.iter().zip(sent) {
        if sent.uploaded {
            report.blobs += 1;
            report.bytes += desc.size;
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

/// Puts a manifest or index as `target` (a tag or its digest).
fn put_manifest(client: &Client, desc: &Descriptor, raw: &[u8], target: &str) -> Result<()> {
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
    )
}
