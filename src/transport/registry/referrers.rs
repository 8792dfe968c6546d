//! Referrers: manifests whose `subject` names another manifest
//! (signatures, SBOMs, attestations), moved with what they refer to.
//!
//! Found on a registry through the referrers API (`GET
//! /v2/<repo>/referrers/<digest>`, distribution spec 1.1: an image index,
//! `Link` pages followed) or, where the registry lacks it (404, as
//! distribution 2.8 answers), through the fallback tag `<alg>-<hex>` (an
//! index of the referrers; 404: none). Every referrer is fetched by digest
//! and verified, with everything it reaches, and its own referrers after it
//! (a signature of an SBOM), at most [`MAX_DEPTH`] levels and
//! [`MAX_REFERRERS`] in all. In the layout a referrer is an untagged
//! `index.json` entry carrying its artifact type and annotations (what
//! oras-go's layout store writes), which gc keeps as a root.
//!
//! Pushed after their subject, by digest; a registry that does not answer
//! the manifest's PUT with `OCI-Subject` has the subject's fallback tag
//! read, the referrer's descriptor added and the index put back, as the
//! spec asks of clients.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;

use serde_json::{Map, Value};
use ureq::http::StatusCode;

use super::client::{Call, Client, check_status, header};
use super::known::KnownBlobs;
use super::pull::{PullOptions, fetch_manifest, plan_pull, pull};
use super::push::{PushOptions, PushReport, plan_push, push, put_manifest};
use super::reference::Reference;
use crate::error::{Error, ErrorKind, Result};
use crate::io::digest::{Algorithm, Digest};
use crate::model::{Descriptor, Document, annotation, media_type as mt};
use crate::store::layout::{DOCUMENT_LIMIT, Layout};
use crate::store::writer::Writer;

/// Levels of referrers followed below a manifest: a signature of an SBOM
/// of an image is two.
pub const MAX_DEPTH: usize = 8;

/// Referrers in one referrers list, and pulled in one run, at most.
pub const MAX_REFERRERS: usize = 1000;

/// Pages of one referrers answer followed.
const MAX_PAGES: usize = 32;

/// What [`pull_referrers`] did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReferrersPulled {
    /// The referrers, as their untagged `index.json` entries: media type,
    /// digest, size, the manifest's artifact type (else its config's media
    /// type) and annotations. In the order found, subjects first.
    pub entries: Vec<Descriptor>,
    /// Subjects whose referrers came from a fallback tag (the registry
    /// has no referrers API).
    pub fallback_tags: u64,
    /// Documents fetched (the referrers and what they reach).
    pub documents: u64,
    /// Blobs fetched.
    pub blobs: u64,
    /// Bytes of blobs fetched.
    pub bytes: u64,
}

/// What [`push_referrers`] did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReferrersPushed {
    /// Referrers put.
    pub referrers: u64,
    /// Fallback tags written (the registry did not say `OCI-Subject`).
    pub fallback_tags: u64,
    /// Documents put (the referrers and what they reach).
    pub documents: u64,
    /// Blobs uploaded.
    pub blobs: u64,
    /// Bytes of blobs uploaded.
    pub bytes: u64,
}

/// The fallback tag of `subject`'s referrers: `<alg>-<hex>`, the parts cut
/// to 32 and 64 characters.
pub fn fallback_tag(subject: &Digest) -> String {
    let alg: String = subject.algorithm().name().chars().take(32).collect();
    let hex: String = subject.hex().chars().take(64).collect();
    format!("{alg}-{hex}")
}

