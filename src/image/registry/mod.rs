//! A client of the OCI distribution API, blocking, on `ureq` (rustls): the `/v2/` ping,
//! anonymous, bearer-token and basic auth (docker's config.json), manifests capped at
//! [`MANIFEST_MAX`], blobs streamed, bounded retries with backoff on connection errors,
//! 429 and 5xx, plain HTTP only for insecure registries (named in the settings, or
//! localhost and 127.0.0.0/8, as docker has it), mirrors for Docker Hub.
//!
//! Digests, sizes, media types and platforms are the caller's ([`super::pull`]): this
//! module moves bytes and answers with the registry's own error codes.

pub mod auth;

use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::Body;

use super::digest::Digest;

pub use super::store::MANIFEST_MAX;

/// The most a token response may weigh.
const TOKEN_MAX: u64 = 1 << 20;
/// The most an error body is read for its message.
const ERROR_MAX: u64 = 64 << 10;
/// Attempts of one request (the first included).
const ATTEMPTS: u32 = 4;
/// The first retry's delay; doubled each time.
const BACKOFF: Duration = Duration::from_millis(250);
/// Docker Hub's API host.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// What the settings say about registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Hosts (`host[:port]`) or CIDRs served over plain HTTP (after HTTPS fails).
    pub insecure: Vec<String>,
    /// Docker Hub mirrors (`https://mirror.example`, `http://127.0.0.1:5000`), tried in
    /// order before Docker Hub itself.
    pub mirrors: Vec<String>,
    /// Layers fetched at once (docker's default: 3).
    pub max_concurrent_downloads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{url}: {source}")]
    Transport { url: String, source: ureq::Error },
    /// The registry's answer: its error codes and messages (`manifest unknown: ...`).
    #[error("{url}: {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{host}: unauthorized: {message}")]
    Unauthorized { host: String, message: String },
    #[error("{url}: {what}")]
    Protocol { url: String, what: String },
}

type Result<T> = std::result::Result<T, RegistryError>;

/// Is `host` (`name[:port]`) served over plain HTTP: localhost, loopback addresses, or a
/// host or CIDR the settings name.
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !n.ends_with(':') => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let ip = name.parse::<IpAddr>().ok();
    if name == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    insecure.iter().any(|e| {
        e == host
            || e == name
            || match (ip, e.parse::<ipnetwork::IpNetwork>()) {
                (Some(ip), Ok(net)) => e.contains('/') && net.contains(ip),
                _ => false,
            }
    })
}

/// One repository on one registry endpoint, authorised for pulling.
pub struct Session {
    agent: ureq::Agent,
    /// `https://registry-1.docker.io`
    base: String,
    /// The host credentials are looked up under.
    host: String,
    repo: String,
    creds: Option<(String, String)>,
    /// The Authorization header in use.
    authorization: Mutex<Option<String>>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("ocishim/", env!("CARGO_PKG_VERSION")))
        // Registries answer 2xx with the body, 307 to a blob store; the store must not
        // see the registry's credentials (ureq drops them on redirects by default).
        .max_redirects(8)
        .build()
        .new_agent()
}

/// A transport error worth another attempt.
fn transient(e: &ureq::Error) -> bool {
    use ureq::Error as E;
    matches!(
        e,
        E::Io(_) | E::ConnectionFailed | E::Timeout(_) | E::Protocol(_)
    )
}

fn retry_status(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS
}

/// `errors[].code: message` from a registry's JSON error body, else the status text.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    if let Ok(errs) = serde_json::from_slice::<Errs>(body) {
        let parts: Vec<String> = errs
            .errors
            .iter()
            .map(|e| {
                let code = e.code.to_ascii_lowercase().replace('_', " ");
                if e.message.is_empty() || e.message == code {
                    code
                } else {
                    format!("{code}: {}", e.message)
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    status
        .canonical_reason()
        .map(|r| r.to_ascii_lowercase())
        .unwrap_or_else(|| status.as_str().to_string())
}

fn read_capped(resp: Response<Body>, limit: u64, url: &str) -> Result<Vec<u8>> {
    resp.into_body()
        .into_with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|source| match source {
            ureq::Error::BodyExceedsLimit(_) => RegistryError::Protocol {
                url: url.into(),
                what: format!("response larger than {limit} bytes"),
            },
            source => RegistryError::Transport {
                url: url.into(),
                source,
            },
        })
}

/// A failed response as an error.
fn status_error(resp: Response<Body>, url: &str, host: &str) -> RegistryError {
    let status = resp.status();
    let body = read_capped(resp, ERROR_MAX, url).unwrap_or_default();
    let message = error_message(status, &body);
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return RegistryError::Unauthorized {
            host: host.into(),
            message,
        };
    }
    RegistryError::Status {
        url: url.into(),
        status: status.as_u16(),
        message,
    }
}

