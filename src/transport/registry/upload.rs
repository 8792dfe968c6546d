//! One blob to a registry (the push has asked with HEAD that it is
//! missing), streamed from the store and not hashed on the way (the
//! registry checks the digest when the upload closes, as the distribution
//! spec requires; a 400 then says the layout's copy may be damaged): one
//! PUT when it fits in a chunk, or PATCHes of
//! `chunk` bytes in order (what a proxy with a body limit lets through;
//! distribution 2.8 needs them in order) and a closing PUT. A chunk that
//! fails on a dropped connection or 408/429/5xx is retried with backoff
//! from where the registry says the upload stands (`GET` of the upload
//! URL, its `Range` header), so only that chunk is sent again; a registry
//! that lost the upload has the blob started again. Where a chunked
//! upload stands is saved after each chunk ([`UploadState`]), so a push
//! killed midway goes on from there on its next run.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ureq::SendBody;
use ureq::http::StatusCode;

use super::client::{Call, Client, check_status, header};
use super::fetch::backoff;
use super::upload_state::UploadState;
use crate::error::{Error, ErrorKind, Result};
use crate::io::meter::Meter;
use crate::model::Descriptor;
use crate::store::layout::Layout;

/// Attempts of one chunk after the first.
const RETRIES: u32 = 6;

/// What one blob's upload came to.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sent {
    /// Attempts made again.
    pub retries: u64,
    /// Bytes sent again by those attempts.
    pub resent: u64,
    /// Whether it was mounted from another repository (not sent).
    pub mounted: bool,
    /// Bytes an earlier run had sent, not sent again.
    pub resumed: u64,
}

/// The smallest chunk a 413 halves the chunk size down to.
const SMALLEST_CHUNK: u64 = 1 << 20;

/// Where blobs go up from, and how.
pub(crate) struct Uploader<'a> {
    layout: &'a Layout,
    client: &'a Client,
    /// Blobs over this go up in PATCHes of this size: what was asked for,
    /// raised to the registry's `OCI-Chunk-Min-Length`, halved by a 413
    /// (a proxy's body limit), for every worker.
    chunk: AtomicU64,
    meter: &'a Arc<Meter>,
}

