//! Writing the stream as cocoon's Go writer does: ustar headers, PAX
//! extended headers (`PaxHeaders.0/<name>`) for the sparse records and for
//! what ustar cannot hold (names over 100 bytes, sizes of 8 GiB and more).

use std::collections::HashSet;
use std::io::{self, Read, Write};

use tar::EntryType;

use super::{
    ENVELOPE_LIMIT, ENVELOPE_VERSION, Envelope, PAX_LIMIT, PAX_SPARSE_MAP, PAX_SPARSE_SIZE,
    SNAPSHOT_JSON, STREAM, check_name,
};
use crate::error::{Error, Result};
use crate::io::sparse::SparseMap;
use crate::tar::write::{END_OF_ARCHIVE, GO_STYLE, padding, pax_data, pax_records};

const BUFFER: usize = 64 << 10;

fn write_error(e: io::Error) -> Error {
    Error::stream("write", STREAM, e)
}

/// Writes cocoon's snapshot tar stream: [`TarWriter::new`] writes
/// `snapshot.json`, [`TarWriter::append_file`] one file each, and
/// [`TarWriter::finish`] the end-of-archive marker. A stream that is not
/// finished, or in which an append failed, is refused by
/// [`TarReader`](super::TarReader) (and by cocoon).
///
/// Headers carry mode, size and name only: uid and gid 0, the `tar` crate's
/// fixed [`tar::DETERMINISTIC_TIMESTAMP`] as mtime, so the same snapshot
/// gives the same bytes.
pub struct TarWriter<W: Write> {
    out: W,
    names: HashSet<String>,
    /// Set while a member is being written; still set if writing it failed.
    broken: bool,
}