/// Pulls the referrers of every manifest and index `root` reaches in
/// `writer`'s layout (what a pull of `reference` just stored), and theirs
/// in turn, with everything they reach. Tags nothing: the caller adds
/// [`ReferrersPulled::entries`] to `index.json`.
///
/// # Errors
/// The registry unreachable or refusing; a referrers list or fallback tag
/// that is not an image index, lists something that is not a manifest,
/// lists more than [`MAX_REFERRERS`], or goes deeper than [`MAX_DEPTH`]; a
/// listed referrer that does not match its digest or size, or whose
/// `subject` is not the manifest it was listed for; as [`pull`].
pub fn pull_referrers(
    writer: &Writer<'_>,
    client: &Client,
    reference: &Reference,
    root: &Descriptor,
    options: &PullOptions,
) -> Result<ReferrersPulled> {
    let mut queue: VecDeque<(Digest, usize)> = documents_of(writer.layout(), root)?
        .into_iter()
        .map(|d| (d, 0))
        .collect();
    let mut seen: HashSet<Digest> = queue.iter().map(|(d, _)| d.clone()).collect();
    let mut report = ReferrersPulled::default();
    while let Some((subject, depth)) = queue.pop_front() {
        let (listed, from_tag) = list(client, &subject)?;
        report.fallback_tags += u64::from(from_tag && !listed.is_empty());
        for entry in listed {
            if !seen.insert(entry.digest.clone()) {
                continue;
            }
            if depth >= MAX_DEPTH {
                return Err(client.error(
                    ErrorKind::Malformed,
                    format!(
                        "referrers of referrers more than {MAX_DEPTH} levels deep \
                         ({} refers to {subject}); refusing to follow further",
                        entry.digest
                    ),
                ));
            }
            if report.entries.len() >= MAX_REFERRERS {
                return Err(client.error(
                    ErrorKind::Malformed,
                    format!("more than {MAX_REFERRERS} referrers; refusing to pull more"),
                ));
            }
            let stored = pull_one(
                writer,
                client,
                reference,
                &entry,
                &subject,
                options,
                &mut report,
            )?;
            report.entries.push(stored);
            queue.push_back((entry.digest, depth + 1));
        }
    }
    writer.sync()?;
    Ok(report)
}

/// The documents `root` reaches in `layout` (itself included), sorted.
fn documents_of(layout: &Layout, root: &Descriptor) -> Result<Vec<Digest>> {
    let graph = layout.whole_graph(
        std::slice::from_ref(root),
        &format!("cannot look for the referrers of {}", root.digest),
    )?;
    let mut docs: Vec<Digest> = graph.documents.into_keys().collect();
    docs.sort();
    Ok(docs)
}

/// The referrers the registry lists for `subject`, and whether they came
/// from the fallback tag.
fn list(client: &Client, subject: &Digest) -> Result<(Vec<Descriptor>, bool)> {
    let what = format!("the referrers of {subject}");
    let mut url = client.url(&format!("referrers/{subject}"));
    let mut entries = Vec::new();
    for page in 0..MAX_PAGES {
        let mut resp = client.send(&mut Call {
            method: "GET",
            url: url.clone(),
            headers: vec![("accept", mt::OCI_INDEX.to_string())],
            body: None,
        })?;
        if page == 0 && resp.status() == StatusCode::NOT_FOUND {
            return fallback_list(client, subject).map(|l| (l, true));
        }
        check_status(client, &resp, &what)?;
        let next = header(&resp, "link").and_then(|l| next_link(&l));
        let mut raw = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(DOCUMENT_LIMIT + 1)
            .read_to_end(&mut raw)
            .map_err(|e| client.error(ErrorKind::Network, format!("reading {what}: {e}")))?;
        if raw.len() as u64 > DOCUMENT_LIMIT {
            return Err(Error::TooLarge {
                what: format!("{what} from {}", client.registry()),
                size: raw.len() as u64,
                limit: DOCUMENT_LIMIT,
            });
        }
        entries.extend(listing(client, &raw, &what)?);
        if entries.len() > MAX_REFERRERS {
            return Err(too_many(client, &what));
        }
        let Some(next) = next else {
            return Ok((entries, false));
        };
        url = client.absolute(&next);
        if !url.starts_with(&client.absolute("/")) {
            return Err(client.error(
                ErrorKind::Malformed,
                format!("{what}: the next page is on another host ({next}); not followed"),
            ));
        }
    }
    Err(client.error(
        ErrorKind::Malformed,
        format!("{what}: more than {MAX_PAGES} pages; refusing to read more"),
    ))
}

/// The referrers the fallback tag of `subject` lists (none if it is absent).
fn fallback_list(client: &Client, subject: &Digest) -> Result<Vec<Descriptor>> {
    let tag = fallback_tag(subject);
    let what = format!("the fallback tag {tag} (the referrers of {subject})");
    match fetch_manifest(client, &tag, None, None) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
        Ok((_, media_type)) if media_type != mt::OCI_INDEX => {
            Err(not_an_index(client, &what, &format!("a {media_type}")))
        }
        Ok((raw, _)) => listing(client, &raw, &what),
    }
}

/// The descriptors of a referrers list (an image index of manifests).
fn listing(client: &Client, raw: &[u8], what: &str) -> Result<Vec<Descriptor>> {
    let doc = Document::parse(raw, Some(mt::OCI_INDEX))
        .map_err(|e| not_an_index(client, what, &e.to_string()))?;
    let list = doc.manifests.unwrap_or_default();
    if list.len() > MAX_REFERRERS {
        return Err(too_many(client, what));
    }
    if let Some(odd) = list.iter().find(|d| !mt::is_document(&d.media_type)) {
        return Err(client.error(
            ErrorKind::Malformed,
            format!(
                "{what} lists {}, a {:?}: not a manifest",
                odd.digest, odd.media_type
            ),
        ));
    }
    Ok(list)
}

