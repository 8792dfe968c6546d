//! Credentials where docker and podman keep them: docker's `config.json`
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: its
//! `credHelpers` for the host, its `auths`, then its `credsStore`, the
//! helpers run as `docker-credential-NAME get` with the host on stdin),
//! then containers' `auth.json` (`$REGISTRY_AUTH_FILE`, else
//! `$XDG_RUNTIME_DIR/containers/auth.json`). `login` writes docker's file
//! (mode 0600, through the publish protocol), `logout` takes the host out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::client::Credentials;
use crate::error::{Error, Result};
use crate::io::durable;

/// Largest credentials file read.
const LIMIT: u64 = 4 << 20;

/// Docker's `config.json`: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Containers' `auth.json` files, in the order podman reads them.
fn containers_auth_paths() -> Vec<PathBuf> {
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        return vec![PathBuf::from(f)];
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| vec![PathBuf::from(d).join("containers/auth.json")])
        .unwrap_or_default()
}

/// The credentials stored for `host`, and where they came from (for
/// messages: a file or a helper, never the secret).
///
/// # Errors
/// A credentials file that is not JSON; a helper that fails other than by
/// having nothing for the host.
pub fn find(host: &str) -> Result<Option<(Credentials, String)>> {
    if let Some(path) = docker_config_path()
        && let Some(config) = read_json(&path)?
    {
        if let Some(helper) = config["credHelpers"][host].as_str() {
            return helper_get(helper, host);
        }
        if let Some(c) = from_auths(&config, host) {
            return Ok(Some((c, path.display().to_string())));
        }
        if let Some(store) = config["credsStore"].as_str().filter(|s| !s.is_empty())
            && let Some(found) = helper_get(store, host)?
        {
            return Ok(Some(found));
        }
    }
    for path in containers_auth_paths() {
        if let Some(config) = read_json(&path)?
            && let Some(c) = from_auths(&config, host)
        {
            return Ok(Some((c, path.display().to_string())));
        }
    }
    Ok(None)
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let raw = crate::io::input::read_capped(path, LIMIT, "a credentials file")?;
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| Error::InvalidDocument {
            what: path.display().to_string(),
            reason: format!("not JSON: {e}"),
        })
}

/// `auths` keys are written many ways: `host`, `https://host`,
/// `https://host/v1/`.
fn key_host(key: &str) -> &str {
    let k = key.split_once("://").map_or(key, |(_, rest)| rest);
    k.split('/').next().unwrap_or(k)
}

fn from_auths(config: &Value, host: &str) -> Option<Credentials> {
    let auths = config["auths"].as_object()?;
    let entry = auths
        .iter()
        .find(|(k, _)| key_host(k) == host)
        .map(|(_, v)| v)?;
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    let username = entry["username"].as_str()?;
    let password = entry["password"].as_str()?;
    Some(Credentials {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// `docker-credential-NAME get`: the host on stdin, `{"Username",
/// "Secret"}` on stdout; "credentials not found" is `None`.
fn helper_get(name: &str, host: &str) -> Result<Option<(Credentials, String)>> {
    let program = format!("docker-credential-{name}");
    let failed = |why: String| Error::InvalidArgument(format!("{program} get for {host}: {why}"));
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it ({e}); install it or change credsStore/credHelpers in docker's config.json")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(host.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if said.contains("credentials not found")
            || String::from_utf8_lossy(&out.stderr).contains("credentials not found")
        {
            return Ok(None);
        }
        return Err(failed(format!("it failed ({})", out.status)));
    }
    let v: Value =
        serde_json::from_str(&said).map_err(|_| failed("its answer is not JSON".into()))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(s)) if !s.is_empty() => Ok(Some((
            Credentials {
                username: u.to_string(),
                password: s.to_string(),
            },
            program,
        ))),
        _ => Ok(None),
    }
}

/// Stores `credentials` for `host` in docker's `config.json` (`auths`),
/// keeping everything else in it; the file is written mode 0600.
///
/// # Errors
/// A config file that is not a JSON object; I/O errors.
pub fn login(host: &str, credentials: &Credentials) -> Result<PathBuf> {
    let raw = format!("{}:{}", credentials.username, credentials.password);
    let auth = base64::engine::general_purpose::STANDARD.encode(raw);
    edit(|auths| {
        auths.retain(|k, _| key_host(k) != host);
        auths.insert(host.to_string(), serde_json::json!({ "auth": auth }));
        true
    })
}

/// Removes `host` from docker's `config.json`; whether it was there.
///
/// # Errors
/// A config file that is not a JSON object; I/O errors.
pub fn logout(host: &str) -> Result<bool> {
    let mut found = false;
    edit(|auths| {
        let before = auths.len();
        auths.retain(|k, _| key_host(k) != host);
        found = auths.len() != before;
        found
    })?;
    Ok(found)
}

/// Applies `change` to the `auths` of docker's config, writing it back
/// (0600, temp file, fsync, rename) when `change` says it changed.
fn edit(change: impl FnOnce(&mut Map<String, Value>) -> bool) -> Result<PathBuf> {
    let path = docker_config_path().ok_or_else(|| {
        Error::InvalidArgument(
            "neither DOCKER_CONFIG nor HOME is set: no place for docker's config.json".into(),
        )
    })?;
    let mut config = read_json(&path)?.unwrap_or_else(|| serde_json::json!({}));
    let obj = config
        .as_object_mut()
        .ok_or_else(|| Error::InvalidDocument {
            what: path.display().to_string(),
            reason: "not a JSON object".into(),
        })?;
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    let auths = auths
        .as_object_mut()
        .ok_or_else(|| Error::InvalidDocument {
            what: path.display().to_string(),
            reason: "`auths` is not an object".into(),
        })?;
    if !change(auths) {
        return Ok(path);
    }
    let dir = durable::parent(&path).to_path_buf();
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| Error::io("chmod", &dir, e))?;
    }
    let bytes = serde_json::to_vec_pretty(&config).expect("JSON values serialize");
    durable::write_file_replacing_mode(&path, 0o600, |out| {
        out.write_all(&bytes)
            .map_err(|e| Error::io("write", &path, e))
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_keys_match_their_host_however_written() {
        for key in [
            "registry.example:5000",
            "https://registry.example:5000",
            "https://registry.example:5000/v1/",
        ] {
            assert_eq!(key_host(key), "registry.example:5000");
        }
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pa:ss");
        let config = serde_json::json!({"auths": {"https://r.example/v1/": {"auth": auth}, "other": {"username": "u", "password": "p"}}});
        let c = from_auths(&config, "r.example").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "pa:ss"));
        assert_eq!(from_auths(&config, "other").unwrap().username, "u");
        assert!(from_auths(&config, "nope").is_none());
    }
}
