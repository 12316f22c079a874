//! Capability names: docker's defaults, every capability the `caps` crate knows, and a
//! container's effective set.

use super::{invalid, ConfigError, ContainerConfig};

/// Docker's default capability set (without CAP_).
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability the `caps` crate knows, as CAP_ names in kernel order.
pub fn all_caps() -> Vec<String> {
    let mut all: Vec<::caps::Capability> = ::caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// The capabilities this process may hand on: its own bounding set, read now (CAP_ names
/// in kernel order). `--privileged` and `--cap-add ALL` mean these, not every capability
/// the library knows: a runtime cannot grant one the caller's bounding set lacks (a host
/// or an outer container may have dropped some). Every known one when it cannot be read.
pub fn bounding_caps() -> Vec<String> {
    match ::caps::read(None, ::caps::CapSet::Bounding) {
        Ok(set) => {
            let mut v: Vec<::caps::Capability> = set.into_iter().collect();
            v.sort_by_key(|c| c.index());
            v.iter().map(|c| c.to_string()).collect()
        }
        Err(_) => all_caps(),
    }
}

/// Normalize a capability as docker: case-insensitive, optional CAP_ prefix, "ALL".
pub fn normalize_cap(flag: &'static str, c: &str) -> Result<String, ConfigError> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let name = format!("CAP_{}", up.strip_prefix("CAP_").unwrap_or(&up));
    match name.parse::<::caps::Capability>() {
        Ok(cap) if ::caps::all().contains(&cap) => Ok(name),
        _ => Err(invalid(flag, c, "unknown capability")),
    }
}

/// The effective capability list (CAP_ names) after defaults, --privileged, --cap-add and
/// --cap-drop, as docker computes it: sorted, except --privileged's, which is `bounding`
/// (the caller's bounding set, [`bounding_caps`]) in kernel order; `ALL` is `bounding` too.
pub fn effective_caps(cfg: &ContainerConfig, bounding: &[String]) -> Vec<String> {
    if cfg.privileged {
        return bounding.to_vec();
    }
    let add_all = cfg.cap_add.iter().any(|c| c == "ALL");
    let drop_all = cfg.cap_drop.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if add_all {
        bounding.to_vec()
    } else if drop_all {
        Vec::new()
    } else {
        DEFAULT_CAPS.iter().map(|c| format!("CAP_{c}")).collect()
    };
    if !add_all {
        if !drop_all {
            caps.retain(|c| !cfg.cap_drop.contains(c));
        }
        for c in &cfg.cap_add {
            if !caps.contains(c) {
                caps.push(c.clone());
            }
        }
    } else {
        caps.retain(|c| !cfg.cap_drop.contains(c));
    }
    caps.sort();
    caps.dedup();
    caps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::{host, raw};

    /// The hand-written table (without CAP_) this module had before the `caps` crate.
    const OLD_TABLE: &[&str] = &[
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];

    #[test]
    fn caps_crate_has_the_old_table() {
        assert_eq!(OLD_TABLE.len(), 41);
        let all = all_caps();
        let old: Vec<String> = OLD_TABLE.iter().map(|c| format!("CAP_{c}")).collect();
        for c in &old {
            assert!(all.contains(c), "{c}");
        }
        // The old table was in kernel order, as --privileged's list still is.
        assert_eq!(all[..old.len()], old[..]);
    }

    #[test]
    fn cap_spellings() {
        for (given, want) in [
            ("chown", "CAP_CHOWN"),
            ("CAP_CHOWN", "CAP_CHOWN"),
            (" Net_Admin ", "CAP_NET_ADMIN"),
            ("cap_checkpoint_restore", "CAP_CHECKPOINT_RESTORE"),
            ("all", "ALL"),
        ] {
            assert_eq!(
                normalize_cap("--cap-add", given),
                Ok(want.to_string()),
                "{given}"
            );
        }
        for bad in ["nope", "CAP_ALL", "cap_cap_chown", "", "CAP_"] {
            assert_eq!(
                normalize_cap("--cap-drop", bad).unwrap_err().to_string(),
                format!("invalid value {bad:?} for --cap-drop: unknown capability")
            );
        }
        for c in DEFAULT_CAPS {
            assert!(normalize_cap("--cap-add", c).is_ok(), "{c}");
        }
    }

    #[test]
    fn capabilities() {
        let mut r = raw(&["sh"]);
        r.cap_add = vec!["net_admin".into(), "CAP_SYS_PTRACE".into()];
        r.cap_drop = vec!["mknod".into()];
        let c = r.into_config(&host()).unwrap();
        let caps = effective_caps(&c, &all_caps());
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!caps.contains(&"CAP_MKNOD".to_string()));
        assert_eq!(caps.len(), 15);

        let mut r = raw(&["sh"]);
        r.cap_drop = vec!["ALL".into()];
        r.cap_add = vec!["chown".into()];
        let c = r.into_config(&host()).unwrap();
        assert_eq!(effective_caps(&c, &all_caps()), vec!["CAP_CHOWN"]);

        let mut r = raw(&["sh"]);
        r.cap_add = vec!["all".into()];
        r.cap_drop = vec!["sys_admin".into()];
        let c = r.into_config(&host()).unwrap();
        let caps = effective_caps(&c, &all_caps());
        assert_eq!(caps.len(), all_caps().len() - 1);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));

        let mut r = raw(&["sh"]);
        r.cap_add = vec!["CAP_NOPE".into()];
        assert!(r.into_config(&host()).is_err());
    }
}
