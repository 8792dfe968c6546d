//! Pull: a manifest or index from a registry and everything it reaches
//! (nested indexes, configs, layers of any media type) into a layout.
//! First the plan ([`plan_pull`]): documents are read whole (at most
//! 4 MiB each) and verified, and the blobs the layout lacks listed (all a
//! `--dry-run` does). Then those blobs are streamed straight into the
//! store, several at once, each verified while it is written and published
//! with the store's protocol, and the documents stored as their raw bytes.
//! Nothing is tagged here: the caller tags the root once all is durable.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::client::{Call, Client, check_status, header};
use super::fetch::{Counters, fetch_blob};
use super::reference::Reference;
use crate::error::{Error, ErrorKind, Result};
use crate::io::digest::{Algorithm, Digest};
use crate::io::input::{FileState, file_state};
use crate::io::meter::Meter;
use crate::io::schedule::{Workers, until_error};
use crate::model::platform::PlatformSpec;
use crate::model::{Descriptor, Document, media_type as mt};
use crate::store::layout::{DOCUMENT_LIMIT, Layout};
use crate::store::writer::Writer;
use crate::transport::platforms::narrow_document;

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

/// What a pull would move: the documents (fetched and verified, not yet
/// stored) and the blobs the layout lacks.
#[derive(Debug)]
pub struct PullPlan {
    root: Descriptor,
    documents: Vec<(Descriptor, Vec<u8>)>,
    blobs: Vec<Descriptor>,
    there: u64,
}

impl PullPlan {
    /// The root to tag once pulled.
    pub fn root(&self) -> &Descriptor {
        &self.root
    }

    /// Documents (manifests, indexes) to store.
    pub fn documents(&self) -> usize {
        self.documents.len()
    }

    /// Blobs to fetch, and their bytes.
    pub fn to_fetch(&self) -> (u64, u64) {
        (
            self.blobs.len() as u64,
            self.blobs.iter().map(|b| b.size).sum(),
        )
    }

    /// Blobs the layout has already.
    pub fn there(&self) -> u64 {
        self.there
    }
}

/// How [`pull`] fetches blobs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PullOptions {
    /// Blobs in flight at once.
    pub jobs: usize,
    /// Counts the bytes fetched (progress) and holds them to a rate.
    pub meter: Arc<Meter>,
}

impl PullOptions {
    /// `jobs` blobs at a time, with the bytes counted by `meter`.
    pub fn new(jobs: usize, meter: Arc<Meter>) -> PullOptions {
        PullOptions {
            jobs: jobs.max(1),
            meter,
        }
    }
}

/// Fetches the documents `reference` reaches (each verified; nested
/// indexes followed) and finds the blobs `layout` lacks: what [`pull`]
/// would move. With `platforms`, an index is narrowed to its best image
/// for each (as `copy --platform` narrows one: a new index of just those)
/// before anything else is fetched. Writes nothing.
///
/// # Errors
/// The registry unreachable or refusing ([`Error::Registry`]); a document
/// that does not match its digest or size, over 4 MiB, or not a manifest
/// or index.
pub fn plan_pull(
    layout: &Layout,
    client: &Client,
    reference: &Reference,
    platforms: &[PlatformSpec],
) -> Result<PullPlan> {
    let (mut raw, media_type) =
        fetch_manifest(client, &reference.target(), reference.digest.as_ref(), None)?;
    let mut root = described(&media_type, &raw);
    if !platforms.is_empty() {
        let shown = reference.to_string();
        let doc = parse(client, &root, &raw)?;
        if let Some(narrowed) = narrow_document(Some(&shown), &root, &raw, &doc, platforms)? {
            root = narrowed.descriptor;
            raw = narrowed.bytes;
        }
    }
    let mut documents = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut seen: HashSet<Digest> = HashSet::from([root.digest.clone()]);
    let mut frontier = vec![(root.clone(), raw)];
    while let Some((desc, raw)) = frontier.pop() {
        let doc = parse(client, &desc, &raw)?;
        for child in doc.parts() {
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
                frontier.push((child.clone(), raw));
            } else {
                blobs.push(child.clone());
            }
        }
        documents.push((desc, raw));
    }
    let mut plan = PullPlan {
        root,
        documents,
        blobs: Vec::new(),
        there: 0,
    };
    for b in blobs {
        match file_state(&layout.blob_path(&b.digest), b.size)? {
            FileState::Present => plan.there += 1,
            _ => plan.blobs.push(b),
        }
    }
    Ok(plan)
}

/// Pulls what `plan` names into `writer`'s layout: the blobs it lacks,
/// `options.jobs` at a time, each verified while it is written, then the
/// documents as their raw bytes, all synced. Tags nothing.
///
/// # Errors
/// The registry unreachable or refusing ([`Error::Registry`]); a blob
/// that does not match its digest or size (nothing of it is published);
/// I/O errors writing the layout.
pub fn pull(
    writer: &Writer<'_>,
    client: &Client,
    plan: &PullPlan,
    options: &PullOptions,
) -> Result<PullReport> {
    let progress = options.meter.progress();
    progress.begin(&format!("pull {}", client.repository()), plan.to_fetch().1);
    let counters = Counters::default();
    let done = AtomicU64::new(0);
    let status = |done: u64| {
        progress.status(&format!(
            "{done}/{} blobs ({} here)",
            plan.blobs.len(),
            plan.there
        ));
    };
    status(0);
    let fetched = until_error(&plan.blobs, Workers::Threads(options.jobs), |b| {
        let size = fetch_blob(writer, client, b, &counters, &options.meter)?;
        status(done.fetch_add(1, Ordering::Relaxed) + 1);
        Ok::<_, Error>(size)
    });
    progress.finish();
    let fetched = fetched?;
    for (desc, raw) in &plan.documents {
        writer.put_bytes(&desc.media_type, raw)?;
    }
    writer.sync()?;
    Ok(PullReport {
        root: plan.root.clone(),
        documents: plan.documents.len() as u64,
        blobs: fetched.len() as u64,
        blobs_skipped: plan.there,
        bytes: fetched.iter().sum(),
        retries: counters.retries.into_inner(),
        resumed_bytes: counters.resumed.into_inner(),
        resumed_blobs: counters.resumed_runs.into_inner(),
    })
}

/// The descriptor of a document fetched as `raw`.
fn described(media_type: &str, raw: &[u8]) -> Descriptor {
    Descriptor::new(
        media_type,
        Digest::of_bytes(Algorithm::Sha256, raw),
        raw.len() as u64,
    )
}

fn parse(client: &Client, desc: &Descriptor, raw: &[u8]) -> Result<Document> {
    Document::parse(raw, Some(&desc.media_type))
        .map_err(|e| e.in_document(format!("{} {}", client.registry(), desc.digest)))
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
