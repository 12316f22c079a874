//! /etc/resolv.conf, /etc/hosts and /etc/hostname for a container, as docker writes them.

use std::path::Path;

/// Docker's fallback nameservers when none remain after filtering loopback ones.
pub const DEFAULT_NAMESERVERS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// systemd-resolved's stub address; its upstream file lists the real servers.
const RESOLVED_STUB: &str = "127.0.0.53";
const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    /// Other lines (domain, sortlist...), kept as they are.
    pub other: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            let mut words = l.split_whitespace();
            match words.next() {
                Some("nameserver") => rc.nameservers.extend(words.next().map(String::from)),
                Some("search") => rc.search = words.map(String::from).collect(),
                Some("options") => rc.options.extend(words.map(String::from)),
                _ => rc.other.push(l.to_string()),
            }
        }
        rc
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for o in &self.other {
            s.push_str(o);
            s.push('\n');
        }
        if !self.search.is_empty() {
            s.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        for n in &self.nameservers {
            s.push_str(&format!("nameserver {n}\n"));
        }
        if !self.options.is_empty() {
            s.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        s
    }
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Which host file to start from: systemd-resolved's upstream file when the host's
/// resolv.conf only points at the stub resolver.
pub fn host_resolv_conf_path(etc_resolv: &Path, upstream: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(etc_resolv).unwrap_or_default();
    let rc = ResolvConf::parse(&text);
    if !rc.nameservers.is_empty()
        && rc.nameservers.iter().all(|n| n == RESOLVED_STUB)
        && upstream.exists()
    {
        upstream.to_path_buf()
    } else {
        etc_resolv.to_path_buf()
    }
}

/// The host's resolv.conf text (empty when it has none).
pub fn read_host_resolv_conf() -> String {
    let p = host_resolv_conf_path(Path::new("/etc/resolv.conf"), Path::new(RESOLVED_UPSTREAM));
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The container's resolv.conf: the host's, loopback nameservers dropped unless the
/// container shares the host's network (docker's fallback when none remain), then
/// --dns, --dns-search, --dns-option each replacing their part whole.
pub fn container_resolv_conf(
    host_text: &str,
    host_network: bool,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let mut rc = ResolvConf::parse(host_text);
    if !host_network {
        rc.nameservers.retain(|n| !is_loopback(n));
        if rc.nameservers.is_empty() {
            rc.nameservers = DEFAULT_NAMESERVERS.iter().map(|s| s.to_string()).collect();
        }
    }
    if !dns.is_empty() {
        rc.nameservers = dns.to_vec();
    }
    if !search.is_empty() {
        // docker: a single "." means no search domains.
        rc.search = if search == ["."] {
            vec![]
        } else {
            search.to_vec()
        };
    }
    if !options.is_empty() {
        rc.options = options.to_vec();
    }
    rc.render()
}

/// The container's /etc/hosts, as docker writes it.
pub fn container_hosts(hostname: &str, ip: Option<&str>, extra: &[(String, String)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, addr) in extra {
        s.push_str(&format!("{addr}\t{name}\n"));
    }
    if let Some(ip) = ip {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# generated\ndomain example.com\nsearch a.example b.example\nnameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver ::1\noptions ndots:2 edns0\n";

    #[test]
    fn loopback_servers_dropped() {
        let out = container_resolv_conf(HOST, false, &[], &[], &[]);
        assert_eq!(
            out,
            "domain example.com\nsearch a.example b.example\nnameserver 10.0.0.2\noptions ndots:2 edns0\n"
        );
    }

    #[test]
    fn fallback_when_only_loopback() {
        let out = container_resolv_conf("nameserver 127.0.0.53\n", false, &[], &[], &[]);
        assert_eq!(out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let out = container_resolv_conf("nameserver 127.0.0.53\n", true, &[], &[], &[]);
        assert_eq!(out, "nameserver 127.0.0.53\n");
    }

    #[test]
    fn options_replace_parts() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let out = container_resolv_conf(
            HOST,
            false,
            &s(&["1.1.1.1", "9.9.9.9"]),
            &s(&["corp.local"]),
            &s(&["ndots:5"]),
        );
        assert_eq!(
            out,
            "domain example.com\nsearch corp.local\nnameserver 1.1.1.1\nnameserver 9.9.9.9\noptions ndots:5\n"
        );
        let out = container_resolv_conf(HOST, false, &[], &s(&["."]), &[]);
        assert!(!out.contains("search"));
    }

    #[test]
    fn hosts_file() {
        let h = container_hosts(
            "abc",
            Some("172.18.0.2"),
            &[("db".into(), "10.1.1.1".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(h.contains("10.1.1.1\tdb\n"));
        assert!(h.ends_with("172.18.0.2\tabc\n"));
        assert!(!container_hosts("abc", None, &[]).contains("abc"));
    }

    #[test]
    fn stub_resolver_detection() {
        let d = std::env::temp_dir().join(format!("ocishim-dns-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let etc = d.join("resolv.conf");
        let up = d.join("upstream.conf");
        std::fs::write(&etc, "nameserver 127.0.0.53\noptions edns0\n").unwrap();
        assert_eq!(
            host_resolv_conf_path(&etc, &up),
            etc,
            "no upstream file: keep /etc"
        );
        std::fs::write(&up, "nameserver 10.0.0.1\n").unwrap();
        assert_eq!(host_resolv_conf_path(&etc, &up), up);
        std::fs::write(&etc, "nameserver 10.9.9.9\n").unwrap();
        assert_eq!(host_resolv_conf_path(&etc, &up), etc);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
