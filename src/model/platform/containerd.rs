//! containerd's platform rules (`github.com/containerd/platforms`
//! v1.0.0-rc.5, checked against it by `tests/it/platforms.rs`): how names
//! are normalised (`database.go:normalizeOS`, `normalizeArch`), which
//! platforms a wanted one runs (`compare.go:platformVector`: older amd64 and
//! arm variants, 386 on amd64, arm on arm64), and in what order of
//! preference (`Only`, `orderedPlatformComparer.Less`), with Windows
//! `os.version` compatibility (`platform_windows_compat.go`) and
//! `os.features`.

/// A platform in containerd's terms, every field a plain string ("" for
/// none), as `specs.Platform`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plat {
    pub(crate) os: String,
    pub(crate) arch: String,
    pub(crate) variant: String,
    pub(crate) os_version: String,
    pub(crate) features: Vec<String>,
}

/// The OS names containerd knows (`isKnownOS`).
pub(crate) fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "aix"
            | "android"
            | "darwin"
            | "dragonfly"
            | "freebsd"
            | "hurd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "nacl"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "windows"
            | "zos"
    )
}

/// The architecture names containerd knows (`isKnownArch`).
pub(crate) fn is_known_arch(arch: &str) -> bool {
    matches!(
        arch,
        "386"
            | "amd64"
            | "amd64p32"
            | "arm"
            | "armbe"
            | "arm64"
            | "arm64be"
            | "ppc64"
            | "ppc64le"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "mips64p32"
            | "mips64p32le"
            | "ppc"
            | "riscv"
            | "riscv64"
            | "s390"
            | "s390x"
            | "sparc"
            | "sparc64"
            | "wasm"
    )
}

/// `normalizeOS`: lower case, `macos` is `darwin`; none is this host's
/// (containerd's `runtime.GOOS`; epoch-store runs on Linux).
pub(crate) fn normalize_os(os: &str) -> String {
    if os.is_empty() {
        return "linux".into();
    }
    match os.to_lowercase().as_str() {
        "macos" => "darwin".into(),
        other => other.into(),
    }
}

/// `normalizeArch`: the canonical architecture and variant.
pub(crate) fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_lowercase(), variant.to_lowercase());
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

/// `Normalize`: names as above, features sorted without repeats.
pub(crate) fn normalize(p: &Plat) -> Plat {
    let (arch, variant) = normalize_arch(&p.arch, &p.variant);
    let mut features = p.features.clone();
    features.sort();
    features.dedup();
    Plat {
        os: normalize_os(&p.os),
        arch,
        variant,
        os_version: p.os_version.clone(),
        features,
    }
}

/// The platforms `wanted` (normalised) can run, best first
/// (`platformVector`).
fn vector(p: &Plat) -> Vec<Plat> {
    let with = |arch: &str, variant: String| Plat {
        arch: arch.into(),
        variant,
        ..p.clone()
    };
    let level = |v: &str| v.strip_prefix('v').unwrap_or(v).parse::<i64>().ok();
    let mut out = vec![p.clone()];
    match p.arch.as_str() {
        "amd64" => {
            if let Some(n) = level(&p.variant).filter(|n| *n > 1) {
                out.extend((1..n).rev().map(|k| with("amd64", format!("v{k}"))));
            }
            out.push(with("386", String::new()));
        }
        "arm" => {
            if let Some(n) = level(&p.variant).filter(|n| *n > 5) {
                out.extend((5..n).rev().map(|k| with("arm", format!("v{k}"))));
            }
        }
        "arm64" => {
            let variant = if p.variant.is_empty() {
                "v8"
            } else {
                p.variant.as_str()
            };
            out.clear();
            if let Some(versions) = arm64_versions(variant) {
                for (major, top) in versions {
                    for minor in (0..=top).rev() {
                        let v = if minor == 0 {
                            format!("v{major}")
                        } else {
                            format!("v{major}.{minor}")
                        };
                        out.push(with("arm64", v));
                    }
                }
            }
            let arm = if variant.starts_with("v8") || variant.starts_with("v9") {
                "v8".to_string()
            } else {
                variant.to_string()
            };
            out.extend(vector(&with("arm", arm)));
        }
        _ => {}
    }
    out
}

