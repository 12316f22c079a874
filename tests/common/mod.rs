//! Harness for the root integration tests: a private --root/--data-root/--runtime-root and
//! cgroup parent per test, the real runtime (runc by default, OCISHIM_TEST_RUNTIME=crun),
//! a busybox rootfs built from Debian's busybox-static, and leak checks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ocishim");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Fails (never skips) when the prerequisites are missing.
pub fn require_root_and_runtime() -> String {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "the integration tests must run as root (they drive a real OCI runtime)"
    );
    let rt = runtime_name();
    assert!(
        ocishim::runtime::which(&rt).is_some(),
        "the OCI runtime {rt:?} is not installed (apt-get install -y {rt})"
    );
    rt
}

pub fn runtime_name() -> String {
    std::env::var("OCISHIM_TEST_RUNTIME").unwrap_or_else(|_| "runc".into())
}

/// The busybox rootfs, built once per test binary run.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("OCISHIM_TEST_ROOTFS")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest.join("fixtures/rootfs"));
        let st = Command::new(manifest.join("scripts/build-rootfs"))
            .arg(&dir)
            .bounded_status_for(Duration::from_secs(1200));
        assert!(st.success(), "scripts/build-rootfs failed");
        assert!(dir.join("bin/busybox").exists());
        dir
    })
}

/// A bridge name and a /24 no host route uses (bounded search).
pub fn free_bridge(tag: &str) -> (String, String) {
    let name = format!("osbt{}", &ocishim::store::new_id()[..8]);
    let start =
        (std::process::id() as usize * 7 + tag.len() * 13 + COUNTER.load(Ordering::SeqCst) * 29)
            % 250;
    for i in 0..250 {
        let x = (start + i) % 250;
        let subnet = format!("10.212.{x}.0/24");
        let net: ipnetwork::Ipv4Network = subnet.parse().unwrap();
        // Take it under the lock (two tests of this process never share a /24), then ask
        // the kernel with the lock released: a slow netlink answer holds up no other test.
        {
            let mut taken = TAKEN.lock().unwrap();
            if taken.contains(&x) {
                continue;
            }
            taken.push(x);
        }
        if let Ok(None) = ocishim::network::bridge::route_collision(net, &name) {
            return (name, subnet);
        }
        TAKEN.lock().unwrap().retain(|&t| t != x);
    }
    panic!("no free 10.212.x.0/24 subnet for a test bridge");
}

static TAKEN: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

fn random_tag() -> String {
    let id = ocishim::store::new_id();
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        &id[..6]
    )
}

/// One test's private ocishim installation.
pub struct Env {
    pub base: PathBuf,
    pub root: PathBuf,
    pub data_root: PathBuf,
    pub runtime_root: PathBuf,
    pub runtime: String,
    pub cgroup_parent: String,
    /// This test's default bridge and its subnet (free of the host's routes).
    pub bridge: String,
    pub subnet: String,
}

impl Env {
    pub fn new() -> Env {
        let runtime = require_root_and_runtime();
        rootfs();
        let tag = random_tag();
        let base = std::env::temp_dir().join(format!("ocishim-test-{tag}"));
        let (bridge, subnet) = free_bridge(&tag);
        let env = Env {
            bridge,
            subnet,
            root: base.join("run"),
            data_root: base.join("lib"),
            runtime_root: base.join("rt"),
            base,
            runtime,
            cgroup_parent: format!("ocishim-test-{tag}"),
        };
        std::fs::create_dir_all(&env.base).unwrap();
        env
    }

    pub fn rootfs(&self) -> String {
        rootfs().display().to_string()
    }

