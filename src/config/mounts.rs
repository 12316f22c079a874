//! `--volume`, `--tmpfs` and `--device` values: host and container paths.

use std::path::PathBuf;

use super::{invalid, Bind, ConfigError, DeviceMapping, Tmpfs};

/// Bind propagation modes `-v` accepts.
const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// `-v HOST:CTR[:opts]`.
pub fn parse_volume(s: &str) -> Result<Bind, ConfigError> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = |why: &str| invalid("--volume", s, why.to_string());
    let (src, dst, opts) = match parts.as_slice() {
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        [_] => {
            return Err(bad(
                "anonymous volumes are not supported: use HOST:CONTAINER",
            ))
        }
        _ => return Err(bad("invalid volume specification")),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(bad("invalid volume specification"));
    }
    if !src.starts_with('/') {
        return Err(bad(
            "named volumes are not supported: the host path must be absolute",
        ));
    }
    if !dst.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    if clean_path(dst) == "/" {
        return Err(bad("invalid specification: destination can't be '/'"));
    }
    let mut read_only = false;
    let mut propagation = "rprivate".to_string();
    let mut seen_mode = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" => {
                if seen_mode {
                    return Err(bad("invalid mode: ro and rw both given"));
                }
                seen_mode = true;
                read_only = o == "ro";
            }
            "z" | "Z" | "nocopy" => {}
            p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
            other => return Err(bad(&format!("invalid mode: {other}"))),
        }
    }
    Ok(Bind {
        source: PathBuf::from(clean_path(src)),
        destination: clean_path(dst),
        read_only,
        propagation,
    })
}

/// Lexically clean an absolute path: no empty, "." components; ".." resolved.
pub fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// `--tmpfs CTR[:opts]`; docker's default options are noexec,nosuid,nodev.
pub fn parse_tmpfs(s: &str) -> Result<Tmpfs, ConfigError> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    if !dst.starts_with('/') {
        return Err(invalid("--tmpfs", s, "the container path must be absolute"));
    }
    if clean_path(dst) == "/" {
        return Err(invalid("--tmpfs", s, "destination can't be '/'"));
    }
    let mut options: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let key = o.split('=').next().unwrap_or(o);
        if let Some(opp) = match key {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            _ => None,
        } {
            options.retain(|x| x != opp);
        }
        if !options.iter().any(|x| x == o) {
            options.push(o.to_string());
        }
    }
    Ok(Tmpfs {
        destination: clean_path(dst),
        options,
    })
}

/// `--device HOST[:CTR[:rwm]]`.
pub fn parse_device(s: &str) -> Result<DeviceMapping, ConfigError> {
    let parts: Vec<&str> = s.split(':').collect();
    let is_perms = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => {
            return Err(invalid(
                "--device",
                s,
                "expected HOST[:CONTAINER[:PERMISSIONS]]",
            ))
        }
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(invalid("--device", s, "device paths must be absolute"));
    }
    if !is_perms(perms) {
        return Err(invalid(
            "--device",
            s,
            format!("invalid device mode: {perms}"),
        ));
    }
    Ok(DeviceMapping {
        host: PathBuf::from(host),
        container: clean_path(ctr),
        permissions: perms.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let b = parse_volume("/data:/mnt/data:ro").unwrap();
        assert_eq!(b.source, PathBuf::from("/data"));
        assert_eq!(b.destination, "/mnt/data");
        assert!(b.read_only);
        assert_eq!(b.propagation, "rprivate");
        let b = parse_volume("/data/:/x/./y:rw,rshared").unwrap();
        assert_eq!(b.destination, "/x/y");
        assert!(!b.read_only);
        assert_eq!(b.propagation, "rshared");
        for bad in [
            "data:/x",
            "/a:b",
            "/a",
            "/a:/",
            "/a:/b:foo",
            "/a:/b:ro:x",
            ":/b",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_and_devices() {
        let t = parse_tmpfs("/run").unwrap();
        assert_eq!(t.options, vec!["noexec", "nosuid", "nodev"]);
        let t = parse_tmpfs("/run:exec,size=64m").unwrap();
        assert_eq!(t.options, vec!["nosuid", "nodev", "exec", "size=64m"]);
        assert!(parse_tmpfs("run").is_err());
        let d = parse_device("/dev/fuse").unwrap();
        assert_eq!(
            (d.container.as_str(), d.permissions.as_str()),
            ("/dev/fuse", "rwm")
        );
        let d = parse_device("/dev/fuse:r").unwrap();
        assert_eq!(
            (d.container.as_str(), d.permissions.as_str()),
            ("/dev/fuse", "r")
        );
        let d = parse_device("/dev/fuse:/dev/f:rw").unwrap();
        assert_eq!(
            (d.container.as_str(), d.permissions.as_str()),
            ("/dev/f", "rw")
        );
        assert!(parse_device("/dev/fuse:/dev/f:rx").is_err());
        assert!(parse_device("fuse").is_err());
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path("/a/../b/./c//"), "/b/c");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("/.."), "/");
    }
}
