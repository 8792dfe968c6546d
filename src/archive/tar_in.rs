//! Reading an OCI archive's tar stream: our own member loop over
//! `tar::Header` (as `cocoon_tar` does), because the `tar` crate's reader
//! buffers PAX headers and GNU long names whatever their size. Every
//! extension header is size-capped before it is read; bodies are streamed.

use std::io::{self, BufReader, Chain, Cursor, Read};

use flate2::bufread::MultiGzDecoder;

use super::ARCHIVE;
use crate::error::{Error, Result};

const BLOCK: u64 = 512;
const BUFFER: usize = 1 << 20;
/// The largest PAX extended header read (1 MiB, as Go's `archive/tar`).
const PAX_LIMIT: u64 = 1 << 20;
/// The largest GNU long name read (`PATH_MAX`).
const LONG_NAME_LIMIT: u64 = 4096;
/// The most bytes accepted after the end-of-archive marker (zeros only).
const TRAILER_LIMIT: u64 = 1 << 20;

pub(super) fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidDocument {
        what: ARCHIVE.to_string(),
        reason: reason.into(),
    }
}

pub(super) fn read_error(e: io::Error) -> Error {
    Error::io("read", ARCHIVE, e)
}

fn truncated(what: &str) -> Error {
    read_error(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the archive is truncated: it ends inside {what}"),
    ))
}

type Prefixed<R> = BufReader<Chain<Cursor<Vec<u8>>, R>>;

/// The stream, decompressed when it is gzip.
enum Source<R: Read> {
    Plain(Prefixed<R>),
    Gzip(Box<MultiGzDecoder<Prefixed<R>>>),
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Gzip(r) => r.read(buf),
        }
    }
}

/// What a member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
}

/// A member's header, its name normalized (no `./` prefix, no trailing
/// `/`) and checked to be a relative path without `..`.
#[derive(Clone, Debug)]
pub(super) struct Member {
    pub kind: Kind,
    pub name: String,
    pub size: u64,
}

/// Reads the members of a tar stream one by one, without buffering bodies.
pub(super) struct TarIn<R: Read> {
    source: Source<R>,
    body_left: u64,
    pad_left: u64,
    current: String,
    failed: bool,
}

