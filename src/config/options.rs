//! `RawOptions::into_config`: every option validated, with docker's messages.

use std::collections::BTreeMap;

use super::caps::normalize_cap;
use super::mounts::{parse_device, parse_tmpfs, parse_volume};
use super::parse::{is_ip, merge_env, parse_env_line, parse_int, parse_ulimit, validate_name};
use super::{
    invalid, CgroupnsMode, ConfigError, ContainerConfig, HostFacts, LogDriver, NetworkMode,
    PullPolicy, RawOptions, UsernsMode, DEFAULT_CGROUP_PARENT, DEFAULT_PATH,
};

impl RawOptions {
    /// Validate everything and produce the config. Reads `--env-file` files; nothing else
    /// touches the system.
    pub fn into_config(self, host: &HostFacts) -> Result<ContainerConfig, ConfigError> {
        let name = self.name.as_deref().map(validate_name).transpose()?;
        let resources = self.resources(host)?;

        // Image / rootfs and the command.
        let mut args = self.args.into_iter();
        let (image, rootfs) = match self.rootfs {
            Some(r) => {
                let abs = if r.is_absolute() {
                    r
                } else {
                    std::env::current_dir()
                        .map_err(|e| ConfigError::Invalid(format!("current directory: {e}")))?
                        .join(r)
                };
                (abs.display().to_string(), abs)
            }
            // The rootfs comes from the image when the container is created.
            None => match args.next() {
                Some(img) if !img.is_empty() => (img, std::path::PathBuf::new()),
                Some(_) => return Err(ConfigError::Invalid("invalid reference format".into())),
                None => {
                    return Err(ConfigError::Invalid(
                        "an image or --rootfs DIR is required".into(),
                    ))
                }
            },
        };
        let cmd: Vec<String> = args.collect();
        let entrypoint: Vec<String> = match self.entrypoint.as_deref() {
            None | Some("") => Vec::new(),
            Some(e) => vec![e.to_string()],
        };
        let from_image = rootfs.as_os_str().is_empty();
        // An image may bring its own command (checked once its config is merged).
        if cmd.is_empty() && entrypoint.is_empty() && !from_image {
            return Err(ConfigError::Invalid("No command specified".into()));
        }

        // Environment: PATH, env files, then -e (later wins).
        let mut from_files = Vec::new();
        for f in &self.env_file {
            let text = std::fs::read_to_string(f).map_err(|e| ConfigError::EnvFile {
                path: f.display().to_string(),
                why: e.to_string(),
            })?;
            for line in text.lines() {
                if let Some(kv) =
                    parse_env_line(line, &host.env).map_err(|why| ConfigError::EnvFile {
                        path: f.display().to_string(),
                        why,
                    })?
                {
                    from_files.push(kv);
                }
            }
        }
        let mut from_flags = Vec::new();
        for e in &self.env {
            if let Some(kv) = parse_env_line(e, &host.env).map_err(|w| invalid("--env", e, w))? {
                from_flags.push(kv);
            }
        }
        // With an image, its Env comes between docker's PATH and these (apply_image).
        let env = if from_image {
            merge_env(&[&from_files, &from_flags])
        } else {
            merge_env(&[&[DEFAULT_PATH.to_string()], &from_files, &from_flags])
        };

        if let Some(w) = &self.workdir {
            if !w.starts_with('/') {
                return Err(ConfigError::Invalid(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        if let Some(u) = &self.user {
            if u.is_empty() || u.split(':').count() > 2 || u.split(':').any(|p| p.is_empty()) {
                return Err(invalid("--user", u, "expected USER[:GROUP]"));
            }
        }
        if let Some(h) = &self.hostname {
            let ok = !h.is_empty()
                && h.len() <= 64
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            if !ok {
                return Err(invalid("--hostname", h, "not a valid hostname"));
            }
        }

        let ulimits = self
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<Vec<_>, _>>()?;
        let cap_add = self
            .cap_add
            .iter()
            .map(|c| normalize_cap("--cap-add", c))
            .collect::<Result<Vec<_>, _>>()?;
        let cap_drop = self
            .cap_drop
            .iter()
            .map(|c| normalize_cap("--cap-drop", c))
            .collect::<Result<Vec<_>, _>>()?;

        let mut no_new_privileges = false;
        let (mut seccomp_profile, mut seccomp_unconfined) = (None, false);
        for o in &self.security_opt {
            let seccomp = o
                .strip_prefix("seccomp=")
                .or_else(|| o.strip_prefix("seccomp:"));
            if let Some(v) = seccomp.filter(|v| *v != "unconfined") {
                let text = crate::security::seccomp::read_profile(v)
                    .map_err(|e| invalid("--security-opt", o, e.to_string()))?;
                (seccomp_profile, seccomp_unconfined) = (Some(text), false);
                continue;
            }
            if seccomp.is_some() {
                (seccomp_profile, seccomp_unconfined) = (None, true);
                continue;
            }
            match o.as_str() {
                "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                    no_new_privileges = true
                }
                "no-new-privileges=false" | "no-new-privileges:false" => no_new_privileges = false,
                "seccomp=unconfined"
                | "seccomp:unconfined"
                | "apparmor=unconfined"
                | "apparmor:unconfined"
                | "label=disable"
                | "label:disable" => {}
                _ => {
                    let why = crate::security::lsm_refusal(o).unwrap_or_else(|| {
                        "unknown option (ocishim takes no-new-privileges, seccomp=FILE|unconfined, apparmor=unconfined, label=disable)".into()
                    });
                    return Err(invalid("--security-opt", o, why));
                }
            }
        }

        let binds = self
            .volume
            .iter()
            .map(|v| parse_volume(v))
            .collect::<Result<Vec<_>, _>>()?;
        let tmpfs = self
            .tmpfs
            .iter()
            .map(|t| parse_tmpfs(t))
            .collect::<Result<Vec<_>, _>>()?;
        let devices = self
            .device
            .iter()
            .map(|d| parse_device(d))
            .collect::<Result<Vec<_>, _>>()?;

        let oom_score_adj = match &self.oom_score_adj {
            None => 0,
            Some(v) => {
                let n = parse_int("--oom-score-adj", v)?;
                if !(-1000..=1000).contains(&n) {
                    return Err(ConfigError::Invalid(format!(
                        "Invalid value {n}, range for oom score adj is [-1000, 1000]"
                    )));
                }
                n as i32
            }
        };

        let mut labels = BTreeMap::new();
        for l in &self.label {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                return Err(invalid("--label", l, "empty label name"));
            }
            labels.insert(k.to_string(), v.to_string());
        }

        let cgroup_parent = match self.cgroup_parent.as_deref() {
            None | Some("") => DEFAULT_CGROUP_PARENT.to_string(),
            Some(p) => {
                let ok = p
                    .split('/')
                    .all(|c| c != ".." && c != "." && !c.contains(char::is_whitespace))
                    && !p.trim_matches('/').is_empty();
                if !ok {
                    return Err(invalid(
                        "--cgroup-parent",
                        p,
                        "must be a path of plain names",
                    ));
                }
                p.trim_matches('/').to_string()
            }
        };

        let network = match self.network.as_deref().unwrap_or("bridge") {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "bridge" | "default" => NetworkMode::Bridge("bridge".into()),
            n if n.starts_with("container:") => {
                let target = &n["container:".len()..];
                if target.is_empty() {
                    return Err(invalid(
                        "--network",
                        n,
                        "container: needs a container ID or name",
                    ));
                }
                NetworkMode::Container(target.to_string())
            }
            n => {
                if validate_name(n).is_err() {
                    return Err(invalid("--network", n, "not a valid network name"));
                }
                NetworkMode::Bridge(n.to_string())
            }
        };
        if matches!(network, NetworkMode::Container(_) | NetworkMode::Host)
            && self.hostname.is_some()
        {
            return Err(ConfigError::Invalid(
                "Conflicting options: hostname and the network mode".into(),
            ));
        }
        for d in &self.dns {
            if !is_ip(d) {
                return Err(invalid("--dns", d, "not an IP address"));
            }
        }
        for s in &self.dns_search {
            if s.is_empty() || s.contains(char::is_whitespace) || s.len() > 253 {
                return Err(invalid("--dns-search", s, "not a valid domain"));
            }
        }
        for o in &self.dns_option {
            if o.is_empty() || o.contains(char::is_whitespace) {
                return Err(invalid("--dns-option", o, "not a valid resolver option"));
            }
        }
        let mut extra_hosts = Vec::new();
        for h in &self.add_host {
            // NAME:IP; the IP may be IPv6 with colons, so split at the first ':'.
            let (n, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .ok_or_else(|| invalid("--add-host", h, "bad format, expected NAME:IP"))?;
            if n.is_empty() || !is_ip(ip.trim_start_matches('[').trim_end_matches(']')) {
                return Err(invalid("--add-host", h, "bad format, expected NAME:IP"));
            }
            extra_hosts.push((
                n.to_string(),
                ip.trim_start_matches('[').trim_end_matches(']').to_string(),
            ));
        }

        let userns = match self.userns.as_deref() {
            None | Some("host") | Some("") => UsernsMode::Host,
            Some("auto") => UsernsMode::Auto,
            Some(other) => return Err(invalid("--userns", other, "want host or auto")),
        };
        let cgroupns = match self.cgroupns.as_deref() {
            None | Some("") => CgroupnsMode::Default,
            Some("host") => CgroupnsMode::Host,
            Some("private") => CgroupnsMode::Private,
            Some(other) => return Err(invalid("--cgroupns", other, "want host or private")),
        };
        if userns == UsernsMode::Auto {
            // docker's refusals with user namespaces on.
            if self.privileged {
                return Err(ConfigError::Invalid(
                    "privileged mode is incompatible with user namespaces. You must run the container in the host namespace when running privileged mode".into(),
                ));
            }
            if network == NetworkMode::Host {
                return Err(ConfigError::Invalid(
                    "cannot share the host's network namespace when user namespaces are enabled"
                        .into(),
                ));
            }
        }

        let log_driver = match self.log_driver.as_deref().unwrap_or("json-file") {
            "json-file" => LogDriver::JsonFile,
            "none" => LogDriver::None,
            other => {
                return Err(invalid(
                    "--log-driver",
                    other,
                    "unsupported log driver (json-file, none)",
                ))
            }
        };

        let log_opts = super::log_opts::parse(&self.log_opt, log_driver)?;

        let pull = match self.pull.as_deref().unwrap_or("missing") {
            "missing" => PullPolicy::Missing,
            "never" => PullPolicy::Never,
            "always" => PullPolicy::Always,
            other => {
                return Err(invalid(
                    "--pull",
                    other,
                    "must be one of \"always\", \"missing\", \"never\"",
                ))
            }
        };
        if let Some(p) = &self.platform {
            crate::image::pull::Platform::parse(p).map_err(|_| {
                invalid("--platform", p, "want os/arch[/variant], e.g. linux/amd64")
            })?;
        }
        Ok(ContainerConfig {
            name,
            image,
            from_image,
            image_id: None,
            pull,
            platform: self.platform,
            stop_signal: None,
            exposed_ports: Vec::new(),
            rootfs,
            entrypoint,
            cmd,
            env,
            workdir: self.workdir,
            user: self.user,
            hostname: self.hostname,
            resources,
            ulimits,
            cap_add,
            cap_drop,
            privileged: self.privileged,
            read_only: self.read_only,
            no_new_privileges,
            seccomp_profile,
            seccomp_unconfined,
            userns,
            cgroupns,
            binds_raw: self.volume,
            binds,
            tmpfs,
            devices,
            oom_score_adj,
            labels,
            cgroup_parent,
            network,
            dns: self.dns,
            dns_search: self.dns_search,
            dns_options: self.dns_option,
            extra_hosts,
            log_driver,
            log_opts,
            auto_remove: self.rm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::{host, raw};

    #[test]
    fn env_merging() {
        let mut r = raw(&["sh"]);
        r.env = vec![
            "A=1".into(),
            "FOO".into(),
            "BAR".into(),
            "A=2".into(),
            "PATH=/x".into(),
        ];
        let c = r.into_config(&host()).unwrap();
        assert_eq!(c.env, vec!["PATH=/x", "A=2", "FOO=from-host"]);
    }

    #[test]
    fn other_flags() {
        let try_cfg = |f: &dyn Fn(&mut RawOptions)| {
            let mut r = raw(&["sh"]);
            f(&mut r);
            r.into_config(&host())
        };
        assert!(try_cfg(&|r| r.oom_score_adj = Some("1001".into())).is_err());
        assert_eq!(
            try_cfg(&|r| r.oom_score_adj = Some("-500".into()))
                .unwrap()
                .oom_score_adj,
            -500
        );
        assert_eq!(
            try_cfg(&|_| {}).unwrap().network,
            NetworkMode::Bridge("bridge".into())
        );
        assert_eq!(
            try_cfg(&|r| r.network = Some("container:abc".into()))
                .unwrap()
                .network,
            NetworkMode::Container("abc".into())
        );
        assert!(try_cfg(&|r| r.network = Some("container:".into())).is_err());
        assert!(try_cfg(&|r| r.network = Some("../x".into())).is_err());
        assert_eq!(
            try_cfg(&|r| r.network = Some("host".into()))
                .unwrap()
                .network,
            NetworkMode::Host
        );
        assert!(try_cfg(&|r| r.dns = vec!["notanip".into()]).is_err());
        assert!(try_cfg(&|r| r.add_host = vec!["x".into()]).is_err());
        assert_eq!(
            try_cfg(&|r| r.add_host = vec!["db:10.0.0.2".into(), "v6:::1".into()])
                .unwrap()
                .extra_hosts,
            vec![
                ("db".into(), "10.0.0.2".into()),
                ("v6".into(), "::1".into())
            ]
        );
        assert!(try_cfg(&|r| r.workdir = Some("rel".into())).is_err());
        assert!(try_cfg(&|r| r.log_driver = Some("syslog".into())).is_err());
        assert!(try_cfg(&|r| r.cgroup_parent = Some("../x".into())).is_err());
        assert!(try_cfg(&|r| r.cpuset_cpus = Some("0-5".into())).is_err());
        assert!(try_cfg(&|r| r.cpuset_cpus = Some("x".into())).is_err());
        assert_eq!(
            try_cfg(&|r| r.cpuset_cpus = Some("1".into()))
                .unwrap()
                .resources
                .cpuset_cpus,
            "1"
        );
        assert!(try_cfg(&|r| r.security_opt = vec!["seccomp=x.json".into()]).is_err());
        assert!(
            try_cfg(&|r| r.security_opt = vec!["no-new-privileges".into()])
                .unwrap()
                .no_new_privileges
        );
        assert!(try_cfg(&|r| r.pids_limit = Some("abc".into())).is_err());
        assert_eq!(
            try_cfg(&|r| r.pids_limit = Some("64".into()))
                .unwrap()
                .resources
                .pids_limit,
            Some(64)
        );
        let mut r = raw(&[]);
        r.rootfs = None;
        r.args = vec!["busybox".into()];
        let c = r.into_config(&host()).unwrap();
        assert!(c.from_image && c.image == "busybox" && c.cmd.is_empty());
        assert_eq!(c.env, Vec::<String>::new(), "the image's Env comes first");
        assert_eq!(
            raw(&[]).into_config(&host()).unwrap_err().to_string(),
            "No command specified"
        );
    }

    #[test]
    fn cgroupns_modes() {
        let with = |mode: Option<&str>| {
            let mut r = raw(&["sh"]);
            r.cgroupns = mode.map(Into::into);
            r.into_config(&host())
        };
        assert_eq!(with(None).unwrap().cgroupns, CgroupnsMode::Default);
        assert_eq!(with(Some("host")).unwrap().cgroupns, CgroupnsMode::Host);
        assert_eq!(
            with(Some("private")).unwrap().cgroupns,
            CgroupnsMode::Private
        );
        let e = with(Some("shared")).unwrap_err().to_string();
        assert!(e.contains("--cgroupns") && e.contains("shared"), "{e}");
        // docker's daemon default: the host's on v1, the container's own on v2.
        for (mode, v1, v2) in [
            (CgroupnsMode::Default, "host", "private"),
            (CgroupnsMode::Host, "host", "host"),
            (CgroupnsMode::Private, "private", "private"),
        ] {
            assert_eq!((mode.resolved(false), mode.resolved(true)), (v1, v2));
            assert_eq!(mode.private(false), v1 == "private");
        }
        // A config stored by an earlier version (no field) had a namespace of its own.
        let mut v = serde_json::to_value(with(None).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("cgroupns");
        let stored: ContainerConfig = serde_json::from_value(v).unwrap();
        assert_eq!(stored.cgroupns, CgroupnsMode::Private);
    }

    #[test]
    fn userns_modes() {
        let with = |mode: Option<&str>, f: &dyn Fn(&mut RawOptions)| {
            let mut r = raw(&["sh"]);
            r.userns = mode.map(Into::into);
            f(&mut r);
            r.into_config(&host())
        };
        assert_eq!(with(None, &|_| {}).unwrap().userns, UsernsMode::Host);
        assert_eq!(
            with(Some("host"), &|_| {}).unwrap().userns,
            UsernsMode::Host
        );
        assert_eq!(
            with(Some("auto"), &|_| {}).unwrap().userns,
            UsernsMode::Auto
        );
        assert!(with(Some("keep-id"), &|_| {})
            .unwrap_err()
            .to_string()
            .contains("--userns"));
        // docker's refusals: privileged, the host's network namespace.
        assert!(with(Some("auto"), &|r| r.privileged = true).is_err());
        assert!(with(Some("host"), &|r| r.privileged = true).is_ok());
        assert!(with(Some("auto"), &|r| r.network = Some("host".into())).is_err());
        assert!(with(Some("auto"), &|r| r.network = Some("none".into())).is_ok());
    }
}
