//! What the crate's two tar readers share ([`crate::formats::cocoon::tar`]'s snapshot
//! stream and [`crate::formats::oci_archive`]'s OCI archive): our own member loop over
//! `tar::Header`, because the `tar` crate reads PAX headers and GNU long
//! names into memory whatever their size, and its PAX record parser splits
//! on newlines.
//!
//! [`TarStream`] detects gzip by its magic (`1f 8b`, multi-member read),
//! reads 512-byte blocks, checks every header's checksum, caps every
//! extension header (PAX `x`, GNU long name `L`) before reading it, applies
//! their `path`/`size` records and long names, streams bodies (failing with
//! `UnexpectedEof`, never a short read, when the input ends inside one) and
//! accepts only zeros after the end-of-archive marker. What a member may be
//! (its type, its name, a PAX global header) is each reader's own business;
//! a [`Dialect`] names the input in the errors raised here.

use std::collections::HashSet;
use std::io::{self, BufReader, Chain, Cursor, Read};

use flate2::bufread::MultiGzDecoder;

use crate::error::{Error, Result};

const BLOCK: u64 = super::BLOCK as u64;
/// The largest GNU long-name member read (`PATH_MAX`).
const LONG_NAME_LIMIT: u64 = 4096;
/// The most bytes accepted after the end-of-archive marker (all zeros:
/// record padding).
const TRAILER_LIMIT: u64 = 1 << 20;
/// The buffer the trailer is read through.
const TRAILER_BUFFER: usize = 64 << 10;

/// How a reader's input is named in errors, and what it reads with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    /// What errors name as the thing read (`OCI archive`).
    pub(crate) what: &'static str,
    /// What messages call it (`archive`: "the archive is truncated").
    pub(crate) noun: &'static str,
    /// Whether size-limit errors name [`Dialect::what`] too (`OCI archive:
    /// a PAX extended header is ...`).
    pub(crate) what_in_limits: bool,
    /// Capacity of the read buffer.
    pub(crate) buffer: usize,
    /// The largest PAX extended header read.
    pub(crate) pax_limit: u64,
    /// PAX records kept as text ([`PaxRecords::text`]); a value of one of
    /// them that is not UTF-8 is refused.
    pub(crate) text_records: &'static [&'static str],
}

impl Dialect {
    /// The input is not an acceptable tar.
    pub(crate) fn bad(&self, reason: impl Into<String>) -> Error {
        Error::InvalidDocument {
            what: self.what.to_string(),
            reason: reason.into(),
        }
    }

    /// Reading the input failed.
    pub(crate) fn read_error(&self, e: io::Error) -> Error {
        Error::stream("read", self.what, e)
    }

    fn truncated(&self, what: &str) -> Error {
        self.read_error(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the {} is truncated: it ends inside {what}", self.noun),
        ))
    }

    fn too_large(&self, what: &str, size: u64, limit: u64) -> Error {
        let what = if self.what_in_limits {
            format!("{}: {what}", self.what)
        } else {
            what.to_string()
        };
        Error::TooLarge { what, size, limit }
    }
}

type Prefixed<R> = BufReader<Chain<Cursor<Vec<u8>>, R>>;

/// The input, decompressed when it is gzip.
enum Input<R: Read> {
    Plain(Prefixed<R>),
    Gzip(Box<MultiGzDecoder<Prefixed<R>>>),
}

/// The input and how far into the (decompressed) tar it has been read.
struct Source<R: Read> {
    input: Input<R>,
    position: u64,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.input {
            Input::Plain(r) => r.read(buf),
            Input::Gzip(r) => r.read(buf),
        }?;
        self.position += n as u64;
        Ok(n)
    }
}

