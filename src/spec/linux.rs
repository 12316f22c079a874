//! The spec's `linux` section: resources and devices, namespaces, sysctls, masked and
//! read-only paths.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    Linux, LinuxBuilder, LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType,
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
    let sysctl = sysctls(&cfg.network, inp.userns_base.is_some());
    let mut linux = LinuxBuilder::default()
        .resources(resources)
        .cgroups_path(PathBuf::from(&inp.cgroups_path))
        .namespaces(namespaces)
        .build()?;
    let maps = inp.userns_base.map(id_mappings).transpose()?;
    linux.set_uid_mappings(maps.clone());
    linux.set_gid_mappings(maps);
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

/// `--userns auto`'s mapping: container ids 0..65535 → host ids `base`...
fn id_mappings(base: u32) -> Result<Vec<LinuxIdMapping>, SpecError> {
    Ok(vec![LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(base)
        .size(crate::security::userns::RANGE)
        .build()?])
}

/// A new user namespace with `--userns auto`; new pid, ipc, uts and mount namespaces; a network namespace unless --network host
/// (joined when `inp.netns` names one); a cgroup namespace when the kernel has them.
fn namespaces(inp: &SpecInput) -> Result<Vec<LinuxNamespace>, SpecError> {
    let mut ns_types = Vec::new();
    if inp.userns_base.is_some() {
        ns_types.push(LinuxNamespaceType::User);
    }
    ns_types.extend([
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]);
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
/// With a user namespace of its own, the runtime writes them from inside it: into the
/// namespace it makes for `--network none` (which that user namespace owns; every group
/// is then the container's 65536), not into a bridge network's, which ocishim made in the
/// host's user namespace and sets them in itself ([`crate::network::set_sysctls`]).
fn sysctls(network: &NetworkMode, userns: bool) -> HashMap<String, String> {
    let mut sysctl = HashMap::new();
    if userns && matches!(network, NetworkMode::None) {
        sysctl.insert(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            "0".to_string(),
        );
        sysctl.insert(
            "net.ipv4.ping_group_range".to_string(),
            format!("0 {}", crate::security::userns::RANGE - 1),
        );
        return sysctl;
    }
    if matches!(network, NetworkMode::None | NetworkMode::Bridge(_)) && !userns {
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