    /// The command with this env's global flags; `run`/`create`/`spec` also get the
    /// test's cgroup parent.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(&self.root)
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--runtime")
            .arg(&self.runtime)
            .arg("--runtime-root")
            .arg(&self.runtime_root)
            .arg("--bridge")
            .arg(&self.bridge)
            .arg("--bridge-subnet")
            .arg(&self.subnet);
        let mut it = args.iter();
        if let Some(first) = it.next() {
            c.arg(first);
            if matches!(*first, "run" | "create" | "spec") && !args.contains(&"--cgroup-parent") {
                c.arg("--cgroup-parent").arg(&self.cgroup_parent);
            }
        }
        c.args(it);
        c.stdin(Stdio::null());
        c
    }

    pub fn ocishim(&self, args: &[&str]) -> Output {
        self.cmd(args).bounded()
    }

    /// Run and require success; returns stdout trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.ocishim(args);
        assert!(
            o.status.success(),
            "ocishim {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// `run -d --rootfs ROOTFS [opts] CMD...`; returns the ID.
    pub fn run_d(&self, opts: &[&str], cmd: &[&str]) -> String {
        let rootfs = self.rootfs();
        let mut a = vec!["run", "-d", "--rootfs", rootfs.as_str()];
        a.extend_from_slice(opts);
        a.extend_from_slice(cmd);
        let id = self.ok(&a);
        assert_eq!(id.len(), 64, "run -d prints the full ID, got {id:?}");
        id
    }

    pub fn inspect(&self, id: &str) -> Value {
        let out = self.ok(&["inspect", id]);
        let v: Value = serde_json::from_str(&out).expect("inspect prints JSON");
        v[0].clone()
    }

    pub fn status(&self, id: &str) -> String {
        self.inspect(id)["State"]["Status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Poll until the container has exited (bounded).
    pub fn wait_exited(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.inspect(id);
            if v["State"]["Status"] == "exited" {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} did not exit: {v}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The runtime's view of a container (None when it does not know it).
    pub fn runtime_state(&self, id: &str) -> Option<Value> {
        let o = Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.runtime_root)
            .arg("state")
            .arg(id)
            .bounded();
        if !o.status.success() {
            return None;
        }
        serde_json::from_slice(&o.stdout).ok()
    }

    /// Every cgroup directory of this container that exists, in every hierarchy.
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        cgroup_mounts()
            .into_iter()
            .map(|m| m.join(&self.cgroup_parent).join(id))
            .filter(|p| p.exists())
            .collect()
    }

    /// Assert nothing of the container is left: record, runtime state, cgroups, mounts,
    /// processes (`pids` known to have belonged to it).
    pub fn assert_gone(&self, id: &str, pids: &[i64]) {
        assert!(
            !self.data_root.join("containers").join(id).exists(),
            "container dir of {id} left behind"
        );
        assert!(
            !self.root.join("containers").join(id).exists(),
            "bundle of {id} left behind under --root"
        );
        assert!(
            self.runtime_state(id).is_none(),
            "runtime state of {id} left behind"
        );
        assert!(
            !self.runtime_root.join(id).exists(),
            "runtime state dir of {id} left behind"
        );
        let cg = self.cgroup_dirs(id);
        assert!(cg.is_empty(), "cgroups of {id} left behind: {cg:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(id), "mounts of {id} left behind");
        let veth = ocishim::network::host_if(id);
        assert!(
            !ocishim::network::bridge::link_exists(&veth).unwrap(),
            "veth {veth} of {id} left behind"
        );
        assert!(
            !self.root.join("netns").join(id).exists(),
            "netns of {id} left behind"
        );
        let held = self.addresses("bridge");
        assert!(
            !held.iter().any(|(_, o)| o == id),
            "address of {id} still allocated"
        );
        let ranges = std::fs::read_to_string(self.ranges_file()).unwrap_or_default();
        assert!(!ranges.contains(id), "id range of {id} still allocated");
        assert!(
            processes_mentioning(id).is_empty(),
            "processes of {id} left behind: {:?}",
            processes_mentioning(id)
        );
        for &pid in pids {
            if pid > 0 {
                let alive = Path::new(&format!("/proc/{pid}")).exists()
                    && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .map(|s| !s.contains(") Z "))
                        .unwrap_or(false);
                assert!(!alive, "process {pid} of {id} still alive");
            }
        }
    }

    /// Monitors of this env still running (their argv names the env's --root).
    pub fn monitors(&self) -> Vec<i32> {
        processes_mentioning(&format!("__monitor\0--root\0{}\0", self.root.display()))
    }

    /// The addresses allocated on network `net` and their owners: the symlinks named by
    /// the address in `<root>/ipam/<net>/` (README, "Networking").
    pub fn addresses(&self, net: &str) -> Vec<(String, String)> {
        std::fs::read_dir(self.root.join("ipam").join(net))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        name.parse::<std::net::Ipv4Addr>().ok()?;
                        let owner = std::fs::read_link(e.path()).ok()?;
                        Some((name, owner.display().to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The links enslaved to this env's bridge (its ports: containers' veths), none when
    /// the bridge does not exist.
    pub fn bridge_ports(&self) -> Vec<String> {
        std::fs::read_dir(Path::new("/sys/class/net").join(&self.bridge).join("brif"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The network namespaces of this env's containers that still exist, each described
    /// with what holds it. A bridge container's namespace is held by no file (see
    /// src/network/netns.rs): only by processes, as their own namespace or an open fd, or
    /// by a bind mount (older versions, under `<root>/netns`). So every namespace on the
    /// host is found from its holders, and one is this env's when a holder is a process of
    /// the env (its argv names the env's directory, as ocishim's and the runtime's do, or it
    /// sits in one of the env's cgroups, as the containers' processes do), when a bind
    /// mount of it lies under the env's directory, or when it has a route to the env's
    /// subnet (a container's eth0 on the env's bridge, whoever holds it). The host's own
    /// namespace is none of them.
    pub fn namespaces(&self) -> Vec<String> {
        let subnet: ipnetwork::Ipv4Network = self.subnet.parse().unwrap();
        let host = ns_of(Path::new("/proc/self/ns/net"));
        let base = self.base.display().to_string();
        let in_cgroup = format!("/{}/", self.cgroup_parent);
        let mut found = Vec::new();
        let mut routed: Vec<u64> = Vec::new();
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return found;
        };
        let me = std::process::id() as i32;
        // (This process holds none: only for a moment, another test's scan, here.)
        for pid in rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&p| p != me)
        {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            let cgroups =
                std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let ours = cmd.contains(&base) || cgroups.contains(&in_cgroup);
            let mut refs = vec![None];
            if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                refs.extend(
                    fds.flatten()
                        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                        .map(Some),
                );
            }
            for fd in refs {
                let link = match fd {
                    None => format!("/proc/{pid}/ns/net"),
                    Some(fd) => format!("/proc/{pid}/fd/{fd}"),
                };
                let Some(ns) = ns_of(Path::new(&link)) else {
                    continue;
                };
                if Some(ns) == host {
                    continue;
                }
                if ours {
                    found.push(format!("net:[{ns}] held by {pid} ({cmd})"));
                } else if !routed.contains(&ns) {
                    routed.push(ns);
                    if open_ns(pid, fd, ns).is_some_and(|f| routes_to(f, subnet)) {
                        found.push(format!(
                            "net:[{ns}] with a route to {subnet}, held by {pid} ({cmd})"
                        ));
                    }
                }
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for l in mounts.lines() {
            let (pre, post) = l.split_once(" - ").unwrap_or((l, ""));
            let target = pre.split(' ').nth(4).unwrap_or("");
            if post.starts_with("nsfs ") && target.starts_with(&base) {
                found.push(format!("namespace mounted at {target}"));
            }
        }
        found
    }

    /// The `--userns auto` allocation table of this env.
    pub fn ranges_file(&self) -> PathBuf {
        self.root.join("userns/ranges.json")
    }

    /// Nothing at all in this env: no records, names, runtime states, monitors, cgroups,
    /// mounts under the data root, `--userns auto` ranges.
    pub fn assert_empty(&self) {
        self.assert_empty_but_ranges();
        let ranges = std::fs::read_to_string(self.ranges_file()).unwrap_or_default();
        assert!(
            ranges.is_empty() || ranges == "{}",
            "id ranges left: {ranges}"
        );
    }

    /// [`Env::assert_empty`] but for the id ranges (a test that holds some itself).
    pub fn assert_empty_but_ranges(&self) {
        let data_root = self.data_root.display().to_string();
        let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            // Under it: a test may mount the data root itself (a small tmpfs).
            .filter(|m| m.starts_with(&format!("{data_root}/")))
            .map(String::from)
            .collect();
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        let monitors = self.monitors();
        assert!(monitors.is_empty(), "monitors left: {monitors:?}");
        let ids: Vec<_> = std::fs::read_dir(self.data_root.join("containers"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(ids.is_empty(), "records left: {ids:?}");
        let bundles: Vec<_> = std::fs::read_dir(self.root.join("containers"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(bundles.is_empty(), "bundles left under --root: {bundles:?}");
        let states: Vec<_> = std::fs::read_dir(&self.runtime_root)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(states.is_empty(), "runtime states left: {states:?}");
        for m in cgroup_mounts() {
            let p = m.join(&self.cgroup_parent);
            let children: Vec<_> = std::fs::read_dir(&p)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.file_name())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                children.is_empty(),
                "cgroups left under {}: {children:?}",
                p.display()
            );
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Remove whatever the test left (a failed assertion mid-test), then our dirs.
        if let Some(o) = self.cmd(&["ps", "-aq", "--no-trunc"]).try_bounded() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).try_bounded();
            }
        }
        for m in cgroup_mounts() {
            let _ = std::fs::remove_dir(m.join(&self.cgroup_parent));
        }
        // Named networks the test made (their bridges and forwarding rules).
        if let Ok(rd) = std::fs::read_dir(self.data_root.join("networks")) {
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json")) {
                    let _ = self.cmd(&["network", "rm", n]).try_bounded();
                }
            }
        }
        let _ = ocishim::network::bridge::delete_link(&self.bridge);
        let _ = ocishim::network::firewall::remove_bridge(&self.bridge);
        // Overlays a failed test left mounted: never remove a directory through a mount.
        let base = self.base.display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for m in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
            if m.starts_with(&base) {
                let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The network namespace (its inode) that `link` names: a process's `ns/net` or an open
/// fd of one; None for anything else.
fn ns_of(link: &Path) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    let t = target.to_str()?;
    t.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// The network namespace `ns` of process `pid` (its own, or its open `fd`), opened here.
/// An fd is duplicated from the process (pidfd_getfd), not opened again by its path: by
/// then the number may name something else, a FIFO whose open would block, say.
fn open_ns(pid: i32, fd: Option<i32>, ns: u64) -> Option<std::fs::File> {
    let file = match fd {
        None => std::fs::File::open(format!("/proc/{pid}/ns/net")).ok()?,
        Some(fd) => {
            let pidfd = rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(pid)?,
                rustix::process::PidfdFlags::empty(),
            )
            .ok()?;
            let dup =
                rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
                    .ok()?;
            std::fs::File::from(dup)
        }
    };
    let me = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    (ns_of(Path::new(&me)) == Some(ns)).then_some(file)
}

/// Whether the network namespace `file` has a route to `subnet` (read on a thread that
/// joined it, from its own `/proc/thread-self/net/route`).
fn routes_to(file: std::fs::File, subnet: ipnetwork::Ipv4Network) -> bool {
    let text = ocishim::network::netns::run_in_file(file, Path::new("(scanned)"), || {
        std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default()
    })
    .unwrap_or_default();
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| v.to_le_bytes());
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(dest), Some(mask)) =
            (f.get(1).and_then(|s| hex(s)), f.get(7).and_then(|s| hex(s)))
        else {
            return false;
        };
        std::net::Ipv4Addr::from(dest) == subnet.network()
            && std::net::Ipv4Addr::from(mask) == subnet.mask()
    })
}

/// Whether process `pid` lives (a zombie has exited: it counts as gone).
pub fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z ") && !s.contains(") X "))
        .unwrap_or(false)
}

