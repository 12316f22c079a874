//! `ContainerConfig`: what a scheduler asks for, parsed and validated with docker's
//! spelling, meaning and messages. Pure logic: nothing here touches the system except
//! reading `--env-file` files and the caller-supplied host facts.
//!
//! This module holds the types; the parsers of single values are in `parse` and `mounts`,
//! capability names in `caps`, and `RawOptions::into_config` in `options` and `resources`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod caps;
mod image;
pub mod log_opts;
mod mounts;
mod options;
mod parse;
mod resources;

pub use caps::{all_caps, bounding_caps, effective_caps, normalize_cap, DEFAULT_CAPS};
pub use image::apply_image;
pub use mounts::{clean_path, parse_device, parse_tmpfs, parse_volume};
pub use parse::{
    merge_env, parse_bytes, parse_cpuset, parse_nano_cpus, parse_ulimit, validate_name,
};

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

/// `--pull`: when `run`/`create` pull IMAGE from its registry (docker's policies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    /// Pull when the store lacks the image (docker's default).
    #[default]
    Missing,
    /// Never pull: a missing image is an error.
    Never,
    /// Pull every time.
    Always,
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

/// `--cgroupns`: a cgroup namespace of the container's own, or the host's. Unset, docker's
/// daemon default: the host's on cgroup v1, one of its own on v2. A container stored by an
/// earlier version, which had its own on either, keeps it ([`CgroupnsMode::stored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CgroupnsMode {
    #[default]
    Default,
    Host,
    Private,
}

impl CgroupnsMode {
    /// Whether the container gets a cgroup namespace of its own on a host of this version.
    pub fn private(self, cgroup_v2: bool) -> bool {
        match self {
            CgroupnsMode::Default => cgroup_v2,
            CgroupnsMode::Host => false,
            CgroupnsMode::Private => true,
        }
    }

    /// docker's HostConfig.CgroupnsMode: "host" or "private", as resolved on this host.
    pub fn resolved(self, cgroup_v2: bool) -> &'static str {
        if self.private(cgroup_v2) {
            "private"
        } else {
            "host"
        }
    }

    /// What a stored config without the field had.
    fn stored() -> CgroupnsMode {
        CgroupnsMode::Private
    }
}

/// `--userns`: the host's user namespace (the default), or one of the container's own
/// with a range of ids allocated for it (`auto`, podman's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UsernsMode {
    #[default]
    Host,
    Auto,
}

impl UsernsMode {
    /// docker's HostConfig.UsernsMode spelling ("" is the default, the host's).
    pub fn as_str(self) -> &'static str {
        match self {
            UsernsMode::Host => "",
            UsernsMode::Auto => "auto",
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
    /// The image as given (IMAGE), or the --rootfs path.
    pub image: String,
    /// IMAGE, not --rootfs: `rootfs` is the container's overlay, set at create.
    #[serde(default)]
    pub from_image: bool,
    /// The image's ID (its config's digest), set at create.
    #[serde(default)]
    pub image_id: Option<String>,
    /// `--pull`: when to pull IMAGE.
    #[serde(default)]
    pub pull: PullPolicy,
    /// `--platform`: which of a multi-platform IMAGE to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The image's StopSignal and ExposedPorts: recorded, not used by the spec.
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub exposed_ports: Vec<String>,
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
    /// `--security-opt seccomp=FILE`: the profile's text, read when the options were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<String>,
    /// `--security-opt seccomp=unconfined`.
    #[serde(default)]
    pub seccomp_unconfined: bool,
    /// `--userns`.
    #[serde(default)]
    pub userns: UsernsMode,
    /// `--cgroupns`.
    #[serde(default = "CgroupnsMode::stored")]
    pub cgroupns: CgroupnsMode,
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
    /// `--log-opt` KEY=VALUE, validated (HostConfig.LogConfig.Config).
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
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
    pub userns: Option<String>,
    pub cgroupns: Option<String>,
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
    pub log_opt: Vec<String>,
    pub pull: Option<String>,
    pub platform: Option<String>,
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
    /// This host's facts: online CPUs and memory nodes, and this process's environment.
    pub fn detect() -> Self {
        let read = |p: &str, d: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| d.to_string())
        };
        // sysconf, not available_parallelism: that would also read this process's cgroup
        // quota files, which the CPU range check does not want.
        let ncpu = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .unwrap_or(1)
            .max(1) as usize;
        HostFacts {
            ncpu,
            cpus_online: read("/sys/devices/system/cpu/online", &format!("0-{}", ncpu - 1)),
            mems_online: read("/sys/devices/system/node/online", "0"),
            env: std::env::vars().collect(),
        }
    }
}

/// Fixtures shared by the submodules' tests.
#[cfg(test)]
mod fixtures {
    use super::{HostFacts, RawOptions};

    pub(super) fn host() -> HostFacts {
        HostFacts {
            ncpu: 2,
            cpus_online: "0-1".into(),
            mems_online: "0".into(),
            env: [("FOO".to_string(), "from-host".to_string())].into(),
        }
    }

    pub(super) fn raw(args: &[&str]) -> RawOptions {
        RawOptions {
            rootfs: Some("/tmp/rootfs".into()),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }
}
