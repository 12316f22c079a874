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

/// Every failpoint of rm -f (its own, then teardown's).
const RM_POINTS: &[&str] = &[
    "rm::killed",
    "rm::runtime_deleted",
    "teardown::cgroup",
    "teardown::network",
    "teardown::rootfs_and_range",
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
/// namespaces, veths, addresses, id ranges.
fn assert_clean(env: &Env, ids: &[String]) {
    for id in ids {
        env.assert_gone(id, &[]);
    }
    env.assert_empty();
    let names: Vec<_> = std::fs::read_dir(env.data_root.join("names"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "names left: {names:?}");
    let ns: Vec<_> = std::fs::read_dir(env.root.join("netns"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(ns.is_empty(), "namespaces left: {ns:?}");
    let held = env.addresses("bridge");
    assert!(held.is_empty(), "addresses left: {held:?}");
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
    for point in RM_POINTS {
        let id = env.ok(&["run", "-d", "--network", "bridge", "busybox", "sleep", "60"]);
        let o = killed_at(&env, point, &["rm", "-f", &id]);
        assert_killed(&o, point);
        let again = env.ocishim(&["rm", "-f", &id]);
        assert!(
            again.status.success(),
            "{point}: rm -f again: {}",
            stderr(&again)
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
        if child.kill().is_ok() {
            killed += 1;
        }
        let _ = child.wait();
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
