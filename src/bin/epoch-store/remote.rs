//! What `push` and `pull` share: how to reach the registry.

use std::io::BufRead;
use std::sync::Arc;

use epoch_store::io::meter::Meter;
use epoch_store::transport::registry::{ClientOptions, Credentials, Reference};

/// Options for moving blobs to or from a registry.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// Blobs in flight at once, each on its own connection.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// Hold the transfer (all connections together) to this many bytes a
    /// second: 500KiB, 20MiB, 1GiB (a trailing /s is allowed).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    /// Say what would move (documents, blobs to send or fetch, blobs
    /// already there, bytes) and move nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl RemoteArgs {
    /// See [`ConnectArgs::options`].
    pub fn options(&self, host: &str) -> anyhow::Result<ClientOptions> {
        self.connect.options(host)
    }

    /// What counts the bytes: a progress bar on a terminal (unless
    /// `quiet`), and `--limit-rate`.
    pub fn meter(&self, quiet: bool) -> Arc<Meter> {
        Arc::new(Meter::new(
            self.limit_rate,
            Arc::new(crate::progress::Bar::new(quiet)),
        ))
    }
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let size = s.strip_suffix("/s").unwrap_or(s);
    match epoch_store::io::size::parse_size(size) {
        Ok(0) => Err("the rate must be more than 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Options for reaching a registry.
#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Speak plain HTTP, not HTTPS (test registries, a registry on this
    /// machine).
    #[arg(long)]
    pub plain_http: bool,
    /// The user name to log in as (with --password-stdin).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password (or token) from the first line of stdin.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Trust this CA (PEM) for the registry instead of the system's roots
    /// (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<std::path::PathBuf>,
    /// A client certificate (PEM) to present, with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Do not verify the registry's certificate at all (test registries
    /// only: anyone on the path can then read and change what moves).
    #[arg(long, conflicts_with = "plain_http")]
    pub insecure: bool,
}

impl ConnectArgs {
    /// The client options these arguments give for `host`: the
    /// credentials from `--password-stdin`, else those docker's or
    /// containers' files keep for it.
    pub fn options(&self, host: &str) -> anyhow::Result<ClientOptions> {
        let mut options = ClientOptions::default();
        options.plain_http = self.plain_http;
        options.tls.ca_certs = self.ca_cert.clone();
        options.tls.client_cert = self.cert.clone().zip(self.key.clone());
        options.tls.insecure = self.insecure;
        if self.insecure {
            crate::output::warn(format_args!(
                "epoch-store: warning: --insecure: {host}'s certificate is not verified; anyone on the path can read and change what moves"
            ));
        }
        if self.username.is_none() {
            if let Some((c, from)) = epoch_store::transport::registry::auth_file::find(host)? {
                options.credentials = Some(c);
                options.credentials_from = Some(from);
            }
            return Ok(options);
        }
        options.credentials_from = Some("--password-stdin".into());
        if let Some(username) = &self.username {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                anyhow::bail!("--password-stdin read an empty password");
            }
            options.credentials = Some(Credentials {
                username: username.clone(),
                password,
            });
        }
        Ok(options)
    }
}

/// Parses a registry reference for clap.
pub fn parse_reference(s: &str) -> Result<Reference, String> {
    s.parse()
}