/// GET with retries; `auth` the Authorization header, `accept` the Accept header.
fn get(
    agent: &ureq::Agent,
    url: &str,
    auth: Option<&str>,
    accept: Option<&str>,
    query: &[(&str, &str)],
) -> Result<Response<Body>> {
    let mut delay = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let mut req = agent.get(url);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let last = attempt == ATTEMPTS;
        match req.call() {
            Ok(r) if retry_status(r.status()) && !last => {
                tracing::debug!(url, status = r.status().as_u16(), attempt, "retrying");
            }
            Ok(r) => return Ok(r),
            Err(e) if transient(&e) && !last => {
                tracing::debug!(url, error = %e, attempt, "retrying");
            }
            Err(source) => {
                return Err(RegistryError::Transport {
                    url: url.into(),
                    source,
                })
            }
        }
        std::thread::sleep(delay);
        delay *= 2;
    }
    unreachable!("the last attempt returns")
}

/// The endpoints of registry `domain`, in order, with the host credentials are looked up
/// under: the mirrors (Docker Hub only, when `mirrors`), then the registry over https, then
/// over plain http when it is an insecure one.
fn endpoints(cfg: &RegistryConfig, domain: &str, mirrors: bool) -> Vec<(String, String)> {
    let hub = domain == super::reference::DEFAULT_DOMAIN;
    let mut out: Vec<(String, String)> = Vec::new();
    if hub && mirrors {
        for m in &cfg.mirrors {
            let m = m.trim_end_matches('/');
            let host = m.split_once("://").map_or(m, |(_, h)| h);
            out.push((m.to_string(), host.to_string()));
        }
    }
    let api = if hub { DOCKER_HUB_API } else { domain };
    out.push((format!("https://{api}"), domain.to_string()));
    if is_insecure(domain, &cfg.insecure) {
        out.push((format!("http://{api}"), domain.to_string()));
    }
    out
}

impl Session {
    /// Open `repo` on the registry `domain` (a reference's domain): the endpoints are the
    /// mirrors (Docker Hub only) then the registry; the first that answers `/v2/` is used.
    pub fn open(cfg: &RegistryConfig, domain: &str, repo: &str) -> Result<Session> {
        Session::connect(endpoints(cfg, domain, true), repo, None)
    }

    /// The first of `endpoints` that answers `/v2/`, authorised (with `creds`, else the
    /// stored credentials of its host).
    fn connect(
        endpoints: Vec<(String, String)>,
        repo: &str,
        creds: Option<(String, String)>,
    ) -> Result<Session> {
        let agent = agent();
        let mut err: Option<RegistryError> = None;
        let n = endpoints.len();
        for (i, (base, host)) in endpoints.into_iter().enumerate() {
            // An https endpoint with a plain-http fallback: no retries of a TLS failure.
            let has_fallback = i + 1 < n;
            match Session::ping(&agent, base, host, repo, creds.clone(), has_fallback) {
                Ok(s) => return Ok(s),
                Err(e) => {
                    tracing::debug!(error = %e, "endpoint failed");
                    // The registry's own answer says more than a failed connection.
                    let keep = matches!(&err, Some(old) if !matches!(old, RegistryError::Transport { .. }))
                        && matches!(e, RegistryError::Transport { .. });
                    if !keep {
                        err = Some(e);
                    }
                }
            }
        }
        Err(err.expect("at least one endpoint"))
    }

    fn ping(
        agent: &ureq::Agent,
        base: String,
        host: String,
        repo: &str,
        creds: Option<(String, String)>,
        once: bool,
    ) -> Result<Session> {
        let url = format!("{base}/v2/");
        let resp = if once {
            agent
                .get(&url)
                .call()
                .map_err(|source| RegistryError::Transport {
                    url: url.clone(),
                    source,
                })?
        } else {
            get(agent, &url, None, None, &[])?
        };
        let creds = creds.or_else(|| auth::credentials(&host));
        let s = Session {
            agent: agent.clone(),
            base,
            host,
            repo: repo.to_string(),
            creds,
            authorization: Mutex::new(None),
        };
        match resp.status() {
            s2 if s2.is_success() => Ok(s),
            StatusCode::UNAUTHORIZED => {
                s.authorize(&resp)?;
                Ok(s)
            }
            _ => Err(status_error(resp, &url, &s.host)),
        }
    }

    /// Answer a 401's challenge: a bearer token for pulling the repository (with the
    /// stored credentials when there are any), or basic auth.
    fn authorize(&self, resp: &Response<Body>) -> Result<()> {
        let unauthorized = |message: &str| RegistryError::Unauthorized {
            host: self.host.clone(),
            message: message.into(),
        };
        let challenge = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(auth::parse_challenge)
            .max_by_key(|c| c.scheme == "bearer")
            .ok_or_else(|| unauthorized("no WWW-Authenticate challenge"))?;
        let header = match challenge.scheme.as_str() {
            "basic" => {
                let (u, p) = self
                    .creds
                    .as_ref()
                    .ok_or_else(|| unauthorized("authentication required"))?;
                auth::basic_header(u, p)
            }
            "bearer" => format!("Bearer {}", self.token(&challenge)?),
            other => return Err(unauthorized(&format!("unsupported auth scheme {other:?}"))),
        };
        *self.authorization.lock().unwrap() = Some(header);
        Ok(())
    }

