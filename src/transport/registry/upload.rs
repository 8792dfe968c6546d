//! One blob to a registry: skipped when it is there (HEAD); else one
//! streamed PUT when it fits in a chunk, or PATCHes of `chunk` bytes in
//! order (what a proxy with a body limit lets through; distribution 2.8
//! needs them in order) and a closing PUT. A chunk that fails on a dropped
//! connection or 408/429/5xx is retried with backoff from where the
//! registry says the upload stands (`GET` of the upload URL, its `Range`
//! header), so only that chunk is sent again; a registry that lost the
//! upload has the blob started again.

use std::io::{Read, Seek, SeekFrom};

use ureq::SendBody;
use ureq::http::StatusCode;

use super::client::{Call, Client, check_status, header};
use super::fetch::backoff;
use crate::error::{Error, ErrorKind, Result};
use crate::model::Descriptor;
use crate::store::layout::Layout;

/// Attempts of one chunk after the first.
const RETRIES: u32 = 6;

/// What one blob's upload came to.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sent {
    /// Whether it was uploaded (false: the registry had it).
    pub uploaded: bool,
    /// Attempts made again.
    pub retries: u64,
    /// Bytes sent again by those attempts.
    pub resent: u64,
    /// Whether it was mounted from another repository (not sent).
    pub mounted: bool,
}

/// Uploads `desc` unless the registry has it, in chunks of `chunk` bytes;
/// first asks the registry to mount it from repository `from` of the same
/// registry, when given (one that has it).
pub(crate) fn upload_blob(
    layout: &Layout,
    client: &Client,
    desc: &Descriptor,
    chunk: u64,
    from: Option<&str>,
) -> Result<Sent> {
    let blob = format!("blob {}", desc.digest);
    let head = client.send(&mut Call::new(
        "HEAD",
        client.url(&format!("blobs/{}", desc.digest)),
    ))?;
    if head.status() == StatusCode::OK {
        return Ok(Sent::default());
    }
    // Open it first: a missing blob fails before the registry is asked.
    drop(layout.open_blob(desc)?);
    let mut sent = Sent {
        uploaded: true,
        ..Sent::default()
    };
    let location = match from {
        Some(repo) => match mount(client, desc, repo, &blob)? {
            Some(upload) => upload,
            None => {
                return Ok(Sent {
                    mounted: true,
                    ..Sent::default()
                });
            }
        },
        None => start(client, &blob)?,
    };
    if desc.size <= chunk {
        upload_whole(layout, client, desc, location, &mut sent)?;
    } else {
        upload_chunked(layout, client, desc, chunk, location, &mut sent)?;
    }
    Ok(sent)
}