/// Wait (bounded) until process `pid` is gone.
pub fn wait_pid_gone(pid: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while pid_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} still alive after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait (bounded) until the host has no link `name`.
pub fn wait_link_gone(name: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while ocishim::network::bridge::link_exists(name).unwrap() {
        assert!(
            Instant::now() < deadline,
            "link {name} still exists after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether this process runs in a chroot (its / is not init's), where the kernel refuses
/// to make user namespaces (the qemu guest of scripts/vm-test).
/// Whether this kernel's overlayfs takes idmapped lower layers by fd (6.13 and later; the
/// host's 6.18): the v2 guest's Debian 6.1 refuses them, and `--userns auto` with an
/// image is a clear 125 there.
pub fn overlay_takes_idmapped_lowers() -> bool {
    let release = nix::sys::utsname::uname().unwrap();
    let release = release.release().to_string_lossy().into_owned();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 13)
}

pub fn in_a_chroot() -> bool {
    use std::os::unix::fs::MetadataExt;
    let here = std::fs::metadata("/").unwrap();
    match std::fs::metadata("/proc/1/root/") {
        Ok(init) => (here.dev(), here.ino()) != (init.dev(), init.ino()),
        Err(_) => false,
    }
}

/// Mount points of the cgroup hierarchies (v1 controllers, and the v2 mount if any).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            pre.split_whitespace().nth(4).map(PathBuf::from)
        })
        .collect()
}

