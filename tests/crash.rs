//! Crash safety against the real runtime and kernel: `run -d` killed (SIGKILL, through
//! the `failpoints` feature's named failpoints) at every step of create and start, `rm -f`
//! killed at every step of its own, `run -d` killed at random moments, then `gc` (or `rm
//! -f` again): nothing may be left. Plus a host reboot (the boot id in a record rewritten)
//! and gc beside live containers and creates. Build: `cargo test --features failpoints`.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{image, in_a_chroot, stderr, stdout, Bounded, Env};
use serde_json::Value;

/// Every failpoint of create and run's start, in order.
const CREATE_POINTS: &[&str] = &[
    "create::name",
    "create::directory",
    "create::record",
    "create::cgroup",
    "create::userns",
    "create::network",
    "create::rootfs",
    "create::bundle",
    "create::monitor",
    "start::runtime",
    "start::started",
];

/// Every failpoint of rm -f (its own, then teardown's, then the store's removal of the
/// record's directory and the name), in order.
const RM_POINTS: &[&str] = &[
    "rm::killed",
    "rm::waited",
    "rm::runtime_deleted",
    "teardown::cgroup",
    "teardown::network",
    "teardown::rootfs",
    "teardown::rootfs_and_range",
    "teardown::bundle",
    "store::renamed",
    "store::name_released",
];

fn busybox() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| image("busybox-oci.tar", &[])).clone()
}

/// `ocishim ARGS` with FAILPOINTS set to kill it at `point`.
fn killed_at(env: &Env, point: &str, args: &[&str]) -> Output {
    let mut c = env.cmd(args);
    c.env("FAILPOINTS", format!("{point}=return"));
    c.bounded()
}

fn assert_killed(o: &Output, what: &str) {
    assert_eq!(
        o.status.signal(),
        Some(9),
        "{what}: expected death by SIGKILL at the failpoint (is the binary built with \
         --features failpoints?), got {} / {}",
        o.status,
        stderr(o)
    );
}

fn gc(env: &Env) -> Vec<String> {
    env.ok(&["gc"]).lines().map(str::to_string).collect()
}

/// Nothing of the env left: records, names, runtime states, cgroups, mounts, monitors,
/// namespaces (whoever holds them), veths (the env's bridge has no port), addresses, id
/// ranges, locks, and no process of the env at all.
fn assert_clean(env: &Env, ids: &[String]) {
    for id in ids {
        env.assert_gone(id, &[]);
    }
    env.assert_empty();
    let names: Vec<_> = std::fs::read_dir(env.data_root.join("names"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "names left: {names:?}");
    let ns = env.namespaces();
    assert!(ns.is_empty(), "namespaces left: {ns:?}");
    let ports = env.bridge_ports();
    assert!(ports.is_empty(), "veths left on {}: {ports:?}", env.bridge);
    let held = env.addresses("bridge");
    assert!(held.is_empty(), "addresses left: {held:?}");
    let locks: Vec<_> = std::fs::read_dir(env.root.join("locks"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.len() == 64)
                .collect()
        })
        .unwrap_or_default();
    assert!(locks.is_empty(), "container locks left: {locks:?}");
    let procs = common::processes_mentioning(&env.base.display().to_string());
    assert!(procs.is_empty(), "processes of the env left: {procs:?}");
}

