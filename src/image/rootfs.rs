//! A container's root filesystem from an image: one overlayfs mount per container, the
//! image's unpacked layers as lower directories (shared, read-only, never copied), an upper
//! and a work directory of the container's own.
//!
//! The kernel takes the mount options in one page, so the lower directories are named
//! relative to a base directory (the image store's short links, as containers-storage
//! does: `l/<16 hex>`), and the mount runs on a thread of its own that has unshared its
//! working directory (`unshare(CLONE_FS)` + `chdir(base)`): the rest of the process keeps
//! its own. 120 layers take about 2.3 KiB of options.
//!
//! With `--userns auto` each lower layer is first made an idmapped detached mount tree
//! (the container's range: host uid 0 of the layers appears as the range's base, i.e. as
//! the container's root) and the overlay is assembled with the new mount API, the layers
//! given by fd (`lowerdir+`, Linux 6.13): no mount of a layer is ever attached anywhere,
//! so nothing but the overlay itself can be left behind. Older kernels (from 5.19) get the
//! layers attached beside the target for the mount(2) call only
//! ([`mount_attached_lowers`]; a process killed meanwhile leaves them to [`remove`]). The upper and work directories
//! belong to the range's base uid and gid, so what the container writes lands there owned
//! by its range. `--rootfs DIR` gets an idmapped mount of DIR ([`mount_idmapped`]).

use std::fs;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// The most the kernel takes as mount options (one page, with its terminating NUL).
pub const MAX_OPTIONS: usize = 4095;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("overlay mount on {}: {source}", target.display())]
    Mount { target: PathBuf, source: nix::Error },
    #[error("overlay mount options are {0} bytes, over the kernel's page")]
    TooLong(usize),
    #[error("overlay lower directory {0:?}: not a plain relative name")]
    BadLower(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("unmounting {}: {source}", path.display())]
    Umount { path: PathBuf, source: nix::Error },
    #[error("--userns auto: {} cannot be idmapped ({source}): its filesystem or this kernel does not support idmapped mounts", path.display())]
    Idmap { path: PathBuf, source: io::Error },
    #[error("--userns auto: overlayfs refused the idmapped lower layers: {0}")]
    IdmapLowers(io::Error),
    #[error("mount on {}: {source}", target.display())]
    MountApi { target: PathBuf, source: io::Error },
}

/// The idmapping of a container with its own user namespace: the namespace (holding the
/// container's mapping) and the host id its root maps to.
#[derive(Debug, Clone, Copy)]
pub struct Idmap<'a> {
    pub userns: BorrowedFd<'a>,
    pub base: u32,
}

/// One container's overlay.
#[derive(Debug, Clone)]
pub struct Overlay<'a> {
    /// The directory the lower names are relative to.
    pub base: &'a Path,
    /// Lower directories relative to `base`, topmost first.
    pub lowers: &'a [String],
    pub upper: &'a Path,
    pub work: &'a Path,
    /// Where the merged tree is mounted (the bundle's rootfs).
    pub target: &'a Path,
    /// overlayfs's `volatile`: no syncs of the upper dir (its content is unusable after a
    /// host crash, which a container's scratch layer can afford).
    pub volatile: bool,
    /// `--userns auto`: the lowers are idmapped, the upper and work dirs chowned.
    pub idmap: Option<Idmap<'a>>,
}

/// The mount options of `o`: `lowerdir=A:B,upperdir=U,workdir=W[,volatile]`.
pub fn options(o: &Overlay) -> Result<String, RootfsError> {
    let mut s = String::from("lowerdir=");
    for (i, l) in o.lowers.iter().enumerate() {
        let plain = !l.is_empty()
            && !l.starts_with('/')
            && !l.split('/').any(|c| c == ".." || c.is_empty())
            && !l.contains([':', ',', '\\', '=']);
        if !plain {
            return Err(RootfsError::BadLower(l.clone()));
        }
        if i > 0 {
            s.push(':');
        }
        s.push_str(l);
    }
    for (key, p) in [("upperdir", o.upper), ("workdir", o.work)] {
        let p = p.to_str().filter(|p| !p.contains([':', ',', '\\']));
        let Some(p) = p else {
            return Err(RootfsError::BadLower(format!("{key} {:?}", o.upper)));
        };
        s.push_str(&format!(",{key}={p}"));
    }
    if o.volatile {
        s.push_str(",volatile");
    }
    if s.len() > MAX_OPTIONS {
        return Err(RootfsError::TooLong(s.len()));
    }
    Ok(s)
}