/// PIDs whose command line mentions `needle` (a monitor is `ocishim ... __monitor ID`;
/// a runtime child carries the ID too).
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// How long any one command a test runs may take before the test fails (a hang in the
/// runtime, the kernel or ocishim is a failure with a process listing, never a stuck run).
pub const COMMAND_BOUND: Duration = Duration::from_secs(180);

/// `output()`/`status()` with a deadline: past it the child (a PID this test started) is
/// killed and the test panics, naming the command and listing the host's processes.
pub trait Bounded {
    fn bounded(&mut self) -> Output;
    fn bounded_status(&mut self) -> std::process::ExitStatus;
    /// For the fixture builders (a first run installs packages): a longer bound.
    fn bounded_status_for(&mut self, bound: Duration) -> std::process::ExitStatus;
    /// For cleanups (in Drop, where a panic would abort): None when it failed to run or
    /// was killed at the bound.
    fn try_bounded(&mut self) -> Option<Output>;
}

impl Bounded for Command {
    fn bounded(&mut self) -> Output {
        run_bounded(self, true, None, COMMAND_BOUND).unwrap_or_else(|e| panic!("{e}"))
    }

    fn bounded_status(&mut self) -> std::process::ExitStatus {
        self.bounded_status_for(COMMAND_BOUND)
    }