/// IDs of every record in the env (the abandoned creates among them).
fn all_ids(env: &Env) -> Vec<String> {
    env.ok(&["ps", "-a", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn run_killed_at_every_step_of_create_and_start_then_gc_leaves_nothing() {
    let env = Env::new();
    let image = busybox();
    env.ok(&["load", "-i", image.to_str().unwrap()]);
    // An image (overlay rootfs), the bridge network and limits: every step makes something.
    // With user namespaces where the kernel can idmap an image's layers (6.13 and later).
    let userns = !in_a_chroot() && common::overlay_takes_idmapped_lowers();
    let mut args = vec!["run", "-d", "--network", "bridge", "--memory", "64m"];
    if userns {
        args.extend(["--userns", "auto"]);
    }
    args.extend(["busybox", "sleep", "60"]);
    let mut left = Vec::new();
    for point in CREATE_POINTS {
        let o = killed_at(&env, point, &args);
        assert_killed(&o, point);
        assert_eq!(stdout(&o), "", "{point}: no ID printed by a killed run");
        let ids = all_ids(&env);
        // Once the record exists, ps -a shows the create as Dead.
        for id in &ids {
            let v = env.inspect(id);
            assert_eq!(v["State"]["Status"], "dead", "{point}: {v}");
            assert!(
                v["State"]["Error"].as_str().unwrap().contains("abandoned"),
                "{point}: {v}"
            );
        }
        // Killed before its record: a name (and a directory) that no listing shows.
        let before_record = matches!(*point, "create::name" | "create::directory");
        if !before_record {
            assert_eq!(ids.len(), 1, "{point}: one abandoned record: {ids:?}");
        }
        let reclaimed = gc(&env);
        assert!(
            ids.iter().all(|id| reclaimed
                .iter()
                .any(|l| l == &format!("abandoned create {id}"))),
            "{point}: gc said {reclaimed:?}"
        );
        assert!(
            !before_record || reclaimed.iter().any(|l| l.starts_with("name ")),
            "{point}: the name of a create killed before its record: {reclaimed:?}"
        );
        assert_clean(&env, &ids);
        left.extend(ids);
        // Idempotent: a second gc has nothing to do.
        assert_eq!(gc(&env), Vec::<String>::new(), "{point}: second gc");
    }
    // And a create that is not killed works as before.
    let id = env.ok(&args);
    assert_eq!(env.status(&id), "running");
    assert_eq!(
        gc(&env),
        Vec::<String>::new(),
        "gc leaves a live container alone"
    );
    assert_eq!(env.status(&id), "running");
    env.ok(&["rm", "-f", &id]);
    assert_clean(&env, &[id]);
    env.ok(&["rmi", "busybox"]);
}

#[test]
fn rm_killed_at_every_step_then_rm_again_leaves_nothing() {
    let env = Env::new();
    let image = busybox();
    env.ok(&["load", "-i", image.to_str().unwrap()]);
    let prefix = format!(
        "rmk{}_{}",
        std::process::id(),
        &ocishim::store::new_id()[..6]
    );
    for (i, point) in RM_POINTS.iter().enumerate() {
        let name = format!("{prefix}_{i}");
        let id = env.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "bridge",
            "busybox",
            "sleep",
            "60",
        ]);
        let o = killed_at(&env, point, &["rm", "-f", &id]);
        assert_killed(&o, point);
        // The invoker's listing still finds it while its name is there (released last but
        // for the renamed directory's deletion).
        let name_left = *point != "store::name_released";
        let listed = env.ok(&[
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("name={name}"),
        ]);
        assert_eq!(
            listed,
            if name_left { id.as_str() } else { "" },
            "{point}: listed"
        );
        // Again by ID, or by name every other time (while the name is there).
        let by = if name_left && i % 2 == 0 { &name } else { &id };
        let again = env.ocishim(&["rm", "-f", by]);
        assert!(
            again.status.success(),
            "{point}: rm -f {by} again: {}",
            stderr(&again)
        );
        assert_eq!(
            stdout(&again).trim(),
            by,
            "{point}: rm -f prints what it removed"
        );
        assert_clean(&env, std::slice::from_ref(&id));
        assert_eq!(gc(&env), Vec::<String>::new(), "{point}: nothing for gc");
    }
    env.ok(&["rmi", "busybox"]);
}

#[test]
fn run_killed_at_random_moments_then_gc_leaves_nothing() {
    let env = Env::new();
    let rootfs = env.rootfs();
    // A bounded number of kills, spread over the whole create (about 60 ms here).
    let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut killed = 0;
    for _ in 0..24 {
        let delay = Duration::from_micros(next() % 90_000);
        let mut child = env
            .cmd(&[
                "run",
                "-d",
                "--network",
                "bridge",
                "--memory",
                "64m",
                "--rootfs",
                &rootfs,
                "sleep",
                "60",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // (kill() succeeds on a child that exited already: only its status tells.)
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed += 1;
        }
    }
    assert!(killed > 0, "no run was killed");
    // A monitor forked by a killed create may still be starting: gc until it is quiet.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = gc(&env);
        for id in all_ids(&env) {
            // What completed before the kill is a live container: rm it as a user would.
            let v = env.inspect(&id);
            if v["State"]["Status"] != "dead" {
                env.ok(&["rm", "-f", &id]);
            }
        }
        if lines.is_empty() && all_ids(&env).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "gc does not settle: {lines:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_clean(&env, &[]);
}

/// A create killed between its directory and its record leaves a name that no listing
/// shows: the next create of that name takes it over, with the directory (before this,
/// the name was taken and the directory left for gc's grace period, a minute).
#[test]
fn a_name_left_by_a_killed_create_is_taken_over_with_its_directory() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let name = format!("t{}", std::process::id());
    let args = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "--rootfs",
        &rootfs,
        "sleep",
        "60",
    ];
    let o = killed_at(&env, "create::directory", &args);
    assert_killed(&o, "create::directory");
    let dirs = || -> Vec<_> {
        std::fs::read_dir(env.data_root.join("containers"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    assert_eq!(dirs().len(), 1, "the killed create's directory");
    assert_eq!(all_ids(&env), Vec::<String>::new());
    let id = env.ok(&args);
    assert_eq!(env.status(&id), "running");
    assert_eq!(dirs(), vec![std::ffi::OsString::from(&id)]);
    assert_eq!(gc(&env), Vec::<String>::new(), "nothing left for gc");
    // The name is the new container's.
    let o = env.ocishim(&args);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    env.ok(&["rm", "-f", &name]);
    assert_clean(&env, &[id]);
}

#[test]
fn after_a_reboot_running_containers_are_exited_and_gc_records_it() {
    let env = Env::new();
    let id = env.run_d(&[], &["sleep", "60"]);
    let pid = env.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    // After a reboot no monitor is left: kill this container's (its PID from its record).
    let path = env
        .data_root
        .join("containers")
        .join(&id)
        .join("config.v2.json");
    let rec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let monitor = rec["Ocishim"]["MonitorPid"].as_i64().unwrap() as i32;
    assert!(monitor > 0, "{rec}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{monitor}/stat")).exists()
        && !std::fs::read_to_string(format!("/proc/{monitor}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        assert!(Instant::now() < deadline, "the monitor did not die");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The record as an earlier boot wrote it.
    let path = env
        .data_root
        .join("containers")
        .join(&id)
        .join("config.v2.json");
    let mut rec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(rec["Ocishim"]["BootId"].is_string(), "{rec}");
    rec["Ocishim"]["BootId"] = "00000000-0000-0000-0000-000000000000".into();
    let tmp = path.with_extension("test-tmp");
    std::fs::write(&tmp, serde_json::to_vec(&rec).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let v = env.inspect(&id);
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["ExitCode"], 255);
    assert!(v["State"]["FinishedAt"].as_str().unwrap().starts_with("20"));
    let ps = env.ok(&["ps", "-a", "--filter", "status=exited", "-q", "--no-trunc"]);
    assert_eq!(ps, id);
    assert_eq!(env.ok(&["ps", "-q"]), "", "not listed as running");
    let lines = gc(&env);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("exited {id}")), "{lines:?}");
    let v = env.inspect(&id);
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["Error"], "the host rebooted");
    // rm works on it (here its processes really still run: rm ends them).
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[pid]);
    env.assert_empty();
}

