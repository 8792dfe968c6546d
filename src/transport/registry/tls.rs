//! TLS for the registry bridge: rustls with the system's roots (the
//! platform verifier); with `--ca-cert`, the system's roots (its CA
//! bundle, as `rustls-native-certs` finds it) and the CAs given, as
//! docker's `certs.d` and skopeo's `--cert-dir` add theirs; a client
//! certificate (`--cert`, `--key`); or no verification at all
//! (`--insecure`, which the CLI warns about).

use std::path::PathBuf;
use std::sync::Arc;

use ureq::tls::{ClientCert, PemItem, RootCerts, TlsConfig, parse_pem};

use crate::error::{Error, Result};

/// Largest certificate or key file read.
const LIMIT: u64 = 1 << 20;

/// How TLS is checked.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// PEM files of the CAs to trust besides the system's.
    pub ca_certs: Vec<PathBuf>,
    /// A client certificate chain (PEM) and its key (PEM).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Verify nothing (test registries with self-signed certificates).
    pub insecure: bool,
}

/// The ureq TLS configuration for `tls`.
///
/// # Errors
/// A file that cannot be read or holds no certificate (or no key).
pub(crate) fn config(tls: &TlsOptions) -> Result<TlsConfig> {
    let roots = if tls.ca_certs.is_empty() {
        RootCerts::PlatformVerifier
    } else {
        // What of the system's bundle can be read; a machine without one
        // trusts the CAs given only.
        let mut certs: Vec<ureq::tls::Certificate<'static>> =
            rustls_native_certs::load_native_certs()
                .certs
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
                .collect();
        for path in &tls.ca_certs {
            let found = certificates(path)?;
            if found.is_empty() {
                return Err(bad(path, "holds no PEM certificate"));
            }
            certs.extend(found);
        }
        RootCerts::Specific(Arc::new(certs))
    };
    let mut builder = TlsConfig::builder()
        .root_certs(roots)
        .disable_verification(tls.insecure);
    if let Some((cert, key)) = &tls.client_cert {
        let chain = certificates(cert)?;
        if chain.is_empty() {
            return Err(bad(cert, "holds no PEM certificate"));
        }
        let raw = crate::io::input::read_capped(key, LIMIT, "a key file")?;
        let key_pem = parse_pem(&raw)
            .filter_map(|item| match item {
                Ok(PemItem::PrivateKey(k)) => Some(k.to_owned()),
                _ => None,
            })
            .next()
            .ok_or_else(|| bad(key, "holds no PEM private key"))?;
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key_pem)));
    }
    Ok(builder.build())
}

fn certificates(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let raw = crate::io::input::read_capped(path, LIMIT, "a certificate file")?;
    let mut certs = Vec::new();
    for item in parse_pem(&raw) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c.to_owned()),
            Ok(_) => {}
            Err(e) => return Err(bad(path, &format!("is not PEM: {e}"))),
        }
    }
    Ok(certs)
}

fn bad(path: &std::path::Path, why: &str) -> Error {
    Error::InvalidArgument(format!("{} {why}", path.display()))
}
