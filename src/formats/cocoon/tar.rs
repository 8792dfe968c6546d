//! cocoon's `snapshot export` / `snapshot import` tar stream, read and
//! written as a stream: no file body is ever held in memory or copied to a
//! temporary file.
//!
//! # The format
//! - A tar stream, optionally gzip-compressed on input (detected by the
//!   gzip magic `1f 8b`, never by a file name; multi-member gzip is read).
//! - The first member is [`SNAPSHOT_JSON`], the [`Envelope`]
//!   `{"version":1,"config":{...}}`, at most [`ENVELOPE_LIMIT`] bytes.
//! - Then one regular member per snapshot file, named by a plain file name
//!   (`config.json`, `memory-ranges`, `cow.raw`, `data-<serial>.raw`, ...).
//! - A sparse file's member carries the PAX records [`PAX_SPARSE_MAP`]
//!   (`[{"o":OFFSET,"l":LENGTH},...]`, see [`SparseMap::from_cocoon`]) and
//!   [`PAX_SPARSE_SIZE`] (the logical size in decimal); its size and body
//!   are the data segments back to back, the *stored stream*. Without those
//!   records a member is dense.
//!
//! # What is refused on input
//! Everything that is not a plain regular file with a plain name: `..`,
//! `.`, absolute paths, any `/` or `\`, NUL, empty or over-255-byte names,
//! names that are not UTF-8; links, devices, FIFOs, directories (cocoon
//! never writes a `./` entry), GNU sparse members, PAX global headers; a
//! first member other than `snapshot.json`; duplicate names; broken
//! checksums; sparse records that are half present, not decimal, not a
//! valid map, or whose stored length differs from the member's size; GNU
//! `GNU.sparse.*` records (GNU tar's own sparse format, which would be read
//! as shifted data); PAX headers over [`PAX_LIMIT`]; an envelope other than
//! version 1; a stream that ends early or without the end-of-archive
//! marker; anything but zeros after that marker. Sizes from headers are
//! never used to allocate.
//!
//! Gzip's checksum covers the whole stream and is only checked at its end,
//! and a truncation shows only when it is reached: a caller that writes
//! files while reading must not treat them as complete until
//! [`TarReader::for_each_file`] has returned `Ok`.
//!
//! [`SparseMap::from_cocoon`]: crate::io::sparse::SparseMap::from_cocoon

mod envelope;
mod read;
mod write;

pub use envelope::{ENVELOPE_VERSION, Envelope, EnvelopeConfig};
pub use read::{FileBody, FileHeader, TarReader};
pub use write::TarWriter;

/// The name of the first member, the [`Envelope`].
pub const SNAPSHOT_JSON: &str = "snapshot.json";

/// The largest `snapshot.json` read into memory (1 MiB).
pub const ENVELOPE_LIMIT: u64 = 1 << 20;

/// The largest PAX extended header read into memory (64 MiB): room for a
/// sparse map of well over a million segments, far more than cocoon's own
/// 1 MiB. Larger ones are refused on input and never written.
pub const PAX_LIMIT: u64 = 64 << 20;

/// The PAX record holding a sparse file's map.
pub const PAX_SPARSE_MAP: &str = "COCOON.sparse.map";

/// The PAX record holding a sparse file's logical size.
pub const PAX_SPARSE_SIZE: &str = "COCOON.sparse.size";

/// What errors name as the thing read or written.
const STREAM: &str = "cocoon snapshot tar stream";

