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

use crate::config::{parse_cpuset, Resources};

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

/// One file to write in the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

fn w(controller: &'static str, file: &'static str, value: impl ToString) -> Write {
    Write {
        controller,
        file,
        value: value.to_string(),
    }
}

/// docker/runc's cpu.shares → cpu.weight conversion.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// The files to write for `r`, in a safe order. `swap` says whether the kernel accounts
/// swap; without it an explicit swap limit is an error and the implied one is dropped.
pub fn plan(r: &Resources, v: Version, swap: bool) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    let total = r.effective_swap();
    let swap_file = match v {
        Version::V1 => "memory.memsw.limit_in_bytes",
        Version::V2 => "memory.swap.max",
    };
    let explicit_swap = r.memory_swap > 0;
    if !swap && explicit_swap {
        return Err(CgroupError::NoSwapAccounting {
            file: swap_file.into(),
        });
    }
    match v {
        Version::V1 => {
            if r.memory > 0 {
                out.push(w("memory", "memory.limit_in_bytes", r.memory));
            }
            if swap {
                if let Some(t) = total {
                    out.push(w("memory", "memory.memsw.limit_in_bytes", t));
                }
            }
            if r.memory_reservation > 0 {
                out.push(w(
                    "memory",
                    "memory.soft_limit_in_bytes",
                    r.memory_reservation,
                ));
            }
            if r.cpu_shares > 0 {
                out.push(w("cpu", "cpu.shares", r.cpu_shares));
            }
            let (quota, period) = r.cfs();
            if let Some(p) = period {
                out.push(w("cpu", "cpu.cfs_period_us", p));
            }
            if let Some(q) = quota {
                out.push(w("cpu", "cpu.cfs_quota_us", q));
            }
        }
        Version::V2 => {
            if r.memory > 0 {
                out.push(w("memory", "memory.max", r.memory));
            }
            if swap {
                match total {
                    Some(-1) => out.push(w("memory", "memory.swap.max", "max")),
                    Some(t) if r.memory > 0 => {
                        out.push(w("memory", "memory.swap.max", (t - r.memory).max(0)))
                    }
                    _ => {}
                }
            }
            if r.memory_reservation > 0 {
                out.push(w("memory", "memory.low", r.memory_reservation));
            }
            if r.cpu_shares > 0 {
                out.push(w(
                    "cpu",
                    "cpu.weight",
                    shares_to_weight(r.cpu_shares as u64),
                ));
            }
            let (quota, period) = r.cfs();
            if quota.is_some() || period.is_some() {
                let q = match quota {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".into(),
                };
                out.push(w(
                    "cpu",
                    "cpu.max",
                    format!("{q} {}", period.unwrap_or(100_000)),
                ));
            }
        }
    }
    if !r.cpuset_cpus.is_empty() {
        out.push(w("cpuset", "cpuset.cpus", &r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        out.push(w("cpuset", "cpuset.mems", &r.cpuset_mems));
    }
    if let Some(p) = r.pids_limit {
        out.push(w(
            "pids",
            "pids.max",
            if p > 0 { p.to_string() } else { "max".into() },
        ));
    }
    Ok(out)
}

/// Whether what the kernel reads back is what was written (page rounding of byte values,
/// "max" for unlimited, cpuset list normalization, cpu.shares clamping).
pub fn reads_back_as(file: &str, written: &str, got: &str) -> bool {
    let got = got.trim();
    if got == written {
        return true;
    }
    match file {
        "cpuset.cpus" | "cpuset.mems" => parse_cpuset(written) == parse_cpuset(got),
        "cpu.shares" => {
            let w: u64 = written.parse().unwrap_or(0);
            got.parse::<u64>().ok() == Some(w.clamp(2, 262_144))
        }
        "cpu.cfs_quota_us" => written == "-1" && got == "-1",
        _ => {
            let unlimited = |s: &str| {
                s == "max"
                    || s == "-1"
                    || s.parse::<i64>()
                        .map(|n| n >= i64::MAX - PAGE)
                        .unwrap_or(false)
            };
            if unlimited(written) {
                return unlimited(got);
            }
            match (written.parse::<i64>(), got.parse::<i64>()) {
                (Ok(w), Ok(g)) => g == w / PAGE * PAGE,
                _ => false,
            }
        }
    }
}

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

    /// Whether the freezer holds this cgroup (v1 freezer.state FROZEN or FREEZING, v2
    /// cgroup.freeze 1): the truth about "paused", whoever paused it. None when the file
    /// cannot be read (no such cgroup, no freezer).
    pub fn frozen(&self) -> Option<bool> {
        match self.version {
            Version::V1 => {
                // The usual mount point first: a freezer.state there is the freezer's, and
                // finding it spares pause and resume a read of mountinfo.
                let read = |d: PathBuf| fs::read_to_string(d.join("freezer.state")).ok();
                let state = read(self.fs.root.join("freezer").join(&self.path))
                    .or_else(|| self.dir("freezer").and_then(read))?;
                Some(state.trim() != "THAWED")
            }
            Version::V2 => fs::read_to_string(self.fs.root.join(&self.path).join("cgroup.freeze"))
                .ok()
                .map(|s| s.trim() == "1"),
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
mod tests {
    use super::*;

    fn res(f: impl FnOnce(&mut Resources)) -> Resources {
        let mut r = Resources::default();
        f(&mut r);
        r
    }

    fn files(ws: &[Write]) -> Vec<(&str, &str)> {
        ws.iter().map(|w| (w.file, w.value.as_str())).collect()
    }

    #[test]
    fn v1_and_v2_translation_table() {
        let m = 256i64 << 20;
        let r = res(|r| {
            r.memory = m;
            r.memory_swap = 2 * m;
            r.memory_reservation = 128 << 20;
            r.cpu_shares = 512;
            r.nano_cpus = 500_000_000;
            r.cpuset_cpus = "0".into();
            r.pids_limit = Some(64);
        });
        assert_eq!(
            files(&plan(&r, Version::V1, true).unwrap()),
            vec![
                ("memory.limit_in_bytes", "268435456"),
                ("memory.memsw.limit_in_bytes", "536870912"),
                ("memory.soft_limit_in_bytes", "134217728"),
                ("cpu.shares", "512"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpuset.cpus", "0"),
                ("pids.max", "64"),
            ]
        );
        assert_eq!(
            files(&plan(&r, Version::V2, true).unwrap()),
            vec![
                ("memory.max", "268435456"),
                ("memory.swap.max", "268435456"),
                ("memory.low", "134217728"),
                ("cpu.weight", "20"),
                ("cpu.max", "50000 100000"),
                ("cpuset.cpus", "0"),
                ("pids.max", "64"),
            ]
        );
    }

    #[test]
    fn swap_rules() {
        let m = 64i64 << 20;
        // equal: no swap
        let r = res(|r| {
            r.memory = m;
            r.memory_swap = m;
        });
        assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("memory.swap.max", "0")));
        assert!(files(&plan(&r, Version::V1, true).unwrap())
            .contains(&("memory.memsw.limit_in_bytes", "67108864")));
        // -1: unlimited
        let r = res(|r| {
            r.memory = m;
            r.memory_swap = -1;
        });
        assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("memory.swap.max", "max")));
        assert!(files(&plan(&r, Version::V1, true).unwrap())
            .contains(&("memory.memsw.limit_in_bytes", "-1")));
        // --memory alone: 2x on v1, swap = memory on v2
        let r = res(|r| r.memory = m);
        assert!(files(&plan(&r, Version::V1, true).unwrap())
            .contains(&("memory.memsw.limit_in_bytes", "134217728")));
        assert!(
            files(&plan(&r, Version::V2, true).unwrap()).contains(&("memory.swap.max", "67108864"))
        );
        // no swap accounting: --memory alone works, an explicit swap limit is an error
        assert_eq!(
            files(&plan(&r, Version::V1, false).unwrap()),
            vec![("memory.limit_in_bytes", "67108864")]
        );
        let r = res(|r| {
            r.memory = m;
            r.memory_swap = 2 * m;
        });
        assert!(matches!(
            plan(&r, Version::V1, false),
            Err(CgroupError::NoSwapAccounting { .. })
        ));
        let r = res(|r| {
            r.memory = m;
            r.memory_swap = -1;
        });
        assert!(plan(&r, Version::V1, false).is_ok());
    }

    #[test]
    fn weights_and_cpu_max() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        let r = res(|r| {
            r.cpu_quota = 20_000;
            r.cpu_period = 50_000;
        });
        assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("cpu.max", "20000 50000")));
        let r = res(|r| r.cpu_period = 50_000);
        assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("cpu.max", "max 50000")));
        let r = res(|r| r.pids_limit = Some(-1));
        assert_eq!(
            files(&plan(&r, Version::V1, true).unwrap()),
            vec![("pids.max", "max")]
        );
    }

    #[test]
    fn read_back_normalization() {
        assert!(reads_back_as(
            "memory.limit_in_bytes",
            "268435456",
            "268435456\n"
        ));
        assert!(reads_back_as("memory.limit_in_bytes", "10000", "8192"));
        assert!(!reads_back_as(
            "memory.limit_in_bytes",
            "268435456",
            "9223372036854771712"
        ));
        assert!(reads_back_as(
            "memory.memsw.limit_in_bytes",
            "-1",
            "9223372036854771712"
        ));
        assert!(reads_back_as("memory.swap.max", "max", "max"));
        assert!(reads_back_as("cpuset.cpus", "0,1", "0-1"));
        assert!(!reads_back_as("cpuset.cpus", "0,1", "0"));
        assert!(reads_back_as("cpu.shares", "1", "2"));
        assert!(reads_back_as("cpu.max", "50000 100000", "50000 100000"));
        assert!(reads_back_as("pids.max", "max", "max"));
        assert!(!reads_back_as("pids.max", "64", "max"));
    }
}

