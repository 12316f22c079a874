//! Core lifecycle against the real runtime (runc; crun with OCISHIM_TEST_RUNTIME=crun).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::{stderr, stdout, Bounded, Env};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

fn one_line_error(o: &std::process::Output) -> String {
    let err = stderr(o);
    assert_eq!(
        err.lines().count(),
        1,
        "expected one stderr line, got {err:?}"
    );
    assert!(err.starts_with("ocishim: "), "{err:?}");
    err
}

#[test]
fn run_detached_then_logs_interleaved() {
    let env = Env::new();
    // Spaced writes keep their order across the two streams in the log (within one
    // stream the order always holds; two pipes ready at once have no order between them).
    let id = env.run_d(
        &[],
        &["sh", "-c", "echo o1; sleep 0.2; echo e1 >&2; sleep 0.2; echo o2; sleep 0.2; echo e2 >&2; sleep 0.2; printf tail"],
    );
    let v = env.wait_exited(&id, WAIT);
    assert_eq!(v["State"]["ExitCode"], 0);
    let log_path = v["LogPath"].as_str().unwrap().to_string();
    let o = env.ocishim(&["logs", &id]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "o1\no2\ntail");
    assert_eq!(stderr(&o), "e1\ne2\n");
    // The raw file: docker's json-file, one object per line, in the order written.
    let text = std::fs::read_to_string(&log_path).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap().into(),
                e["log"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("stdout", "o1\n"),
        ("stderr", "e1\n"),
        ("stdout", "o2\n"),
        ("stderr", "e2\n"),
        ("stdout", "tail"),
    ];
    assert_eq!(
        got,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    for e in &entries {
        let t = e["time"].as_str().unwrap();
        assert_eq!(t.len(), 30, "RFC3339 with 9 fractional digits: {t}");
        assert!(t.ends_with('Z'));
    }
    env.ok(&["rm", &id]);
    env.assert_gone(&id, &[]);
}

#[test]
fn attached_run_returns_the_containers_exit_code() {
    let env = Env::new();
    let r = env.rootfs();
    let o = env.ocishim(&[
        "run",
        "--name",
        "first",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    let v = env.inspect("first");
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["State"]["Status"], "exited");
    env.ok(&["rm", "first"]);
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "sh -c 'kill -9 $$'; exit $?",
    ]);
    assert_eq!(o.status.code(), Some(137));
    // --log-driver none: output still reaches an attached caller, no log file.
    let o = env.ocishim(&[
        "run",
        "--log-driver",
        "none",
        "--name",
        "nolog",
        "--rootfs",
        &r,
        "echo",
        "direct",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "direct\n");
    let v = env.inspect("nolog");
    assert_eq!(v["LogPath"], "");
    let o = env.ocishim(&["logs", "nolog"]);
    assert_eq!(o.status.code(), Some(125));
    one_line_error(&o);
    env.ok(&["rm", "nolog"]);
    env.assert_empty();
}

#[test]
fn pause_resume_through_the_runtime() {
    let env = Env::new();
    let id = env.run_d(&[], &["sleep", "1000"]);
    assert_eq!(env.runtime_state(&id).unwrap()["status"], "running");
    env.ok(&["pause", &id[..12]]);
    assert_eq!(env.runtime_state(&id).unwrap()["status"], "paused");
    let v = env.inspect(&id);
    assert_eq!(v["State"]["Paused"], true);
    assert_eq!(v["State"]["Status"], "paused");
    env.ok(&["resume", &id]);
    assert_eq!(env.runtime_state(&id).unwrap()["status"], "running");
    env.ok(&["pause", &id]);
    env.ok(&["unpause", &id]);
    let v = env.inspect(&id);
    assert_eq!(v["State"]["Paused"], false);
    assert_eq!(v["State"]["Running"], true);
    // resume of a running container is an error
    let o = env.ocishim(&["resume", &id]);
    assert_eq!(o.status.code(), Some(125));
    one_line_error(&o);
    // Paused is the freezer's truth: a pause made with the runtime by hand shows, and
    // ocishim resumes it.
    let rt = |op: &str| {
        let st = std::process::Command::new(&env.runtime)
            .arg("--root")
            .arg(&env.runtime_root)
            .args([op, id.as_str()])
            .bounded_status();
        assert!(st.success(), "{} {op}", env.runtime);
    };
    rt("pause");
    assert!(env.ok(&["ps"]).contains("(Paused)"));
    assert_eq!(env.inspect(&id)["State"]["Paused"], true);
    // ... and pause of a paused container is an error
    let o = env.ocishim(&["pause", &id]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("is already paused"), "{}", stderr(&o));
    one_line_error(&o);
    env.ok(&["resume", &id]);
    assert_eq!(env.runtime_state(&id).unwrap()["status"], "running");
    assert!(!env.ok(&["ps"]).contains("(Paused)"));
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[]);
    // pause, resume and kill of an exited container: not running, 125
    let done = env.run_d(&[], &["true"]);
    env.wait_exited(&done, Duration::from_secs(10));
    for op in [&["pause", &done][..], &["resume", &done], &["kill", &done]] {
        let o = env.ocishim(op);
        assert_eq!(o.status.code(), Some(125), "{op:?}");
        assert!(
            stderr(&o).contains("is not running"),
            "{op:?}: {}",
            stderr(&o)
        );
        one_line_error(&o);
    }
    env.ok(&["rm", &done]);
}

