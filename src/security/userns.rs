//! `--userns auto`: each container gets a user namespace of its own whose 65536 uids and
//! gids (container ids 0..65535) map to a host range no other container of this host
//! holds. Ranges are carved from the `/etc/subuid` and `/etc/subgid` entries of the user
//! `ocishim` (the same base for uids and gids) and handed out as IPAM hands out addresses:
//! one table under `--root` (volatile state), changed under an exclusive flock and written
//! atomically. Owners are container IDs, each noted with the process that allocated its
//! range: an owner that has no record while that process is gone (a create killed before
//! its rollback ran) gives its range back at the next allocation.
//!
//! The user namespace itself (for idmapped mounts) is made by [`userns_fd`].

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::store::{write_atomic, Lock};

/// The ids every container gets: 0..65535 inside.
pub const RANGE: u32 = 65536;
/// The user whose subordinate ids ocishim hands out.
pub const USER: &str = "ocishim";
pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("--userns auto: {file} has no range of {RANGE} ids for user {USER} (scripts/setup adds one)")]
    NoRanges { file: String },
    #[error("--userns auto: all {total} ranges of {RANGE} ids of user {USER} ({subuid}, {subgid}) are in use")]
    Exhausted {
        total: usize,
        subuid: String,
        subgid: String,
    },
    #[error("--userns auto: {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("--userns auto: {path}: corrupt allocation file: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
    #[error("--userns auto: making a user namespace for the idmapped rootfs: {0}")]
    Namespace(std::io::Error),
}

impl UsernsError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UsernsError + '_ {
        move |source| UsernsError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// `/etc/subuid`-format entries (`NAME:START:COUNT`) of `user`, as (start, count); other
