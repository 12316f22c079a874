//! A container's root filesystem from an image: one overlayfs mount per container, the
//! image's unpacked layers as lower directories (shared, read-only, never copied), an upper
//! and a work directory of the container's own.
//!
//! The kernel takes the mount options in one page, so the lower directories are named
//! relative to a base directory (the image store's short links, as containers-storage
//! does: `l/<16 hex>`), and the mount runs on a thread of its own that has unshared its
//! working directory (`unshare(CLONE_FS)` + `chdir(base)`): the rest of the process keeps
//! its own. 120 layers take about 2.3 KiB of options.

use std::fs;
use std::io;
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

/// Make the upper, work and target directories and mount the overlay.
pub fn mount(o: &Overlay) -> Result<(), RootfsError> {
    let opts = options(o)?;
    mkdir(o.upper, 0o755)?;
    mkdir(o.work, 0o700)?;
    mkdir(o.target, 0o755)?;
    let (base, target) = (o.base.to_path_buf(), o.target.to_path_buf());
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
        target: o.target.to_path_buf(),
        source,
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

/// Unmount the overlay and remove the target, upper and work directories.
pub fn remove(target: &Path, upper: &Path, work: &Path) -> Result<(), RootfsError> {
    unmount(target)?;
    for p in [target, upper, work] {
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
