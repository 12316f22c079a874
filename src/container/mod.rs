//! The container operations, one file each: [`create`] (ordered steps on a rollback
//! guard), [`start`] (start and run), [`remove`] (kill, rm), [`pause`] (pause, resume),
//! [`attach`] (attached runs, logs), [`update`] (update, stats), [`gc`] (what crashes
//! left). This module holds what
//! they share: the [`Context`], the record "as of now" ([`refresh`]) and lookups.
//!
//! Arrows run one way: `cli → container → {monitor, teardown, runtime, cgroup, network,
//! spec, store}`; nothing below imports `container`.

pub mod attach;
pub mod bundle;
pub mod create;
pub mod gc;
pub mod images;
pub mod pause;
pub mod prepare;
pub mod remove;
pub mod rollback;
pub mod start;
pub mod update;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::SystemTime;

pub use attach::{attach_wait, logs, LogsOpts};
pub use bundle::spec_json;
pub use create::{create, CreateOpts};
pub use gc::gc;
pub use pause::{pause, resume};
pub use remove::{kill, remove};
pub use start::{run, start};
pub use update::{stats, update};

use crate::cgroup::{CgroupFs, ContainerCgroup, Freezers};
pub use crate::error::Error;
use crate::image::store::ImageStore;
use crate::network::Networks;
use crate::record::row::{cut_stored_config, Row};
use crate::record::{Brief, Record, Status};
use crate::runtime::Runtime;
use crate::store::{self, Store};
use crate::teardown;

/// What every command needs: the store and how to run the runtime and the monitor.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    /// The runtime named on the command line (for new containers).
    pub runtime: String,
    pub runtime_root: Option<PathBuf>,
    /// `--log-level` to pass on to the monitor.
    pub log_level: Option<String>,
    pub networks: Networks,
    /// Where the cgroup filesystems are (the host's; a temp tree in tests).
    pub cgroups: &'static CgroupFs,
    /// The image store (`<data-root>/image`).
    pub images: ImageStore,
    /// `--config`: the settings file pulls read (the default one when None).
    pub settings: Option<PathBuf>,
}

impl Context {
    /// The runtime a container was created with.
    pub fn runtime_for(&self, rec: &Record) -> Result<Runtime, Error> {
        let root = rec.ocishim.runtime_root.as_ref().map(PathBuf::from);
        Ok(Runtime::new(&rec.ocishim.runtime, root)?)
    }

    /// The store, networks and cgroups, as teardown takes them.
    pub fn scope(&self) -> teardown::Scope<'_> {
        teardown::Scope {
            store: &self.store,
            networks: &self.networks,
            cgroups: self.cgroups,
        }
    }

    /// The container's cgroup at `cgroups_path`.
    pub fn cgroup(&self, cgroups_path: &str) -> ContainerCgroup {
        ContainerCgroup::in_fs(self.cgroups, cgroups_path)
    }
}

/// Now, as records and logs write times.
pub fn now() -> String {
    crate::log_file::format_time(SystemTime::now())
}

/// Whether the record's monitor is alive ([`store::Store::monitor_alive`]).
pub fn monitor_alive(store: &store::Store, rec: &Record) -> bool {
    store.monitor_alive(
        &rec.id,
        rec.ocishim.monitor_pid,
        rec.ocishim.monitor_start_time,
    )
}

/// What the container's cgroup freezer says (None without a cgroup path or freezer file).
fn frozen(ctx: &Context, cgroups_path: &str) -> Option<bool> {
    (!cgroups_path.is_empty())
        .then(|| ctx.cgroup(cgroups_path).frozen())
        .flatten()
}

