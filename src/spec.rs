//! `ContainerConfig` → `oci_spec::runtime::Spec`, with docker's defaults. Every field is set
//! explicitly: oci-spec's `Default`s (hostname "youki", capabilities in inheritable and
//! ambient, NOFILE 1024, noNewPrivileges true) are not docker's.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::config::{effective_caps, merge_env, ContainerConfig, NetworkMode, DEFAULT_PATH};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("building the runtime spec: {0}")]
    Build(#[from] oci_spec::OciSpecError),
    #[error("unknown capability {0}")]
    Capability(String),
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
}

/// Masked paths docker uses for unprivileged containers.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Read-only paths docker uses for unprivileged containers.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A user resolved against the rootfs's /etc/passwd and /etc/group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// A device to create in the container, resolved from the host's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDevice {
    pub path: String,
    pub typ: char,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub permissions: String,
}

/// Host files bind-mounted over the container's /etc entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Everything spec generation needs beyond the config, resolved by the caller.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub cfg: &'a ContainerConfig,
    pub hostname: String,
    pub user: ResolvedUser,
    pub devices: Vec<ResolvedDevice>,
    pub etc: Option<EtcFiles>,
    pub cgroups_path: String,
    /// Whether the kernel has cgroup namespaces.
    pub cgroup_ns: bool,
    /// A network namespace to join (bridge networks, container:ID); None: a new one.
    pub netns: Option<PathBuf>,
}

fn parse_id_entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
}

/// Resolve `USER[:GROUP]` (names or numbers) as runc/docker do: a numeric uid without a
/// passwd entry gets gid 0; supplementary groups come from /etc/group membership.
pub fn resolve_user(
    spec: Option<&str>,
    passwd: &str,
    group: &str,
) -> Result<ResolvedUser, SpecError> {
    let spec = spec.unwrap_or("0");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = parse_id_entries(passwd)
        .find(|e| e.len() >= 4 && (e[0] == u || (u.parse::<u32>().is_ok() && e[2] == u)));
    let (uid, mut gid, user_name) = match (&entry, u.parse::<u32>()) {
        (Some(e), _) => (
            e[2].parse().unwrap_or(0),
            e[3].parse().unwrap_or(0),
            Some(e[0].to_string()),
        ),
        (None, Ok(n)) => (n, 0, None),
        (None, Err(_)) => return Err(SpecError::NoSuchUser(u.to_string())),
    };
    if let Some(g) = g {
        gid = match parse_id_entries(group).find(|e| e.len() >= 3 && e[0] == g) {
            Some(e) => e[2].parse().unwrap_or(0),
            None => g
                .parse::<u32>()
                .map_err(|_| SpecError::NoSuchGroup(g.to_string()))?,
        };
    }
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (user_name, g) {
        for e in parse_id_entries(group).filter(|e| e.len() >= 4) {
            if e[3].split(',').any(|m| m == name) {
                if let Ok(id) = e[2].parse::<u32>() {
                    if id != gid && !additional_gids.contains(&id) {
                        additional_gids.push(id);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

fn caps(names: &[String]) -> Result<Capabilities, SpecError> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone()))
                .map_err(|_| SpecError::Capability(n.clone()))
        })
        .collect::<Result<HashSet<_>, _>>()
}

fn mount(dst: &str, typ: &str, src: &str, opts: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dst)
        .typ(typ)
        .source(src)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn rlimit_type(name: &str) -> PosixRlimitType {
    match name {
        "as" => PosixRlimitType::RlimitAs,
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        _ => PosixRlimitType::RlimitStack,
    }
}

fn dev_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

/// Docker's default device cgroup rules: deny all, then mknod of anything and the
/// standard character devices.
fn default_device_rules() -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    use LinuxDeviceType::{A, B, C};
    let mut v = vec![
        dev_rule(false, A, None, None, "rwm")?,
        dev_rule(true, C, None, None, "m")?,
        dev_rule(true, B, None, None, "m")?,
    ];
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        v.push(dev_rule(true, C, Some(maj), Some(min), "rwm")?);
    }
    v.push(dev_rule(true, C, Some(136), None, "rwm")?);
    v.push(dev_rule(true, C, Some(10), Some(200), "rwm")?);
    Ok(v)
}

