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
        let Some(member) = self.next_member()? else {
            return Ok(None);
        };
        let header = self.check(member)?;
        self.stream.start_body(&header.name, header.stored_len);
        Ok(Some(header))
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
                // Go encodes a file with no data at all as `null`.
                let parsed = if map.trim() == "null" {
                    SparseMap::new(logical, [])
                } else {
                    SparseMap::from_cocoon(map, logical)
                };
                let map = parsed.map_err(|e| sparse_bad(format!("{PAX_SPARSE_MAP}: {e}")))?;
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
mod tests {
    use super::*;
    use crate::tar::read::padding;
    use tar::{EntryType, Header};

    const ENVELOPE: &[u8] = br#"{"version":1,"config":{"name":"s"}}"#;

    fn header(name: &[u8], kind: u8, size: u64) -> [u8; 512] {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::new(kind));
        h.set_cksum();
        *h.as_bytes()
    }

    fn pad(out: &mut Vec<u8>) {
        let n = padding(out.len() as u64) as usize;
        out.extend(std::iter::repeat_n(0, n));
    }

    /// A member whose header declares `size` and whose body is `body`.
    fn member_sized(out: &mut Vec<u8>, name: &[u8], kind: u8, size: u64, body: &[u8]) {
        out.extend(header(name, kind, size));
        out.extend(body);
        pad(out);
    }

    fn member(out: &mut Vec<u8>, name: &[u8], kind: u8, body: &[u8]) {
        member_sized(out, name, kind, body.len() as u64, body);
    }

    fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        let body = key.len() + value.len() + 3;
        let mut len = body + 1;
        while body + len.to_string().len() != len {
            len = body + len.to_string().len();
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend(value);
        r.push(b'\n');
        r
    }

    fn pax(out: &mut Vec<u8>, records: &[(&str, &[u8])]) {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        member(out, b"PaxHeaders.0/x", b'x', &data);
    }

    fn start() -> Vec<u8> {
        let mut out = Vec::new();
        member(&mut out, b"snapshot.json", b'0', ENVELOPE);
        out
    }

    fn end(mut out: Vec<u8>) -> Vec<u8> {
        out.extend([0u8; 1024]);
        out
    }

    /// Reads every member, each body fully (`read_bodies`) or not at all.
    fn read(bytes: &[u8], read_bodies: bool) -> Result<Vec<(FileHeader, Vec<u8>)>> {
        let (reader, _) = TarReader::new(bytes)?;
        let mut files = Vec::new();
        reader.for_each_file(|h, body| {
            let mut data = Vec::new();
            if read_bodies {
                body.read_to_end(&mut data)
                    .map_err(|e| Error::io("read", "test body", e))?;
            }
            files.push((h.clone(), data));
            Ok(())
        })?;
        Ok(files)
    }

    #[track_caller]
    fn refused(bytes: &[u8], needle: &str) {
        for read_bodies in [true, false] {
            match read(bytes, read_bodies) {
                Ok(files) => panic!("accepted, expected {needle:?}: {files:?}"),
                Err(e) => assert!(e.to_string().contains(needle), "{needle:?} not in: {e}"),
            }
        }
    }

    #[test]
    fn the_helpers_build_an_acceptable_stream() -> Result<()> {
        let mut out = start();
        pax(
            &mut out,
            &[
                (PAX_SPARSE_MAP, br#"[{"o":0,"l":3},{"o":10,"l":2}]"#),
                (PAX_SPARSE_SIZE, b"100"),
                ("mtime", b"1.5"),
            ],
        );
        member(&mut out, b"cow.raw", b'0', b"abcde");
        member(&mut out, b"mem", b'\0', b"xyz");
        let files = read(&end(out), true)?;
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].0.name, "cow.raw");
        assert_eq!(files[0].0.logical_len(), 100);
        assert_eq!(files[0].1, b"abcde");
        assert_eq!(files[1].0.sparse, None);
        assert_eq!(files[1].1, b"xyz");
        Ok(())
    }

    #[test]
    fn go_null_map_is_an_all_hole_file() -> Result<()> {
        let mut out = start();
        pax(
            &mut out,
            &[(PAX_SPARSE_MAP, b"null"), (PAX_SPARSE_SIZE, b"10737418240")],
        );
        member(&mut out, b"cow.raw", b'0', b"");
        let files = read(&end(out), true)?;
        let map = files[0].0.sparse.as_ref().expect("sparse");
        assert_eq!((map.logical_size(), map.stored_len()), (10 << 30, 0));
        Ok(())
    }

    #[test]
    fn a_long_name_record_with_a_newline_in_another_value_parses() -> Result<()> {
        let mut out = start();
        pax(
            &mut out,
            &[("comment", b"two\nlines"), ("path", b"long-name.raw")],
        );
        member(&mut out, b"short", b'0', b"1");
        let files = read(&end(out), true)?;
        assert_eq!(files[0].0.name, "long-name.raw");
        Ok(())
    }

    #[test]
    fn path_like_names_are_refused() {
        for (name, needle) in [
            (&b"../x"[..], "separator"),
            (b"/abs", "absolute"),
            (b"a/b", "separator"),
            (b".", "not a plain file name"),
            (b"..", "not a plain file name"),
            (b"", "empty"),
        ] {
            let mut out = start();
            member(&mut out, name, b'0', b"data");
            refused(&end(out), needle);
        }
        // NUL can only arrive through a PAX path or a GNU long name.
        let mut out = start();
        pax(&mut out, &[("path", b"a\0b")]);
        member(&mut out, b"ab", b'0', b"data");
        refused(&end(out), "NUL");
        let mut out = start();
        member(&mut out, b"././@LongLink", b'L', b"a\0../../x\0");
        member(&mut out, b"ab", b'0', b"data");
        refused(&end(out), "NUL");
        let mut out = start();
        pax(&mut out, &[("path", b"../../etc/passwd")]);
        member(&mut out, b"ok", b'0', b"data");
        refused(&end(out), "separator");
        // A ustar prefix makes a path too.
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..1].copy_from_slice(b"x");
        h.as_ustar_mut().expect("ustar").prefix[..3].copy_from_slice(b"etc");
        h.set_size(0);
        h.set_entry_type(EntryType::Regular);
        h.set_cksum();
        let mut out = start();
        out.extend(h.as_bytes());
        refused(&end(out), "separator");
    }

    #[test]
    fn links_devices_fifos_and_directories_are_refused() -> Result<()> {
        for (kind, needle) in [
            (b'1', "hard link"),
            (b'2', "symbolic link"),
            (b'3', "character device"),
            (b'4', "block device"),
            (b'5', "directory"),
            (b'6', "FIFO"),
            (b'7', "contiguous file"),
            (b'S', "GNU sparse file"),
            (b'Z', "unknown type 'Z'"),
        ] {
            let mut out = start();
            member(&mut out, b"cow.raw", kind, b"");
            refused(&end(out), needle);
        }
        // Also through the tar crate's own builder, as other tools write them.
        let mut b = tar::Builder::new(start());
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "state.json", "/etc/shadow")
            .map_err(|e| Error::io("build", "test", e))?;
        refused(
            &b.into_inner().map_err(|e| Error::io("build", "test", e))?,
            "symbolic link",
        );
        let mut out = start();
        member(&mut out, b"./", b'5', b"");
        refused(&end(out), "directory");
        let mut out = start();
        member(&mut out, b"x", b'g', b"");
        refused(&end(out), "global header");
        let mut out = start();
        member(&mut out, b"x", b'K', b"/etc/shadow");
        member(&mut out, b"state.json", b'0', b"");
        refused(&end(out), "long link");
        Ok(())
    }

    #[test]
    fn sparse_records_on_a_non_regular_member_are_refused() {
        let mut out = start();
        pax(
            &mut out,
            &[(PAX_SPARSE_MAP, b"[]"), (PAX_SPARSE_SIZE, b"10")],
        );
        member(&mut out, b"d", b'5', b"");
        refused(&end(out), "carries COCOON.sparse records");
        let mut out = Vec::new();
        pax(
            &mut out,
            &[(PAX_SPARSE_MAP, b"[]"), (PAX_SPARSE_SIZE, b"10")],
        );
        member(&mut out, b"snapshot.json", b'0', ENVELOPE);
        refused(&end(out), "snapshot.json carries sparse records");
    }

    #[test]
    fn the_envelope_must_come_first_and_be_small_json_of_version_1() {
        let mut out = Vec::new();
        member(&mut out, b"config.json", b'0', b"{}");
        member(&mut out, b"snapshot.json", b'0', ENVELOPE);
        refused(&end(out), "first member is \"config.json\"");
        let mut out = Vec::new();
        member(&mut out, b"snapshot.json", b'0', b"not json");
        refused(&end(out), "not a snapshot envelope");
        let mut out = Vec::new();
        member(
            &mut out,
            b"snapshot.json",
            b'0',
            br#"{"version":2,"config":{}}"#,
        );
        refused(&end(out), "unsupported version 2");
        let mut out = Vec::new();
        member(&mut out, b"snapshot.json", b'0', br#"{"version":1}"#);
        refused(&end(out), "missing field `config`");
        // Declared over the limit: refused before a byte of it is read, so
        // the absent body is never noticed.
        let mut out = Vec::new();
        out.extend(header(b"snapshot.json", b'0', 2 << 20));
        refused(&out, "over the 1048576-byte limit");
        refused(&end(Vec::new()), "no members");
        refused(b"", "empty");
        let mut out = start();
        member(&mut out, b"snapshot.json", b'0', ENVELOPE);
        refused(&end(out), "appears twice");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut out = start();
        member(&mut out, b"cow.raw", b'0', b"a");
        member(&mut out, b"cow.raw", b'0', b"b");
        refused(&end(out), "\"cow.raw\" appears twice");
    }

    #[test]
    fn bad_sparse_records_are_refused() {
        for (map, size, body, needle) in [
            (
                &br#"[{"o":0,"l":8},{"o":4,"l":2}]"#[..],
                &b"100"[..],
                10,
                "overlaps",
            ),
            (br#"[{"o":96,"l":8}]"#, b"100", 8, "past the logical size"),
            (br#"[{"o":-1,"l":8}]"#, b"100", 8, "non-negative"),
            (b"not json", b"100", 8, "not a JSON array"),
            (br#"[{"o":0,"l":8}]"#, b"12a", 8, "not a decimal size"),
            (br#"[{"o":0,"l":8}]"#, b"-5", 8, "not a decimal size"),
            (br#"[{"o":0,"l":8}]"#, b"+5", 8, "not a decimal size"),
            (br#"[{"o":0,"l":8}]"#, b"", 8, "not a decimal size"),
            (
                br#"[{"o":0,"l":8}]"#,
                b"99999999999999999999",
                8,
                "not a decimal size",
            ),
            (br#"[{"o":0,"l":8}]"#, b"100", 7, "holds 8 bytes of data"),
            (br#"[{"o":0,"l":8}]"#, b"100", 9, "holds 8 bytes of data"),
        ] {
            let mut out = start();
            pax(&mut out, &[(PAX_SPARSE_MAP, map), (PAX_SPARSE_SIZE, size)]);
            member(&mut out, b"cow.raw", b'0', &vec![1u8; body]);
            refused(&end(out), needle);
        }
        let mut out = start();
        pax(&mut out, &[(PAX_SPARSE_MAP, b"[]")]);
        member(&mut out, b"cow.raw", b'0', b"");
        refused(&end(out), "only one of");
        let mut out = start();
        pax(&mut out, &[(PAX_SPARSE_SIZE, b"10")]);
        member(&mut out, b"cow.raw", b'0', b"");
        refused(&end(out), "only one of");
        let mut out = start();
        pax(
            &mut out,
            &[("GNU.sparse.major", b"1"), ("GNU.sparse.realsize", b"100")],
        );
        member(&mut out, b"cow.raw", b'0', b"");
        refused(&end(out), "GNU tar's sparse format");
    }

    #[test]
    fn malformed_pax_headers_are_refused() {
        for (data, needle) in [
            (&b"garbage"[..], "malformed record"),
            (b"99 path=x\n", "malformed record"),
            (b"9 path=x\n\0\0\0", "malformed record"),
            (b"5 a=b\n", "malformed record"),
            (b"8 path=x", "malformed record"),
            (b"7 =abc\n", "malformed record"),
            (b"10 path=x\n10 path=y\n", "twice"),
            (b"10 size=x\n", "not a decimal size"),
        ] {
            let mut out = start();
            member(&mut out, b"PaxHeaders.0/x", b'x', data);
            member(&mut out, b"cow.raw", b'0', b"");
            refused(&end(out), needle);
        }
        let mut out = start();
        pax(&mut out, &[("path", b"a")]);
        pax(&mut out, &[("path", b"b")]);
        member(&mut out, b"cow.raw", b'0', b"");
        refused(&end(out), "two PAX headers");
        let mut out = start();
        pax(&mut out, &[("path", b"a")]);
        refused(&end(out), "not followed by the member");
    }

    #[test]
    fn a_huge_pax_header_is_refused_before_it_is_read() {
        let mut out = start();
        out.extend(header(b"PaxHeaders.0/x", b'x', 100 << 30));
        // No body follows: reading it would report truncation instead.
        refused(
            &out,
            "a PAX extended header is 107374182400 bytes, over the 67108864-byte",
        );
        let mut out = start();
        out.extend(header(b"././@LongLink", b'L', 1 << 40));
        refused(&out, "a GNU long name is");
    }

    #[test]
    fn truncation_is_an_error_never_a_short_read() {
        // The body is cut short.
        let mut out = start();
        out.extend(header(b"memory-ranges", b'0', 100_000));
        out.extend(vec![5u8; 70_000]);
        refused(&out, "ends inside \"memory-ranges\", 30000 bytes short");
        // The stream stops after a whole member, without the end marker.
        let mut out = start();
        member(&mut out, b"cow.raw", b'0', b"abc");
        refused(&out, "without the end-of-archive marker");
        // Inside a header.
        let mut out = start();
        out.extend(&header(b"cow.raw", b'0', 3)[..100]);
        refused(&out, "ends inside a member header");
        // Inside the padding after the last body.
        let mut out = start();
        out.extend(header(b"cow.raw", b'0', 3));
        out.extend(b"abc\0");
        refused(&out, "padding after \"cow.raw\"");
    }

    #[test]
    fn a_short_read_inside_the_callback_fails_and_stops_the_reader() -> Result<()> {
        let mut out = start();
        out.extend(header(b"mem", b'0', 1000));
        out.extend([1u8; 10]);
        let (mut reader, _) = TarReader::new(&out[..])?;
        let (h, mut body) = reader.next_file()?.expect("a member");
        assert_eq!(h.stored_len, 1000);
        let mut data = Vec::new();
        let err = body.read_to_end(&mut data).expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(data.len(), 10);
        assert!(reader.next_file().is_err(), "a failed reader stays failed");
        Ok(())
    }

    #[test]
    fn damaged_headers_and_trailers_are_refused() {
        let mut out = start();
        let mut h = header(b"cow.raw", b'0', 0);
        h[0] = b'd';
        out.extend(h);
        refused(&end(out), "checksum does not match");
        let mut out = start();
        let mut h = header(b"cow.raw", b'0', 0);
        h[148..156].copy_from_slice(b"zzzzzzz\0");
        out.extend(h);
        refused(&end(out), "checksum field is not an octal number");
        let mut out = end(start());
        out.extend(b"trailing junk");
        refused(&out, "data follows the end-of-archive marker");
        let mut out = end(start());
        out.extend(vec![0u8; 2 << 20]);
        refused(&out, "follow the end-of-archive marker");
        refused(
            b"this is not a tar stream at all",
            "ends inside a member header",
        );
        let junk = vec![b'x'; 4096];
        refused(&junk, "checksum field is not an octal number");
    }

    #[test]
    fn record_padding_after_the_marker_is_accepted() -> Result<()> {
        let mut out = start();
        member(&mut out, b"cow.raw", b'0', b"abc");
        let mut out = end(out);
        out.resize(10240, 0);
        assert_eq!(read(&out, true)?.len(), 1);
        Ok(())
    }
}