/// The PAX records acted on, from one extended header.
#[derive(Debug, Default)]
pub(crate) struct PaxRecords {
    /// `path`.
    pub(crate) path: Option<Vec<u8>>,
    /// `size`.
    pub(crate) size: Option<u64>,
    /// Some `GNU.sparse.*` record (GNU tar's own sparse format).
    pub(crate) gnu_sparse: bool,
    /// The [`Dialect::text_records`] present.
    text: Vec<(&'static str, String)>,
}

impl PaxRecords {
    /// The value of a [`Dialect::text_records`] record, if present.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.text
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A member's header with its extension headers applied, not yet checked.
#[derive(Debug)]
pub(crate) struct Header {
    /// The entry type (`typeflag`).
    pub(crate) kind: u8,
    /// The PAX `path`, else the GNU long name, else the header's own (with
    /// a ustar prefix).
    pub(crate) name: Vec<u8>,
    /// The PAX `size`, else the header's.
    pub(crate) size: u64,
    /// The mode field, `None` when it is not an octal number.
    pub(crate) mode: Option<u64>,
    /// The link target (PAX `linkpath` is a reader's [`Dialect::text_records`]).
    pub(crate) link: Vec<u8>,
    /// The PAX records that came with it.
    pub(crate) pax: PaxRecords,
}

/// A tar stream read member by member, without buffering bodies.
pub(crate) struct TarStream<R: Read> {
    dialect: Dialect,
    source: Source<R>,
    /// Bytes of the current member's body not yet read.
    body_left: u64,
    /// Padding after the current member's body.
    pad_left: u64,
    /// The current member's name, for messages.
    current: String,
    /// Set by the reader ([`TarStream::fail`]) and by a body that failed.
    failed: bool,
}

impl<R: Read> TarStream<R> {
    /// Wraps `reader`, detecting gzip by its magic; `None` when it is empty.
    pub(crate) fn new(mut reader: R, dialect: Dialect) -> Result<Option<TarStream<R>>> {
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < magic.len() {
            match reader.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(dialect.read_error(e)),
            }
        }
        if got == 0 {
            return Ok(None);
        }
        let prefixed = BufReader::with_capacity(
            dialect.buffer,
            Cursor::new(magic[..got].to_vec()).chain(reader),
        );
        let input = if magic[..got] == [0x1f, 0x8b] {
            Input::Gzip(Box::new(MultiGzDecoder::new(prefixed)))
        } else {
            Input::Plain(prefixed)
        };
        let source = Source { input, position: 0 };
        Ok(Some(TarStream {
            dialect,
            source,
            body_left: 0,
            pad_left: 0,
            current: String::new(),
            failed: false,
        }))
    }

    /// Whether the input was gzip-compressed.
    pub(crate) fn is_gzip(&self) -> bool {
        matches!(self.source.input, Input::Gzip(_))
    }

    /// How many bytes of the tar (decompressed) have been read: after
    /// [`TarStream::start_body`], the offset of the member's body.
    pub(crate) fn position(&self) -> u64 {
        self.source.position
    }

    /// Whether reading failed (the rest cannot be trusted).
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Marks reading as failed.
    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }

    /// Skips what is left of the current member's body and its padding,
    /// then reads headers up to the next member that is not an extension
    /// header. `None` at the end-of-archive marker, once the trailer is
    /// checked.
    pub(crate) fn next_header(&mut self) -> Result<Option<Header>> {
        self.skip_body()?;
        let d = self.dialect;
        let mut pax: Option<PaxRecords> = None;
        let mut long_name: Option<Vec<u8>> = None;
        loop {
            let Some(block) = self.read_block()? else {
                return Err(d.read_error(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the {} is truncated: it ends without the end-of-archive marker",
                        d.noun
                    ),
                )));
            };
            if block.iter().all(|&b| b == 0) {
                if pax.is_some() || long_name.is_some() {
                    return Err(
                        d.bad("an extended header is not followed by the member it describes")
                    );
                }
                self.read_trailer()?;
                return Ok(None);
            }
            check_checksum(&d, &block)?;
            let header = tar::Header::from_byte_slice(&block);
            let kind = block[156];
            let size = header
                .entry_size()
                .map_err(|e| d.bad(format!("a header's size field is unreadable: {e}")))?;
            match kind {
                b'x' => {
                    if pax.is_some() {
                        return Err(d.bad("two PAX headers describe the same member"));
                    }
                    if size > d.pax_limit {
                        return Err(d.too_large("a PAX extended header", size, d.pax_limit));
                    }
                    let data = self.read_small(size, "a PAX extended header")?;
                    pax = Some(parse_pax(&d, &data)?);
                }
                b'L' => {
                    if long_name.is_some() {
                        return Err(d.bad("two GNU long names describe the same member"));
                    }
                    if size > LONG_NAME_LIMIT {
                        return Err(d.too_large("a GNU long name", size, LONG_NAME_LIMIT));
                    }
                    let mut name = self.read_small(size, "a GNU long name")?;
                    while name.last() == Some(&0) {
                        name.pop();
                    }
                    long_name = Some(name);
                }
                _ => {
                    let pax = pax.unwrap_or_default();
                    let name = match (&pax.path, long_name) {
                        (Some(path), _) => path.clone(),
                        (None, Some(long)) => long,
                        (None, None) => header.path_bytes().into_owned(),
                    };
                    return Ok(Some(Header {
                        kind,
                        name,
                        size: pax.size.unwrap_or(size),
                        mode: parse_octal(&block[100..108]),
                        link: header.link_name_bytes().unwrap_or_default().into_owned(),
                        pax,
                    }));
                }
            }
        }
    }

    /// Makes the body of `size` bytes after the last header the current
    /// member's, `name` in messages.
    pub(crate) fn start_body(&mut self, name: &str, size: u64) {
        self.current.clear();
        self.current.push_str(name);
        self.body_left = size;
        self.pad_left = padding(size);
    }

    /// A reader of the current member's body: exactly its size, failing
    /// with `UnexpectedEof` if the input ends first.
    pub(crate) fn body(&mut self) -> Body<'_, R> {
        Body { stream: self }
    }

    /// Reads the current member's whole body (the caller checked its size).
    pub(crate) fn read_body(&mut self, what: &str) -> Result<Vec<u8>> {
        let len = std::mem::take(&mut self.body_left);
        self.pad_left = 0;
        let r = self.read_small(len, what);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Reads exactly `len` bytes (already checked against a small limit)
    /// and the padding after them. Memory grows with what arrives, not
    /// with `len`.
    pub(crate) fn read_small(&mut self, len: u64, what: &str) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        (&mut self.source)
            .take(len)
            .read_to_end(&mut data)
            .map_err(|e| self.dialect.read_error(e))?;
        if data.len() as u64 != len {
            return Err(self.dialect.truncated(what));
        }
        self.skip_exact(padding(len), what)?;
        Ok(data)
    }

    /// Reads the next 512-byte block; `None` at a clean end of input.
    fn read_block(&mut self) -> Result<Option<[u8; 512]>> {
        let mut block = [0u8; 512];
        let mut got = 0;
        while got < block.len() {
            match self.source.read(&mut block[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(self.dialect.truncated("a member header")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.dialect.read_error(e)),
            }
        }
        Ok(Some(block))
    }

    fn skip_exact(&mut self, len: u64, what: &str) -> Result<()> {
        let skipped = io::copy(&mut (&mut self.source).take(len), &mut io::sink())
            .map_err(|e| self.dialect.read_error(e))?;
        if skipped != len {
            return Err(self.dialect.truncated(what));
        }
        Ok(())
    }

    /// Skips what is left of the current member's body and its padding.
    fn skip_body(&mut self) -> Result<()> {
        if self.body_left > 0 {
            let d = self.dialect;
            io::copy(&mut self.body(), &mut io::sink()).map_err(|e| d.read_error(e))?;
        }
        let pad = std::mem::take(&mut self.pad_left);
        let what = format!("the padding after {:?}", self.current);
        self.skip_exact(pad, &what)
    }

    /// After the first zero block: the rest must be zeros (the second
    /// block, record padding) up to [`TRAILER_LIMIT`]. Reading to the end
    /// also makes gzip check its CRC.
    fn read_trailer(&mut self) -> Result<()> {
        let d = self.dialect;
        let mut buf = vec![0u8; TRAILER_BUFFER];
        let mut total = 0u64;
        loop {
            let n = match self.source.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(d.read_error(e)),
            };
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(d.bad("data follows the end-of-archive marker"));
            }
            total += n as u64;
            if total > TRAILER_LIMIT {
                return Err(d.bad(format!(
                    "more than {TRAILER_LIMIT} bytes follow the end-of-archive marker"
                )));
            }
        }
    }
}

/// The body of the current member.
pub(crate) struct Body<'a, R: Read> {
    stream: &'a mut TarStream<R>,
}