impl<R: Read> TarIn<R> {
    /// Wraps `reader`, detecting gzip by its magic (`1f 8b`).
    pub(super) fn new(mut reader: R) -> Result<TarIn<R>> {
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < magic.len() {
            match reader.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e)),
            }
        }
        if got == 0 {
            return Err(bad("the stream is empty; expected a tar of an OCI layout"));
        }
        let prefixed =
            BufReader::with_capacity(BUFFER, Cursor::new(magic[..got].to_vec()).chain(reader));
        let source = if magic[..got] == [0x1f, 0x8b] {
            Source::Gzip(Box::new(MultiGzDecoder::new(prefixed)))
        } else {
            Source::Plain(prefixed)
        };
        Ok(TarIn {
            source,
            body_left: 0,
            pad_left: 0,
            current: String::new(),
            failed: false,
        })
    }

    /// The next member (its body unread), or `None` after the
    /// end-of-archive marker and a trailer of zeros. Whatever is left of
    /// the previous body is skipped first. After an error, every call fails.
    pub(super) fn next_member(&mut self) -> Result<Option<Member>> {
        if self.failed {
            return Err(bad(
                "reading already failed; the rest of the archive cannot be trusted",
            ));
        }
        let r = self.advance();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// A reader of the current member's body: exactly its size, failing with
    /// `UnexpectedEof` if the stream ends first.
    pub(super) fn body(&mut self) -> Body<'_, R> {
        Body { tar: self }
    }

    fn advance(&mut self) -> Result<Option<Member>> {
        self.skip_body()?;
        let Some(member) = self.read_member()? else {
            return Ok(None);
        };
        self.current.clone_from(&member.name);
        self.body_left = member.size;
        self.pad_left = padding(member.size);
        Ok(Some(member))
    }

    fn read_block(&mut self) -> Result<Option<[u8; 512]>> {
        let mut block = [0u8; 512];
        let mut got = 0;
        while got < block.len() {
            match self.source.read(&mut block[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(truncated("a member header")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e)),
            }
        }
        Ok(Some(block))
    }

    /// Reads exactly `len` bytes (already checked against a small limit)
    /// and their padding; memory grows with what arrives, not with `len`.
    pub(super) fn read_small(&mut self, len: u64, what: &str) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        (&mut self.source)
            .take(len)
            .read_to_end(&mut data)
            .map_err(read_error)?;
        if data.len() as u64 != len {
            return Err(truncated(what));
        }
        self.skip_exact(padding(len), what)?;
        Ok(data)
    }

    /// Reads the current member's whole body (the caller checked its size).
    pub(super) fn read_body(&mut self, what: &str) -> Result<Vec<u8>> {
        let len = std::mem::take(&mut self.body_left);
        self.pad_left = 0;
        let r = self.read_small(len, what);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn skip_exact(&mut self, len: u64, what: &str) -> Result<()> {
        let skipped =
            io::copy(&mut (&mut self.source).take(len), &mut io::sink()).map_err(read_error)?;
        if skipped != len {
            return Err(truncated(what));
        }
        Ok(())
    }

    fn skip_body(&mut self) -> Result<()> {
        if self.body_left > 0 {
            io::copy(&mut self.body(), &mut io::sink()).map_err(read_error)?;
        }
        let pad = std::mem::take(&mut self.pad_left);
        let what = format!("the padding after {:?}", self.current);
        self.skip_exact(pad, &what)
    }

    /// After the first zero block, only zeros may follow (the second block,
    /// record padding), up to [`TRAILER_LIMIT`]. Reading to the end makes
    /// gzip check its CRC too.
    fn read_trailer(&mut self) -> Result<()> {
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = match self.source.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(bad("data follows the end-of-archive marker"));
            }
            total += n as u64;
            if total > TRAILER_LIMIT {
                return Err(bad(format!(
                    "more than {TRAILER_LIMIT} bytes follow the end-of-archive marker"
                )));
            }
        }
    }

    /// Reads headers up to the next member that is not an extension
    /// header, applying PAX `path`/`size` records and GNU long names.
    fn read_member(&mut self) -> Result<Option<Member>> {
        let mut pax: Option<Pax> = None;
        let mut long_name: Option<Vec<u8>> = None;
        loop {
            let Some(block) = self.read_block()? else {
                return Err(read_error(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive is truncated: it ends without the end-of-archive marker",
                )));
            };
            if block.iter().all(|&b| b == 0) {
                if pax.is_some() || long_name.is_some() {
                    return Err(bad(
                        "an extended header is not followed by the member it describes",
                    ));
                }
                self.read_trailer()?;
                return Ok(None);
            }
            check_checksum(&block)?;
            let header = tar::Header::from_byte_slice(&block);
            let kind = block[156];
            let size = header
                .entry_size()
                .map_err(|e| bad(format!("a header's size field is unreadable: {e}")))?;
            match kind {
                b'x' => {
                    if pax.is_some() {
                        return Err(bad("two PAX headers describe the same member"));
                    }
                    if size > PAX_LIMIT {
                        return Err(Error::TooLarge {
                            what: format!("{ARCHIVE}: a PAX extended header"),
                            size,
                            limit: PAX_LIMIT,
                        });
                    }
                    let data = self.read_small(size, "a PAX extended header")?;
                    pax = Some(parse_pax(&data)?);
                }
                b'L' => {
                    if long_name.is_some() {
                        return Err(bad("two GNU long names describe the same member"));
                    }
                    if size > LONG_NAME_LIMIT {
                        return Err(Error::TooLarge {
                            what: format!("{ARCHIVE}: a GNU long name"),
                            size,
                            limit: LONG_NAME_LIMIT,
                        });
                    }
                    let mut name = self.read_small(size, "a GNU long name")?;
                    while name.last() == Some(&0) {
                        name.pop();
                    }
                    long_name = Some(name);
                }
                b'g' => {
                    return Err(bad(
                        "a PAX global header (type 'g'), whose records would apply to every \
                         member; OCI archives do not have one",
                    ));
                }
                _ => {
                    let pax = pax.unwrap_or_default();
                    let raw = match (pax.path, long_name) {
                        (Some(path), _) => path,
                        (None, Some(long)) => long,
                        (None, None) => header.path_bytes().into_owned(),
                    };
                    let shown = String::from_utf8_lossy(&raw).into_owned();
                    let kind = match kind {
                        b'0' | b'\0' => Kind::File,
                        b'5' => Kind::Dir,
                        other => {
                            return Err(bad(format!(
                                "member {shown:?} is a {}; an OCI archive holds only regular \
                                 files and directories",
                                type_name(other)
                            )));
                        }
                    };
                    if pax.gnu_sparse {
                        return Err(bad(format!(
                            "member {shown:?} is in GNU tar's sparse format, which is not \
                             supported"
                        )));
                    }
                    let name = normalize(&raw)
                        .map_err(|why| bad(format!("member name {shown:?} refused: {why}")))?;
                    let size = pax.size.unwrap_or(size);
                    if kind == Kind::Dir && size != 0 {
                        return Err(bad(format!("directory member {shown:?} has a body")));
                    }
                    return Ok(Some(Member { kind, name, size }));
                }
            }
        }
    }
}

