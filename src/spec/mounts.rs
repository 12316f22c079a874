//! The spec's mounts: docker's defaults, then the per-container /etc files, then the
//! user's (-v, --tmpfs); a user mount on a default destination replaces it.

use oci_spec::runtime::{Mount, MountBuilder};

use super::{EtcFiles, SpecError, SpecInput};
use crate::config::ContainerConfig;

/// All mounts, in the order the runtime mounts them.
pub(super) fn mounts(inp: &SpecInput) -> Result<Vec<Mount>, SpecError> {
    let cfg = inp.cfg;
    // sysfs can be mounted only by the owner of the network namespace: a container with a
    // user namespace of its own that joins a namespace made outside it (a bridge
    // network's, another container's) gets the host's /sys bound instead, as docker does.
    let sys_bind = inp.userns_base.is_some() && inp.netns.is_some();
    let mut mounts = default_mounts(cfg.privileged, sys_bind)?;
    if let Some(etc) = &inp.etc {
        mounts.extend(etc_mounts(etc)?);
    }
    let user_mounts = user_mounts(cfg)?;
    mounts.retain(|m| {
        !user_mounts
            .iter()
            .any(|u| u.destination() == m.destination())
    });
    mounts.extend(user_mounts);
    Ok(mounts)
}

/// Docker's default mounts; /sys and /sys/fs/cgroup are read-only unless --privileged.
/// `sys_bind`: /sys is a recursive bind of the host's rather than a sysfs of its own.
fn default_mounts(privileged: bool, sys_bind: bool) -> Result<Vec<Mount>, SpecError> {
    let sys_ro = if privileged { "rw" } else { "ro" };
    let sys = if sys_bind {
        mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "rprivate", "nosuid", "noexec", "nodev", sys_ro],
        )?
    } else {
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        )?
    };
    Ok(vec![
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
        sys,
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
    ])
}

/// The container's /etc/resolv.conf, /etc/hostname and /etc/hosts, bind-mounted.
fn etc_mounts(etc: &EtcFiles) -> Result<Vec<Mount>, SpecError> {
    [
        ("/etc/resolv.conf", &etc.resolv_conf),
        ("/etc/hostname", &etc.hostname),
        ("/etc/hosts", &etc.hosts),
    ]
    .into_iter()
    .map(|(dst, src)| mount(dst, "bind", &src.to_string_lossy(), &["rbind", "rprivate"]))
    .collect()
}

/// The binds then the tmpfs mounts, sorted by depth as docker does so that parents mount
/// before children (a stable sort: the order given otherwise).
fn user_mounts(cfg: &ContainerConfig) -> Result<Vec<Mount>, SpecError> {
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
    user_mounts.sort_by_key(|m| depth(&m.destination().to_string_lossy()));
    Ok(user_mounts)
}

fn mount(dst: &str, typ: &str, src: &str, opts: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dst)
        .typ(typ)
        .source(src)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// The number of components of a path.
fn depth(p: &str) -> usize {
    p.split('/').filter(|c| !c.is_empty()).count()
}