/// `gc --dry-run`.
fn gc_dry_run(env: &Env) -> Vec<String> {
    env.ok(&["gc", "--dry-run"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// SIGKILL to `pid` (one read from a record, or a child this test started), then wait
/// (bounded) until it is gone.
fn kill_and_wait(pid: i32) {
    assert!(pid > 0);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    common::wait_pid_gone(pid, Duration::from_secs(20));
}

/// A running container's init and monitor PIDs, from its record.
fn pids_of(env: &Env, id: &str) -> (i32, i32) {
    let v = env.inspect(id);
    let pid = v["State"]["Pid"].as_i64().unwrap() as i32;
    let monitor = v["Ocishim"]["MonitorPid"].as_i64().unwrap() as i32;
    assert!(pid > 0 && monitor > 0, "{v}");
    assert!(common::pid_alive(pid) && common::pid_alive(monitor), "{v}");
    (pid, monitor)
}

/// The container's monitor, then its processes, killed (as a crash or the OOM killer
/// could): nothing is left to record the exit. Waits until its veth, which went with its
/// namespace, is gone.
fn kill_monitor_and_container(env: &Env, id: &str) -> (i32, i32) {
    let (pid, monitor) = pids_of(env, id);
    kill_and_wait(monitor);
    kill_and_wait(pid);
    common::wait_link_gone(&ocishim::network::host_if(id), Duration::from_secs(20));
    (pid, monitor)
}

fn record_path(env: &Env, id: &str) -> PathBuf {
    env.data_root
        .join("containers")
        .join(id)
        .join("config.v2.json")
}

/// What of `env` exists, for comparing before and after a `gc --dry-run`: every path
/// under its roots (not below mount points) with a hash of each file's bytes, the cgroups
/// under its parent in every hierarchy, its monitors, the ports of its bridge, the links
/// of its containers, its mounts and the processes in its cgroups.
fn snapshot(env: &Env) -> Vec<String> {
    use std::hash::{Hash, Hasher};
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let points: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect();
    let mut out = Vec::new();
    let mut todo = vec![
        env.root.clone(),
        env.data_root.clone(),
        env.runtime_root.clone(),
    ];
    while let Some(p) = todo.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            out.push(format!("dir {}", p.display()));
            if points.contains(&p) {
                out.push(format!("mount {}", p.display()));
                continue;
            }
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                todo.push(e.path());
            }
        } else if m.is_symlink() {
            let t = std::fs::read_link(&p).unwrap();
            out.push(format!("link {} -> {}", p.display(), t.display()));
        } else if m.is_file() {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(&p).unwrap_or_default().hash(&mut h);
            out.push(format!("file {} {:x}", p.display(), h.finish()));
        } else {
            // (A FIFO's open could block, or start a created container: never opened.)
            out.push(format!("special {}", p.display()));
        }
    }
    for m in common::cgroup_mounts() {
        let parent = m.join(&env.cgroup_parent);
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                out.push(format!("cgroup {}", e.path().display()));
                let procs = std::fs::read_to_string(e.path().join("cgroup.procs"));
                out.push(format!("procs {}", procs.unwrap_or_default().trim()));
            }
        }
    }
    out.extend(env.monitors().iter().map(|p| format!("monitor {p}")));
    out.extend(env.bridge_ports().iter().map(|p| format!("port {p}")));
    let base = env.base.display().to_string();
    out.extend(
        mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|t| t.starts_with(&base))
            .map(|t| format!("mounted {t}")),
    );
    out.extend(env.namespaces().iter().map(|n| format!("namespace {n}")));
    out.sort();
    out
}

/// The same snapshot, else the differences.
fn assert_unchanged(before: &[String], after: &[String]) {
    let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "gc --dry-run changed something: gone {gone:#?}, new {new:#?}"
    );
}

/// A record lost (its file gone: a hand, a restored data root): what is left of its
/// container is found by nothing but gc.
fn lose_record(env: &Env, id: &str) {
    // Once its monitor has read the record and written its reserve (at least 16 KiB, the
    // same size twice): a monitor that finds no record at its start gives up, and would
    // not be there to be reclaimed.
    let reserve = env
        .data_root
        .join("containers")
        .join(id)
        .join("monitor.reserve");
    let len = || std::fs::metadata(&reserve).map(|m| m.len()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let before = len();
        std::thread::sleep(Duration::from_millis(50));
        if before >= 16384 && len() == before {
            break;
        }
        assert!(Instant::now() < deadline, "no {}", reserve.display());
    }
    std::fs::remove_file(record_path(env, id)).unwrap();
    assert!(
        !all_ids(env).contains(&id.to_string()),
        "the record is gone"
    );
}

/// `gc --dry-run` lists what gc would reclaim and changes nothing; gc then reclaims
/// exactly that, with the same lines; a second gc finds nothing. Over the three things
/// gc is for: an abandoned create, a container whose monitor and processes were killed,
/// and a lost record.
#[test]
fn gc_dry_run_lists_what_gc_reclaims_and_changes_nothing() {
    let env = Env::new();
    env.ok(&["load", "-i", busybox().to_str().unwrap()]);
    let run = ["run", "-d", "--network", "bridge", "busybox", "sleep", "60"];
    let o = killed_at(&env, "create::bundle", &run);
    assert_killed(&o, "create::bundle");
    let abandoned = all_ids(&env).pop().unwrap();
    // (Its namespace was held by the killed process alone: its veth goes with it.)
    common::wait_link_gone(
        &ocishim::network::host_if(&abandoned),
        Duration::from_secs(20),
    );
    let dead = env.ok(&run);
    kill_monitor_and_container(&env, &dead);
    let lost = env.ok(&run);
    let (lost_pid, lost_monitor) = pids_of(&env, &lost);
    lose_record(&env, &lost);

    let before = snapshot(&env);
    let listed = gc_dry_run(&env);
    assert_unchanged(&before, &snapshot(&env));
    assert!(
        listed.contains(&format!("abandoned create {abandoned}")),
        "{listed:?}"
    );
    assert!(
        listed.contains(&format!(
            "exited {dead}: the monitor is gone: exit status unknown"
        )),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with(&format!("runtime state {lost} "))),
        "{listed:?}"
    );
    assert!(
        common::pid_alive(lost_pid),
        "the lost container's init {lost_pid} is gone"
    );
    assert!(
        common::pid_alive(lost_monitor),
        "the lost container's monitor {lost_monitor} is gone"
    );
    // A second dry run says the same.
    assert_eq!(gc_dry_run(&env), listed);

    let reclaimed = gc(&env);
    assert_eq!(reclaimed, listed, "gc's lines are its dry run's");
    assert_eq!(gc(&env), Vec::<String>::new(), "a second gc");
    assert_eq!(gc_dry_run(&env), Vec::<String>::new(), "a dry run after");
    let v = env.inspect(&dead);
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["ExitCode"], 255, "{v}");
    env.ok(&["rm", "-f", &dead]);
    assert_clean(&env, &[abandoned, dead, lost.clone()]);
    env.assert_gone(&lost, &[lost_pid.into(), lost_monitor.into()]);
    env.ok(&["rmi", "busybox"]);
}

