//! Push: a root of the layout and everything it reaches to a registry.
//! Blobs first, several at once, each skipped when the registry has it
//! (HEAD) and otherwise uploaded in one PUT streamed from the store (its
//! digest is known: no temp file, no second hash; the reader checks the
//! bytes as they go); then the documents, children before the indexes
//! that name them, the root last under its tag.

use std::collections::{HashMap, HashSet};

use ureq::SendBody;
use ureq::http::StatusCode;

use super::client::{Call, Client};
use super::pull::{check_status, header};
use super::reference::Reference;
use crate::error::{ErrorKind, Result};
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
}

/// Pushes `root` of `layout`, and everything it reaches, to `reference`
/// (its tag, else `latest`; a digest-only reference pushes by digest),
/// `jobs` blobs at a time.
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
) -> Result<PushReport> {
    let (order, raws, blobs) = plan(layout, root)?;
    let mut report = PushReport::default();
    let sent = until_error(&blobs, Workers::Threads(jobs.max(1)), |b| {
        push_blob(layout, client, b)
    })?;
    for (desc, uploaded) in blobs.iter().zip(sent) {
        if uploaded {
            report.blobs += 1;
            report.bytes += desc.size;
        } else {
            report.blobs_skipped += 1;
        }
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

/// Uploads one blob unless the registry has it; whether it was uploaded.
fn push_blob(layout: &Layout, client: &Client, desc: &Descriptor) -> Result<bool> {
    let blob = format!("blob {}", desc.digest);
    let head = client.send(&mut Call {
        method: "HEAD",
        url: client.url(&format!("blobs/{}", desc.digest)),
        headers: vec![],
        body: None,
    })?;
    if head.status() == StatusCode::OK {
        return Ok(false);
    }
    // Open it first: a missing blob fails before the registry is asked.
    drop(layout.open_blob(desc)?);
    let start = client.send(&mut Call {
        method: "POST",
        url: client.url("blobs/uploads/"),
        headers: vec![],
        body: None,
    })?;
    check_status(client, &start, &format!("starting the upload of {blob}"))?;
    let location = header(&start, "location").ok_or_else(|| {
        client.error(
            ErrorKind::Malformed,
            format!("starting the upload of {blob}: no Location"),
        )
    })?;
    let mut url = client.absolute(&location);
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!("digest={}", desc.digest).replace(':', "%3A"));
    let mut make = || -> Result<(SendBody<'static>, u64)> {
        let reader = layout.open_blob(desc)?;
        Ok((SendBody::from_owned_reader(reader), desc.size))
    };
    let put = client.send(&mut Call {
        method: "PUT",
        url,
        headers: vec![("content-type", "application/octet-stream".into())],
        body: Some(&mut make),
    })?;
    check_status(client, &put, &format!("uploading {blob}"))?;
    Ok(true)
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
