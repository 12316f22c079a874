//! The container's cgroup, owned by ocishim: created under the parent before the runtime's
//! create, limits written and read back from the kernel, the OOM counter and stats read
//! from it, limits updated live, and removed on rm and on every failed create. The runtime
//! joins it through linux.cgroupsPath and re-applies the same linux.resources from the spec
//! (so the bundle stays self-describing).
//!
//! Where the cgroup filesystems are is a value, [`CgroupFs`]: the host's (`/sys/fs/cgroup`
//! and `/proc/self/mountinfo`), or any other root and mount table (the tests' temp trees).
//! Creation no longer goes through cgroups-rs: its hierarchies take no roots (V1 reads
//! `/proc/self/mountinfo` itself, V2 and its controller list are fixed at `/sys/fs/cgroup`),
//! so it could not run on a temp tree. What it did is done here the same way: v1, a mkdir
//! in each hierarchy of the controllers it knows, in its order, and the cpusets copied from
//! the parent; v2, a mkdir per level with the root's controllers enabled above it.
//!
//! | option               | v1                          | v2                                  |
//! |----------------------|-----------------------------|-------------------------------------|
//! | --memory             | memory.limit_in_bytes       | memory.max                          |
//! | --memory-swap        | memory.memsw.limit_in_bytes | memory.swap.max (= swap − memory)   |
//! | --memory-reservation | memory.soft_limit_in_bytes  | memory.low                          |
//! | --cpu-shares         | cpu.shares                  | cpu.weight = 1+((s−2)·9999)/262142  |
//! | --cpus, --cpu-quota  | cpu.cfs_quota_us/_period_us | cpu.max "quota period"              |
//! | --cpuset-cpus/-mems  | cpuset.cpus / cpuset.mems   | cpuset.cpus / cpuset.mems           |
//! | --pids-limit         | pids.max                    | pids.max                            |

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The default mount point of the cgroup filesystem(s).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const PAGE: i64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    // The text cgroups-rs gave this error.
    #[error("cgroup {path}: fs error caused by: {source:?}")]
    Create { path: String, source: io::Error },
    #[error("cgroup: the kernel refused {file}={value}: {source}")]
    Refused {
        file: String,
        value: String,
        source: io::Error,
    },
    #[error("cgroup: {file} reads back {got:?} after writing {value:?}")]
    Mismatch {
        file: String,
        value: String,
        got: String,
    },
    #[error("cgroup: this kernel has no swap accounting ({file} is missing): --memory-swap cannot be limited")]
    NoSwapAccounting { file: String },
    #[error("cgroup: the {0} controller is not available")]
    NoController(String),
    #[error("cgroup: removing {path}: {source}")]
    Remove { path: String, source: io::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// v1 (legacy or hybrid) or v2 (unified), from the filesystem type at `root`.
pub fn detect(root: &Path) -> Version {
    match nix::sys::statfs::statfs(root) {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => Version::V2,
        _ => Version::V1,
    }
}

mod plan;
#[cfg(test)]
use plan::w;
pub use plan::{plan, reads_back_as, shares_to_weight, Write};

/// Usage figures of a container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stats {
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub memory_max_usage: u64,
    pub cpu_usage_ns: u64,
    pub pids_current: u64,
    pub oom_kills: u64,
}

/// A cgroup (v1) or cgroup2 mount of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// V1 for a `cgroup` mount, V2 for `cgroup2`.
    pub version: Version,
    pub point: PathBuf,
    /// The super options, e.g. "rw,cpu,cpuacct" or "rw,xattr,name=systemd".
    pub options: String,
}

impl Mount {
    fn carries(&self, controller: &str) -> bool {
        self.version == Version::V1 && self.options.split(',').any(|o| o == controller)
    }
}

/// Where the cgroup filesystems are: the usual root, its version, and the cgroup mounts.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    root: PathBuf,
    version: Version,
    /// Read from /proc/self/mountinfo at first use for the host: finding a cgroup at its
    /// usual path spares a read.
    mounts: OnceLock<Vec<Mount>>,
}