    fn bounded_status_for(&mut self, bound: Duration) -> std::process::ExitStatus {
        run_bounded(self, false, None, bound)
            .unwrap_or_else(|e| panic!("{e}"))
            .status
    }

    fn try_bounded(&mut self) -> Option<Output> {
        run_bounded(self, true, None, COMMAND_BOUND).ok()
    }
}

/// Run `c` to completion within `bound`: its output captured with `capture`, `input` on its
/// stdin when given. Past the bound the child is killed by its PID and the error names the
/// command and lists the host's processes.
pub fn run_bounded(
    c: &mut Command,
    capture: bool,
    input: Option<&[u8]>,
    bound: Duration,
) -> Result<Output, String> {
    use std::io::{Read, Write};
    if capture {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    if input.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c.spawn().map_err(|e| format!("cannot run {c:?}: {e}"))?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(data);
    }
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(bound) {
        Ok(st) => st.map_err(|e| format!("waiting for {c:?}: {e}"))?,
        Err(_) => {
            let ps = Command::new("timeout")
                .args(["10", "ps", "-eo", "pid,ppid,stat,wchan:24,etime,args"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default();
            // The waiter thread still owns the child, so its PID is not reaped yet.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = rx.recv_timeout(Duration::from_secs(10));
            return Err(format!(
                "{c:?} still running after {bound:?}: killed it\nprocesses:\n{ps}"
            ));
        }
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// An image built by scripts/build-image once per test run (`fixtures/images/`), named
/// after what builds it: a changed script or argument builds anew.
pub fn image(name: &str, args: &[&str]) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("fixtures/images");
    std::fs::create_dir_all(&dir).unwrap();
    let script = manifest.join("scripts/build-image");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(std::fs::read(&script).unwrap(), args), &mut h);
    let out = dir.join(format!("{:016x}-{name}", std::hash::Hasher::finish(&h)));
    if !out.exists() {
        let st = Command::new(&script)
            .args(args)
            .arg(&out)
            .bounded_status_for(Duration::from_secs(1200));
        assert!(st.success(), "scripts/build-image {args:?} failed");
    }
    out
}