/// Checks that `name` is a plain file name: one path component that can be
/// created in a directory and names nothing else. Returns it as text, or
/// why it is refused.
fn check_name(name: &[u8]) -> Result<&str, String> {
    let shown = String::from_utf8_lossy(name);
    let refuse = |why: &str| Err(format!("member name {shown:?} refused: {why}"));
    if name.is_empty() {
        return refuse("the name is empty");
    }
    if name.contains(&0) {
        return refuse("it contains a NUL byte");
    }
    let Ok(text) = std::str::from_utf8(name) else {
        return refuse("it is not UTF-8");
    };
    if let Some(why) = crate::model::name::file_name_flaw(text) {
        return refuse(&why);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use crate::io::sparse::{Extent, SparseMap};
    use std::io::{Read, Write};

    /// Each file member's header and stored stream.
    type Files = Vec<(FileHeader, Vec<u8>)>;

    fn ioe(e: std::io::Error) -> Error {
        Error::io("read", "test stream", e)
    }

    /// Reads every file member: header and stored stream.
    fn read_files(bytes: &[u8]) -> Result<(Envelope, Files)> {
        let (reader, envelope) = TarReader::new(bytes)?;
        let mut files = Vec::new();
        reader.for_each_file(|h, body| {
            let mut data = Vec::new();
            body.read_to_end(&mut data).map_err(ioe)?;
            files.push((h.clone(), data));
            Ok(())
        })?;
        Ok((envelope, files))
    }

    fn envelope() -> Result<Envelope> {
        let e: Envelope = serde_json::from_str(
            r#"{"version":1,"config":{"id":"sn-9","name":"vm1","image":"img:1",
            "cpu":2,"memory":1073741824,"hypervisor":"firecracker",
            "image_blob_ids":{"aa":{}},"cocoon_later":{"k":"v"}},"top_later":3}"#,
        )
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(e)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    fn sample_map() -> Result<SparseMap> {
        SparseMap::new(
            1 << 30,
            [
                Extent {
                    offset: 0,
                    len: 4096,
                },
                Extent {
                    offset: 1 << 20,
                    len: 8192,
                },
                Extent {
                    offset: 512 << 20,
                    len: 1000,
                },
                Extent {
                    offset: (1 << 30) - 24,
                    len: 24,
                },
            ],
        )
    }

    /// The envelope, a dense file, a sparse file and an empty file.
    fn sample_tar() -> Result<(Vec<u8>, Files)> {
        let map = sample_map()?;
        let dense = pattern(70_000, 1);
        let stored = pattern(map.stored_len() as usize, 2);
        let want = vec![
            (
                FileHeader {
                    name: "config.json".into(),
                    mode: 0o644,
                    stored_len: dense.len() as u64,
                    sparse: None,
                },
                dense,
            ),
            (
                FileHeader {
                    name: "memory-ranges".into(),
                    mode: 0o600,
                    stored_len: map.stored_len(),
                    sparse: Some(map.clone()),
                },
                stored,
            ),
            (
                FileHeader {
                    name: "cidata.img".into(),
                    mode: 0o640,
                    stored_len: 0,
                    sparse: None,
                },
                Vec::new(),
            ),
        ];
        let mut w = TarWriter::new(Vec::new(), &envelope()?)?;
        for (h, body) in &want {
            w.append_file(
                &h.name,
                h.mode,
                h.logical_len(),
                h.sparse.as_ref(),
                &mut &body[..],
            )?;
        }
        Ok((w.finish()?, want))
    }

    #[test]
    fn round_trip_keeps_envelope_names_modes_bodies_and_maps() -> Result<()> {
        let (tar, want) = sample_tar()?;
        let (env, files) = read_files(&tar)?;
        assert_eq!(env, envelope()?);
        assert_eq!(env.config.extra["cocoon_later"]["k"], "v");
        assert_eq!(env.extra["top_later"], 3);
        assert_eq!(files, want);
        assert_eq!(files[1].0.logical_len(), 1 << 30);
        Ok(())
    }

    #[test]
    fn gzip_input_is_detected_by_magic() -> Result<()> {
        let (tar, want) = sample_tar()?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).map_err(ioe)?;
        let gz = gz.finish().map_err(ioe)?;
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let (reader, env) = TarReader::new(&gz[..])?;
        assert!(reader.is_gzip());
        assert_eq!(env, envelope()?);
        let (_, files) = read_files(&gz)?;
        assert_eq!(files, want);
        // A damaged gzip trailer (CRC) is an error, not a silent success.
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 8] ^= 0xff;
        assert!(read_files(&bad).is_err());
        Ok(())
    }

    #[test]
    fn the_tar_crate_sees_what_cocoons_go_reader_sees() -> Result<()> {
        let (tar, want) = sample_tar()?;
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().map_err(ioe)? {
            let mut entry = entry.map_err(ioe)?;
            let name = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            let mut records = Vec::new();
            if let Some(exts) = entry.pax_extensions().map_err(ioe)? {
                for ext in exts {
                    let ext = ext.map_err(ioe)?;
                    records.push((
                        ext.key().unwrap_or("?").to_string(),
                        ext.value().unwrap_or("?").to_string(),
                    ));
                }
            }
            assert_eq!(entry.header().entry_type(), tar::EntryType::Regular);
            let size = entry.size();
            let mode = entry.header().mode().map_err(ioe)?;
            let mut body = Vec::new();
            entry.read_to_end(&mut body).map_err(ioe)?;
            assert_eq!(size, body.len() as u64);
            seen.push((name, mode, records, body));
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].0, "snapshot.json");
        let env: Envelope = serde_json::from_slice(&seen[0].3)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        assert_eq!(env, envelope()?);
        for ((name, mode, records, body), (h, data)) in seen[1..].iter().zip(&want) {
            assert_eq!(name, &h.name);
            assert_eq!(*mode, h.mode);
            assert_eq!(body, data, "{name}: the body is the stored stream");
            match &h.sparse {
                None => assert!(records.is_empty(), "{name}: {records:?}"),
                Some(map) => {
                    let get = |k: &str| records.iter().find(|(key, _)| key == k).map(|r| &r.1);
                    assert_eq!(get(PAX_SPARSE_MAP), Some(&map.to_cocoon_json()));
                    assert_eq!(get(PAX_SPARSE_SIZE), Some(&map.logical_size().to_string()));
                    assert_eq!(
                        get(PAX_SPARSE_MAP).map(String::as_str),
                        Some(
                            r#"[{"o":0,"l":4096},{"o":1048576,"l":8192},{"o":536870912,"l":1000},{"o":1073741800,"l":24}]"#
                        )
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_map_of_fifty_thousand_segments_round_trips() -> Result<()> {
        let extents = (0..50_000u64).map(|i| Extent {
            offset: i * 8192,
            len: 16,
        });
        let map = SparseMap::new(50_000 * 8192, extents)?;
        assert_eq!(map.extents().len(), 50_000);
        assert!(map.to_cocoon_json().len() > 1 << 20, "over Go's PAX cap");
        let body = pattern(map.stored_len() as usize, 7);
        let mut w = TarWriter::new(Vec::new(), &envelope()?)?;
        w.append_file("mem", 0o600, map.logical_size(), Some(&map), &mut &body[..])?;
        let (_, files) = read_files(&w.finish()?)?;
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0.sparse.as_ref(), Some(&map));
        assert_eq!(files[0].1, body);
        Ok(())
    }

    #[test]
    fn plain_names_only() {
        for good in ["memory-ranges", "data-x1.raw", "a..b", ".hidden"] {
            assert_eq!(check_name(good.as_bytes()), Ok(good));
        }
        for (bad, why) in [
            (&b""[..], "empty"),
            (b".", "not a plain file name"),
            (b"..", "not a plain file name"),
            (b"../x", "separator"),
            (b"/abs", "absolute"),
            (b"a/b", "separator"),
            (b"a\\b", "separator"),
            (b"a\0b", "NUL"),
            (b"\xff\xfe", "UTF-8"),
            (&[b'a'; 256][..], "longer than 255"),
        ] {
            match check_name(bad) {
                Ok(n) => panic!("{n:?} accepted"),
                Err(e) => assert!(e.contains(why), "{bad:?}: {e}"),
            }
        }
    }
}
