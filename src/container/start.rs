//! `start` and `run`: the runtime's start of a created container. `run` is create's
//! steps and the start on one rollback guard; `start` of a created container builds the
//! guard from its record, and `start` of an exited (or failed) one runs create's
//! cgroup, bundle and monitor steps again first, as `docker start` does.

use std::fs;

use super::create::{
    self, create_monitored, existing, fail, set_created, set_monitor, set_network,
};
use super::create::{CreateOpts, MonitorStarted};
use super::images;
use super::prepare::prepare;
use super::rollback::Rollback;
use super::{monitor_alive, now, Context};
use crate::config::ContainerConfig;
use crate::error::Error;
use crate::image::rootfs;
use crate::record::{Creator, Record, Status};

/// `create` then `start`, the runtime's in one call (its `run --detach`). Returns the ID.
pub fn run(ctx: &Context, cfg: ContainerConfig, opts: CreateOpts) -> Result<String, Error> {
    let opts = CreateOpts {
        start: true,
        ..opts
    };
    let (rec, m, rb) = create_monitored(ctx, cfg, opts)?;
    runtime_start(ctx, &rec, Some(&m), rb)
}

/// `start`: runtime start of a created container; a stopped or failed one is created
/// again first (docker's `start` of an exited container).
pub fn start(ctx: &Context, query: &str) -> Result<String, Error> {
    let id = ctx.store.resolve(query)?;
    let rec = ctx.store.read(&id)?;
    // A create (or start) under way is its process's to finish; one whose process is gone
    // left a half-made container that only rm -f takes apart. Nothing is made for either.
    if let Some(c) = rec.ocishim.creator {
        return Err(if c.alive() {
            Error::BeingCreated { id, pid: c.pid }
        } else {
            Error::Abandoned { id, pid: c.pid }
        });
    }
    if rec.state.status.is_running() && monitor_alive(&ctx.store, &rec) {
        return Ok(rec.id);
    }
    if rec.state.status == Status::Created && monitor_alive(&ctx.store, &rec) {
        let rb = existing(ctx, &rec, true);
        return runtime_start(ctx, &rec, None, rb);
    }
    // Nothing of the runtime's exists: set it up again from the stored config.
    let cfg = rec
        .ocishim
        .config()
        .ok_or_else(|| Error::NoStoredConfig(id.clone()))?;
    // An image's overlay lives with the container's processes (in their mount namespace;
    // with --userns auto in the host's table until rm): made again (and the
    // user is read from the image's layers meanwhile).
    let remount = if cfg.from_image && !rootfs::is_mounted(&cfg.rootfs) {
        Some(images::image_of(ctx, &cfg)?)
    } else {
        None
    };
    // A --rootfs directory's idmapped mount (--userns auto) is made again likewise; the
    // user is read from the directory itself.
    let dir = create::idmapped_dir(&cfg).filter(|_| !rootfs::is_mounted(&cfg.rootfs));
    let mut read = cfg.clone();
    if let Some(d) = create::idmapped_dir(&cfg) {
        read.rootfs = d;
    }
    let prep = prepare(&read, remount.as_ref().map_or(&[], |i| i.layers.as_slice()))?;
    let mut rb = existing(ctx, &rec, false);
    let mut rec = rec;
    let recreated = (|| {
        match fs::remove_file(ctx.store.runtime_log_path(&id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(%id, "removing the old runtime log: {e}")
            }
            _ => {}
        }
        // This process makes the container's resources again: a start killed half-way
        // leaves an abandoned create, which rm -f and gc reclaim.
        ctx.store.update(&id, |r| {
            r.ocishim.creator = Some(Creator::this_process());
            r.ocishim.boot_id = crate::record::boot_id().to_string();
        })?;
        crate::sys::failpoint("start::record");
        create::make_cgroup(ctx, &cfg, &id, &mut rb)?;
        crate::sys::failpoint("start::cgroup");
        // The range it holds (until rm), or after a failed create (whose undo gave it
        // back) or a reboot, a new one, preferably the same.
        let base = create::allocate_userns(ctx, &cfg, &id, rec.ocishim.userns_base, &mut rb)?;
        if base != rec.ocishim.userns_base {
            rec.ocishim.userns_base = base;
            ctx.store.update(&id, |r| r.ocishim.userns_base = base)?;
        }
        crate::sys::failpoint("start::userns");
        if let Some(image) = &remount {
            create::mount_rootfs(ctx, &id, &image.lowers, base, &mut rb)?;
        } else if let (Some(d), Some(base)) = (&dir, base) {
            create::mount_idmapped_dir(ctx, &id, d, base, &mut rb)?;
        }
        crate::sys::failpoint("start::rootfs");
        create::reattach_network(ctx, &cfg, &mut rec, &mut rb)?;
        crate::sys::failpoint("start::network");
        create::write_bundle(ctx, &rec, &cfg, &prep, &mut rb)?;
        crate::sys::failpoint("start::bundle");
        let m = create::start_monitor(ctx, &rec, &cfg, CreateOpts::default(), &mut rb)?;
        crate::sys::failpoint("start::monitor");
        ctx.store.update(&id, |r| set_created(r, &m))?;
        Ok::<_, Error>(())
    })();
    match recreated {
        Ok(()) => match ctx.store.read(&id) {
            Ok(rec) => runtime_start(ctx, &rec, None, rb),
            Err(e) => Err(fail(ctx, &rec, rb, e.into())),
        },
        Err(e) => Err(fail(ctx, &rec, rb, e)),
    }
}

/// The runtime's start of a created container; `created` is the monitor of `run`'s create,
/// not recorded yet (run records both in one write), whose runtime call started the
/// container already. Commits `rb` once started; on failure undoes it.
fn runtime_start(
    ctx: &Context,
    rec: &Record,
    created: Option<&MonitorStarted>,
    rb: Rollback,
) -> Result<String, Error> {
    let id = &rec.id;
    let started = (|| {
        let _lock = ctx.store.lock(id)?;
        let started_at = now();
        tracing::debug!(%id, "runtime start");
        let pid = created.map(|m| m.pid).unwrap_or(rec.state.pid);
        crate::sys::failpoint("start::runtime");
        if created.is_none() {
            ctx.runtime_for(rec)?.start(id)?;
        }
        crate::sys::failpoint("start::started");
        let mut r = ctx.store.read(id)?;
        if let Some(m) = created {
            set_monitor(&mut r, m);
            set_network(&mut r, rec);
        }
        r.ocishim.creator = None;
        // The monitor may already have recorded a very quick exit: keep it.
        if r.state.status == Status::Created {
            r.state.set_running(pid, started_at);
        }
        ctx.store.write(&r)?;
        Ok::<_, Error>(())
    })();
    match started {
        Ok(()) => {
            rb.commit();
            tracing::debug!(%id, "started");
            Ok(rec.id.clone())
        }
        Err(e) => Err(fail(ctx, rec, rb, e)),
    }
}
