//! Reading the stream with the crate's own member loop
//! ([`crate::tar::read`]), because the `tar` crate reads PAX headers and GNU
//! long names into memory whatever their size, and its PAX record parser
//! splits on newlines.

use std::collections::HashSet;
use std::io::{self, Read};

use super::{
    ENVELOPE_LIMIT, ENVELOPE_VERSION, Envelope, PAX_LIMIT, PAX_SPARSE_MAP, PAX_SPARSE_SIZE,
    SNAPSHOT_JSON, STREAM, check_name,
};
use crate::error::{Error, Result};
use crate::io::sparse::SparseMap;
use crate::tar::read::{Body, Dialect, Header, TarStream, parse_decimal, type_name, unknown_type};

/// How errors name the stream, and what it is read with: a 64 KiB buffer,
/// PAX extended headers up to [`PAX_LIMIT`], cocoon's sparse records.
const DIALECT: Dialect = Dialect {
    what: STREAM,
    noun: "stream",
    what_in_limits: false,
    buffer: 64 << 10,
    pax_limit: PAX_LIMIT,
    text_records: &[PAX_SPARSE_MAP, PAX_SPARSE_SIZE],
};

fn bad(reason: impl Into<String>) -> Error {
    DIALECT.bad(reason)
}

/// A file member's header, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// A plain file name: no `/`, not `.` or `..`, no NUL, UTF-8.
    pub name: String,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Bytes in the member's body: the whole file when dense, the data
    /// segments back to back when sparse.
    pub stored_len: u64,
    /// The sparse map when the member carries cocoon's sparse records.
    pub sparse: Option<SparseMap>,
}

impl FileHeader {
    /// The size of the restored file.
    pub fn logical_len(&self) -> u64 {
        self.sparse
            .as_ref()
            .map_or(self.stored_len, SparseMap::logical_size)
    }
}

/// Reads cocoon's snapshot tar stream member by member, without buffering
/// bodies. See the [module docs](super) for what is refused.
pub struct TarReader<R: Read> {
    stream: TarStream<R>,
    seen: HashSet<String>,
    /// The end-of-archive marker was read.
    ended: bool,
    /// Members passed over, each said in a line.
    skipped: Vec<String>,
}

