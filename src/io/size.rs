//! SIZE arguments: plain bytes or binary suffixes (`8MiB`, `512MiB`,
//! `1GiB`); and sizes for humans, in the same units.

use crate::error::{Error, Result};

/// A size for humans: `812 B`, `1.5 KiB`, `512.0 MiB`.
///
/// ```
/// use epoch_store::io::size::human;
/// assert_eq!(human(812), "812 B");
/// assert_eq!(human(512 << 20), "512.0 MiB");
/// ```
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Parses a size: digits, optionally followed by `B`, `KiB`, `MiB`, `GiB`,
/// `TiB` (or their one-letter forms `K`, `M`, `G`, `T`, also binary), case
/// insensitive. Decimal units (`MB`, `GB`) are refused rather than guessed.
///
/// ```
/// use epoch_store::io::size::parse_size;
/// assert_eq!(parse_size("512MiB")?, 512 << 20);
/// assert_eq!(parse_size("1GiB")?, 1 << 30);
/// assert_eq!(parse_size("4096")?, 4096);
/// assert!(parse_size("1GB").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] saying what was expected.
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = |why: &str| {
        Error::InvalidArgument(format!(
            "invalid size {s:?}: {why} (examples: 4096, 8MiB, 512MiB, 1GiB)"
        ))
    };
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad("it must start with a whole number"));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| bad("the number is too large"))?;
    let unit = t[digits..].trim();
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        "kb" | "mb" | "gb" | "tb" => {
            return Err(bad(
                "decimal units are ambiguous; use KiB, MiB, GiB or plain bytes",
            ));
        }
        _ => return Err(bad("unknown unit")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| bad("it does not fit in 64 bits"))
}

/// The sum of `sizes`, or `None` past `u64::MAX`: sizes read from a
/// manifest or a config come from outside, and a hostile one must get an
/// error, not a wrap (release) or a panic (debug).
pub(crate) fn checked_total(sizes: impl IntoIterator<Item = u64>) -> Option<u64> {
    sizes.into_iter().try_fold(0u64, u64::checked_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_suffixes_and_plain_bytes() -> Result<()> {
        assert_eq!(parse_size("0")?, 0);
        assert_eq!(parse_size("8MiB")?, 8 << 20);
        assert_eq!(parse_size("8mib")?, 8 << 20);
        assert_eq!(parse_size("8 MiB")?, 8 << 20);
        assert_eq!(parse_size("1900M")?, 1900 << 20);
        assert_eq!(parse_size("4GiB")?, 4 << 30);
        assert_eq!(parse_size("2T")?, 2 << 40);
        assert_eq!(parse_size("123B")?, 123);
        Ok(())
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5GiB",
            "1GB",
            "1 parsec",
            "99999999999999999999",
            "20000000TiB",
            "0x10",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