/// The body of the current member.
pub(super) struct Body<'a, R: Read> {
    tar: &'a mut TarIn<R>,
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tar = &mut *self.tar;
        if tar.body_left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(tar.body_left).unwrap_or(usize::MAX));
        match tar.source.read(&mut buf[..want]) {
            Ok(0) => {
                tar.failed = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the archive is truncated: it ends inside {:?}, {} bytes short",
                        tar.current, tar.body_left
                    ),
                ))
            }
            Ok(n) => {
                tar.body_left -= n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    tar.failed = true;
                }
                Err(e)
            }
        }
    }
}

/// Normalizes a member name: `./` prefixes and trailing `/` removed, `.`
/// (the archive's root) becomes the empty name. Refuses NUL, non-UTF-8,
/// absolute paths, backslashes, and empty, `.` or `..` components.
pub(super) fn normalize(raw: &[u8]) -> Result<String, &'static str> {
    if raw.contains(&0) {
        return Err("it contains a NUL byte");
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err("it is not UTF-8");
    };
    if text.starts_with('/') {
        return Err("it is an absolute path");
    }
    if text.contains('\\') {
        return Err("it contains a backslash");
    }
    let mut rest = text;
    while let Some(r) = rest.strip_prefix("./") {
        rest = r;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest == "." {
        return Ok(String::new());
    }
    for part in rest.split('/') {
        match part {
            ".." => return Err("it has a `..` component"),
            "" | "." => return Err("it has an empty or `.` component"),
            _ => {}
        }
    }
    Ok(rest.to_string())
}

/// Zero bytes after a body of `len` bytes up to the next block.
fn padding(len: u64) -> u64 {
    (BLOCK - len % BLOCK) % BLOCK
}

fn type_name(kind: u8) -> String {
    match kind {
        b'1' => "hard link".into(),
        b'2' => "symbolic link".into(),
        b'3' => "character device".into(),
        b'4' => "block device".into(),
        b'6' => "FIFO".into(),
        b'7' => "contiguous file".into(),
        b'K' => "GNU long link name".into(),
        b'S' => "GNU sparse file".into(),
        other => format!("member of unknown type {:?}", other as char),
    }
}

/// The PAX records acted on.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    size: Option<u64>,
    gnu_sparse: bool,
}

/// Checks the header checksum (unsigned, or the signed sum old tars wrote).
fn check_checksum(block: &[u8; 512]) -> Result<()> {
    let stored = Some(&block[148..156])
        .filter(|f| f.iter().any(u8::is_ascii_digit))
        .and_then(parse_octal)
        .ok_or_else(|| {
            bad("a header's checksum field is not an octal number; this is not a tar")
        })?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(bad(format!(
            "a header checksum does not match (stored {stored}, computed {unsigned}); \
             the archive is damaged or not a tar"
        )));
    }
    Ok(())
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Parses PAX records, `"<len> <key>=<value>\n"`; values may hold newlines.
fn parse_pax(mut data: &[u8]) -> Result<Pax> {
    let mut pax = Pax::default();
    let mut keys = std::collections::HashSet::new();
    while !data.is_empty() {
        let malformed = || bad("a PAX extended header holds a malformed record");
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
            return Err(bad(format!(
                "a PAX extended header holds the record {key:?} twice"
            )));
        }
        match key {
            "path" => pax.path = Some(value.to_vec()),
            "size" => {
                pax.size = Some(parse_decimal(value).ok_or_else(|| {
                    bad(format!(
                        "the PAX size record is {:?}, not a decimal size",
                        String::from_utf8_lossy(value)
                    ))
                })?);
            }
            k if k.starts_with("GNU.sparse.") => pax.gnu_sparse = true,
            _ => {}
        }
    }
    Ok(pax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_or_refused() {
        for (raw, want) in [
            ("oci-layout", "oci-layout"),
            ("./index.json", "index.json"),
            ("././blobs/sha256/", "blobs/sha256"),
            ("blobs/", "blobs"),
            ("./", ""),
            (".", ""),
        ] {
            assert_eq!(normalize(raw.as_bytes()).as_deref(), Ok(want), "{raw}");
        }
        for (raw, why) in [
            (&b"../x"[..], ".."),
            (b"blobs/../../x", ".."),
            (b"/etc/passwd", "absolute"),
            (b"a\\b", "backslash"),
            (b"a\0b", "NUL"),
            (b"a//b", "empty"),
            (b"a/./b", "empty"),
            (b"\xff", "UTF-8"),
        ] {
            let e = normalize(raw).expect_err("refused");
            assert!(e.contains(why), "{raw:?}: {e}");
        }
    }
}
