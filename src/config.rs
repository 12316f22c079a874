//! `ContainerConfig`: what a scheduler asks for, parsed and validated with docker's
//! spelling, meaning and messages. Pure logic: nothing here touches the system except
//! reading `--env-file` files and the caller-supplied host facts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Docker's default PATH for containers.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Docker's minimum for --memory and --memory-reservation.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// Default --cgroup-parent.
pub const DEFAULT_CGROUP_PARENT: &str = "ocishim";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {flag}: {why}")]
    InvalidValue {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("reading env file {path}: {why}")]
    EnvFile { path: String, why: String },
}

fn invalid(flag: &'static str, value: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        flag,
        value: value.to_string(),
        why: why.into(),
    }
}

/// The container's network mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    None,
    Host,
    /// A bridge network: "bridge" (the default one) or a named network.
    Bridge(String),
    /// Join another container's network namespace (ID, prefix or name).
    Container(String),
}

impl NetworkMode {
    /// docker's HostConfig.NetworkMode spelling.
    pub fn as_str(&self) -> String {
        match self {
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Bridge(n) => n.clone(),
            NetworkMode::Container(c) => format!("container:{c}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogDriver {
    JsonFile,
    None,
}

impl LogDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Bytes; 0 = unlimited.
    pub memory: i64,
    /// Memory + swap in bytes as docker's HostConfig.MemorySwap: 0 = unset, -1 = unlimited.
    pub memory_swap: i64,
    pub memory_reservation: i64,
    /// 0 = unset.
    pub cpu_shares: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// None = unset; Some(n <= 0) = unlimited.
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// The memory+swap limit to give the runtime (runc's `memory.swap`), following docker:
    /// --memory alone gives 2x memory; -1 is unlimited; otherwise the value given.
    pub fn effective_swap(&self) -> Option<i64> {
        if self.memory <= 0 {
            return (self.memory_swap == -1).then_some(-1);
        }
        match self.memory_swap {
            0 => Some(self.memory.saturating_mul(2)),
            s => Some(s),
        }
    }

    /// CFS (quota, period) to apply: from --cpus (period 100ms) or --cpu-quota/--cpu-period.
    pub fn cfs(&self) -> (Option<i64>, Option<u64>) {
        if self.nano_cpus > 0 {
            let period: i64 = 100_000;
            return (
                Some(self.nano_cpus * period / 1_000_000_000),
                Some(period as u64),
            );
        }
        let quota = (self.cpu_quota != 0).then_some(self.cpu_quota);
        let period = (self.cpu_period > 0).then_some(self.cpu_period as u64);
        (quota, period)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
    pub propagation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub destination: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub host: PathBuf,
    pub container: String,
    pub permissions: String,
}

/// Everything `run`, `create` and `spec` take, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub name: Option<String>,
    pub image: String,
    pub rootfs: PathBuf,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// Env as given (K=V), PATH first; the image's will merge in later.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub resources: Resources,
    pub ulimits: Vec<Ulimit>,
    /// Normalized: CAP_XXX or ALL.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub no_new_privileges: bool,
    /// As given on the command line (HostConfig.Binds).
    pub binds_raw: Vec<String>,
    pub binds: Vec<Bind>,
    pub tmpfs: Vec<Tmpfs>,
    pub devices: Vec<DeviceMapping>,
    pub oom_score_adj: i32,
    pub labels: BTreeMap<String, String>,
    pub cgroup_parent: String,
    pub network: NetworkMode,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub extra_hosts: Vec<(String, String)>,
    pub log_driver: LogDriver,
    pub auto_remove: bool,
}

impl ContainerConfig {
    /// The process's argv: entrypoint then cmd.
    pub fn argv(&self) -> Vec<String> {
        self.entrypoint
            .iter()
            .chain(self.cmd.iter())
            .cloned()
            .collect()
    }
}

/// The raw option values, as clap hands them over (strings, so that every message is ours).
#[derive(Debug, Clone, Default)]
pub struct RawOptions {
    pub name: Option<String>,
    pub env: Vec<String>,
    pub env_file: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub entrypoint: Option<String>,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpus: Option<String>,
    pub cpu_period: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<String>,
    pub ulimit: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub security_opt: Vec<String>,
    pub volume: Vec<String>,
    pub tmpfs: Vec<String>,
    pub device: Vec<String>,
    pub oom_score_adj: Option<String>,
    pub label: Vec<String>,
    pub cgroup_parent: Option<String>,
    pub network: Option<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_option: Vec<String>,
    pub add_host: Vec<String>,
    pub log_driver: Option<String>,
    pub rm: bool,
    pub rootfs: Option<PathBuf>,
    /// IMAGE (unless --rootfs) then CMD.
    pub args: Vec<String>,
}

/// Facts about the host that validation needs (passed in, so tests choose them).
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub ncpu: usize,
    /// CPUs usable for cpusets, e.g. "0-1".
    pub cpus_online: String,
    pub mems_online: String,
    /// The ocishim process's environment, for `-e NAME` without a value.
    pub env: BTreeMap<String, String>,
}

impl HostFacts {
    pub fn detect() -> Self {
        let read = |p: &str, d: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| d.to_string())
        };
        // SAFETY: sysconf has no preconditions. (available_parallelism would also read
        // this process's cgroup quota files, which the CPU range check does not want.)
        let ncpu = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        HostFacts {
            ncpu,
            cpus_online: read("/sys/devices/system/cpu/online", &format!("0-{}", ncpu - 1)),
            mems_online: read("/sys/devices/system/node/online", "0"),
            env: std::env::vars().collect(),
        }
    }
}