impl<R: Read> Body<'_, R> {
    /// Bytes of the body not yet read.
    pub(crate) fn remaining(&self) -> u64 {
        self.stream.body_left
    }
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &mut *self.stream;
        if s.body_left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(s.body_left).unwrap_or(usize::MAX));
        match s.source.read(&mut buf[..want]) {
            Ok(0) => {
                s.failed = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the {} is truncated: it ends inside {:?}, {} bytes short",
                        s.dialect.noun, s.current, s.body_left
                    ),
                ))
            }
            Ok(n) => {
                s.body_left -= n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    s.failed = true;
                }
                Err(e)
            }
        }
    }
}

/// Zero bytes after a body of `len` bytes up to the next block.
pub(crate) fn padding(len: u64) -> u64 {
    (BLOCK - len % BLOCK) % BLOCK
}

/// The name of a non-regular entry type both readers refuse, as their
/// messages give it; `None` for the others.
pub(crate) fn type_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        b'1' => "hard link",
        b'2' => "symbolic link",
        b'3' => "character device",
        b'4' => "block device",
        b'6' => "FIFO",
        b'7' => "contiguous file",
        b'S' => "GNU sparse file",
        _ => return None,
    })
}

/// How messages name an entry type neither reader knows.
pub(crate) fn unknown_type(kind: u8) -> String {
    format!("member of unknown type {:?}", kind as char)
}

/// Checks the header checksum (the unsigned sum, or the signed one some
/// old tars wrote), with the checksum field counted as spaces.
fn check_checksum(d: &Dialect, block: &[u8; 512]) -> Result<()> {
    let stored = Some(&block[148..156])
        .filter(|f| f.iter().any(u8::is_ascii_digit))
        .and_then(parse_octal)
        .ok_or_else(|| {
            d.bad("a header's checksum field is not an octal number; this is not a tar")
        })?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(d.bad(format!(
            "a header checksum does not match (stored {stored}, computed {unsigned}); \
             the {} is damaged or not a tar",
            d.noun
        )));
    }
    Ok(())
}

/// Parses an octal numeric header field: digits with spaces or NULs
/// around them; a field of padding only reads as 0, as in Go's reader.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// Parses ASCII decimal digits (no sign, no spaces) into a `u64`.
pub(crate) fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Parses PAX records, `"<len> <key>=<value>\n"` with `len` counting the
/// whole record, keeping the ones acted on. A record's value may hold
/// newlines. Malformed records and repeated keys are refused.
fn parse_pax(d: &Dialect, mut data: &[u8]) -> Result<PaxRecords> {
    let mut records = PaxRecords::default();
    let mut keys = HashSet::new();
    while !data.is_empty() {
        let malformed = || d.bad("a PAX extended header holds a malformed record");
        let space = data
            .iter()
            .take(21)
            .position(|&b| b == b' ')
            .ok_or_else(malformed)?;
        let len = parse_decimal(&data[..space])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > space + 1 && n <= data.len())
            .ok_or_else(malformed)?;
        let (record, rest) = data.split_at(len);
        data = rest;
        let Some((b'\n', kv)) = record[space + 1..].split_last() else {
            return Err(malformed());
        };
        let eq = kv.iter().position(|&b| b == b'=').ok_or_else(malformed)?;
        let (key, value) = (&kv[..eq], &kv[eq + 1..]);
        let key = std::str::from_utf8(key)
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(malformed)?;
        if !keys.insert(key.to_string()) {
            return Err(d.bad(format!(
                "a PAX extended header holds the record {key:?} twice"
            )));
        }
        match key {
            "path" => records.path = Some(value.to_vec()),
            "size" => {
                records.size = Some(parse_decimal(value).ok_or_else(|| {
                    d.bad(format!(
                        "the PAX size record is {:?}, not a decimal size",
                        String::from_utf8_lossy(value)
                    ))
                })?);
            }
            k if k.starts_with("GNU.sparse.") => records.gnu_sparse = true,
            k => {
                if let Some(&kept) = d.text_records.iter().find(|t| **t == k) {
                    let text = String::from_utf8(value.to_vec())
                        .map_err(|_| d.bad(format!("the PAX record {key:?} is not UTF-8")))?;
                    records.text.push((kept, text));
                }
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests;
