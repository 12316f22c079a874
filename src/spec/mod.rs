//! `ContainerConfig` → `oci_spec::runtime::Spec`, with docker's defaults. Every field is set
//! explicitly: oci-spec's `Default`s (hostname "youki", capabilities in inheritable and
//! ambient, NOFILE 1024, noNewPrivileges true) are not docker's.

use std::path::PathBuf;

use oci_spec::runtime::{RootBuilder, Spec, SpecBuilder};

use crate::config::ContainerConfig;

mod linux;
mod mounts;
mod process;
mod resources;
mod user;

pub use user::resolve_user;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("building the runtime spec: {0}")]
    Build(#[from] oci_spec::OciSpecError),
    #[error(transparent)]
    Seccomp(#[from] crate::security::seccomp::SeccompError),
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
    /// The caller's capability bounding set: what `--privileged` and `ALL` grant.
    pub bounding: Vec<String>,
    /// What seccomp profiles are evaluated against (architecture, kernel).
    pub seccomp_host: crate::security::seccomp::Host,
    /// `--userns auto`: the host id that container id 0 maps to (uids and gids alike);
    /// None: the host's user namespace.
    pub userns_base: Option<u32>,
}

/// Generate the runtime spec: the process (`process`), the mounts (`mounts`) and the
/// linux section (`linux`, `resources`), then the root and docker's spec version.
pub fn generate(inp: &SpecInput) -> Result<Spec, SpecError> {
    let process = process::process(inp)?;
    let mounts = mounts::mounts(inp)?;
    let linux = linux::linux(inp)?;
    let root = RootBuilder::default()
        .path(inp.cfg.rootfs.clone())
        .readonly(inp.cfg.read_only)
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
mod tests;
