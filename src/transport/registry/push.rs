//! Push: a root of the layout and everything it reaches to a registry.
//! First the plan ([`plan_push`]): the documents, and a HEAD of each blob
//! to learn which the registry lacks (all a `--dry-run` does). Then those
//! blobs, several at once, each uploaded streamed from the store (its
//! digest is known: no temp file; the registry checks it as the upload
//! closes); then the documents, children before the indexes
//! that name them, the root last under its tag.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ureq::SendBody;
use ureq::http::StatusCode;

use super::client::{Call, Client, check_status, header};
use super::known::KnownBlobs;
use super::reference::Reference;
use super::upload::Uploader;
use crate::error::Result;
use crate::io::digest::Digest;
use crate::io::meter::Meter;
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
    /// Bytes an earlier, interrupted push had sent, not sent again.
    pub resumed_bytes: u64,
    /// Whether the registry answered the root's PUT with `OCI-Subject`
    /// (it keeps the referrers of the root's subject itself).
    pub subject_acknowledged: bool,
}

/// How [`push`] sends blobs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PushOptions {
    /// Blobs in flight at once.
    pub jobs: usize,
    /// Blobs over this go up in PATCHes of this size.
    pub chunk: u64,
    /// Counts the bytes sent (progress) and holds them to a rate.
    pub meter: Arc<Meter>,
}

impl PushOptions {
    /// `jobs` blobs at a time, PATCHes of `chunk` bytes, unmetered.
    pub fn new(jobs: usize, chunk: u64) -> PushOptions {
        PushOptions {
            jobs: jobs.max(1),
            chunk: chunk.max(1),
            meter: Arc::default(),
        }
    }

    /// The same, with the bytes counted by `meter`.
    pub fn with_meter(mut self, meter: Arc<Meter>) -> PushOptions {
        self.meter = meter;
        self
    }
}

/// What a push would move: the documents (children first, with their
/// bytes) and the blobs, each with whether the registry has it.
#[derive(Debug)]
pub struct PushPlan {
    root: Descriptor,
    order: Vec<Descriptor>,
    raws: HashMap<Digest, Vec<u8>>,
    blobs: Vec<(Descriptor, bool)>,
}

impl PushPlan {
    /// Documents to put.
    pub fn documents(&self) -> usize {
        self.order.len()
    }

    /// Blobs the registry lacks, and their bytes.
    pub fn to_send(&self) -> (u64, u64) {
        self.blobs
            .iter()
            .filter(|(_, there)| !there)
            .fold((0, 0), |(n, b), (d, _)| (n + 1, b + d.size))
    }

    /// Blobs the registry has already.
    pub fn there(&self) -> u64 {
        self.blobs.iter().filter(|(_, there)| *there).count() as u64
    }
}

/// Reads what `root` of `layout` reaches and asks the registry (HEAD,
/// `jobs` at a time) which blobs it has: what [`push`] would move. Sends
/// nothing.
///
/// # Errors
/// A document missing or damaged in the layout; the registry unreachable
/// or refusing.
pub fn plan_push(
    layout: &Layout,
    root: &Descriptor,
    client: &Client,
    jobs: usize,
) -> Result<PushPlan> {
    let (order, raws, blobs) = plan(layout, root)?;
    let there = until_error(&blobs, Workers::Threads(jobs.max(1)), |b| {
        let head = client.send(&mut Call::new(
            "HEAD",
            client.url(&format!("blobs/{}", b.digest)),
        ))?;
        Ok::<_, crate::Error>(head.status() == StatusCode::OK)
    })?;
    Ok(PushPlan {
        root: root.clone(),
        order,
        raws,
        blobs: blobs.into_iter().zip(there).collect(),
    })
}

/// Pushes what `plan` names to `reference` (its tag, else `latest`; a
/// digest-only reference pushes by digest), with `options`: the blobs the
/// registry lacks (one that `known` puts in another repository of the
/// registry is mounted from there), then the documents, the root last.
///
/// # Errors
/// A blob missing or damaged in the layout (nothing is put that refers to
/// it); the registry unreachable or refusing.
pub fn push(
    layout: &Layout,
    plan: &PushPlan,
    client: &Client,
    reference: &Reference,
    options: &PushOptions,
    known: &KnownBlobs,
) -> Result<PushReport> {
    let mut report = PushReport {
        blobs_skipped: plan.there(),
        ..PushReport::default()
    };
    let repository = reference.repository.as_str();
    let missing: Vec<&Descriptor> = plan
        .blobs
        .iter()
        .filter(|(_, there)| !there)
        .map(|(d, _)| d)
        .collect();
    let progress = options.meter.progress();
    progress.begin(&format!("push {repository}"), plan.to_send().1);
    let uploader = Uploader::new(layout, client, options.chunk, &options.meter);
    let (done, mounted) = (AtomicU64::new(0), AtomicU64::new(0));
    let status = |done: u64, mounted: u64| {
        progress.status(&format!(
            "{done}/{} blobs ({} there, {mounted} mounted)",
            missing.len(),
            report.blobs_skipped
        ));
    };
    status(0, 0);
    let sent = until_error(&missing, Workers::Threads(options.jobs), |b| {
        let from = known.repository_of(&b.digest).filter(|r| r != repository);
        let sent = uploader.upload_blob(b, from.as_deref())?;
        known.add(&b.digest, repository);
        let m = mounted.fetch_add(u64::from(sent.mounted), Ordering::Relaxed);
        status(
            done.fetch_add(1, Ordering::Relaxed) + 1,
            m + u64::from(sent.mounted),
        );
        Ok::<_, crate::Error>(sent)
    });
    progress.finish();
    for (desc, sent) in missing.iter().zip(sent?) {
        if sent.mounted {
            report.blobs_mounted += 1;
        } else {
            report.blobs += 1;
            report.bytes += desc.size;
        }
        report.retries += sent.retries;
        report.resent_bytes += sent.resent;
        report.resumed_bytes += sent.resumed;
    }
    for (desc, _) in &plan.blobs {
        known.add(&desc.digest, repository);
    }
    for desc in &plan.order {
        let target = if desc.digest == plan.root.digest {
            reference.tag.clone().unwrap_or_else(|| reference.target())
        } else {
            desc.digest.to_string()
        };
        let subject = put_manifest(client, desc, &plan.raws[&desc.digest], &target)?;
        if desc.digest == plan.root.digest {
            report.subject_acknowledged = subject.is_some();
        }
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
        let children: Vec<Descriptor> = doc.parts().cloned().collect();
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
