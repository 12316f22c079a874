//! The monitor's first half: a fork of the CLI (a vfork-like clone, `setsid`, a fork)
//! that becomes a child subreaper, runs the runtime's `create` with the container's
//! stdout/stderr pipes, reports the result on the sync pipe (see [`super::protocol`]) and
//! then execs `ocishim __monitor`. Everything between the fork and the exec is
//! async-signal-safe and allocation-free: the only module besides `sys` where `unsafe`
//! is allowed.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use super::protocol::{self, CREATE_FAILED, FAILED, MONITOR, STARTED};
use crate::sys;

/// The most of the runtime's stderr a failed create passes on to the CLI.
const CREATE_STDERR_MAX: usize = 64 * 1024;

/// Where the container's stdout and stderr go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Pipes that the monitor copies into the json-file log.
    Pipes,
    /// /dev/null: no log driver, detached.
    Null,
    /// The monitor's own stdout and stderr, i.e. the attached CLI's (no log driver).
    Inherit,
}

/// A program to exec with its argv and envp, built before the fork as execve takes
/// them: the forked child allocates nothing.
pub struct Exec {
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
}

impl Exec {
    pub fn new<I, S>(program: &OsStr, args: I) -> io::Result<Exec>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let path = cstring(program.as_bytes())?;
        let mut strings = vec![path.clone()];
        for a in args {
            strings.push(cstring(a.as_ref().as_bytes())?);
        }
        let argv = pointers(&strings);
        Ok(Exec {
            path,
            _strings: strings,
            argv,
        })
    }

    /// `command`'s program and arguments (its environment and stdio are not used).
    pub fn from_command(command: &Command) -> io::Result<Exec> {
        Exec::new(command.get_program(), command.get_args())
    }
}

/// This process's environment as execve takes it.
pub struct Env {
    _strings: Vec<CString>,
    envp: Vec<*const libc::c_char>,
}

impl Env {
    pub fn current() -> io::Result<Env> {
        let mut strings = Vec::new();
        for (k, v) in std::env::vars_os() {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            strings.push(cstring(&kv)?);
        }
        let envp = pointers(&strings);
        Ok(Env {
            _strings: strings,
            envp,
        })
    }
}

fn cstring(b: &[u8]) -> io::Result<CString> {
    CString::new(b)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in an argument"))
}

fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// What a launch does besides the runtime's create (see [`launch`]).
#[derive(Default)]
pub struct Also<'a> {
    pub log_file: Option<&'a Path>,
    pub rootfs: Option<PrivateOverlay<'a>>,
    /// An fd (close-on-exec) whose lock the monitor's first half holds until it execs the
    /// monitor or exits: whoever finds the lock held knows a launch is under way (its
    /// creating process may be gone; see `Store::launch_lock`).
    pub hold: Option<std::os::fd::RawFd>,
}

/// An image's overlay mounted by the monitor in a mount namespace of the container's own
/// instead of in the host's: a thousand containers then add nothing to the host's mount
/// table, which the runtime reads several times per create and start. It lives as long as
/// the container's processes and the monitor: a start after an exit mounts it again.
/// Paths absolute; `options` as `image::rootfs::options` makes them, lower directories
/// relative to `base`.
#[derive(Clone, Copy)]
pub struct PrivateOverlay<'a> {
    pub base: &'a Path,
    pub target: &'a Path,
    pub options: &'a str,
}

/// The file descriptors of one launch, opened by the CLI before the fork.
pub struct LaunchFds {
    devnull: OwnedFd,
    sync_r: OwnedFd,
    sync_w: OwnedFd,
    /// (read end, write end) of stdout's pipe, then of stderr's.
    pipes: Option<[(OwnedFd, OwnedFd); 2]>,
}

impl LaunchFds {
    pub fn open(output: Output) -> io::Result<LaunchFds> {
        let devnull: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?
            .into();
        let (sync_r, sync_w) = sys::pipe()?;
        let pipes = match output {
            Output::Pipes => Some([sys::pipe()?, sys::pipe()?]),
            _ => None,
        };
        Ok(LaunchFds {
            devnull,
            sync_r,
            sync_w,
            pipes,
        })
    }

    /// `--log-fds OUT,ERR` for the monitor's argv: the read ends keep their numbers.
    pub fn log_fds_arg(&self) -> Option<String> {
        self.pipes
            .as_ref()
            .map(|[o, e]| format!("{},{}", o.0.as_raw_fd(), e.0.as_raw_fd()))
    }
}

