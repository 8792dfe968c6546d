//! Registry references as users write them: `HOST[:PORT]/REPO[:TAG|@DIGEST]`,
//! checked against the distribution spec's grammar before anything is sent.

use std::fmt;
use std::str::FromStr;

use crate::io::digest::Digest;

/// A repository in a registry, and optionally a tag or digest in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub host: String,
    /// The repository path (`team/app`).
    pub repository: String,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The digest, if one was given (it wins over a tag).
    pub digest: Option<Digest>,
}

impl Reference {
    /// What the manifest is fetched or pushed by: the digest, else the tag,
    /// else `latest`.
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// Whether `host` is this machine (plain HTTP is allowed only there
    /// without asking twice).
    pub fn is_loopback(&self) -> bool {
        let name = self
            .host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(h, p)| {
                if p.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    self.host.as_str()
                }
            });
        matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.starts_with("127.")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = String;

    fn from_str(s: &str) -> Result<Reference, String> {
        let bad = |why: &str| {
            format!("{s:?} is not a registry reference HOST[:PORT]/REPO[:TAG|@DIGEST]: {why}")
        };
        let s2 = s.strip_prefix("docker://").unwrap_or(s);
        let (rest, digest) = match s2.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| bad(&e.to_string()))?)),
            None => (s2, None),
        };
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no repository after the host"))?;
        if !valid_host(host) {
            return Err(bad(&format!("{host:?} is not a host[:port]")));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_string())),
            _ => (path, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(&format!(
                "tag {t:?}: at most 128 of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
            )));
        }
        if !valid_repository(repository) {
            return Err(bad(&format!(
                "repository {repository:?}: lowercase letters and digits, separated by `.`, `_`, `__`, `-` or `/`"
            )));
        }
        Ok(Reference {
            host: host.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || host.starts_with('[') => (n, Some(p)),
        _ => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    port_ok && name_ok
}

/// The tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let mut chars = t.chars();
    t.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The repository grammar: path components of `[a-z0-9]+` joined by `.`,
/// `_`, `__` or runs of `-`, separated by `/`.
pub fn valid_repository(r: &str) -> bool {
    !r.is_empty() && r.len() <= 255 && r.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_users_write_them() {
        let r: Reference = "127.0.0.1:5000/team/app:v1".parse().unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/app", Some("v1"))
        );
        assert!(r.is_loopback());
        assert_eq!(r.target(), "v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r: Reference = format!("registry.example:443/x@{d}").parse().unwrap();
        assert_eq!(r.target(), d);
        assert!(!r.is_loopback());
        let r: Reference = "localhost/a/b-c__d.e".parse().unwrap();
        assert_eq!((r.tag.clone(), r.target()), (None, "latest".to_string()));
        for bad in [
            "app:v1",
            "host/UPPER",
            "host/a//b",
            "host/a:-x",
            "host/-a",
            "ho st/a",
            "host:99x/a",
            "host/a@sha256:12",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }
}