impl<R: Read> std::fmt::Debug for TarReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarReader")
            .field("members_seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl<R: Read> TarReader<R> {
    /// Wraps `reader`, detecting gzip by its magic, and reads the first
    /// member, which must be `snapshot.json`.
    ///
    /// # Errors
    /// [`Error::Io`] if reading fails or the stream is truncated,
    /// [`Error::TooLarge`] if `snapshot.json` is over [`ENVELOPE_LIMIT`],
    /// [`Error::InvalidDocument`] if the stream is empty, is not a tar, does
    /// not start with `snapshot.json`, or that is not a version-1 envelope.
    pub fn new(reader: R) -> Result<(TarReader<R>, Envelope)> {
        let Some(stream) = TarStream::new(reader, DIALECT)? else {
            return Err(bad(
                "the stream is empty; expected a tar starting with snapshot.json",
            ));
        };
        let mut tar = TarReader {
            stream,
            seen: HashSet::new(),
            ended: false,
            skipped: Vec::new(),
        };
        let envelope = tar.read_envelope()?;
        Ok((tar, envelope))
    }

    /// Whether the stream was gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.stream.is_gzip()
    }

    fn read_envelope(&mut self) -> Result<Envelope> {
        let Some(member) = self.next_member()? else {
            return Err(bad(
                "the tar holds no members; expected snapshot.json first",
            ));
        };
        if member.name != SNAPSHOT_JSON.as_bytes() {
            return Err(bad(format!(
                "the first member is {:?}, not snapshot.json",
                String::from_utf8_lossy(&member.name)
            )));
        }
        if member.pax.text(PAX_SPARSE_MAP).is_some() || member.pax.text(PAX_SPARSE_SIZE).is_some() {
            return Err(bad("snapshot.json carries sparse records"));
        }
        let header = self.check(member)?;
        if header.stored_len > ENVELOPE_LIMIT {
            return Err(Error::TooLarge {
                what: SNAPSHOT_JSON.to_string(),
                size: header.stored_len,
                limit: ENVELOPE_LIMIT,
            });
        }
        let data = self.stream.read_small(header.stored_len, SNAPSHOT_JSON)?;
        let envelope: Envelope =
            serde_json::from_slice(&data).map_err(|e| Error::InvalidDocument {
                what: SNAPSHOT_JSON.to_string(),
                reason: format!(
                    "not a snapshot envelope ({{\"version\":1,\"config\":{{...}}}}): {e}"
                ),
            })?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(Error::InvalidDocument {
                what: SNAPSHOT_JSON.to_string(),
                reason: format!(
                    "unsupported version {}; this build reads version {ENVELOPE_VERSION}",
                    envelope.version
                ),
            });
        }
        Ok(envelope)
    }

    /// The next file member and a reader of its body (the stored stream),
    /// or `None` at the end of the archive. Whatever the previous body's
    /// reader left unread is skipped first.
    ///
    /// # Errors
    /// As for [`TarReader::for_each_file`]. After an error the reader is
    /// unusable: every later call fails.
    pub fn next_file(&mut self) -> Result<Option<(FileHeader, FileBody<'_, R>)>> {
        if self.stream.failed() {
            return Err(bad(
                "reading already failed; the rest of the stream cannot be trusted",
            ));
        }
        if self.ended {
            return Ok(None);
        }
        match self.advance() {
            Ok(Some(header)) => Ok(Some((
                header,
                FileBody {
                    body: self.stream.body(),
                },
            ))),
            Ok(None) => {
                self.ended = true;
                Ok(None)
            }
            Err(e) => {
                self.stream.fail();
                Err(e)
            }
        }
    }

    fn advance(&mut self) -> Result<Option<FileHeader>> {
        let member = loop {
            let Some(member) = self.next_member()? else {
                return Ok(None);
            };
            // As cocoon's import (`utils/tar.go:ExtractTar`) and
            // cocoon-common's push do: what is not a regular file is
            // passed over, never created. Members that carry file data
            // under another type (GNU sparse, contiguous) or sparse records
            // are refused by `check` instead: passing them over would drop
            // data without a word.
            let data_elsewhere = matches!(member.kind, b'7' | b'S')
                || member.pax.text(PAX_SPARSE_MAP).is_some()
                || member.pax.text(PAX_SPARSE_SIZE).is_some();
            match non_regular(member.kind).filter(|_| !data_elsewhere) {
                Some(kind) => {
                    let shown = String::from_utf8_lossy(&member.name).into_owned();
                    self.skipped.push(format!(
                        "skipped member {shown:?}: a {kind}, not a regular file (cocoon's import \
                         skips it too)"
                    ));
                    self.stream.start_body(&shown, member.size);
                }
                None => break member,
            }
        };
        let header = self.check(member)?;
        self.stream.start_body(&header.name, header.stored_len);
        Ok(Some(header))
    }

    /// The members passed over so far (links, directories, devices: what
    /// cocoon's import skips), each said in a line for the user.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Calls `f` for each file member in order with its header and a reader
    /// of its body (the stored stream: the data segments back to back when
    /// the file is sparse). `f` need not read the whole body. A body that
    /// ends early makes its reader fail with
    /// [`io::ErrorKind::UnexpectedEof`], never a short successful read.
    ///
    /// # Errors
    /// The first error `f` returns; [`Error::Io`] if reading fails or the
    /// stream is truncated; [`Error::InvalidDocument`] for a member that is
    /// refused (see the [module docs](super)); [`Error::TooLarge`] for a PAX
    /// header over [`PAX_LIMIT`].
    pub fn for_each_file(
        mut self,
        mut f: impl FnMut(&FileHeader, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        while let Some((header, mut body)) = self.next_file()? {
            f(&header, &mut body)?;
        }
        Ok(())
    }

    /// Skips what is left of the current body and reads the next member's
    /// header, its extension headers applied; `None` at the end-of-archive
    /// marker. PAX global headers and GNU long link names are refused.
    fn next_member(&mut self) -> Result<Option<Header>> {
        let Some(member) = self.stream.next_header()? else {
            return Ok(None);
        };
        match member.kind {
            b'g' => Err(bad(
                "a PAX global header (type 'g'); cocoon never writes one and its \
                 records would apply to every member",
            )),
            b'K' => Err(bad(
                "a GNU long link name (type 'K'); links are not accepted",
            )),
            _ => Ok(Some(member)),
        }
    }

    /// Checks a member: a regular file with a plain, new name and, when it
    /// carries them, valid sparse records that match its size.
    fn check(&mut self, m: Header) -> Result<FileHeader> {
        let shown = String::from_utf8_lossy(&m.name).into_owned();
        let (sparse_map, sparse_size) = (m.pax.text(PAX_SPARSE_MAP), m.pax.text(PAX_SPARSE_SIZE));
        let has_sparse = sparse_map.is_some() || sparse_size.is_some();
        if let Some(kind) = non_regular(m.kind) {
            let extra = if has_sparse {
                " (and it carries COCOON.sparse records, which only a regular file may)"
            } else {
                ""
            };
            return Err(bad(format!(
                "member {shown:?} is a {kind}, not a regular file{extra}; \
                 only regular files are accepted"
            )));
        }
        let name = check_name(&m.name).map_err(bad)?.to_string();
        if m.pax.gnu_sparse {
            return Err(bad(format!(
                "member {shown:?} is in GNU tar's sparse format (GNU.sparse.* records), \
                 which is not supported; cocoon writes COCOON.sparse records"
            )));
        }
        let sparse = match (sparse_map, sparse_size) {
            (None, None) => None,
            (Some(map), Some(size)) => {
                let sparse_bad = |reason: String| Error::InvalidDocument {
                    what: format!("{STREAM}, member {shown:?}"),
                    reason,
                };
                let logical = parse_decimal(size.as_bytes()).ok_or_else(|| {
                    sparse_bad(format!("{PAX_SPARSE_SIZE} is {size:?}, not a decimal size"))
                })?;
                let map = SparseMap::from_cocoon(map, logical)
                    .map_err(|e| sparse_bad(format!("{PAX_SPARSE_MAP}: {e}")))?;
                if map.stored_len() != m.size {
                    return Err(sparse_bad(format!(
                        "the body is {} bytes but the sparse map holds {} bytes of data",
                        m.size,
                        map.stored_len()
                    )));
                }
                Some(map)
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(bad(format!(
                    "member {shown:?} carries only one of {PAX_SPARSE_MAP} and \
                     {PAX_SPARSE_SIZE}"
                )));
            }
        };
        let mode = m.mode.map(|m| (m & 0o7777) as u32).ok_or_else(|| {
            bad(format!(
                "member {shown:?}: the mode field is not an octal number"
            ))
        })?;
        if !self.seen.insert(name.clone()) {
            return Err(bad(format!("member {shown:?} appears twice")));
        }
        Ok(FileHeader {
            name,
            mode,
            stored_len: m.size,
            sparse,
        })
    }
}

/// The body of one file member: reads the stored stream and fails with
/// [`io::ErrorKind::UnexpectedEof`] if the stream ends before it does.
pub struct FileBody<'a, R: Read> {
    body: Body<'a, R>,
}

impl<R: Read> std::fmt::Debug for FileBody<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBody").finish_non_exhaustive()
    }
}

impl<R: Read> FileBody<'_, R> {
    /// Bytes of the body not yet read.
    pub fn remaining(&self) -> u64 {
        self.body.remaining()
    }
}

impl<R: Read> Read for FileBody<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

/// What a non-regular entry type is, or `None` for a regular file.
fn non_regular(kind: u8) -> Option<String> {
    let name = match kind {
        b'0' | b'\0' => return None,
        b'5' => "directory",
        b'D' => "GNU dump directory",
        b'M' => "multi-volume continuation",
        b'N' => "GNU old long name",
        b'V' => "volume label",
        other => return Some(type_name(other).map_or_else(|| unknown_type(other), String::from)),
    };
    Some(name.to_string())
}

#[cfg(test)]
mod tests;
