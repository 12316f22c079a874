//! Image references, normalised the way docker does (docker/distribution's `reference`
//! package): `busybox` is `docker.io/library/busybox:latest`.
//!
//! ```text
//! reference := [domain '/'] path [':' tag] ['@' digest]
//! domain    := host [':' port]   (the first component, when it has '.' or ':', is
//!                                 `localhost`, or has uppercase; else docker.io)
//! path      := component ('/' component)*, component [a-z0-9]+(([._]|__|-+)[a-z0-9]+)*
//! tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```

use std::fmt;

use super::digest::{Digest, DigestError};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
/// The longest name (domain and path) docker accepts.
pub const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    TooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid reference format: {0}")]
    Digest(#[from] DigestError),
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry, `docker.io` for Docker Hub.
    pub domain: String,
    /// The repository path, `library/busybox`.
    pub path: String,
    /// `latest` when the input had neither tag nor digest.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Splits the domain off (docker's `splitDockerDomain`): the first component is a domain
/// when it has `.` or `:`, is `localhost`, or is not all lowercase.
fn split_domain(s: &str) -> (&str, String) {
    let (domain, rest) = match s.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first, rest)
        }
        _ => (DEFAULT_DOMAIN, s),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    if domain == DEFAULT_DOMAIN && !rest.contains('/') {
        (domain, format!("{OFFICIAL_PREFIX}{rest}"))
    } else {
        (domain, rest.to_string())
    }
}

fn alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep);
    }
}