/// Parse a byte size as docker's `RAMInBytes`: `512`, `512b`, `256k`, `256m`, `1g`, `1.5g`,
/// `1gb`, `1GiB`; binary multipliers.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let err = || format!("invalid size: '{s}'");
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(err());
    }
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let mut chars = unit.chars();
    let mult: u32 = match chars.next() {
        None => 0,
        Some('b') => {
            if chars.next().is_some() {
                return Err(err());
            }
            0
        }
        Some(c) => {
            let m = match c {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                't' => 4,
                'p' => 5,
                _ => return Err(err()),
            };
            let rest: String = chars.collect();
            if !matches!(rest.as_str(), "" | "b" | "i" | "ib") {
                return Err(err());
            }
            m
        }
    };
    let value: f64 = num.parse().map_err(|_| err())?;
    let bytes = value * 1024f64.powi(mult as i32);
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as i64)
}

/// Parse `--cpus` as docker's NanoCPUs: a decimal with at most 9 fractional digits.
pub fn parse_nano_cpus(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!("failed to parse {s} as a rational number"));
    }
    let frac_trim = frac.trim_end_matches('0');
    if frac_trim.len() > 9 {
        return Err("value is too precise".into());
    }
    let int_v: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| "value is too large".to_string())?
    };
    let frac_v: i64 = if frac_trim.is_empty() {
        0
    } else {
        format!("{frac_trim:0<9}").parse().unwrap_or(0)
    };
    let v = int_v
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_v))
        .ok_or_else(|| "value is too large".to_string())?;
    Ok(if neg { -v } else { v })
}

/// Parse a cpuset list ("0-2,4") into the set of numbers.
pub fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Some(out);
    }
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().ok()?;
                let b: u32 = b.parse().ok()?;
                if b < a || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

fn parse_int(flag: &'static str, v: &str) -> Result<i64, ConfigError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| invalid(flag, v, "not an integer"))
}