/// The lines of a lost record's things, each kind named: (line, kind).
fn lost_lines(
    env: &Env,
    id: &str,
    name: &str,
    monitor: i32,
    ip: &str,
) -> Vec<(String, &'static str)> {
    vec![
        (
            format!("runtime state {id} ({})", env.runtime),
            "runtime state",
        ),
        (format!("monitor {monitor} of {id}"), "monitor"),
        (format!("cgroup /{}/{id}", env.cgroup_parent), "cgroup"),
        (format!("directory of {id}"), "container directory"),
        (format!("bundle of {id}"), "bundle under --root"),
        (format!("lock of {id}"), "lock"),
        (format!("name {name} of {id}"), "name"),
        (format!("address {ip} of {id} on bridge"), "address"),
        (
            format!("veth {}", ocishim::network::host_if(id)),
            "veth (with its namespace)",
        ),
    ]
}

/// Check a lost record's gc: the dry run lists `expected` (in any order) and touches
/// nothing, gc prints the same lines and leaves nothing of the container (its processes,
/// `pids`, included), a second gc finds nothing.
fn dry_run_then_gc(env: &Env, id: &str, expected: &[(String, &str)], pids: &[i32]) {
    let before = snapshot(env);
    let listed = gc_dry_run(env);
    assert_unchanged(&before, &snapshot(env));
    for (line, kind) in expected {
        assert!(
            listed.contains(line),
            "no line for the {kind} ({line:?}): {listed:?}"
        );
    }
    assert_eq!(listed.len(), expected.len(), "{listed:?}");
    for &p in pids {
        assert!(common::pid_alive(p), "process {p} is gone after a dry run");
    }
    let o = env.ocishim(&["--log-level", "warn", "gc"]);
    assert!(o.status.success(), "gc: {}", stderr(&o));
    let reclaimed: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(
        reclaimed,
        listed,
        "gc's lines are its dry run's; gc said on stderr: {}",
        stderr(&o)
    );
    let pids: Vec<i64> = pids.iter().map(|&p| p.into()).collect();
    env.assert_gone(id, &pids);
    assert_clean(env, &[id.to_string()]);
    assert_eq!(gc(env), Vec::<String>::new(), "a second gc");
}

/// A lost record of a container from an image on the bridge network with a memory
/// limit and a name: gc reclaims its runtime state and processes, monitor, cgroup in
/// every hierarchy, directory (log, overlay dirs), bundle under --root, lock, name,
/// address and veth (the namespace goes with the processes), one line each.
#[test]
fn gc_reclaims_what_a_lost_record_left() {
    let env = Env::new();
    env.ok(&["load", "-i", busybox().to_str().unwrap()]);
    let name = format!("lost-{}", &env.bridge[4..]);
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "bridge",
        "--memory",
        "64m",
        "--name",
        &name,
        "busybox",
        "sleep",
        "60",
    ]);
    let (pid, monitor) = pids_of(&env, &id);
    let ip = env.inspect(&id)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!env.cgroup_dirs(&id).is_empty());
    lose_record(&env, &id);
    let expected = lost_lines(&env, &id, &name, monitor, &ip);
    dry_run_then_gc(&env, &id, &expected, &[pid, monitor]);
    // The name is free again.
    let again = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "busybox",
        "true",
    ]);
    env.ok(&["rm", "-f", &again]);
    assert_clean(&env, &[again]);
    env.ok(&["rmi", "busybox"]);
}

/// The same with `--userns auto` on a `--rootfs` directory: its idmapped mount and its
/// id range too. (In a chroot, where the kernel refuses user namespaces, only the
/// refusal is checked.)
#[test]
fn gc_reclaims_the_mount_and_id_range_of_a_lost_record() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let name = format!("lost-{}", &env.bridge[4..]);
    let args = [
        "run",
        "-d",
        "--network",
        "bridge",
        "--userns",
        "auto",
        "--name",
        &name,
        "--rootfs",
        &rootfs,
        "sleep",
        "60",
    ];
    if in_a_chroot() {
        eprintln!("in a chroot the kernel refuses user namespaces: only the refusal is checked");
        let o = env.ocishim(&args);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
        assert_clean(&env, &[]);
        return;
    }
    let id = env.ok(&args);
    let (pid, monitor) = pids_of(&env, &id);
    let v = env.inspect(&id);
    let ip = v["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let base = v["Ocishim"]["UsernsBase"].as_u64().unwrap();
    lose_record(&env, &id);
    let mut expected = lost_lines(&env, &id, &name, monitor, &ip);
    let target = env.data_root.join("containers").join(&id).join("rootfs");
    expected.push((format!("mount {}", target.display()), "idmapped rootfs"));
    expected.push((format!("id range {base} of {id}"), "id range"));
    dry_run_then_gc(&env, &id, &expected, &[pid, monitor]);
}