/// The v1 controllers that cgroups-rs made the cgroup in, in its order.
const V1_CONTROLLERS: [&str; 14] = [
    "blkio",
    "memory",
    "pids",
    "cpuset",
    "cpuacct",
    "cpu",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "rdma",
    "name=systemd",
];

/// The cgroup and cgroup2 mounts of a mountinfo text.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut f = post.split_whitespace();
            let version = match f.next()? {
                "cgroup" => Version::V1,
                "cgroup2" => Version::V2,
                _ => return None,
            };
            let options = f.nth(1).unwrap_or("");
            let point = pre.split_whitespace().nth(4)?;
            Some(Mount {
                version,
                point: PathBuf::from(point),
                options: options.to_string(),
            })
        })
        .collect()
}

impl CgroupFs {
    /// This machine's: `/sys/fs/cgroup` (version from its filesystem type) and the mounts of
    /// `/proc/self/mountinfo`, each looked at once per process.
    pub fn host() -> &'static CgroupFs {
        static HOST: OnceLock<CgroupFs> = OnceLock::new();
        HOST.get_or_init(|| {
            let root = PathBuf::from(CGROUP_ROOT);
            CgroupFs {
                version: detect(&root),
                root,
                mounts: OnceLock::new(),
            }
        })
    }

    /// `root` and `version` with the cgroup mounts of a mountinfo text.
    pub fn from_mountinfo(root: impl Into<PathBuf>, version: Version, mountinfo: &str) -> CgroupFs {
        CgroupFs::new(root, version, parse_mountinfo(mountinfo))
    }

    pub fn new(root: impl Into<PathBuf>, version: Version, mounts: Vec<Mount>) -> CgroupFs {
        CgroupFs {
            root: root.into(),
            version,
            mounts: OnceLock::from(mounts),
        }
    }

    /// The usual mount point: the v2 hierarchy, or the directory of the v1 hierarchies.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// A cgroup v2 (unified) host.
    pub fn is_v2(&self) -> bool {
        self.version == Version::V2
    }

    pub fn mounts(&self) -> &[Mount] {
        self.mounts.get_or_init(|| {
            parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
        })
    }

    /// Every cgroup (v1) and cgroup2 mount point.
    pub fn all_mounts(&self) -> Vec<PathBuf> {
        self.mounts().iter().map(|m| m.point.clone()).collect()
    }

    /// The mount point of a v1 controller's hierarchy.
    fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.mounts()
            .iter()
            .find(|m| m.carries(controller))
            .map(|m| m.point.as_path())
    }
}

/// A container's cgroup: `path` relative to each hierarchy's root (e.g. "ocishim/<id>").
#[derive(Debug, Clone)]
pub struct ContainerCgroup {
    pub path: String,
    pub version: Version,
    fs: Cow<'static, CgroupFs>,
}

fn read_u64(p: &Path) -> u64 {
    fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A "key value" line of a flat-keyed file (memory.events, cpu.stat, memory.oom_control).
fn keyed(p: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A new v1 cpuset starts empty: give each empty level of `path` under the cpuset
/// hierarchy `mount` its parent's cpuset.cpus, then cpuset.mems, top down.
fn copy_cpusets(mount: &Path, path: &str) {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let mut dir = mount.to_path_buf();
        for comp in path.split('/') {
            let parent = dir.clone();
            dir.push(comp);
            let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
            if cur.trim().is_empty() {
                let from = fs::read_to_string(parent.join(f)).unwrap_or_default();
                let _ = fs::write(dir.join(f), from.trim());
            }
        }
    }
}

/// Enable each controller in `dir`'s cgroup.subtree_control, one write each; like
/// cgroups-rs, a write the kernel refuses is ignored, and a missing file is not created.
fn enable_controllers(controllers: &[String], dir: &Path) {
    use std::io::Write as _;
    let f = dir.join("cgroup.subtree_control");
    for c in controllers {
        let _ = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&f)
            .and_then(|mut file| file.write_all(format!("+{c}").as_bytes()));
    }
}

impl ContainerCgroup {
    /// The host's cgroup at `cgroups_path` ("/parent/id"), without touching the filesystem.
    pub fn at(cgroups_path: &str) -> ContainerCgroup {
        ContainerCgroup::with(Cow::Borrowed(CgroupFs::host()), cgroups_path)
    }

