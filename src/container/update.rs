//! `update` (limits changed live) and `stats` (the cgroup's figures).

use super::bundle::build_spec;
use super::prepare::prepare;
use super::Context;
use crate::cgroup;
use crate::config::{HostFacts, RawOptions};
use crate::error::{io_err, Error};
use crate::record::Record;
use crate::store;

/// `update`: change a container's limits live (docker update): validated as at run,
/// written to its cgroup and read back, then recorded (HostConfig, stored config, bundle).
pub fn update(ctx: &Context, query: &str, raw: &RawOptions) -> Result<String, Error> {
    let id = ctx.store.resolve(query)?;
    let rec = ctx.store.read(&id)?;
    let mut cfg = rec
        .ocishim
        .config()
        .ok_or_else(|| Error::NoStoredConfig(id.clone()))?;
    let new = raw.resources_over(&cfg.resources, &HostFacts::detect())?;
    let cg = ctx.cgroup(&rec.ocishim.cgroups_path);
    if !cg.existing_dirs().is_empty() {
        let writes = cgroup::plan(&new, cg.version, cg.swap_accounting())?;
        cg.apply(&writes)?;
    }
    cfg.resources = new;
    let bundle_cfg = ctx.store.bundle_dir(&id).join("config.json");
    if bundle_cfg.exists() {
        let prep = prepare(&cfg, &[])?;
        let spec = build_spec(ctx, &cfg, &rec, &prep)?;
        let data = serde_json::to_vec_pretty(&spec).expect("spec serializes");
        store::write_atomic(&bundle_cfg, &data)
            .map_err(io_err(format!("writing {}", bundle_cfg.display())))?;
    }
    ctx.store.update(&id, |r| {
        r.host_config.set_resources(&cfg.resources);
        r.ocishim.set_config(&cfg);
    })?;
    Ok(id)
}

/// `stats`: the cgroup's figures for a container (zeros when it does not run).
pub fn stats(ctx: &Context, query: &str) -> Result<(Record, cgroup::Stats), Error> {
    let id = ctx.store.resolve(query)?;
    let rec = ctx.store.read(&id)?;
    let st = if rec.state.status.is_running() {
        ctx.cgroup(&rec.ocishim.cgroups_path).stats()
    } else {
        cgroup::Stats::default()
    };
    Ok((rec, st))
}
