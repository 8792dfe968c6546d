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

/// The files of a stream and what it passed over.
fn files_and_skipped(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    let (mut r, _) = TarReader::new(bytes)?;
    let mut names = Vec::new();
    while let Some((h, _)) = r.next_file()? {
        names.push(h.name.clone());
    }
    Ok((names, r.skipped().to_vec()))
}

/// cocoon's import and cocoon-common's push pass over what is not a
/// regular file (`utils/tar.go:ExtractTar`, `snapshot/push.go`): so does
/// the reader, saying so; nothing of them is created.
#[test]
fn links_devices_fifos_and_directories_are_passed_over() -> Result<()> {
    for (kind, needle) in [
        (b'1', "hard link"),
        (b'2', "symbolic link"),
        (b'3', "character device"),
        (b'4', "block device"),
        (b'5', "directory"),
        (b'6', "FIFO"),
        (b'Z', "unknown type 'Z'"),
    ] {
        let mut out = start();
        member(&mut out, b"cow.raw", kind, b"");
        member(&mut out, b"state.json", b'0', b"{}");
        let (names, skipped) = files_and_skipped(&end(out))?;
        assert_eq!(names, ["state.json"], "{needle}");
        assert_eq!(skipped.len(), 1, "{needle}");
        assert!(
            skipped[0].contains(needle) && skipped[0].contains("cow.raw"),
            "{skipped:?}"
        );
    }
    // A body on a passed-over member is skipped whole.
    let mut out = start();
    member(&mut out, b"odd", b'Z', &[7u8; 1000]);
    member(&mut out, b"state.json", b'0', b"{}");
    assert_eq!(files_and_skipped(&end(out))?.0, ["state.json"]);
    // Also through the tar crate's own builder, as other tools write them.
    let mut b = tar::Builder::new(start());
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "state.json", "/etc/shadow")
        .map_err(|e| Error::io("build", "test", e))?;
    let (names, skipped) =
        files_and_skipped(&b.into_inner().map_err(|e| Error::io("build", "test", e))?)?;
    assert!(
        names.is_empty() && skipped[0].contains("symbolic link"),
        "{skipped:?}"
    );
    Ok(())
}

/// Members that carry a file's data under another type are refused, not
/// passed over: that would drop data without a word.
#[test]
fn members_with_data_under_another_type_are_refused() {
    for (kind, needle) in [(b'7', "contiguous file"), (b'S', "GNU sparse file")] {
        let mut out = start();
        member(&mut out, b"cow.raw", kind, b"");
        refused(&end(out), needle);
    }
    let mut out = start();
    member(&mut out, b"x", b'g', b"");
    refused(&end(out), "global header");
    let mut out = start();
    member(&mut out, b"x", b'K', b"/etc/shadow");
    member(&mut out, b"state.json", b'0', b"");
    refused(&end(out), "long link");
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
