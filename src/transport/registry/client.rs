//! The HTTP side of the registry bridge: one blocking `ureq` agent (a pool
//! of HTTP/1.1 connections shared by the worker threads), the distribution
//! spec's URLs, and the auth handshake: a request that gets 401 is retried
//! once with what its `WWW-Authenticate` challenge asks for (Basic, or a
//! Bearer token fetched from the challenge's realm with its service and
//! scope, cached for the repository). Credentials are sent to the registry
//! host and its token realm only, and never appear in messages.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use ureq::http::{Response, StatusCode};
use ureq::{Agent, Body, SendBody};

use super::reference::Reference;
use crate::error::{Error, ErrorKind, Result};

/// A connection sends nothing for this long: the transfer is given up
/// (an idle timeout, not a deadline: a long blob that keeps moving is fine).
const IDLE: Duration = Duration::from_secs(60);

/// How a client reaches a registry.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Plain HTTP instead of HTTPS (test and loopback registries).
    pub plain_http: bool,
    /// Credentials for Basic auth and for fetching tokens.
    pub credentials: Option<Credentials>,
    /// Where they came from, for messages (`--password-stdin`, a file, a
    /// credential helper).
    pub credentials_from: Option<String>,
    /// How TLS is checked.
    pub tls: super::tls::TlsOptions,
}

/// A user name and password (or token).
#[derive(Clone, Default)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <hidden>)", self.username)
    }
}

/// A client of one repository of one registry.
#[derive(Debug)]
pub struct Client {
    agent: Agent,
    base: String,
    registry: String,
    repository: String,
    credentials: Option<Credentials>,
    credentials_from: Option<String>,
    /// The `Authorization` header that last worked.
    authorization: Mutex<Option<String>>,
}

/// A request's method, path under `/v2/<repo>/` (or a whole URL) and headers.
pub(crate) struct Call<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// Makes the body afresh for each attempt (`None`: no body).
    pub body: Option<&'a mut dyn FnMut() -> Result<(SendBody<'static>, u64)>>,
}

impl Call<'static> {
    /// A request without headers or body.
    pub(crate) fn new(method: &'static str, url: String) -> Call<'static> {
        Call {
            method,
            url,
            headers: vec![],
            body: None,
        }
    }
}

impl Client {
    /// A client of `reference`'s repository.
    ///
    /// # Errors
    /// TLS files that cannot be read or hold no certificate or key.
    pub fn new(reference: &Reference, options: &ClientOptions) -> Result<Client> {
        let config = Agent::config_builder()
            .tls_config(super::tls::config(&options.tls)?)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_per_read(Some(IDLE))
            .timeout_per_write(Some(IDLE))
            .timeout_connect(Some(Duration::from_secs(30)))
            .max_idle_connections_per_host(32)
            .user_agent(concat!("epoch-store/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if options.plain_http { "http" } else { "https" };
        Ok(Client {
            agent: config.into(),
            base: format!("{scheme}://{}/v2/{}", reference.host, reference.repository),
            registry: reference.host.clone(),
            repository: reference.repository.clone(),
            credentials: options.credentials.clone(),
            credentials_from: options.credentials_from.clone(),
            authorization: Mutex::new(None),
        })
    }

    /// `GET /v2/`, answering an auth challenge: whether the registry lets
    /// these credentials in.
    ///
    /// # Errors
    /// The registry unreachable; 401 or 403 ([`ErrorKind::Refused`]).
    pub fn ping(&self) -> Result<()> {
        let root = &self.base[..self.base.find("/v2/").expect("the base has /v2/")];
        let resp = self.send(&mut Call::new("GET", format!("{root}/v2/")))?;
        check_status(self, &resp, "GET /v2/")
    }

    /// The registry, for messages.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository, for messages and keys.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `/v2/<repo>/<path>` as a URL.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// A URL the registry gave (`Location`), made absolute.
    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            return location.to_string();
        }
        let root = &self.base[..self.base.find("/v2/").expect("the base has /v2/")];
        format!("{root}{location}")
    }

    /// Sends `call`, answering one auth challenge; returns the response
    /// whatever its status.
    pub(crate) fn send(&self, call: &mut Call<'_>) -> Result<Response<Body>> {
        let first = self.attempt(call, self.current_auth())?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = first
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let auth = self.answer(&challenge, call.method)?;
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(auth.clone());
        let second = self.attempt(call, Some(auth))?;
        if second.status() == StatusCode::UNAUTHORIZED || second.status() == StatusCode::FORBIDDEN {
            return Err(self.denied(second.status()));
        }
        Ok(second)
    }