/// A killed monitor. Alone, it leaves a container that still runs: shown running (its
/// monitor gone), and gc leaves it alone. With the container's processes killed too,
/// nothing can record the exit: ps and inspect show it exited with 255 (unknown) and a
/// FinishedAt, gc records that (one line), and rm -f leaves nothing.
#[test]
fn a_killed_monitor_is_exited_255_once_its_container_is_gone_and_gc_records_it() {
    let env = Env::new();
    let id = env.run_d(&["--network", "bridge"], &["sleep", "60"]);
    let (pid, monitor) = pids_of(&env, &id);
    kill_and_wait(monitor);
    let v = env.inspect(&id);
    assert_eq!(v["State"]["Status"], "running", "{v}");
    assert_eq!(v["Ocishim"]["MonitorGone"], true, "{v}");
    assert_eq!(env.ok(&["ps", "-q", "--no-trunc"]), id);
    assert_eq!(gc_dry_run(&env), Vec::<String>::new());
    assert_eq!(
        gc(&env),
        Vec::<String>::new(),
        "gc touches a live container"
    );
    assert!(common::pid_alive(pid), "gc killed a live container");
    assert_eq!(env.status(&id), "running");

    kill_and_wait(pid);
    common::wait_link_gone(&ocishim::network::host_if(&id), Duration::from_secs(20));
    let v = env.inspect(&id);
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["Running"], false, "{v}");
    assert_eq!(v["State"]["ExitCode"], 255, "{v}");
    assert!(
        v["State"]["FinishedAt"].as_str().unwrap().starts_with("20"),
        "{v}"
    );
    assert_eq!(
        env.ok(&["ps", "-a", "--filter", "status=exited", "-q", "--no-trunc"]),
        id
    );
    assert_eq!(
        env.ok(&["ps", "-a", "--filter", "exited=255", "-q", "--no-trunc"]),
        id
    );
    assert_eq!(env.ok(&["ps", "-q"]), "", "not listed as running");
    let lines = gc(&env);
    assert_eq!(
        lines,
        vec![format!(
            "exited {id}: the monitor is gone: exit status unknown"
        )]
    );
    // Recorded: the record itself says so now.
    let rec: Value =
        serde_json::from_slice(&std::fs::read(record_path(&env, &id)).unwrap()).unwrap();
    assert_eq!(rec["State"]["Status"], "exited", "{rec}");
    assert_eq!(rec["State"]["ExitCode"], 255, "{rec}");
    assert_eq!(gc(&env), Vec::<String>::new(), "a second gc");
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[pid.into(), monitor.into()]);
    assert_clean(&env, &[id]);
}

/// The leak checks see namespaces whoever holds them: a running container's (held by its
/// processes, in the env's cgroups), and one that a stray process keeps after the
/// container's own processes are gone (found by its route to the env's subnet, its veth
/// still a port of the env's bridge). Once the stray process is gone, so are both.
#[test]
fn the_leak_checks_find_a_namespace_held_by_a_stray_process() {
    let env = Env::new();
    let id = env.run_d(&["--network", "bridge"], &["sleep", "60"]);
    let (pid, _) = pids_of(&env, &id);
    assert!(
        !env.namespaces().is_empty(),
        "the running container's namespace"
    );
    let veth = ocishim::network::host_if(&id);
    assert_eq!(env.bridge_ports(), vec![veth.clone()]);
    let mut stray = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stray_pid = stray.id() as i32;
    // Until it has joined the namespace.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{stray_pid}/ns/net")).ok()
        != std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
    {
        assert!(
            Instant::now() < deadline,
            "nsenter did not join the namespace"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_monitor_and_container_but_veth(&env, &id);
    let ns = env.namespaces();
    assert_eq!(ns.len(), 1, "{ns:?}");
    assert!(ns[0].contains(&format!("held by {stray_pid} ")), "{ns:?}");
    assert_eq!(env.bridge_ports(), vec![veth.clone()]);
    let _ = stray.kill();
    let _ = stray.wait();
    common::wait_link_gone(&veth, Duration::from_secs(20));
    assert_eq!(env.namespaces(), Vec::<String>::new());
    assert_eq!(env.bridge_ports(), Vec::<String>::new());
    env.ok(&["rm", "-f", &id]);
    assert_clean(&env, &[id]);
}

/// [`kill_monitor_and_container`] without waiting for the veth (a stray process holds
/// the namespace).
fn kill_monitor_and_container_but_veth(env: &Env, id: &str) {
    let (pid, monitor) = pids_of(env, id);
    kill_and_wait(monitor);
    kill_and_wait(pid);
}

/// A cgroup parent may be shared with another installation (another `--root`), whose
/// containers have no record here: gc takes a record-less cgroup only when something else
/// of its container is in this installation (its directory, bundle, lock, runtime state
/// or monitor). An empty cgroup of another's create under way is left alone.
#[test]
fn gc_leaves_alone_a_cgroup_of_another_installation_under_its_parent() {
    let env = Env::new();
    let id = env.run_d(&["--network", "none", "--memory", "64m"], &["sleep", "60"]);
    let other = ocishim::store::new_id();
    let dirs: Vec<PathBuf> = common::cgroup_mounts()
        .into_iter()
        .map(|m| m.join(&env.cgroup_parent))
        .filter(|p| p.is_dir())
        .map(|p| p.join(&other))
        .collect();
    assert!(!dirs.is_empty());
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let listed = gc_dry_run(&env);
    let reclaimed = gc(&env);
    let left: Vec<_> = dirs.iter().filter(|d| d.is_dir()).collect();
    for d in &dirs {
        let _ = std::fs::remove_dir(d);
    }
    assert_eq!(listed, Vec::<String>::new());
    assert_eq!(reclaimed, Vec::<String>::new());
    assert_eq!(left.len(), dirs.len(), "gc removed another's cgroup");
    env.ok(&["rm", "-f", &id]);
    assert_clean(&env, &[id]);
}

/// Rewrite the boot id in the container's record, as if an earlier boot had written it.
fn set_earlier_boot(env: &Env, id: &str) {
    let path = record_path(env, id);
    let mut rec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(rec["Ocishim"]["BootId"].is_string(), "{rec}");
    rec["Ocishim"]["BootId"] = "00000000-0000-0000-0000-000000000000".into();
    let tmp = path.with_extension("test-tmp");
    std::fs::write(&tmp, serde_json::to_vec(&rec).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// A reboot as it is: every process gone, and everything that does not outlive a boot
/// with them: all under --root and the runtime's root (tmpfs), the cgroups, the bridge
/// and its rules. The container (an image's, on the bridge, with a limit) is shown exited
/// 255; `start` makes all of it again (overlay, cgroup, namespace, veth, address, bundle,
/// /etc files, runtime state, monitor) and it serves at its new address; rm -f leaves
/// nothing.
#[test]
fn after_a_reboot_that_wiped_the_root_start_makes_everything_again() {
    let env = Env::new();
    env.ok(&["load", "-i", busybox().to_str().unwrap()]);
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "bridge",
        "--memory",
        "64m",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    let (pid, monitor) = pids_of(&env, &id);
    // The reboot: the processes go (the monitor first: nothing records an exit)...
    kill_and_wait(monitor);
    kill_and_wait(pid);
    set_earlier_boot(&env, &id);
    common::wait_link_gone(&ocishim::network::host_if(&id), Duration::from_secs(20));
    // ...and so does every cgroup (emptied when the processes are reaped)...
    let deadline = Instant::now() + Duration::from_secs(20);
    for m in common::cgroup_mounts() {
        for d in [
            m.join(&env.cgroup_parent).join(&id),
            m.join(&env.cgroup_parent),
        ] {
            while d.exists() {
                if std::fs::remove_dir(&d).is_ok() {
                    break;
                }
                assert!(Instant::now() < deadline, "cannot remove {}", d.display());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // ...all of --root and the runtime's root, the bridge and its rules.
    std::fs::remove_dir_all(&env.root).unwrap();
    std::fs::remove_dir_all(&env.runtime_root).unwrap();
    ocishim::network::bridge::delete_link(&env.bridge).unwrap();
    ocishim::network::firewall::remove_bridge(&env.bridge).unwrap();

    let v = env.inspect(&id);
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["ExitCode"], 255, "{v}");
    assert_eq!(v["State"]["Error"], "the host rebooted", "{v}");
    assert!(
        v["State"]["FinishedAt"].as_str().unwrap().starts_with("20"),
        "{v}"
    );
    assert_eq!(
        env.ok(&["ps", "-a", "--filter", "status=exited", "-q", "--no-trunc"]),
        id
    );

    env.ok(&["start", &id]);
    let v = env.inspect(&id);
    assert_eq!(v["State"]["Status"], "running", "{v}");
    assert_eq!(v["State"]["Error"], "", "{v}");
    let (pid2, _) = pids_of(&env, &id);
    assert_ne!(pid2, pid);
    let ip = v["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let subnet: ipnetwork::Ipv4Network = env.subnet.parse().unwrap();
    assert!(subnet.contains(ip.parse().unwrap()), "{ip} in {subnet}");
    assert_eq!(env.addresses("bridge"), vec![(ip.clone(), id.clone())]);
    assert_eq!(
        env.bridge_ports(),
        vec![ocishim::network::host_if(&id)],
        "the veth on the bridge made again"
    );
    assert!(!env.cgroup_dirs(&id).is_empty(), "its cgroup made again");
    let limit = env
        .cgroup_dirs(&id)
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join("memory.limit_in_bytes")).ok())
        .or_else(|| {
            env.cgroup_dirs(&id)
                .iter()
                .find_map(|d| std::fs::read_to_string(d.join("memory.max")).ok())
        });
    assert_eq!(limit.as_deref().map(str::trim), Some("67108864"));
    // It serves at its address: the image's overlay, /etc files and network are there.
    let body = http_get(&ip, "/hostname");
    assert!(body.ends_with(&format!("{}\n", &id[..12])), "{body}");
    assert_eq!(gc(&env), Vec::<String>::new(), "nothing for gc");
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[pid2.into()]);
    assert_clean(&env, &[id]);
    env.ok(&["rmi", "busybox"]);
}

/// GET `path` from busybox httpd on `ip`:8080 (bounded: 10 s to answer).
fn http_get(ip: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{ip}:8080").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no answer from {addr}: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn gc_beside_creates_and_removals_touches_nothing_live() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let gcs = s.spawn(|| {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let lines = gc(&env);
                assert!(lines.is_empty(), "gc reclaimed something live: {lines:?}");
                runs += 1;
            }
            runs
        });
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..6 {
                        let id = env.ok(&[
                            "run",
                            "-d",
                            "--network",
                            "bridge",
                            "--rootfs",
                            &rootfs,
                            "sleep",
                            "60",
                        ]);
                        assert_eq!(env.status(&id), "running");
                        env.ok(&["rm", "-f", &id]);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(gcs.join().unwrap() > 0);
    });
    assert_clean(&env, &[]);
}

