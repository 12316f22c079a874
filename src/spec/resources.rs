//! The spec's `linux.resources` (device cgroup rules, memory, CPU, pids) and the device
//! nodes to create.

use oci_spec::runtime::{
    LinuxCpu, LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemory, LinuxMemoryBuilder, LinuxPids,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use super::{SpecError, SpecInput};
use crate::config::Resources;

/// The resources and the `--device` nodes; each device is also allowed in the device
/// cgroup (--privileged allows every device already).
pub(super) fn resources(inp: &SpecInput) -> Result<(LinuxResources, Vec<LinuxDevice>), SpecError> {
    let cfg = inp.cfg;
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
    resources.set_memory(memory(r)?);
    resources.set_cpu(cpu(r)?);
    resources.set_pids(pids(r)?);
    Ok((resources, devices))
}

/// Memory limit, reservation and memory+swap; None when none is set.
fn memory(r: &Resources) -> Result<Option<LinuxMemory>, SpecError> {
    let swap = r.effective_swap();
    if r.memory > 0 || r.memory_reservation > 0 || swap.is_some() {
        let mut m = LinuxMemoryBuilder::default().build()?;
        m.set_limit((r.memory > 0).then_some(r.memory));
        m.set_reservation((r.memory_reservation > 0).then_some(r.memory_reservation));
        m.set_swap(swap);
        Ok(Some(m))
    } else {
        Ok(None)
    }
}

/// CPU shares, CFS quota and period, cpusets; None when none is set.
fn cpu(r: &Resources) -> Result<Option<LinuxCpu>, SpecError> {
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
        Ok(Some(c))
    } else {
        Ok(None)
    }
}

/// The pids limit (0 or less: unlimited, -1); None when not set.
fn pids(r: &Resources) -> Result<Option<LinuxPids>, SpecError> {
    let Some(n) = r.pids_limit else {
        return Ok(None);
    };
    Ok(Some(
        LinuxPidsBuilder::default()
            .limit(if n > 0 { n } else { -1 })
            .build()?,
    ))
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