/// The record as of now: Paused from the cgroup freezer; a running container whose monitor
/// is gone is checked with the runtime (`query_runtime`), so inspect tells the truth.
pub fn refresh(ctx: &Context, mut rec: Record, query_runtime: bool) -> Record {
    // A create (or a start's re-create) whose process is gone was abandoned half-way:
    // docker's Dead; rm -f and gc reclaim all of it. A live one is as recorded.
    if let Some(c) = rec.ocishim.creator {
        if !c.alive() {
            rec.state.status = Status::Dead;
            rec.state.dead = true;
            rec.state.running = false;
            rec.state.paused = false;
            if rec.state.error.is_empty() {
                rec.state.error = format!(
                    "abandoned: the process creating it (pid {}) is gone; rm -f or gc removes it",
                    c.pid
                );
            }
        }
        return rec;
    }
    // After a reboot nothing of a running container is left: it exited, status unknown.
    if rec.state.status.has_runtime_state() && rebooted(&rec.ocishim.boot_id) {
        rec.state.set_exited(255, now());
        rec.state.pid = 0;
        if rec.state.error.is_empty() {
            rec.state.error = "the host rebooted".into();
        }
        return rec;
    }
    let live = rec.state.status.has_runtime_state() && rec.ocishim.monitor_pid > 0;
    if !live {
        return rec;
    }
    let alive = monitor_alive(&ctx.store, &rec);
    if !alive {
        // The monitor records the exit and then ends: the record read before it was seen
        // gone may predate that write. Read it again, now that it can write nothing more.
        if let Ok(now) = ctx.store.read(&rec.id) {
            if !now.state.status.has_runtime_state() {
                return now;
            }
        }
    }
    rec.ocishim.monitor_gone = !alive;
    // Paused is not recorded by pause/resume: the container's cgroup freezer says it (one
    // small file read), so it is true whoever paused the container.
    if rec.state.status.is_running() {
        if let Some(frozen) = frozen(ctx, &rec.ocishim.cgroups_path) {
            rec.state.set_paused(frozen);
        }
    }
    if !alive || query_runtime {
        let state = ctx
            .runtime_for(&rec)
            .ok()
            .and_then(|rt| rt.state_opt(&rec.id).ok());
        match state.flatten() {
            Some(s) if s.status == "paused" => rec.state.set_paused(true),
            Some(s) if s.status == "running" && rec.state.status != Status::Created => {
                rec.state.set_paused(false)
            }
            Some(s) if s.status == "created" || s.status == "running" => {}
            _ if alive => {}
            _ => {
                // Nothing recorded the exit: its status is unknown (255), and it was
                // noticed now (what `gc` records).
                rec.state.set_exited(255, now());
                if rec.state.error.is_empty() {
                    rec.state.error = "the monitor is gone: exit status unknown".into();
                }
            }
        }
    }
    rec
}

/// Whether the record was made in an earlier boot of the host (records without a boot
/// id predate the field: taken as this boot's).
pub fn rebooted(boot_id: &str) -> bool {
    let now = crate::record::boot_id();
    !boot_id.is_empty() && !now.is_empty() && boot_id != now
}

/// `inspect` of one container: its record as of now, in docker's shape.
pub fn inspect(ctx: &Context, query: &str) -> Result<serde_json::Value, Error> {
    let id = ctx.store.resolve(query)?;
    let rec = refresh(ctx, ctx.store.read(&id)?, true);
    Ok(rec.to_inspect())
}