/// Container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, an optional leading '/'.
pub fn validate_name(name: &str) -> Result<String, ConfigError> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if !ok || n.len() > 253 {
        return Err(ConfigError::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(n.to_string())
}

/// Every capability name the kernel knows (without CAP_).
pub const ALL_CAPS: &[&str] = &[
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

/// Normalize a capability as docker: case-insensitive, optional CAP_ prefix, "ALL".
pub fn normalize_cap(flag: &'static str, c: &str) -> Result<String, ConfigError> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    if !ALL_CAPS.contains(&bare) {
        return Err(invalid(flag, c, "unknown capability"));
    }
    Ok(format!("CAP_{bare}"))
}

/// The effective capability list (CAP_ names, sorted) after defaults, --privileged,
/// --cap-add and --cap-drop, as docker computes it.
pub fn effective_caps(cfg: &ContainerConfig) -> Vec<String> {
    let all = || {
        ALL_CAPS
            .iter()
            .map(|c| format!("CAP_{c}"))
            .collect::<Vec<_>>()
    };
    if cfg.privileged {
        return all();
    }
    let add_all = cfg.cap_add.iter().any(|c| c == "ALL");
    let drop_all = cfg.cap_drop.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if add_all {
        all()
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

const ULIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

pub fn parse_ulimit(s: &str) -> Result<Ulimit, ConfigError> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| invalid("--ulimit", s, "expected NAME=SOFT[:HARD]"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(invalid(
            "--ulimit",
            s,
            format!("invalid ulimit type: {name}"),
        ));
    }
    let num = |v: &str| {
        v.parse::<i64>()
            .ok()
            .filter(|n| *n >= -1)
            .ok_or_else(|| invalid("--ulimit", s, format!("invalid ulimit value: {v}")))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let v = num(vals)?;
            (v, v)
        }
    };
    let as_u = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if as_u(soft) > as_u(hard) {
        return Err(invalid(
            "--ulimit",
            s,
            format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"),
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

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

fn parse_env_line(
    line: &str,
    host_env: &BTreeMap<String, String>,
) -> Result<Option<String>, String> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (k, v) = match line.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (line.trim_end(), None),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {line}"));
    }
    if k.contains(char::is_whitespace) {
        return Err(format!("variable '{k}' contains whitespaces"));
    }
    Ok(match v {
        Some(v) => Some(format!("{k}={v}")),
        None => host_env.get(k).map(|v| format!("{k}={v}")),
    })
}

/// Merge env lists: later entries replace earlier ones of the same key, order of first
/// appearance kept.
pub fn merge_env(lists: &[&[String]]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for kv in list.iter() {
            let key = kv.split('=').next().unwrap_or(kv);
            match out
                .iter_mut()
                .find(|e| e.split('=').next().unwrap_or(e) == key)
            {
                Some(slot) => *slot = kv.clone(),
                None => out.push(kv.clone()),
            }
        }
    }
    out
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

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
            None => match args.next() {
                Some(img) => {
                    return Err(ConfigError::Invalid(format!(
                        "image {img:?}: images are not supported yet, use --rootfs DIR"
                    )))
                }
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
        if cmd.is_empty() && entrypoint.is_empty() {
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
        let env = merge_env(&[&[DEFAULT_PATH.to_string()], &from_files, &from_flags]);

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
        for o in &self.security_opt {
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
                    return Err(invalid(
                        "--security-opt",
                        o,
                        "only no-new-privileges (and unconfined seccomp/apparmor) are supported",
                    ))
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

        Ok(ContainerConfig {
            name,
            image,
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
            auto_remove: self.rm,
        })
    }

    fn resources(&self, host: &HostFacts) -> Result<Resources, ConfigError> {
        self.resources_over(&Resources::default(), host)
    }

    /// The resources given on the command line over `base` (for `update`: fields not
    /// given keep their value), validated as docker validates them.
    pub fn resources_over(
        &self,
        base: &Resources,
        host: &HostFacts,
    ) -> Result<Resources, ConfigError> {
        let bytes =
            |flag: &'static str, v: &Option<String>, old: i64| -> Result<i64, ConfigError> {
                match v {
                    None => Ok(old),
                    Some(s) => parse_bytes(s).map_err(|why| invalid(flag, s, why)),
                }
            };
        let memory = bytes("--memory", &self.memory, base.memory)?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => -1,
            // docker update --memory alone keeps the memory+swap limit it had.
            None if self.memory.is_some() && base.memory > 0 => base.effective_swap().unwrap_or(0),
            _ => bytes("--memory-swap", &self.memory_swap, base.memory_swap)?,
        };
        let memory_reservation = bytes(
            "--memory-reservation",
            &self.memory_reservation,
            base.memory_reservation,
        )?;
        if memory > 0 && memory < MIN_MEMORY {
            return Err(ConfigError::Invalid(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
        if memory_swap > 0 && memory == 0 {
            return Err(ConfigError::Invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            ));
        }
        if memory_swap > 0 && memory_swap < memory {
            let msg = if self.memory_swap.is_none() {
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
            } else {
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            };
            return Err(ConfigError::Invalid(msg.into()));
        }
        if memory_reservation > 0 && memory_reservation < MIN_MEMORY {
            return Err(ConfigError::Invalid(
                "Minimum memory reservation allowed is 6MB".into(),
            ));
        }
        if memory > 0 && memory_reservation > 0 && memory < memory_reservation {
            return Err(ConfigError::Invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage"
                    .into(),
            ));
        }

        let cpu_shares = match &self.cpu_shares {
            None => base.cpu_shares,
            Some(v) => {
                let n = parse_int("--cpu-shares", v)?;
                if n < 0 {
                    return Err(invalid("--cpu-shares", v, "must not be negative"));
                }
                n
            }
        };
        let nano_cpus = match &self.cpus {
            None => base.nano_cpus,
            Some(v) => {
                let n = parse_nano_cpus(v).map_err(|why| invalid("--cpus", v, why))?;
                let max = host.ncpu as i64 * 1_000_000_000;
                if n < 0 || n > max || (n > 0 && n < 10_000_000) {
                    return Err(ConfigError::Invalid(format!(
                        "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
                        n = host.ncpu
                    )));
                }
                n
            }
        };
        let cpu_period = match &self.cpu_period {
            None => base.cpu_period,
            Some(v) => parse_int("--cpu-period", v)?,
        };
        let cpu_quota = match &self.cpu_quota {
            None => base.cpu_quota,
            Some(v) => parse_int("--cpu-quota", v)?,
        };
        if nano_cpus > 0 && cpu_period > 0 {
            return Err(ConfigError::Invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        if nano_cpus > 0 && cpu_quota > 0 {
            return Err(ConfigError::Invalid(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
            ));
        }
        if cpu_period != 0 && !(1000..=1_000_000).contains(&cpu_period) {
            return Err(ConfigError::Invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)".into(),
            ));
        }
        if cpu_quota > 0 && cpu_quota < 1000 {
            return Err(ConfigError::Invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
            ));
        }
        if cpu_quota < -1 {
            return Err(invalid(
                "--cpu-quota",
                &cpu_quota.to_string(),
                "must be -1 or positive",
            ));
        }
        let check_set =
            |flag: &'static str, v: &Option<String>, old: &str, avail: &str, what: &str| {
                let Some(v) = v else {
                    return Ok(old.to_string());
                };
                let want = parse_cpuset(v).ok_or_else(|| {
                    ConfigError::Invalid(format!("Invalid value {v} for cpuset {what}"))
                })?;
                let have = parse_cpuset(avail).unwrap_or_default();
                if want.iter().any(|c| !have.contains(c)) {
                    return Err(ConfigError::Invalid(format!(
                        "Requested {} are not available - requested {v}, available: {avail}",
                        if flag == "--cpuset-cpus" {
                            "CPUs"
                        } else {
                            "memory nodes"
                        }
                    )));
                }
                Ok(v.trim().to_string())
            };
        let cpuset_cpus = check_set(
            "--cpuset-cpus",
            &self.cpuset_cpus,
            &base.cpuset_cpus,
            &host.cpus_online,
            "cpus",
        )?;
        let cpuset_mems = check_set(
            "--cpuset-mems",
            &self.cpuset_mems,
            &base.cpuset_mems,
            &host.mems_online,
            "mems",
        )?;
        let pids_limit = match &self.pids_limit {
            None => base.pids_limit,
            Some(v) => Some(parse_int("--pids-limit", v)?),
        };
        Ok(Resources {
            memory,
            memory_swap,
            memory_reservation,
            cpu_shares,
            nano_cpus,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFacts {
        HostFacts {
            ncpu: 2,
            cpus_online: "0-1".into(),
            mems_online: "0".into(),
            env: [("FOO".to_string(), "from-host".to_string())].into(),
        }
    }

    fn raw(args: &[&str]) -> RawOptions {
        RawOptions {
            rootfs: Some("/tmp/rootfs".into()),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn byte_sizes_as_docker() {
        let cases: &[(&str, i64)] = &[
            ("512", 512),
            ("512b", 512),
            ("1k", 1024),
            ("512k", 512 * 1024),
            ("256m", 256 << 20),
            ("256M", 256 << 20),
            ("1g", 1 << 30),
            ("1gb", 1 << 30),
            ("1GiB", 1 << 30),
            ("1.5g", 3 << 29),
            ("2t", 2 << 40),
            ("32 m", 32 << 20),
        ];
        for (s, want) in cases {
            assert_eq!(parse_bytes(s), Ok(*want), "{s}");
        }
        for bad in ["12q", "", "m", "-1", "1.2.3m", "1mbb", "1x", ".5m", "5.m"] {
            assert_eq!(
                parse_bytes(bad),
                Err(format!("invalid size: '{bad}'")),
                "{bad}"
            );
        }
    }

    #[test]
    fn nano_cpus() {
        assert_eq!(parse_nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_nano_cpus("1.25"), Ok(1_250_000_000));
        assert_eq!(parse_nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_nano_cpus("-1"), Ok(-1_000_000_000));
        assert_eq!(parse_nano_cpus(".5"), Ok(500_000_000));
        assert!(parse_nano_cpus("0.0000000001").is_err());
        assert!(parse_nano_cpus("abc").is_err());
    }

    #[test]
    fn cpus_to_cfs() {
        let cfg = raw(&["sh"]);
        let mut r = cfg;
        r.cpus = Some("0.5".into());
        let c = r.into_config(&host()).unwrap();
        assert_eq!(c.resources.cfs(), (Some(50_000), Some(100_000)));
    }

    #[test]
    fn bad_cpus_and_conflicts() {
        for (cpus, period, quota, want) in [
            (Some("-1"), None, None, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
            (Some("3"), None, None, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
            (Some("1"), Some("100000"), None, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
            (Some("1"), None, Some("50000"), "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
            (None, Some("999"), None, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)"),
            (None, None, Some("999"), "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        ] {
            let mut r = raw(&["sh"]);
            r.cpus = cpus.map(Into::into);
            r.cpu_period = period.map(Into::into);
            r.cpu_quota = quota.map(Into::into);
            let e = r.into_config(&host()).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn memory_swap_semantics() {
        let mk = |m: Option<&str>, s: Option<&str>| {
            let mut r = raw(&["sh"]);
            r.memory = m.map(Into::into);
            r.memory_swap = s.map(Into::into);
            r.into_config(&host())
        };
        let c = mk(Some("256m"), None).unwrap();
        assert_eq!(c.resources.memory, 256 << 20);
        assert_eq!(c.resources.effective_swap(), Some(512 << 20));
        let c = mk(Some("256m"), Some("256m")).unwrap();
        assert_eq!(c.resources.effective_swap(), Some(256 << 20));
        let c = mk(Some("256m"), Some("-1")).unwrap();
        assert_eq!(c.resources.effective_swap(), Some(-1));
        let c = mk(None, None).unwrap();
        assert_eq!(c.resources.effective_swap(), None);
        assert_eq!(
            mk(Some("256m"), Some("128m")).unwrap_err().to_string(),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            mk(None, Some("128m")).unwrap_err().to_string(),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        assert_eq!(
            mk(Some("4m"), None).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            mk(Some("12q"), None).unwrap_err().to_string(),
            "invalid value \"12q\" for --memory: invalid size: '12q'"
        );
        assert_eq!(
            mk(Some("1000"), None).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB",
            "a bare number is bytes"
        );
    }

    #[test]
    fn names() {
        for ok in ["a", "web", "web-1.2_x", "/web", "A9"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["../x", "", "-x", "_x", "a b", "a/b", "ä"] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("Invalid container name"), "{bad}: {e}");
        }
    }

    #[test]
    fn capabilities() {
        let mut r = raw(&["sh"]);
        r.cap_add = vec!["net_admin".into(), "CAP_SYS_PTRACE".into()];
        r.cap_drop = vec!["mknod".into()];
        let c = r.into_config(&host()).unwrap();
        let caps = effective_caps(&c);
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!caps.contains(&"CAP_MKNOD".to_string()));
        assert_eq!(caps.len(), 15);

        let mut r = raw(&["sh"]);
        r.cap_drop = vec!["ALL".into()];
        r.cap_add = vec!["chown".into()];
        let c = r.into_config(&host()).unwrap();
        assert_eq!(effective_caps(&c), vec!["CAP_CHOWN"]);

        let mut r = raw(&["sh"]);
        r.cap_add = vec!["all".into()];
        r.cap_drop = vec!["sys_admin".into()];
        let c = r.into_config(&host()).unwrap();
        let caps = effective_caps(&c);
        assert_eq!(caps.len(), ALL_CAPS.len() - 1);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));

        let mut r = raw(&["sh"]);
        r.cap_add = vec!["CAP_NOPE".into()];
        assert!(r.into_config(&host()).is_err());
    }

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
    fn ulimits() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(parse_ulimit("nproc=10").unwrap().hard, 10);
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=x").is_err());
    }

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
        assert!(r
            .into_config(&host())
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        assert_eq!(
            raw(&[]).into_config(&host()).unwrap_err().to_string(),
            "No command specified"
        );
    }

    #[test]
    fn update_keeps_what_is_not_given() {
        let base = Resources {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(10),
            ..Default::default()
        };
        let upd = RawOptions {
            memory: Some("96m".into()),
            ..Default::default()
        };
        // memory alone: memory+swap stays at its old 2x128m... here 2x64m = 128m >= 96m
        let r = upd.resources_over(&base, &host()).unwrap();
        assert_eq!(
            (r.memory, r.memory_swap, r.nano_cpus, r.pids_limit),
            (96 << 20, 128 << 20, 500_000_000, Some(10))
        );
        let upd = RawOptions {
            memory: Some("256m".into()),
            ..Default::default()
        };
        assert_eq!(
            upd.resources_over(&base, &host()).unwrap_err().to_string(),
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        );
        let upd = RawOptions {
            memory: Some("256m".into()),
            memory_swap: Some("512m".into()),
            pids_limit: Some("20".into()),
            ..Default::default()
        };
        let r = upd.resources_over(&base, &host()).unwrap();
        assert_eq!((r.memory_swap, r.pids_limit), (512 << 20, Some(20)));
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path("/a/../b/./c//"), "/b/c");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("/.."), "/");
    }
}
