//! Platforms of an index's entries: `OS/ARCH[/VARIANT]` as users write
//! them, and the choice of one entry. The choice here is cocoon-common's
//! (`snapshot/pull.go:pickIndexChild`), which is what a snapshot behind an
//! index needs; containerd's full matching rules are a later step.

use std::fmt;
use std::str::FromStr;

use super::{Descriptor, Platform};

/// A platform asked for: `linux/amd64`, `linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSpec {
    /// Operating system, as in an index (`linux`).
    pub os: String,
    /// CPU architecture, as in an index (`amd64`, `arm64`).
    pub architecture: String,
    /// CPU variant, if one is asked for (`v8`); any variant matches without.
    pub variant: Option<String>,
}

impl FromStr for PlatformSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<PlatformSpec, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(PlatformSpec {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(PlatformSpec {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(format!(
                "{s:?} is not a platform: write OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64"
            )),
        }
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl PlatformSpec {
    /// linux/amd64, the platform cocoon-common pulls.
    pub fn linux_amd64() -> PlatformSpec {
        PlatformSpec {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// Whether `p` is this platform (any variant, unless one is asked for).
    pub fn matches(&self, p: &Platform) -> bool {
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.architecture
            && self
                .variant
                .as_ref()
                .is_none_or(|v| p.variant().as_deref() == Some(v.as_str()))
    }
}

/// `OS/ARCH[/VARIANT]` of a platform, as shown to users.
pub fn describe(p: &Platform) -> String {
    let mut s = format!("{}/{}", p.os(), p.architecture());
    if let Some(v) = p.variant() {
        s.push('/');
        s.push_str(v);
    }
    s
}

/// Which entry of an index was chosen, and how.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Choice<'a> {
    /// The entry of the platform asked for (or linux/amd64).
    Match(&'a Descriptor),
    /// No entry is linux/amd64 and no platform was asked for: the first
    /// entry with a known architecture, as cocoon-common falls back.
    Fallback(&'a Descriptor),
}

/// The entry to follow. With `wanted`, the first entry of that platform.
/// Without, as cocoon-common's pull: the first linux/amd64 entry, else the
/// first entry whose platform has an architecture other than `unknown`
/// (attestations are `unknown/unknown`). `None` if there is none.
pub fn choose<'a>(entries: &'a [Descriptor], wanted: Option<&PlatformSpec>) -> Option<Choice<'a>> {
    let of = |spec: &PlatformSpec| {
        entries
            .iter()
            .find(|e| e.platform.as_ref().is_some_and(|p| spec.matches(p)))
    };
    match wanted {
        Some(spec) => of(spec).map(Choice::Match),
        None => of(&PlatformSpec::linux_amd64())
            .map(Choice::Match)
            .or_else(|| {
                entries
                    .iter()
                    .find(|e| {
                        e.platform
                            .as_ref()
                            .is_some_and(|p| p.architecture().to_string() != "unknown")
                    })
                    .map(Choice::Fallback)
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::digest::{Algorithm, Digest};

    fn entry(n: u8, platform: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(
            crate::model::media_type::OCI_MANIFEST,
            Digest::of_bytes(Algorithm::Sha256, &[n]),
            1,
        );
        d.platform = platform.map(|p| {
            serde_json::from_value(match p.split('/').collect::<Vec<_>>().as_slice() {
                [os, arch] => serde_json::json!({"os": os, "architecture": arch}),
                [os, arch, v] => serde_json::json!({"os": os, "architecture": arch, "variant": v}),
                _ => unreachable!(),
            })
            .unwrap()
        });
        d
    }

    #[test]
    fn parses_and_shows_platforms() {
        let p: PlatformSpec = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/amd64".parse::<PlatformSpec>().unwrap(),
            PlatformSpec::linux_amd64()
        );
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64"] {
            assert!(bad.parse::<PlatformSpec>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn chooses_as_cocoon_common_without_a_platform() {
        let idx = [
            entry(1, Some("linux/arm64")),
            entry(2, None),
            entry(3, Some("linux/amd64")),
        ];
        assert_eq!(choose(&idx, None), Some(Choice::Match(&idx[2])));
        let idx = [
            entry(1, Some("unknown/unknown")),
            entry(2, None),
            entry(3, Some("linux/arm64")),
        ];
        assert_eq!(choose(&idx, None), Some(Choice::Fallback(&idx[2])));
        let idx = [entry(1, Some("unknown/unknown")), entry(2, None)];
        assert_eq!(choose(&idx, None), None);
    }

    #[test]
    fn a_platform_asked_for_must_be_there() {
        let idx = [
            entry(1, Some("linux/arm64/v8")),
            entry(2, Some("linux/amd64")),
        ];
        let arm: PlatformSpec = "linux/arm64".parse().unwrap();
        assert_eq!(choose(&idx, Some(&arm)), Some(Choice::Match(&idx[0])));
        let v7: PlatformSpec = "linux/arm64/v7".parse().unwrap();
        assert_eq!(choose(&idx, Some(&v7)), None);
        let s390: PlatformSpec = "linux/s390x".parse().unwrap();
        assert_eq!(choose(&idx, Some(&s390)), None);
    }
}