/// Start the container's monitor and, in it, the runtime's `create`.
///
/// The monitor begins as a fork of the CLI (a vfork-like clone, `setsid`, a fork; see
/// `Child`) that makes only async-signal-safe calls on memory prepared here: it becomes a
/// child subreaper, runs `runtime` (the create command) with the container's stdio, and
/// reports on the sync pipe "M<its pid>\n", then "K<container pid>\n" once the create succeeded, or
/// "F<wait status>\n" and the runtime's stderr when it failed, or "E<message>". After a
/// "K" it execs `monitor` (`ocishim __monitor ...`), which relays the output and reaps
/// the container: an exec keeps both the subreaper flag and the children.
///
/// With `also.log_file` (the json-file log), the monitor creates that file while the
/// runtime's create runs, before it reports "K": the log exists once the container does,
/// as with docker (the exec'd monitor opens it again to relay into it).
///
/// With `also.rootfs`, the monitor first unshares a mount namespace, makes its mounts
/// slaves and mounts the overlay, so that the runtime's create (and
/// the container, and the monitor itself) see it and the host's mount table does not:
/// see [`PrivateOverlay`].
///
/// Returns the read end of the sync pipe (EOF once the monitor has exec'd or exited) and
/// the PID of the intermediate child, which exits at once: the caller reaps it.
pub fn launch(
    fds: LaunchFds,
    output: Output,
    runtime: &Exec,
    monitor: &Exec,
    env: &Env,
    pid_file: &Path,
    also: &Also,
) -> io::Result<(OwnedFd, i32)> {
    let pid_file = cstring(pid_file.as_os_str().as_bytes())?;
    let log_file = also
        .log_file
        .map(|p| cstring(p.as_os_str().as_bytes()))
        .transpose()?;
    let path = |p: &Path| cstring(p.as_os_str().as_bytes());
    let rootfs = match also.rootfs {
        Some(o) => Some((
            path(o.base)?,
            path(o.target)?,
            cstring(o.options.as_bytes())?,
        )),
        None => None,
    };
    let raw = |f: &OwnedFd| f.as_raw_fd();
    let (out, err) = match &fds.pipes {
        Some([o, e]) => ((raw(&o.0), raw(&o.1)), (raw(&e.0), raw(&e.1))),
        None => ((-1, -1), (-1, -1)),
    };
    // Stacks for the two vfork-like children (see Child).
    let mut stacks = vec![0u8; 2 * CHILD_STACK];
    let (first_stack, runtime_stack) = stacks.split_at_mut(CHILD_STACK);
    let mut keep = [
        raw(&fds.devnull),
        raw(&fds.sync_w),
        out.0,
        out.1,
        err.0,
        err.1,
        also.hold.unwrap_or(-1),
    ];
    keep.sort_unstable();
    let child = Child {
        affinity: Affinity::current(),
        keep,
        runtime_stack: stack_top(runtime_stack),
        devnull: raw(&fds.devnull),
        sync: raw(&fds.sync_w),
        out,
        err,
        inherit: output == Output::Inherit,
        runtime,
        monitor,
        envp: env.envp.as_ptr(),
        pid_file: &pid_file,
        log_file: log_file.as_deref(),
        rootfs: rootfs
            .as_ref()
            .map(|(b, t, o)| (b.as_c_str(), t.as_c_str(), o.as_c_str())),
    };
    // SAFETY: the children make only async-signal-safe calls on memory prepared here, and
    // leave by exec or _exit; this process is suspended until the first one has left.
    // Signals stay blocked meanwhile: a handler must not run in the child sharing our memory.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        let pinned = child.affinity.as_ref().is_some_and(|a| a.pin_here());
        let pid = libc::clone(
            Child::first,
            stack_top(first_stack),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &child as *const Child as *mut libc::c_void,
        );
        let e = io::Error::last_os_error();
        if let (true, Some(a)) = (pinned, &child.affinity) {
            a.restore();
        }
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(e);
        }
        pid
    };
    Ok((fds.sync_r, pid))
    // The CLI's copies of every other fd close as `fds` drops.
}

