//! Small wrappers over Linux calls that std and nix do not cover the way we need.

// The crate denies unsafe code; the raw calls nix has no safe wrapper for live here.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// A small kernel file (`/proc/PID/stat`, a cgroup's freezer state) read with one
/// `read` into `buf`: open (close-on-exec in the call itself), read, close, nothing
/// else. What fits in `buf` is returned; these files are a few hundred bytes at most.
pub fn read_small<'b>(path: &std::path::Path, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    read_small_at(&rustix::fs::CWD, path, buf)
}

/// [`read_small`] of `rel` below the directory `dir` (held open by a listing: the walk is
/// then the last names only).
pub fn read_small_at<'b>(
    dir: &impl AsFd,
    rel: impl rustix::path::Arg,
    buf: &'b mut [u8],
) -> Option<&'b [u8]> {
    let fd = rustix::fs::openat(
        dir,
        rel,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let n = rustix::io::read(&fd, &mut *buf).ok()?;
    Some(&buf[..n])
}

/// `f` over `items`, keeping what it returns, in order: by one thread more than there are
/// processors (at most 4, so 5 threads) when there are at least `min` items, the calling
/// thread one of them. The threads take the items 32 at a time from a shared counter, so a
/// thread that starts late (a VM's idle vCPU wakes slowly) or runs slowly does less of the
/// work; the extra thread keeps the awake processor busy meanwhile (`ps -a` over 1,000
/// records after 0.25 s of quiet on 2 vCPUs: 25 ms with 2 threads, 19 ms with 3). Each
/// thread makes its own state with `init` (a buffer, directories it holds open) and hands
/// it to `f` item after item.
pub fn par_filter_map<I: Sync, S, T: Send>(
    items: &[I],
    min: usize,
    init: &(dyn Fn() -> S + Sync),
    f: &(dyn Fn(&mut S, &I) -> Option<T> + Sync),
) -> Vec<T> {
    const CHUNK: usize = 32;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let threads = cpus + 1;
    if items.len() < min.max(2) || cpus < 2 {
        let mut state = init();
        return items.iter().filter_map(|i| f(&mut state, i)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut state = init();
        let mut done = Vec::new();
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = items.chunks(CHUNK).nth(n) else {
                return done;
            };
            let out: Vec<T> = chunk.iter().filter_map(|i| f(&mut state, i)).collect();
            done.push((n, out));
        }
    };
    let mut done = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for h in others {
            done.extend(h.join().unwrap_or_default());
        }
        done
    });
    done.sort_unstable_by_key(|(n, _)| *n);
    done.into_iter().flat_map(|(_, out)| out).collect()
}

/// A named failpoint of the crash-safety tests (cargo feature `failpoints`; without it
/// this is nothing): `FAILPOINTS=NAME=return` makes the process die right here, by
/// SIGKILL, with no cleanup of any kind, as a scheduler's kill -9 would.
#[cfg_attr(not(feature = "failpoints"), allow(unused_variables))]
pub fn failpoint(name: &str) {
    fail::fail_point!(name, |_| {
        let _ = nix::sys::signal::raise(Signal::SIGKILL);
        std::process::abort()
    });
}

/// Set up the failpoints named in `FAILPOINTS` (feature `failpoints` only).
pub fn failpoints_from_env() {
    #[cfg(feature = "failpoints")]
    std::mem::forget(fail::FailScenario::setup());
}

/// `pidfd_open(2)`: a handle on a process that cannot be confused with a later one of
/// the same PID. None when the process is already gone.
pub fn pidfd_open(pid: i32) -> io::Result<Option<OwnedFd>> {
    if pid <= 0 {
        return Ok(None);
    }
    // SAFETY: a plain syscall with integer arguments; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// `pidfd_send_signal(2)`: `sig` to the process behind `fd`, and to no later process of
/// its PID. Ok(false) when it has already exited.
pub fn pidfd_signal(fd: &OwnedFd, sig: i32) -> io::Result<bool> {
    // SAFETY: a plain syscall: an fd we own, a signal number, no siginfo (null), no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(false),
            _ => Err(e),
        };
    }
    Ok(true)
}

/// Wait until the process behind `fd` exits, or `timeout` passes. True when it exited.
pub fn pidfd_wait(fd: &OwnedFd, timeout: Duration) -> bool {
    poll_readable(fd.as_fd(), timeout).unwrap_or(false)
}

/// Wait until `fd` is readable or hung up (or in error: a read says which), for at most
/// `timeout`. True when it is, false on timeout. Interrupted waits resume with the time
/// left.
pub fn poll_readable(fd: BorrowedFd, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], ms) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
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
    while let Err(Errno::EINTR) = waitpid(Pid::from_raw(pid), None) {}
}

/// Make this process a child subreaper: orphaned descendants (the container's init once
/// the runtime exits) become our children.
pub fn set_child_subreaper() -> io::Result<()> {
    Ok(nix::sys::prctl::set_child_subreaper(true)?)
}

