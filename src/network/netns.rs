//! Containers' network namespaces: a thread unshares its network namespace and this
//! process keeps an fd to it ([`create_held`]) until the runtime has put the container in
//! it. The calling thread never changes namespace. Namespaces of older versions, bind-mounted
//! at `<root>/netns/<id>`, are still unmounted and removed by [`delete`].

use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{umount2, MntFlags};
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

/// The namespaces this process made and holds, by container ID (see [`create_held`]).
static HELD: Mutex<Vec<(String, OwnedFd)>> = Mutex::new(Vec::new());

/// A new network namespace for container `id`, held by an fd of this process: no file
/// and no mount. Returns the path the runtime joins it by, `/proc/<this pid>/fd/<n>`,
/// valid while this process lives or until [`release`].
///
/// No bind mount keeps it: the host's mount table, which the runtime reads several times
/// per create and start, stays as long with a thousand containers as with none. The
/// container's processes hold the namespace once they are in it (and with it the veth,
/// whose host end goes when the namespace goes); a start after an exit makes a new one.
pub fn create_held(id: &str) -> Result<PathBuf, NetnsError> {
    let fd = std::thread::spawn(move || -> Result<OwnedFd, NetnsError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Sys {
            path: "(new)".into(),
            what: "unshare",
            source,
        })?;
        File::open("/proc/thread-self/ns/net")
            .map(OwnedFd::from)
            .map_err(|source| NetnsError::Io {
                path: "/proc/thread-self/ns/net".into(),
                source,
            })
    })
    .join()
    .map_err(|_| NetnsError::Thread)??;
    let path = held_path(&fd);
    HELD.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id.to_string(), fd));
    Ok(path)
}

fn held_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        fd.as_raw_fd()
    ))
}

/// The path of the namespace this process holds for `id`, if any.
pub fn held(id: &str) -> Option<PathBuf> {
    let held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    held.iter()
        .find(|(i, _)| i == id)
        .map(|(_, fd)| held_path(fd))
}

/// Stop holding `id`'s namespace (the runtime has put the container in it, or the create
/// is being undone).
pub fn release(id: &str) {
    HELD.lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(i, _)| i != id);
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
    run_in_file(file, path, f)
}

/// [`run_in`] the namespace `file` (opened from `path`, which errors name) already holds.
pub fn run_in_file<T: Send + 'static>(
    file: File,
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    let p = path.to_path_buf();
    std::thread::spawn(move || -> Result<T, NetnsError> {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys_err(&p, "setns"))?;
        Ok(f())
    })
    .join()
    .map_err(|_| NetnsError::Thread)?
}