/// The cgroup code on temp trees that imitate the kernel's: plain directories have no
/// control files, so a test writes the files the kernel would have made at mkdir.
#[cfg(test)]
mod tree_tests {
    use super::*;
    use tempfile::TempDir;

    const V1_HYBRID: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
37 31 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
39 31 0:36 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,cpuset
41 31 0:38 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,net_cls,net_prio
42 31 0:39 / /sys/fs/cgroup/misc rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,misc
60 22 0:50 / /run rw,nosuid,nodev shared:30 - tmpfs tmpfs rw,size=812304k,mode=755
";

    const V2_HOST: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
29 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn mkfile(p: &Path, text: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The v1 hybrid host's table, moved under `t`.
    fn v1_fs(t: &TempDir) -> CgroupFs {
        let root = t.path().to_str().unwrap();
        let text = V1_HYBRID.replace(" /sys/fs/cgroup/", &format!(" {root}/"));
        let fs = CgroupFs::from_mountinfo(root, Version::V1, &text);
        for m in fs.mounts() {
            fs::create_dir_all(&m.point).unwrap();
        }
        mkfile(&t.path().join("cpuset/cpuset.cpus"), "0-3\n");
        mkfile(&t.path().join("cpuset/cpuset.mems"), "0\n");
        fs
    }

    fn v2_fs(t: &TempDir) -> CgroupFs {
        let root = t.path();
        mkfile(
            &root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        );
        mkfile(&root.join("cgroup.subtree_control"), "");
        CgroupFs::new(
            root,
            Version::V2,
            vec![Mount {
                version: Version::V2,
                point: root.to_path_buf(),
                options: "rw".into(),
            }],
        )
    }

    /// Remove the regular files under each of `cg`'s directories (the kernel's control
    /// files go with the rmdir; a plain directory's do not).
    fn strip_files(cg: &ContainerCgroup, path: &str) {
        fn strip(d: &Path) {
            for e in fs::read_dir(d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    strip(&e.path());
                } else {
                    fs::remove_file(e.path()).unwrap();
                }
            }
        }
        for d in cg.dirs_of(path) {
            if d.is_dir() {
                strip(&d);
            }
        }
    }