/// A runtime that logs its arguments to `log`, one call a line, and then is `real`.
fn logging_runtime(env: &Env, real: &str, log: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let real = ocishim::runtime::which(real).expect("the runtime");
    let path = env.base.join("logged-runtime");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn rm_f_of_running_and_paused_leaves_nothing() {
    let mut env = Env::new();
    // rm -f signals the init itself (a pidfd, once the monitor is seen to be its parent):
    // the runtime is not asked to kill.
    let calls = env.base.join("calls");
    env.runtime = logging_runtime(&env, &env.runtime, &calls);
    let a = env.run_d(&[], &["sleep", "1000"]);
    let b = env.run_d(&[], &["sh", "-c", "sleep 1000 & sleep 1000"]);
    env.ok(&["pause", &b]);
    let pids = |id: &str| {
        let v = env.inspect(id);
        vec![
            v["State"]["Pid"].as_i64().unwrap(),
            v["Ocishim"]["MonitorPid"].as_i64().unwrap(),
        ]
    };
    let (pa, pb) = (pids(&a), pids(&b));
    assert!(pa.iter().chain(&pb).all(|p| *p > 0));
    assert!(
        !env.cgroup_dirs(&a).is_empty(),
        "the container has cgroups while running"
    );
    // rm without -f refuses a running container
    let o = env.ocishim(&["rm", &a]);
    assert_eq!(o.status.code(), Some(125));
    assert!(one_line_error(&o).contains("force"));
    env.ok(&["rm", "-f", &a]);
    env.ok(&["rm", "-f", &b]);
    env.assert_gone(&a, &pa);
    env.assert_gone(&b, &pb);
    env.assert_empty();
    let log = std::fs::read_to_string(&calls).unwrap();
    assert!(log.lines().any(|l| l.contains(" pause ")), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.split_whitespace().any(|w| w == "kill")),
        "{log}"
    );
}

