//! cgroups owned by ocishim, on whichever version this machine runs (v1 on the host, v2 in
//! scripts/vm-test's guest): every limit read back from the kernel, OOM kills, update,
//! stats, and removal.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{stderr, stdout, Env};
use ocishim::cgroup::{detect, Version};

fn version() -> Version {
    detect(Path::new("/sys/fs/cgroup"))
}

/// The kernel file `file` of the container's cgroup.
fn kernel(env: &Env, id: &str, controller: &str, file: &str) -> String {
    let dir: PathBuf = match version() {
        Version::V2 => PathBuf::from("/sys/fs/cgroup"),
        Version::V1 => PathBuf::from("/sys/fs/cgroup").join(controller),
    };
    let p = dir.join(&env.cgroup_parent).join(id).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn every_limit_reaches_the_kernel() {
    let env = Env::new();
    let m = 64u64 << 20;
    let id = env.run_d(
        &[
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--memory-reservation",
            "32m",
            "--cpu-shares",
            "512",
            "--cpus",
            "0.5",
            "--cpuset-cpus",
            "0",
            "--cpuset-mems",
            "0",
            "--pids-limit",
            "50",
        ],
        &["sleep", "1000"],
    );
    match version() {
        Version::V1 => {
            assert_eq!(
                kernel(&env, &id, "memory", "memory.limit_in_bytes"),
                m.to_string()
            );
            assert_eq!(
                kernel(&env, &id, "memory", "memory.memsw.limit_in_bytes"),
                (2 * m).to_string()
            );
            assert_eq!(
                kernel(&env, &id, "memory", "memory.soft_limit_in_bytes"),
                (m / 2).to_string()
            );
            assert_eq!(kernel(&env, &id, "cpu", "cpu.shares"), "512");
            assert_eq!(kernel(&env, &id, "cpu", "cpu.cfs_quota_us"), "50000");
            assert_eq!(kernel(&env, &id, "cpu", "cpu.cfs_period_us"), "100000");
        }
        Version::V2 => {
            assert_eq!(kernel(&env, &id, "memory", "memory.max"), m.to_string());
            assert_eq!(
                kernel(&env, &id, "memory", "memory.swap.max"),
                m.to_string()
            );
            assert_eq!(
                kernel(&env, &id, "memory", "memory.low"),
                (m / 2).to_string()
            );
            assert_eq!(kernel(&env, &id, "cpu", "cpu.weight"), "20");
            assert_eq!(kernel(&env, &id, "cpu", "cpu.max"), "50000 100000");
        }
    }
    assert_eq!(kernel(&env, &id, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(kernel(&env, &id, "cpuset", "cpuset.mems"), "0");
    assert_eq!(kernel(&env, &id, "pids", "pids.max"), "50");
    // The spec in the bundle says the same (self-describing).
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.root.join("containers").join(&id).join("config.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(spec["linux"]["resources"]["memory"]["limit"], m);
    assert_eq!(
        spec["linux"]["cgroupsPath"],
        format!("/{}/{id}", env.cgroup_parent)
    );

    // --memory-swap equal to --memory: no swap; -1: unlimited; --cpu-quota/--cpu-period.
    let id2 = env.run_d(
        &[
            "--memory",
            "32m",
            "--memory-swap",
            "32m",
            "--cpu-quota",
            "20000",
            "--cpu-period",
            "50000",
        ],
        &["sleep", "1000"],
    );
    let id3 = env.run_d(
        &["--memory", "32m", "--memory-swap", "-1"],
        &["sleep", "1000"],
    );
    match version() {
        Version::V1 => {
            assert_eq!(
                kernel(&env, &id2, "memory", "memory.memsw.limit_in_bytes"),
                (32u64 << 20).to_string()
            );
            assert_eq!(kernel(&env, &id2, "cpu", "cpu.cfs_quota_us"), "20000");
            assert_eq!(kernel(&env, &id2, "cpu", "cpu.cfs_period_us"), "50000");
            assert_eq!(
                kernel(&env, &id3, "memory", "memory.memsw.limit_in_bytes"),
                "9223372036854771712"
            );
        }
        Version::V2 => {
            assert_eq!(kernel(&env, &id2, "memory", "memory.swap.max"), "0");
            assert_eq!(kernel(&env, &id2, "cpu", "cpu.max"), "20000 50000");
            assert_eq!(kernel(&env, &id3, "memory", "memory.swap.max"), "max");
        }
    }
    env.ok(&["rm", "-f", &id, &id2, &id3]);
    env.assert_empty();
}

#[test]
fn oom_kills_are_reported_and_only_them() {
    let env = Env::new();
    let r = env.rootfs();
    let o = env.ocishim(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "--rootfs",
        &r,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    let v = env.inspect("oom");
    assert_eq!(v["State"]["OOMKilled"], true);
    assert_eq!(v["State"]["ExitCode"], 137);
    // A normal exit is not an OOM kill.
    let id = env.run_d(&["--memory", "16m"], &["true"]);
    let v = env.wait_exited(&id, Duration::from_secs(15));
    assert_eq!(v["State"]["OOMKilled"], false);
    // Nor is a SIGKILL from outside.
    let id2 = env.run_d(&["--memory", "16m"], &["sleep", "1000"]);
    env.ok(&["kill", &id2]);
    let v = env.wait_exited(&id2, Duration::from_secs(15));
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["State"]["OOMKilled"], false);
    env.ok(&["rm", "oom", &id, &id2]);
    env.assert_empty();
}

#[test]
fn update_changes_live_limits() {
    let env = Env::new();
    let id = env.run_d(
        &["--memory", "64m", "--cpus", "0.5", "--pids-limit", "50"],
        &["sleep", "1000"],
    );
    env.ok(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--cpus",
        "1",
        "--pids-limit",
        "30",
        "--cpu-shares",
        "256",
        &id,
    ]);
    match version() {
        Version::V1 => {
            assert_eq!(
                kernel(&env, &id, "memory", "memory.limit_in_bytes"),
                (128u64 << 20).to_string()
            );
            assert_eq!(
                kernel(&env, &id, "memory", "memory.memsw.limit_in_bytes"),
                (256u64 << 20).to_string()
            );
            assert_eq!(kernel(&env, &id, "cpu", "cpu.cfs_quota_us"), "100000");
            assert_eq!(kernel(&env, &id, "cpu", "cpu.shares"), "256");
        }
        Version::V2 => {
            assert_eq!(
                kernel(&env, &id, "memory", "memory.max"),
                (128u64 << 20).to_string()
            );
            assert_eq!(
                kernel(&env, &id, "memory", "memory.swap.max"),
                (128u64 << 20).to_string()
            );
            assert_eq!(kernel(&env, &id, "cpu", "cpu.max"), "100000 100000");
            assert_eq!(kernel(&env, &id, "cpu", "cpu.weight"), "10");
        }
    }
    assert_eq!(kernel(&env, &id, "pids", "pids.max"), "30");
    let hc = &env.inspect(&id)["HostConfig"];
    assert_eq!(hc["Memory"], 128u64 << 20);
    assert_eq!(hc["MemorySwap"], 256u64 << 20);
    assert_eq!(hc["NanoCpus"], 1_000_000_000u64);
    assert_eq!(hc["PidsLimit"], 30);
    assert_eq!(hc["CpuShares"], 256);
    // Invalid values are refused before the kernel sees them.
    let o = env.ocishim(&["update", "--memory", "1m", &id]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(stderr(&o).lines().count(), 1);
    assert_eq!(env.inspect(&id)["HostConfig"]["Memory"], 128u64 << 20);
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[]);
}

#[test]
fn stats_read_the_cgroup() {
    let env = Env::new();
    let id = env.run_d(
        &["--memory", "64m", "--pids-limit", "20"],
        &["sh", "-c", "sleep 1000 & while :; do :; done"],
    );
    let out = env.ok(&["stats", "--no-stream", "--format", "json", &id]);
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["ID"], id.as_str());
    assert_eq!(v["MemoryLimit"], 64u64 << 20);
    assert!(v["MemoryUsage"].as_u64().unwrap() > 0);
    assert!(v["CpuUsageNs"].as_u64().unwrap() > 0);
    assert_eq!(v["PidsCurrent"], 2);
    assert_eq!(v["OomKills"], 0);
    let table = env.ok(&["stats", "--no-stream", &id]);
    assert!(table.contains("64MiB"), "{table}");
    env.ok(&["rm", "-f", &id]);
    env.assert_empty();
}

#[test]
fn cgroups_are_removed_with_the_container() {
    let env = Env::new();
    let a = env.run_d(&["--memory", "32m"], &["sleep", "1000"]);
    let b = env.run_d(&["--pids-limit", "10"], &["sleep", "1000"]);
    env.ok(&["pause", &b]);
    assert!(!env.cgroup_dirs(&a).is_empty());
    env.ok(&["rm", "-f", &a]);
    assert!(env.cgroup_dirs(&a).is_empty());
    // the parent stays while b uses it
    assert!(common::cgroup_mounts()
        .iter()
        .any(|m| m.join(&env.cgroup_parent).exists()));
    env.ok(&["rm", "-f", &b]);
    assert!(env.cgroup_dirs(&b).is_empty());
    // ocishim made the parent: it is gone with the last container
    for m in common::cgroup_mounts() {
        assert!(
            !m.join(&env.cgroup_parent).exists(),
            "parent left in {}",
            m.display()
        );
    }
    // A failed create leaves no cgroup either.
    let o = env.ocishim(&[
        "run",
        "-d",
        "--memory",
        "32m",
        "--rootfs",
        &env.rootfs(),
        "nosuchcmd",
    ]);
    assert_eq!(o.status.code(), Some(127));
    let id = stdout(&o).trim().to_string();
    assert!(env.cgroup_dirs(&id).is_empty());
    env.ok(&["rm", &id]);
    env.assert_empty();
}

#[test]
fn without_limits_under_a_standing_parent_the_runtime_makes_the_cgroup() {
    let env = Env::new();
    // A parent that stands before ocishim (a scheduler's): ocishim neither writes a limit
    // nor makes the cgroup; the runtime makes it from the spec and removes it at delete.
    for m in common::cgroup_mounts() {
        std::fs::create_dir_all(m.join(&env.cgroup_parent)).unwrap();
    }
    let rootfs = env.rootfs();
    let run = |cmd: &[&str]| {
        let mut a = vec!["run", "--log-level", "debug", "-d", "--network", "none"];
        a.extend_from_slice(&["--rootfs", &rootfs]);
        a.extend_from_slice(cmd);
        let o = env.ocishim(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("the runtime makes the cgroup"),
            "{}",
            stderr(&o)
        );
        stdout(&o).trim().to_string()
    };
    let id = run(&["sleep", "1000"]);
    let pid = env.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    let procs = kernel(&env, &id, "memory", "cgroup.procs");
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "{pid} not in {procs}"
    );
    let out = env.ok(&["stats", "--no-stream", "--format", "json", &id]);
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(v["MemoryUsage"].as_u64().unwrap() > 0, "{v}");
    // One that exits by itself: its monitor deletes it from the runtime, cgroup and all.
    let quick = run(&["true"]);
    env.wait_exited(&quick, Duration::from_secs(10));
    assert!(
        env.cgroup_dirs(&quick).is_empty(),
        "{:?}",
        env.cgroup_dirs(&quick)
    );
    env.ok(&["rm", &quick]);
    env.ok(&["rm", "-f", &id]);
    assert!(
        env.cgroup_dirs(&id).is_empty(),
        "{:?}",
        env.cgroup_dirs(&id)
    );
    env.assert_empty();
    for m in common::cgroup_mounts() {
        assert!(
            m.join(&env.cgroup_parent).is_dir(),
            "the standing parent was removed from {}",
            m.display()
        );
    }
}

#[test]
fn a_limit_the_kernel_refuses_is_125_and_leaves_nothing() {
    let env = Env::new();
    let r = env.rootfs();
    // Valid for ocishim's checks (a quota of at least 1 ms), above the kernel's CFS
    // maximum: refused with EINVAL by cpu.cfs_quota_us (v1) and cpu.max (v2) alike.
    let o = env.ocishim(&[
        "run",
        "-d",
        "--cpu-quota",
        "99999999999999",
        "--rootfs",
        &r,
        "true",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let file = match version() {
        Version::V1 => "cpu.cfs_quota_us",
        Version::V2 => "cpu.max",
    };
    assert!(
        err.contains(file) && err.contains("99999999999999"),
        "names the file and value: {err}"
    );
    assert!(stdout(&o).is_empty(), "no record, no ID");
    env.assert_empty();
    for m in common::cgroup_mounts() {
        assert!(
            !m.join(&env.cgroup_parent).exists(),
            "parent left in {}",
            m.display()
        );
    }
}

/// docker's default cgroup namespace: the host's on v1 (docker's daemon default there;
/// runc then bind-mounts the host's hierarchies instead of mounting a cgroup filesystem of
/// the container's own, one more superblock per hierarchy that every later cgroup mount
/// on the host scans), the container's own on v2. `--cgroupns` chooses; a bad value is 125
/// with nothing made.
#[test]
fn the_cgroup_namespace_is_dockers_default_and_cgroupns_chooses() {
    let env = Env::new();
    let host_ns = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    let v2 = version() == Version::V2;
    for (flag, private) in [(None, v2), (Some("host"), false), (Some("private"), true)] {
        let mut opts = vec![];
        if let Some(f) = flag {
            opts.extend(["--cgroupns", f]);
        }
        let id = env.run_d(&opts, &["sleep", "1000"]);
        let rec = env.inspect(&id);
        let pid = rec["State"]["Pid"].as_i64().unwrap();
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/cgroup")).unwrap();
        assert_eq!(
            ns != host_ns,
            private,
            "{flag:?}: {ns:?} (host {host_ns:?})"
        );
        let want = if private { "private" } else { "host" };
        assert_eq!(rec["HostConfig"]["CgroupnsMode"], want, "{flag:?}");
        // Whichever namespace, the cgroup the container is in is its own.
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(own.contains(&id), "{own}");
        env.ok(&["rm", "-f", &id]);
    }
    let o = env.ocishim(&[
        "run",
        "-d",
        "--cgroupns",
        "shared",
        "--rootfs",
        &env.rootfs(),
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--cgroupns") && err.contains("shared"),
        "{err}"
    );
    env.assert_empty();
}
