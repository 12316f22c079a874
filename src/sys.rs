//! Small wrappers over Linux calls that std and nix do not cover the way we need.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// `pidfd_open(2)`: a handle on a process that cannot be confused with a later one of
/// the same PID. None when the process is already gone.
pub fn pidfd_open(pid: i32) -> io::Result<Option<OwnedFd>> {
    if pid <= 0 {
        return Ok(None);
    }
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// Wait until the process behind `fd` exits, or `timeout` passes. True when it exited.
pub fn pidfd_wait(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return true;
        }
        if r == 0 {
            return false;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Wait for `pid` (whose start time must match, so a reused PID is never waited on) to
/// exit, for at most `timeout`. True when it is gone.
pub fn wait_pid_gone(pid: i32, start_time: u64, timeout: Duration) -> bool {
    let fd = match pidfd_open(pid) {
        Ok(Some(fd)) => fd,
        Ok(None) => return true,
        Err(_) => return !crate::store::process_alive(pid, start_time),
    };
    if !crate::store::process_alive(pid, start_time) {
        return true;
    }
    pidfd_wait(&fd, timeout)
}

/// Reap a child of ours (blocking), ignoring how it ended.
pub fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

/// Make this process a child subreaper: orphaned descendants (the container's init once
/// the runtime exits) become our children.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clear FD_CLOEXEC so the fd survives exec.
pub fn clear_cloexec(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on an fd number; errors are reported.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pipe with both ends close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us these fds.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Drop this process's resident pages of its own executable that it never wrote to
/// (text and read-only data; any mapping with anonymous, i.e. copied-on-write, pages is
/// left alone). They come back from the page cache when touched again. A long-lived
/// monitor calls this once its start-up is over, so its RSS holds only what its loop uses.
pub fn release_clean_exe_pages() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let exe = exe.to_string_lossy().into_owned();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize, bool)> = None;
    let mut ranges = Vec::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first
            .split_once('-')
            .filter(|(a, _)| a.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let perms = f.get(1).copied().unwrap_or("");
            let path = f.get(5).copied().unwrap_or("");
            let start = usize::from_str_radix(a, 16).unwrap_or(0);
            let end = usize::from_str_radix(b, 16).unwrap_or(0);
            current = (path == exe && !perms.contains('w')).then_some((start, end, true));
        } else if let Some(rest) = line.strip_prefix("Anonymous:") {
            if let Some((start, end, _)) = current.take() {
                if rest.trim().trim_end_matches("kB").trim() == "0" {
                    ranges.push((start, end));
                }
            }
        }
    }
    for (start, end) in ranges {
        // SAFETY: clean, never-written file pages of our own executable: dropping them only
        // makes the next access fault them in again from the file.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// Whether this kernel has cgroup namespaces.
pub fn has_cgroup_ns() -> bool {
    std::path::Path::new("/proc/self/ns/cgroup").exists()
}

/// Signal name or number → number ("KILL", "SIGKILL", "9").
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("SIGUSR1"), Some(10));
        assert_eq!(parse_signal("2"), Some(2));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }

    #[test]
    fn pidfd_of_exited_child() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let fd = pidfd_open(c.id() as i32).unwrap().unwrap();
        assert!(pidfd_wait(&fd, Duration::from_secs(5)));
        c.wait().unwrap();
    }
}

// TEMP (replaced by the sys/nix branch): signal forwarding for attached runs.
mod forward {
    use std::sync::atomic::{AtomicI32, Ordering};

    static PENDING: AtomicI32 = AtomicI32::new(0);

    extern "C" fn handler(sig: libc::c_int) {
        PENDING.store(sig, Ordering::SeqCst);
    }

    pub fn forward_signals_install() {
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ] {
            // SAFETY: the handler only stores to an atomic.
            unsafe {
                libc::signal(sig, handler as *const () as libc::sighandler_t);
            }
        }
    }

    pub fn forward_signals_take() -> Option<i32> {
        match PENDING.swap(0, Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}
pub use forward::{forward_signals_install, forward_signals_take};
