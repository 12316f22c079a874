//! The per-container monitor (the conmon model). Started by `create` through a double
//! fork and `setsid`, it becomes a child subreaper, runs the runtime's `create` with the
//! container's stdout/stderr pipes, reports the result over the sync pipe, relays the
//! output into the json-file log, reaps the container and records how it ended. One
//! thread, one small buffer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Stdio;

use crate::config::LogDriver;
use crate::exit_code;
use crate::lifecycle::{now, Context};
use crate::log_file::{LogWriter, Stream};
use crate::runtime::{last_error, Runtime};
use crate::sys;

/// Read buffer for the container's pipes.
const BUF: usize = 16 * 1024;

/// argv[1] of a monitor process: `ocishim __monitor --root R --data-root D
/// [--log-level L] [--attached] [--inherit-stdio] ID`.
pub const ARGV_TAG: &str = "__monitor";
/// The environment variable naming the fd the monitor reports on.
pub const SYNC_FD_ENV: &str = "OCISHIM_SYNC_FD";
/// The environment variable naming the fd the monitor waits on for the CLI's go: one byte
/// `G` once record and bundle are written; EOF when the CLI gave up (the monitor then
/// exits having touched nothing).
pub const GO_FD_ENV: &str = "OCISHIM_GO_FD";

/// Parse the monitor's own arguments (no clap: the monitor touches as little as it can).
pub fn main_from_args(args: &[std::ffi::OsString]) -> i32 {
    let mut root = None;
    let mut data_root = None;
    let mut log_level = None;
    let mut attached = false;
    let mut inherit = false;
    let mut id = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--root") => root = it.next().map(PathBuf::from),
            Some("--data-root") => data_root = it.next().map(PathBuf::from),
            Some("--log-level") => log_level = it.next().and_then(|s| s.to_str()).map(String::from),
            Some("--attached") => attached = true,
            Some("--inherit-stdio") => inherit = true,
            Some(other) => id = Some(other.to_string()),
            None => return 2,
        }
    }
    let (Some(root), Some(data_root), Some(id)) = (root, data_root, id) else {
        return 2;
    };
    let networks = crate::network::Networks::new(
        &root,
        &data_root,
        crate::network::DEFAULT_BRIDGE,
        crate::network::DEFAULT_SUBNET
            .parse()
            .expect("valid default subnet"),
    );
    let ctx = Context {
        networks,
        store: crate::store::Store::new(root, data_root),
        runtime: String::new(),
        runtime_root: None,
        log_level,
    };
    run(&ctx, &id, attached, inherit)
}

/// The fd the CLI named in the environment variable `var`, made close-on-exec (the
/// runtime must not inherit it).
fn fd_from_env(var: &str) -> Option<File> {
    let fd = std::env::var(var).ok().and_then(|s| s.parse::<i32>().ok());
    std::env::remove_var(var);
    // SAFETY: the CLI passed us this fd number, open and ours alone.
    fd.filter(|fd| *fd > 2).map(|fd| {
        let _ = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        unsafe { File::from_raw_fd(fd) }
    })
}

