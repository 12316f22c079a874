//! The single undo of a container's resources: its runtime state and monitor, cgroup
//! (and the parent ocishim made for it), network (veth, namespace, address), bundle and
//! /etc files, and record. Used by `rm`, by every failed create or start (through the
//! rollback guard of `container::create`), by the monitor for `--rm`, and later by `gc`.
//! It sits beside `container/` and imports none of it, so the monitor can use it.
//!
//! Every function is idempotent (what is already gone is fine) and returns its failure
//! instead of dropping it; callers log it and keep it in the record's `Error` when a
//! record stays.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::{CgroupError, CgroupFs, ContainerCgroup};
use crate::network::{NetworkError, Networks};
use crate::record::Record;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{Store, StoreError};

/// How long a teardown waits for a killed container's monitor to be gone.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(20);

/// The files earlier versions wrote into a container's directory besides the record and
/// the log (now beside the bundle under `--root`): removed too, for such a container.
pub const CONTAINER_FILES: [&str; 5] = [
    "hostname",
    "hosts",
    "resolv.conf",
    "init.pid",
    "runtime.log",
];

/// Where a container's resources live: the store and the networks.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub store: &'a Store,
    pub networks: &'a Networks,
    pub cgroups: &'static CgroupFs,
}

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("network teardown: {0}")]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("removing {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },
    #[error("the monitor (pid {0}) is still alive {secs} s after the kill", secs = KILL_TIMEOUT.as_secs())]
    MonitorAlive(i32),
    #[error(transparent)]
    Rootfs(#[from] crate::image::rootfs::RootfsError),
    #[error(transparent)]
    Userns(#[from] crate::security::userns::UsernsError),
}

/// Where a container made from an image has its overlay, in its directory.
pub struct OverlayDirs {
    /// The merged tree: the bundle's root.path.
    pub target: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

pub fn overlay_dirs(store: &Store, id: &str) -> OverlayDirs {
    let dir = store.container_dir(id);
    OverlayDirs {
        target: dir.join("rootfs"),
        upper: dir.join("upper"),
        work: dir.join("work"),
    }
}

/// Unmount a container's overlay and remove its merged, upper and work directories.
pub fn rootfs(store: &Store, id: &str) -> Result<(), TeardownError> {
    let d = overlay_dirs(store, id);
    crate::image::rootfs::remove(&d.target, &d.upper, &d.work)?;
    Ok(())
}

/// Give back the container's id range (`--userns auto`; none held is fine).
pub fn userns(store: &Store, id: &str) -> Result<(), TeardownError> {
    crate::security::userns::Ranges::new(store.root()).release(id)?;
    Ok(())
}

/// Whether the container has a mount of its own at its directory's `rootfs`: an image's
/// overlay, or the idmapped mount of a `--rootfs` directory with `--userns auto`.
pub fn has_own_rootfs(rec: &Record) -> bool {
    rec.ocishim
        .config()
        .is_some_and(|c| c.from_image || c.userns == crate::config::UsernsMode::Auto)
}

/// Kill the container's processes and delete the runtime's state (gone already is fine).
pub fn runtime_state(rt: &Runtime, id: &str) -> Result<(), TeardownError> {
    // The kill fails when nothing runs any more; the forced delete is what must succeed.
    if let Err(e) = rt.kill(id, "KILL") {
        tracing::debug!(%id, "kill before delete: {e}");
    }
    if let Err(e) = rt.delete_if_exists(id, true) {
        // The container's monitor, seeing it die, deletes it too: the runtime that loses
        // that race fails (crun: "cannot rm state directory ... No such file or
        // directory"). Fine when the state is gone.
        if rt.state_opt(id).ok().flatten().is_some() {
            return Err(e.into());
        }
        tracing::debug!(%id, "delete: {e}; deleted meanwhile");
    }
    Ok(())
}

/// Wait (bounded) for a monitor to be gone once its container was killed.
pub fn monitor(pid: i32, start_time: u64) -> Result<(), TeardownError> {
    if pid <= 0 || crate::sys::wait_pid_gone(pid, start_time, KILL_TIMEOUT) {
        return Ok(());
    }
    Err(TeardownError::MonitorAlive(pid))
}

fn remove_file(p: &Path) -> Result<(), TeardownError> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(TeardownError::Remove {
            path: p.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Remove what create wrote besides the record and the log: the bundle under `--root`
/// (with the runtime's log and pid file), the /etc files.
pub fn bundle(store: &Store, id: &str) -> Result<(), TeardownError> {
    let old = store.container_dir(id).join("bundle");
    for b in [store.bundle_dir(id), old] {
        match fs::remove_dir_all(&b) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(TeardownError::Remove { path: b, source: e })
            }
            _ => {}
        }
    }
    let dir = store.container_dir(id);
    CONTAINER_FILES
        .iter()
        .try_for_each(|f| remove_file(&dir.join(f)))
}

/// The marker saying ocishim made a cgroup parent (so the last container's removal may
/// remove it when empty), and the lock key that serializes making and removing it.
pub struct ParentMarker {
    pub path: PathBuf,
    pub key: String,
}

/// The parent marker of the cgroup at `cgroups_path` ("/parent/id"); None at top level.
pub fn parent_marker(store: &Store, cgroups_path: &str) -> Option<ParentMarker> {
    let (parent, _) = cgroups_path.trim_matches('/').rsplit_once('/')?;
    let key = format!("cgparent-{}", parent.replace('/', "%"));
    Some(ParentMarker {
        path: store.root().join("cgroup-parents").join(&key),
        key,
    })
}

/// Remove the container's cgroup in every hierarchy, and its parent if ocishim made it
/// and it is now empty.
pub fn cgroup(
    store: &Store,
    cgroups: &'static CgroupFs,
    cgroups_path: &str,
) -> Result<(), TeardownError> {
    if cgroups_path.is_empty() {
        return Ok(());
    }
    let cg = ContainerCgroup::in_fs(cgroups, cgroups_path);
    let removed = cg.remove();
    if let Some(m) = parent_marker(store, cgroups_path) {
        if m.path.exists() {
            let _lock = store.lock(&m.key)?;
            cg.remove_parent_if_empty();
            let parent = cg.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let gone = cgroups
                .all_mounts()
                .iter()
                .all(|mnt| !mnt.join(parent).exists());
            if gone {
                remove_file(&m.path)?;
            }
        }
    }
    Ok(removed?)
}

/// Whether the record's container has a bridge attachment of its own (a veth, a
/// namespace and an address to give back).
pub fn has_own_network(rec: &Record) -> bool {
    !rec.host_config.network_mode.starts_with("container:")
        && !matches!(rec.host_config.network_mode.as_str(), "none" | "host")
        && !rec.network_settings.sandbox_key.is_empty()
}

/// Give back what a bridge network gave the container: veth, namespace, address.
pub fn network(networks: &Networks, rec: &Record) -> Result<(), TeardownError> {
    if !has_own_network(rec) {
        return Ok(());
    }
    networks.detach(
        &rec.host_config.network_mode,
        &rec.id,
        Path::new(&rec.network_settings.sandbox_key),
    )?;
    Ok(())
}

/// Remove the record, its directory (log, bundle, /etc files) and its name.
pub fn record(store: &Store, rec: &Record) -> Result<(), TeardownError> {
    store.remove(rec)?;
    Ok(())
}

/// Everything of a container whose processes are gone: cgroup, network, its image's
/// overlay (or idmapped rootfs), its id range, then the record with its directory. Every
/// part is tried (but the record and the id range stay while the rootfs could not be
/// unmounted: removing the directory would reach into the mount, and the mount still maps
/// the range); each failure is logged and the first one returned.
pub fn all(scope: &Scope, rec: &Record) -> Result<(), TeardownError> {
    // In this order: the record goes last, so whoever sees it gone sees nothing else left.
    let cgroup = cgroup(scope.store, scope.cgroups, &rec.ocishim.cgroups_path);
    crate::sys::failpoint("teardown::cgroup");
    let network = network(scope.networks, rec);
    crate::sys::failpoint("teardown::network");
    let overlay = if has_own_rootfs(rec) {
        rootfs(scope.store, &rec.id)
    } else {
        Ok(())
    };
    crate::sys::failpoint("teardown::rootfs");
    let (range, record) = match &overlay {
        Ok(()) => {
            let auto = rec.ocishim.userns_base.is_some()
                || rec
                    .ocishim
                    .config()
                    .is_some_and(|c| c.userns == crate::config::UsernsMode::Auto);
            let range = if auto {
                userns(scope.store, &rec.id)
            } else {
                Ok(())
            };
            crate::sys::failpoint("teardown::rootfs_and_range");
            let record = match &range {
                Ok(()) => bundle(scope.store, &rec.id).and_then(|_| {
                    crate::sys::failpoint("teardown::bundle");
                    record(scope.store, rec)
                }),
                Err(_) => Ok(()),
            };
            (range, record)
        }
        Err(_) => (Ok(()), Ok(())),
    };
    let results = [cgroup, network, overlay, range, record];
    let mut first = None;
    for e in results.into_iter().filter_map(Result::err) {
        tracing::warn!(id = %rec.id, "teardown: {e}");
        first.get_or_insert(e);
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("run"), d.path().join("lib"));
        s.init().unwrap();
        (d, s)
    }

    #[test]
    fn bundle_removal_is_complete_and_idempotent() {
        let (_d, s) = store();
        let id = crate::store::new_id();
        let dir = s.container_dir(&id);
        fs::create_dir_all(s.bundle_dir(&id)).unwrap();
        fs::write(s.bundle_dir(&id).join("config.json"), "{}").unwrap();
        fs::write(s.runtime_log_path(&id), "").unwrap();
        // Where versions before wrote the bundle, in the container directory.
        fs::create_dir_all(dir.join("bundle/rootfs")).unwrap();
        for f in CONTAINER_FILES {
            fs::write(dir.join(f), "x").unwrap();
        }
        fs::write(dir.join("config.v2.json"), "{}").unwrap();
        bundle(&s, &id).unwrap();
        assert!(!s.bundle_dir(&id).exists());
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("config.v2.json")]);
        bundle(&s, &id).unwrap();
    }

    #[test]
    fn parent_markers() {
        let (_d, s) = store();
        let m = parent_marker(&s, "/ocishim/abc").unwrap();
        assert_eq!(m.key, "cgparent-ocishim");
        assert_eq!(m.path, s.root().join("cgroup-parents/cgparent-ocishim"));
        assert_eq!(parent_marker(&s, "/a/b/abc").unwrap().key, "cgparent-a%b");
        assert!(parent_marker(&s, "/abc").is_none());
        // No cgroup path: nothing to remove.
        cgroup(&s, CgroupFs::host(), "").unwrap();
    }

    #[test]
    fn a_gone_monitor_is_no_wait() {
        monitor(0, 0).unwrap();
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id() as i32;
        c.wait().unwrap();
        monitor(pid, 1).unwrap();
    }
}
