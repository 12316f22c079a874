//! `kill` and `rm`.

use super::{monitor_alive, refresh, running_container, Context};
use crate::error::Error;
use crate::store::{StoreError, Unrecorded};
use crate::sys;
use crate::teardown::{self, KILL_TIMEOUT};

/// `kill`: signal the container's init.
pub fn kill(ctx: &Context, query: &str, signal: &str) -> Result<String, Error> {
    let sig = sys::parse_signal(signal).ok_or_else(|| Error::BadSignal(signal.to_string()))?;
    let (id, _, rt) = running_container(ctx, query)?;
    rt.kill(&id, &sig.to_string())?;
    Ok(id)
}

/// `rm`: refuse a live container unless forced; kill it, let the monitor record the exit
/// and delete the runtime state, then remove cgroup, network and record (`teardown`).
pub fn remove(ctx: &Context, query: &str, force: bool) -> Result<Option<String>, Error> {
    let id = match ctx.store.resolve(query) {
        Ok(id) => id,
        Err(StoreError::NotFound(q)) => {
            // No record: what a create killed before its record or a removal killed after
            // it renamed the directory away left, if anything, goes now.
            return match ctx.store.remove_unrecorded(query)? {
                Unrecorded::Removed(id) => {
                    tracing::debug!(%id, "removed what a killed create or removal left");
                    Ok(Some(id))
                }
                Unrecorded::Creating { id, pid } => Err(Error::BeingCreated { id, pid }),
                // docker >= 20.10: removing a missing container by full ID is not an error.
                Unrecorded::Nothing
                    if query.len() == 64 && query.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    Ok(None)
                }
                Unrecorded::Nothing => Err(StoreError::NotFound(q).into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let rec = refresh(ctx, ctx.store.read(&id)?, false);
    if let Some(c) = rec.ocishim.creator.filter(|c| c.alive()) {
        return Err(Error::BeingCreated { id, pid: c.pid });
    }
    let status = rec.state.status;
    let live = status.is_running();
    if live && !force {
        return Err(Error::RemoveRunning { id, status });
    }
    let rt = ctx.runtime_for(&rec);
    // An abandoned create (or start) may have started a monitor it never recorded: once
    // its launch is over (the runtime's create done, the monitor exec'd or gone), it is
    // found by its argv.
    let mut rec = rec;
    if rec.ocishim.creator.is_some() {
        if !ctx.store.wait_launch(&id, KILL_TIMEOUT) {
            tracing::warn!(%id, "the monitor's launch is still under way");
        }
        if !monitor_alive(&ctx.store, &rec) {
            if let Some((pid, start_time)) = crate::monitor::find(ctx.store.root(), &id) {
                rec.ocishim.monitor_pid = pid;
                rec.ocishim.monitor_start_time = start_time;
            }
        }
    }
    let alive = monitor_alive(&ctx.store, &rec);
    if alive || live {
        if let Ok(rt) = &rt {
            // A container that is not running any more refuses the kill: that is fine.
            if !(alive && kill_init(&rec)) {
                if let Err(e) = rt.kill(&id, "KILL") {
                    tracing::debug!(%id, "kill: {e}");
                }
            }
            if rec.state.paused || status == crate::record::Status::Paused {
                if let Err(e) = rt.resume(&id) {
                    tracing::debug!(%id, "resume after kill: {e}");
                }
            }
        }
        sys::failpoint("rm::killed");
        if alive {
            sys::wait_pid_gone(
                rec.ocishim.monitor_pid,
                rec.ocishim.monitor_start_time,
                KILL_TIMEOUT,
            );
        } else if rec.state.pid > 0 {
            if let Ok(Some(fd)) = sys::pidfd_open(rec.state.pid) {
                sys::pidfd_wait(&fd, KILL_TIMEOUT);
            }
        }
    }
    sys::failpoint("rm::waited");
    let rec = ctx.store.read(&id).unwrap_or(rec);
    if !rec.ocishim.runtime_deleted || rec.ocishim.creator.is_some() {
        if let Ok(rt) = &rt {
            rt.delete_if_exists(&id, true)?;
        }
    }
    sys::failpoint("rm::runtime_deleted");
    teardown::all(&ctx.scope(), &rec)?;
    Ok(Some(id))
}

/// SIGKILL to the container's init without a runtime process (one Go program's start-up
/// less per `rm -f`), when it is certainly the container's init: its recorded PID's parent
/// is the container's monitor (a child subreaper, to which the runtime's init is
/// reparented, alive by its lock). The signal goes through a pidfd taken before that
/// check, so it reaches only the process the pidfd names: if that process still lives,
/// its PID was not reused and the check read it; if it is gone, the kernel refuses
/// (ESRCH). False when any of it does not hold: the runtime's `kill` decides then.
fn kill_init(rec: &crate::record::Record) -> bool {
    let pid = rec.state.pid;
    let Ok(Some(fd)) = sys::pidfd_open(pid) else {
        return false;
    };
    if crate::store::process_parent(pid) != Some(rec.ocishim.monitor_pid) {
        return false;
    }
    match sys::pidfd_signal(&fd, libc::SIGKILL) {
        Ok(sent) => sent,
        Err(e) => {
            tracing::debug!(id = %rec.id, "pidfd kill: {e}");
            false
        }
    }
}