/// A CPU affinity mask. Each new process of the launch would start on the idlest CPU, the
/// one that is not running the parent, though the parent then only waits for it: on a VM
/// whose idle vCPUs halt, waking one costs a VM exit and the host's scheduling, once per
/// process. So the CLI pins itself to its CPU around the launch; its vfork-like child, the
/// monitor and the runtime's vfork-like child inherit that and start where their parent
/// stops. The runtime's child restores the CLI's mask before its exec, so the runtime and
/// the container get what the CLI had; the monitor restores it once the create runs.
struct Affinity(libc::cpu_set_t);

impl Affinity {
    fn current() -> Option<Affinity> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            (libc::sched_getaffinity(0, size, &mut set) == 0).then_some(Affinity(set))
        }
    }

    /// Pin this thread to the CPU it runs on. True when done.
    ///
    /// # Safety
    /// Async-signal-safe: callable in the children.
    unsafe fn pin_here(&self) -> bool {
        // SAFETY: sched_getcpu and sched_setaffinity on a local, zeroed cpu_set_t: no memory of anyone else is touched, and both are async-signal-safe.
        unsafe {
            let cpu = libc::sched_getcpu();
            if cpu < 0 || cpu as usize >= libc::CPU_SETSIZE as usize {
                return false;
            }
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut one);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0
        }
    }

    /// # Safety
    /// Async-signal-safe: callable in the children.
    unsafe fn restore(&self) {
        // SAFETY: sched_setaffinity with the mask saved before the launch; async-signal-safe.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0);
        }
    }
}

/// The log pipes' read ends that the first half passed to the exec'd monitor by number
/// (`--log-fds OUT,ERR`).
pub fn adopt_fds(out: i32, err: i32) -> (OwnedFd, OwnedFd) {
    use std::os::fd::FromRawFd;
    // SAFETY: the monitor's first half left these fds open across the exec for this
    // process alone (see Child::monitor); nothing else in it owns them.
    unsafe { (OwnedFd::from_raw_fd(out), OwnedFd::from_raw_fd(err)) }
}

/// Stack size of each vfork-like child: it calls a few libc wrappers, nothing deep.
const CHILD_STACK: usize = 64 * 1024;

/// The (16-byte aligned) top of `stack`, where a clone'd child's stack starts.
fn stack_top(stack: &mut [u8]) -> *mut libc::c_void {
    let end = stack.as_mut_ptr_range().end as usize;
    (end & !15) as *mut libc::c_void
}

/// The monitor's first half, between the fork and the exec of `ocishim __monitor`.
///
/// Three processes start here, and only the middle one copies the CLI's memory: the CLI
/// clones a child that shares its memory and suspends it until the child is gone (vfork
/// semantics: no page tables copied) and that only calls `setsid` and forks the monitor
/// before it exits; the monitor starts the runtime's create the same vfork way.
struct Child<'a> {
    /// The CLI's CPU affinity, which the children get back (see Affinity).
    affinity: Option<Affinity>,
    /// The fds the monitor keeps, sorted (-1 for none).
    keep: [i32; 7],
    runtime_stack: *mut libc::c_void,
    devnull: i32,
    sync: i32,
    /// (read, write) ends of stdout's pipe, -1 without pipes.
    out: (i32, i32),
    err: (i32, i32),
    inherit: bool,
    runtime: &'a Exec,
    monitor: &'a Exec,
    envp: *const *const libc::c_char,
    pid_file: &'a CStr,
    log_file: Option<&'a CStr>,
    /// (base, target, options) of a [`PrivateOverlay`].
    rootfs: Option<(&'a CStr, &'a CStr, &'a CStr)>,
}