/// The suite's binary has the failpoints compiled in (else every test here would pass
/// vacuously): a failpoint kills.
#[test]
fn the_binary_has_failpoints() {
    let env = Env::new();
    let o = Command::new(common::BIN)
        .env("FAILPOINTS", "create::name=return")
        .args(["--root", env.root.to_str().unwrap()])
        .args(["--data-root", env.data_root.to_str().unwrap()])
        .args([
            "run",
            "-d",
            "--network",
            "none",
            "--rootfs",
            &env.rootfs(),
            "true",
        ])
        .bounded();
    assert_killed(&o, "create::name");
    gc(&env);
    env.assert_empty();
}

/// Every failpoint of `start` of an exited container (create's steps again, then the
/// runtime's start), in order; `start` of a created one reaches the last two only.
const START_POINTS: &[&str] = &[
    "start::record",
    "start::cgroup",
    "start::userns",
    "start::rootfs",
    "start::network",
    "start::bundle",
    "start::monitor",
    "start::runtime",
    "start::started",
];

/// `run`/`create` arguments that make something at every step: an image (overlay rootfs),
/// the bridge network, limits, and user namespaces where the kernel can idmap an image's
/// layers.
fn every_step_args<'a>(command: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![command];
    if command == "run" {
        args.push("-d");
    }
    args.extend(["--network", "bridge", "--memory", "64m"]);
    if !in_a_chroot() && common::overlay_takes_idmapped_lowers() {
        args.extend(["--userns", "auto"]);
    }
    args.push("busybox");
    args.extend(cmd);
    args
}