fn not_an_index(client: &Client, what: &str, why: &str) -> Error {
    client.error(
        ErrorKind::Malformed,
        format!("{what} is not an image index of referrers: {why}"),
    )
}

fn too_many(client: &Client, what: &str) -> Error {
    client.error(
        ErrorKind::Malformed,
        format!("{what}: more than {MAX_REFERRERS} referrers; refusing to pull them"),
    )
}

/// The URL of `rel="next"` in a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_string())
    })
}

/// Fetches the referrer `entry` (listed for `subject`) and everything it
/// reaches but its subject (here already); its `index.json` entry.
fn pull_one(
    writer: &Writer<'_>,
    client: &Client,
    reference: &Reference,
    entry: &Descriptor,
    subject: &Digest,
    options: &PullOptions,
    report: &mut ReferrersPulled,
) -> Result<Descriptor> {
    let target = entry.digest.to_string();
    let (raw, media_type) = fetch_manifest(client, &target, Some(&entry.digest), Some(entry))
        .map_err(|e| match e {
            Error::SizeMismatch {
                expected, found, ..
            } => client.error(
                ErrorKind::Malformed,
                format!(
                    "{target} is listed as a referrer of {subject} of {expected} bytes, \
                     but it has {found}"
                ),
            ),
            e => e,
        })?;
    let doc = Document::parse(&raw, Some(&media_type))
        .map_err(|e| e.in_document(format!("{} {target}", client.registry())))?;
    if doc.subject.as_ref().map(|s| &s.digest) != Some(subject) {
        return Err(client.error(
            ErrorKind::Malformed,
            format!(
                "{target} is listed as a referrer of {subject}, but its subject is {}",
                doc.subject
                    .as_ref()
                    .map_or("missing".to_string(), |s| s.digest.to_string())
            ),
        ));
    }
    // Everything it is made of, as any pull by digest (its subject is
    // not followed: it is here already).
    let by_digest = Reference {
        digest: Some(entry.digest.clone()),
        tag: None,
        ..reference.clone()
    };
    let plan = plan_pull(writer.layout(), client, &by_digest, &[])?;
    let pulled = pull(writer, client, &plan, options)?;
    report.documents += pulled.documents;
    report.blobs += pulled.blobs;
    report.bytes += pulled.bytes;
    let stored = Descriptor::new(media_type, entry.digest.clone(), raw.len() as u64);
    Ok(referrer_entry(&stored, &doc))
}

/// A referrer's descriptor, as its `index.json` entry and its fallback
/// tag's entry: the spec's rule, its `artifactType` (else its config's
/// media type) and all its annotations (but a ref name).
fn referrer_entry(desc: &Descriptor, doc: &Document) -> Descriptor {
    let mut entry = Descriptor::new(desc.media_type.clone(), desc.digest.clone(), desc.size);
    entry.artifact_type = doc
        .artifact_type
        .clone()
        .or_else(|| doc.config.as_ref().map(|c| c.media_type.clone()));
    entry.annotations = doc.annotations.clone();
    entry.annotations.remove(annotation::REF_NAME);
    entry
}

/// Pushes, after `root` (pushed already) and by digest, every manifest of
/// the layout's `index.json` whose subject is a manifest `root` reaches,
/// and theirs in turn; keeps the fallback tags of a registry that does not
/// answer with `OCI-Subject`.
///
/// # Errors
/// A fallback tag on the registry that is not an image index (it is left
/// as it is); as [`push`].
pub fn push_referrers(
    layout: &Layout,
    root: &Descriptor,
    client: &Client,
    reference: &Reference,
    options: &PushOptions,
    known: &KnownBlobs,
) -> Result<ReferrersPushed> {
    let by_subject = referrers_in(layout)?;
    let mut queue: VecDeque<Digest> = documents_of(layout, root)?.into();
    let mut done: HashSet<Digest> = queue.iter().cloned().collect();
    let mut report = ReferrersPushed::default();
    while let Some(subject) = queue.pop_front() {
        let Some(referrers) = by_subject.get(&subject) else {
            continue;
        };
        let mut untracked = Vec::new();
        for (desc, doc) in referrers {
            if !done.insert(desc.digest.clone()) {
                continue;
            }
            let said = push_one(layout, client, reference, desc, options, known)?;
            report.referrers += 1;
            report.documents += said.documents;
            report.blobs += said.blobs;
            report.bytes += said.bytes;
            if !said.subject_acknowledged {
                untracked.push(referrer_entry(desc, doc));
            }
            queue.push_back(desc.digest.clone());
        }
        if !untracked.is_empty() && add_to_fallback(client, &subject, &untracked)? {
            report.fallback_tags += 1;
        }
    }
    Ok(report)
}