    /// The cgroup at `cgroups_path` in a `fs` that lives as long as the process.
    pub fn in_fs(fs: &'static CgroupFs, cgroups_path: &str) -> ContainerCgroup {
        ContainerCgroup::with(Cow::Borrowed(fs), cgroups_path)
    }

    /// The cgroup at `cgroups_path` in `fs`.
    pub fn new(fs: &CgroupFs, cgroups_path: &str) -> ContainerCgroup {
        ContainerCgroup::with(Cow::Owned(fs.clone()), cgroups_path)
    }

    fn with(fs: Cow<'static, CgroupFs>, cgroups_path: &str) -> ContainerCgroup {
        ContainerCgroup {
            path: cgroups_path.trim_matches('/').to_string(),
            version: fs.version,
            fs,
        }
    }

    /// The directory of `controller`'s part of this cgroup.
    pub fn dir(&self, controller: &str) -> Option<PathBuf> {
        match self.version {
            Version::V2 => Some(self.fs.root.join(&self.path)),
            Version::V1 => self.fs.v1_mount(controller).map(|m| m.join(&self.path)),
        }
    }

    /// Whether the kernel accounts swap for this cgroup.
    pub fn swap_accounting(&self) -> bool {
        match self.version {
            Version::V1 => self
                .fs
                .v1_mount("memory")
                .map(|m| m.join("memory.memsw.limit_in_bytes").exists())
                .unwrap_or(false),
            Version::V2 => self
                .dir("memory")
                .map(|d| d.join("memory.swap.max").exists())
                .unwrap_or(false),
        }
    }