/// `ps`: what `make` makes of each container's row as of now ([`refresh`]), newest first;
/// running or paused ones only unless `all`; `make` returning None leaves one out. With
/// `names`, only containers whose name it accepts, found through the name index without
/// reading the other records. The records are read, refreshed and made into rows by a
/// few threads, each with its own buffer and directories held open, and a row borrows
/// from its record's bytes: over a thousand records that is most of `ps -a`.
pub fn list<T: Send>(
    ctx: &Context,
    all: bool,
    names: Option<&(dyn Fn(&str) -> bool + Sync)>,
    make: &(dyn Fn(&Row<'_>) -> Option<T> + Sync),
) -> Result<Vec<T>, Error> {
    let ids = match names {
        Some(keep) => ctx.store.ids_named(keep, false)?,
        None => ctx.store.ids()?,
    };
    let Some(dirs) = ctx.store.list_dirs() else {
        return Ok(Vec::new());
    };
    let init = || (Vec::with_capacity(16384), Freezers::new(ctx.cgroups));
    let one = |(buf, freezers): &mut (Vec<u8>, Freezers), id: &String| {
        dirs.read_record(id, buf)?;
        // The stored config is not read ([`cut_stored_config`]); a record the cut left
        // unparsable (not of this version's shape) is read again, whole.
        let cut = cut_stored_config(buf);
        let mut whole = Vec::new();
        let mut row: Row = match serde_json::from_slice(buf) {
            Ok(row) => row,
            Err(_) if cut => serde_json::from_slice(dirs.read_record(id, &mut whole)?).ok()?,
            Err(_) => return None,
        };
        if !names.is_none_or(|keep| keep(row.short_name())) {
            return None;
        }
        let whole;
        if !refresh_row(&dirs, freezers, &mut row) {
            whole = refresh(ctx, row.to_record(), false);
            row = Row::of(&whole);
        }
        if !all && !row.state.status.is_running() {
            return None;
        }
        // Newest first, as docker: the creation times are of one format, compared as text.
        let mut created = [0u8; 40];
        let n = row.created.len().min(created.len());
        created[..n].copy_from_slice(&row.created.as_bytes()[..n]);
        Some((created, make(&row)?))
    };
    let mut rows = crate::sys::par_filter_map(&ids, 64, &init, &one);
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(rows.into_iter().map(|(_, t)| t).collect())
}

/// [`refresh`] of a listed row in its usual cases, with what this thread holds open: a
/// record with no runtime state, or one whose monitor lives (paused from the freezer).
/// False when the whole refresh must decide: a create under way or abandoned, a record
/// of an earlier boot, a monitor gone.
fn refresh_row(dirs: &store::ListDirs, freezers: &mut Freezers, row: &mut Row) -> bool {
    let ext = &row.ocishim;
    let status = row.state.status;
    if ext.creator.is_some() || (status.has_runtime_state() && rebooted(&ext.boot_id)) {
        return false;
    }
    if !status.has_runtime_state() || ext.monitor_pid <= 0 {
        return true;
    }
    let alive = dirs.alive_lock_held(&row.id) == Some(true)
        || store::process_alive(ext.monitor_pid, ext.monitor_start_time);
    if !alive {
        return false;
    }
    row.ocishim.monitor_gone = false;
    if status.is_running() && !row.ocishim.cgroups_path.is_empty() {
        if let Some(frozen) = freezers.frozen(&row.ocishim.cgroups_path) {
            row.state.set_paused(frozen);
        }
    }
    true
}

/// A running or paused container: its ID, whether it is paused, and its runtime.
fn running_container(ctx: &Context, query: &str) -> Result<(String, bool, Runtime), Error> {
    let id = ctx.store.resolve(query)?;
    // The usual case, a live monitor, from a brief read of the record: what `refresh`
    // would conclude for it (paused from the freezer, no runtime query).
    if let Ok(b) = ctx.store.read_as::<Brief>(&id) {
        if b.state.status.is_running()
            && ctx
                .store
                .monitor_alive(&b.id, b.ocishim.monitor_pid, b.ocishim.monitor_start_time)
        {
            let paused = frozen(ctx, &b.ocishim.cgroups_path).unwrap_or(b.state.paused);
            let root = b.ocishim.runtime_root.map(PathBuf::from);
            return Ok((b.id, paused, Runtime::new(&b.ocishim.runtime, root)?));
        }
    }
    let rec = refresh(ctx, ctx.store.read(&id)?, false);
    if !rec.state.status.is_running() {
        return Err(Error::NotRunning(id));
    }
    let rt = ctx.runtime_for(&rec)?;
    Ok((rec.id, rec.state.paused, rt))
}
