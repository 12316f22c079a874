//! Named network namespaces, made as `ip netns add` makes them: a thread unshares its
//! network namespace and bind-mounts /proc/thread-self/ns/net onto a file, which keeps the
//! namespace alive without any process in it. The calling thread never changes namespace.

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace {path}: {what}: {source}")]
    Sys {
        path: String,
        what: &'static str,
        source: nix::Error,
    },
    #[error("network namespace {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("network namespace thread panicked")]
    Thread,
}

fn sys_err(path: &Path, what: &'static str) -> impl FnOnce(nix::Error) -> NetnsError {
    let path = path.display().to_string();
    move |source| NetnsError::Sys { path, what, source }
}

/// Create a namespace bind-mounted at `dir/name`. On failure nothing is left.
pub fn create(dir: &Path, name: &str) -> Result<PathBuf, NetnsError> {
    fs::create_dir_all(dir).map_err(|source| NetnsError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let path = dir.join(name);
    File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| NetnsError::Io {
            path: path.display().to_string(),
            source,
        })?;
    let p = path.clone();
    let made = std::thread::spawn(move || -> Result<(), NetnsError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(sys_err(&p, "unshare"))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys_err(&p, "bind mount"))
    })
    .join()
    .map_err(|_| NetnsError::Thread)
    .and_then(|r| r);
    if let Err(e) = made {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Unmount and remove a namespace file; a missing one is fine.
pub fn delete(path: &Path) -> Result<(), NetnsError> {
    if !path.exists() {
        return Ok(());
    }
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(sys_err(path, "unmount")(e)),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Run `f` on a thread that has joined the namespace at `path`.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    let file = File::open(path).map_err(|source| NetnsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let p = path.to_path_buf();
    std::thread::spawn(move || -> Result<T, NetnsError> {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys_err(&p, "setns"))?;
        Ok(f())
    })
    .join()
    .map_err(|_| NetnsError::Thread)?
}