#[test]
fn missing_command_is_127() {
    let env = Env::new();
    let r = env.rootfs();
    let o = env.ocishim(&["run", "-d", "--rootfs", &r, "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let err = one_line_error(&o);
    assert!(err.contains("nosuchcommand"), "{err}");
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "the ID is printed so a scheduler can rm it");
    let v = env.inspect(&id);
    assert_eq!(v["State"]["ExitCode"], 127);
    assert!(v["State"]["Error"]
        .as_str()
        .unwrap()
        .contains("nosuchcommand"));
    assert_eq!(v["State"]["Running"], false);
    // rolled back: no runtime state, no cgroup, no bundle
    assert!(env.runtime_state(&id).is_none());
    assert!(env.cgroup_dirs(&id).is_empty());
    assert!(!env.root.join("containers").join(&id).exists());
    assert!(
        common::processes_mentioning(&id).is_empty(),
        "no monitor is left"
    );
    // attached run: the same status
    let o = env.ocishim(&["run", "--rm", "--rootfs", &r, "/bin/nosuch"]);
    assert_eq!(o.status.code(), Some(127));
    env.ok(&["rm", &id]);
    env.assert_gone(&id, &[]);
    env.assert_empty();
}

#[test]
fn non_executable_is_126() {
    let env = Env::new();
    let r = env.rootfs();
    let o = env.ocishim(&["run", "-d", "--rootfs", &r, "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    one_line_error(&o);
    let id = stdout(&o).trim().to_string();
    assert_eq!(env.inspect(&id)["State"]["ExitCode"], 126);
    env.ok(&["rm", &id]);
    // A directory as the command: runc says "permission denied" (126 as docker);
    // crun says "Operation not permitted", which docker maps to 125 / State 128.
    let (cli, state) = if env.runtime == "crun" {
        (125, 128)
    } else {
        (126, 126)
    };
    let o = env.ocishim(&["run", "-d", "--rootfs", &r, "/etc"]);
    assert_eq!(o.status.code(), Some(cli), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(env.inspect(&id)["State"]["ExitCode"], state);
    env.ok(&["rm", &id]);
    env.assert_empty();
}

#[test]
fn file_onto_directory_is_125_with_state_127_and_hint() {
    let env = Env::new();
    let r = env.rootfs();
    let file = env.base.join("afile");
    std::fs::write(&file, "x").unwrap();
    let vol = format!("{}:/etc", file.display());
    let o = env.ocishim(&["run", "-d", "-v", &vol, "--rootfs", &r, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = one_line_error(&o);
    assert!(
        err.contains("Are you trying to mount a directory onto a file (or vice-versa)?"),
        "{err}"
    );
    let id = stdout(&o).trim().to_string();
    let v = env.inspect(&id);
    assert_eq!(v["State"]["ExitCode"], 127);
    assert!(v["State"]["Error"]
        .as_str()
        .unwrap()
        .contains("Check if the specified host path exists"));
    assert!(env.runtime_state(&id).is_none());
    assert!(env.cgroup_dirs(&id).is_empty());
    env.ok(&["rm", &id]);
    env.assert_empty();
}

#[test]
fn bad_flag_values_create_nothing() {
    let env = Env::new();
    let r = env.rootfs();
    let cases: &[&[&str]] = &[
        &["--memory", "12q"],
        &["--name", "../x"],
        &["--cpus", "-1"],
        &["--memory-swap", "1g"],
        &["--cpu-shares", "many"],
        &["--ulimit", "nofile=2:1"],
        &["--cap-add", "CAP_NOPE"],
        &["--network", "nosuchnet"],
        &["--add-host", "x"],
        &["--network", "container:nosuchcontainer"],
        &["--dns", "notanip"],
        &["-v", "relative:/x"],
        &["-v", "/nonexistent-ocishim-src:/x"],
        &["--device", "/dev/nonexistent-ocishim"],
        &["-u", "nosuchuser"],
        &["--log-driver", "syslog"],
        &["--oom-score-adj", "5000"],
        &["--no-such-flag"],
    ];
    for case in cases {
        for mode in [&["run", "-d"][..], &["create"][..]] {
            let mut args: Vec<&str> = mode.to_vec();
            args.extend_from_slice(case);
            args.extend_from_slice(&["--rootfs", &r, "true"]);
            let o = env.ocishim(&args);
            assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
            one_line_error(&o);
            assert!(stdout(&o).is_empty(), "{args:?} printed {:?}", stdout(&o));
        }
    }
    let o = env.ocishim(&["run", "-d", "--rootfs", "/nonexistent-rootfs", "true"]);
    assert_eq!(o.status.code(), Some(125));
    one_line_error(&o);
    // An image the store lacks (not pulled: tests reach only their own loopback registry).
    let o = env.ocishim(&["run", "-d", "--pull", "never", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    one_line_error(&o);
    env.assert_empty();
    let names: Vec<_> = std::fs::read_dir(env.data_root.join("names"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "names left: {names:?}");
}

#[test]
fn twenty_parallel_runs() {
    let env = Env::new();
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|i| {
                let env = &env;
                s.spawn(move || env.run_d(&["--name", &format!("par{i}")], &["sleep", "1000"]))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), 20);
    for id in &ids {
        assert_eq!(env.runtime_state(id).unwrap()["status"], "running");
    }
    let listed = env.ok(&["ps", "-q", "--no-trunc"]);
    assert_eq!(listed.lines().count(), 20);
    let listed = env.ok(&["ps", "-q", "--filter", "name=par1"]);
    assert_eq!(
        listed.lines().count(),
        11,
        "unanchored regex: par1, par10..par19"
    );
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    env.ok(&args);
    for id in &ids {
        env.assert_gone(id, &[]);
    }
    env.assert_empty();
}

#[test]
fn fifty_thousand_lines_written_at_exit_are_all_logged() {
    let env = Env::new();
    let id = env.run_d(&[], &["seq", "1", "50000"]);
    let v = env.wait_exited(&id, Duration::from_secs(60));
    assert_eq!(v["State"]["ExitCode"], 0);
    let o = env.ocishim(&["logs", &id]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 50000);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, (i + 1).to_string());
    }
    // A long line is split at 16 KiB, and a final line without newline is kept.
    let id2 = env.run_d(
        &[],
        &[
            "sh",
            "-c",
            "head -c 40000 /dev/zero | tr '\\0' x; echo; printf end",
        ],
    );
    env.wait_exited(&id2, WAIT);
    let text = std::fs::read_to_string(env.inspect(&id2)["LogPath"].as_str().unwrap()).unwrap();
    let logs: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["log"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let lens: Vec<usize> = logs.iter().map(String::len).collect();
    assert_eq!(lens, [16384, 16384, 40000 - 32768 + 1, 3]);
    assert_eq!(logs[3], "end");
    env.ok(&["rm", &id, &id2]);
    env.assert_empty();
}

#[test]
fn create_then_start_and_restart() {
    let env = Env::new();
    let r = env.rootfs();
    let id = env.ok(&[
        "create",
        "--name",
        "later",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo ran; sleep 1000",
    ]);
    assert_eq!(env.status(&id), "created");
    assert_eq!(env.runtime_state(&id).unwrap()["status"], "created");
    env.ok(&["start", "later"]);
    assert_eq!(env.status(&id), "running");
    // sh as the namespace's init ignores TERM without a handler: KILL from outside ends it.
    env.ok(&["kill", "-s", "TERM", "later"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(env.status(&id), "running");
    env.ok(&["kill", "-s", "SIGKILL", "later"]);
    let v = env.wait_exited(&id, WAIT);
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["State"]["OOMKilled"], false);
    assert_eq!(stdout(&env.ocishim(&["logs", "later"])), "ran\n");
    assert!(
        env.runtime_state(&id).is_none(),
        "the monitor deletes the runtime state on exit"
    );
    // docker start of an exited container runs it again
    env.ok(&["start", &id]);
    assert_eq!(env.status(&id), "running");
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[]);
}

/// The data root holds only what must survive a reboot: the record, the log and the
/// monitor's reserve (and the name). The /etc files are beside the bundle under --root,
/// where the record says, and every start writes them again (a reboot empties --root).
#[test]
fn the_etc_files_live_under_root_and_each_start_writes_them() {
    let env = Env::new();
    let id = env.run_d(&["--hostname", "etc-here"], &["sleep", "1000"]);
    let v = env.inspect(&id);
    let bundle = env.root.join("containers").join(&id);
    for (key, file) in [
        ("HostsPath", "hosts"),
        ("ResolvConfPath", "resolv.conf"),
        ("HostnamePath", "hostname"),
    ] {
        let p = bundle.join(file);
        assert_eq!(v[key].as_str(), Some(p.to_str().unwrap()), "{key}");
        assert!(p.is_file(), "{}", p.display());
    }
    let log = format!("{id}-json.log");
    let allowed = ["config.v2.json", log.as_str(), "monitor.reserve"];
    let on_disk: Vec<String> = std::fs::read_dir(env.data_root.join("containers").join(&id))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        on_disk.iter().all(|f| allowed.contains(&f.as_str())),
        "on the data root: {on_disk:?}"
    );
    assert!(on_disk.iter().any(|f| f == "config.v2.json") && on_disk.contains(&log));
    // As after a reboot: the container gone, --root's files with it; start writes them.
    env.ok(&["kill", &id]);
    env.wait_exited(&id, WAIT);
    for file in ["hosts", "resolv.conf", "hostname"] {
        std::fs::remove_file(bundle.join(file)).unwrap();
    }
    env.ok(&["start", &id]);
    assert_eq!(env.status(&id), "running");
    assert_eq!(
        std::fs::read_to_string(bundle.join("hostname")).unwrap(),
        "etc-here\n"
    );
    assert!(bundle.join("hosts").is_file() && bundle.join("resolv.conf").is_file());
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[]);
    assert!(!bundle.exists(), "the /etc files go with rm");
}

#[test]
fn names_prefixes_and_missing_containers() {
    let env = Env::new();
    let id = env.run_d(&["--name", "web.1"], &["sleep", "1000"]);
    let o = env.ocishim(&[
        "run",
        "-d",
        "--name",
        "web.1",
        "--rootfs",
        &env.rootfs(),
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(one_line_error(&o).contains("already in use"));
    // The monitor started for the refused run has exited with it: only web.1's is left.
    // (web.1's is found by its argv, which it has once it has exec'd the monitor: that
    // may still be under way after `run -d` returned, so the count is waited for.)
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while env.monitors().len() != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(env.monitors().len(), 1, "monitors: {:?}", env.monitors());
    assert_eq!(env.inspect("web.1")["Id"], id.as_str());
    assert_eq!(env.inspect(&id[..6])["Name"], "/web.1");
    let missing = "0".repeat(64);
    let o = env.ocishim(&["rm", "-f", &missing]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "rm of a missing full ID is quiet: {}",
        stderr(&o)
    );
    assert!(stderr(&o).is_empty());
    let o = env.ocishim(&["rm", "-f", "nosuchname"]);
    assert_eq!(o.status.code(), Some(125));
    one_line_error(&o);
    let o = env.ocishim(&["inspect", "nosuchname"]);
    assert_eq!(o.status.code(), Some(125));
    env.ok(&["rm", "-f", "web.1"]);
    env.assert_gone(&id, &[]);
}

#[test]
fn auto_remove_detached() {
    let env = Env::new();
    let id = env.run_d(&["--rm"], &["true"]);
    for _ in 0..500 {
        if !env.data_root.join("containers").join(&id).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    env.assert_gone(&id, &[]);
}

#[test]
fn killed_monitor_leaves_the_container_running() {
    let env = Env::new();
    let id = env.run_d(&[], &["sleep", "1000"]);
    let v = env.inspect(&id);
    let mpid = v["Ocishim"]["MonitorPid"].as_i64().unwrap() as i32;
    let pid = v["State"]["Pid"].as_i64().unwrap();
    assert!(mpid > 0);
    // A PID this test's container run started (recorded by ocishim).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mpid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for _ in 0..250 {
        if !Path::new(&format!("/proc/{mpid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(env.runtime_state(&id).unwrap()["status"], "running");
    let v = env.inspect(&id);
    assert_eq!(v["Ocishim"]["MonitorGone"], true);
    assert_eq!(v["State"]["Running"], true);
    env.ok(&["pause", &id]);
    assert_eq!(env.runtime_state(&id).unwrap()["status"], "paused");
    env.ok(&["resume", &id]);
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[pid, mpid as i64]);
}

#[test]
fn options_reach_the_container() {
    let env = Env::new();
    let r = env.rootfs();
    let o = env.ocishim(&[
        "run", "--rm", "--rootfs", &r, "-e", "GREETING=hi", "-w", "/tmp", "-u", "user",
        "--hostname", "box", "--dns", "10.9.8.7", "--dns-search", "corp.example",
        "--read-only", "sh", "-c",
        "echo $GREETING; pwd; id -u; id -G; hostname; cat /etc/hostname; grep nameserver /etc/resolv.conf; grep search /etc/resolv.conf; touch /x 2>/dev/null || echo ro",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "hi\n/tmp\n1000\n1000 10\nbox\nbox\nnameserver 10.9.8.7\nsearch corp.example\nro\n"
    );
    // default hostname: the first 12 characters of the ID
    let id = env.run_d(
        &[],
        &["sh", "-c", "hostname; cat /proc/self/status | grep CapEff"],
    );
    env.wait_exited(&id, WAIT);
    let out = stdout(&env.ocishim(&["logs", &id]));
    assert!(out.starts_with(&format!("{}\n", &id[..12])), "{out}");
    assert!(
        out.contains("CapEff:\t00000000a80425fb"),
        "docker's default capabilities: {out}"
    );
    env.ok(&["rm", &id]);
    env.assert_empty();
}

#[test]
fn generated_specs_validate_against_the_schema() {
    let env = Env::new();
    let r = env.rootfs();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oci-runtime-schema");
    assert!(
        schema.join("config-schema.json").exists(),
        "the OCI schema is missing at {}",
        schema.display()
    );
    let combos: &[&[&str]] = &[
        &[],
        &["--memory", "64m"],
        &[
            "--memory",
            "64m",
            "--memory-swap",
            "-1",
            "--memory-reservation",
            "32m",
        ],
        &["--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0"],
        &[
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
            "--pids-limit",
            "64",
        ],
        &["--privileged"],
        &[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "no-new-privileges",
        ],
        &[
            "--read-only",
            "--tmpfs",
            "/run:size=1m",
            "-v",
            "/tmp:/hosttmp:ro",
        ],
        &["--device", "/dev/null:/dev/mynull:rw"],
        &[
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "nproc=100",
            "--oom-score-adj",
            "-500",
        ],
        &[
            "--network",
            "host",
            "-u",
            "user",
            "-w",
            "/tmp",
            "-e",
            "A=B",
            "--label",
            "x=y",
        ],
        &[
            "--dns",
            "1.1.1.1",
            "--dns-search",
            "a.b",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db:10.0.0.9",
        ],
    ];
    // A seccomp profile with args, errnoRet, an arch map and caps conditions.
    let profile = env.base.join("seccomp.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
              {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
              {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
               "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}"#,
    )
    .unwrap();
    let seccomp = format!("seccomp={}", profile.display());
    let with_profile: &[&str] = &["--security-opt", &seccomp];
    let mut files = Vec::new();
    for (i, c) in combos.iter().chain([&with_profile]).enumerate() {
        let mut args = vec!["spec", "--rootfs", &r];
        args.extend_from_slice(c);
        args.push("true");
        let out = env.ok(&args);
        let f = env.base.join(format!("spec{i}.json"));
        std::fs::write(&f, out).unwrap();
        files.push(f);
    }
    let o = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-spec.py"))
        .arg(&schema)
        .args(&files)
        .bounded();
    assert!(
        o.status.success(),
        "schema validation failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    // The validator does catch a broken spec.
    let broken = env.base.join("broken.json");
    std::fs::write(&broken, r#"{"ociVersion": 1, "process": {"cwd": 5}}"#).unwrap();
    let o = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-spec.py"))
        .arg(&schema)
        .arg(&broken)
        .bounded();
    assert!(!o.status.success());
    env.assert_empty();
}

#[test]
fn logs_follow_until_exit() {
    let env = Env::new();
    let id = env.run_d(
        &[],
        &[
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 0.2; done",
        ],
    );
    let start = std::time::Instant::now();
    let o = env.ocishim(&["logs", "-f", &id]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "line1\nline2\nline3\n");
    assert!(start.elapsed() < WAIT);
    assert_eq!(env.status(&id), "exited");
    // ps -a shows it exited, ps hides it
    assert!(env
        .ok(&["ps", "-a", "--format", "json"])
        .contains("\"State\":\"exited\""));
    assert_eq!(env.ok(&["ps", "-q"]), "");
    env.ok(&["rm", &id]);
    env.assert_gone(&id, &[]);
}

/// The bounding set of this process with two capabilities less (CAP_SYS_MODULE 16,
/// CAP_SYS_BOOT 22): what a host that dropped them would hand ocishim. (This machine's own
/// set already lacks CAP_SYS_RESOURCE; dropping that one in the v2 guest would stop crun,
/// which raises RLIMIT_MEMLOCK to load its device-cgroup BPF program.)
fn reduced_bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    bnd & !(1 << 16) & !(1 << 22)
}

#[test]
fn privileged_and_cap_add_all_mean_the_callers_bounding_set() {
    let env = Env::new();
    let want = reduced_bounding_set();
    for opts in [&["--privileged"][..], &["--cap-add", "ALL"][..]] {
        let mut args = vec!["run", "--rm", "--network", "none", "--rootfs"];
        let rootfs = env.rootfs();
        args.push(&rootfs);
        args.extend_from_slice(opts);
        args.extend_from_slice(&[
            "grep",
            "-E",
            "^(Cap(Eff|Bnd)|Seccomp):",
            "/proc/self/status",
        ]);
        let inner = env.cmd(&args);
        // setpriv (util-linux) drops the two from the bounding set of ocishim's process.
        let o = std::process::Command::new("setpriv")
            .args(["--bounding-set", "-sys_module,-sys_boot", "--"])
            .arg(inner.get_program())
            .args(inner.get_args())
            .stdin(std::process::Stdio::null())
            .bounded();
        assert!(o.status.success(), "{opts:?}: {}", stderr(&o));
        let out = stdout(&o);
        for set in ["CapEff", "CapBnd"] {
            let got = out
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{set}:")))
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
                .unwrap_or_else(|| panic!("{opts:?}: no {set} in {out:?}"));
            assert_eq!(got, want, "{opts:?}: {set} {got:x}, want {want:x}");
        }
        // --privileged runs unconfined; ALL alone keeps docker's profile (evaluated with
        // every capability: nearly everything allowed, but filtered).
        let mode = if opts[0] == "--privileged" { "0" } else { "2" };
        assert!(
            out.contains(&format!("Seccomp:\t{mode}")),
            "{opts:?}: {out}"
        );
    }
    env.assert_empty();
}

/// Privileged: /sys read-write, no read-only /proc/sys, no masked /proc files (/proc/timer_list), the host's
/// devices; a default container has none of that.
#[test]
fn privileged_gets_host_devices_and_no_read_only_or_masked_paths() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let probe = "grep -E ' /(sys|proc/sys|proc/timer_list) ' /proc/mounts; \
                 test -c /dev/kmsg && echo kmsg; true";
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none", "--rootfs", &rootfs];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["sh", "-c", probe]);
        let o = env.ocishim(&a);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        stdout(&o)
    };
    let mount_opts = |out: &str, at: &str| -> Option<String> {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(at))
            .map(|l| l.split_whitespace().nth(3).unwrap_or("").to_string())
    };
    let rw = |o: &Option<String>| {
        o.as_deref()
            .is_some_and(|o| o.split(',').any(|x| x == "rw"))
    };
    let default = run(&[]);
    assert!(!rw(&mount_opts(&default, "/sys")), "{default}");
    assert!(!rw(&mount_opts(&default, "/proc/sys")), "{default}");
    assert!(
        mount_opts(&default, "/proc/timer_list").is_some(),
        "{default}"
    );
    assert!(!default.contains("kmsg"), "{default}");
    let privileged = run(&["--privileged"]);
    assert!(rw(&mount_opts(&privileged, "/sys")), "{privileged}");
    assert_eq!(mount_opts(&privileged, "/proc/sys"), None, "{privileged}");
    assert_eq!(
        mount_opts(&privileged, "/proc/timer_list"),
        None,
        "{privileged}"
    );
    assert!(privileged.contains("kmsg"), "{privileged}");
    env.assert_empty();
}

#[test]
fn seccomp_profiles_from_a_file_unconfined_and_refused() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let dir = tempfile::tempdir().unwrap();
    // Everything allowed but unshare (EPERM) and, without CAP_SYS_ADMIN, sethostname.
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{
          "defaultAction": "SCMP_ACT_ALLOW",
          "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
          "syscalls": [
            {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
          ]
        }"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let run = |extra: &[&str], cmd: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none", "--rootfs", &rootfs];
        a.extend_from_slice(extra);
        a.extend_from_slice(cmd);
        env.ocishim(&a)
    };
    let status = ["grep", "^Seccomp:", "/proc/self/status"];
    // Filtered: mode 2, unshare refused.
    let o = run(&["--security-opt", &opt], &status);
    assert_eq!(
        stdout(&o).split_whitespace().nth(1),
        Some("2"),
        "{}",
        stderr(&o)
    );
    let o = run(
        &["--security-opt", &opt, "--cap-add", "SYS_ADMIN"],
        &["unshare", "-U", "true"],
    );
    assert_ne!(o.status.code(), Some(0), "unshare was allowed");
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // (/tmp a tmpfs: nothing is written to the shared rootfs fixture)
    let o = run(
        &["--security-opt", &opt, "--tmpfs", "/tmp"],
        &["mkdir", "/tmp/x"],
    );
    assert_ne!(o.status.code(), Some(0), "mkdir was allowed");
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--tmpfs", "/tmp"], &["mkdir", "/tmp/x"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The caps condition: with CAP_SYS_ADMIN sethostname is not filtered.
    let o = run(
        &["--security-opt", &opt, "--cap-add", "SYS_ADMIN"],
        &["hostname", "x"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["--security-opt", &opt], &["hostname", "x"]);
    assert_ne!(o.status.code(), Some(0));
    // By default docker's profile: filtered, and user namespaces refused (unshare is in its
    // CAP_SYS_ADMIN group); with CAP_SYS_ADMIN the group is allowed.
    let o = run(&[], &status);
    assert_eq!(
        stdout(&o).split_whitespace().nth(1),
        Some("2"),
        "{}",
        stderr(&o)
    );
    let o = run(&[], &["unshare", "-U", "true"]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "unshare -U was allowed by default"
    );
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // With CAP_SYS_ADMIN the group is allowed: a mount namespace, and a user namespace
    // where the kernel allows one at all (not in a chroot: the kernel refuses
    // CLONE_NEWUSER there whatever the filter; neither CI stage is one).
    let o = run(&["--cap-add", "SYS_ADMIN"], &["unshare", "-m", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let userns = !in_a_chroot();
    if userns {
        let o = run(&["--cap-add", "SYS_ADMIN"], &["unshare", "-U", "true"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    } else {
        eprintln!("in a chroot: unshare -U cannot succeed here; its refusals are still checked");
    }
    // Ordinary work is unaffected by the default profile.
    let o = run(
        &["--tmpfs", "/tmp"],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/tmp/f bs=64k count=16 2>/dev/null && sleep 0.1 && wc -c < /tmp/f",
        ],
    );
    assert_eq!(stdout(&o).trim(), "1048576", "{}", stderr(&o));
    // Unconfined: user namespaces as the kernel allows them.
    if userns {
        let o = run(
            &["--security-opt", "seccomp=unconfined"],
            &["unshare", "-U", "true"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    // Unconfined and privileged: no filter.
    for extra in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged", "--security-opt", &opt],
    ] {
        let o = run(extra, &status);
        assert_eq!(stdout(&o).split_whitespace().nth(1), Some("0"), "{extra:?}");
    }
    // Missing, malformed, an unknown action: 125, one line naming the file, nothing made.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_PERHAPS"}"#).unwrap();
    let torn = dir.path().join("torn.json");
    std::fs::write(
        &torn,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"#,
    )
    .unwrap();
    let rule = |name: &str, r: &str| {
        let f = dir.path().join(name);
        let text = format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{r}]}}"#);
        std::fs::write(&f, text).unwrap();
        f
    };
    let unknown_action = rule(
        "action.json",
        r#"{"names": ["mkdir"], "action": "SCMP_ACT_MAYBE"}"#,
    );
    let unknown_op = rule(
        "op.json",
        r#"{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}"#,
    );
    let not_utf8 = dir.path().join("latin1.json");
    std::fs::write(&not_utf8, b"{\"defaultAction\": \"SCMP_ACT_ALLOW\xe9\"}").unwrap();
    let a_dir = dir.path().join("profile.d");
    std::fs::create_dir(&a_dir).unwrap();
    for (file, why) in [
        (dir.path().join("missing.json"), "No such file"),
        (bad, "unknown variant"),
        (torn, "EOF"),
        (unknown_action, "SCMP_ACT_MAYBE"),
        (unknown_op, "SCMP_CMP_ALMOST"),
        (not_utf8, "UTF-8"),
        (a_dir, "not a regular file"),
    ] {
        let opt = format!("seccomp={}", file.display());
        let o = run(&["-d", "--security-opt", &opt], &["true"]);
        assert_eq!(o.status.code(), Some(125));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains(why),
            "{err}"
        );
        assert!(stdout(&o).is_empty());
    }
    env.assert_empty();
}

/// A profile or label asked for is a one-line 125 naming the LSM, with nothing made: on a
/// host without the LSM (this one) saying so, on one with it (the v2 guest's Debian kernel
/// has AppArmor) saying that ocishim applies none; the no-op values run.
#[test]
fn apparmor_and_selinux_profiles_and_labels_are_refused() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let why = |present: bool, lsm: &str| {
        if present {
            format!("ocishim applies no {lsm} profile")
        } else {
            format!("this host has no {lsm}")
        }
    };
    let (aa, se) = (why(apparmor, "AppArmor"), why(selinux, "SELinux"));
    let run = |opt: &str| {
        env.ocishim(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            opt,
            "--rootfs",
            &rootfs,
            "true",
        ])
    };
    for (opt, lsm) in [
        ("apparmor=docker-default", aa.as_str()),
        ("apparmor:my-profile", &aa),
        ("label=type:svirt_apache_t", &se),
        ("label=level:s0:c100,c200", &se),
        ("seccomp", "unknown option"),
    ] {
        let o = run(opt);
        assert_eq!(o.status.code(), Some(125), "{opt}");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(opt) && err.contains(lsm), "{opt}: {err}");
        assert!(stdout(&o).is_empty());
    }
    for opt in ["apparmor=unconfined", "label=disable", "label:disable"] {
        let o = run(opt);
        assert_eq!(o.status.code(), Some(0), "{opt}: {}", stderr(&o));
    }
    env.assert_empty();
}

/// Whether this process runs in a chroot: its root is not init's (where init's root can be
/// read at all: a sandbox that hides it is taken as no chroot).
fn in_a_chroot() -> bool {
    use std::os::unix::fs::MetadataExt;
    let here = std::fs::metadata("/").unwrap();
    match std::fs::metadata("/proc/1/root/") {
        Ok(init) => (here.dev(), here.ino()) != (init.dev(), init.ino()),
        Err(_) => false,
    }
}