/// Clear FD_CLOEXEC so the fd survives exec. Two fcntl calls and no allocation: the
/// monitor's forked child calls it.
pub fn clear_cloexec(fd: i32) -> io::Result<()> {
    let flags = FdFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFD)?);
    fcntl(fd, FcntlArg::F_SETFD(flags.difference(FdFlag::FD_CLOEXEC)))?;
    Ok(())
}

/// A pipe with both ends close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// Fill `buf` from the kernel's random source (`getrandom(2)`, blocking until it is
/// seeded); interrupted calls are retried.
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the kernel writes at most `rest.len()` bytes at `rest`, a buffer we
        // borrow mutably for the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        filled += n as usize;
    }
    Ok(())
}

/// The signals an attached run forwards to its container.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The last forwarded signal caught and not yet taken (0: none).
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn note_signal(sig: libc::c_int) {
    PENDING.store(sig, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 for an attached run: the
/// handler only records the signal's number (the latest wins), for
/// [`forward_signals_take`]. `signal(3)` semantics: interrupted calls restart.
pub fn forward_signals_install() {
    for sig in FORWARDED {
        // SAFETY: the handler is async-signal-safe (one atomic store) and may run on any
        // thread at any time; the previous disposition is not needed.
        let _ = unsafe { signal(sig, SigHandler::Handler(note_signal)) };
    }
}

/// The number of the last signal caught by [`forward_signals_install`]'s handler since the
/// previous call, if any.
pub fn forward_signals_take() -> Option<i32> {
    match PENDING.swap(0, Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
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
        // SAFETY: the range is a whole mapping of our own executable, read from smaps; its
        // pages are clean file pages (no anonymous copy-on-write ones): dropping them only
        // makes the next access fault them in again from the file, and no memory is unmapped.
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

/// This machine's architecture in Go's names (`amd64`, `arm64`), as image platforms and
/// seccomp profiles spell it; Rust's name for any other.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        a => a,
    }
}

/// A user namespace whose uid and gid maps are `uid_map` and `gid_map` (`/proc/PID/uid_map`
/// lines), held by an fd: no process stays in it. A forked child unshares CLONE_NEWUSER
/// and waits; this process writes the child's maps, opens `/proc/CHILD/ns/user`, then
/// lets the child exit and reaps it. The child makes only raw system calls (the process
/// may have threads).
pub fn new_userns(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let (ready_r, ready_w) = pipe()?;
    let (release_r, release_w) = pipe()?;
    // SAFETY: the child runs only async-signal-safe system calls (close, unshare, write,
    // read, _exit) on fds it inherited, and never returns into Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: raw calls on inherited fds; the child ends with _exit.
        unsafe {
            libc::close(release_w.as_raw_fd());
            libc::close(ready_r.as_raw_fd());
            let status: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                0
            } else {
                1
            };
            libc::write(ready_w.as_raw_fd(), (&status as *const u8).cast(), 1);
            libc::close(ready_w.as_raw_fd());
            let mut b = 0u8;
            while libc::read(release_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) < 0 {}
            libc::_exit(0);
        }
    }
    drop((ready_w, release_r));
    let opened = (|| {
        let mut status = [0u8; 1];
        let n = loop {
            match nix::unistd::read(ready_r.as_raw_fd(), &mut status) {
                Err(Errno::EINTR) => continue,
                r => break r?,
            }
        };
        if n != 1 || status[0] != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "unshare(CLONE_NEWUSER) failed: this kernel or sandbox does not allow user namespaces",
            ));
        }
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        let f = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        Ok(OwnedFd::from(f))
    })();
    drop(release_w);
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    reap(pid);
    opened
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A detached copy of the mount tree at `path` (its submounts too) whose ids are mapped
/// through the user namespace `userns` (`open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`, then
/// `mount_setattr(MOUNT_ATTR_IDMAP)`). It disappears with its fd unless attached
/// ([`attach_mount`]) or used as an overlay layer. EINVAL/EPERM/ENOSYS from the second
/// call mean the filesystem or the kernel cannot idmap.
pub fn idmapped_tree(path: &std::path::Path, userns: BorrowedFd) -> io::Result<OwnedFd> {
    use rustix::mount::{open_tree, OpenTreeFlags};
    use std::os::fd::AsRawFd;
    let tree = open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: the kernel reads `size_of::<MountAttr>()` bytes at `&attr`, which lives for
    // the call, and the empty path string is a static NUL-terminated C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tree)
}

