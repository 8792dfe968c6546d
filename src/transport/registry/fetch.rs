//! One blob from a registry into the store, resumed at the byte: the blob
//! is written to one temp file and hashed as it arrives; when the
//! connection drops or the registry answers 408, 429 or 5xx, the request
//! is made again after a backoff (with jitter, or the `Retry-After` the
//! registry asked for) with `Range: bytes=N-` from the bytes already
//! written, and the hash goes on where it was. A registry that ignores
//! `Range` (200 instead of 206) has its first N bytes skipped; the digest
//! check at the end covers them.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ureq::http::StatusCode;

use super::client::{Call, Client, header};
use crate::error::{ErrorKind, Result};
use crate::io::meter::Meter;
use crate::model::Descriptor;
use crate::store::writer::{BlobWriter, Writer};

/// Attempts of one blob after the first.
const RETRIES: u32 = 6;

/// Redirects followed for one blob (to storage behind the registry).
const MAX_REDIRECTS: usize = 5;

/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the fetches of one pull add up to.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Attempts made again.
    pub retries: AtomicU64,
    /// Bytes not fetched again because a retry (or this run, after an
    /// earlier one) went on after them.
    pub resumed: AtomicU64,
    /// Blobs taken up from what an earlier run left.
    pub resumed_runs: AtomicU64,
}

/// Why an attempt stopped short.
enum Stop {
    /// Worth another try (after at least the wait given).
    Retry(String, Option<Duration>),
    /// Not worth one.
    Fail(crate::Error),
    /// The registry will not go on from what is here (416): again from
    /// nothing.
    Restart(String),
}

/// Streams `desc` into the store, verified; returns its size.
pub(crate) fn fetch_blob(
    writer: &Writer<'_>,
    client: &Client,
    desc: &Descriptor,
    counters: &Counters,
    meter: &Meter,
) -> Result<u64> {
    let (mut blob, already) = writer.resumable_blob(&desc.digest)?;
    if already > desc.size {
        // Longer than the blob: not a prefix of it; start again.
        blob = fresh(writer, blob, desc)?;
    } else if already > 0 {
        counters.resumed.fetch_add(already, Ordering::Relaxed);
        counters.resumed_runs.fetch_add(1, Ordering::Relaxed);
        meter.progress().advance(already);
    }
    match fetch_into(writer, client, desc, blob, counters, meter) {
        Err(crate::Error::DigestMismatch { .. } | crate::Error::SizeMismatch { .. })
            if already > 0 && already <= desc.size =>
        {
            // What the earlier run left was not the blob's start (the
            // commit removed it): once more, from nothing.
            let blob = fresh(writer, writer.resumable_blob(&desc.digest)?.0, desc)?;
            fetch_into(writer, client, desc, blob, counters, meter)
        }
        r => r,
    }
}

/// `blob` emptied: the partial file removed and made again.
fn fresh<'w, 'a>(
    writer: &'w Writer<'a>,
    blob: BlobWriter<'w, 'a>,
    desc: &Descriptor,
) -> Result<BlobWriter<'w, 'a>> {
    if blob.is_empty() {
        return Ok(blob);
    }
    drop(blob);
    Ok(writer.resumable_blob(&desc.digest)?.0)
}

/// Fetches the rest of `desc` into `blob` with retries, then commits it.
fn fetch_into<'w, 'a>(
    writer: &'w Writer<'a>,
    client: &Client,
    desc: &Descriptor,
    mut blob: BlobWriter<'w, 'a>,
    counters: &Counters,
    meter: &Meter,
) -> Result<u64> {
    let mut attempt = 0;
    loop {
        let from = blob.len();
        match attempt_once(client, desc, &mut blob, meter) {
            Ok(()) => break,
            Err(Stop::Fail(e)) => {
                // What arrived stays for the next run (after a full disk, say).
                let _ = blob.keep();
                return Err(e);
            }
            Err(Stop::Retry(why, _) | Stop::Restart(why)) if attempt >= RETRIES => {
                let _ = blob.keep();
                return Err(client.error(
                    ErrorKind::Network,
                    format!(
                        "blob {}: {why}, after {} attempts; run the pull again to go on from byte {from}",
                        desc.digest,
                        attempt + 1
                    ),
                ));
            }
            Err(Stop::Restart(_)) => {
                attempt += 1;
                counters.retries.fetch_add(1, Ordering::Relaxed);
                blob = fresh(writer, blob, desc)?;
            }
            Err(Stop::Retry(_, after)) => {
                attempt += 1;
                counters.retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(backoff(attempt, after));
                if from > 0 {
                    counters.resumed.fetch_add(from, Ordering::Relaxed);
                }
            }
        }
    }
    let size = blob.len();
    blob.commit(&desc.media_type, Some(desc))?;
    Ok(size)
}

