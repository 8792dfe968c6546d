//! The crate's one tar writer, shared by every format that writes a tar
//! stream (the cocoon snapshot stream, OCI archives): deterministic ustar
//! headers, PAX extended headers for what ustar cannot hold (names over 100
//! bytes, sizes of 8 GiB and more) and for a format's own records, padding
//! to [`BLOCK`], the end-of-archive marker, and the stray byte that keeps a
//! failed stream from looking complete ([`leave_incomplete`]).
//!
//! What differs between the formats is a [`HeaderStyle`]: each keeps the
//! bytes it has always written.

use std::io::{self, Write};

use tar::{EntryType, Header};

use super::BLOCK;
use crate::io::counting::Counting;

/// The ustar name field.
pub(crate) const USTAR_NAME_LEN: usize = 100;
/// The largest size a ustar size field holds in octal (11 digits: 8 GiB - 1).
pub(crate) const USTAR_SIZE_MAX: u64 = 0o777_7777_7777;
/// The end-of-archive marker: two zero blocks.
pub(crate) const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// How a format's headers look. Two formats, two styles, both kept as they
/// were before the writers were merged, so that every stream already
/// written (and every checksum of one) stays the same.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeaderStyle {
    /// The mtime of every header.
    pub(crate) mtime: u64,
    /// How a PAX extended header is named.
    pub(crate) pax_name: PaxName,
}

/// The name of a PAX extended header (readers ignore it; it shows only to
/// a reader that does not know PAX).
#[derive(Clone, Copy, Debug)]
pub(crate) enum PaxName {
    /// `PaxHeaders.0/<name>`, as Go's `archive/tar` (cocoon's writer) names
    /// it; the ustar name field cuts it at 100 bytes.
    GoWriter,
    /// `PaxHeaders/<the name's last 80 bytes>`, as the OCI archive writer
    /// has always named it.
    Tail80,
}

/// cocoon's snapshot stream: the `tar` crate's fixed
/// [`tar::DETERMINISTIC_TIMESTAMP`], Go's PAX header names.
pub(crate) const GO_STYLE: HeaderStyle = HeaderStyle {
    mtime: tar::DETERMINISTIC_TIMESTAMP,
    pax_name: PaxName::GoWriter,
};

/// OCI archives: mtime 0, [`PaxName::Tail80`].
pub(crate) const OCI_STYLE: HeaderStyle = HeaderStyle {
    mtime: 0,
    pax_name: PaxName::Tail80,
};

impl HeaderStyle {
    /// Writes a member's headers: when `pax` (from [`pax_data`]) is not
    /// empty, a PAX extended header holding it, padded; then the ustar
    /// header of `name`, `mode`, `kind` and `size`.
    pub(crate) fn write_headers<W: Write + ?Sized>(
        &self,
        out: &mut W,
        name: &str,
        mode: u32,
        kind: EntryType,
        size: u64,
        pax: &[u8],
    ) -> io::Result<()> {
        self.write_pax(out, name, pax)?;
        out.write_all(self.header(name, mode, size, kind).as_bytes())
    }

    /// Writes the PAX extended header of the member `name` holding `pax`
    /// (from [`pax_data`]), padded; nothing when `pax` is empty.
    pub(crate) fn write_pax<W: Write + ?Sized>(
        &self,
        out: &mut W,
        name: &str,
        pax: &[u8],
    ) -> io::Result<()> {
        if !pax.is_empty() {
            let pax_name = match self.pax_name {
                PaxName::GoWriter => format!("PaxHeaders.0/{name}"),
                PaxName::Tail80 => format!("PaxHeaders/{}", &name[name.len().saturating_sub(80)..]),
            };
            let h = self.header(&pax_name, 0o644, pax.len() as u64, EntryType::XHeader);
            out.write_all(h.as_bytes())?;
            out.write_all(pax)?;
            out.write_all(padding(pax.len() as u64))?;
        }
        Ok(())
    }

