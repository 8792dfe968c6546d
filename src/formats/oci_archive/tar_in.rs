//! Reading an OCI archive's tar stream with the crate's own member loop
//! ([`crate::tar::read`], as the cocoon stream reader does), because the `tar` crate's
//! reader buffers PAX headers and GNU long names whatever their size.
//! Every extension header is size-capped before it is read; bodies are
//! streamed.

use std::io::{self, Read};

use super::ARCHIVE;
use crate::error::{Error, Result};
use crate::tar::read::{Body, Dialect, TarStream, type_name, unknown_type};

/// How errors name the archive, and what it is read with: a 1 MiB buffer,
/// PAX extended headers up to 1 MiB (as Go's `archive/tar`).
const DIALECT: Dialect = Dialect {
    what: ARCHIVE,
    noun: "archive",
    what_in_limits: true,
    buffer: 1 << 20,
    pax_limit: 1 << 20,
    text_records: &["linkpath"],
};

pub(crate) fn bad(reason: impl Into<String>) -> Error {
    DIALECT.bad(reason)
}

pub(crate) fn read_error(e: io::Error) -> Error {
    DIALECT.read_error(e)
}

/// What a member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    /// A symbolic link (docker save's `<id>/layer.tar` for a layer it
    /// already wrote); [`Member::link`] is its target.
    Symlink,
}

/// A member's header, its name normalized (no `./` prefix, no trailing
/// `/`) and checked to be a relative path without `..`.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub kind: Kind,
    pub name: String,
    pub size: u64,
    /// A symlink's target as written (UTF-8); empty for other kinds.
    pub link: String,
}

/// Reads the members of a tar stream one by one, without buffering bodies.
pub(crate) struct TarIn<R: Read> {
    stream: TarStream<R>,
}

impl<R: Read> TarIn<R> {
    /// Wraps `reader`, detecting gzip by its magic (`1f 8b`).
    pub(crate) fn new(reader: R) -> Result<TarIn<R>> {
        match TarStream::new(reader, DIALECT)? {
            Some(stream) => Ok(TarIn { stream }),
            None => Err(bad("the stream is empty; expected a tar of an OCI layout")),
        }
    }

    /// The next member (its body unread), or `None` after the
    /// end-of-archive marker and a trailer of zeros. Whatever is left of
    /// the previous body is skipped first. After an error, every call fails.
    pub(crate) fn next_member(&mut self) -> Result<Option<Member>> {
        if self.stream.failed() {
            return Err(bad(
                "reading already failed; the rest of the archive cannot be trusted",
            ));
        }
        let r = self.read_member();
        match &r {
            Ok(Some(member)) => self.stream.start_body(&member.name, member.size),
            Ok(None) => {}
            Err(_) => self.stream.fail(),
        }
        r
    }

    /// A reader of the current member's body: exactly its size, failing with
    /// `UnexpectedEof` if the stream ends first.
    pub(crate) fn body(&mut self) -> Body<'_, R> {
        self.stream.body()
    }

    /// The offset in the (decompressed) tar of the current member's body.
    pub(super) fn body_offset(&self) -> u64 {
        self.stream.position()
    }

    /// Whether the archive is gzip-compressed.
    pub(super) fn is_gzip(&self) -> bool {
        self.stream.is_gzip()
    }

    /// Reads the current member's whole body (the caller checked its size).
    pub(crate) fn read_body(&mut self, what: &str) -> Result<Vec<u8>> {
        self.stream.read_body(what)
    }

    /// Reads the next member's header, its extension headers applied, and
    /// checks it is a regular file or directory with an acceptable name.
    fn read_member(&mut self) -> Result<Option<Member>> {
        let Some(header) = self.stream.next_header()? else {
            return Ok(None);
        };
        if header.kind == b'g' {
            return Err(bad(
                "a PAX global header (type 'g'), whose records would apply to every \
                 member; OCI archives do not have one",
            ));
        }
        let shown = String::from_utf8_lossy(&header.name).into_owned();
        let kind = match header.kind {
            b'0' | b'\0' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            other => {
                let what = match other {
                    b'K' => "GNU long link name".to_string(),
                    other => type_name(other).map_or_else(|| unknown_type(other), String::from),
                };
                return Err(bad(format!(
                    "member {shown:?} is a {what}; an OCI archive holds only regular \
                     files and directories"
                )));
            }
        };
        if header.pax.gnu_sparse {
            return Err(bad(format!(
                "member {shown:?} is in GNU tar's sparse format, which is not \
                 supported"
            )));
        }
        let name = normalize(&header.name)
            .map_err(|why| bad(format!("member name {shown:?} refused: {why}")))?;
        if kind != Kind::File && header.size != 0 {
            return Err(bad(format!(
                "directory or link member {shown:?} has a body"
            )));
        }
        let link = match header.pax.text("linkpath") {
            Some(text) => text.to_string(),
            None => String::from_utf8(header.link.clone())
                .map_err(|_| bad(format!("the link target of {shown:?} is not UTF-8")))?,
        };
        Ok(Some(Member {
            kind,
            name,
            size: header.size,
            link,
        }))
    }
}

/// Normalizes a member name: `./` prefixes and trailing `/` removed, `.`
/// (the archive's root) becomes the empty name. Refuses NUL, non-UTF-8,
/// absolute paths, backslashes, and empty, `.` or `..` components.
pub(crate) fn normalize(raw: &[u8]) -> Result<String, &'static str> {
    if raw.contains(&0) {
        return Err("it contains a NUL byte");
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err("it is not UTF-8");
    };
    if text.starts_with('/') {
        return Err("it is an absolute path");
    }
    if text.contains('\\') {
        return Err("it contains a backslash");
    }
    let mut rest = text;
    while let Some(r) = rest.strip_prefix("./") {
        rest = r;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest == "." {
        return Ok(String::new());
    }
    for part in rest.split('/') {
        match part {
            ".." => return Err("it has a `..` component"),
            "" | "." => return Err("it has an empty or `.` component"),
            _ => {}
        }
    }
    Ok(rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_or_refused() {
        for (raw, want) in [
            ("oci-layout", "oci-layout"),
            ("./index.json", "index.json"),
            ("././blobs/sha256/", "blobs/sha256"),
            ("blobs/", "blobs"),
            ("./", ""),
            (".", ""),
        ] {
            assert_eq!(normalize(raw.as_bytes()).as_deref(), Ok(want), "{raw}");
        }
        for (raw, why) in [
            (&b"../x"[..], ".."),
            (b"blobs/../../x", ".."),
            (b"/etc/passwd", "absolute"),
            (b"a\\b", "backslash"),
            (b"a\0b", "NUL"),
            (b"a//b", "empty"),
            (b"a/./b", "empty"),
            (b"\xff", "UTF-8"),
        ] {
            let e = normalize(raw).expect_err("refused");
            assert!(e.contains(why), "{raw:?}: {e}");
        }
    }
}
