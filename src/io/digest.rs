//! Content digests: validated before they ever become a path, and hashed in a stream.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::error::{Error, Result};

/// A registered digest algorithm. Nothing else is ever accepted as a path component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 lowercase hex digits; the only algorithm epoch-store writes.
    Sha256,
    /// SHA-512, 128 lowercase hex digits; read and verified.
    Sha512,
}

impl Algorithm {
    /// Every algorithm, in the order `blobs/` is scanned.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The name used in digests and as the directory under `blobs/`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The number of hex digits of an encoded digest.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// Looks an algorithm up by its registered name.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated digest: a registered algorithm and exactly the right number of
/// lowercase hex digits, so that it is always safe to use as a file name.
///
/// ```
/// use epoch_store::Digest;
/// let d: Digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".parse()?;
/// assert_eq!(d, Digest::of_bytes(epoch_store::Algorithm::Sha256, b"{}"));
/// assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: Box<str>,
}

impl Digest {
    /// Parses `algorithm:hex`, accepting only registered algorithms and exact lowercase hex.
    ///
    /// # Errors
    /// [`Error::InvalidDigest`] naming what is wrong.
    pub fn parse(s: &str) -> Result<Digest> {
        let bad = |reason| Error::InvalidDigest {
            value: shorten(s),
            reason,
        };
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| bad("expected ALGORITHM:HEX"))?;
        let algorithm = Algorithm::from_name(alg)
            .ok_or_else(|| bad("unsupported algorithm (sha256 and sha512 only)"))?;
        Digest::from_hex(algorithm, hex).map_err(|_| {
            if hex.len() != algorithm.hex_len() {
                bad(if algorithm == Algorithm::Sha256 {
                    "a sha256 digest has exactly 64 hex digits"
                } else {
                    "a sha512 digest has exactly 128 hex digits"
                })
            } else {
                bad("the hex part must be lowercase 0-9a-f")
            }
        })
    }

    /// Builds a digest from an algorithm and its encoded hex.
    ///
    /// # Errors
    /// [`Error::InvalidDigest`] if `hex` is not exactly the algorithm's length of lowercase hex.
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Digest> {
        let ok = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(Error::InvalidDigest {
                value: shorten(hex),
                reason: "not a lowercase hex encoding of the right length",
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.into(),
        })
    }

    /// The digest of `bytes`.
    pub fn of_bytes(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded hex, which is also the blob's file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, for tables.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

fn shorten(s: &str) -> String {
    if s.len() <= 160 {
        s.to_string()
    } else {
        let cut = (0..=160)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &s[..cut])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A streaming hasher for one registered algorithm.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex(&h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex(&h.finalize())),
        };
        Digest {
            algorithm,
            hex: hex.into(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_JSON: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn parses_and_prints_round_trip() -> Result<()> {
        let d = Digest::parse(EMPTY_JSON)?;
        assert_eq!(d.to_string(), EMPTY_JSON);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d, Digest::of_bytes(Algorithm::Sha256, b"{}"));
        Ok(())
    }

    #[test]
    fn rejects_hostile_and_malformed_digests() {
        let upper = EMPTY_JSON.to_uppercase().replace("SHA256", "sha256");
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:",
            "sha256",
            ":abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha384:abc",
            &upper,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a0",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8/",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8\0",
            "sha512:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sha512_matches_known_vector() -> Result<()> {
        let d = Digest::of_bytes(Algorithm::Sha512, b"abc");
        assert!(d.hex().starts_with("ddaf35a193617aba"));
        assert_eq!(Digest::parse(&d.to_string())?, d);
        Ok(())
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut h = Hasher::new(Algorithm::Sha256);
        for chunk in data.chunks(977) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), Digest::of_bytes(Algorithm::Sha256, &data));
    }
}