/// Attach the detached mount `tree` at `target` (`move_mount(2)`).
pub fn attach_mount(tree: BorrowedFd, target: &std::path::Path) -> io::Result<()> {
    use rustix::mount::{move_mount, MoveMountFlags};
    Ok(move_mount(
        tree,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}

/// Where the kernel refused an overlay made with [`overlay_from_fds`].
#[derive(Debug)]
pub enum OverlayStep {
    /// `fsconfig("lowerdir+", fd)`: a kernel before 6.13 takes no layer fds.
    Lower,
    /// Any other step (upper, work, create, mount, attach).
    Other,
}

/// Mount an overlay at `target` whose lower layers are the (detached) mount trees
/// `lowers`, topmost first, with the new mount API (`fsopen`, `fsconfig("lowerdir+",
/// fd)` from Linux 6.13, `fsmount`, `move_mount`). Nothing stays behind on failure.
pub fn overlay_from_fds(
    lowers: &[OwnedFd],
    upper: &std::path::Path,
    work: &std::path::Path,
    volatile: bool,
    target: &std::path::Path,
) -> Result<(), (OverlayStep, io::Error)> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_fd, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen,
        FsMountFlags, FsOpenFlags, MountAttrFlags,
    };
    let other = |e: rustix::io::Errno| (OverlayStep::Other, io::Error::from(e));
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(other)?;
    for l in lowers {
        fsconfig_set_fd(&fs, "lowerdir+", l).map_err(|e| (OverlayStep::Lower, e.into()))?;
    }
    fsconfig_set_string(&fs, "upperdir", upper).map_err(other)?;
    fsconfig_set_string(&fs, "workdir", work).map_err(other)?;
    if volatile {
        fsconfig_set_flag(&fs, "volatile").map_err(other)?;
    }
    fsconfig_create(&fs).map_err(other)?;
    let mnt =
        fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).map_err(other)?;
    attach_mount(mnt.as_fd(), target).map_err(|e| (OverlayStep::Other, e))
}

#[cfg(test)]
mod tests {
    /// Kept in order, filtered, each thread's state its own, by one thread or several.
    #[test]
    fn par_filter_map_keeps_order() {
        let items: Vec<u32> = (0..1000).collect();
        for min in [1, 64, 5000] {
            let out = par_filter_map(&items, min, &|| 0u32, &|seen, i| {
                *seen += 1;
                (i % 3 != 0).then_some((*i, *seen))
            });
            let want: Vec<u32> = (0..1000).filter(|i| i % 3 != 0).collect();
            assert_eq!(out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), want);
            assert!(out.iter().all(|(_, seen)| *seen >= 1));
        }
        assert!(par_filter_map(&[] as &[u32], 1, &|| (), &|(), i| Some(*i)).is_empty());
    }

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
    fn poll_readable_times_out_then_sees_data_and_hangup() {
        use std::io::Write;
        let (r, w) = pipe().unwrap();
        let t = Instant::now();
        assert!(!poll_readable(r.as_fd(), Duration::from_millis(50)).unwrap());
        // It did wait (a VM's clock may see a little less than the kernel's timer).
        assert!(
            t.elapsed() >= Duration::from_millis(40),
            "{:?}",
            t.elapsed()
        );
        std::fs::File::from(w.try_clone().unwrap())
            .write_all(b"x")
            .unwrap();
        assert!(poll_readable(r.as_fd(), Duration::from_secs(5)).unwrap());
        let (r2, w2) = pipe().unwrap();
        drop(w2);
        assert!(poll_readable(r2.as_fd(), Duration::ZERO).unwrap());
        drop(w);
    }

    #[test]
    fn cloexec_cleared() {
        let (r, _w) = pipe().unwrap();
        use std::os::fd::AsRawFd;
        let fd = r.as_raw_fd();
        let get = || FdFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFD).unwrap());
        assert!(get().contains(FdFlag::FD_CLOEXEC));
        clear_cloexec(fd).unwrap();
        assert!(!get().contains(FdFlag::FD_CLOEXEC));
        assert!(clear_cloexec(-1).is_err());
    }

    #[test]
    fn random_fills() {
        let mut a = [0u8; 300];
        let mut b = [0u8; 300];
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        fill_random(&mut []).unwrap();
    }

    #[test]
    fn reap_waits_for_the_child() {
        #[allow(clippy::zombie_processes)] // reap() is the wait
        let c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id() as i32;
        reap(pid);
        assert_eq!(
            waitpid(Pid::from_raw(pid), None).unwrap_err(),
            Errno::ECHILD
        );
    }

    #[test]
    fn forwarded_signal_is_taken_once() {
        assert_eq!(forward_signals_take(), None);
        note_signal(libc::SIGTERM);
        note_signal(libc::SIGUSR1);
        assert_eq!(forward_signals_take(), Some(libc::SIGUSR1));
        assert_eq!(forward_signals_take(), None);
    }

    #[test]
    fn pidfd_of_exited_child() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let fd = pidfd_open(c.id() as i32).unwrap().unwrap();
        assert!(pidfd_wait(&fd, Duration::from_secs(5)));
        c.wait().unwrap();
    }
}