#[test]
fn start_killed_at_every_step_then_rm_leaves_nothing() {
    let env = Env::new();
    let image = busybox();
    env.ok(&["load", "-i", image.to_str().unwrap()]);
    // A created container: the runtime's start.
    for point in &START_POINTS[START_POINTS.len() - 2..] {
        let id = env.ok(&every_step_args("create", &["sleep", "60"]));
        let o = killed_at(&env, point, &["start", &id]);
        assert_killed(&o, point);
        let o = env.ocishim(&["rm", "-f", &id]);
        assert!(
            o.status.success(),
            "created, {point}: rm -f: {}",
            stderr(&o)
        );
        assert_clean(&env, std::slice::from_ref(&id));
    }
    // An exited container: create's steps again, then the runtime's start.
    for point in START_POINTS {
        let id = env.ok(&every_step_args("run", &["sleep", "60"]));
        env.ok(&["kill", &id]);
        env.wait_exited(&id, Duration::from_secs(30));
        let o = killed_at(&env, point, &["start", &id]);
        assert_killed(&o, point);
        let v = env.inspect(&id);
        if !matches!(*point, "start::runtime" | "start::started") {
            // Killed while it made the container again: an abandoned create, which start
            // refuses (nothing made) and rm -f removes.
            assert_eq!(v["State"]["Status"], "dead", "exited, {point}: {v}");
            let o = env.ocishim(&["start", &id]);
            assert_eq!(o.status.code(), Some(125), "exited, {point}: start: {o:?}");
            assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
            assert!(stderr(&o).contains("rm -f"), "{}", stderr(&o));
        }
        let o = env.ocishim(&["rm", "-f", &id]);
        assert!(o.status.success(), "exited, {point}: rm -f: {}", stderr(&o));
        assert_clean(&env, std::slice::from_ref(&id));
    }
    assert_eq!(gc(&env), Vec::<String>::new(), "nothing for gc");
    env.ok(&["rmi", "busybox"]);
}

/// What of a container exists on the host: cgroups, runtime state, monitors, addresses.
type Made = (Vec<PathBuf>, bool, Vec<i32>, Vec<(String, String)>);

fn made(env: &Env, id: &str) -> Made {
    (
        env.cgroup_dirs(id),
        env.runtime_state(id).is_some(),
        env.monitors(),
        env.addresses("bridge"),
    )
}

/// Wait (bounded) for a child this test started.
fn wait_bounded(child: &mut std::process::Child, bound: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pid {} still running after {bound:?}: killed it",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `ocishim ARGS` started with FAILPOINTS making it sleep `ms` at `point`.
fn sleeping_at(env: &Env, point: &str, ms: u32, args: &[&str]) -> std::process::Child {
    env.cmd(args)
        .env("FAILPOINTS", format!("{point}=sleep({ms})"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Poll (bounded) until `f` says yes.
fn until(what: &str, bound: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn start_of_a_create_under_way_or_abandoned_is_refused() {
    let env = Env::new();
    let rootfs = env.rootfs();
    // Abandoned (its process killed) with a record only, and with everything but the
    // record's last write: start refuses it in one line and makes nothing.
    for point in ["create::record", "create::monitor"] {
        let args = [
            "create",
            "--network",
            "bridge",
            "--rootfs",
            &rootfs,
            "sleep",
            "60",
        ];
        let o = killed_at(&env, point, &args);
        assert_killed(&o, point);
        let ids = all_ids(&env);
        assert_eq!(ids.len(), 1, "{point}: {ids:?}");
        let id = &ids[0];
        let before = made(&env, id);
        let o = env.ocishim(&["start", id]);
        assert_eq!(o.status.code(), Some(125), "{point}: {o:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{point}: {err}");
        assert!(
            err.contains("abandoned") && err.contains("rm -f"),
            "{point}: {err}"
        );
        assert_eq!(made(&env, id), before, "{point}: start made something");
        assert_eq!(env.status(id), "dead");
        env.ok(&["rm", "-f", id]);
        assert_clean(&env, &ids);
    }
    // Under way: a create sleeping at a failpoint after its record (start and rm refuse
    // it), and one sleeping between its name and its record (no listing shows it; rm
    // refuses it by name). Both finish as usual.
    let name = format!(
        "busy{}_{}",
        std::process::id(),
        &ocishim::store::new_id()[..6]
    );
    for (point, recorded) in [("create::cgroup", true), ("create::name", false)] {
        let args = [
            "create",
            "--name",
            &name,
            "--network",
            "none",
            "--rootfs",
            &rootfs,
            "sleep",
            "60",
        ];
        let mut child = sleeping_at(&env, point, 4000, &args);
        let entry = env.data_root.join("names").join(&name);
        until("the name reserved", Duration::from_secs(20), || {
            std::fs::symlink_metadata(&entry).is_ok()
        });
        let listing = || {
            env.ok(&[
                "ps",
                "--quiet",
                "--no-trunc",
                "--all",
                "--filter",
                &format!("name={name}"),
            ])
        };
        if recorded {
            until("the record written", Duration::from_secs(20), || {
                !listing().is_empty()
            });
            let id = listing();
            for cmd in [vec!["start", id.as_str()], vec!["rm", "-f", id.as_str()]] {
                let o = env.ocishim(&cmd);
                assert_eq!(o.status.code(), Some(125), "{cmd:?}: {o:?}");
                let err = stderr(&o);
                assert_eq!(err.lines().count(), 1, "{cmd:?}: {err}");
                assert!(err.contains("being created"), "{cmd:?}: {err}");
            }
        } else {
            assert_eq!(listing(), "", "a create under way is not listed");
            let o = env.ocishim(&["rm", "-f", &name]);
            assert_eq!(o.status.code(), Some(125), "{o:?}");
            assert!(stderr(&o).contains("being created"), "{}", stderr(&o));
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{point}: the create is still sleeping"
        );
        let st = wait_bounded(&mut child, Duration::from_secs(60));
        let mut out = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
        assert!(st.success(), "{point}: the create failed: {st}");
        let id = out.trim().to_string();
        assert_eq!(listing(), id);
        env.ok(&["start", &id]);
        assert_eq!(env.status(&id), "running");
        env.ok(&["rm", "-f", &name]);
        assert_clean(&env, &[id]);
    }
}

/// OpenWhisk's invoker, after killing a `docker run`, lists its containers by name prefix
/// and removes each: a create killed between its name and its record (a name, maybe a
/// directory, no record) is listed and removed by ID or by name, with nothing left and no
/// gc.
#[test]
fn the_invokers_cleanup_removes_a_create_killed_before_its_record() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let prefix = format!(
        "wsk{}_{}",
        std::process::id(),
        &ocishim::store::new_id()[..6]
    );
    let mut n = 0;
    for point in ["create::name", "create::directory"] {
        for by_name in [false, true] {
            n += 1;
            let name = format!("{prefix}_{n}");
            let args = [
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "bridge",
                "--rootfs",
                &rootfs,
                "sleep",
                "60",
            ];
            let o = killed_at(&env, point, &args);
            assert_killed(&o, point);
            assert_eq!(all_ids(&env), Vec::<String>::new(), "{point}: no record");
            let listed = env.ok(&[
                "ps",
                "--quiet",
                "--no-trunc",
                "--all",
                "--filter",
                &format!("name={prefix}_"),
            ]);
            let target = std::fs::read_link(env.data_root.join("names").join(&name)).unwrap();
            let id = target
                .to_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string();
            assert_eq!(id.len(), 64, "{target:?}");
            assert_eq!(listed, id, "{point}: the invoker's listing");
            let by = if by_name { &name } else { &id };
            let o = env.ocishim(&["rm", "-f", by]);
            assert!(o.status.success(), "{point}: rm -f {by}: {}", stderr(&o));
            assert_eq!(stdout(&o).trim(), by, "{point}");
            assert_clean(&env, std::slice::from_ref(&id));
            // Gone: a full ID is no error, a name is.
            env.ok(&["rm", "-f", &id]);
            assert_eq!(env.ocishim(&["rm", "-f", &name]).status.code(), Some(125));
        }
    }
    assert_eq!(gc(&env), Vec::<String>::new(), "nothing for gc");
}

/// A create killed between taking its address and naming its owner's link (as a
/// SIGTERM can): `rm -f` gives the address back.
#[test]
fn rm_releases_an_address_whose_allocation_was_killed_half_way() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let args = [
        "run",
        "-d",
        "--network",
        "bridge",
        "--rootfs",
        &rootfs,
        "sleep",
        "60",
    ];
    let o = killed_at(&env, "ipam::taken", &args);
    assert_killed(&o, "ipam::taken");
    let ids = all_ids(&env);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let held = env.addresses("bridge");
    assert_eq!(held.len(), 1, "the address taken: {held:?}");
    assert_eq!(held[0].1, ids[0]);
    env.ok(&["rm", "-f", &ids[0]]);
    assert_clean(&env, &ids);
}

/// The bridge's ports (veths attached to it).
fn bridge_ports(env: &Env) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(format!("/sys/class/net/{}/brif", env.bridge))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// The signals a process catches (`SigCgt` of /proc/PID/status).
fn caught_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("SigCgt:")).unwrap();
    u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).unwrap()
}