/// One PUT of the whole blob; a failure starts a new upload and sends it
/// all again.
fn upload_whole(
    layout: &Layout,
    client: &Client,
    desc: &Descriptor,
    mut location: String,
    sent: &mut Sent,
) -> Result<()> {
    let blob = format!("blob {}", desc.digest);
    let mut attempt = 0;
    loop {
        match put_whole(layout, client, desc, &location) {
            Ok(()) => return Ok(()),
            Err(e) if retryable(&e) && attempt < RETRIES => {
                attempt += 1;
                sent.retries += 1;
                sent.resent += desc.size;
                std::thread::sleep(backoff(attempt, None));
                location = start(client, &blob)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// PATCHes of `chunk` bytes in order, then the closing PUT.
fn upload_chunked(
    layout: &Layout,
    client: &Client,
    desc: &Descriptor,
    chunk: u64,
    mut location: String,
    sent: &mut Sent,
) -> Result<()> {
    let blob = format!("blob {}", desc.digest);
    let mut offset = 0;
    let mut attempt = 0;
    while offset < desc.size {
        let len = chunk.min(desc.size - offset);
        match patch(layout, client, desc, &location, offset, len) {
            Ok(next) => {
                location = next;
                offset += len;
                attempt = 0;
            }
            Err(e) if retryable(&e) && attempt < RETRIES => {
                attempt += 1;
                sent.retries += 1;
                std::thread::sleep(backoff(attempt, None));
                // Where the registry says the upload stands; where it lost
                // the upload (distribution 2.8 does when a PATCH is cut: the
                // offset in its signed state no longer matches), the blob
                // starts again.
                let (at, next) = match status(client, &location) {
                    Ok((at, next)) if at <= offset + len => (at, next),
                    _ => (0, start(client, &blob)?),
                };
                sent.resent += (offset + len).saturating_sub(at);
                offset = at;
                location = next;
            }
            Err(e) => return Err(e),
        }
    }
    let url = with_digest(client, &location, desc);
    let mut empty = || -> Result<(SendBody<'static>, u64)> {
        Ok((SendBody::from_owned_reader(std::io::empty()), 0))
    };
    let put = client.send(&mut Call {
        method: "PUT",
        url,
        headers: vec![],
        body: Some(&mut empty),
    })?;
    check_status(client, &put, &format!("closing the upload of {blob}"))
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

/// `POST /v2/<repo>/blobs/uploads/`: the upload's URL.
fn start(client: &Client, blob: &str) -> Result<String> {
    let resp = client.send(&mut Call::new("POST", client.url("blobs/uploads/")))?;
    check_status(client, &resp, &format!("starting the upload of {blob}"))?;
    location(client, &resp, blob)
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

/// The whole blob in one PUT, streamed from the store and checked as read.
fn put_whole(layout: &Layout, client: &Client, desc: &Descriptor, location: &str) -> Result<()> {
    let mut make = || -> Result<(SendBody<'static>, u64)> {
        Ok((
            SendBody::from_owned_reader(layout.open_blob(desc)?),
            desc.size,
        ))
    };
    let put = client.send(&mut Call {
        method: "PUT",
        url: with_digest(client, location, desc),
        headers: vec![("content-type", "application/octet-stream".into())],
        body: Some(&mut make),
    })?;
    check_status(client, &put, &format!("uploading blob {}", desc.digest))
}

/// Bytes `offset..offset+len` in one PATCH; the upload's next URL.
fn patch(
    layout: &Layout,
    client: &Client,
    desc: &Descriptor,
    location: &str,
    offset: u64,
    len: u64,
) -> Result<String> {
    let mut make = || -> Result<(SendBody<'static>, u64)> {
        let mut file = layout.open_blob_file(desc)?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("seek", layout.blob_path(&desc.digest), e))?;
        Ok((SendBody::from_owned_reader(file.take(len)), len))
    };
    let resp = client.send(&mut Call {
        method: "PATCH",
        url: client.absolute(location),
        headers: vec![
            ("content-type", "application/octet-stream".into()),
            ("content-range", format!("{offset}-{}", offset + len - 1)),
        ],
        body: Some(&mut make),
    })?;
    if resp.status() == StatusCode::REQUEST_TIMEOUT
        || resp.status() == StatusCode::TOO_MANY_REQUESTS
        || resp.status().is_server_error()
    {
        return Err(client.error(
            ErrorKind::Network,
            format!(
                "chunk at {offset} of blob {}: {}",
                desc.digest,
                resp.status()
            ),
        ));
    }
    check_status(
        client,
        &resp,
        &format!("chunk at {offset} of blob {}", desc.digest),
    )?;
    location_of(client, &resp, desc)
}

fn location_of(
    client: &Client,
    resp: &ureq::http::Response<ureq::Body>,
    desc: &Descriptor,
) -> Result<String> {
    location(client, resp, &format!("blob {}", desc.digest))
}

/// Where the upload stands: the next offset, and its URL.
fn status(client: &Client, location: &str) -> Result<(u64, String)> {
    let resp = client.send(&mut Call::new("GET", client.absolute(location)))?;
    if resp.status() != StatusCode::NO_CONTENT && !resp.status().is_success() {
        return Err(client.error(
            ErrorKind::Network,
            format!("the upload's status: {}", resp.status()),
        ));
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

fn retryable(e: &Error) -> bool {
    e.kind() == ErrorKind::Network
}
