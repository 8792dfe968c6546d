//! Part titles as GNU `split -d --additional-suffix=.FMT.part FILE FILE.`
//! writes them, and the joined file's name read back from them.

/// The suffix GNU `split -d` gives part `index` (zero-based) with its
/// default suffix length: `00` to `89`, then `9000` to `9899`, then
/// `990000` to `998999`, and so on (it widens by two digits and a leading
/// `9` each time a width runs out), so that part names sort in order.
///
/// ```
/// use epoch_store::formats::cocoon::os_image::split_suffix;
/// assert_eq!(split_suffix(0), "00");
/// assert_eq!(split_suffix(89), "89");
/// assert_eq!(split_suffix(90), "9000");
/// assert_eq!(split_suffix(989), "9899");
/// assert_eq!(split_suffix(990), "990000");
/// ```
pub fn split_suffix(index: u64) -> String {
    let (mut i, mut nines, mut digits, mut count) = (index, 0usize, 2usize, 90u64);
    while i >= count {
        i -= count;
        nines += 1;
        digits += 1;
        count = count.saturating_mul(10);
    }
    format!("{}{i:0digits$}", "9".repeat(nines))
}

/// The title of part `index` of file `name` in format `ext` (`qcow2`,
/// `raw`): `<name>.<suffix>.<ext>.part`, as
/// `split -b SIZE -d --additional-suffix=.<ext>.part <name> <name>.` names it.
///
/// ```
/// use epoch_store::formats::cocoon::os_image::part_title;
/// assert_eq!(part_title("win.qcow2", 1, "qcow2"), "win.qcow2.01.qcow2.part");
/// ```
pub fn part_title(name: &str, index: u64, ext: &str) -> String {
    format!("{name}.{}.{ext}.part", split_suffix(index))
}

/// Splits `<base>.<digits>.<ext>.part` into its three pieces.
fn parse(title: &str) -> Option<(&str, &str, &str)> {
    let rest = title.strip_suffix(".part")?;
    let (rest, ext) = rest.rsplit_once('.')?;
    let (base, digits) = rest.rsplit_once('.')?;
    let ext_ok = !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    let digits_ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    (!base.is_empty() && ext_ok && digits_ok).then_some((base, digits, ext))
}

/// The name of the file that parts with these titles (already sorted by
/// title) join into: their common `<base>`. The parts must all be named
/// `<base>.<suffix>.<ext>.part` with one base and one extension, and their
/// suffixes must count from zero with no gap, either as GNU `split -d`
/// numbers them ([`split_suffix`]) or as fixed-width numbers (`split -a N`):
/// a missing part would otherwise join into a damaged disk without notice.
///
/// # Errors
/// What is wrong, for the caller's error.
pub(super) fn joined_name(titles: &[&str]) -> Result<String, String> {
    let first = titles.first().ok_or("there are no parts")?;
    let (base, first_digits, ext) = parse(first).ok_or_else(|| {
        format!("part title {first:?} is not NAME.NN.FORMAT.part, as split -d names parts")
    })?;
    for (i, title) in titles.iter().enumerate() {
        let (b, digits, e) = parse(title).ok_or_else(|| {
            format!("part title {title:?} is not NAME.NN.FORMAT.part, as split -d names parts")
        })?;
        if b != base || e != ext {
            return Err(format!(
                "part {title:?} does not belong with {first:?}: parts of one image share NAME and FORMAT"
            ));
        }
        let gnu = digits == split_suffix(i as u64);
        let fixed = digits.len() == first_digits.len() && digits.parse::<u64>() == Ok(i as u64);
        if !gnu && !fixed {
            return Err(format!(
                "part {title:?} is number {i} in title order, but its suffix says otherwise: a part is missing or misnamed"
            ));
        }
    }
    Ok(base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_widen_as_gnu_split_does_and_sort_in_order() {
        assert_eq!(split_suffix(1), "01");
        assert_eq!(split_suffix(91), "9001");
        assert_eq!(split_suffix(90 + 900 + 9000), "99900000");
        assert_eq!(split_suffix(90 + 900 + 8999), "998999");
        let titles: Vec<String> = (0..12_000).map(|i| part_title("d.raw", i, "raw")).collect();
        let mut sorted = titles.clone();
        sorted.sort();
        assert_eq!(titles, sorted, "title order is part order");
        let refs: Vec<&str> = titles.iter().map(String::as_str).collect();
        assert_eq!(joined_name(&refs).unwrap(), "d.raw");
    }

    #[test]
    fn titles_parse_back_to_the_file_name() {
        assert_eq!(
            joined_name(&["win.qcow2.00.qcow2.part", "win.qcow2.01.qcow2.part"]).unwrap(),
            "win.qcow2"
        );
        assert_eq!(joined_name(&["a.b.c.00.raw.part"]).unwrap(), "a.b.c");
        // split -a 3: fixed width.
        assert_eq!(
            joined_name(&["x.000.raw.part", "x.001.raw.part"]).unwrap(),
            "x"
        );
        // Hostile bases come back as they are; the caller validates them.
        assert_eq!(joined_name(&["../x.00.raw.part"]).unwrap(), "../x");
    }

    #[test]
    fn inconsistent_titles_are_refused() {
        for bad in [
            &["x.qcow2"][..],
            &["x.00.part"],
            &[".00.raw.part"],
            &["x.0a.raw.part"],
            &["x.00.raw.part", "y.01.raw.part"],
            &["x.00.raw.part", "x.01.qcow2.part"],
            &["x.00.raw.part", "x.02.raw.part"],
            &["x.01.raw.part"],
            &["x.00.raw.part", "x.00.raw.part"],
            &[],
        ] {
            assert!(joined_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