/// `arm64variantToVersion`: the (major, highest minor) pairs an arm64
/// variant runs, best first.
fn arm64_versions(variant: &str) -> Option<Vec<(u32, u32)>> {
    let v = variant.strip_prefix('v')?;
    let (major, minor) = match v.split_once('.') {
        Some((a, b)) => (a, b.parse::<u32>().ok()?),
        None => (v, 0),
    };
    match (major, minor) {
        ("8", 0..=9) => Some(vec![(8, minor)]),
        ("9", 0..=7) => Some(vec![(9, minor), (8, (minor + 5).min(9))]),
        _ => None,
    }
}

/// A Windows `os.version`'s major, minor and build (`getWindowsOSVersion`);
/// zeros when it has fewer than three parts or they are not numbers.
fn windows_version(v: &str) -> (u8, u8, u16) {
    let mut parts = v.splitn(4, '.');
    let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
        return (0, 0, 0);
    };
    match (a.parse(), b.parse(), c.parse()) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        _ => (0, 0, 0),
    }
}

/// Whether a container of `ctr` runs on a Windows host of `host`
/// (`checkWindowsHostAndContainerCompat`): the same build before LTSC 2022;
/// from it, any build from the host's LTSC release line's predecessor up.
fn windows_compatible(host: (u8, u8, u16), ctr: (u8, u8, u16)) -> bool {
    const LTSC: [u16; 2] = [20348, 26100];
    if host.0 != ctr.0 || host.1 != ctr.1 {
        return false;
    }
    if host.2 < LTSC[0] {
        return host.2 == ctr.2;
    }
    let mut supported = LTSC[0];
    for i in (0..LTSC.len()).rev() {
        if host.2 >= LTSC[i] {
            supported = if i == 0 { LTSC[0] } else { LTSC[i - 1] };
            break;
        }
    }
    supported <= ctr.2 && ctr.2 <= host.2
}

/// `NewMatcher(m).Match(candidate)`.
fn matches(m: &Plat, candidate: &Plat) -> bool {
    let m = normalize(m);
    let mut c = candidate.clone();
    if m.os == "windows" {
        // windowsStripFeaturesMatcher
        if let Some(i) = c.features.iter().position(|f| f == "win32k") {
            c.features.remove(i);
        }
    }
    let n = normalize(&c);
    if m.os != n.os || m.arch != n.arch || m.variant != n.variant {
        return false;
    }
    if m.os == "windows" {
        let host = windows_version(&m.os_version);
        let ctr = windows_version(&c.os_version);
        if host != (0, 0, 0) && !c.os_version.is_empty() && !windows_compatible(host, ctr) {
            return false;
        }
    }
    // Every feature the candidate needs, the wanted platform has.
    n.features
        .iter()
        .all(|f| m.features.binary_search(f).is_ok())
}

/// `Only(wanted)`: which platforms it runs, and their order.
pub(crate) struct Only {
    matchers: Vec<Plat>,
}

impl Only {
    /// The comparer for `wanted`.
    pub(crate) fn new(wanted: &Plat) -> Only {
        Only {
            matchers: vector(&normalize(wanted)),
        }
    }

    /// Whether `p` runs where `wanted` is asked for.
    pub(crate) fn matches(&self, p: &Plat) -> bool {
        self.matchers.iter().any(|m| matches(m, p))
    }

    /// `orderedPlatformComparer.Less`: `a` is preferred to `b`.
    pub(crate) fn less(&self, a: &Plat, b: &Plat) -> bool {
        for m in &self.matchers {
            let (am, bm) = (matches(m, a), matches(m, b));
            if am && !bm {
                return true;
            }
            if am || bm {
                return am
                    && bm
                    && a.features.len() != b.features.len()
                    && a.features.len() > b.features.len();
            }
        }
        if !a.features.is_empty() || !b.features.is_empty() {
            let strip = |p: &Plat| Plat {
                features: vec![],
                ..p.clone()
            };
            return self.less(&strip(a), &strip(b));
        }
        false
    }
}