/// `host[:port]`: host is DNS-like labels (`[A-Za-z0-9]`, inner `-`) joined by `.`, or an
/// IPv6 address in brackets; port is digits.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(port) => ("x", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let w = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty() && b.len() <= 128 && w(b[0]) && b.iter().all(|&c| w(c) || c == b'.' || c == b'-')
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::HexName(s.into()));
        }
        let (domain, rest) = split_domain(s);
        let (name_tag, digest) = match rest.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (rest.as_str(), None),
        };
        let (path, tag) = match name_tag.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (name_tag, None),
        };
        if path.to_lowercase() != path {
            return Err(ReferenceError::Uppercase);
        }
        if !valid_domain(domain)
            || !path.split('/').all(valid_component)
            || tag.is_some_and(|t| !valid_tag(t))
        {
            return Err(ReferenceError::Format);
        }
        if domain.len() + 1 + path.len() > NAME_MAX {
            return Err(ReferenceError::TooLong);
        }
        let digest = digest.map(Digest::parse).transpose()?;
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Reference {
            domain: domain.to_string(),
            path: path.to_string(),
            tag,
            digest,
        })
    }

    /// `docker.io/library/busybox`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Docker's short name: `busybox`, `user/app`, `myreg:5000/x/y`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(short) if !short.contains('/') => short.to_string(),
            _ => self.path.clone(),
        }
    }

    /// Docker's short form: `busybox:latest`, `myreg:5000/x/y:1`.
    pub fn familiar(&self) -> String {
        self.with_suffixes(self.familiar_name())
    }

    fn with_suffixes(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest` (`@sha256:...` when digested).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffixes(self.name()))
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    /// input → (full form, familiar form, familiar name)
    #[test]
    fn normalises_like_docker() {
        let at = |s: &str| s.replace("@D", &format!("@{D}"));
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "busybox",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
                "busybox",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "busybox",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "busybox",
            ),
            (
                "docker.io/library/busybox:musl",
                "docker.io/library/busybox:musl",
                "busybox:musl",
                "busybox",
            ),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "busybox",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "busybox",
            ),
            (
                "user/app",
                "docker.io/user/app:latest",
                "user/app:latest",
                "user/app",
            ),
            (
                "user/app/sub:v1",
                "docker.io/user/app/sub:v1",
                "user/app/sub:v1",
                "user/app/sub",
            ),
            (
                "library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
                "library/a/b",
            ),
            (
                "localhost/x",
                "localhost/x:latest",
                "localhost/x:latest",
                "localhost/x",
            ),
            (
                "localhost:5000/x:tag",
                "localhost:5000/x:tag",
                "localhost:5000/x:tag",
                "localhost:5000/x",
            ),
            (
                "myreg:5000/x/y:1",
                "myreg:5000/x/y:1",
                "myreg:5000/x/y:1",
                "myreg:5000/x/y",
            ),
            (
                "quay.io/coreos/etcd",
                "quay.io/coreos/etcd:latest",
                "quay.io/coreos/etcd:latest",
                "quay.io/coreos/etcd",
            ),
            (
                "127.0.0.1:5000/a/b@D",
                "127.0.0.1:5000/a/b@D",
                "127.0.0.1:5000/a/b@D",
                "127.0.0.1:5000/a/b",
            ),
            (
                "busybox@D",
                "docker.io/library/busybox@D",
                "busybox@D",
                "busybox",
            ),
            (
                "busybox:1.36@D",
                "docker.io/library/busybox:1.36@D",
                "busybox:1.36@D",
                "busybox",
            ),
            (
                "[::1]:5000/x",
                "[::1]:5000/x:latest",
                "[::1]:5000/x:latest",
                "[::1]:5000/x",
            ),
            (
                "Registry.Example.com/x",
                "Registry.Example.com/x:latest",
                "Registry.Example.com/x:latest",
                "Registry.Example.com/x",
            ),
            // docker: an uppercase first component is a domain.
            ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest", "Foo/bar"),
            (
                "user/a-b.c_d__e---f",
                "docker.io/user/a-b.c_d__e---f:latest",
                "user/a-b.c_d__e---f:latest",
                "user/a-b.c_d__e---f",
            ),
            (
                "busybox:Tag_1.2-x",
                "docker.io/library/busybox:Tag_1.2-x",
                "busybox:Tag_1.2-x",
                "busybox",
            ),
            // no slash: `localhost:5000` is busybox-like name + tag.
            (
                "localhost:5000",
                "docker.io/library/localhost:5000",
                "localhost:5000",
                "localhost",
            ),
        ];
        for (input, full, familiar, fname) in cases {
            let r = Reference::parse(&at(input)).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), at(full), "{input}");
            assert_eq!(r.familiar(), at(familiar), "{input}");
            assert_eq!(r.familiar_name(), *fname, "{input}");
            // The full form parses to itself.
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{input}");
        }
        let r = Reference::parse(&at("127.0.0.1:5000/a/b@D")).unwrap();
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.path, "a/b");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.unwrap().as_str(), D);
        assert_eq!(
            Reference::parse("busybox").unwrap().name(),
            "docker.io/library/busybox"
        );
    }

    #[test]
    fn refuses_what_docker_refuses() {
        use ReferenceError::*;
        let long = format!("a/{}", "b".repeat(250));
        let hex = "a".repeat(64);
        let cases: &[(&str, ReferenceError)] = &[
            ("", Format),
            (":tag", Format),
            ("busybox:", Format),
            ("busybox/", Format),
            ("/busybox", Format),
            ("a//b", Format),
            ("a/b/", Format),
            ("Busybox", Uppercase),
            ("user/App", Uppercase),
            ("Foo/Bar", Uppercase),
            ("busybox:bad tag", Format),
            ("busybox:.tag", Format),
            ("busybox:-tag", Format),
            (&format!("busybox:{}", "t".repeat(129)), Format),
            ("busybox:a:b", Format),
            ("a_-b", Format),
            ("a..b", Format),
            ("a___b", Format),
            ("-a", Format),
            ("a-", Format),
            ("busy box", Format),
            ("my.reg:port/x", Format),
            ("-reg.io/x", Format),
            (
                "busybox@sha256:abc",
                Digest(DigestError::Invalid("sha256:abc".into())),
            ),
            // The first `/` makes `busybox@sha256:..` a (bad) domain, as in docker.
            ("busybox@sha256:../../x", Format),
            (
                "busybox@sha256:x.y",
                Digest(DigestError::Invalid("sha256:x.y".into())),
            ),
            (&long, TooLong),
            (&hex, HexName(hex.clone())),
        ];
        for (input, want) in cases {
            assert_eq!(Reference::parse(input).as_ref(), Err(want), "{input:?}");
        }
        // 255 is the limit, with the domain counted.
        let ok = format!("a/{}", "b".repeat(255 - "docker.io/a/".len()));
        assert!(Reference::parse(&ok).is_ok());
        assert_eq!(
            ReferenceError::Uppercase.to_string(),
            "invalid reference format: repository name must be lowercase"
        );
    }
}