/// A referrer in the layout: its entry and document.
type Stored = (Descriptor, Document);

/// The manifests of `index.json` that have a subject, by subject digest,
/// each list sorted by digest.
fn referrers_in(layout: &Layout) -> Result<HashMap<Digest, Vec<Stored>>> {
    let mut by_subject: HashMap<Digest, Vec<Stored>> = HashMap::new();
    let mut read: HashSet<Digest> = HashSet::new();
    for entry in layout.read_index()?.entries() {
        if !mt::is_document(&entry.media_type) || !read.insert(entry.digest.clone()) {
            continue;
        }
        let (_, doc) = layout.read_document(entry)?;
        if let Some(subject) = doc.subject.clone() {
            let desc = Descriptor::new(entry.media_type.clone(), entry.digest.clone(), entry.size);
            by_subject
                .entry(subject.digest)
                .or_default()
                .push((desc, doc));
        }
    }
    for list in by_subject.values_mut() {
        list.sort_by(|a, b| a.0.digest.cmp(&b.0.digest));
    }
    Ok(by_subject)
}

/// Pushes one referrer by digest, as any push: what it is made of, then
/// itself (its subject, pushed already, is not followed).
fn push_one(
    layout: &Layout,
    client: &Client,
    reference: &Reference,
    desc: &Descriptor,
    options: &PushOptions,
    known: &KnownBlobs,
) -> Result<PushReport> {
    let by_digest = Reference {
        digest: Some(desc.digest.clone()),
        tag: None,
        ..reference.clone()
    };
    let plan = plan_push(layout, desc, client, options.jobs)?;
    push(layout, &plan, client, &by_digest, options, known)
}

/// Adds `referrers` to the fallback tag of `subject` (an empty index if
/// absent) and puts it back; false if it listed them all already.
fn add_to_fallback(client: &Client, subject: &Digest, referrers: &[Descriptor]) -> Result<bool> {
    let tag = fallback_tag(subject);
    let what = format!("the fallback tag {tag} (the referrers of {subject})");
    let mut index: Map<String, Value> = match fetch_manifest(client, &tag, None, None) {
        Err(e) if e.kind() == ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(e),
        Ok((_, media_type)) if media_type != mt::OCI_INDEX => {
            return Err(not_an_index(client, &what, &format!("a {media_type}")));
        }
        Ok((raw, _)) => {
            Document::parse(&raw, Some(mt::OCI_INDEX))
                .map_err(|e| not_an_index(client, &what, &e.to_string()))?;
            serde_json::from_slice(&raw).map_err(|e| not_an_index(client, &what, &e.to_string()))?
        }
    };
    index
        .entry("schemaVersion")
        .or_insert_with(|| Value::from(2));
    index
        .entry("mediaType")
        .or_insert_with(|| Value::from(mt::OCI_INDEX));
    let list = index
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = list else {
        return Err(not_an_index(client, &what, "`manifests` is not an array"));
    };
    let mut added = false;
    for r in referrers {
        let digest = Value::from(r.digest.to_string());
        if !list.iter().any(|d| d.get("digest") == Some(&digest)) {
            list.push(serde_json::to_value(r).expect("a descriptor always serializes"));
            added = true;
        }
    }
    if !added {
        return Ok(false);
    }
    let bytes = serde_json::to_vec(&index).expect("a JSON map always serializes");
    let desc = Descriptor::new(
        mt::OCI_INDEX,
        Digest::of_bytes(Algorithm::Sha256, &bytes),
        bytes.len() as u64,
    );
    put_manifest(client, &desc, &bytes, &tag)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_and_fallback_tags() {
        assert_eq!(
            next_link(r#"</v2/a/referrers/sha256:x?n=1&last=y>; rel="next""#).as_deref(),
            Some("/v2/a/referrers/sha256:x?n=1&last=y")
        );
        assert_eq!(
            next_link(r#"<https://a/prev>; rel="prev", <https://a/next>; rel=next"#).as_deref(),
            Some("https://a/next")
        );
        assert_eq!(next_link(r#"<https://a/prev>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        let d = Digest::of_bytes(Algorithm::Sha256, b"{}");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.hex()));
        let long = Digest::of_bytes(Algorithm::Sha512, b"{}");
        assert_eq!(fallback_tag(&long), format!("sha512-{}", &long.hex()[..64]));
    }
}
