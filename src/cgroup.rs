//! The container's cgroup, owned by ocishim: created (with cgroups-rs) under the parent
//! before the runtime's create, limits written and read back from the kernel, the OOM
//! counter and stats read from it, limits updated live, and removed on rm and on every
//! failed create. The runtime joins it through linux.cgroupsPath and re-applies the same
//! linux.resources from the spec (so the bundle stays self-describing).
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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{parse_cpuset, Resources};

/// The default mount point of the cgroup filesystem(s).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const PAGE: i64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {source}")]
    Create {
        path: String,
        source: cgroups_rs::fs::error::Error,
    },
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

/// A container's cgroup: `path` relative to each hierarchy's root (e.g. "ocishim/<id>").
#[derive(Debug, Clone)]
pub struct ContainerCgroup {
    pub path: String,
    pub version: Version,
    root: PathBuf,
}

/// (fstype, mount point, super options) of every cgroup and cgroup2 mount, read once.
fn cgroup_mount_table() -> &'static [(String, PathBuf, String)] {
    static TABLE: std::sync::OnceLock<Vec<(String, PathBuf, String)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let mut f = post.split_whitespace();
                let fstype = f.next()?;
                if fstype != "cgroup" && fstype != "cgroup2" {
                    return None;
                }
                let opts = f.nth(1).unwrap_or("");
                let mnt = pre.split_whitespace().nth(4)?;
                Some((fstype.to_string(), PathBuf::from(mnt), opts.to_string()))
            })
            .collect()
    })
}

/// The mount point of a v1 controller's hierarchy.
fn v1_mount(controller: &str) -> Option<PathBuf> {
    cgroup_mount_table()
        .iter()
        .find(|(t, _, opts)| t == "cgroup" && opts.split(',').any(|o| o == controller))
        .map(|(_, m, _)| m.clone())
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

impl ContainerCgroup {
    /// The cgroup at `cgroups_path` ("/parent/id"), without touching the filesystem.
    pub fn at(cgroups_path: &str) -> ContainerCgroup {
        let root = PathBuf::from(CGROUP_ROOT);
        ContainerCgroup {
            path: cgroups_path.trim_matches('/').to_string(),
            version: detect(&root),
            root,
        }
    }

    /// The directory of `controller`'s part of this cgroup.
    pub fn dir(&self, controller: &str) -> Option<PathBuf> {
        match self.version {
            Version::V2 => Some(self.root.join(&self.path)),
            Version::V1 => v1_mount(controller).map(|m| m.join(&self.path)),
        }
    }

    fn hierarchy(&self) -> Box<dyn cgroups_rs::fs::Hierarchy> {
        cgroups_rs::fs::hierarchies::auto()
    }

    /// Whether the kernel accounts swap for this cgroup.
    pub fn swap_accounting(&self) -> bool {
        match self.version {
            Version::V1 => v1_mount("memory")
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
        cgroups_rs::fs::Cgroup::new(self.hierarchy(), &self.path).map_err(|source| {
            CgroupError::Create {
                path: self.path.clone(),
                source,
            }
        })?;
        if self.version == Version::V1 {
            // A new v1 cpuset starts empty: give it (and any new parent) the parent's sets.
            if let Some(m) = v1_mount("cpuset") {
                let mut dir = m.clone();
                for comp in self.path.split('/') {
                    let parent = dir.clone();
                    dir = dir.join(comp);
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
                        if cur.trim().is_empty() {
                            let from = fs::read_to_string(parent.join(f)).unwrap_or_default();
                            let _ = fs::write(dir.join(f), from.trim());
                        }
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
                let state = read(self.root.join("freezer").join(&self.path))
                    .or_else(|| self.dir("freezer").and_then(read))?;
                Some(state.trim() != "THAWED")
            }
            Version::V2 => fs::read_to_string(self.root.join(&self.path).join("cgroup.freeze"))
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
        match self.version {
            Version::V2 => vec![self.root.join(&self.path)],
            Version::V1 => all_mounts()
                .into_iter()
                .map(|m| m.join(&self.path))
                .collect(),
        }
        .into_iter()
        .filter(|p| p.exists())
        .collect()
    }

    /// Remove the cgroup from every hierarchy (missing is fine).
    pub fn remove(&self) -> Result<(), CgroupError> {
        if self.existing_dirs().is_empty() {
            return Ok(());
        }
        let cg = cgroups_rs::fs::Cgroup::load(self.hierarchy(), &self.path);
        let _ = cg.delete();
        // cgroups-rs skips hierarchies it does not manage (name=systemd, the hybrid unified
        // mount) that the runtime may have joined: remove what is left, deepest first.
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
        let dirs: Vec<PathBuf> = match self.version {
            Version::V2 => vec![self.root.join(parent)],
            Version::V1 => all_mounts().into_iter().map(|m| m.join(parent)).collect(),
        };
        for d in dirs {
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

/// Every cgroup (v1) and cgroup2 mount point.
pub fn all_mounts() -> Vec<PathBuf> {
    cgroup_mount_table()
        .iter()
        .map(|(_, m, _)| m.clone())
        .collect()
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
