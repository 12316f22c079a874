//! On-disk layout, container records (atomic writes), locks, ID/prefix/name lookup.
//!
//! ```text
//! <root>/locks/<id>                      per-container flock
//! <root>/containers/<id>/{config.json,hostname,hosts,resolv.conf,runtime.log,init.pid}
//! <data-root>/containers/<id>/config.v2.json
//! <data-root>/containers/<id>/<id>-json.log
//! <data-root>/names/<name>               a symlink to "<id> <pid> <start time>"
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::record::Record;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("reading record {path}: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { what, path, source }
}

/// Write a file atomically: temp file in the same directory, then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = File::create(&tmp).and_then(|mut f| f.write_all(data));
    // No temp file is left behind (a full disk fails the write, not the create).
    written
        .and_then(|()| fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

/// An exclusive flock, released on drop (by an unlock: a copy of the fd that a fork
/// inherited does not keep it held).
pub struct Lock {
    _file: Flock<File>,
}

impl Lock {
    /// An exclusive lock on `path` (made if missing).
    pub fn acquire(path: &Path) -> io::Result<Lock> {
        Lock::take(path, FlockArg::LockExclusive)
    }

    /// A shared lock on `path`: any number of holders, none while an exclusive one is held.
    pub fn acquire_shared(path: &Path) -> io::Result<Lock> {
        Lock::take(path, FlockArg::LockShared)
    }

    fn take(path: &Path, how: FlockArg) -> io::Result<Lock> {
        let open = || {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
        };
        // Its directory is made again when gone: after a reboot nothing of `--root` (a
        // tmpfs) is left, and the first command may well be a `start`, `rm` or `gc`.
        let mut file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
                open()?
            }
            other => other?,
        };
        loop {
            match Flock::lock(file, how) {
                Ok(f) => return Ok(Lock { _file: f }),
                Err((f, Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(e.into()),
            }
        }
    }
}

/// 32 random bytes as 64 lowercase hex characters.
pub fn new_id() -> String {
    let mut buf = [0u8; 32];
    crate::sys::fill_random(&mut buf).expect("getrandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quirky", "silly", "tender", "upbeat", "vivid", "witty", "zealous", "bold",
];
const NOUNS: &[&str] = &[
    "turing", "hopper", "lovelace", "knuth", "ritchie", "thompson", "torvalds", "liskov",
    "dijkstra", "hamilton", "shannon", "noether", "curie", "darwin", "euler", "gauss", "kepler",
    "newton", "pascal", "tesla",
];

/// A docker-like generated name from an ID's bytes (and a try counter for collisions).
pub fn generated_name(id: &str, attempt: usize) -> String {
    let b = |i: usize| usize::from_str_radix(&id[i * 2..i * 2 + 2], 16).unwrap_or(0);
    let base = format!(
        "{}_{}",
        ADJECTIVES[b(0) % ADJECTIVES.len()],
        NOUNS[b(1) % NOUNS.len()]
    );
    if attempt == 0 {
        base
    } else {
        format!("{base}{}", b(2 + attempt % 20))
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    data_root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>, data_root: impl Into<PathBuf>) -> Store {
        Store {
            root: root.into(),
            data_root: data_root.into(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// Create the directories the store needs (idempotent).
    pub fn init(&self) -> Result<(), StoreError> {
        for d in [self.locks_dir(), self.containers_dir(), self.names_dir()] {
            fs::create_dir_all(&d).map_err(io_err("creating", &d))?;
        }
        Ok(())
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    pub fn names_dir(&self) -> PathBuf {
        self.data_root.join("names")
    }
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    pub fn record_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("config.v2.json")
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }
    /// What does not outlive a boot lives under `--root` (a tmpfs), as dockerd keeps its
    /// runtime bundles under /run: the bundle (config.json), the /etc files, the runtime's
    /// log and the pid file, in `<root>/containers/<id>`. Only the record, the log and an
    /// image's upper layer are on the data root.
    pub fn bundles_dir(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.bundles_dir().join(id)
    }
    pub fn runtime_log_path(&self, id: &str) -> PathBuf {
        self.bundle_dir(id).join("runtime.log")
    }
    /// Space the monitor holds back so that the exit record can be written on a full disk.
    pub fn reserve_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("monitor.reserve")
    }
    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.bundle_dir(id).join("init.pid")
    }
    /// The file the monitor holds an exclusive lock on while it lives ([`Store::hold_alive`]).
    pub fn alive_path(&self, id: &str) -> PathBuf {
        self.bundle_dir(id).join("monitor.alive")
    }

    /// Held by the monitor for its whole life: a lock on `monitor.alive`, made under a
    /// temporary name and renamed into place locked, so that the file is never seen
    /// unlocked while its monitor lives. The kernel drops the lock when the process dies,
    /// however it dies: [`Store::alive_lock_held`] is then exact, with no PID to reuse.
    pub fn hold_alive(&self, id: &str) -> io::Result<File> {
        let path = self.alive_path(id);
        let tmp = path.with_extension(format!("alive.{}", std::process::id()));
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        // On the open file itself (not a guard that unlocks on drop): the lock lasts as
        // long as this process holds the file.
        let placed = rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(io::Error::from)
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = placed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(f)
    }

    /// Whether the monitor of `id` (PID `pid`, started at `start_time`) lives: its
    /// `monitor.alive` lock held (the usual case, cheap), else the PID with that start time.
    pub fn monitor_alive(&self, id: &str, pid: i32, start_time: u64) -> bool {
        pid > 0 && (self.alive_lock_held(id) == Some(true) || process_alive(pid, start_time))
    }

    /// Whether the monitor of `id` lives, from its `monitor.alive` lock (open, try a
    /// shared lock, close: a few microseconds, where /proc/PID/stat costs ten). None when
    /// there is no such file (a monitor of an older ocishim, or none yet).
    pub fn alive_lock_held(&self, id: &str) -> Option<bool> {
        let fd = rustix::fs::open(
            self.alive_path(id),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        lock_held(&fd)
    }

    /// The directories a listing reads below, held open: None without a containers
    /// directory (no container was ever made).
    pub fn list_dirs(&self) -> Option<ListDirs> {
        Some(ListDirs {
            records: File::open(self.containers_dir()).ok()?,
            bundles: File::open(self.bundles_dir()).ok(),
        })
    }

    /// Bundles under `--root` whose container has no record (`gc`; a create writes its
    /// bundle after its record, rm removes it before).
    pub fn bundles_without_record(&self) -> Vec<String> {
        fs::read_dir(self.bundles_dir())
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|id| is_id(id) && !self.record_path(id).exists())
                    .collect()
            })
            .unwrap_or_default()
    }
    fn lock_path(&self, id: &str) -> PathBuf {
        self.locks_dir().join(id)
    }

    /// Take the container's lock.
    pub fn lock(&self, id: &str) -> Result<Lock, StoreError> {
        let p = self.lock_path(id);
        Lock::acquire(&p).map_err(io_err("locking", &p))
    }

    /// Reserve a name for an ID: a symlink `names/NAME` whose target is the ID and the
    /// reserving process (PID and start time), made whole and exclusively by `symlink(2)`
    /// (safe without a global lock; a kill leaves no empty entry). A name left by a create
    /// killed before its record ([`Store::release_orphan_name`]) is taken over; a name whose
    /// create is still under way is in use, as is a recorded container's.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), StoreError> {
        let p = self.names_dir().join(name);
        let me = crate::record::Creator::this_process();
        let content = format!("{id} {} {}", me.pid, me.start_time);
        // Bounded: each retry follows a name that was released meanwhile.
        for _ in 0..4 {
            match std::os::unix::fs::symlink(&content, &p) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if self.release_orphan_name(name)? {
                        continue;
                    }
                    match read_name(&p) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        held => {
                            return Err(StoreError::NameInUse {
                                name: name.to_string(),
                                id: name_owner(&held.unwrap_or_default()).0,
                            })
                        }
                    }
                }
                Err(e) => return Err(io_err("creating", &p)(e)),
            }
        }
        Err(StoreError::NameInUse {
            name: name.to_string(),
            id: String::new(),
        })
    }

    /// The owner of a name entry (`bytes`, read from `path`) that a create killed before
    /// its record left: the owner has no record and the reserving process is gone (for an
    /// entry that does not say who reserved it, it is older than [`ORPHAN_GRACE`]).
    fn orphan_owner(&self, path: &Path, bytes: &[u8]) -> Option<String> {
        let (owner, by) = name_owner(bytes);
        let gone = match by {
            Some(c) => !c.alive(),
            None => older_than(path, ORPHAN_GRACE),
        };
        let recorded = is_id(&owner) && self.record_path(&owner).exists();
        // A removal under way has renamed the directory away and releases the name next.
        (gone && !recorded && !self.removal_under_way(&owner)).then_some(owner)
    }

    /// Release `name` if a create killed before its record left it, with the container
    /// directory that create may have made (which can get no record now: only its creator
    /// writes the first one). Under one lock for every such release, so that two processes
    /// that found the same orphan never remove a name that the other has just reserved
    /// (reservations themselves need no lock). Whether it released the name.
    pub fn release_orphan_name(&self, name: &str) -> Result<bool, StoreError> {
        let _l = self.lock(NAMES_LOCK)?;
        let p = self.names_dir().join(name);
        let Ok(bytes) = read_name(&p) else {
            return Ok(false);
        };
        let Some(owner) = self.orphan_owner(&p, &bytes) else {
            return Ok(false);
        };
        // The directory first: a release killed in between leaves an orphan name, found
        // again, not a directory that no name leads to.
        if is_id(&owner) {
            let d = self.container_dir(&owner);
            match fs::remove_dir_all(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &d)(e)),
            }
        }
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("removing", &p)(e)),
        }
    }

    /// The creator recorded in the name file of container `id`, if any (`gc`: a directory
    /// without a record whose creator is gone was left by a killed create).
    fn creator_by_name(&self) -> std::collections::HashMap<String, crate::record::Creator> {
        let Ok(rd) = fs::read_dir(self.names_dir()) else {
            return Default::default();
        };
        rd.flatten()
            .filter_map(|e| {
                let (id, by) = name_owner(&read_name(&e.path()).ok()?);
                Some((id, by?))
            })
            .collect()
    }

    /// Reserve the requested name, or generate one.
    pub fn reserve_name_for(
        &self,
        requested: Option<&str>,
        id: &str,
    ) -> Result<String, StoreError> {
        if let Some(n) = requested {
            self.reserve_name(n, id)?;
            return Ok(n.to_string());
        }
        let mut last = None;
        for attempt in 0..20 {
            let n = generated_name(id, attempt);
            match self.reserve_name(&n, id) {
                Ok(()) => return Ok(n),
                Err(e @ StoreError::NameInUse { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        // Twenty collisions: fall back to the ID's prefix, unique by construction.
        let n = format!("c{}", &id[..12]);
        self.reserve_name(&n, id).map_err(|e| last.unwrap_or(e))?;
        Ok(n)
    }

    /// Release a name if it still belongs to `id`; whether it did.
    pub fn release_name(&self, name: &str, id: &str) -> bool {
        let p = self.names_dir().join(name);
        read_name(&p)
            .map(|o| name_owner(&o).0 == id)
            .unwrap_or(false)
            && fs::remove_file(&p).is_ok()
    }

    pub fn read(&self, id: &str) -> Result<Record, StoreError> {
        self.read_as(id)
    }

    /// The record of `id` as `T` (a [`crate::record::Brief`] reads a few fields only).
    pub fn read_as<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<T, StoreError> {
        let p = self.record_path(id);
        let s = read_small(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(id.to_string()),
            _ => io_err("reading", &p)(e),
        })?;
        serde_json::from_slice(&s).map_err(|source| StoreError::Corrupt { path: p, source })
    }

    pub fn write(&self, rec: &Record) -> Result<(), StoreError> {
        let p = self.record_path(&rec.id);
        let data = serde_json::to_vec(rec).expect("records serialize");
        write_atomic(&p, &data).map_err(io_err("writing", &p))
    }

    /// Write the record over `spare`, a file of the container's directory whose blocks
    /// are already allocated (the monitor's reserve), then rename it into place: no new
    /// space is needed while the record fits, so this works on a full disk. The spare is
    /// used up.
    pub fn write_into(&self, rec: &Record, spare: &Path) -> Result<(), StoreError> {
        let p = self.record_path(&rec.id);
        let data = serde_json::to_vec(rec).expect("records serialize");
        let written = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(spare)
            .and_then(|mut f| {
                if f.metadata()?.len() < data.len() as u64 {
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
                f.write_all(&data)?;
                f.set_len(data.len() as u64)
            });
        written
            .and_then(|()| fs::rename(spare, &p))
            .map_err(io_err("writing", &p))
    }

    /// Read-modify-write under the container's lock.
    pub fn update<F: FnOnce(&mut Record)>(&self, id: &str, f: F) -> Result<Record, StoreError> {
        let _l = self.lock(id)?;
        self.modify_locked(id, f)
    }

    /// Read-modify-write by a caller that already holds the container's lock.
    pub fn modify_locked<F: FnOnce(&mut Record)>(
        &self,
        id: &str,
        f: F,
    ) -> Result<Record, StoreError> {
        let mut rec = self.read(id)?;
        f(&mut rec);
        self.write(&rec)?;
        Ok(rec)
    }

    /// The readable records of `ids`, in that order, read by a few threads when there
    /// are many ([`ListDirs::read_record`]).
    pub fn read_many(&self, ids: &[String]) -> Vec<Record> {
        let Some(dirs) = self.list_dirs() else {
            return Vec::new();
        };
        crate::sys::par_filter_map(ids, 64, &|| Vec::with_capacity(16384), &|buf, id| {
            serde_json::from_slice(dirs.read_record(id, buf)?).ok()
        })
    }

    /// IDs of the containers whose name `keep` accepts, from the name index alone (no
    /// record is read: `ps --filter name=...` over many containers reads only its matches).
    /// With `recorded`, only those whose record exists, and those of names left by a
    /// create killed between its name and its record (the reserving process is gone:
    /// `rm -f ID` removes them, [`Store::remove_unrecorded`]); never the name of a create
    /// under way. Each name is read (and each record looked up) relative to its directory,
    /// by a few threads when there are many: the invoker lists its containers this way
    /// before every cleanup, and `rm -f`s what it lists.
    pub fn ids_named(
        &self,
        keep: &(dyn Fn(&str) -> bool + Sync),
        recorded: bool,
    ) -> Result<Vec<String>, StoreError> {
        let d = self.names_dir();
        let names = dir_names(&d, keep).map_err(io_err("listing", &d))?;
        if names.is_empty() {
            return Ok(names);
        }
        let names_fd = File::open(&d).map_err(io_err("opening", &d))?;
        let containers = File::open(self.containers_dir()).ok();
        let id_of = |name: &String| -> Option<String> {
            let bytes = read_name_at(&names_fd, Path::new(name)).ok()?;
            let id = name_owner(&bytes).0;
            if !is_id(&id) {
                return None;
            }
            if recorded {
                let rel = format!("{id}/config.v2.json");
                let found = containers.as_ref().is_some_and(|dir| {
                    rustix::fs::accessat(
                        dir,
                        rel.as_str(),
                        rustix::fs::Access::EXISTS,
                        rustix::fs::AtFlags::empty(),
                    )
                    .is_ok()
                });
                // No record: listed only when a killed create left the name (rare: the
                // normal case costs nothing more).
                if !found {
                    return self.orphan_owner(&d.join(name), &bytes);
                }
            }
            Some(id)
        };
        Ok(crate::sys::par_filter_map(&names, 256, &|| (), &|(), n| {
            id_of(n)
        }))
    }

    /// Container directories without a record (a create writes its record right after
    /// making the directory) whose creator, as its name file says, is gone; or with no
    /// such word, untouched for `grace`.
    pub fn dirs_without_record(&self, grace: std::time::Duration) -> Vec<String> {
        let creators = self.creator_by_name();
        self.ids()
            .unwrap_or_default()
            .into_iter()
            .filter(|id| {
                !self.record_path(id).exists()
                    && match creators.get(id) {
                        Some(c) => !c.alive(),
                        None => older_than(&self.container_dir(id), grace),
                    }
            })
            .collect()
    }

    /// Names (and the ID each names) left by creates killed before their records
    /// ([`Store::release_orphan_name`] releases one).
    pub fn names_without_record(&self) -> Vec<(String, String)> {
        let Ok(rd) = fs::read_dir(self.names_dir()) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let owner = self.orphan_owner(&e.path(), &read_name(&e.path()).ok()?)?;
                Some((name, owner))
            })
            .collect()
    }

    /// IDs of every container directory.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let d = self.containers_dir();
        dir_names(&d, &is_id).map_err(io_err("listing", &d))
    }

    /// Resolve a full ID, a name or a unique ID prefix (docker's order).
    pub fn resolve(&self, query: &str) -> Result<String, StoreError> {
        let q = query.strip_prefix('/').unwrap_or(query);
        if q.is_empty() {
            return Err(StoreError::NotFound(query.to_string()));
        }
        if q.len() == 64 && self.record_path(q).exists() {
            return Ok(q.to_string());
        }
        if let Ok(bytes) = read_name(&self.names_dir().join(q)) {
            let (owner, _) = name_owner(&bytes);
            if self.record_path(&owner).exists() {
                return Ok(owner);
            }
        }
        if !q.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NotFound(query.to_string()));
        }
        let q = q.to_ascii_lowercase();
        let mut found = self.ids()?.into_iter().filter(|id| id.starts_with(&q));
        match (found.next(), found.next()) {
            (Some(id), None) if self.record_path(&id).exists() => Ok(id),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous(query.to_string())),
            _ => Err(StoreError::NotFound(query.to_string())),
        }
    }

    /// Every readable record, oldest first.
    pub fn list(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = self.read_many(&self.ids()?);
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    /// Remove the container's directory, name and lock file. The directory is first
    /// renamed out of the way, so its record disappears at once with everything in it:
    /// nobody (`gc` least) sees a container directory half-removed. The name goes after
    /// the rename: a removal killed before it leaves a name that the invoker's listing
    /// shows (`ps --filter name=…`, [`Store::ids_named`]) and `rm -f` finishes
    /// ([`Store::remove_unrecorded`]); killed after it, the renamed directory alone, which
    /// `rm -f ID` and `gc` remove.
    pub fn remove(&self, rec: &Record) -> Result<(), StoreError> {
        let d = self.container_dir(&rec.id);
        let me = crate::record::Creator::this_process();
        let trash = self
            .containers_dir()
            .join(format!("{REMOVING}{}.{}.{}", rec.id, me.pid, me.start_time));
        match fs::rename(&d, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &d)(e)),
        }
        crate::sys::failpoint("store::renamed");
        self.release_name(rec.short_name(), &rec.id);
        crate::sys::failpoint("store::name_released");
        match fs::remove_dir_all(&trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &trash)(e)),
        }
        let _ = fs::remove_file(self.lock_path(&rec.id));
        Ok(())
    }

    /// Directories of removals that were killed half-way (their process is gone: `gc`).
    pub fn removals_left(&self) -> Vec<PathBuf> {
        let killed = |name: &str| Some(!unrecorded::removing_process(name)?.alive());
        fs::read_dir(self.containers_dir())
            .map(|rd| {
                rd.flatten()
                    .filter(|e| killed(&e.file_name().to_string_lossy()).unwrap_or(false))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether `s` has a container ID's shape (64 hex digits).
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How old a record-less name or container directory that does not say which process made
/// it must be before it counts as left by a killed create (`gc`).
pub const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The lock every release of an orphan name takes (`locks/names`).
const NAMES_LOCK: &str = "names";

/// The prefix of a container directory being removed (see [`Store::remove`]).
const REMOVING: &str = ".removing-";

/// A name entry's content: a symlink's target (made whole and exclusively by
/// `symlink(2)`, read in one call), or a regular file's bytes (names reserved before).
fn read_name(path: &Path) -> io::Result<Vec<u8>> {
    read_name_at(rustix::fs::CWD, path)
}

/// [`read_name`] of `name` relative to the directory `dir` (one path walk shorter).
fn read_name_at(dir: impl std::os::fd::AsFd, name: &Path) -> io::Result<Vec<u8>> {
    match rustix::fs::readlinkat(&dir, name, Vec::new()) {
        Ok(target) => Ok(target.into_bytes()),
        Err(rustix::io::Errno::INVAL) => {
            let fd = rustix::fs::openat(
                &dir,
                name,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?;
            read_all(File::from(fd))
        }
        Err(e) => Err(e.into()),
    }
}

/// A name file's ID and the process that reserved the name (files written before that
/// was recorded hold the ID alone).
fn name_owner(bytes: &[u8]) -> (String, Option<crate::record::Creator>) {
    let text = String::from_utf8_lossy(bytes);
    let mut words = text.split_whitespace();
    let id = words.next().unwrap_or("").to_string();
    let by = match (words.next().map(str::parse), words.next().map(str::parse)) {
        (Some(Ok(pid)), Some(Ok(start_time))) => Some(crate::record::Creator { pid, start_time }),
        _ => None,
    };
    (id, by)
}

/// Whether `path` was last modified at least `age` ago (false when it cannot be told).
pub fn older_than(path: &Path, age: std::time::Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .map(|t| {
            std::time::SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                >= age
        })
        .unwrap_or(false)
}

/// The names in directory `d` that `keep` accepts (not `.`, `..` or non-UTF-8 ones); none
/// when it does not exist. Read 32 KiB at a time: a thousand containers' directories
/// take two `getdents64` calls, not the forty-odd of a 2 KiB `readdir` buffer.
fn dir_names(d: &Path, keep: &dyn Fn(&str) -> bool) -> io::Result<Vec<String>> {
    use rustix::fs::{Mode, OFlags};
    let fd = match rustix::fs::open(
        d,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut buf = Vec::<u8>::with_capacity(32 * 1024);
    let mut entries = rustix::fs::RawDir::new(fd, buf.spare_capacity_mut());
    let mut out = Vec::new();
    while let Some(e) = entries.next() {
        let e = e?;
        if let Ok(n) = e.file_name().to_str() {
            if n != "." && n != ".." && keep(n) {
                out.push(n.to_string());
            }
        }
    }
    Ok(out)
}

/// The two directories a listing reads below, opened once ([`Store::list_dirs`]): the
/// records on the data root, the monitors' locks under `--root`. Each file is then opened
/// by its last two names: on the VMs measured the walk from / was most of an open's cost.
pub struct ListDirs {
    records: File,
    bundles: Option<File>,
}

impl ListDirs {
    /// The record of `id`, read into `buf` (emptied first).
    pub fn read_record<'b>(&self, id: &str, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
        let fd = open_below(&self.records, id, "config.v2.json")?;
        buf.clear();
        read_into(File::from(fd), buf).ok()?;
        Some(buf)
    }

    /// [`Store::alive_lock_held`].
    pub fn alive_lock_held(&self, id: &str) -> Option<bool> {
        lock_held(&open_below(self.bundles.as_ref()?, id, "monitor.alive")?)
    }
}

/// `dir/name` opened read-only below the directory `base`, the path built on the stack (no
/// allocation: a listing opens two a container).
fn open_below(base: &File, dir: &str, name: &str) -> Option<std::os::fd::OwnedFd> {
    let mut buf = [0u8; 128];
    let n = dir.len() + 1 + name.len();
    let out = buf.get_mut(..n)?;
    out[..dir.len()].copy_from_slice(dir.as_bytes());
    out[dir.len()] = b'/';
    out[dir.len() + 1..].copy_from_slice(name.as_bytes());
    let rel = std::str::from_utf8(out).ok()?;
    rustix::fs::openat(
        base,
        rel,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
}

/// Whether another process holds a lock on `fd`'s file (a monitor's `monitor.alive`):
/// a shared lock is tried without waiting. None when flock itself fails.
fn lock_held(fd: &impl std::os::fd::AsFd) -> Option<bool> {
    match rustix::fs::flock(fd, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Err(rustix::io::Errno::WOULDBLOCK) => Some(true),
        Ok(()) => Some(false),
        Err(_) => None,
    }
}

/// A small file's bytes in as few system calls as the kernel allows (open, read until
/// EOF, close: no fstat or lseek, which `read_to_end` adds): `ps` reads a record a
/// container.
pub fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    read_all(File::open(path)?)
}

fn read_all(f: File) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(8192);
    read_into(f, &mut buf)?;
    Ok(buf)
}

/// The rest of `f` (a regular file) appended to `buf`, read straight into its spare
/// capacity (no zeroing, and one `read` for a file that fits: a regular file's read
/// returns less than asked for only at its end).
fn read_into(f: File, buf: &mut Vec<u8>) -> io::Result<()> {
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity().max(8192));
        }
        let room = buf.capacity() - buf.len();
        match rustix::io::read(&f, rustix::buffer::spare_capacity(buf)) {
            Ok(0) => return Ok(()),
            Ok(n) if n < room => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// A process's start time (clock ticks since boot), /proc/PID/stat field 22.
pub fn process_start_time(pid: i32) -> Option<u64> {
    process_stat(pid).map(|(_, start)| start)
}

/// A process's state letter (field 3) and start time (field 22), from one read.
fn process_stat(pid: i32) -> Option<(u8, u64)> {
    // One read: `ps` checks a monitor per running container.
    let mut buf = [0u8; 1024];
    parse_stat(read_stat(pid, &mut buf)?)
}

/// /proc/PID/stat, read into `buf` with one read.
fn read_stat(pid: i32, buf: &mut [u8]) -> Option<&str> {
    let path = format!("/proc/{pid}/stat");
    std::str::from_utf8(crate::sys::read_small(Path::new(&path), buf)?).ok()
}

/// The fields of a /proc/PID/stat line from field 3 on. comm (field 2) may hold spaces
/// and parentheses: the fields after it start after the last ')'.
fn stat_fields(s: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(s.get(s.rfind(')')? + 2..)?.split_whitespace())
}

/// Fields 3 and 22 of a /proc/PID/stat line.
fn parse_stat(s: &str) -> Option<(u8, u64)> {
    let mut fields = stat_fields(s)?;
    let state = *fields.next()?.as_bytes().first()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// A live (not zombie) process's parent PID, /proc/PID/stat field 4; None when it is gone.
pub fn process_parent(pid: i32) -> Option<i32> {
    let mut buf = [0u8; 1024];
    parse_parent(read_stat(pid, &mut buf)?)
}

/// Field 4 of a /proc/PID/stat line, None for a zombie or a dead process.
fn parse_parent(s: &str) -> Option<i32> {
    let mut fields = stat_fields(s)?;
    if matches!(fields.next()?.as_bytes().first()?, b'Z' | b'X') {
        return None;
    }
    fields.next()?.parse().ok()
}

/// True when `pid` is alive and is the same process that started at `start_time`. A
/// zombie is not alive: it has exited (its parent has not reaped it yet), and a wait on
/// its pidfd has already returned.
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    pid > 0
        && process_stat(pid)
            .is_some_and(|(state, start)| start == start_time && !matches!(state, b'Z' | b'X'))
}

mod unrecorded;
pub use unrecorded::Unrecorded;

#[cfg(test)]
mod tests;
