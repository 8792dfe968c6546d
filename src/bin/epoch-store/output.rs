//! Human-readable sizes and durations, and JSON printing.

use std::time::Duration;

use epoch_store::io::text::escape;

/// `1536` -> `1.5 KiB`.
pub fn size(bytes: u64) -> String {
    epoch_store::io::size::human(bytes)
}

/// A duration for humans: `850ms`, `3.2s`, `4m05s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// Throughput: `1.2 GiB/s`.
pub fn rate(bytes: u64, d: Duration) -> String {
    let secs = d.as_secs_f64().max(1e-9);
    format!("{}/s", size((bytes as f64 / secs) as u64))
}

/// Lays out a table: every column as wide as its widest cell (counted in
/// characters), two spaces between columns, `right` ones right-aligned,
/// the last column unpadded. Cells must already be escaped.
pub fn table<const N: usize>(
    header: &[String; N],
    rows: &[[String; N]],
    right: &[bool; N],
) -> Vec<String> {
    let mut widths = [0usize; N];
    for row in std::iter::once(header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(header)
        .chain(rows)
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - cell.chars().count());
                if right[i] {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < N {
                        line.push_str(&pad);
                    }
                }
            }
            line
        })
        .collect()
}

/// Prints a line on stderr, hidden characters escaped, in one write (tried
/// twice: an error message is worth a second attempt); if stderr cannot be
/// written there is no one to tell.
pub fn warn(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut text = escape(&line.to_string()).into_owned();
    text.push('\n');
    let mut err = std::io::stderr().lock();
    if err.write_all(text.as_bytes()).is_err() {
        let _ = err.write_all(text.as_bytes());
    }
}

/// Prints a line on stdout, hidden characters escaped (names from a
/// crafted `index.json` must not forge lines or drive the terminal).
pub fn line(line: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write;
    let line = line.to_string();
    writeln!(std::io::stdout().lock(), "{}", escape(&line))
}

/// Prints a value as pretty JSON on stdout. Hidden characters beyond
/// ASCII (bidi controls, C1 controls, ...) are written as `\uXXXX`
/// escapes, as serde_json writes C0 controls: the same JSON to a parser,
/// harmless on a terminal. A closed pipe is an `io::Error` of kind
/// `BrokenPipe`, which `main` takes for success.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    use std::io::Write;
    let text = serde_json::to_string_pretty(value)?;
    let mut safe = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if c >= '\x7f' && epoch_store::io::text::is_hidden(c) {
            // Only inside strings: JSON's own syntax is ASCII.
            let _ = write!(safe, "\\u{:04x}", c as u32);
        } else {
            safe.push(c);
        }
    }
    safe.push('\n');
    std::io::stdout().lock().write_all(safe.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(3200)), "3.2s");
        assert_eq!(duration(Duration::from_secs(245)), "4m05s");
    }
}
