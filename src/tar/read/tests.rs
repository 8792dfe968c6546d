//! Tests of the tar member loop.
use super::*;

#[test]
fn numeric_fields_and_padding() {
    assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
    assert_eq!(parse_octal(b"  17 \0\0\0"), Some(0o17));
    assert_eq!(parse_octal(b"\0\0\0\0"), Some(0));
    assert_eq!(parse_octal(b"0000689\0"), None);
    assert_eq!(parse_decimal(b"1024"), Some(1024));
    for bad in [&b""[..], b"+1", b"-1", b" 1", b"99999999999999999999"] {
        assert_eq!(parse_decimal(bad), None, "{bad:?}");
    }
    assert_eq!(
        [0, 1, 511, 512, 513].map(padding),
        [0, 511, 1, 0, 511],
        "padding to the next block"
    );
}

#[test]
fn text_records_are_kept_only_for_the_dialect_that_asks() -> Result<()> {
    let mut d = Dialect {
        what: "test tar",
        noun: "tar",
        what_in_limits: false,
        buffer: 1024,
        pax_limit: 1024,
        text_records: &[],
    };
    let data = b"13 X.key=abc\n9 size=7\n";
    let plain = parse_pax(&d, data)?;
    assert_eq!((plain.text("X.key"), plain.size), (None, Some(7)));
    d.text_records = &["X.key"];
    assert_eq!(parse_pax(&d, data)?.text("X.key"), Some("abc"));
    let e = parse_pax(&d, b"12 X.key=\xff\xfe\n").expect_err("not UTF-8");
    assert!(e.to_string().contains("not UTF-8"), "{e}");
    Ok(())
}
