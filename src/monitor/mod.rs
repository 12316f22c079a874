//! The per-container monitor (the conmon model). Its first half ([`launch`]) is a fork of
//! the CLI that runs the runtime's `create` and reports over the sync pipe
//! ([`protocol`]); then it execs `ocishim __monitor` (this module's [`main_from_args`]),
//! which relays the output into the json-file log ([`relay`]), reaps the container and
//! records how it ended (OOM kills included). One thread, one small buffer. It imports
//! no CLI-side operation: only the store, the runtime client, the cgroup's OOM counter and
//! [`crate::teardown`] for `--rm`.

pub mod launch;
pub mod protocol;
pub mod relay;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub use launch::{launch, Env, Exec, LaunchFds, Output};

use crate::network::Networks;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{Store, StoreError};
use crate::teardown;

/// argv[1] of a monitor process: `ocishim __monitor --root R --data-root D
/// [--log-level L] [--attached] [--log-fds OUT,ERR] ID`.
pub const ARGV_TAG: &str = "__monitor";

/// The monitors of `--root root` running now, from their argv in /proc: PID, start time
/// and container ID (`gc` reclaims those whose record is gone).
pub fn list(root: &std::path::Path) -> Vec<(i32, u64, String)> {
    let root = root.as_os_str().as_encoded_bytes();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .collect();
            let ours = args.get(1) == Some(&ARGV_TAG.as_bytes())
                && args.windows(2).any(|w| w[0] == b"--root" && w[1] == root);
            let id = std::str::from_utf8(args.last()?).ok()?;
            if !ours || id.len() != 64 {
                return None;
            }
            Some((pid, crate::store::process_start_time(pid)?, id.to_string()))
        })
        .collect()
}

/// The monitor of container `id` under `--root root` (for a create killed before it
/// recorded its monitor): its PID and start time.
pub fn find(root: &std::path::Path, id: &str) -> Option<(i32, u64)> {
    list(root)
        .into_iter()
        .find(|(_, _, i)| i == id)
        .map(|(p, t, _)| (p, t))
}

/// What can go wrong in a monitor, or for a CLI waiting on one.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("monitor: timed out waiting for the runtime's create")]
    Timeout,
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the runtime wrote no pid file")]
    NoPidFile,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// The exec'd monitor's arguments (no clap: the monitor touches as little as it can).
#[derive(Debug, PartialEq)]
struct Args {
    root: PathBuf,
    data_root: PathBuf,
    attached: bool,
    log_fds: Option<(i32, i32)>,
    id: String,
}

fn parse_args(args: &[std::ffi::OsString]) -> Option<Args> {
    let mut root = None;
    let mut data_root = None;
    let mut attached = false;
    let mut log_fds = None;
    let mut id = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str()? {
            "--root" => root = it.next().map(PathBuf::from),
            "--data-root" => data_root = it.next().map(PathBuf::from),
            // Accepted for symmetry: the monitor sets up no tracing (a detached monitor's
            // stderr is /dev/null).
            "--log-level" => {
                it.next();
            }
            "--attached" => attached = true,
            "--log-fds" => log_fds = it.next().and_then(|s| s.to_str()).and_then(parse_fd_pair),
            other => id = Some(other.to_string()),
        }
    }
    Some(Args {
        root: root?,
        data_root: data_root?,
        attached,
        log_fds,
        id: id?,
    })
}

/// Parse the exec'd monitor's own arguments and run it; returns its exit status.
pub fn main_from_args(args: &[std::ffi::OsString]) -> i32 {
    let Some(a) = parse_args(args) else {
        return 2;
    };
    let networks = Networks::new(
        &a.root,
        &a.data_root,
        crate::network::DEFAULT_BRIDGE,
        crate::network::DEFAULT_SUBNET
            .parse()
            .expect("valid default subnet"),
    );
    let store = Store::new(&a.root, &a.data_root);
    let scope = teardown::Scope {
        store: &store,
        networks: &networks,
        cgroups: crate::cgroup::CgroupFs::host(),
    };
    let pipes = a.log_fds.map(|(o, e)| launch::adopt_fds(o, e));
    match monitor(&scope, &a.id, a.attached, pipes) {
        Ok(()) => 0,
        Err(e) => {
            tracing::warn!(id = %a.id, "monitor: {e}");
            1
        }
    }
}

