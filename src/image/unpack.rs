//! One image layer (an uncompressed tar stream) extracted into a directory, safely, with
//! OCI whiteouts turned into overlayfs whiteouts.
//!
//! `dest` is opened once; every entry's parent is resolved under it with `openat2` and
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` (symlinks in the layer, absolute or with `..`,
//! resolve inside `dest`), and the final component is created, replaced or changed relative
//! to that parent without following symlinks. Rules:
//! - names: `./` and `.` components are dropped; an absolute name or a `..` component fails
//!   the layer; the empty name (`./`) is `dest` itself: a directory entry there sets
//!   `dest`'s owner, mode, xattrs and mtime, any other type fails;
//! - missing parents are created 0755 (root-owned); a later entry replaces an earlier one of
//!   the same name (a directory is kept and updated when the new entry is a directory,
//!   otherwise removed with its content);
//! - regular files: `O_CREAT|O_EXCL|O_NOFOLLOW` with the recorded mode, exactly the
//!   header's size (PAX size first; fewer bytes fail), then owner and mode (setuid/setgid/
//!   sticky kept) unless creation made them so already, xattrs, mtime; a run of files in one
//!   directory resolves it once (any other kind of entry resolves anew);
//! - directories: owner, mode and xattrs at their entry, mtimes after the last entry;
//! - symlinks: the target as recorded, owner and mtime of the link itself;
//! - hardlinks: the target (`/` and `./` prefixes dropped, `..` refused) must already
//!   exist under `dest` and not be a directory; the link is made to the target itself (a
//!   symlink stays a symlink); the header's metadata is not applied (the inode is shared);
//! - char/block devices and fifos: `mknodat` with the recorded numbers, owner, mode, mtime;
//! - `.wh.NAME`: NAME is removed and made a char device 0/0; `.wh..wh..opq`: the directory
//!   gets `trusted.overlay.opaque=y`; other `.wh..wh.*` names are skipped; `.wh.`, `.wh..`
//!   and `.wh...` fail;
//! - xattrs (PAX `SCHILY.xattr.*`): `user.*` and `security.*` are applied to regular files
//!   and directories (a filesystem without xattr support skips them), all others
//!   (`trusted.*`, `system.*`) and those of other types are dropped;
//! - PAX `uid`, `gid` and `mtime` override the ustar fields;
//! - other entry types (PAX global headers, unknown types) are skipped; any parse error of
//!   the stream fails the layer.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

/// What one layer held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries read (PAX and GNU long-name headers not counted).
    pub entries: u64,
    /// Content bytes written to regular files.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer destination {}: {source}", path.display())]
    Dest { path: PathBuf, source: io::Error },
    #[error("layer archive after entry {after:?}: {source}")]
    Archive { after: String, source: io::Error },
    #[error("layer entry {path:?}: {reason}")]
    Refused { path: String, reason: &'static str },
    #[error("layer entry {path:?}: hardlink to {target:?}: {reason}")]
    Link {
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("layer entry {path:?}: {got} of {size} content bytes, the archive is truncated")]
    Truncated { path: String, size: u64, got: u64 },
    #[error("layer entry {path:?}: PAX record {key}: bad value {value:?}")]
    Pax {
        path: String,
        key: &'static str,
        value: String,
    },
    #[error("layer entry {path:?}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
}

/// Extracts the tar stream `layer` into the existing directory `dest`. On error, `dest`
/// may hold part of the layer (nothing is ever written outside it).
pub fn unpack(layer: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let root = rfs::open(dest, dir_flags, Mode::empty()).map_err(|e| UnpackError::Dest {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut u = Unpacker {
        root,
        stats: UnpackStats::default(),
        dir_times: Vec::new(),
        cached: None,
        creator: Creator::detect(),
        buf: vec![0; 256 << 10],
    };
    let mut archive = tar::Archive::new(layer);
    let mut last = String::new();
    let archive_err = |after: &str, source| UnpackError::Archive {
        after: after.to_string(),
        source,
    };
    for entry in archive.entries().map_err(|e| archive_err(&last, e))? {
        let mut entry = entry.map_err(|e| archive_err(&last, e))?;
        last = lossy(&entry.path_bytes());
        u.entry(&mut entry, &last)?;
        u.stats.entries += 1;
    }
    u.finish()?;
    Ok(u.stats)
}

/// A name's components: `.` and empty ones dropped, `..` and absolute names refused.
fn components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if name.starts_with(b"/") {
        return Err("absolute name");
    }
    relative_components(name)
}

/// A hardlink target's components: absolute targets are relative to the layer's root.
fn link_components(target: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let c = relative_components(target)?;
    if c.is_empty() {
        return Err("the layer's root");
    }
    Ok(c)
}

fn relative_components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("a `..` component"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// What a final name component means to overlayfs.
#[derive(Debug, PartialEq, Eq)]
enum Whiteout<'a> {
    /// An ordinary name.
    None,
    /// `.wh..wh..opq`: the directory hides lower layers' content.
    Opaque,
    /// Another `.wh..wh.` name (aufs metadata): skipped.
    Meta,
    /// `.wh.NAME`: NAME is deleted.
    Delete(&'a [u8]),
}

fn whiteout(name: &[u8]) -> Result<Whiteout<'_>, &'static str> {
    if name == b".wh..wh..opq" {
        return Ok(Whiteout::Opaque);
    }
    if name.starts_with(b".wh..wh.") {
        return Ok(Whiteout::Meta);
    }
    let Some(target) = name.strip_prefix(b".wh.") else {
        return Ok(Whiteout::None);
    };
    match target {
        b"" | b"." | b".." => Err("whiteout of an empty, `.` or `..` name"),
        t if t.contains(&b'/') => Err("whiteout name with a `/`"),
        t => Ok(Whiteout::Delete(t)),
    }
}

/// Whether an xattr from the layer is applied: `user.*` and `security.*` only (never
/// `trusted.*`, which overlayfs reads as its own metadata).
fn keep_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.") || name.starts_with(b"security.")
}

/// A PAX time (`SECONDS[.FRACTION]`, possibly negative).
fn pax_time(v: &[u8]) -> Option<Timespec> {
    let v = std::str::from_utf8(v).ok()?;
    let (neg, v) = match v.strip_prefix('-') {
        Some(v) => (true, v),
        None => (false, v),
    };
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    Some(if neg && nanos > 0 {
        Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nanos,
        }
    } else {
        Timespec {
            tv_sec: if neg { -secs } else { secs },
            tv_nsec: nanos,
        }
    })
}

/// An entry's failed system call as an error: `map_err(errno(path, "chown"))`.
fn errno<'a>(path: &'a str, op: &'static str) -> impl Fn(Errno) -> UnpackError + 'a {
    move |e: Errno| UnpackError::Io {
        path: path.to_string(),
        op,
        source: e.into(),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    if comps.is_empty() {
        return b".".to_vec();
    }
    comps.join(&b'/')
}

/// An entry's recorded metadata.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(e: &mut tar::Entry<R>, path: &str) -> Result<Meta, UnpackError> {
        let io_err = |source| UnpackError::Io {
            path: path.to_string(),
            op: "reading the header",
            source,
        };
        let h = e.header();
        let id = |v: u64| u32::try_from(v).map_err(|_| io::Error::other("id over 32 bits"));
        let mut m = Meta {
            uid: h.uid().and_then(id).map_err(io_err)?,
            gid: h.gid().and_then(id).map_err(io_err)?,
            mode: h.mode().map_err(io_err)? & 0o7777,
            mtime: Timespec {
                tv_sec: i64::try_from(h.mtime().map_err(io_err)?).unwrap_or(i64::MAX),
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        let Some(pax) = e.pax_extensions().map_err(io_err)? else {
            return Ok(m);
        };
        for ext in pax {
            let ext = ext.map_err(io_err)?;
            let (k, v) = (ext.key_bytes(), ext.value_bytes());
            let bad = |key| UnpackError::Pax {
                path: path.to_string(),
                key,
                value: lossy(v),
            };
            let num = |key| {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    .ok_or_else(|| bad(key))
            };
            match k {
                b"uid" => m.uid = num("uid")?,
                b"gid" => m.gid = num("gid")?,
                b"mtime" => m.mtime = pax_time(v).ok_or_else(|| bad("mtime"))?,
                _ => {
                    if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                        if keep_xattr(name) {
                            m.xattrs.push((name.to_vec(), v.to_vec()));
                        } else {
                            tracing::debug!(entry = path, xattr = %lossy(name), "xattr dropped");
                        }
                    }
                }
            }
        }
        Ok(m)
    }

    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

struct Unpacker {
    root: OwnedFd,
    stats: UnpackStats,
    /// Directories (paths under the root) and their mtimes, set after the last entry.
    dir_times: Vec<(Vec<u8>, Timestamps)>,
    /// The parent of the last regular file made: a run of files in one directory resolves
    /// it once. Dropped by every entry that is not a fresh regular file (only those leave
    /// the tree's directories as they were).
    cached: Option<Parent>,
    /// Who owns a new file, and which mode bits the umask takes off.
    creator: Creator,
    /// The copy buffer for file content (larger than io::copy's: fewer writes).
    buf: Vec<u8>,
}

/// `io::copy` through `buf`.
fn copy_with(buf: &mut [u8], r: &mut impl Read, w: &mut impl io::Write) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        let got = match r.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..got])?;
        n += got as u64;
    }
}

/// A resolved parent directory.
struct Parent {
    comps: Vec<u8>,
    fd: OwnedFd,
    /// The directory's gid when it is setgid (new files get it).
    setgid_gid: Option<u32>,
}

/// This process's ids and umask: a new file is owned by (euid, egid, or the parent's gid
/// when setgid) with mode & !umask; a file that comes out right needs no chown or chmod.
#[derive(Clone, Copy)]
struct Creator {
    uid: u32,
    gid: u32,
    umask: u32,
}

impl Creator {
    fn detect() -> Creator {
        // /proc/self/status has the umask without changing it (umask(2) would, for every
        // thread of the process).
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o777);
        Creator {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            umask,
        }
    }
}

/// `openat2` under `root` with `RESOLVE_IN_ROOT`, retried when the kernel asks to.
fn in_root(root: BorrowedFd, path: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let mut tries = 0;
    loop {
        match rfs::openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

const PARENT: OFlags = OFlags::PATH.union(OFlags::DIRECTORY);
const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Removes `name` in `dir` (a directory with all its content), not following symlinks.
fn remove_all(dir: BorrowedFd, name: &[u8]) -> rustix::io::Result<()> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(()),
        r => r?,
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return rfs::unlinkat(dir, name, AtFlags::empty());
    }
    let fd = rfs::openat(dir, name, DIR, Mode::empty())?;
    let mut names = Vec::new();
    for e in rfs::Dir::read_from(&fd)? {
        let n = e?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    for n in names {
        remove_all(fd.as_fd(), &n)?;
    }
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// Makes room for a new `name` in `dir`; a directory is kept when `keep_dir` (then
/// returns true).
fn clear(dir: BorrowedFd, name: &[u8], keep_dir: bool) -> rustix::io::Result<bool> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            if keep_dir {
                return Ok(true);
            }
            remove_all(dir, name)?;
            Ok(false)
        }
        Ok(_) => rfs::unlinkat(dir, name, AtFlags::empty()).map(|()| false),
    }
}

impl Unpacker {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<R>, path: &str) -> Result<(), UnpackError> {
        let refused = |reason| UnpackError::Refused {
            path: path.to_string(),
            reason,
        };
        let io_err = |op| errno(path, op);
        let raw = e.path_bytes().into_owned();
        let comps = components(&raw).map_err(refused)?;
        let kind = e.header().entry_type();
        let meta = Meta::read(e, path)?;
        let Some((&name, parents)) = comps.split_last() else {
            if kind != EntryType::Directory {
                return Err(refused("the layer's root is not a directory"));
            }
            let root = self.root.try_clone().map_err(|err| UnpackError::Io {
                path: path.to_string(),
                op: "duplicating the root",
                source: err,
            })?;
            self.apply(root.as_fd(), &meta, path)?;
            self.dir_times.push((b".".to_vec(), meta.times()));
            return Ok(());
        };
        let wh = whiteout(name).map_err(refused)?;
        if !matches!(wh, Whiteout::None) {
            self.cached = None;
        }
        match wh {
            Whiteout::None => {}
            Whiteout::Meta => {
                tracing::debug!(entry = path, "aufs metadata skipped");
                return Ok(());
            }
            Whiteout::Opaque => {
                let dir = self.parent(parents, path)?;
                let dir = rfs::openat(&dir, ".", DIR, Mode::empty())
                    .map_err(io_err("opening the directory"))?;
                let (k, v) = ("trusted.overlay.opaque", b"y");
                return rfs::fsetxattr(&dir, k, v, XattrFlags::empty())
                    .map_err(io_err("setting trusted.overlay.opaque"));
            }
            Whiteout::Delete(target) => {
                let dir = self.parent(parents, path)?;
                clear(dir.as_fd(), target, false)
                    .map_err(io_err("removing the whited-out name"))?;
                let dev = rfs::makedev(0, 0);
                rfs::mknodat(&dir, target, FileType::CharacterDevice, Mode::empty(), dev)
                    .map_err(io_err("making the whiteout device"))?;
                let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
                return rfs::chownat(&dir, target, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("chown of the whiteout"));
            }
        }
        if matches!(
            kind,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
        ) {
            return self.regular(e, parents, name, &meta, path);
        }
        self.cached = None;
        let dir = self.parent(parents, path)?;
        let dir = dir.as_fd();
        let owner = || {
            let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
            rfs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW).map_err(io_err("chown"))
        };
        let times = || {
            rfs::utimensat(dir, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io_err("setting the times"))
        };
        match kind {
            EntryType::Directory => {
                if !clear(dir, name, true).map_err(io_err("replacing"))? {
                    rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(io_err("mkdir"))?;
                }
                let fd = rfs::openat(dir, name, DIR, Mode::empty())
                    .map_err(io_err("opening the directory"))?;
                self.apply(fd.as_fd(), &meta, path)?;
                self.dir_times.push((join(&comps), meta.times()));
            }
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or(refused("symlink without a target"))?;
                clear(dir, name, false).map_err(io_err("replacing"))?;
                rfs::symlinkat(&*target, dir, name).map_err(io_err("symlink"))?;
                owner()?;
                times()?;
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or(refused("hardlink without a target"))?;
                self.hardlink(dir, name, &target, path)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ft, dev) = match kind {
                    EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let h = e.header();
                        let num = |r: io::Result<Option<u32>>| {
                            r.map(|n| n.unwrap_or(0)).map_err(|source| UnpackError::Io {
                                path: path.to_string(),
                                op: "reading the device numbers",
                                source,
                            })
                        };
                        let (major, minor) = (num(h.device_major())?, num(h.device_minor())?);
                        let ft = match kind {
                            EntryType::Char => FileType::CharacterDevice,
                            _ => FileType::BlockDevice,
                        };
                        (ft, rfs::makedev(major, minor))
                    }
                };
                clear(dir, name, false).map_err(io_err("replacing"))?;
                rfs::mknodat(dir, name, ft, Mode::from_raw_mode(meta.mode), dev)
                    .map_err(io_err("mknod"))?;
                owner()?;
                // The node was just made by this call (not a symlink): mknod's mode went
                // through the umask, so it is set again.
                rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                    .map_err(io_err("chmod"))?;
                times()?;
            }
            other => {
                tracing::debug!(entry = path, kind = ?other, "tar entry type skipped");
            }
        }
        Ok(())
    }

    /// A regular file: made `O_CREAT|O_EXCL|O_NOFOLLOW` with its mode (a name already there
    /// is removed first), its content, then owner and mode only when creation did not get
    /// them right already, xattrs, mtime.
    fn regular<R: Read>(
        &mut self,
        e: &mut tar::Entry<R>,
        parents: &[&[u8]],
        name: &[u8],
        meta: &Meta,
        path: &str,
    ) -> Result<(), UnpackError> {
        let io_err = |op| errno(path, op);
        let comps = join(parents);
        let parent = match self.cached.take() {
            Some(p) if p.comps == comps => p,
            _ => {
                let fd = self.parent(parents, path)?;
                let st = rfs::fstat(&fd).map_err(io_err("stat of the parent directory"))?;
                let setgid_gid = (st.st_mode & 0o2000 != 0).then_some(st.st_gid);
                Parent {
                    comps,
                    fd,
                    setgid_gid,
                }
            }
        };
        let dir = parent.fd.as_fd();
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(meta.mode & 0o777);
        let mut fresh = true;
        let fd = match rfs::openat(dir, name, flags, mode) {
            Err(Errno::EXIST) => {
                fresh = false;
                clear(dir, name, false).map_err(io_err("replacing"))?;
                rfs::openat(dir, name, flags, mode)
            }
            r => r,
        }
        .map_err(io_err("creating the file"))?;
        let mut file = File::from(fd);
        let size = e.size();
        let got = copy_with(&mut self.buf, &mut Read::take(&mut *e, size), &mut file).map_err(
            |source| UnpackError::Io {
                path: path.to_string(),
                op: "writing the content",
                source,
            },
        )?;
        if got != size {
            return Err(UnpackError::Truncated {
                path: path.to_string(),
                size,
                got,
            });
        }
        self.stats.bytes += got;
        let c = self.creator;
        let owner = (c.uid, parent.setgid_gid.unwrap_or(c.gid));
        let owned = (meta.uid, meta.gid) == owner;
        // Creation applied mode & !umask; setuid/setgid/sticky bits always get a chmod.
        let moded = meta.mode & !0o777 == 0 && meta.mode & c.umask == 0;
        if !owned {
            let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
            rfs::fchown(&file, uid, gid).map_err(io_err("chown"))?;
        }
        if !owned || !moded {
            // (after a chown, which clears setuid/setgid)
            rfs::fchmod(&file, Mode::from_raw_mode(meta.mode)).map_err(io_err("chmod"))?;
        }
        self.xattrs(file.as_fd(), meta, path)?;
        rfs::futimens(&file, &meta.times()).map_err(io_err("setting the times"))?;
        if fresh {
            self.cached = Some(parent);
        }
        Ok(())
    }

    /// The directory that holds `comps`, resolved under the root; missing ones are made.
    fn parent(&self, comps: &[&[u8]], path: &str) -> Result<OwnedFd, UnpackError> {
        let io_err = |op| errno(path, op);
        let root = self.root.as_fd();
        match in_root(root, &join(comps), PARENT) {
            Err(Errno::NOENT) => {}
            r => return r.map_err(io_err("opening the parent directory")),
        }
        let mut cur = in_root(root, b".", PARENT).map_err(io_err("opening the root"))?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            cur = match in_root(root, &prefix, PARENT) {
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(&cur, comps[i], Mode::from_raw_mode(0o700)) {
                        Err(Errno::EXIST) => {
                            return Err(UnpackError::Refused {
                                path: path.to_string(),
                                reason: "a parent is a symlink to nothing in the layer",
                            })
                        }
                        r => r.map_err(io_err("making a parent directory"))?,
                    }
                    let fd = rfs::openat(&cur, comps[i], DIR, Mode::empty())
                        .map_err(io_err("opening a parent directory"))?;
                    rfs::fchmod(&fd, Mode::from_raw_mode(0o755))
                        .map_err(io_err("chmod of a parent directory"))?;
                    fd
                }
                r => r.map_err(io_err("opening a parent directory"))?,
            };
        }
        Ok(cur)
    }

    fn hardlink(
        &self,
        dir: BorrowedFd,
        name: &[u8],
        target: &[u8],
        path: &str,
    ) -> Result<(), UnpackError> {
        let link_err = |reason| UnpackError::Link {
            path: path.to_string(),
            target: lossy(target),
            reason,
        };
        let io_err = |op| errno(path, op);
        let comps = link_components(target).map_err(link_err)?;
        let (&tname, tparents) = comps.split_last().ok_or(link_err("the layer's root"))?;
        let tdir = match in_root(self.root.as_fd(), &join(tparents), PARENT) {
            Err(Errno::NOENT | Errno::NOTDIR) => return Err(link_err("not extracted before")),
            r => r.map_err(io_err("opening the hardlink target's directory"))?,
        };
        let st = match rfs::statat(&tdir, tname, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Err(link_err("not extracted before")),
            r => r.map_err(io_err("stat of the hardlink target"))?,
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(link_err("a directory"));
        }
        if let Ok(cur) = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            if (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino) {
                return Ok(());
            }
        }
        clear(dir, name, false).map_err(io_err("replacing"))?;
        rfs::linkat(&tdir, tname, dir, name, AtFlags::empty()).map_err(io_err("link"))
    }

    /// Owner, then mode (chown clears setuid), then xattrs of an open file or directory.
    fn apply(&self, fd: BorrowedFd, meta: &Meta, path: &str) -> Result<(), UnpackError> {
        let io_err = |op| errno(path, op);
        let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
        rfs::fchown(fd, uid, gid).map_err(io_err("chown"))?;
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(io_err("chmod"))?;
        self.xattrs(fd, meta, path)
    }

    /// The entry's kept xattrs (a filesystem without xattrs skips them).
    fn xattrs(&self, fd: BorrowedFd, meta: &Meta, path: &str) -> Result<(), UnpackError> {
        let io_err = |op| errno(path, op);
        for (k, v) in &meta.xattrs {
            match rfs::fsetxattr(fd, k.as_slice(), v, XattrFlags::empty()) {
                Err(Errno::NOTSUP) => {
                    tracing::debug!(entry = path, xattr = %lossy(k), "xattrs not supported here")
                }
                r => r.map_err(io_err("setting an xattr"))?,
            }
        }
        Ok(())
    }

    /// Directory mtimes, once their content is in place (a directory replaced since is
    /// skipped).
    fn finish(&mut self) -> Result<(), UnpackError> {
        for (p, ts) in &self.dir_times {
            let fd = match in_root(self.root.as_fd(), p, DIR) {
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                r => r,
            };
            fd.and_then(|fd| rfs::futimens(&fd, ts))
                .map_err(|e| UnpackError::Io {
                    path: lossy(p),
                    op: "setting a directory's times",
                    source: e.into(),
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let c = |n: &str| {
            components(n.as_bytes()).map(|v| v.iter().map(|c| lossy(c)).collect::<Vec<_>>())
        };
        assert_eq!(c("./a/b").unwrap(), ["a", "b"]);
        assert_eq!(c("a//./b/").unwrap(), ["a", "b"]);
        assert!(c("./").unwrap().is_empty());
        assert!(c(".").unwrap().is_empty());
        assert!(c("").unwrap().is_empty());
        assert!(c("/etc/passwd").is_err());
        assert!(c("../x").is_err());
        assert!(c("a/../../x").is_err());
        assert!(c("a/..").is_err());
        assert_eq!(c("a/..b/.c").unwrap(), ["a", "..b", ".c"]);
    }

    #[test]
    fn link_targets() {
        let c = |n: &str| link_components(n.as_bytes()).map(|v| v.len());
        assert_eq!(c("/etc/passwd"), Ok(2));
        assert_eq!(c("./etc/passwd"), Ok(2));
        assert!(c("../outside/victim").is_err());
        assert!(c("/a/../../b").is_err());
        assert!(c("/").is_err());
        assert!(c("./").is_err());
    }

    #[test]
    fn whiteouts() {
        assert_eq!(whiteout(b"file"), Ok(Whiteout::None));
        assert_eq!(whiteout(b".whx"), Ok(Whiteout::None));
        assert_eq!(whiteout(b".wh.gone"), Ok(Whiteout::Delete(b"gone")));
        assert_eq!(whiteout(b".wh..hidden"), Ok(Whiteout::Delete(b".hidden")));
        assert_eq!(whiteout(b".wh..wh..opq"), Ok(Whiteout::Opaque));
        assert_eq!(whiteout(b".wh..wh.plnk"), Ok(Whiteout::Meta));
        assert_eq!(whiteout(b".wh..wh.aufs"), Ok(Whiteout::Meta));
        assert!(whiteout(b".wh.").is_err());
        assert!(whiteout(b".wh..").is_err());
        assert!(whiteout(b".wh...").is_err());
        assert!(whiteout(b".wh.a/b").is_err());
    }

    #[test]
    fn xattrs() {
        assert!(keep_xattr(b"user.mime"));
        assert!(keep_xattr(b"security.capability"));
        assert!(keep_xattr(b"security.selinux"));
        assert!(!keep_xattr(b"trusted.overlay.opaque"));
        assert!(!keep_xattr(b"trusted.foo"));
        assert!(!keep_xattr(b"system.posix_acl_access"));
        assert!(!keep_xattr(b"userx"));
    }

    #[test]
    fn pax_times() {
        let t = |s: &str| pax_time(s.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(t("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(t("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(t("1.0000000019"), Some((1, 1)));
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("-3"), Some((-3, 0)));
        assert_eq!(t(""), None);
        assert_eq!(t("x"), None);
        assert_eq!(t("1.x"), None);
        assert_eq!(t(".5"), None);
    }
}