    /// A GET of a URL the registry redirected to, without our credentials
    /// (it may be another host).
    pub(crate) fn send_anonymous(
        &self,
        url: &str,
        header: Option<(&'static str, String)>,
    ) -> Result<Response<Body>> {
        self.attempt(
            &mut Call {
                method: "GET",
                url: url.to_string(),
                headers: header.into_iter().collect(),
                body: None,
            },
            None,
        )
    }

    fn current_auth(&self) -> Option<String> {
        self.authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn attempt(&self, call: &mut Call<'_>, auth: Option<String>) -> Result<Response<Body>> {
        let uri = call.url.as_str();
        let mut builder = ureq::http::Request::builder().method(call.method).uri(uri);
        for (k, v) in &call.headers {
            builder = builder.header(*k, v);
        }
        if let Some(a) = &auth {
            builder = builder.header("authorization", a);
        }
        let result = match call.body.as_mut() {
            Some(make) => {
                let (body, len) = make()?;
                let request = builder
                    .header("content-length", len.to_string())
                    .body(body)
                    .map_err(|e| self.failed(&e.to_string()))?;
                self.agent.run(request)
            }
            // A POST without a body says so (ureq would send an empty
            // chunked one, which some proxies choke on).
            None if matches!(call.method, "POST" | "PUT" | "PATCH") => {
                let request = builder
                    .header("content-length", "0")
                    .body(SendBody::none())
                    .map_err(|e| self.failed(&e.to_string()))?;
                self.agent.run(request)
            }
            None => {
                let request = builder.body(()).map_err(|e| self.failed(&e.to_string()))?;
                self.agent.run(request)
            }
        };
        result.map_err(|e| self.unreachable(call.method, &e))
    }

    /// The `Authorization` header that answers `challenge`.
    fn answer(&self, challenge: &str, method: &str) -> Result<String> {
        let (scheme, params) = parse_challenge(challenge).ok_or_else(|| {
            self.error(
                ErrorKind::Network,
                format!(
                    "401 with a WWW-Authenticate header that cannot be read ({:?})",
                    truncate(challenge)
                ),
            )
        })?;
        if scheme.eq_ignore_ascii_case("basic") {
            let c = self
                .credentials
                .as_ref()
                .ok_or_else(|| self.denied(StatusCode::UNAUTHORIZED))?;
            return Ok(basic(c));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(self.error(
                ErrorKind::Network,
                format!("asks for {scheme} auth, which epoch-store does not speak"),
            ));
        }
        let realm = param(&params, "realm").ok_or_else(|| {
            self.error(
                ErrorKind::Network,
                "a Bearer challenge without a realm".into(),
            )
        })?;
        let mut url = format!("{realm}?");
        if let Some(service) = param(&params, "service") {
            url.push_str(&format!("service={}&", encode(service)));
        }
        let action = if matches!(method, "GET" | "HEAD") {
            "pull"
        } else {
            "pull,push"
        };
        let scope = param(&params, "scope")
            .map(String::from)
            .unwrap_or_else(|| format!("repository:{}:{action}", self.repository));
        url.push_str(&format!("scope={}", encode(&scope)));
        self.token(&url)
    }

    /// Fetches a Bearer token from `url` (with the credentials, if any).
    fn token(&self, url: &str) -> Result<String> {
        let mut req = self.agent.get(url);
        if let Some(c) = &self.credentials {
            req = req.header("authorization", basic(c));
        }
        let mut resp = req
            .call()
            .map_err(|e| self.unreachable("GET (token)", &e))?;
        if !resp.status().is_success() {
            return Err(self.denied(resp.status()));
        }
        let mut raw = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(1 << 20)
            .read_to_end(&mut raw)
            .map_err(|e| self.failed(&format!("reading the token: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|_| self.failed("the token server's answer is not JSON"))?;
        let token = v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .ok_or_else(|| self.failed("the token server's answer has no token"))?;
        Ok(format!("Bearer {token}"))
    }

    /// An error about this registry.
    pub(crate) fn error(&self, kind: ErrorKind, reason: String) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            reason,
            kind,
        }
    }

    fn failed(&self, reason: &str) -> Error {
        self.error(ErrorKind::Malformed, reason.to_string())
    }

    fn unreachable(&self, method: &str, e: &ureq::Error) -> Error {
        let text = e.to_string();
        let hint = if text.to_lowercase().contains("certificate") {
            "give the CA that signed the registry's certificate with --ca-cert FILE (or --insecure for a test registry)"
        } else {
            "is the registry up and the address right?"
        };
        self.error(
            ErrorKind::Network,
            format!("{method} failed: {text}; {hint}"),
        )
    }

    fn denied(&self, status: StatusCode) -> Error {
        let tried = match &self.credentials {
            Some(c) => format!(
                "the credentials of user {:?}{}",
                c.username,
                self.credentials_from
                    .as_deref()
                    .map(|f| format!(" from {f}"))
                    .unwrap_or_default()
            ),
            None => "no credentials".to_string(),
        };
        self.error(
            ErrorKind::Refused,
            format!(
                "{status} for {}: tried {tried}; give others with --username and --password-stdin",
                self.repository
            ),
        )
    }
}

/// `Ok` for 2xx; else an error naming `what` and the status.
pub(crate) fn check_status(client: &Client, resp: &Response<Body>, what: &str) -> Result<()> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let kind = if status == StatusCode::NOT_FOUND {
        ErrorKind::NotFound
    } else {
        ErrorKind::Network
    };
    let hint = if status == StatusCode::NOT_FOUND {
        "; check the repository and tag"
    } else {
        ""
    };
    Err(client.error(
        kind,
        format!("{what}: the registry answered {status}{hint}"),
    ))
}

pub(crate) fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn basic(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `Scheme k="v", k2="v2"` as the scheme and its parameters.
fn parse_challenge(header: &str) -> Option<(String, Vec<(String, String)>)> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(',').map_or((after, ""), |(v, t)| (v, t))
        };
        params.push((key.trim().to_ascii_lowercase(), value.to_string()));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some((scheme.to_string(), params))
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_and_bad_ones_are_refused() {
        let (s, p) = parse_challenge(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#).unwrap();
        assert_eq!(s, "Bearer");
        assert_eq!(param(&p, "realm"), Some("https://auth.example/token"));
        assert_eq!(param(&p, "scope"), Some("repository:a/b:pull"));
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#).unwrap();
        assert_eq!(
            (s.as_str(), param(&p, "realm")),
            ("Basic", Some("basic-realm"))
        );
        assert!(parse_challenge("").is_none());
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
        assert!(parse_challenge("Bearer novalue").is_none());
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        let c = Credentials {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