/// users' lines, comments and malformed lines are skipped.
pub fn parse_subids(text: &str, user: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (name, start, count) = (f.next()?, f.next()?, f.next()?);
            if name != user || f.next().is_some() {
                return None;
            }
            Some((start.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// The bases of the whole ranges of [`RANGE`] ids inside `entries`, lowest first.
fn blocks(entries: &[(u32, u32)]) -> Vec<u32> {
    let mut out: Vec<u32> = entries
        .iter()
        .flat_map(|&(start, count)| {
            let end = u64::from(start) + u64::from(count);
            (0..)
                .map(move |i| u64::from(start) + i * u64::from(RANGE))
                .take_while(move |b| b + u64::from(RANGE) <= end && *b <= u64::from(u32::MAX))
                .map(|b| b as u32)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether the range at `base` lies inside one of `entries`.
fn within(entries: &[(u32, u32)], base: u32) -> bool {
    entries.iter().any(|&(s, c)| {
        base >= s && u64::from(base) + u64::from(RANGE) <= u64::from(s) + u64::from(c)
    })
}

/// Who holds a range: the container, and the process that allocated it (its PID and start
/// time, so a reused PID is not taken for it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub owner: String,
    pub pid: i32,
    pub start_time: u64,
}

impl Holder {
    /// `owner`, allocated by this process.
    pub fn this_process(owner: &str) -> Holder {
        let pid = std::process::id() as i32;
        Holder {
            owner: owner.to_string(),
            pid,
            start_time: crate::store::process_start_time(pid).unwrap_or(0),
        }
    }
}

/// base → holder.
type Table = BTreeMap<u32, Holder>;

/// The allocator: its table's directory and the subordinate-id files it reads.
pub struct Ranges {
    dir: PathBuf,
    subuid: PathBuf,
    subgid: PathBuf,
}

impl Ranges {
    /// The allocator of a `--root`, reading the host's /etc/subuid and /etc/subgid.
    pub fn new(root: &Path) -> Self {
        Self::with_files(root.join("userns"), SUBUID, SUBGID)
    }

    pub fn with_files(
        dir: impl Into<PathBuf>,
        subuid: impl Into<PathBuf>,
        subgid: impl Into<PathBuf>,
    ) -> Self {
        Ranges {
            dir: dir.into(),
            subuid: subuid.into(),
            subgid: subgid.into(),
        }
    }

    fn table_path(&self) -> PathBuf {
        self.dir.join("ranges.json")
    }

    /// Lock the table, load it, let `f` change it, save it if changed.
    fn with_table<T>(
        &self,
        f: impl FnOnce(&mut Table) -> Result<(T, bool), UsernsError>,
    ) -> Result<T, UsernsError> {
        fs::create_dir_all(&self.dir).map_err(UsernsError::io(&self.dir))?;
        let lock_path = self.dir.join("ranges.lock");
        let _lock = Lock::acquire(&lock_path).map_err(UsernsError::io(&lock_path))?;
        let path = self.table_path();
        let mut table: Table = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| UsernsError::Corrupt {
                path: path.display().to_string(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::new(),
            Err(e) => return Err(UsernsError::io(&path)(e)),
        };
        let (out, changed) = f(&mut table)?;
        if changed {
            let data = serde_json::to_vec(&table).expect("table serializes");
            write_atomic(&path, &data).map_err(UsernsError::io(&path))?;
        }
        Ok(out)
    }

    fn read_entries(path: &Path) -> Result<Vec<(u32, u32)>, UsernsError> {
        match fs::read_to_string(path) {
            Ok(t) => Ok(parse_subids(&t, USER)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(UsernsError::io(path)(e)),
        }
    }

    /// A range for `holder`'s owner: the one it holds already, else `want` when that is
    /// free and still in both files, else the lowest free one whose ids are subordinate
    /// ids of [`USER`] in both files. Holders whose owner fails `has_record` and whose
    /// allocating process is gone lose their ranges first. Returns the base and whether
    /// it was newly allocated.
    pub fn allocate(
        &self,
        holder: Holder,
        want: Option<u32>,
        has_record: impl Fn(&str) -> bool,
    ) -> Result<(u32, bool), UsernsError> {
        let uids = Self::read_entries(&self.subuid)?;
        let gids = Self::read_entries(&self.subgid)?;
        for (entries, file) in [(&uids, &self.subuid), (&gids, &self.subgid)] {
            if blocks(entries).is_empty() {
                return Err(UsernsError::NoRanges {
                    file: file.display().to_string(),
                });
            }
        }
        let candidates: Vec<u32> = blocks(&uids)
            .into_iter()
            .filter(|b| within(&gids, *b))
            .collect();
        self.with_table(|t| {
            if let Some((base, _)) = t.iter().find(|(_, h)| h.owner == holder.owner) {
                return Ok(((*base, false), false));
            }
            // Stale owners go first (saved only with an allocation: nothing is lost when
            // none fits, the next call reclaims them again).
            t.retain(|_, h| {
                has_record(&h.owner) || crate::store::process_alive(h.pid, h.start_time)
            });
            // A range must not overlap a held one (the files may have changed since).
            let free = |b: u32| {
                t.keys().all(|h| {
                    u64::from(b) + u64::from(RANGE) <= u64::from(*h)
                        || u64::from(*h) + u64::from(RANGE) <= u64::from(b)
                })
            };
            let pick = want
                .filter(|w| candidates.contains(w) && free(*w))
                .or_else(|| candidates.iter().copied().find(|b| free(*b)));
            let Some(base) = pick else {
                return Err(UsernsError::Exhausted {
                    total: candidates.len(),
                    subuid: self.subuid.display().to_string(),
                    subgid: self.subgid.display().to_string(),
                });
            };
            t.insert(base, holder);
            Ok(((base, true), true))
        })
    }

    /// Give back `owner`'s range; nothing to give back is fine. Makes nothing when no
    /// table exists.
    pub fn release(&self, owner: &str) -> Result<(), UsernsError> {
        if !self.table_path().exists() {
            return Ok(());
        }
        self.with_table(|t| {
            let before = t.len();
            t.retain(|_, h| h.owner != owner);
            Ok(((), t.len() != before))
        })
    }

    /// The ranges held: (base, owner), lowest first.
    pub fn allocations(&self) -> Result<Vec<(u32, String)>, UsernsError> {
        if !self.table_path().exists() {
            return Ok(Vec::new());
        }
        self.with_table(|t| {
            let held = t.iter().map(|(b, h)| (*b, h.owner.clone())).collect();
            Ok((held, false))
        })
    }
}

/// The `/proc/PID/uid_map` (and gid_map) line of a container whose range starts at `base`.
pub fn map_line(base: u32) -> String {
    format!("0 {base} {RANGE}\n")
}

/// A user namespace mapping container ids 0..65535 to `base`.. (for idmapped mounts).
pub fn userns_fd(base: u32) -> Result<OwnedFd, UsernsError> {
    let line = map_line(base);
    crate::sys::new_userns(&line, &line).map_err(UsernsError::Namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files {
        _dir: tempfile::TempDir,
        ranges: Ranges,
        subuid: PathBuf,
    }

    fn h(owner: &str) -> Holder {
        Holder::this_process(owner)
    }

    fn files(subuid: &str, subgid: &str) -> Files {
        let d = tempfile::tempdir().unwrap();
        let (u, g) = (d.path().join("subuid"), d.path().join("subgid"));
        fs::write(&u, subuid).unwrap();
        fs::write(&g, subgid).unwrap();
        Files {
            ranges: Ranges::with_files(d.path().join("state"), &u, &g),
            subuid: u,
            _dir: d,
        }
    }

    #[test]
    fn parses_only_the_users_well_formed_lines() {
        let text = "# comment\nalice:100000:65536\nocishim:165536:131072\n\
                    ocishim:bad:1\nocishim:1:2:3\n  ocishim:500000:65536  \nocishim2:1:1\n\n";
        assert_eq!(
            parse_subids(text, "ocishim"),
            vec![(165536, 131072), (500000, 65536)]
        );
        assert!(parse_subids("", "ocishim").is_empty());
    }

    #[test]
    fn blocks_are_whole_ranges() {
        assert_eq!(
            blocks(&[(100000, 200000), (10, 65535)]),
            vec![100000, 165536, 231072]
        );
        assert!(blocks(&[(u32::MAX - 10, 100)]).is_empty());
        assert!(within(&[(100000, 65536)], 100000));
        assert!(!within(&[(100000, 65536)], 100001));
    }

    #[test]
    fn allocates_lowest_free_idempotently_and_releases() {
        let f = files(
            "ocishim:100000:196608\n",
            "ocishim:100000:65536\nocishim:165536:131072\n",
        );
        let live = |_: &str| true;
        assert_eq!(
            f.ranges.allocate(h("a"), None, live).unwrap(),
            (100000, true)
        );
        assert_eq!(
            f.ranges.allocate(h("b"), None, live).unwrap(),
            (165536, true)
        );
        assert_eq!(
            f.ranges.allocate(h("a"), None, live).unwrap(),
            (100000, false)
        );
        f.ranges.release("a").unwrap();
        f.ranges.release("nobody").unwrap();
        assert_eq!(
            f.ranges.allocations().unwrap(),
            vec![(165536, "b".to_string())]
        );
        // A wanted base is taken when free, else the lowest free one.
        assert_eq!(
            f.ranges.allocate(h("c"), Some(231072), live).unwrap(),
            (231072, true)
        );
        assert_eq!(
            f.ranges.allocate(h("d"), Some(231072), live).unwrap(),
            (100000, true)
        );
    }

    #[test]
    fn exhaustion_and_missing_entries_are_errors() {
        let f = files("ocishim:100000:65536\n", "ocishim:100000:65536\n");
        let dead = Holder {
            owner: "a".into(),
            pid: 0,
            start_time: 0,
        };
        f.ranges.allocate(dead, None, |_| true).unwrap();
        let e = f.ranges.allocate(h("b"), None, |_| true).unwrap_err();
        assert!(matches!(e, UsernsError::Exhausted { total: 1, .. }), "{e}");
        assert!(e.to_string().contains("are in use"));
        // An owner with no record whose allocating process is gone gives its range back;
        // one whose process lives keeps it.
        assert_eq!(
            f.ranges.allocate(h("b"), None, |o| o != "a").unwrap(),
            (100000, true)
        );
        let e = f.ranges.allocate(h("c"), None, |_| false).unwrap_err();
        assert!(matches!(e, UsernsError::Exhausted { .. }), "{e}");

        let f = files("alice:100000:65536\n", "ocishim:100000:65536\n");
        let e = f.ranges.allocate(h("a"), None, |_| true).unwrap_err();
        assert!(matches!(e, UsernsError::NoRanges { .. }), "{e}");
        assert!(e.to_string().contains(&f.subuid.display().to_string()));
        // Ranges only in subuid, not subgid: none usable.
        let f = files("ocishim:100000:65536\n", "ocishim:300000:65536\n");
        let e = f.ranges.allocate(h("a"), None, |_| true).unwrap_err();
        assert!(matches!(e, UsernsError::Exhausted { total: 0, .. }), "{e}");
        // No table yet: releasing makes nothing.
        let f = files("", "");
        f.ranges.release("a").unwrap();
        assert!(f.ranges.allocations().unwrap().is_empty());
    }
}
