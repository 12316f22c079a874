//! What a killed create or removal leaves of a container without its record, and how
//! `rm -f` finishes it ([`Store::remove_unrecorded`]); the lock that says a launch of a
//! container's monitor is under way ([`Store::launch_lock`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{
    dir_names, io_err, is_id, lock_held, name_owner, read_name, read_name_at, Store, StoreError,
    NAMES_LOCK, REMOVING,
};

impl Store {
    /// Whether a live process is removing container `id` (its directory renamed to
    /// `.removing-<id>.<pid>.<start time>`, [`Store::remove`]). Read only for a name
    /// entry without a record, whose reserving process is gone.
    pub(super) fn removal_under_way(&self, id: &str) -> bool {
        is_id(id)
            && self
                .removals_of(id)
                .iter()
                .any(|(_, by)| by.is_none_or(|c| c.alive()))
    }

    /// The directories of removals of container `id` ([`Store::remove`]) and the process
    /// removing each (None when the name does not say).
    pub(super) fn removals_of(&self, id: &str) -> Vec<(PathBuf, Option<crate::record::Creator>)> {
        let prefix = format!("{REMOVING}{id}.");
        let d = self.containers_dir();
        dir_names(&d, &|n| n.starts_with(&prefix))
            .unwrap_or_default()
            .into_iter()
            .map(|n| {
                let by = removing_process(&n);
                (d.join(n), by)
            })
            .collect()
    }

    /// `rm -f` of a container that has no record (`query` a full ID or a name): what a
    /// create killed between its name and its record left (the name entry, reserved by a
    /// process that is gone, and the directory it may have made), or a removal killed
    /// after it renamed the container's directory away (that directory, the name), is
    /// removed, with the bundle and the lock file (everything else of a container goes
    /// before its record). Names are released as gc and create release them
    /// ([`Store::release_orphan_name`]); a create still under way (its process alive) is
    /// left alone and reported.
    pub fn remove_unrecorded(&self, query: &str) -> Result<Unrecorded, StoreError> {
        let q = query.strip_prefix('/').unwrap_or(query);
        if q.is_empty() || q.contains('/') || q == "." || q == ".." {
            return Ok(Unrecorded::Nothing);
        }
        let by_id = is_id(q).then(|| q.to_ascii_lowercase()).and_then(|id| {
            let names = self.names_of(&id);
            let left = !names.is_empty()
                || self.container_dir(&id).exists()
                || self.bundle_dir(&id).exists()
                || !self.removals_of(&id).is_empty();
            left.then_some((id, names))
        });
        let (id, names) = match by_id {
            Some(found) => found,
            None => {
                let Ok(bytes) = read_name(&self.names_dir().join(q)) else {
                    return Ok(Unrecorded::Nothing);
                };
                let (owner, by) = name_owner(&bytes);
                (owner, vec![(q.to_string(), by)])
            }
        };
        if is_id(&id) && self.record_path(&id).exists() {
            // Recorded meanwhile (a create that was not killed): not ours to remove.
            return Ok(Unrecorded::Nothing);
        }
        if let Some(c) = names.iter().find_map(|(_, by)| by.filter(|c| c.alive())) {
            return Ok(Unrecorded::Creating { id, pid: c.pid });
        }
        let mut removed = false;
        for (name, _) in &names {
            removed |= self.release_orphan_name(name)?;
        }
        if !is_id(&id) {
            // A name entry whose content is no ID: released above, nothing else to find.
            return Ok(if removed {
                Unrecorded::Removed(id)
            } else {
                Unrecorded::Nothing
            });
        }
        // A name still naming it that could not be released: a create under way (an entry
        // that does not say who made it, younger than ORPHAN_GRACE), or one made meanwhile.
        if let Some((_, by)) = self.names_of(&id).first() {
            return Ok(Unrecorded::Creating {
                id,
                pid: by.map_or(0, |c| c.pid),
            });
        }
        let _l = self.lock(NAMES_LOCK)?;
        if self.record_path(&id).exists() {
            return Ok(Unrecorded::Nothing);
        }
        for (dir, by) in self.removals_of(&id) {
            if by.is_some_and(|c| !c.alive()) {
                removed |= remove_tree(&dir)?;
            }
        }
        // No name leads to it and it has no record: a create under way always has its name
        // (reserved first) until its record exists; a removal renames it away first.
        removed |= remove_tree(&self.container_dir(&id))?;
        // A bundle is written after the record and removed before it.
        removed |= remove_tree(&self.bundle_dir(&id))?;
        if removed {
            let _ = fs::remove_file(self.lock_path(&id));
            return Ok(Unrecorded::Removed(id));
        }
        Ok(Unrecorded::Nothing)
    }

    /// The name entries that name container `id`, with the process that reserved each
    /// (every entry read: only for an ID that has no record).
    fn names_of(&self, id: &str) -> Vec<(String, Option<crate::record::Creator>)> {
        let d = self.names_dir();
        let Ok(names) = dir_names(&d, &|_| true) else {
            return Vec::new();
        };
        let Ok(names_fd) = File::open(&d) else {
            return Vec::new();
        };
        crate::sys::par_filter_map(&names, 256, &|| (), &|(), n| {
            let (owner, by) = name_owner(&read_name_at(&names_fd, Path::new(n)).ok()?);
            (owner == id).then(|| (n.clone(), by))
        })
    }

    /// Whether a launch of container `id`'s monitor is under way: the monitor's first
    /// half (a fork of the creating process, running the runtime's create) holds the lock
    /// of `launch.lock` beside the bundle from before its fork until it execs the monitor
    /// or exits ([`Store::launch_lock`]).
    pub fn launch_under_way(&self, id: &str) -> bool {
        let Ok(fd) = rustix::fs::open(
            self.launch_lock_path(id),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            return false;
        };
        lock_held(&fd) == Some(true)
    }

    /// Wait (bounded by `timeout`) until no launch of `id`'s monitor is under way; whether
    /// none is.
    pub fn wait_launch(&self, id: &str, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.launch_under_way(id) {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    pub fn launch_lock_path(&self, id: &str) -> PathBuf {
        self.bundle_dir(id).join("launch.lock")
    }

    /// The lock of a launch of `id`'s monitor, taken before the fork: the returned file
    /// holds it (no unlock on drop, so that the copy the monitor's first half inherits
    /// keeps it held after this one is closed). Its fd is to be passed on to the fork.
    pub fn launch_lock(&self, id: &str) -> io::Result<File> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(self.launch_lock_path(id))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(f)
    }
}

/// What [`Store::remove_unrecorded`] found of a container that has no record.
#[derive(Debug, PartialEq, Eq)]
pub enum Unrecorded {
    /// Nothing of it.
    Nothing,
    /// A create under way, between its name and its record (by process `pid`).
    Creating { id: String, pid: i32 },
    /// What a killed create or removal left of container `id`: removed.
    Removed(String),
}

/// The process removing a container, from its directory's name during the removal
/// (`.removing-<id>.<pid>.<start time>`).
pub(super) fn removing_process(name: &str) -> Option<crate::record::Creator> {
    let mut parts = name.strip_prefix(REMOVING)?.rsplitn(3, '.');
    let start_time = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    Some(crate::record::Creator { pid, start_time })
}

/// Remove a directory tree; whether it was there.
fn remove_tree(d: &Path) -> Result<bool, StoreError> {
    match fs::remove_dir_all(d) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("removing", d)(e)),
    }
}
