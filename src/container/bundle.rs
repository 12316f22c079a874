//! The bundle: the spec built from the config and the record (its /etc files, its
//! network namespace), and the files create writes beside it under `--root` (hostname,
//! hosts, resolv.conf, config.json).

use std::fs;
use std::path::PathBuf;

use super::prepare::{cgroups_path, hostname_for, prepare, Prepared};
use super::{now, Context};
use crate::config::{ContainerConfig, NetworkMode};
use crate::error::{io_err, Error};
use crate::network::dns;
use crate::record::Record;
use crate::spec::{self, EtcFiles, SpecInput};
use crate::store;
use crate::sys;

/// Build the spec from the config and what the record says about the container (its
/// /etc files, its network namespace).
pub fn build_spec(
    ctx: &Context,
    cfg: &ContainerConfig,
    rec: &Record,
    prep: &Prepared,
) -> Result<oci_spec::runtime::Spec, Error> {
    let etc = EtcFiles {
        hostname: PathBuf::from(&rec.hostname_path),
        hosts: PathBuf::from(&rec.hosts_path),
        resolv_conf: PathBuf::from(&rec.resolv_conf_path),
    };
    let sandbox = &rec.network_settings.sandbox_key;
    Ok(spec::generate(&SpecInput {
        cfg,
        hostname: hostname_for(cfg, &rec.id),
        user: prep.user.clone(),
        devices: prep.devices.clone(),
        etc: Some(etc),
        cgroups_path: cgroups_path(cfg, &rec.id),
        cgroup_ns: sys::has_cgroup_ns() && cfg.cgroupns.private(ctx.cgroups.is_v2()),
        netns: match &cfg.network {
            NetworkMode::None | NetworkMode::Host => None,
            // The namespace this process made and holds (see network::netns); `spec`,
            // which makes none, shows the sandbox's name.
            NetworkMode::Bridge(_) => crate::network::netns::held(&rec.id)
                .or_else(|| (!sandbox.is_empty()).then(|| PathBuf::from(sandbox))),
            NetworkMode::Container(_) => (!sandbox.is_empty()).then(|| PathBuf::from(sandbox)),
        },
        bounding: crate::config::bounding_caps(),
        seccomp_host: crate::security::seccomp::Host::detect(),
        userns_base: rec.ocishim.userns_base,
    })?)
}

/// `spec`: the config.json `run` would use, creating nothing.
pub fn spec_json(ctx: &Context, cfg: &ContainerConfig) -> Result<String, Error> {
    let id = store::new_id();
    let mut cfg = cfg.clone();
    let cfg = &mut cfg;
    let image = super::create::image_for(ctx, cfg, &id)?;
    let prep = prepare(cfg, image.as_ref().map_or(&[], |i| i.layers.as_slice()))?;
    let mut rec = Record::new(&id, "spec", cfg, now());
    set_paths(ctx, &mut rec);
    if let NetworkMode::Bridge(_) = cfg.network {
        rec.network_settings.sandbox_key = ctx.networks.netns_dir().join(&id).display().to_string();
    }
    let spec = build_spec(ctx, cfg, &rec, &prep)?;
    Ok(serde_json::to_string_pretty(&spec).expect("spec serializes"))
}

/// Write hostname, hosts, resolv.conf and config.json into the bundle's directory.
pub fn write_files(
    ctx: &Context,
    rec: &Record,
    cfg: &ContainerConfig,
    prep: &Prepared,
) -> Result<(), Error> {
    let id = &rec.id;
    let spec = build_spec(ctx, cfg, rec, prep)?;
    let hostname = spec.hostname().clone().unwrap_or_default();
    let ip = rec
        .network_settings
        .networks
        .values()
        .map(|e| e.ip_address.clone())
        .find(|ip| !ip.is_empty());
    let (hosts, resolv) = match &cfg.network {
        NetworkMode::Host => (
            fs::read_to_string("/etc/hosts")
                .unwrap_or_else(|_| dns::container_hosts(&hostname, None, &[])),
            dns::container_resolv_conf(
                &dns::read_host_resolv_conf(),
                true,
                &cfg.dns,
                &cfg.dns_search,
                &cfg.dns_options,
            ),
        ),
        // container:ID shares the other container's files (set as the record's paths).
        NetworkMode::Container(_) => (String::new(), String::new()),
        _ => (
            dns::container_hosts(&hostname, ip.as_deref(), &cfg.extra_hosts),
            dns::container_resolv_conf(
                &dns::read_host_resolv_conf(),
                false,
                &cfg.dns,
                &cfg.dns_search,
                &cfg.dns_options,
            ),
        ),
    };
    let bundle = ctx.store.bundle_dir(id);
    fs::create_dir_all(&bundle).map_err(io_err(format!("creating {}", bundle.display())))?;
    // Where the record says (beside the bundle; a container created by an earlier
    // version: its directory on the data root).
    let mut files = vec![(&rec.hostname_path, format!("{hostname}\n"))];
    if !matches!(cfg.network, NetworkMode::Container(_)) {
        files.extend([(&rec.hosts_path, hosts), (&rec.resolv_conf_path, resolv)]);
    }
    for (p, text) in files {
        fs::write(p, text).map_err(io_err(format!("writing {p}")))?;
    }
    let data = serde_json::to_vec_pretty(&spec).expect("spec serializes");
    let p = bundle.join("config.json");
    fs::write(&p, data).map_err(io_err(format!("writing {}", p.display())))?;
    Ok(())
}

/// The record's file paths: the log in the container directory, the /etc files and the
/// bundle under `--root`.
pub fn set_paths(ctx: &Context, rec: &mut Record) {
    let id = rec.id.clone();
    rec.log_path = match rec.host_config.log_config.typ.as_str() {
        "none" => String::new(),
        _ => ctx.store.log_path(&id).display().to_string(),
    };
    // The /etc files beside the bundle, under --root: written again at every start (as
    // docker writes hosts and resolv.conf again), they need not outlive a reboot, and on
    // the data root they were three of a `run -d`'s file creations there.
    let bundle = ctx.store.bundle_dir(&id);
    rec.resolv_conf_path = bundle.join("resolv.conf").display().to_string();
    rec.hostname_path = bundle.join("hostname").display().to_string();
    rec.hosts_path = bundle.join("hosts").display().to_string();
    rec.ocishim.bundle = bundle.display().to_string();
    let cfg = rec.ocishim.config();
    rec.ocishim.cgroups_path = cfg
        .as_ref()
        .map(|c| cgroups_path(c, &id))
        .unwrap_or_default();
    if let Some(c) = &cfg {
        rec.ocishim.rootfs = c.rootfs.display().to_string();
    }
}
