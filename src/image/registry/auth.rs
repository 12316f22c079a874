//! Registry credentials and challenges: the `WWW-Authenticate` header a registry answers
//! with, docker's `config.json` read (through `docker_credential`, which also runs
//! `credHelpers`/`credsStore` helpers) and written the way `docker login`/`logout` do.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine;

/// The key docker's config.json uses for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lowercased).
    pub scheme: String,
    /// Parameters, keys lowercased: `realm`, `service`, `scope`.
    pub params: BTreeMap<String, String>,
}

/// Parse `Bearer realm="https://auth.example/token",service="registry.example"`
/// (quoted values may hold commas and escaped quotes; unquoted values are tokens).
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = match h.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r),
        None => (h, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_ascii_lowercase();
        s = s[eq + 1..].trim_start();
        let value;
        if let Some(q) = s.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            s = &q[end?..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_string();
            s = &s[end..];
        }
        if key.is_empty() {
            return None;
        }
        params.insert(key, value);
        s = s.trim_start().strip_prefix(',').unwrap_or(s).trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// The `config.json` key of a registry host (docker's spelling: Docker Hub's is its v1 URL).
pub fn config_key(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.into(),
        h => h.into(),
    }
}

/// Docker's client config dir: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker"))
}

/// The user name and password stored for `host`, if any (config.json's `auths`, or its
/// credential helpers). Identity tokens (OAuth refresh tokens) are not used: the pull
/// then goes anonymous.
pub fn credentials(host: &str) -> Option<(String, String)> {
    let key = config_key(host);
    let path = docker_config_dir()?.join("config.json");
    let file = std::fs::File::open(&path).ok()?;
    let got = docker_credential::get_credential_from_reader(file, &key).or_else(|_| {
        // Hosts written with a scheme (`https://host`) as some tools do.
        let file = std::fs::File::open(&path)
            .map_err(|_| docker_credential::CredentialRetrievalError::ConfigReadError)?;
        docker_credential::get_credential_from_reader(file, &format!("https://{key}"))
    });
    match got {
        Ok(docker_credential::DockerCredential::UsernamePassword(u, p)) => Some((u, p)),
        _ => None,
    }
}

/// `Basic <base64(user:pass)>`
pub fn basic_header(user: &str, pass: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b}")
}

/// What `login`/`logout` did to config.json.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a docker config file: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no home directory for the docker config (set DOCKER_CONFIG)")]
    NoDir,
}

fn config_path() -> Result<PathBuf, ConfigFileError> {
    Ok(docker_config_dir()
        .ok_or(ConfigFileError::NoDir)?
        .join("config.json"))
}

fn read_config(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>, ConfigFileError> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Default::default()),
        Ok(b) => serde_json::from_slice(&b).map_err(|source| ConfigFileError::Corrupt {
            path: path.into(),
            source,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Default::default()),
        Err(source) => Err(ConfigFileError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// Write config.json atomically, mode 0600, keeping every key it had.
fn write_config(
    path: &Path,
    cfg: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ConfigFileError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |source| ConfigFileError::Io {
        path: path.into(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let data = serde_json::to_vec_pretty(cfg).expect("JSON serialises");
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&data)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io)
}

/// `docker login`'s write: `auths[key] = {"auth": base64(user:pass)}`.
pub fn store_login(host: &str, user: &str, pass: &str) -> Result<PathBuf, ConfigFileError> {
    let path = config_path()?;
    let mut cfg = read_config(&path)?;
    let auths = cfg.entry("auths").or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    auths[config_key(host)] = serde_json::json!({ "auth": b });
    write_config(&path, &cfg)?;
    Ok(path)
}

/// `docker logout`'s write: the host's entry removed. Returns false when there was none.
pub fn remove_login(host: &str) -> Result<bool, ConfigFileError> {
    let path = config_path()?;
    let mut cfg = read_config(&path)?;
    let key = config_key(host);
    let removed = cfg
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .is_some_and(|a| a.remove(&key).is_some());
    if removed {
        write_config(&path, &cfg)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_send_them() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:library/busybox:pull");
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
        // Commas and escaped quotes inside quotes, unquoted tokens, odd spacing.
        let c = parse_challenge(r#"Bearer  realm = "a,b\"c" , service=svc,error=x"#).unwrap();
        assert_eq!(c.params["realm"], "a,b\"c");
        assert_eq!(c.params["service"], "svc");
        assert_eq!(c.params["error"], "x");
        assert_eq!(parse_challenge("Basic").unwrap().params.len(), 0);
        assert!(parse_challenge("").is_none());
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
        assert!(parse_challenge("Bearer =x").is_none());
    }

    #[test]
    fn docker_hub_has_docker_s_config_key() {
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(basic_header("u", "p"), "Basic dTpw");
    }
}