/// The invoker's timeout: `run -d` sent SIGTERM at moments spread over a run's length,
/// 30 times, then exactly the invoker's cleanup (`ps --quiet --no-trunc --all --filter
/// name=PREFIX`, `rm -f` each), no gc: nothing may be left. SIGTERM ends ocishim at once,
/// by the signal's default action (no handler: a create sleeping at a failpoint dies of
/// it at once).
#[test]
fn sigterm_during_run_then_the_invokers_cleanup_leaves_nothing() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let prefix = format!(
        "wsk{}_{}",
        std::process::id(),
        &ocishim::store::new_id()[..6]
    );
    let args = |name: &str, net: &'static str| -> Vec<String> {
        [
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "--memory",
            "64m",
            "--rootfs",
            &rootfs,
            "sleep",
            "60",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let cmd = |a: &[String]| env.cmd(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let mut seen = Vec::new();

    // No handler: a create held at a failpoint dies of SIGTERM at once.
    let a = args(&format!("{prefix}_held"), "bridge");
    let mut held = cmd(&a)
        .env("FAILPOINTS", "create::network=sleep(20000)")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until("the held create's record", Duration::from_secs(20), || {
        !all_ids(&env).is_empty()
    });
    let caught = caught_signals(held.id());
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        assert_eq!(
            caught & (1 << (sig - 1)),
            0,
            "run -d catches signal {sig}: {caught:x}"
        );
    }
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(held.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = wait_bounded(&mut held, Duration::from_secs(20));
    assert_eq!(st.signal(), Some(libc::SIGTERM), "{st}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );

    // The length of one run -d (bridge), which the kills are spread over.
    let started = Instant::now();
    let id = stdout(&cmd(&args(&format!("{prefix}_first"), "bridge")).bounded())
        .trim()
        .to_string();
    let one = started.elapsed().min(Duration::from_secs(2));
    assert_eq!(id.len(), 64, "{id:?}");
    seen.push(id);

    let mut seed = std::process::id() as u64 ^ 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut interrupted, mut finished) = (0, 0);
    let mut slowest = Duration::ZERO;
    for i in 0..30 {
        let net = if i % 2 == 0 { "bridge" } else { "none" };
        let mut child = cmd(&args(&format!("{prefix}_{i}"), net))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Over one run and a half: most kills land inside a run, some after it.
        let delay = one.mul_f64((next() % 1500) as f64 / 1000.0);
        std::thread::sleep(delay);
        let sent = Instant::now();
        // The child is not reaped yet: its PID is still its own.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let st = wait_bounded(&mut child, Duration::from_secs(60));
        match st.signal() {
            Some(libc::SIGTERM) => {
                interrupted += 1;
                slowest = slowest.max(sent.elapsed());
            }
            None if st.success() => {
                finished += 1;
                let mut out = String::new();
                std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
                seen.push(out.trim().to_string());
            }
            _ => panic!("run {i}: ended by {st}, neither finished nor by SIGTERM"),
        }
        assert!(Instant::now() < deadline, "30 runs took over 300 s");
    }
    eprintln!(
        "SIGTERM: {interrupted} runs interrupted, {finished} finished (one run -d: {one:?}); \
         slowest exit after the signal: {slowest:?}"
    );
    assert!(
        interrupted > 0,
        "no run was interrupted ({finished} finished)"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "SIGTERM took {slowest:?} to end a run"
    );

    // The invoker's cleanup, exactly.
    let listed = env.ok(&[
        "ps",
        "--quiet",
        "--no-trunc",
        "--all",
        "--filter",
        &format!("name={prefix}_"),
    ]);
    for id in listed.lines() {
        env.ok(&["rm", "-f", id]);
        seen.push(id.to_string());
    }
    seen.sort();
    seen.dedup();
    assert_clean(&env, &seen);
    let ports = bridge_ports(&env);
    assert!(ports.is_empty(), "veths left on the bridge: {ports:?}");
}