    /// A ustar header: owner 0, this style's mtime; a name over 100 bytes
    /// is cut (a PAX `path` record carries it whole), a size over 8 GiB is
    /// written base-256 (a PAX `size` record carries it too).
    pub(crate) fn header(&self, name: &str, mode: u32, size: u64, kind: EntryType) -> Header {
        let mut h = Header::new_ustar();
        let bytes = name.as_bytes();
        let n = bytes.len().min(USTAR_NAME_LEN);
        h.as_old_mut().name[..n].copy_from_slice(&bytes[..n]);
        h.set_mode(mode & 0o7777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_cksum();
        h
    }
}

/// The headers Go's `archive/tar` `Writer.WriteHeader` writes for a
/// regular file with only `Name`, `Size`, `Mode` and `ModTime` set (as
/// lf-edge's `tgz.Compress` sets them), byte for byte: a ustar header with
/// Go's field forms (devmajor and devminor written as octal zeros, the
/// checksum as six digits, NUL, space); for a name over 100 bytes or not
/// ASCII, or a size of 8 GiB or more, first a PAX extended header named
/// `PaxHeaders.0/<name>` (mode, owner and mtime 0, no device fields) with
/// the `path` and `size` records, and the ustar name cut to its ASCII
/// characters. `mode` keeps only the permission bits; `mtime` must fit 11
/// octal digits.
pub(crate) fn go_file_headers(name: &str, mode: u32, mtime: u64, size: u64) -> Vec<u8> {
    let long_name = name.len() > USTAR_NAME_LEN || !name.is_ascii();
    let big = size > USTAR_SIZE_MAX;
    let mut out = Vec::with_capacity(3 * BLOCK);
    if long_name || big {
        let mut records = Vec::new();
        if long_name {
            records.push(("path", name.to_string()));
        }
        if big {
            records.push(("size", size.to_string()));
        }
        let data = pax_data(&records);
        let pax_name = format!("PaxHeaders.0/{name}");
        let block = go_block(&pax_name, 0, data.len() as u64, 0, b'x', false);
        out.extend_from_slice(&block);
        out.extend_from_slice(&data);
        out.extend_from_slice(padding(data.len() as u64));
    }
    let size_field = if big { 0 } else { size };
    out.extend_from_slice(&go_block(name, mode & 0o777, size_field, mtime, b'0', true));
    out
}

/// One header block as Go's `archive/tar` formats it: the name's ASCII
/// characters cut at 100 bytes, octal fields zero-padded and NUL-ended,
/// ustar magic, the device fields only when `devices` (Go's
/// `writeRawFile`, which writes PAX headers, leaves them empty).
fn go_block(name: &str, mode: u32, size: u64, mtime: u64, flag: u8, devices: bool) -> [u8; BLOCK] {
    fn octal(field: &mut [u8], value: u64) {
        let digits = format!("{value:0width$o}", width = field.len() - 1);
        let n = digits.len().min(field.len() - 1);
        field[..n].copy_from_slice(&digits.as_bytes()[digits.len() - n..]);
        field[n] = 0;
    }
    let mut b = [0u8; BLOCK];
    let ascii: Vec<u8> = name.bytes().filter(u8::is_ascii).collect();
    let mut n = ascii.len().min(USTAR_NAME_LEN);
    while n > 0 && ascii[n - 1] == b'/' && flag == b'x' {
        n -= 1;
    }
    b[..n].copy_from_slice(&ascii[..n]);
    octal(&mut b[100..108], u64::from(mode));
    octal(&mut b[108..116], 0);
    octal(&mut b[116..124], 0);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime);
    b[156] = flag;
    b[257..265].copy_from_slice(b"ustar\x0000");
    if devices {
        octal(&mut b[329..337], 0);
        octal(&mut b[337..345], 0);
    }
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    octal(&mut b[148..155], sum);
    b[155] = b' ';
    b
}

/// The PAX records a member of `name` and `size` needs: `path` first when
/// the name is over 100 bytes, then `extra` as given, then `size` when the
/// size is over [`USTAR_SIZE_MAX`].
pub(crate) fn pax_records<'a>(
    name: &str,
    size: u64,
    mut extra: Vec<(&'a str, String)>,
) -> Vec<(&'a str, String)> {
    if name.len() > USTAR_NAME_LEN {
        extra.insert(0, ("path", name.to_string()));
    }
    if size > USTAR_SIZE_MAX {
        extra.push(("size", size.to_string()));
    }
    extra
}

