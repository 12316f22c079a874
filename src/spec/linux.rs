//! The spec's `linux` section: resources and devices, namespaces, sysctls, masked and
//! read-only paths.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    Linux, LinuxBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
};

use super::resources::resources;
use super::{SpecError, SpecInput, MASKED_PATHS, READONLY_PATHS};
use crate::config::NetworkMode;

/// The seccomp filter: `seccomp=FILE`'s profile, else docker's default one, evaluated
/// against the container's capabilities; none when privileged or unconfined (docker's).
fn seccomp(inp: &SpecInput) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SpecError> {
    let cfg = inp.cfg;
    if cfg.privileged || cfg.seccomp_unconfined {
        return Ok(None);
    }
    let text = cfg
        .seccomp_profile
        .as_deref()
        .unwrap_or(crate::security::seccomp::DEFAULT_PROFILE);
    let caps = crate::config::effective_caps(cfg, &inp.bounding);
    Ok(Some(crate::security::seccomp::to_spec(
        text,
        &caps,
        &inp.seccomp_host,
    )?))
}

/// The `linux` section; everything oci-spec would default is set explicitly.
pub(super) fn linux(inp: &SpecInput) -> Result<Linux, SpecError> {
    let cfg = inp.cfg;
    let (resources, devices) = resources(inp)?;
    let namespaces = namespaces(inp)?;
    let sysctl = sysctls(&cfg.network);
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
    linux.set_seccomp(seccomp(inp)?);
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
    Ok(linux)
}

/// New pid, ipc, uts and mount namespaces; a network namespace unless --network host
/// (joined when `inp.netns` names one); a cgroup namespace when the kernel has them.
fn namespaces(inp: &SpecInput) -> Result<Vec<LinuxNamespace>, SpecError> {
    let mut ns_types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if inp.cfg.network != NetworkMode::Host {
        ns_types.push(LinuxNamespaceType::Network);
    }
    if inp.cgroup_ns {
        ns_types.push(LinuxNamespaceType::Cgroup);
    }
    Ok(ns_types
        .into_iter()
        .map(|t| {
            let b = LinuxNamespaceBuilder::default().typ(t);
            match (&inp.netns, t) {
                (Some(p), LinuxNamespaceType::Network) => b.path(p.clone()).build(),
                _ => b.build(),
            }
        })
        .collect::<Result<Vec<_>, _>>()?)
}

/// Docker's sysctls for a container with its own network namespace: unprivileged ports
/// from 0 and ping for every group. (Not for container:ID, whose namespace is another's.)
fn sysctls(network: &NetworkMode) -> HashMap<String, String> {
    let mut sysctl = HashMap::new();
    if matches!(network, NetworkMode::None | NetworkMode::Bridge(_)) {
        sysctl.insert(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            "0".to_string(),
        );
        sysctl.insert(
            "net.ipv4.ping_group_range".to_string(),
            "0 2147483647".to_string(),
        );
    }
    sysctl
}