/// Wait for the CLI's go. True to go on; false when the CLI closed the pipe without it.
/// Without a go fd (a monitor started by hand) there is nothing to wait for.
fn wait_for_go() -> bool {
    let Some(mut f) = fd_from_env(GO_FD_ENV) else {
        return true;
    };
    let mut b = [0u8; 1];
    loop {
        match f.read(&mut b) {
            Ok(1) => return b[0] == b'G',
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}

struct Sync(Option<File>);

impl Sync {
    fn from_env() -> Sync {
        Sync(fd_from_env(SYNC_FD_ENV))
    }
    fn send(&mut self, msg: &str) {
        if let Some(f) = self.0.as_mut() {
            let _ = f.write_all(msg.as_bytes());
        }
    }
    fn close(&mut self) {
        self.0 = None;
    }
}

/// Entry point of `ocishim __monitor ID`. Returns the process exit status.
pub fn run(ctx: &Context, id: &str, attached: bool, inherit_stdio: bool) -> i32 {
    let mut sync = Sync::from_env();
    sync.send(&format!("M{}\n", std::process::id()));
    if let Err(e) = sys::set_child_subreaper() {
        sync.send(&format!("\nEbecoming a subreaper: {e}"));
        return 1;
    }
    if !wait_for_go() {
        // Exit with the sync pipe still open: the CLI waits for its EOF, which then comes
        // from the exit itself, so once the CLI returns this process is gone.
        std::process::exit(0);
    }
    match monitor(ctx, id, attached, inherit_stdio, &mut sync) {
        Ok(()) => 0,
        Err(e) => {
            sync.send(&format!("\nE{e}"));
            1
        }
    }
}

fn monitor(
    ctx: &Context,
    id: &str,
    attached: bool,
    inherit_stdio: bool,
    sync: &mut Sync,
) -> Result<(), String> {
    let store = &ctx.store;
    let rec = store.read(id).map_err(|e| e.to_string())?;
    let rt = Runtime::new(
        &rec.ocishim.runtime,
        rec.ocishim.runtime_root.as_ref().map(PathBuf::from),
    )
    .map_err(|e| e.to_string())?;

    let json_log = rec.host_config.log_config.typ == LogDriver::JsonFile.as_str() && !inherit_stdio;
    let (pipes, stdout, stderr): (Option<(OwnedFd, OwnedFd)>, Stdio, Stdio) = if inherit_stdio {
        (None, Stdio::inherit(), Stdio::inherit())
    } else if json_log {
        let (or, ow) = sys::pipe().map_err(|e| format!("creating pipes: {e}"))?;
        let (er, ew) = sys::pipe().map_err(|e| format!("creating pipes: {e}"))?;
        (Some((or, er)), Stdio::from(ow), Stdio::from(ew))
    } else {
        (None, Stdio::null(), Stdio::null())
    };

    let runtime_log = store.runtime_log_path(id);
    let pid_file = store.pid_file(id);
    let _ = fs::remove_file(&pid_file);
    let mut cmd = rt.create_command(id, &store.bundle_dir(id), &pid_file, &runtime_log);
    cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let status = cmd
        .status()
        .map_err(|e| format!("running {} create: {e}", rt.name()))?;
    drop(cmd); // closes our copies of the pipes' write ends
    if !status.success() {
        let log = fs::read_to_string(&runtime_log).unwrap_or_default();
        let mut msg = last_error(&log);
        if msg.is_none() {
            if let Some((_, er)) = &pipes {
                msg = last_error(&read_nonblocking(er));
            }
        }
        return Err(msg.unwrap_or_else(|| format!("{} create exited with {status}", rt.name())));
    }
    let pid: i32 = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| "the runtime wrote no pid file".to_string())?;
    sync.send(&format!("K{pid}\n"));
    sync.close();
    sys::release_clean_exe_pages();

    if let Some((or, er)) = pipes {
        if let Err(e) = relay(&PathBuf::from(&rec.log_path), or, er) {
            tracing::warn!(%id, "log relay: {e}");
        }
    }

    // Reap the container (our child since the runtime's create exited).
    let mut wstatus = 0;
    let code = loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut wstatus, 0) };
        if r == pid {
            break exit_code::from_wait_status(wstatus);
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // Not our child (should not happen): fall back to waiting on a pidfd.
            if let Ok(Some(fd)) = sys::pidfd_open(pid) {
                sys::pidfd_wait(&fd, std::time::Duration::from_secs(u32::MAX as u64));
            }
            break 255;
        }
    };
    // Reap anything else that was reparented to us.
    // SAFETY: non-blocking waitpid on any child.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}

    // An OOM kill: the init died of SIGKILL and the kernel counted an OOM kill in the
    // container's cgroup (read before anything removes it).
    let oom = code == 128 + libc::SIGKILL
        && crate::cgroup::ContainerCgroup::at(&rec.ocishim.cgroups_path).oom_kills() > 0;
    let finished = now();
    // Under the container's lock (a `start` in flight holds it until the runtime's start
    // has returned: deleting the state under it would fail that start), delete the
    // runtime's state, then record the exit, so that whoever sees "exited" (start, rm)
    // never meets a stale runtime container.
    let lock = store.lock(id).map_err(|e| e.to_string())?;
    let deleted = rt
        .delete_if_exists(id, false)
        .or_else(|_| rt.delete_if_exists(id, true))
        .is_ok();
    let rec = store
        .modify_locked(id, |r| {
            r.state.set_exited(code, finished.clone());
            r.state.oom_killed = oom;
            r.ocishim.runtime_deleted = deleted;
        })
        .map_err(|e| e.to_string())?;
    drop(lock);
    tracing::debug!(%id, code, oom, "container exited");
    if rec.host_config.auto_remove && !attached {
        let _ = crate::lifecycle::purge(ctx, &rec);
    }
    Ok(())
}

/// Whatever is in a pipe right now, without blocking.
fn read_nonblocking(fd: &OwnedFd) -> String {
    // SAFETY: fcntl on our own fd.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut f = File::from(fd.try_clone().expect("dup"));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = f.read(&mut chunk) {
        if n == 0 || buf.len() > 65536 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Copy both pipes into the json-file log until both reach EOF.
fn relay(log_path: &std::path::Path, out: OwnedFd, err: OwnedFd) -> io::Result<()> {
    // Without a log file the pipes are still drained (into /dev/null), or the container
    // would block once a pipe is full.
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(log_path)
        .or_else(|e| {
            tracing::warn!("opening {}: {e}", log_path.display());
            OpenOptions::new().write(true).open("/dev/null")
        })?;
    let mut w = LogWriter::new(file);
    let mut fds = [
        (Some(File::from(out)), Stream::Stdout),
        (Some(File::from(err)), Stream::Stderr),
    ];
    let mut buf = vec![0u8; BUF];
    loop {
        let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(2);
        let mut which = Vec::with_capacity(2);
        for (i, (f, _)) in fds.iter().enumerate() {
            if let Some(f) = f {
                pfds.push(libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                which.push(i);
            }
        }
        if pfds.is_empty() {
            return Ok(());
        }
        // SAFETY: valid pollfd array.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for (p, &i) in pfds.iter().zip(&which) {
            if p.revents == 0 {
                continue;
            }
            let (slot, stream) = &mut fds[i];
            let Some(f) = slot.as_mut() else { continue };
            // A log write that fails (disk full) must not stop the draining: a container
            // whose pipe fills would block. Output is dropped until writes work again.
            let keep = |r: io::Result<()>| {
                if let Err(e) = r {
                    tracing::warn!("writing the log: {e}");
                }
            };
            match f.read(&mut buf) {
                Ok(0) => {
                    keep(w.finish(*stream));
                    *slot = None;
                }
                Ok(n) => keep(w.write(*stream, &buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    keep(w.finish(*stream));
                    *slot = None;
                    tracing::warn!("reading container output: {e}");
                }
            }
        }
    }
}