/// PAX records, each `"<len> <key>=<value>\n"` with `len` counting itself.
pub(crate) fn pax_data(records: &[(&str, String)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while body + len.to_string().len() != len {
            len = body + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
    }
    data
}

/// The zeros that pad a body of `len` bytes to a whole block.
pub(crate) fn padding(len: u64) -> &'static [u8] {
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let n = (BLOCK - (len % BLOCK as u64) as usize) % BLOCK;
    &ZEROS[..n]
}

/// After a write failed midway: makes sure the stream cannot be taken for
/// a complete one, then flushes (errors ignored: the write has failed
/// already). A stream that stops between members looks complete to Go's
/// `archive/tar` (cocoon's and skopeo's reader; it needs no end-of-archive
/// marker): one more byte makes it end inside a header, which every reader
/// refuses.
pub(crate) fn leave_incomplete<W: Write>(out: &mut Counting<W>) {
    if out.count > 0 && out.count.is_multiple_of(BLOCK as u64) {
        let _ = out.inner.write_all(&[0]);
    }
    let _ = out.inner.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (value_len, want) in [(0usize, 5usize), (1, 6), (5, 11), (93, 99), (94, 101)] {
            let data = pax_data(&[("k", "v".repeat(value_len))]);
            assert_eq!(data.len(), want, "{value_len}");
            let prefix: String = data
                .iter()
                .take_while(|&&b| b != b' ')
                .map(|&b| b as char)
                .collect();
            assert_eq!(prefix.parse::<usize>().ok(), Some(data.len()));
        }
    }

    /// The bytes Go 1.26's `archive/tar` wrote for `cfg.json`, mode 0644,
    /// mtime 1000, 8 bytes (lf-edge's `tgz.Compress`): the first 512.
    #[test]
    fn go_headers_are_what_go_writes() {
        let h = go_file_headers("cfg.json", 0o100644, 1000, 8);
        assert_eq!(h.len(), BLOCK);
        assert_eq!(&h[..8], b"cfg.json");
        let fields: &[&[u8]] = &[
            b"0000644\0",
            b"0000000\0",
            b"0000000\0",
            b"00000000010\0",
            b"00000001750\0",
            b"010643\0 ",
        ];
        assert_eq!(&h[100..156], fields.concat().as_slice());
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], b"0000000\x000000000\x00");
        let header = tar::Header::from_byte_slice(&h);
        assert_eq!(header.cksum().unwrap(), 0o10643);
        let long = go_file_headers(&"n".repeat(101), 0o644, 0, 1);
        assert_eq!(long.len(), 3 * BLOCK);
        assert_eq!(&long[..16], b"PaxHeaders.0/nnn");
        assert_eq!(long[156], b'x');
        assert_eq!(&long[2 * BLOCK + 100..2 * BLOCK + 101], b"0");
    }

    #[test]
    fn padding_fills_the_last_block() {
        assert_eq!(padding(0).len(), 0);
        assert_eq!(padding(1).len(), 511);
        assert_eq!(padding(512).len(), 0);
        assert_eq!(padding(513).len(), 511);
    }

    #[test]
    fn records_put_path_first_and_size_last() {
        let name = "n".repeat(101);
        let got = pax_records(&name, USTAR_SIZE_MAX + 1, vec![("k", "v".into())]);
        let keys: Vec<&str> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["path", "k", "size"]);
        assert!(pax_records("short", USTAR_SIZE_MAX, Vec::new()).is_empty());
    }

    #[test]
    fn a_failed_stream_never_ends_on_a_block_boundary() {
        let mut out = Counting::new(Vec::new());
        leave_incomplete(&mut out);
        assert!(out.inner.is_empty(), "nothing written: nothing added");
        let mut out = Counting::new(Vec::new());
        out.write_all(&[0; BLOCK]).unwrap();
        leave_incomplete(&mut out);
        assert_eq!(out.inner.len(), BLOCK + 1);
        let mut out = Counting::new(Vec::new());
        out.write_all(&[0; 100]).unwrap();
        leave_incomplete(&mut out);
        assert_eq!(out.inner.len(), 100);
    }
}