impl Child<'_> {
    /// The CLI's vfork-like child: a new session, and the monitor forked into it. The raw
    /// syscall, not libc's fork: libc's would run its fork handlers in memory that the
    /// suspended CLI shares.
    extern "C" fn first(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the Child the CLI keeps alive while it is suspended.
        unsafe {
            let child = &*(arg as *const Child);
            if libc::setsid() < 0 {
                child.fail(b"setsid");
            }
            match libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) {
                -1 => child.fail(b"fork"),
                0 => child.monitor(),
                _ => libc::_exit(0),
            }
        }
    }

    /// The runtime's create, in a vfork-like child of the monitor: stdin /dev/null,
    /// stdout/stderr the pipes when there are pipes, else the monitor's.
    extern "C" fn exec_runtime(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the monitor's copy of the Child; the monitor is suspended.
        unsafe {
            let child = &*(arg as *const Child);
            if (child.out.1 >= 0 && libc::dup2(child.out.1, 1) < 0)
                || (child.err.1 >= 0 && libc::dup2(child.err.1, 2) < 0)
            {
                libc::_exit(127);
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            if let Some(a) = &child.affinity {
                a.restore();
            }
            child.exec(child.runtime);
            libc::_exit(127)
        }
    }

    /// # Safety
    /// Only in the monitor (a fork of the CLI's vfork-like child); never returns.
    unsafe fn monitor(&self) -> ! {
        // SAFETY: the monitor is a fork of the CLI's vfork-like child with its own copy of memory; it makes only async-signal-safe calls on fds and buffers prepared before the fork (the `Child`), and leaves by exec or _exit.
        unsafe {
            // Copies of the CLI's other fds (its stdout, a lock) must not outlive the CLI's own.
            close_all_but(&self.keep);
            if libc::dup2(self.devnull, 0) < 0
                || (!self.inherit
                    && (libc::dup2(self.devnull, 1) < 0 || libc::dup2(self.devnull, 2) < 0))
            {
                self.fail(b"stdio");
            }
            if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 {
                self.fail(b"becoming a subreaper");
            }
            let mut line = [0u8; 24];
            self.send(&[protocol::encode(MONITOR, libc::getpid() as i64, &mut line)]);
            libc::unlink(self.pid_file.as_ptr());
            if let Some((base, target, options)) = self.rootfs {
                self.mount_private_overlay(base, target, options);
            }

            // Signals stay blocked in the monitor until the create is over.
            let pid = libc::clone(
                Child::exec_runtime,
                self.runtime_stack,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                self as *const Child as *mut libc::c_void,
            );
            if let Some(a) = &self.affinity {
                a.restore();
            }
            if pid < 0 {
                self.fail(b"forking the runtime");
            }
            for fd in [self.out.1, self.err.1] {
                if fd >= 0 {
                    libc::close(fd);
                }
            }
            // The log file, made while the runtime works (a failure is the exec'd
            // monitor's to report: it opens the file again).
            if let Some(log) = self.log_file {
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC;
                let fd = libc::open(log.as_ptr(), flags, 0o640 as libc::c_uint);
                if fd >= 0 {
                    libc::close(fd);
                }
            }
            let mut status = 0;
            while libc::waitpid(pid, &mut status, 0) < 0 {
                if *libc::__errno_location() != libc::EINTR {
                    self.fail(b"waiting for the runtime");
                }
            }
            if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                self.send(&[protocol::encode(CREATE_FAILED, status as i64, &mut line)]);
                if self.err.0 >= 0 {
                    self.forward_nonblocking(self.err.0);
                }
                libc::_exit(1);
            }
            let Some(cpid) = self.read_pid_file() else {
                self.send(&[b"\n", &[FAILED], b"the runtime wrote no pid file"]);
                libc::_exit(1);
            };
            self.send(&[protocol::encode(STARTED, cpid as i64, &mut line)]);
            for fd in [self.out.0, self.err.0] {
                if fd >= 0 {
                    let _ = sys::clear_cloexec(fd);
                }
            }
            self.exec(self.monitor);
            // No monitor: nothing would reap or log the container. Kill it; the CLI's start
            // then fails and undoes the rest.
            libc::kill(cpid, libc::SIGKILL);
            libc::_exit(127);
        }
    }

    /// A mount namespace of the monitor's own with the overlay at `target` (see
    /// [`PrivateOverlay`]): its mounts made slaves first, so the overlay does not
    /// propagate to the host; the lower names resolved from `base`, then the working
    /// directory restored. Fails the launch on any error.
    ///
    /// # Safety
    /// Only in the monitor (async-signal-safe calls on the prepared C strings).
    unsafe fn mount_private_overlay(&self, base: &CStr, target: &CStr, options: &CStr) {
        // SAFETY: raw syscalls on NUL-terminated strings prepared before the fork and on
        // fds this function opens and closes.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) < 0 {
                self.fail(b"a mount namespace for the rootfs");
            }
            // Every mount a slave here (as runc makes the container's): what is mounted
            // from now on does not propagate back to the host's peers.
            let slave = (libc::MS_REC | libc::MS_SLAVE) as libc::c_ulong;
            let none = std::ptr::null();
            if libc::mount(none, c"/".as_ptr(), none, slave, std::ptr::null()) < 0 {
                self.fail(b"making the mounts slaves");
            }
            let dir = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
            let cwd = libc::open(c".".as_ptr(), dir);
            if cwd < 0 || libc::chdir(base.as_ptr()) < 0 {
                self.fail(b"entering the image store");
            }
            let overlay = c"overlay".as_ptr();
            if libc::mount(
                overlay,
                target.as_ptr(),
                overlay,
                0,
                options.as_ptr().cast(),
            ) < 0
            {
                self.fail(b"mounting the rootfs overlay");
            }
            if libc::fchdir(cwd) < 0 {
                self.fail(b"back to the working directory");
            }
            libc::close(cwd);
        }
    }

    /// Exec `e` with every signal unblocked (they were blocked since the launch); returns
    /// only when the exec failed.
    ///
    /// # Safety
    /// Only in the forked children (async-signal-safe), before nothing else is left to do.
    unsafe fn exec(&self, e: &Exec) {
        // SAFETY: sigprocmask on a local set and execve with the argv/envp arrays built before the fork (NUL-terminated, alive as long as the CLI is suspended).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::execve(e.path.as_ptr(), e.argv.as_ptr(), self.envp);
        }
    }

    /// Write `parts` to the sync pipe.
    ///
    /// # Safety
    /// Only in the forked children (async-signal-safe).
    unsafe fn send(&self, parts: &[&[u8]]) {
        // SAFETY: writes of borrowed byte slices to the sync pipe's fd.
        unsafe {
            for p in parts {
                write_all(self.sync, p);
            }
        }
    }

    /// Report "monitor: WHAT: errno N" on the sync pipe and exit.
    ///
    /// # Safety
    /// Only in the forked children (async-signal-safe); never returns.
    unsafe fn fail(&self, what: &[u8]) -> ! {
        // SAFETY: reads errno and writes to the sync pipe, then _exit: async-signal-safe.
        unsafe {
            let e = *libc::__errno_location();
            let mut num = [0u8; 20];
            self.send(&[
                b"\n",
                &[FAILED],
                b"monitor: ",
                what,
                b": errno ",
                protocol::itoa(e as i64, &mut num),
            ]);
            libc::_exit(1);
        }
    }

    /// The container's PID from the runtime's pid file.
    ///
    /// # Safety
    /// Only in the forked children (async-signal-safe).
    unsafe fn read_pid_file(&self) -> Option<i32> {
        // SAFETY: open/read/close with a NUL-terminated path and a local buffer of the given length.
        unsafe {
            let fd = libc::open(self.pid_file.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return None;
            }
            let mut buf = [0u8; 32];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            if n <= 0 {
                return None;
            }
            protocol::parse_pid(&buf[..n as usize])
        }
    }

    /// Pass on what the runtime wrote to its stderr pipe (at most CREATE_STDERR_MAX).
    ///
    /// # Safety
    /// Only in the forked children (async-signal-safe); `fd` is the stderr pipe's read end.
    unsafe fn forward_nonblocking(&self, fd: i32) {
        // SAFETY: fcntl and read on the stderr pipe's fd into a local buffer of the given length.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            let mut buf = [0u8; 4096];
            let mut total = 0;
            while total < CREATE_STDERR_MAX {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if n <= 0 {
                    break;
                }
                write_all(self.sync, &buf[..n as usize]);
                total += n as usize;
            }
        }
    }
}

/// Close every fd from 3 up that is not in `keep` (sorted).
///
/// # Safety
/// Only in a forked child that owns no fd above 2 besides `keep`.
unsafe fn close_all_but(keep: &[i32]) {
    // SAFETY: close_range on fd numbers this child does not use.
    unsafe {
        let mut first: u32 = 3;
        for &k in keep {
            if k < first as i32 {
                continue;
            }
            if k as u32 > first {
                libc::syscall(libc::SYS_close_range, first, k as u32 - 1, 0);
            }
            first = k as u32 + 1;
        }
        libc::syscall(libc::SYS_close_range, first, u32::MAX, 0);
    }
}

/// Write all of `b` to `fd`, retrying on EINTR (errors end it quietly).
///
/// # Safety
/// `fd` must be an open fd; async-signal-safe.
unsafe fn write_all(fd: i32, mut b: &[u8]) {
    // SAFETY: write(2) of a borrowed slice, length and pointer from the same slice.
    unsafe {
        while !b.is_empty() {
            let n = libc::write(fd, b.as_ptr().cast(), b.len());
            if n < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                return;
            }
            b = &b[n as usize..];
        }
    }
}