/// One request: from what `blob` holds to the end (or to a failure).
fn attempt_once(
    client: &Client,
    desc: &Descriptor,
    blob: &mut BlobWriter<'_, '_>,
    meter: &Meter,
) -> std::result::Result<(), Stop> {
    let from = blob.len();
    if from == desc.size {
        // All here already (a run killed before its commit): the commit
        // checks it.
        return Ok(());
    }
    let mut resp = get_from(client, desc, from)?;
    let status = resp.status();
    let mut skip = 0;
    match status {
        StatusCode::PARTIAL_CONTENT if from > 0 => {
            let content_range = header(&resp, "content-range").unwrap_or_default();
            if !content_range.starts_with(&format!("bytes {from}-")) {
                return Err(Stop::Fail(client.error(
                    ErrorKind::Malformed,
                    format!(
                        "blob {}: asked for bytes {from}- and got Content-Range {content_range:?}",
                        desc.digest
                    ),
                )));
            }
        }
        StatusCode::OK => skip = from,
        StatusCode::RANGE_NOT_SATISFIABLE if from > 0 => {
            return Err(Stop::Restart(format!(
                "the registry cannot go on from byte {from} (416)"
            )));
        }
        s if s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS
            || s.is_server_error() =>
        {
            let after = header(&resp, "retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Stop::Retry(format!("the registry answered {s}"), after));
        }
        s => {
            let kind = if s == StatusCode::NOT_FOUND {
                ErrorKind::NotFound
            } else {
                ErrorKind::Network
            };
            return Err(Stop::Fail(client.error(
                kind,
                format!("blob {}: the registry answered {s}", desc.digest),
            )));
        }
    }
    let mut body = resp.body_mut().as_reader();
    if skip > 0 {
        let skipped = io::copy(&mut (&mut body).take(skip), &mut io::sink())
            .map_err(|e| Stop::Retry(e.to_string(), None))?;
        if skipped < skip {
            return Err(Stop::Retry("the connection closed early".into(), None));
        }
    }
    let want = desc.size.saturating_sub(from);
    copy_body(&mut body, blob, want, desc, meter)
}

/// `GET` of the blob from byte `from`, following redirects (to storage
/// behind the registry, which gets none of our credentials).
fn get_from(
    client: &Client,
    desc: &Descriptor,
    from: u64,
) -> std::result::Result<ureq::http::Response<ureq::Body>, Stop> {
    let range = (from > 0).then(|| ("range", format!("bytes={from}-")));
    let mut call = Call {
        method: "GET",
        url: client.url(&format!("blobs/{}", desc.digest)),
        headers: range.iter().cloned().collect(),
        body: None,
    };
    let mut resp = client.send(&mut call).map_err(transient)?;
    for _ in 0..MAX_REDIRECTS {
        if !resp.status().is_redirection() {
            break;
        }
        let location = header(&resp, "location").ok_or_else(|| {
            Stop::Fail(client.error(
                ErrorKind::Malformed,
                format!("a redirect for blob {} without a Location", desc.digest),
            ))
        })?;
        resp = client
            .send_anonymous(&client.absolute(&location), range.clone())
            .map_err(transient)?;
    }
    Ok(resp)
}

/// Copies up to `want` bytes, and one more if the registry sends it (a
/// longer body then fails the size check): a read error is worth a retry,
/// a write error (a full disk) is not.
fn copy_body(
    body: &mut impl Read,
    blob: &mut BlobWriter<'_, '_>,
    want: u64,
    desc: &Descriptor,
    meter: &Meter,
) -> std::result::Result<(), Stop> {
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    while got <= want {
        let room = usize::try_from((want + 1 - got).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = match body.read(&mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Stop::Retry(format!("reading: {e}"), None)),
        };
        blob.write_all(&buf[..n]).map_err(|e| {
            Stop::Fail(crate::Error::stream(
                "write",
                format!("blob {}", desc.digest),
                e,
            ))
        })?;
        got += n as u64;
        meter.moved(n as u64);
    }
    if got < want {
        return Err(Stop::Retry(
            format!(
                "the connection closed after {} of {} bytes",
                blob.len(),
                desc.size
            ),
            None,
        ));
    }
    Ok(())
}

fn transient(e: crate::Error) -> Stop {
    match e.kind() {
        ErrorKind::Network => Stop::Retry(e.to_string(), None),
        _ => Stop::Fail(e),
    }
}

/// 200 ms doubling per attempt, at most [`MAX_BACKOFF`], plus up to half
/// again of jitter; at least `after` when the registry asked for it.
pub(crate) fn backoff(attempt: u32, after: Option<Duration>) -> Duration {
    let base = Duration::from_millis(200u64 << attempt.min(8)).min(MAX_BACKOFF);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = base.mul_f64(f64::from(nanos % 1000) / 2000.0);
    (base + jitter).max(after.unwrap_or_default().min(Duration::from_secs(60)))
}
