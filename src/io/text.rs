//! Text from outside (ref names, titles, annotations, paths) made safe to
//! show: control characters, bidi controls and invisible characters would
//! let a crafted name forge output lines, recolour a terminal or reorder
//! what a reader sees.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal as it is: C0 and C1 controls,
/// DEL, bidi controls, zero-width and other invisible formatting
/// characters, and the Unicode line and paragraph separators.
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{ad}' | '\u{61c}' | '\u{180e}'
        | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// `s` with every [hidden](is_hidden) character escaped as Rust writes it
/// (`\n`, `\t`, `\r`, `\u{1b}`); when anything is escaped, backslashes are
/// doubled too, so the escapes cannot be confused with the text. Text with
/// nothing hidden is returned as it is.
///
/// ```
/// use epoch_store::io::text::escape;
/// assert_eq!(escape("vm:v1"), "vm:v1");
/// assert_eq!(escape("a\nb\u{202e}"), "a\\nb\\u{202e}");
/// ```
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` as a shell word a user can paste: as it is when it holds only
/// characters that need no quoting, in single quotes when it holds no
/// hidden character or quote, otherwise in bash's `$'...'` with escapes.
///
/// ```
/// use epoch_store::io::text::shell_quote;
/// assert_eq!(shell_quote("vm:v1"), "vm:v1");
/// assert_eq!(shell_quote("a b"), "'a b'");
/// assert_eq!(shell_quote("a\nb"), "$'a\\nb'");
/// assert_eq!(shell_quote(""), "''");
/// ```
pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._:@+/=,%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return s.to_string();
    }
    if !s.chars().any(|c| is_hidden(c) || c == '\'') {
        return format!("'{s}'");
    }
    let mut out = String::from("$'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && is_hidden(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_hidden(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_escaped_and_nothing_else() {
        assert_eq!(
            escape("ghcr.io/x/ubuntu:24.04 ü"),
            "ghcr.io/x/ubuntu:24.04 ü"
        );
        assert_eq!(escape("\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("a\\b\n"), "a\\\\b\\n");
        assert_eq!(escape("x\u{2028}y\u{85}"), "x\\u{2028}y\\u{85}");
        for c in ['\u{200e}', '\u{202a}', '\u{2066}', '\u{feff}', '\0', '\x7f'] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '中', '\u{a0}'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }

    #[test]
    fn shell_quoting_round_trips_through_bash() {
        for s in ["a\nb", "it's", "\x1b[0m", "rtl\u{202e}x", "", "a b", "a\\b"] {
            let q = shell_quote(s);
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!("printf %s {q}"))
                .output()
                .expect("bash runs");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s, "{q}");
        }
    }
}