    /// Create the cgroup in every hierarchy (v2: enabling the controllers on the way).
    pub fn create(&self) -> Result<(), CgroupError> {
        let mkdir = |d: &Path| {
            fs::create_dir_all(d).map_err(|source| CgroupError::Create {
                path: self.path.clone(),
                source,
            })
        };
        match self.version {
            Version::V1 => {
                // A hierarchy of several controllers (cpu,cpuacct) is met once for each.
                for c in V1_CONTROLLERS {
                    let Some(m) = self.fs.v1_mount(c) else {
                        continue;
                    };
                    mkdir(&m.join(&self.path))?;
                    if c == "cpuset" {
                        copy_cpusets(m, &self.path);
                    }
                }
            }
            Version::V2 => {
                // The root's controllers, enabled in the root and each level above the
                // cgroup.
                let root = &self.fs.root;
                let controllers: Vec<String> = fs::read_to_string(root.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split(' ')
                    .map(|c| c.trim().to_string())
                    .collect();
                enable_controllers(&controllers, root);
                let mut dir = root.clone();
                let levels: Vec<&str> = self.path.split('/').collect();
                for (i, level) in levels.iter().enumerate() {
                    dir.push(level);
                    mkdir(&dir)?;
                    if i + 1 < levels.len() {
                        enable_controllers(&controllers, &dir);
                    }
                }
            }
        }
        Ok(())
    }

    /// Write each file and read it back: a refused or altered value is an error naming the
    /// file and the value.
    pub fn apply(&self, writes: &[Write]) -> Result<(), CgroupError> {
        let mut writes = writes.to_vec();
        // v1: memsw must stay >= memory at every step: raise memsw first when memory grows.
        if self.version == Version::V1 {
            if let (Some(mi), Some(si)) = (
                writes
                    .iter()
                    .position(|w| w.file == "memory.limit_in_bytes"),
                writes
                    .iter()
                    .position(|w| w.file == "memory.memsw.limit_in_bytes"),
            ) {
                let cur = self
                    .dir("memory")
                    .map(|d| read_u64(&d.join("memory.memsw.limit_in_bytes")))
                    .unwrap_or(0);
                let new_mem: i64 = writes[mi].value.parse().unwrap_or(0);
                if (new_mem as u64) > cur && si > mi {
                    let s = writes.remove(si);
                    writes.insert(mi, s);
                }
            }
        }
        for wr in &writes {
            let dir = self
                .dir(wr.controller)
                .ok_or_else(|| CgroupError::NoController(wr.controller.into()))?;
            let p = dir.join(wr.file);
            if !p.exists() {
                if wr.file.contains("swap") || wr.file.contains("memsw") {
                    return Err(CgroupError::NoSwapAccounting {
                        file: wr.file.into(),
                    });
                }
                return Err(CgroupError::NoController(wr.controller.into()));
            }
            fs::write(&p, &wr.value).map_err(|source| CgroupError::Refused {
                file: wr.file.into(),
                value: wr.value.clone(),
                source,
            })?;
            let got = fs::read_to_string(&p).unwrap_or_default();
            if !reads_back_as(wr.file, &wr.value, &got) {
                return Err(CgroupError::Mismatch {
                    file: wr.file.into(),
                    value: wr.value.clone(),
                    got: got.trim().to_string(),
                });
            }
            tracing::debug!(file = wr.file, value = %wr.value, "cgroup limit set");
        }
        Ok(())
    }

    /// Whether this cgroup was asked to freeze (v1 freezer.self_freezing, v2 cgroup.freeze):
    /// the truth about "paused", whoever paused it (runc pause, FREEZING included). A
    /// cgroup frozen only because an ancestor is, is not paused, as docker's Paused is the
    /// container's own. None when the file cannot be read (no such cgroup, no freezer).
    pub fn frozen(&self) -> Option<bool> {
        match self.version {
            Version::V1 => {
                // The usual mount point first: a freezer file there is the freezer's, and
                // finding it spares pause and resume a read of mountinfo.
                let mut buf = [0u8; 64];
                let mut read = |d: PathBuf| {
                    crate::sys::read_small(&d.join(FREEZER_V1), &mut buf).map(frozen_in)
                };
                read(self.fs.root.join("freezer").join(&self.path))
                    .or_else(|| self.dir("freezer").and_then(read))
            }
            Version::V2 => {
                let mut buf = [0u8; 16];
                let path = self.fs.root.join(&self.path).join(FREEZER_V2);
                crate::sys::read_small(&path, &mut buf).map(frozen_in)
            }
        }
    }

    /// How many times the kernel's OOM killer killed a task in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some(d) = self.dir("memory") else {
            return 0;
        };
        match self.version {
            Version::V1 => keyed(&d.join("memory.oom_control"), "oom_kill").unwrap_or(0),
            Version::V2 => keyed(&d.join("memory.events"), "oom_kill").unwrap_or(0),
        }
    }

    pub fn stats(&self) -> Stats {
        let mem = self.dir("memory");
        let pids = self.dir("pids");
        let mut s = Stats {
            oom_kills: self.oom_kills(),
            pids_current: pids.map(|d| read_u64(&d.join("pids.current"))).unwrap_or(0),
            ..Default::default()
        };
        match self.version {
            Version::V1 => {
                if let Some(d) = mem {
                    s.memory_usage = read_u64(&d.join("memory.usage_in_bytes"));
                    s.memory_limit = read_u64(&d.join("memory.limit_in_bytes"));
                    s.memory_max_usage = read_u64(&d.join("memory.max_usage_in_bytes"));
                }
                s.cpu_usage_ns = self
                    .dir("cpuacct")
                    .map(|d| read_u64(&d.join("cpuacct.usage")))
                    .unwrap_or(0);
            }
            Version::V2 => {
                if let Some(d) = mem {
                    s.memory_usage = read_u64(&d.join("memory.current"));
                    let max = fs::read_to_string(d.join("memory.max")).unwrap_or_default();
                    s.memory_limit = max.trim().parse().unwrap_or(u64::MAX);
                    s.memory_max_usage = read_u64(&d.join("memory.peak"));
                }
                s.cpu_usage_ns = self
                    .dir("cpu")
                    .and_then(|d| keyed(&d.join("cpu.stat"), "usage_usec"))
                    .unwrap_or(0)
                    * 1000;
            }
        }
        s
    }

    /// Every directory of this cgroup that exists, in every hierarchy.
    pub fn existing_dirs(&self) -> Vec<PathBuf> {
        self.dirs_of(&self.path)
            .into_iter()
            .filter(|p| p.exists())
            .collect()
    }

    /// `path`'s directory in every hierarchy (v2: the one).
    fn dirs_of(&self, path: &str) -> Vec<PathBuf> {
        match self.version {
            Version::V2 => vec![self.fs.root.join(path)],
            Version::V1 => self
                .fs
                .mounts()
                .iter()
                .map(|m| m.point.join(path))
                .collect(),
        }
    }

    /// Remove the cgroup from every hierarchy (missing is fine).
    pub fn remove(&self) -> Result<(), CgroupError> {
        // Every hierarchy, including those ocishim does not create in (the hybrid unified
        // mount, named ones) that the runtime may have joined; deepest first.
        for d in self.existing_dirs() {
            remove_tree(&d).map_err(|source| CgroupError::Remove {
                path: d.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }

    /// Remove the parent in every hierarchy if it is empty (another container keeps it).
    pub fn remove_parent_if_empty(&self) {
        let Some((parent, _)) = self.path.rsplit_once('/') else {
            return;
        };
        for d in self.dirs_of(parent) {
            let _ = fs::remove_dir(d);
        }
    }
}

/// The file that says whether a cgroup itself was asked to freeze (what `runc pause`
/// writes, whoever runs it), v1 and v2: `1` or `0`. On v1 not `freezer.state`, whose read
/// takes the freezer's one global mutex and walks the cgroup's descendants to settle
/// FREEZING against FROZEN: `ps` reads one per running container, from two threads.
const FREEZER_V1: &str = "freezer.self_freezing";
const FREEZER_V2: &str = "cgroup.freeze";

/// Whether a freezer file's content ([`FREEZER_V1`], [`FREEZER_V2`]) says frozen.
fn frozen_in(state: &[u8]) -> bool {
    state.trim_ascii() == b"1"
}

/// [`ContainerCgroup::frozen`] of many containers by one thread (`ps`): each parent
/// cgroup's directory is opened once, and a container's state file is then the last two
/// names below it (on kernfs, a name's lookup is most of an open's cost).
pub struct Freezers {
    fs: &'static CgroupFs,
    parents: Vec<(String, Option<std::os::fd::OwnedFd>)>,
    rel: String,
}

impl Freezers {
    pub fn new(fs: &'static CgroupFs) -> Freezers {
        Freezers {
            fs,
            parents: Vec::new(),
            rel: String::new(),
        }
    }

    /// Whether the cgroup at `cgroups_path` is frozen, as [`ContainerCgroup::frozen`]
    /// (which answers when the usual mount point does not).
    pub fn frozen(&mut self, cgroups_path: &str) -> Option<bool> {
        let path = cgroups_path.trim_matches('/');
        let (parent, leaf) = path.rsplit_once('/').unwrap_or(("", path));
        let v1 = self.fs.version == Version::V1;
        let i = match self.parents.iter().position(|(p, _)| p == parent) {
            Some(i) => i,
            None => {
                let base = if v1 {
                    self.fs.root.join("freezer")
                } else {
                    self.fs.root.clone()
                };
                let dir = rustix::fs::open(
                    base.join(parent),
                    rustix::fs::OFlags::PATH
                        | rustix::fs::OFlags::DIRECTORY
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .ok();
                self.parents.push((parent.to_string(), dir));
                self.parents.len() - 1
            }
        };
        self.rel.clear();
        self.rel.push_str(leaf);
        self.rel.push('/');
        self.rel.push_str(if v1 { FREEZER_V1 } else { FREEZER_V2 });
        let mut buf = [0u8; 64];
        let state = self.parents[i]
            .1
            .as_ref()
            .and_then(|d| crate::sys::read_small_at(d, self.rel.as_str(), &mut buf));
        match state {
            Some(s) => Some(frozen_in(s)),
            None => ContainerCgroup::in_fs(self.fs, cgroups_path).frozen(),
        }
    }
}

/// rmdir a cgroup directory and its child cgroups, deepest first, retrying briefly while
/// the kernel still counts exiting tasks.
fn remove_tree(d: &Path) -> io::Result<()> {
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut last = None;
    for _ in 0..50 {
        match fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(last.unwrap_or_else(|| io::Error::other("rmdir failed")))
}

/// Every cgroup (v1) and cgroup2 mount point of the host.
pub fn all_mounts() -> Vec<PathBuf> {
    CgroupFs::host().all_mounts()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tree_tests;