    /// A token from the challenge's realm for `repository:<repo>:pull`.
    fn token(&self, c: &auth::Challenge) -> Result<String> {
        let realm = c
            .params
            .get("realm")
            .ok_or_else(|| RegistryError::Protocol {
                url: self.base.clone(),
                what: "bearer challenge without a realm".into(),
            })?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(RegistryError::Protocol {
                url: self.base.clone(),
                what: format!("token realm {realm:?} is not an http(s) URL"),
            });
        }
        // A session without a repository (`login`) asks for no scope, as docker's login.
        let scope = format!("repository:{}:pull", self.repo);
        let mut query = Vec::new();
        match (&self.creds, self.repo.is_empty()) {
            (_, false) => query.push(("scope", scope.as_str())),
            (Some((user, _)), true) => query.push(("account", user.as_str())),
            (None, true) => {}
        }
        if let Some(s) = c.params.get("service") {
            query.push(("service", s));
        }
        let basic = self.creds.as_ref().map(|(u, p)| auth::basic_header(u, p));
        let resp = get(&self.agent, realm, basic.as_deref(), None, &query)?;
        if !resp.status().is_success() {
            return Err(match status_error(resp, realm, &self.host) {
                RegistryError::Status { message, .. } => RegistryError::Unauthorized {
                    host: self.host.clone(),
                    message,
                },
                e => e,
            });
        }
        let body = read_capped(resp, TOKEN_MAX, realm)?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            url: realm.clone(),
            what: format!("token response: {e}"),
        })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                url: realm.clone(),
                what: "token response without a token".into(),
            })
    }

    /// GET `path` under the repository; a 401 (an expired token) is answered once.
    fn get(&self, path: &str, accept: Option<&str>) -> Result<Response<Body>> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repo);
        let mut answered = false;
        loop {
            let authz = self.authorization.lock().unwrap().clone();
            let resp = get(&self.agent, &url, authz.as_deref(), accept, &[])?;
            if resp.status() == StatusCode::UNAUTHORIZED && !answered {
                answered = true;
                self.authorize(&resp)?;
                continue;
            }
            if !resp.status().is_success() {
                return Err(status_error(resp, &url, &self.host));
            }
            return Ok(resp);
        }
    }

    /// The manifest (or index) `reference` (a tag or a digest): its bytes (at most
    /// [`MANIFEST_MAX`]) and its Content-Type.
    pub fn manifest(&self, reference: &str, accept: &str) -> Result<(Vec<u8>, Option<String>)> {
        let resp = self.get(&format!("manifests/{reference}"), Some(accept))?;
        let media = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repo);
        Ok((read_capped(resp, MANIFEST_MAX, &url)?, media))
    }

    /// A blob's body as a stream (the caller checks its size and digest).
    pub fn blob(&self, digest: &Digest) -> Result<impl Read + Send + 'static> {
        let resp = self.get(&format!("blobs/{digest}"), None)?;
        Ok(resp.into_body().into_reader())
    }
}

/// `login`: check `user`/`pass` against the registry `host` (no mirror) without storing
/// anything: authorised as a pull would be (a token for no scope, or basic auth), `/v2/`
/// must then answer.
pub fn check_login(cfg: &RegistryConfig, host: &str, user: &str, pass: &str) -> Result<()> {
    let creds = Some((user.to_string(), pass.to_string()));
    let s = Session::connect(endpoints(cfg, host, false), "", creds)?;
    let url = format!("{}/v2/", s.base);
    let authz = s.authorization.lock().unwrap().clone();
    let resp = get(&s.agent, &url, authz.as_deref(), None, &[])?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(status_error(resp, &url, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_named_registries_are_insecure() {
        let none: Vec<String> = vec![];
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_insecure(h, &none), "{h}");
        }
        for h in [
            "docker.io",
            "registry.example:5000",
            "10.0.0.5:5000",
            "localhost.example",
        ] {
            assert!(!is_insecure(h, &none), "{h}");
        }
        let named = vec![
            "registry.example:5000".to_string(),
            "10.0.0.0/8".to_string(),
        ];
        assert!(is_insecure("registry.example:5000", &named));
        assert!(!is_insecure("registry.example:5001", &named));
        assert!(is_insecure("10.1.2.3:5000", &named));
        assert!(!is_insecure("11.1.2.3:5000", &named));
    }

    #[test]
    fn registry_errors_read_as_docker_prints_them() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            error_message(StatusCode::NOT_FOUND, body),
            "manifest unknown"
        );
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        assert_eq!(
            error_message(StatusCode::UNAUTHORIZED, body),
            "unauthorized: authentication required"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"<html>"),
            "bad gateway"
        );
    }
}