    #[test]
    fn mountinfo_of_a_v1_hybrid_host() {
        let fs = CgroupFs::from_mountinfo(CGROUP_ROOT, Version::V1, V1_HYBRID);
        let points: Vec<_> = fs.all_mounts();
        let names: Vec<_> = points
            .iter()
            .map(|p| p.strip_prefix(CGROUP_ROOT).unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "unified",
                "systemd",
                "cpu,cpuacct",
                "memory",
                "pids",
                "freezer",
                "cpuset",
                "net_cls,net_prio",
                "misc"
            ]
        );
        assert_eq!(fs.mounts()[0].version, Version::V2);
        assert_eq!(fs.mounts()[1].options, "rw,xattr,name=systemd");
        let at = |c: &str| fs.v1_mount(c).map(|p| p.to_str().unwrap().to_string());
        assert_eq!(at("cpuacct").as_deref(), Some("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(at("cpu").as_deref(), Some("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            at("name=systemd").as_deref(),
            Some("/sys/fs/cgroup/systemd")
        );
        assert_eq!(at("blkio"), None);
        // The unified mount carries no v1 controller.
        assert_eq!(at("nsdelegate"), None);
        let cg = ContainerCgroup::new(&fs, "/ocishim/c1/");
        assert_eq!(cg.path, "ocishim/c1");
        assert_eq!(
            cg.dir("memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/ocishim/c1"))
        );
        assert_eq!(cg.dir("blkio"), None);
    }

    #[test]
    fn mountinfo_of_a_v2_host() {
        let fs = CgroupFs::from_mountinfo(CGROUP_ROOT, Version::V2, V2_HOST);
        assert_eq!(
            fs.mounts(),
            [Mount {
                version: Version::V2,
                point: PathBuf::from("/sys/fs/cgroup"),
                options: "rw,nsdelegate,memory_recursiveprot".into(),
            }]
        );
        assert_eq!(fs.v1_mount("memory"), None);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        assert_eq!(cg.version, Version::V2);
        for c in ["memory", "cpu", "freezer"] {
            assert_eq!(cg.dir(c), Some(PathBuf::from("/sys/fs/cgroup/ocishim/c1")));
        }
    }

    #[test]
    fn the_host_is_read_once() {
        let fs = CgroupFs::host();
        assert!(std::ptr::eq(fs, CgroupFs::host()));
        assert_eq!(fs.root(), Path::new(CGROUP_ROOT));
        assert_eq!(fs.version(), detect(Path::new(CGROUP_ROOT)));
        assert_eq!(all_mounts(), fs.all_mounts());
        let cg = ContainerCgroup::at("/ocishim/c1");
        assert_eq!(cg.path, "ocishim/c1");
        assert_eq!(cg.version, fs.version());
    }

    #[test]
    fn v1_create_makes_every_hierarchy_and_copies_cpusets() {
        let t = TempDir::new().unwrap();
        let fs = v1_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        cg.create().unwrap();
        for h in [
            "systemd",
            "cpu,cpuacct",
            "memory",
            "pids",
            "freezer",
            "cpuset",
            "net_cls,net_prio",
        ] {
            assert!(t.path().join(h).join("ocishim/c1").is_dir(), "{h}");
        }
        // Not a controller cgroups-rs knew, nor a v1 hierarchy.
        assert!(!t.path().join("misc/ocishim").exists());
        assert!(!t.path().join("unified/ocishim").exists());
        for level in ["ocishim", "ocishim/c1"] {
            let d = t.path().join("cpuset").join(level);
            assert_eq!(read(&d.join("cpuset.cpus")), "0-3");
            assert_eq!(read(&d.join("cpuset.mems")), "0");
        }
        assert_eq!(cg.existing_dirs().len(), 7);
        // A parent's own sets are kept and passed on; a set already there is kept.
        fs::write(t.path().join("cpuset/ocishim/cpuset.cpus"), "1\n").unwrap();
        mkfile(&t.path().join("cpuset/ocishim/c2/cpuset.mems"), "0\n");
        ContainerCgroup::new(&fs, "ocishim/c2").create().unwrap();
        let c2 = t.path().join("cpuset/ocishim/c2");
        assert_eq!(read(&c2.join("cpuset.cpus")), "1");
        assert_eq!(read(&c2.join("cpuset.mems")), "0\n");
    }

    #[test]
    fn v1_create_fails_with_the_path() {
        let t = TempDir::new().unwrap();
        let fs = v1_fs(&t);
        // A file where the parent's directory should be.
        mkfile(&t.path().join("memory/ocishim"), "");
        let err = ContainerCgroup::new(&fs, "ocishim/c1")
            .create()
            .unwrap_err();
        assert!(matches!(&err, CgroupError::Create { path, .. } if path == "ocishim/c1"));
        assert!(err
            .to_string()
            .starts_with("cgroup ocishim/c1: fs error caused by: "));
    }

    #[test]
    fn v2_create_enables_controllers_above_the_cgroup() {
        let t = TempDir::new().unwrap();
        let fs = v2_fs(&t);
        let root = t.path();
        // Made as the kernel would, except b's subtree_control.
        mkfile(&root.join("a/cgroup.subtree_control"), "");
        mkfile(&root.join("a/b/c/cgroup.subtree_control"), "");
        ContainerCgroup::new(&fs, "a/b/c").create().unwrap();
        assert!(root.join("a/b/c").is_dir());
        // One write per controller; a plain file keeps the last.
        assert_eq!(read(&root.join("cgroup.subtree_control")), "+pids");
        assert_eq!(read(&root.join("a/cgroup.subtree_control")), "+pids");
        // A missing file is not made, and the cgroup's own is not written.
        assert!(!root.join("a/b/cgroup.subtree_control").exists());
        assert_eq!(read(&root.join("a/b/c/cgroup.subtree_control")), "");
    }

    #[test]
    fn apply_writes_and_reads_back() {
        let m = 64i64 << 20;
        let r = Resources {
            memory: m,
            memory_swap: 2 * m,
            cpu_shares: 512,
            nano_cpus: 500_000_000,
            cpuset_cpus: "0".into(),
            pids_limit: Some(64),
            ..Default::default()
        };
        // v1: the files in the hierarchy of their controller.
        let t = TempDir::new().unwrap();
        let fs = v1_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        cg.create().unwrap();
        mkfile(&t.path().join("memory/memory.memsw.limit_in_bytes"), "");
        assert!(cg.swap_accounting());
        let writes = plan(&r, cg.version, cg.swap_accounting()).unwrap();
        for wr in &writes {
            mkfile(&cg.dir(wr.controller).unwrap().join(wr.file), "");
        }
        cg.apply(&writes).unwrap();
        let at = |h: &str, f: &str| read(&t.path().join(h).join("ocishim/c1").join(f));
        assert_eq!(at("memory", "memory.limit_in_bytes"), m.to_string());
        assert_eq!(
            at("memory", "memory.memsw.limit_in_bytes"),
            (2 * m).to_string()
        );
        assert_eq!(at("cpu,cpuacct", "cpu.shares"), "512");
        assert_eq!(at("cpu,cpuacct", "cpu.cfs_quota_us"), "50000");
        assert_eq!(at("cpuset", "cpuset.cpus"), "0");
        assert_eq!(at("pids", "pids.max"), "64");
        // v2: all in the one directory.
        let t = TempDir::new().unwrap();
        let fs = v2_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        cg.create().unwrap();
        let d = t.path().join("ocishim/c1");
        mkfile(&d.join("memory.swap.max"), "");
        assert!(cg.swap_accounting());
        let writes = plan(&r, cg.version, true).unwrap();
        for wr in &writes {
            mkfile(&d.join(wr.file), "");
        }
        cg.apply(&writes).unwrap();
        assert_eq!(read(&d.join("memory.max")), m.to_string());
        assert_eq!(read(&d.join("memory.swap.max")), m.to_string());
        assert_eq!(read(&d.join("cpu.weight")), "20");
        assert_eq!(read(&d.join("cpu.max")), "50000 100000");
        assert_eq!(read(&d.join("pids.max")), "64");
    }

    #[test]
    fn apply_errors() {
        let t = TempDir::new().unwrap();
        let fs = v1_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        cg.create().unwrap();
        assert!(!cg.swap_accounting());
        let mem = t.path().join("memory/ocishim/c1");
        // No such file: the controller, or swap accounting, is missing.
        let one = |file: &'static str, value: &str| {
            let controller = file.split('.').next().unwrap();
            cg.apply(&[w(controller, file, value)])
        };
        assert!(matches!(
            one("pids.max", "64"),
            Err(CgroupError::NoController(c)) if c == "pids"
        ));
        assert!(matches!(
            one("memory.memsw.limit_in_bytes", "1"),
            Err(CgroupError::NoSwapAccounting { file }) if file == "memory.memsw.limit_in_bytes"
        ));
        // No hierarchy for the controller.
        assert!(matches!(
            cg.apply(&[w("blkio", "blkio.weight", 10)]),
            Err(CgroupError::NoController(c)) if c == "blkio"
        ));
        // Reads back something else (here nothing).
        std::os::unix::fs::symlink("/dev/null", mem.join("memory.limit_in_bytes")).unwrap();
        assert!(matches!(
            one("memory.limit_in_bytes", "4096"),
            Err(CgroupError::Mismatch { file, value, got })
                if file == "memory.limit_in_bytes" && value == "4096" && got.is_empty()
        ));
        // A write refused.
        fs::create_dir(mem.join("memory.soft_limit_in_bytes")).unwrap();
        assert!(matches!(
            one("memory.soft_limit_in_bytes", "4096"),
            Err(CgroupError::Refused { file, .. }) if file == "memory.soft_limit_in_bytes"
        ));
    }

    #[test]
    fn frozen_reads_the_freezer() {
        let t = TempDir::new().unwrap();
        let fs = v1_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        assert_eq!(cg.frozen(), None);
        cg.create().unwrap();
        let state = t.path().join("freezer/ocishim/c1/freezer.state");
        for (text, frozen) in [
            ("FROZEN\n", true),
            ("FREEZING\n", true),
            ("THAWED\n", false),
        ] {
            fs::write(&state, text).unwrap();
            assert_eq!(cg.frozen(), Some(frozen), "{text}");
        }
        // The freezer mounted elsewhere: found through the table.
        let elsewhere = t.path().join("elsewhere");
        let fs = CgroupFs::new(
            t.path(),
            Version::V1,
            vec![Mount {
                version: Version::V1,
                point: elsewhere.clone(),
                options: "rw,freezer".into(),
            }],
        );
        mkfile(&elsewhere.join("ocishim/c2/freezer.state"), "FROZEN\n");
        assert_eq!(ContainerCgroup::new(&fs, "ocishim/c2").frozen(), Some(true));
        // v2: cgroup.freeze.
        let t = TempDir::new().unwrap();
        let fs = v2_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        assert_eq!(cg.frozen(), None);
        cg.create().unwrap();
        let freeze = t.path().join("ocishim/c1/cgroup.freeze");
        for (text, frozen) in [("1\n", true), ("0\n", false)] {
            fs::write(&freeze, text).unwrap();
            assert_eq!(cg.frozen(), Some(frozen), "{text}");
        }
    }

    #[test]
    fn oom_kills_and_stats() {
        let t = TempDir::new().unwrap();
        let fs = v1_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        assert_eq!(cg.oom_kills(), 0);
        assert_eq!(cg.stats(), Stats::default());
        cg.create().unwrap();
        let at = |h: &str| t.path().join(h).join("ocishim/c1");
        mkfile(
            &at("memory").join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        );
        mkfile(&at("memory").join("memory.usage_in_bytes"), "1000\n");
        mkfile(&at("memory").join("memory.limit_in_bytes"), "4096\n");
        mkfile(&at("memory").join("memory.max_usage_in_bytes"), "2000\n");
        mkfile(&at("cpu,cpuacct").join("cpuacct.usage"), "123456789\n");
        mkfile(&at("pids").join("pids.current"), "7\n");
        assert_eq!(cg.oom_kills(), 3);
        assert_eq!(
            cg.stats(),
            Stats {
                memory_usage: 1000,
                memory_limit: 4096,
                memory_max_usage: 2000,
                cpu_usage_ns: 123_456_789,
                pids_current: 7,
                oom_kills: 3,
            }
        );
        let t = TempDir::new().unwrap();
        let fs = v2_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        cg.create().unwrap();
        let d = t.path().join("ocishim/c1");
        mkfile(
            &d.join("memory.events"),
            "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n",
        );
        mkfile(&d.join("memory.current"), "1000\n");
        mkfile(&d.join("memory.max"), "max\n");
        mkfile(&d.join("memory.peak"), "2000\n");
        mkfile(
            &d.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        );
        mkfile(&d.join("pids.current"), "4\n");
        assert_eq!(cg.oom_kills(), 2);
        assert_eq!(
            cg.stats(),
            Stats {
                memory_usage: 1000,
                memory_limit: u64::MAX,
                memory_max_usage: 2000,
                cpu_usage_ns: 1_500_000,
                pids_current: 4,
                oom_kills: 2,
            }
        );
    }

    #[test]
    fn remove_takes_every_hierarchy() {
        let t = TempDir::new().unwrap();
        let fs = v1_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        cg.create().unwrap();
        // Also in hierarchies ocishim does not create in, with a child cgroup.
        fs::create_dir_all(t.path().join("unified/ocishim/c1/sub")).unwrap();
        fs::create_dir_all(t.path().join("misc/ocishim/c1")).unwrap();
        fs::create_dir_all(t.path().join("memory/ocishim/c1/sub/subsub")).unwrap();
        strip_files(&cg, "ocishim/c1");
        assert_eq!(cg.existing_dirs().len(), 9);
        cg.remove().unwrap();
        assert!(cg.existing_dirs().is_empty());
        assert!(t.path().join("memory/ocishim").is_dir());
        // Missing is fine.
        cg.remove().unwrap();
        // v2.
        let t = TempDir::new().unwrap();
        let fs = v2_fs(&t);
        let cg = ContainerCgroup::new(&fs, "ocishim/c1");
        cg.create().unwrap();
        fs::create_dir_all(t.path().join("ocishim/c1/sub")).unwrap();
        cg.remove().unwrap();
        assert!(!t.path().join("ocishim/c1").exists());
        assert!(t.path().join("ocishim").is_dir());
        cg.remove().unwrap();
    }

    #[test]
    fn remove_parent_if_empty_keeps_a_parent_with_another_child() {
        let t = TempDir::new().unwrap();
        let fs = v1_fs(&t);
        let c1 = ContainerCgroup::new(&fs, "ocishim/c1");
        let c2 = ContainerCgroup::new(&fs, "ocishim/c2");
        c1.create().unwrap();
        c2.create().unwrap();
        strip_files(&c1, "ocishim");
        c1.remove().unwrap();
        c1.remove_parent_if_empty();
        assert_eq!(
            c1.dirs_of("ocishim").iter().filter(|d| d.is_dir()).count(),
            7
        );
        c2.remove().unwrap();
        c2.remove_parent_if_empty();
        assert!(c2.dirs_of("ocishim").iter().all(|d| !d.exists()));
        // No parent: nothing to do.
        ContainerCgroup::new(&fs, "c3").remove_parent_if_empty();
        assert!(t.path().join("memory").is_dir());
    }
}