impl<'a> Uploader<'a> {
    /// Uploads from `layout` to `client`'s repository in PATCHes of
    /// `chunk` bytes, counted by `meter`.
    pub(crate) fn new(
        layout: &'a Layout,
        client: &'a Client,
        chunk: u64,
        meter: &'a Arc<Meter>,
    ) -> Uploader<'a> {
        Uploader {
            layout,
            client,
            chunk: AtomicU64::new(chunk.max(1)),
            meter,
        }
    }

    fn chunk(&self) -> u64 {
        self.chunk.load(Ordering::Relaxed)
    }

    /// A body of `refused` bytes met 413: the chunk size halved below it,
    /// or an error once that would go under [`SMALLEST_CHUNK`].
    fn shrink(&self, refused: u64, error: Error) -> Result<()> {
        let half = (refused / 2) / SMALLEST_CHUNK * SMALLEST_CHUNK;
        if half < SMALLEST_CHUNK {
            return Err(error);
        }
        self.chunk.fetch_min(half, Ordering::Relaxed);
        Ok(())
    }

    /// `POST /v2/<repo>/blobs/uploads/`: the upload's URL; the chunk size
    /// is raised to the registry's `OCI-Chunk-Min-Length` if it gives one.
    fn start(&self, blob: &str) -> Result<String> {
        let resp = self
            .client
            .send(&mut Call::new("POST", self.client.url("blobs/uploads/")))?;
        check_status(
            self.client,
            &resp,
            &format!("starting the upload of {blob}"),
        )?;
        if let Some(min) = header(&resp, "oci-chunk-min-length").and_then(|v| v.trim().parse().ok())
        {
            self.chunk.fetch_max(min, Ordering::Relaxed);
        }
        location(self.client, &resp, blob)
    }

    /// Uploads `desc` (missing from the registry), in chunks when over
    /// the chunk size: an upload an earlier run left is gone on with;
    /// else, with `from` (another repository of the registry that has
    /// it), the registry is first asked to mount it from there.
    pub(crate) fn upload_blob(&self, desc: &Descriptor, from: Option<&str>) -> Result<Sent> {
        let blob = format!("blob {}", desc.digest);
        // Open it first: a missing blob fails before the registry is asked.
        drop(self.layout.open_blob(desc)?);
        let mut sent = Sent::default();
        let state = UploadState::new(
            self.layout,
            self.client.registry(),
            self.client.repository(),
            &desc.digest,
        );
        if desc.size > self.chunk()
            && let Some(saved) = state.load()
        {
            match status(self.client, &saved.location) {
                Ok((at, next)) if at <= desc.size => {
                    sent.resumed = at;
                    self.upload_chunked(desc, next, at, &state, &mut sent)?;
                    return Ok(sent);
                }
                _ => state.clear(),
            }
        }
        let location = match from {
            Some(repo) => match mount(self.client, desc, repo, &blob)? {
                Some(upload) => upload,
                None => {
                    sent.mounted = true;
                    return Ok(sent);
                }
            },
            None => self.start(&blob)?,
        };
        if desc.size <= self.chunk() {
            match self.upload_whole(desc, location, &mut sent) {
                Err(e) if e.kind() == ErrorKind::TooLarge => {
                    // A proxy's body limit: in chunks under it instead.
                    self.shrink(desc.size, e)?;
                    let location = self.start(&blob)?;
                    self.upload_chunked(desc, location, 0, &state, &mut sent)?;
                }
                r => r?,
            }
        } else {
            self.upload_chunked(desc, location, 0, &state, &mut sent)?;
        }
        Ok(sent)
    }

    /// One PUT of the whole blob; a failure starts a new upload and sends
    /// it all again.
    fn upload_whole(&self, desc: &Descriptor, mut location: String, sent: &mut Sent) -> Result<()> {
        let blob = format!("blob {}", desc.digest);
        let mut attempt = 0;
        loop {
            match self.put_whole(desc, &location) {
                Ok(()) => return Ok(()),
                Err(e) if retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    sent.retries += 1;
                    sent.resent += desc.size;
                    std::thread::sleep(backoff(attempt, None));
                    location = self.start(&blob)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// PATCHes of `chunk` bytes in order from `offset` (what the registry
    /// has), saving where the upload stands after each; then the closing
    /// PUT.
    fn upload_chunked(
        &self,
        desc: &Descriptor,
        mut location: String,
        mut offset: u64,
        state: &UploadState,
        sent: &mut Sent,
    ) -> Result<()> {
        let blob = format!("blob {}", desc.digest);
        let mut attempt = 0;
        while offset < desc.size {
            let len = self.chunk().min(desc.size - offset);
            match self.patch(desc, &location, offset, len) {
                Ok(next) => {
                    location = next;
                    offset += len;
                    attempt = 0;
                    state.save(&location, offset)?;
                }
                // Refused before the registry saw it: smaller, from here.
                Err(e) if e.kind() == ErrorKind::TooLarge => self.shrink(len, e)?,
                Err(e) if retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    sent.retries += 1;
                    std::thread::sleep(backoff(attempt, None));
                    match self.resume_point(&location, offset + len, &blob) {
                        Ok((at, next)) => {
                            sent.resent += (offset + len).saturating_sub(at);
                            offset = at;
                            location = next;
                        }
                        // Not even the status: the same chunk, next attempt.
                        Err(e) if retryable(&e) => sent.resent += len,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let url = with_digest(self.client, &location, desc);
        let mut empty = || -> Result<(SendBody<'static>, u64)> {
            Ok((SendBody::from_owned_reader(std::io::empty()), 0))
        };
        let put = self.client.send(&mut Call {
            method: "PUT",
            url,
            headers: vec![],
            body: Some(&mut empty),
        })?;
        if let Err(e) = digest_refused(self.client, &put, &format!("closing the upload of {blob}"))
        {
            state.clear();
            return Err(e);
        }
        check_status(self.client, &put, &format!("closing the upload of {blob}"))?;
        state.clear();
        Ok(())
    }

    /// Where the registry says the upload at `location` stands (at most
    /// `limit`, what was sent), and its URL; where it lost the upload
    /// (distribution 2.8 does when a PATCH is cut: the offset in its
    /// signed state no longer matches), a new upload from 0.
    fn resume_point(&self, location: &str, limit: u64, blob: &str) -> Result<(u64, String)> {
        match status(self.client, location) {
            Ok((at, next)) if at <= limit => Ok((at, next)),
            Err(e) if retryable(&e) => Err(e),
            _ => Ok((0, self.start(blob)?)),
        }
    }

    /// The whole blob in one PUT, streamed from the store.
    fn put_whole(&self, desc: &Descriptor, location: &str) -> Result<()> {
        let mut make = || -> Result<(SendBody<'static>, u64)> {
            let reader = self.meter.reader(self.layout.open_blob_file(desc)?);
            Ok((SendBody::from_owned_reader(reader), desc.size))
        };
        let put = self.client.send(&mut Call {
            method: "PUT",
            url: with_digest(self.client, location, desc),
            headers: vec![("content-type", "application/octet-stream".into())],
            body: Some(&mut make),
        })?;
        let what = format!("uploading blob {}", desc.digest);
        refused_as_too_large(self.client, &put, &what, desc.size)?;
        digest_refused(self.client, &put, &what)?;
        check_status(self.client, &put, &what)
    }

    /// Bytes `offset..offset+len` in one PATCH; the upload's next URL.
    fn patch(&self, desc: &Descriptor, url: &str, offset: u64, len: u64) -> Result<String> {
        let client = self.client;
        let mut make = || -> Result<(SendBody<'static>, u64)> {
            let mut file = self.layout.open_blob_file(desc)?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io("seek", self.layout.blob_path(&desc.digest), e))?;
            let reader = self.meter.reader(file.take(len));
            Ok((SendBody::from_owned_reader(reader), len))
        };
        let resp = client.send(&mut Call {
            method: "PATCH",
            url: client.absolute(url),
            headers: vec![
                ("content-type", "application/octet-stream".into()),
                ("content-range", format!("{offset}-{}", offset + len - 1)),
            ],
            body: Some(&mut make),
        })?;
        let what = format!("chunk at {offset} of blob {}", desc.digest);
        refused_as_too_large(client, &resp, &what, len)?;
        if resp.status() == StatusCode::REQUEST_TIMEOUT
            || resp.status() == StatusCode::TOO_MANY_REQUESTS
            || resp.status().is_server_error()
        {
            return Err(client.error(ErrorKind::Network, format!("{what}: {}", resp.status())));
        }
        check_status(client, &resp, &what)?;
        location(client, &resp, &format!("blob {}", desc.digest))
    }
}

/// `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<repo>`: `None`
/// when mounted (201), else the URL of the upload it started instead.
fn mount(client: &Client, desc: &Descriptor, from: &str, blob: &str) -> Result<Option<String>> {
    let query = format!("blobs/uploads/?mount={}&from={from}", desc.digest).replace(':', "%3A");
    let resp = client.send(&mut Call::new("POST", client.url(&query)))?;
    if resp.status() == StatusCode::CREATED {
        return Ok(None);
    }
    check_status(client, &resp, &format!("mounting {blob} from {from}"))?;
    location(client, &resp, blob).map(Some)
}

fn location(
    client: &Client,
    resp: &ureq::http::Response<ureq::Body>,
    blob: &str,
) -> Result<String> {
    header(resp, "location")
        .map(|l| client.absolute(&l))
        .ok_or_else(|| {
            client.error(
                ErrorKind::Malformed,
                format!("the upload of {blob}: no Location"),
            )
        })
}

fn with_digest(client: &Client, location: &str, desc: &Descriptor) -> String {
    let mut url = client.absolute(location);
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!("digest={}", desc.digest).replace(':', "%3A"));
    url
}

/// Where the upload stands: the next offset, and its URL.
fn status(client: &Client, location: &str) -> Result<(u64, String)> {
    let resp = client.send(&mut Call::new("GET", client.absolute(location)))?;
    let code = resp.status();
    if !code.is_success() {
        // 408, 429, 5xx: ask again later; anything else: the upload is gone.
        let kind = if code == StatusCode::REQUEST_TIMEOUT
            || code == StatusCode::TOO_MANY_REQUESTS
            || code.is_server_error()
        {
            ErrorKind::Network
        } else {
            ErrorKind::NotFound
        };
        return Err(client.error(kind, format!("the upload's status: {code}")));
    }
    let range = header(&resp, "range").unwrap_or_default();
    let next = match range.trim().split_once('-') {
        // distribution writes 0-0 for an empty upload too.
        Some(("0", "0")) => 0,
        Some((_, end)) => {
            end.parse::<u64>().map_err(|_| {
                client.error(
                    ErrorKind::Malformed,
                    format!("the upload's status has a bogus Range {range:?}"),
                )
            })? + 1
        }
        None => 0,
    };
    let url =
        header(&resp, "location").map_or_else(|| location.to_string(), |l| client.absolute(&l));
    Ok((next, url))
}

/// 400 to the PUT that closes an upload: the registry found the bytes do
/// not have the blob's digest (it must check, by the distribution spec;
/// blobs are not hashed here on their way out, so that every byte is
/// hashed once, there). An error of kind [`ErrorKind::Damaged`], not
/// retried.
fn digest_refused(
    client: &Client,
    resp: &ureq::http::Response<ureq::Body>,
    what: &str,
) -> Result<()> {
    if resp.status() != StatusCode::BAD_REQUEST {
        return Ok(());
    }
    Err(client.error(
        ErrorKind::Damaged,
        format!(
            "{what}: the registry answered 400: the bytes sent do not have the blob's digest; \
             the layout's copy may be damaged: run `epoch-store verify`"
        ),
    ))
}

/// 413: an error of kind [`ErrorKind::TooLarge`] naming the body's size.
fn refused_as_too_large(
    client: &Client,
    resp: &ureq::http::Response<ureq::Body>,
    what: &str,
    len: u64,
) -> Result<()> {
    if resp.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return Ok(());
    }
    Err(client.error(
        ErrorKind::TooLarge,
        format!(
            "{what}: a body of {} was refused as too large (413), down to chunks of {}; a proxy's body limit? give a smaller --chunk-size",
            crate::io::size::human(len),
            crate::io::size::human(SMALLEST_CHUNK)
        ),
    ))
}

fn retryable(e: &Error) -> bool {
    e.kind() == ErrorKind::Network
}