/// Bytes held back for the exit record: twice the record's size (it grows a little),
/// in whole pages, at least 16 KiB.
fn reserve_len(rec: &crate::record::Record) -> u64 {
    let len = serde_json::to_vec(rec).map_or(0, |v| v.len() as u64);
    (2 * len).div_ceil(4096).max(4) * 4096
}

/// Write `len` bytes to `path`: space on the data root that [`record_exit`] writes the
/// record into when the disk is full (written, not a sparse length, so that the blocks
/// are really allocated).
fn hold_reserve(path: &Path, len: u64) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let made = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .and_then(|mut f| {
            static ZEROS: [u8; 4096] = [0; 4096];
            let have = f.metadata()?.len();
            for _ in 0..len.saturating_sub(have).div_ceil(4096) {
                f.write_all(&ZEROS)?;
            }
            Ok(())
        });
    if let Err(e) = made {
        // Already full: the exit record then waits for space (see record_exit).
        tracing::warn!("reserving space in {}: {e}", path.display());
        let _ = std::fs::remove_file(path);
    }
}

/// Whether an error is the disk's (or quota's) being full.
fn disk_full(e: &StoreError) -> bool {
    matches!(e, StoreError::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)))
}

/// Record how the container ended: under the container's lock (a `start` in flight holds
/// it until the runtime's start has returned: deleting the state under it would fail that
/// start), delete the runtime's state, then record the exit, so that whoever sees "exited"
/// (start, rm) never meets a stale runtime container. `set` gets whether the runtime's
/// state was deleted.
///
/// The exit is what only the monitor knows, so a full data root does not lose it: the
/// record is written into the space held back at the start ([`hold_reserve`],
/// [`Store::write_into`]: nobody else can take that space meanwhile), and failing that
/// the write is retried (outside the lock, backing off to every 2 s) until the disk has
/// room or the record is gone.
fn record_exit(
    store: &Store,
    rt: &Runtime,
    id: &str,
    reserve: &Path,
    set: impl Fn(&mut crate::record::Record, bool),
) -> Result<crate::record::Record, MonitorError> {
    let mut deleted = None;
    let mut wait = std::time::Duration::from_millis(50);
    loop {
        let lock = store.lock(id)?;
        let deleted = *deleted.get_or_insert_with(|| {
            rt.delete_if_exists(id, false)
                .or_else(|_| rt.delete_if_exists(id, true))
                .is_ok()
        });
        let mut rec = store.read(id)?;
        set(&mut rec, deleted);
        let written = match store.write(&rec) {
            Err(e) if disk_full(&e) && reserve.exists() => store.write_into(&rec, reserve),
            other => other,
        };
        match written {
            Ok(()) => return Ok(rec),
            Err(e) if disk_full(&e) => {
                drop(lock);
                tracing::warn!(%id, "recording the exit: {e}; retrying");
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn parse_fd_pair(s: &str) -> Option<(i32, i32)> {
    let (a, b) = s.split_once(',')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a > 2 && b > 2 && a != b).then_some((a, b))
}

/// Whether process `pid` exists (a zombie included).
fn proc_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The exit code of a reaped container: its own, or 128+signal.
fn exit_code_of(s: WaitStatus) -> i32 {
    match s {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 128,
    }
}

/// The monitor's second half, exec'd once the runtime's create succeeded: relay the
/// output, reap the container, record how it ended.
fn monitor(
    scope: &teardown::Scope,
    id: &str,
    attached: bool,
    pipes: Option<(OwnedFd, OwnedFd)>,
) -> Result<(), MonitorError> {
    if let Some((o, e)) = &pipes {
        for fd in [o.as_raw_fd(), e.as_raw_fd()] {
            // The runtimes we start must not inherit the pipes.
            let set = nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            if let Err(e) = set {
                tracing::warn!(%id, "close-on-exec for the log pipes: {e}");
            }
        }
    }
    let store = scope.store;
    // Held until this process ends: how `ps` tells that this monitor lives.
    let _alive = store
        .hold_alive(id)
        .map_err(|e| tracing::warn!(%id, "monitor.alive: {e}"))
        .ok();
    let pid = std::fs::read(store.pid_file(id))
        .ok()
        .and_then(|b| protocol::parse_pid(&b))
        .ok_or(MonitorError::NoPidFile)?;
    let rec = store.read(id)?;
    let reserve = store.reserve_path(id);
    hold_reserve(&reserve, reserve_len(&rec));
    let rt = Runtime::new(
        &rec.ocishim.runtime,
        rec.ocishim.runtime_root.as_ref().map(PathBuf::from),
    )?;
    crate::sys::release_clean_exe_pages();

    // Entries dropped by earlier runs of the container: the record keeps the total.
    let dropped_before = rec.ocishim.log_lines_dropped;
    let mut dropped = 0;
    if let Some((or, er)) = pipes {
        let rotation = crate::config::log_opts::rotation(&rec.host_config.log_config.config)
            .unwrap_or_else(|e| {
                tracing::warn!(%id, "log options: {e}; not rotating");
                None
            });
        let sink = relay::LogSink::new(Path::new(&rec.log_path), rotation);
        let mut record = |n: u64| {
            store
                .update(id, |r| r.ocishim.log_lines_dropped = dropped_before + n)
                .is_ok()
        };
        match relay::relay(sink, or, er, &mut record) {
            Ok(n) => dropped = n,
            Err(e) => tracing::warn!(%id, "log relay: {e}"),
        }
    }

    // Reap the container (our child since the runtime's create exited).
    let mut not_yet_ours = 0u32;
    let (code, lost) = loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                break (exit_code_of(s), None)
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::ECHILD) if not_yet_ours < 2000 && proc_exists(pid) => {
                // Not our child yet: a runtime's process that forked it may still be
                // exiting, and the init becomes ours (a subreaper's) only once it has.
                not_yet_ours += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => {
                // Not our child (should not happen): fall back to waiting on a pidfd. The
                // exit status is then unknown (255), and the record says why.
                if let Ok(Some(fd)) = crate::sys::pidfd_open(pid) {
                    crate::sys::pidfd_wait(&fd, std::time::Duration::from_secs(u32::MAX as u64));
                }
                let why = format!("exit status unknown: the monitor could not wait for the container's init (pid {pid}, {not_yet_ours} retries): {e}");
                tracing::warn!(%id, "{why}");
                break (255, Some(why));
            }
        }
    };
    // Reap anything else that was reparented to us.
    while matches!(
        waitpid(None, Some(WaitPidFlag::WNOHANG)),
        Ok(s) if s != WaitStatus::StillAlive
    ) {}

    // An OOM kill: the init died of SIGKILL and the kernel counted an OOM kill in the
    // container's cgroup (read before anything removes it).
    let oom = code == 128 + libc::SIGKILL
        && crate::cgroup::ContainerCgroup::in_fs(scope.cgroups, &rec.ocishim.cgroups_path)
            .oom_kills()
            > 0;
    let finished = crate::log_file::format_time(std::time::SystemTime::now());
    let rec = record_exit(store, &rt, id, &reserve, |r, deleted| {
        r.state.set_exited(code, finished.clone());
        if let Some(why) = &lost {
            r.state.error = why.clone();
        }
        r.state.oom_killed = oom;
        r.ocishim.runtime_deleted = deleted;
        if dropped > 0 {
            r.ocishim.log_lines_dropped = dropped_before + dropped;
        }
    })?;
    tracing::debug!(%id, code, oom, "container exited");
    if rec.host_config.auto_remove && !attached {
        // Failures are logged by teardown; nothing waits on this process's status.
        let _ = teardown::all(scope, &rec);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_arguments() {
        let args: Vec<std::ffi::OsString> = [
            "--root",
            "/r",
            "--data-root",
            "/d",
            "--log-level",
            "debug",
            "--attached",
            "--log-fds",
            "5,7",
            "abc",
        ]
        .iter()
        .map(Into::into)
        .collect();
        assert_eq!(
            parse_args(&args),
            Some(Args {
                root: "/r".into(),
                data_root: "/d".into(),
                attached: true,
                log_fds: Some((5, 7)),
                id: "abc".into(),
            })
        );
        assert_eq!(parse_args(&args[..4]), None);
        assert_eq!(parse_fd_pair("5,7"), Some((5, 7)));
        assert_eq!(parse_fd_pair("2,7"), None);
        assert_eq!(parse_fd_pair("5,5"), None);
        assert_eq!(parse_fd_pair("5"), None);
    }

    #[test]
    fn exit_codes_of_wait_statuses() {
        let p = Pid::from_raw(1);
        assert_eq!(exit_code_of(WaitStatus::Exited(p, 3)), 3);
        assert_eq!(
            exit_code_of(WaitStatus::Signaled(
                p,
                nix::sys::signal::Signal::SIGKILL,
                false
            )),
            137
        );
    }
}
