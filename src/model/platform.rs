//! Platforms of an index's entries: parsed as users write them, ranked by
//! containerd's rules ([`rank`], `containerd.rs`), and the entry a
//! cocoonstack artifact behind an index is pulled from ([`choose`]:
//! cocoon-common's `snapshot/pull.go:pickIndexChild` when no platform is
//! asked for).

use std::fmt;
use std::str::FromStr;

use super::{Descriptor, Platform};

mod containerd;

use containerd::{Only, Plat, is_known_arch, is_known_os, normalize_arch, normalize_os};

/// A platform asked for, parsed and normalised as containerd parses one
/// (`platforms.Parse`): `linux/amd64`, `linux/arm64/v8`, `arm64` (this
/// host's OS), `linux` (this host's architecture), `windows(10.0.20348)/amd64`
/// (an `os.version`), `linux(+gpu+fips)/amd64` (`os.features`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSpec {
    /// Operating system, normalised (`macos` is `darwin`).
    pub os: String,
    /// CPU architecture, normalised (`x86_64` is `amd64`, `aarch64` `arm64`).
    pub architecture: String,
    /// CPU variant, normalised (`arm` alone is `v7`, `arm64/v8` has none).
    pub variant: Option<String>,
    /// `os.version` (Windows builds: `10.0.20348`).
    pub os_version: Option<String>,
    /// `os.features`, sorted.
    pub os_features: Vec<String>,
}

impl FromStr for PlatformSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<PlatformSpec, String> {
        parse(s).map_err(|why| {
            format!("{s:?} is not a platform ({why}): write OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64")
        })
    }
}

/// containerd's `Parse`, with what it means by "this host": Linux, and the
/// architecture this build runs on.
fn parse(s: &str) -> Result<PlatformSpec, String> {
    if s.contains('*') {
        return Err("wildcards are not supported".into());
    }
    let parts: Vec<&str> = s.splitn(4, '/').collect();
    let (os, os_version, os_features) = parse_os(parts[0])?;
    let plain = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    if let Some(bad) = parts[1..].iter().find(|p| !plain(p)) {
        return Err(format!("{bad:?} is not a name of letters, digits, _ . -"));
    }
    let (os, (arch, variant)) = match parts.as_slice() {
        [_] if is_known_os(&os) => (os, host_arch()),
        [one] => {
            let (arch, variant) = normalize_arch(one, "");
            if !is_known_arch(&arch) {
                return Err("neither a known OS nor a known architecture".into());
            }
            let variant = if arch == "arm" && variant == "v7" {
                String::new()
            } else {
                variant
            };
            ("linux".into(), (arch, variant))
        }
        [_, arch] => {
            let (arch, variant) = normalize_arch(arch, "");
            let variant = if arch == "arm" && variant == "v7" {
                String::new()
            } else {
                variant
            };
            (os, (arch, variant))
        }
        [_, arch, variant] => {
            let (arch, variant) = normalize_arch(arch, variant);
            let variant = if arch == "arm64" && variant.is_empty() {
                "v8".into()
            } else {
                variant
            };
            (os, (arch, variant))
        }
        _ => return Err("more than OS/ARCH/VARIANT".into()),
    };
    Ok(PlatformSpec {
        os,
        architecture: arch,
        variant: (!variant.is_empty()).then_some(variant),
        os_version: (!os_version.is_empty()).then_some(os_version),
        os_features,
    })
}

/// The OS part: `NAME` or `NAME(VERSION+FEATURE+...)`, `%XX`-escaped.
fn parse_os(part: &str) -> Result<(String, String, Vec<String>), String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
    };
    let opt_ok = |n: &str| {
        n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.%-".contains(&b))
    };
    let (name, options) = match part.split_once('(') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or("an OS option list without its ')'")?;
            (name, Some(inner))
        }
        None => (part, None),
    };
    if !name_ok(name) {
        return Err(format!("{name:?} is not an OS name"));
    }
    let (mut version, mut features) = (String::new(), Vec::new());
    if let Some(inner) = options {
        let mut pieces = inner.split('+');
        let v = pieces.next().unwrap_or("");
        if !opt_ok(v) {
            return Err(format!("{v:?} is not an OS version"));
        }
        version = unescape(v)?;
        for f in pieces {
            if f.is_empty() || !opt_ok(f) {
                return Err(format!("{f:?} is not an OS feature"));
            }
            let f = unescape(f)?;
            if !f.is_empty() {
                features.push(f);
            }
        }
    }
    features.sort();
    features.dedup();
    Ok((normalize_os(name), version, features))
}