impl<W: Write> std::fmt::Debug for TarWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarWriter")
            .field("members", &self.names.len())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<W: Write> TarWriter<W> {
    /// Starts a stream on `writer` with `envelope` as `snapshot.json`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the envelope is not version 1,
    /// [`Error::TooLarge`] if it serializes to over [`ENVELOPE_LIMIT`],
    /// [`Error::Io`] if writing fails.
    pub fn new(writer: W, envelope: &Envelope) -> Result<TarWriter<W>> {
        if envelope.version != ENVELOPE_VERSION {
            return Err(Error::InvalidArgument(format!(
                "snapshot.json version {} cannot be written; cocoon reads version {ENVELOPE_VERSION}",
                envelope.version
            )));
        }
        let json = serde_json::to_vec(envelope).map_err(|e| Error::InvalidDocument {
            what: SNAPSHOT_JSON.to_string(),
            reason: format!("cannot be serialized: {e}"),
        })?;
        if json.len() as u64 > ENVELOPE_LIMIT {
            return Err(Error::TooLarge {
                what: SNAPSHOT_JSON.to_string(),
                size: json.len() as u64,
                limit: ENVELOPE_LIMIT,
            });
        }
        let mut w = TarWriter {
            out: writer,
            names: HashSet::from([SNAPSHOT_JSON.to_string()]),
            broken: true,
        };
        w.write_member(
            SNAPSHOT_JSON,
            0o644,
            json.len() as u64,
            Vec::new(),
            &mut &json[..],
        )?;
        w.broken = false;
        Ok(w)
    }

    /// Appends the file `name` (a plain file name) with permission bits
    /// `mode` and logical size `len`.
    ///
    /// With `sparse` `None`, or a map with no holes, the member is dense and
    /// `body` must yield exactly `len` bytes. Otherwise the map's logical
    /// size must be `len`, the member carries the `COCOON.sparse.map` and
    /// `COCOON.sparse.size` records, and `body` must yield exactly the
    /// stored stream, [`SparseMap::stored_len`] bytes. The body is streamed,
    /// never held in memory.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a name that is not a plain file name,
    /// is `snapshot.json` or was already appended, a `len` that differs
    /// from the map's logical size, a map whose records would exceed
    /// [`PAX_LIMIT`], or a `body` that yields fewer or more bytes than it
    /// should; [`Error::Io`] if reading `body` or writing fails. Once bytes
    /// of a member are written, a failure leaves the stream incomplete:
    /// later appends and [`TarWriter::finish`] fail.
    pub fn append_file(
        &mut self,
        name: &str,
        mode: u32,
        len: u64,
        sparse: Option<&SparseMap>,
        body: &mut dyn Read,
    ) -> Result<()> {
        self.check_usable()?;
        let name = check_name(name.as_bytes()).map_err(Error::InvalidArgument)?;
        if self.names.contains(name) {
            let why = if name == SNAPSHOT_JSON {
                "is the envelope's name"
            } else {
                "was already appended"
            };
            return Err(Error::InvalidArgument(format!(
                "cannot append {name:?}: the name {why}"
            )));
        }
        let (stored, records) = match sparse {
            Some(map) if map.logical_size() != len => {
                return Err(Error::InvalidArgument(format!(
                    "cannot append {name:?}: its length is {len} but its sparse map \
                     describes {} bytes",
                    map.logical_size()
                )));
            }
            Some(map) if !map.is_dense() => (
                map.stored_len(),
                vec![
                    (PAX_SPARSE_MAP, map.to_cocoon_json()),
                    (PAX_SPARSE_SIZE, map.logical_size().to_string()),
                ],
            ),
            _ => (len, Vec::new()),
        };
        self.broken = true;
        self.write_member(name, mode, stored, records, body)?;
        self.broken = false;
        self.names.insert(name.to_string());
        Ok(())
    }

    /// Writes the end-of-archive marker, flushes, and returns the writer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if an earlier append failed midway (the
    /// stream must not look complete); [`Error::Io`] if writing fails.
    pub fn finish(mut self) -> Result<W> {
        self.check_usable()?;
        self.out.write_all(&END_OF_ARCHIVE).map_err(write_error)?;
        self.out.flush().map_err(write_error)?;
        Ok(self.out)
    }

    fn check_usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::InvalidArgument(
                "an earlier member was written only in part; the tar stream is incomplete"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// Writes one regular member: its PAX header when `records` or the name
    /// or size need one, its ustar header, `stored` bytes of `body`, padding.
    fn write_member(
        &mut self,
        name: &str,
        mode: u32,
        stored: u64,
        records: Vec<(&str, String)>,
        body: &mut dyn Read,
    ) -> Result<()> {
        let data = pax_data(&pax_records(name, stored, records));
        if data.len() as u64 > PAX_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "cannot append {name:?}: its PAX records are {} bytes, over the \
                 {PAX_LIMIT}-byte limit readers accept",
                data.len()
            )));
        }
        GO_STYLE
            .write_headers(&mut self.out, name, mode, EntryType::Regular, stored, &data)
            .map_err(write_error)?;
        self.copy_body(name, stored, body)?;
        self.out.write_all(padding(stored)).map_err(write_error)
    }

    /// Copies exactly `len` bytes of `body`, and checks it has no more.
    fn copy_body(&mut self, name: &str, len: u64, body: &mut dyn Read) -> Result<()> {
        let read_error = |e| Error::stream("read", format!("the body of {name:?}"), e);
        let mut buf = vec![0u8; BUFFER.min(usize::try_from(len).unwrap_or(BUFFER).max(1))];
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match body.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(Error::InvalidArgument(format!(
                        "the body of {name:?} ended after {} of {len} bytes",
                        len - left
                    )));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            self.out.write_all(&buf[..n]).map_err(write_error)?;
            left -= n as u64;
        }
        let mut one = [0u8; 1];
        loop {
            match body.read(&mut one) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "the body of {name:?} is longer than the {len} bytes declared"
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EnvelopeConfig, TarReader};
    use super::*;
    use crate::io::sparse::Extent;

    fn envelope() -> Envelope {
        Envelope::new(EnvelopeConfig {
            name: "vm".into(),
            ..EnvelopeConfig::default()
        })
    }

    fn ioe(e: io::Error) -> Error {
        Error::io("read", "test", e)
    }

    #[test]
    fn bad_appends_are_refused_and_broken_streams_cannot_finish() -> Result<()> {
        let mut w = TarWriter::new(Vec::new(), &envelope())?;
        for (name, needle) in [
            ("../x", "separator"),
            ("a/b", "separator"),
            ("/abs", "absolute"),
            ("..", "not a plain file name"),
            ("", "empty"),
            ("a\0b", "NUL"),
            ("snapshot.json", "envelope's name"),
        ] {
            let err = w
                .append_file(name, 0o644, 0, None, &mut io::empty())
                .expect_err(name);
            assert!(err.to_string().contains(needle), "{name}: {err}");
        }
        w.append_file("cow.raw", 0o644, 1, None, &mut &b"x"[..])?;
        let err = w
            .append_file("cow.raw", 0o644, 1, None, &mut &b"x"[..])
            .expect_err("duplicate");
        assert!(err.to_string().contains("already appended"), "{err}");
        let map = SparseMap::new(100, [Extent { offset: 10, len: 5 }])?;
        let err = w
            .append_file("mem", 0o600, 99, Some(&map), &mut &b"12345"[..])
            .expect_err("length mismatch");
        assert!(err.to_string().contains("describes 100 bytes"), "{err}");
        // Nothing was written by the refusals: the stream is still good.
        let bytes = w.finish()?;
        let (r, _) = TarReader::new(&bytes[..])?;
        let mut names = Vec::new();
        r.for_each_file(|h, _| {
            names.push(h.name.clone());
            Ok(())
        })?;
        assert_eq!(names, ["cow.raw"]);

        let mut w = TarWriter::new(Vec::new(), &envelope())?;
        let err = w
            .append_file("short", 0o644, 10, None, &mut &b"123"[..])
            .expect_err("short body");
        assert!(
            err.to_string().contains("ended after 3 of 10 bytes"),
            "{err}"
        );
        assert!(
            w.append_file("next", 0o644, 0, None, &mut io::empty())
                .is_err()
        );
        assert!(w.finish().is_err(), "a broken stream must not be finished");

        let mut w = TarWriter::new(Vec::new(), &envelope())?;
        let err = w
            .append_file("long", 0o644, 2, None, &mut &b"123"[..])
            .expect_err("long body");
        assert!(err.to_string().contains("longer than the 2 bytes"), "{err}");
        assert!(w.finish().is_err());
        Ok(())
    }

    #[test]
    fn the_envelope_must_be_version_1() {
        let mut e = envelope();
        e.version = 2;
        let err = TarWriter::new(Vec::new(), &e).expect_err("refused");
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn a_dense_map_writes_a_dense_member() -> Result<()> {
        let map = SparseMap::dense(4);
        let mut w = TarWriter::new(Vec::new(), &envelope())?;
        w.append_file("state.json", 0o644, 4, Some(&map), &mut &b"{}{}"[..])?;
        let bytes = w.finish()?;
        assert!(!bytes.windows(6).any(|w| w == b"COCOON"));
        let (r, _) = TarReader::new(&bytes[..])?;
        r.for_each_file(|h, _| {
            assert_eq!((h.stored_len, h.sparse.is_none()), (4, true));
            Ok(())
        })
    }

    #[test]
    fn long_names_and_sizes_over_8_gib_use_pax_records() -> Result<()> {
        let name = format!("data-{}.raw", "s".repeat(200));
        let big = 9u64 << 30;
        let mut w = TarWriter::new(Vec::new(), &envelope())?;
        // Headers only: the 9 GiB body is never written.
        let err = w
            .write_member(&name, 0o600, big, Vec::new(), &mut io::empty())
            .expect_err("empty body");
        assert!(err.to_string().contains("ended after 0 of"), "{err}");
        let bytes = w.out.clone();

        let (r, _) = TarReader::new(&bytes[..])?;
        let err = r
            .for_each_file(|h, _| {
                assert_eq!(h.name, name);
                assert_eq!(h.stored_len, big);
                Err(Error::InvalidArgument("header seen".into()))
            })
            .expect_err("stopped");
        assert!(err.to_string().contains("header seen"), "{err}");

        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().map_err(ioe)?;
        let _envelope = entries.next().expect("snapshot.json").map_err(ioe)?;
        let entry = entries.next().expect("the file").map_err(ioe)?;
        assert_eq!(entry.size(), big);
        assert_eq!(entry.path_bytes().as_ref(), name.as_bytes());
        Ok(())
    }
}
