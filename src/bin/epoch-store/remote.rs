//! What `push` and `pull` share: how to reach the registry.

use std::io::BufRead;

use epoch_store::transport::registry::{ClientOptions, Credentials, Reference};

/// Options for reaching a registry.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// Blobs in flight at once, each on its own connection.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
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
}

impl RemoteArgs {
    /// The client options these arguments give for `host`: the
    /// credentials from `--password-stdin`, else those docker's or
    /// containers' files keep for it.
    pub fn options(&self, host: &str) -> anyhow::Result<ClientOptions> {
        let mut options = ClientOptions::default();
        options.plain_http = self.plain_http;
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