fn depth(p: &str) -> usize {
    p.split('/').filter(|c| !c.is_empty()).count()
}

/// Generate the runtime spec.
pub fn generate(inp: &SpecInput) -> Result<Spec, SpecError> {
    let cfg = inp.cfg;

    // Process.
    let env = merge_env(&[
        &[DEFAULT_PATH.to_string()],
        &[format!("HOSTNAME={}", inp.hostname)],
        &cfg.env,
    ]);
    let cap_names = effective_caps(cfg);
    let capset = caps(&cap_names)?;
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(capset.clone())
        .effective(capset.clone())
        .permitted(capset)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()?;
    let mut user = UserBuilder::default()
        .uid(inp.user.uid)
        .gid(inp.user.gid)
        .build()?;
    user.set_additional_gids(
        (!inp.user.additional_gids.is_empty()).then(|| inp.user.additional_gids.clone()),
    );
    user.set_umask(None);
    user.set_username(None);
    let rlimits = cfg
        .ulimits
        .iter()
        .map(|u| {
            let v = |x: i64| if x < 0 { u64::MAX } else { x as u64 };
            PosixRlimitBuilder::default()
                .typ(rlimit_type(&u.name))
                .soft(v(u.soft))
                .hard(v(u.hard))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(cfg.argv())
        .env(env)
        .cwd(cfg.workdir.clone().unwrap_or_else(|| "/".into()))
        .capabilities(capabilities)
        .no_new_privileges(cfg.no_new_privileges)
        .oom_score_adj(cfg.oom_score_adj)
        .build()?;
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_console_size(None);
    process.set_apparmor_profile(None);
    process.set_selinux_label(None);
    process.set_scheduler(None);
    process.set_io_priority(None);
    process.set_command_line(None);
    process.set_exec_cpu_affinity(None);

    // Mounts: docker's defaults, then the per-container /etc files, then the user's; a
    // user mount on a default destination replaces it.
    let sys_ro = if cfg.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_ro],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ];
    if let Some(etc) = &inp.etc {
        for (dst, src) in [
            ("/etc/resolv.conf", &etc.resolv_conf),
            ("/etc/hostname", &etc.hostname),
            ("/etc/hosts", &etc.hosts),
        ] {
            mounts.push(mount(
                dst,
                "bind",
                &src.to_string_lossy(),
                &["rbind", "rprivate"],
            )?);
        }
    }
    let mut user_mounts = Vec::new();
    for b in &cfg.binds {
        let mut opts = vec!["rbind", b.propagation.as_str()];
        if b.read_only {
            opts.push("ro");
        }
        user_mounts.push(mount(
            &b.destination,
            "bind",
            &b.source.to_string_lossy(),
            &opts,
        )?);
    }
    for t in &cfg.tmpfs {
        let opts: Vec<&str> = t.options.iter().map(String::as_str).collect();
        user_mounts.push(mount(&t.destination, "tmpfs", "tmpfs", &opts)?);
    }
    // docker sorts user mounts by depth so parents mount before children.
    user_mounts.sort_by_key(|m| depth(&m.destination().to_string_lossy()));
    mounts.retain(|m| {
        !user_mounts
            .iter()
            .any(|u| u.destination() == m.destination())
    });
    mounts.extend(user_mounts);

    // Resources.
    let r = &cfg.resources;
    let mut devices_rules = if cfg.privileged {
        vec![dev_rule(true, LinuxDeviceType::A, None, None, "rwm")?]
    } else {
        default_device_rules()?
    };
    let mut devices = Vec::new();
    for d in &inp.devices {
        let typ = match d.typ {
            'b' => LinuxDeviceType::B,
            'p' => LinuxDeviceType::P,
            _ => LinuxDeviceType::C,
        };
        devices.push(
            LinuxDeviceBuilder::default()
                .path(d.path.clone())
                .typ(typ)
                .major(d.major)
                .minor(d.minor)
                .file_mode(d.file_mode)
                .uid(d.uid)
                .gid(d.gid)
                .build()?,
        );
        if !cfg.privileged {
            devices_rules.push(dev_rule(
                true,
                typ,
                Some(d.major),
                Some(d.minor),
                &d.permissions,
            )?);
        }
    }
    let mut resources = LinuxResourcesBuilder::default()
        .devices(devices_rules)
        .build()?;
    resources.set_block_io(None);
    resources.set_hugepage_limits(None);
    resources.set_network(None);
    resources.set_rdma(None);
    resources.set_unified(None);
    let swap = r.effective_swap();
    if r.memory > 0 || r.memory_reservation > 0 || swap.is_some() {
        let mut m = LinuxMemoryBuilder::default().build()?;
        m.set_limit((r.memory > 0).then_some(r.memory));
        m.set_reservation((r.memory_reservation > 0).then_some(r.memory_reservation));
        m.set_swap(swap);
        resources.set_memory(Some(m));
    } else {
        resources.set_memory(None);
    }
    let (quota, period) = r.cfs();
    if r.cpu_shares > 0
        || quota.is_some()
        || period.is_some()
        || !r.cpuset_cpus.is_empty()
        || !r.cpuset_mems.is_empty()
    {
        let mut c = LinuxCpuBuilder::default().build()?;
        c.set_shares((r.cpu_shares > 0).then_some(r.cpu_shares as u64));
        c.set_quota(quota);
        c.set_period(period);
        c.set_cpus((!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()));
        c.set_mems((!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()));
        resources.set_cpu(Some(c));
    } else {
        resources.set_cpu(None);
    }
    match r.pids_limit {
        Some(n) => resources.set_pids(Some(
            LinuxPidsBuilder::default()
                .limit(if n > 0 { n } else { -1 })
                .build()?,
        )),
        None => resources.set_pids(None),
    };

    // Namespaces.
    let mut ns_types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if cfg.network != NetworkMode::Host {
        ns_types.push(LinuxNamespaceType::Network);
    }
    if inp.cgroup_ns {
        ns_types.push(LinuxNamespaceType::Cgroup);
    }
    let namespaces = ns_types
        .into_iter()
        .map(|t| {
            let b = LinuxNamespaceBuilder::default().typ(t);
            match (&inp.netns, t) {
                (Some(p), LinuxNamespaceType::Network) => b.path(p.clone()).build(),
                _ => b.build(),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut sysctl = HashMap::new();
    if matches!(cfg.network, NetworkMode::None | NetworkMode::Bridge(_)) {
        sysctl.insert(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            "0".to_string(),
        );
        sysctl.insert(
            "net.ipv4.ping_group_range".to_string(),
            "0 2147483647".to_string(),
        );
    }

    let mut linux = LinuxBuilder::default()
        .resources(resources)
        .cgroups_path(PathBuf::from(&inp.cgroups_path))
        .namespaces(namespaces)
        .build()?;
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_net_devices(None);
    linux.set_sysctl((!sysctl.is_empty()).then_some(sysctl));
    linux.set_devices((!devices.is_empty()).then_some(devices));
    linux.set_seccomp(None);
    linux.set_rootfs_propagation(None);
    linux.set_mount_label(None);
    linux.set_intel_rdt(None);
    linux.set_memory_policy(None);
    linux.set_personality(None);
    linux.set_time_offsets(None);
    if cfg.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    } else {
        linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|s| s.to_string()).collect()));
        linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|s| s.to_string()).collect()));
    }

    let root = RootBuilder::default()
        .path(cfg.rootfs.clone())
        .readonly(cfg.read_only)
        .build()?;

    let mut spec = SpecBuilder::default()
        .version("1.0.2-dev")
        .root(root)
        .process(process)
        .hostname(inp.hostname.clone())
        .mounts(mounts)
        .linux(linux)
        .build()?;
    spec.set_domainname(None);
    spec.set_annotations(None);
    spec.set_hooks(None);
    spec.set_solaris(None);
    spec.set_windows(None);
    spec.set_vm(None);
    spec.set_zos(None);
    spec.set_uid_mappings(None);
    spec.set_gid_mappings(None);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostFacts, RawOptions};

    fn cfg(f: impl FnOnce(&mut RawOptions)) -> ContainerConfig {
        let mut r = RawOptions {
            rootfs: Some("/tmp/rootfs".into()),
            args: vec!["sh".into(), "-c".into(), "true".into()],
            ..Default::default()
        };
        f(&mut r);
        r.into_config(&HostFacts {
            ncpu: 2,
            cpus_online: "0-1".into(),
            mems_online: "0".into(),
            env: Default::default(),
        })
        .unwrap()
    }

    fn gen(c: &ContainerConfig) -> serde_json::Value {
        let spec = generate(&SpecInput {
            cfg: c,
            hostname: "0123456789ab".into(),
            user: ResolvedUser::default(),
            devices: vec![],
            etc: Some(EtcFiles {
                hostname: "/x/hostname".into(),
                hosts: "/x/hosts".into(),
                resolv_conf: "/x/resolv.conf".into(),
            }),
            cgroups_path: "/ocishim/abc".into(),
            cgroup_ns: true,
            netns: Some("/run/ocishim/netns/abc".into()),
        })
        .unwrap();
        serde_json::to_value(&spec).unwrap()
    }

    fn strs(v: &serde_json::Value) -> HashSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn docker_defaults() {
        let v = gen(&cfg(|_| {}));
        assert_eq!(v["hostname"], "0123456789ab");
        assert_eq!(v["process"]["terminal"], false);
        assert_eq!(v["process"]["noNewPrivileges"], false);
        assert!(v["process"].get("rlimits").is_none());
        let caps = &v["process"]["capabilities"];
        let want: HashSet<String> = crate::config::DEFAULT_CAPS
            .iter()
            .map(|c| format!("CAP_{c}"))
            .collect();
        for set in ["bounding", "permitted", "effective"] {
            assert_eq!(strs(&caps[set]), want, "{set}");
        }
        assert!(caps["inheritable"].as_array().unwrap().is_empty());
        assert!(caps["ambient"].as_array().unwrap().is_empty());
        let env = strs(&v["process"]["env"]);
        assert!(env.contains(DEFAULT_PATH));
        assert!(env.contains("HOSTNAME=0123456789ab"));
        assert_eq!(strs(&v["linux"]["maskedPaths"]).len(), MASKED_PATHS.len());
        assert_eq!(
            strs(&v["linux"]["readonlyPaths"]).len(),
            READONLY_PATHS.len()
        );
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        for d in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
        ] {
            assert!(dests.contains(&d), "{d}");
        }
        let shm = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert!(strs(&shm["options"]).contains("size=65536k"));
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network", "cgroup"]);
        assert_eq!(
            v["linux"]["namespaces"][4]["path"],
            "/run/ocishim/netns/abc"
        );
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules[0]["allow"], false);
        assert_eq!(rules[0]["access"], "rwm");
        for (maj, min) in [(1, 3), (1, 5), (1, 8), (1, 9), (5, 0), (5, 1)] {
            assert!(rules.iter().any(|r| r["allow"] == true
                && r["type"] == "c"
                && r["major"] == maj
                && r["minor"] == min
                && r["access"] == "rwm"));
        }
        assert!(v["linux"]["resources"].get("memory").is_none());
        assert!(!v.to_string().contains("youki"));
        assert!(v.get("annotations").is_none());
        assert_eq!(v["root"]["readonly"], false);
    }

    #[test]
    fn options_applied() {
        let c = cfg(|r| {
            r.memory = Some("256m".into());
            r.cpus = Some("0.5".into());
            r.pids_limit = Some("64".into());
            r.cpu_shares = Some("512".into());
            r.cap_drop = vec!["ALL".into()];
            r.cap_add = vec!["net_admin".into()];
            r.read_only = true;
            r.network = Some("host".into());
            r.volume = vec!["/data:/data:ro".into(), "/data/sub:/data/sub/x".into()];
            r.tmpfs = vec!["/dev/shm:size=1m".into()];
            r.ulimit = vec!["nofile=100:200".into()];
            r.security_opt = vec!["no-new-privileges".into()];
            r.workdir = Some("/tmp".into());
            r.env = vec!["A=1".into()];
        });
        let v = gen(&c);
        let res = &v["linux"]["resources"];
        assert_eq!(res["memory"]["limit"], 256i64 << 20);
        assert_eq!(res["memory"]["swap"], 512i64 << 20);
        assert_eq!(res["cpu"]["quota"], 50000);
        assert_eq!(res["cpu"]["period"], 100000);
        assert_eq!(res["cpu"]["shares"], 512);
        assert_eq!(res["pids"]["limit"], 64);
        assert_eq!(
            strs(&v["process"]["capabilities"]["bounding"]),
            ["CAP_NET_ADMIN".to_string()].into()
        );
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["process"]["cwd"], "/tmp");
        assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["process"]["rlimits"][0]["soft"], 100);
        assert!(strs(&v["process"]["env"]).contains("A=1"));
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(!ns.contains(&"network"));
        assert!(v["linux"].get("sysctl").is_none());
        let mounts = v["mounts"].as_array().unwrap();
        let shm: Vec<_> = mounts
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0]["type"], "tmpfs");
        assert!(strs(&shm[0]["options"]).contains("size=1m"));
        let data = mounts
            .iter()
            .position(|m| m["destination"] == "/data")
            .unwrap();
        let sub = mounts
            .iter()
            .position(|m| m["destination"] == "/data/sub/x")
            .unwrap();
        assert!(data < sub);
        assert!(strs(&mounts[data]["options"]).contains("ro"));
    }

    #[test]
    fn privileged() {
        let v = gen(&cfg(|r| r.privileged = true));
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            crate::config::ALL_CAPS.len()
        );
        assert!(v["linux"].get("maskedPaths").is_none());
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["allow"], true);
    }

    #[test]
    fn users() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        let group = "root:x:0:\nwww:x:33:\nbob:x:1000:\nwheel:x:10:bob,alice\naudio:x:29:bob\n";
        assert_eq!(
            resolve_user(None, passwd, group).unwrap(),
            ResolvedUser::default()
        );
        let bob = resolve_user(Some("bob"), passwd, group).unwrap();
        assert_eq!(
            (bob.uid, bob.gid, bob.additional_gids.clone()),
            (1000, 1000, vec![10, 29])
        );
        let b2 = resolve_user(Some("1000"), passwd, group).unwrap();
        assert_eq!(b2, bob);
        let n = resolve_user(Some("4242"), passwd, group).unwrap();
        assert_eq!((n.uid, n.gid), (4242, 0));
        let ug = resolve_user(Some("www:wheel"), passwd, group).unwrap();
        assert_eq!((ug.uid, ug.gid), (33, 10));
        assert_eq!(resolve_user(Some("5:6"), "", "").unwrap().gid, 6);
        assert!(resolve_user(Some("nobody2"), passwd, group).is_err());
        assert!(resolve_user(Some("bob:nogroup"), passwd, group).is_err());
    }
}