fn mkdir(p: &Path, mode: u32) -> Result<(), RootfsError> {
    match fs::DirBuilder::new().mode(mode).create(p) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(RootfsError::Io {
            what: "creating",
            path: p.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The overlay of `o` (without idmap) made ready for a mount elsewhere (the container
/// monitor's own mount namespace): its options, checked, with the upper, work and target
/// directories made.
pub fn prepare(o: &Overlay) -> Result<String, RootfsError> {
    let opts = options(o)?;
    mkdir(o.upper, 0o755)?;
    mkdir(o.work, 0o700)?;
    mkdir(o.target, 0o755)?;
    Ok(opts)
}

/// Make the upper, work and target directories and mount the overlay.
pub fn mount(o: &Overlay) -> Result<(), RootfsError> {
    let opts = prepare(o)?;
    if let Some(idmap) = o.idmap {
        return mount_idmapped_overlay(o, idmap);
    }
    mount_with_options(o.base, o.target, opts)
}

/// mount(2) of an overlay at `target` with `opts`, whose lower names are relative to
/// `base` (on a thread of its own whose working directory is `base`).
fn mount_with_options(base: &Path, target: &Path, opts: String) -> Result<(), RootfsError> {
    let (base, target_buf) = (base.to_path_buf(), target.to_path_buf());
    let target = target_buf.clone();
    let mounted = std::thread::spawn(move || -> nix::Result<()> {
        // This thread's working directory only: the lower names are relative to it.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
        nix::unistd::chdir(&base)?;
        nix::mount::mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
    })
    .join()
    .unwrap_or(Err(nix::Error::EIO));
    mounted.map_err(|source| RootfsError::Mount {
        target: target_buf,
        source,
    })
}

/// Where the idmapped layers of an overlay at `target` are attached for the mount(2)
/// fallback (a kernel whose overlayfs takes no layer fds), beside the target.
pub fn attached_lowers_dir(target: &Path) -> PathBuf {
    target.with_file_name("idmapped-lowers")
}

/// Unmount and remove whatever the fallback left at [`attached_lowers_dir`] (a process
/// killed between its mounts and their removal); none is fine.
fn remove_attached_lowers(target: &Path) -> Result<(), RootfsError> {
    let dir = attached_lowers_dir(target);
    let entries = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(RootfsError::Io {
                what: "reading",
                path: dir,
                source,
            })
        }
    };
    for e in entries.flatten() {
        let p = e.path();
        unmount(&p)?;
        fs::remove_dir(&p).map_err(|source| RootfsError::Io {
            what: "removing",
            path: p.clone(),
            source,
        })?;
    }
    fs::remove_dir(&dir).map_err(|source| RootfsError::Io {
        what: "removing",
        path: dir,
        source,
    })
}

/// The fallback of kernels from 5.19 whose overlayfs takes no layer fds: each idmapped
/// layer is attached at `<attached_lowers_dir>/<i>`, the overlay mounted with those as
/// lower dirs (overlayfs keeps private clones of its layers' mounts), then the layer
/// mounts are detached and their directories removed at once, on success as on failure.
pub fn mount_attached_lowers(
    o: &Overlay,
    lowers: &[std::os::fd::OwnedFd],
) -> Result<(), RootfsError> {
    let dir = attached_lowers_dir(o.target);
    mkdir(&dir, 0o700)?;
    let mounted = (|| {
        let mut names = Vec::with_capacity(lowers.len());
        for (i, l) in lowers.iter().enumerate() {
            let p = dir.join(i.to_string());
            mkdir(&p, 0o700)?;
            crate::sys::attach_mount(std::os::fd::AsFd::as_fd(l), &p).map_err(|source| {
                RootfsError::MountApi {
                    target: p.clone(),
                    source,
                }
            })?;
            names.push(i.to_string());
        }
        let opts = options(&Overlay {
            base: &dir,
            lowers: &names,
            idmap: None,
            ..o.clone()
        })?;
        mount_with_options(&dir, o.target, opts)
    })();
    let cleaned = remove_attached_lowers(o.target);
    mounted?;
    if let Err(e) = cleaned {
        let _ = unmount(o.target);
        return Err(e);
    }
    Ok(())
}

/// The overlay of `o` with idmapped lowers (see the module's documentation).
fn mount_idmapped_overlay(o: &Overlay, idmap: Idmap) -> Result<(), RootfsError> {
    for p in [o.upper, o.work] {
        let owner = Some(idmap.base);
        std::os::unix::fs::chown(p, owner, owner).map_err(|source| RootfsError::Io {
            what: "chowning",
            path: p.to_path_buf(),
            source,
        })?;
    }
    let lowers = o
        .lowers
        .iter()
        .map(|l| {
            let path = o.base.join(l);
            crate::sys::idmapped_tree(&path, idmap.userns)
                .map_err(|source| RootfsError::Idmap { path, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    match crate::sys::overlay_from_fds(&lowers, o.upper, o.work, o.volatile, o.target) {
        Ok(()) => Ok(()),
        // Before Linux 6.13 overlayfs takes no layer fds: attach them for a moment.
        Err((crate::sys::OverlayStep::Lower, e)) if e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::debug!("overlayfs takes no layer fds ({e}): attaching the layers");
            mount_attached_lowers(o, &lowers)
        }
        Err((crate::sys::OverlayStep::Lower, source)) => Err(RootfsError::IdmapLowers(source)),
        Err((crate::sys::OverlayStep::Other, source)) => Err(RootfsError::MountApi {
            target: o.target.to_path_buf(),
            source,
        }),
    }
}

/// `--rootfs DIR` with `--userns auto`: an idmapped mount of `source` (and its submounts)
/// at `target`, made here. What the container writes through it is stored as the ids it
/// has inside (its root's files as host uid 0: idmapped semantics).
pub fn mount_idmapped(source: &Path, target: &Path, idmap: Idmap) -> Result<(), RootfsError> {
    mkdir(target, 0o755)?;
    let tree = crate::sys::idmapped_tree(source, idmap.userns).map_err(|e| RootfsError::Idmap {
        path: source.to_path_buf(),
        source: e,
    })?;
    crate::sys::attach_mount(std::os::fd::AsFd::as_fd(&tree), target).map_err(|source| {
        RootfsError::MountApi {
            target: target.to_path_buf(),
            source,
        }
    })
}

/// Whether something is mounted at `target` (per this process's mount table).
pub fn is_mounted(target: &Path) -> bool {
    let Some(t) = target.to_str() else {
        return false;
    };
    // Mount points in mountinfo escape space, tab, newline and backslash as octal.
    let escaped = t
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(escaped.as_str()))
}

/// Unmount the overlay at `target` (not mounted, or gone, is fine).
pub fn unmount(target: &Path) -> Result<(), RootfsError> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(RootfsError::Umount {
            path: target.to_path_buf(),
            source,
        }),
    }
}

/// Unmount the overlay (or idmapped mount) and remove the target, upper and work
/// directories. The target is removed only when empty: a mount that is still there (one
/// stacked on another) is an error, never a tree removed through it.
pub fn remove(target: &Path, upper: &Path, work: &Path) -> Result<(), RootfsError> {
    unmount(target)?;
    remove_attached_lowers(target)?;
    match fs::remove_dir(target) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(RootfsError::Io {
                what: "removing",
                path: target.to_path_buf(),
                source: e,
            })
        }
        _ => {}
    }
    for p in [upper, work] {
        match fs::remove_dir_all(p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(RootfsError::Io {
                    what: "removing",
                    path: p.to_path_buf(),
                    source: e,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay<'a>(lowers: &'a [String], volatile: bool) -> Overlay<'a> {
        Overlay {
            base: Path::new("/var/lib/ocishim/image"),
            lowers,
            upper: Path::new("/var/lib/ocishim/containers/c/upper"),
            work: Path::new("/var/lib/ocishim/containers/c/work"),
            target: Path::new("/var/lib/ocishim/containers/c/rootfs"),
            volatile,
            idmap: None,
        }
    }

    #[test]
    fn options_name_lowers_topmost_first() {
        let lowers = vec![
            "l/0123456789abcdef".to_string(),
            "l/fedcba9876543210".into(),
        ];
        assert_eq!(
            options(&overlay(&lowers, true)).unwrap(),
            "lowerdir=l/0123456789abcdef:l/fedcba9876543210,\
             upperdir=/var/lib/ocishim/containers/c/upper,\
             workdir=/var/lib/ocishim/containers/c/work,volatile"
        );
        assert!(!options(&overlay(&lowers, false))
            .unwrap()
            .ends_with("volatile"));
    }

    #[test]
    fn a_hundred_and_twenty_layers_fit_in_a_page() {
        let lowers: Vec<String> = (0..120).map(|i| format!("l/{i:016x}")).collect();
        let o = options(&overlay(&lowers, true)).unwrap();
        assert!(o.len() < 2500, "{}", o.len());
        let lowers: Vec<String> = (0..250).map(|i| format!("l/{i:016x}")).collect();
        assert!(matches!(
            options(&overlay(&lowers, true)),
            Err(RootfsError::TooLong(_))
        ));
    }

    #[test]
    fn lower_names_are_plain() {
        for bad in ["", "/abs", "l/../x", "a:b", "a,b", "a\\b", "l//x", "a=b"] {
            let lowers = vec![bad.to_string()];
            assert!(
                matches!(
                    options(&overlay(&lowers, false)),
                    Err(RootfsError::BadLower(_))
                ),
                "{bad:?}"
            );
        }
    }
}