/// `%XX` escapes decoded (`url.PathUnescape`).
fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("a cut-off % escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("%{hex} is not an escape"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "an escape that is not UTF-8".into())
}

/// This build's architecture in OCI's names.
fn host_arch() -> (String, String) {
    normalize_arch(std::env::consts::ARCH, "")
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.os)?;
        if self.os_version.is_some() || !self.os_features.is_empty() {
            write!(f, "({}", self.os_version.as_deref().unwrap_or(""))?;
            for feature in &self.os_features {
                write!(f, "+{feature}")?;
            }
            f.write_str(")")?;
        }
        write!(f, "/{}", self.architecture)?;
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
            os_version: None,
            os_features: vec![],
        }
    }

    fn plat(&self) -> Plat {
        Plat {
            os: self.os.clone(),
            arch: self.architecture.clone(),
            variant: self.variant.clone().unwrap_or_default(),
            os_version: self.os_version.clone().unwrap_or_default(),
            features: self.os_features.clone(),
        }
    }

    /// Whether an image of platform `p` runs where this platform is asked
    /// for, by containerd's rules (`platforms.Only(this).Match(p)`).
    pub fn matches(&self, p: &Platform) -> bool {
        Only::new(&self.plat()).matches(&plat_of(p))
    }
}

/// A descriptor's platform in containerd's terms.
fn plat_of(p: &Platform) -> Plat {
    Plat {
        os: p.os.clone(),
        arch: p.architecture.clone(),
        variant: p.variant.clone().unwrap_or_default(),
        os_version: p.os_version.clone().unwrap_or_default(),
        features: p.os_features.clone().unwrap_or_default(),
    }
}

/// The entries of an index whose platform runs where `wanted` is asked
/// for, best first, by containerd's rules (`platforms.Only(wanted)`: the
/// platform itself, then older variants of it, 386 under amd64, arm under
/// arm64; more matching `os.features` first; a stable sort, so the index's
/// order among equals). Entries without a platform are left out.
pub fn rank<'a>(entries: &'a [Descriptor], wanted: &PlatformSpec) -> Vec<&'a Descriptor> {
    let only = Only::new(&wanted.plat());
    let mut found: Vec<(&Descriptor, Plat)> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref().map(|p| (e, plat_of(p))))
        .filter(|(_, p)| only.matches(p))
        .collect();
    found.sort_by(|(_, a), (_, b)| {
        if only.less(a, b) {
            std::cmp::Ordering::Less
        } else if only.less(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    found.into_iter().map(|(e, _)| e).collect()
}

/// `OS/ARCH[/VARIANT]` of a platform, as shown to users.
pub fn describe(p: &Platform) -> String {
    let mut s = format!("{}/{}", p.os, p.architecture);
    if let Some(v) = &p.variant {
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

/// The entry to follow. With `wanted`, the best match by containerd's
/// rules ([`rank`]). Without, as cocoon-common's pull: the first linux/amd64 entry, else the
/// first entry whose platform has an architecture other than `unknown`
/// (attestations are `unknown/unknown`). `None` if there is none.
pub fn choose<'a>(entries: &'a [Descriptor], wanted: Option<&PlatformSpec>) -> Option<Choice<'a>> {
    // cocoon-common compares the two strings as they are, no normalising.
    let linux_amd64 = entries.iter().find(|e| {
        e.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
    });
    match wanted {
        Some(spec) => rank(entries, spec).first().copied().map(Choice::Match),
        None => linux_amd64.map(Choice::Match).or_else(|| {
            entries
                .iter()
                .find(|e| {
                    e.platform
                        .as_ref()
                        .is_some_and(|p| p.architecture != "unknown")
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
        for bad in [
            "",
            "plan10",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/amd 64",
            "linux/*",
            "linux(10.0/amd64",
        ] {
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
