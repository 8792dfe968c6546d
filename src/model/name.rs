//! Ref names: the `org.opencontainers.image.ref.name` annotation grammar.
//!
//! ```text
//! ref       ::= component ("/" component)*
//! component ::= alphanum (separator alphanum)*
//! separator ::= [-._:@+] | "--"
//! ```
//! By convention a ref is `name:tag` (`sre-agent-bot:v2`,
//! `ghcr.io/cocoonstack/ubuntu:24.04`); any valid ref name (`base`) is accepted.

use crate::error::{Error, Result};

/// Longest ref name accepted; far beyond any real one, short enough to print.
pub const MAX_REF_LEN: usize = 1024;

/// Checks that `name` is a valid ref name.
///
/// ```
/// use epoch_store::validate_ref;
/// assert!(validate_ref("ghcr.io/cocoonstack/ubuntu:24.04").is_ok());
/// assert!(validate_ref("../x").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidRef`] saying which rule is broken.
pub fn validate_ref(name: &str) -> Result<()> {
    let bad = |reason: String| Error::InvalidRef {
        value: name.chars().take(200).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("a ref name cannot be empty".into()));
    }
    if name.len() > MAX_REF_LEN {
        return Err(bad(format!("longer than {MAX_REF_LEN} bytes")));
    }
    for component in name.split('/') {
        validate_component(component).map_err(&bad)?;
    }
    Ok(())
}

fn validate_component(c: &str) -> std::result::Result<(), String> {
    let b = c.as_bytes();
    if b.is_empty() {
        return Err("empty path component (leading, trailing or double '/')".into());
    }
    let alnum = |x: u8| x.is_ascii_alphanumeric();
    let sep = |x: u8| matches!(x, b'-' | b'.' | b'_' | b':' | b'@' | b'+');
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(format!(
            "component {c:?} must start and end with a letter or digit"
        ));
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: one of [-._:@+], or exactly "--".
        let run = b[i..].iter().take_while(|&&x| !alnum(x)).count();
        let ok = (run == 1 && sep(b[i])) || &b[i..i + run] == b"--";
        if !ok {
            let shown = String::from_utf8_lossy(&b[i..i + run]);
            return Err(format!(
                "{shown:?} is not allowed in a ref name (letters, digits, and single -._:@+ or -- between them)"
            ));
        }
        i += run;
    }
    Ok(())
}

/// Splits a conventional `name:tag` ref at its last `:` after the last `/`.
/// A ref with no tag part is returned as `(ref, None)`.
pub fn split_tag(name: &str) -> (&str, Option<&str>) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    }
}

/// A ref name that follows the grammar: made only by [`RefName::new`] (or
/// `parse`), which checks it with [`validate_ref`], so that an `index.json`
/// entry cannot be given a name that was never checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefName(String);

impl RefName {
    /// Checks `name` and wraps it.
    ///
    /// # Errors
    /// [`Error::InvalidRef`] naming what is wrong.
    pub fn new(name: impl Into<String>) -> Result<RefName> {
        let name = name.into();
        validate_ref(&name)?;
        Ok(RefName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for RefName {
    type Err = Error;
    fn from_str(s: &str) -> Result<RefName> {
        RefName::new(s)
    }
}

impl std::fmt::Display for RefName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RefName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The longest file name accepted, in bytes (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Why `name` is not a plain file name, or `None` if it is one. The one
/// rule for every name that becomes a path (a snapshot's files, a tar
/// member, an OS image's disk, a legacy store's filenames): not empty, not
/// `.` or `..`, no `/` and no `\` (cocoon's Go reader and Windows hosts
/// take it as a separator), no NUL, at most [`NAME_MAX`] bytes.
pub(crate) fn file_name_flaw(name: &str) -> Option<String> {
    Some(if name.is_empty() {
        "the name is empty".into()
    } else if name == "." || name == ".." {
        "it is not a plain file name but a directory".into()
    } else if name.starts_with('/') {
        "it is an absolute path, not a plain file name".into()
    } else if name.contains('/') || name.contains('\\') {
        "it contains a path separator ('/' or '\\'); only plain file names are accepted".into()
    } else if name.contains('\0') {
        "it contains a NUL byte".into()
    } else if name.len() > NAME_MAX {
        format!("it is {} bytes, longer than {NAME_MAX}", name.len())
    } else {
        return None;
    })
}

/// Checks that `name` is a plain file name: not empty, not `.` or `..`, no
/// `/` and no `\`, no NUL, at most [`NAME_MAX`] bytes. Titles in manifests,
/// names in tar streams and names in a directory being packed come from
/// outside; nothing else may become a path.
///
/// # Errors
/// [`Error::InvalidArgument`] naming what is wrong.
pub fn validate_file_name(name: &str) -> Result<()> {
    match file_name_flaw(name) {
        None => Ok(()),
        Some(why) => Err(Error::InvalidArgument(format!(
            "refusing file name {name:?}: {why}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_plain_are_refused() {
        let long = "x".repeat(NAME_MAX + 1);
        for bad in ["", ".", "..", "../x", "/abs", "a/b", "a\0b", "a\\b", &long] {
            assert!(validate_file_name(bad).is_err(), "{bad:?}");
        }
        for ok in [
            "memory-ranges",
            "overlay.qcow2",
            ".hidden",
            "data-1.raw",
            "a b",
        ] {
            assert!(validate_file_name(ok).is_ok(), "{ok:?}");
        }
    }

    /// Packs a sparse file in chunks and restores it: same bytes, same holes.

    #[test]
    fn accepts_the_grammar() {
        for ok in [
            "base",
            "sre-agent-bot:v2",
            "ghcr.io/cocoonstack/ubuntu:24.04",
            "a--b",
            "a@b+c",
            "v1.0_rc-1",
            "x/y/z:1",
        ] {
            assert!(validate_ref(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_is_not_grammar() {
        for bad in [
            "", "../x", "/abs", "a/", "a//b", ".", "a..b", "a---b", "-a", "a-", "a b", "a\0b", "ü",
            "a:", ":a", "a/../b", "a\\b",
        ] {
            assert!(validate_ref(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_ref(&"a".repeat(MAX_REF_LEN + 1)).is_err());
    }

    #[test]
    fn splits_name_and_tag() {
        assert_eq!(
            split_tag("ghcr.io:5000/x/ubuntu:24.04"),
            ("ghcr.io:5000/x/ubuntu", Some("24.04"))
        );
        assert_eq!(split_tag("localhost:5000/x"), ("localhost:5000/x", None));
        assert_eq!(split_tag("base"), ("base", None));
    }
}
