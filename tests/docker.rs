//! The docker facade (`ocishim docker ...` and a `docker` symlink): docker's argv and
//! outputs over the same operations, against the real runtime. The invoker's whole flow
//! with images and a registry is tests/openwhisk.rs.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{stderr, stdout, Bounded, Env, BIN};
use serde_json::Value;

/// `ocishim [env's globals] docker ARGS`, with the env's cgroup parent as the default.
fn docker(env: &Env, args: &[&str]) -> Output {
    let mut c = env.cmd(&["docker"]);
    c.env("OCISHIM_CGROUP_PARENT", &env.cgroup_parent)
        .args(args);
    c.bounded()
}

fn ok(env: &Env, args: &[&str]) -> String {
    let o = docker(env, args);
    assert!(
        o.status.success(),
        "docker {args:?} failed ({}): {}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

/// A refusal: status 125, nothing on stdout, one stderr line that names `what`.
fn refused(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(125), "{}", stderr(o));
    assert_eq!(stdout(o), "", "nothing on stdout when refused");
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one stderr line: {err:?}");
    assert!(err.contains(what), "{err:?} should name {what:?}");
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn version_info_and_refusals() {
    let env = Env::new();
    let v = ok(&env, &["version", "--format", "{{.Client.Version}}"]);
    assert_eq!(v.lines().count(), 1, "{v:?}");
    assert!(!v.starts_with("1.12") && !v.trim().is_empty(), "{v:?}");
    let full: Value =
        serde_json::from_str(&ok(&env, &["version", "--format", "{{json .}}"])).unwrap();
    assert_eq!(full["Client"]["Version"], v.trim());
    assert!(full["Server"]["Components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["Name"] == env.runtime.as_str()));
    assert!(ok(&env, &["-v"]).starts_with("Docker version "));

    for args in [
        &["info", "-f", "json"][..],
        &["info", "--format", "{{json .}}"],
    ] {
        let info: Value = serde_json::from_str(&ok(&env, args)).unwrap();
        assert_eq!(
            info["DockerRootDir"],
            env.data_root.display().to_string().as_str()
        );
        assert_eq!(info["DefaultRuntime"], env.runtime.as_str());
        assert!(info["Runtimes"][env.runtime.as_str()]["path"].is_string());
        let v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
            .unwrap()
            .filesystem_type()
            == nix::sys::statfs::CGROUP2_SUPER_MAGIC;
        assert_eq!(info["CgroupVersion"], if v2 { "2" } else { "1" });
        assert!(info["ServerVersion"].is_string() && info["Driver"].is_string());
    }
    assert_eq!(
        ok(&env, &["info", "--format", "{{.DockerRootDir}}"]).trim(),
        env.data_root.display().to_string()
    );

    let rootfs = env.rootfs();
    refused(
        &docker(
            &env,
            &["run", "-d", "--bogus-flag", "--rootfs", &rootfs, "true"],
        ),
        "--bogus-flag",
    );
    refused(
        &docker(
            &env,
            &["run", "-d", "--memory", "lots", "--rootfs", &rootfs, "true"],
        ),
        "lots",
    );
    refused(&docker(&env, &["-H", "tcp://127.0.0.1:2375", "ps"]), "-H");
    refused(&docker(&env, &["frobnicate"]), "frobnicate");
    refused(
        &docker(&env, &["spec", "--rootfs", &rootfs, "true"]),
        "spec",
    );
    refused(
        &docker(&env, &["version", "--format", "{{.Client.Version"]),
        "{{.Client.Version",
    );
    refused(
        &docker(&env, &["ps", "--filter", "colour=red"]),
        "colour=red",
    );
    refused(
        &docker(&env, &["logs", "--since", "yesterday-ish", "x"]),
        "yesterday-ish",
    );
    env.assert_empty();
}

#[test]
fn ps_filters_inspect_templates_logs_and_a_symlink() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let tag = &env.cgroup_parent[env.cgroup_parent.len() - 6..];
    let prefix = format!("wsk{tag}_");
    let run = |name: &str, cmd: &[&str]| {
        let mut a = vec![
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            name,
            "--rootfs",
            &rootfs,
        ];
        a.extend_from_slice(cmd);
        let id = ok(&env, &a);
        assert_eq!(id.len(), 65, "the ID and a newline: {id:?}");
        assert!(id.ends_with('\n'));
        id.trim().to_string()
    };
    let a = run(
        &format!("{prefix}1"),
        &[
            "sh",
            "-c",
            "echo out-line; echo err-line >&2; exec sleep 60",
        ],
    );
    let b = run(&format!("{prefix}2"), &["sleep", "60"]);
    let c = run(&format!("other{tag}"), &["sh", "-c", "exit 3"]);
    env.wait_exited(&c, Duration::from_secs(10));
    ok(&env, &["pause", &b]);

    let ps = |args: &[&str]| {
        let mut v = lines(&ok(&env, args));
        v.sort();
        v
    };
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    let name_filter = format!("name={prefix}");
    assert_eq!(
        ps(&[
            "ps",
            "--quiet",
            "--no-trunc",
            "--all",
            "--filter",
            &name_filter
        ]),
        both
    );
    assert_eq!(
        ps(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "status=paused",
            "--filter",
            &name_filter
        ]),
        vec![b.clone()]
    );
    assert_eq!(
        ps(&[
            "ps",
            "-q",
            "--no-trunc",
            "-a",
            "--filter",
            "status=exited",
            "--filter",
            "status=paused"
        ]),
        {
            let mut v = vec![b.clone(), c.clone()];
            v.sort();
            v
        }
    );
    // A status filter lists stopped containers without -a, as docker's.
    assert_eq!(
        ps(&["ps", "-q", "--no-trunc", "--filter", "exited=3"]),
        vec![c.clone()]
    );
    assert!(ps(&[
        "ps",
        "-q",
        "--filter",
        &name_filter,
        "--filter",
        "status=exited"
    ])
    .is_empty());
    let anchored = format!("name=^/{prefix}1$");
    assert_eq!(
        ps(&["ps", "-q", "--no-trunc", "-f", &anchored]),
        vec![a.clone()]
    );
    assert_eq!(
        ps(&[
            "ps",
            "-a",
            "--filter",
            &name_filter,
            "--format",
            "{{.Names}} {{.State}}"
        ]),
        vec![format!("{prefix}1 running"), format!("{prefix}2 paused")]
    );

    // inspect: ID before or after the flag; templates as docker prints them.
    assert_eq!(
        ok(&env, &["inspect", &b, "--format", "{{.State.Paused}}"]),
        "true\n"
    );
    assert_eq!(
        ok(&env, &["inspect", "--format", "{{.State.OOMKilled}}", &a]),
        "false\n"
    );
    assert_eq!(
        ok(
            &env,
            &[
                "inspect",
                "-f",
                "{{.NetworkSettings.Networks.bridge.IPAddress}}",
                &a
            ]
        ),
        "<no value>\n"
    );
    assert_eq!(
        ok(&env, &["inspect", "-f", "{{.State.ExitCode}}", &c]),
        "3\n"
    );
    let state: Value =
        serde_json::from_str(&ok(&env, &["inspect", "-f", "{{json .State}}", &a])).unwrap();
    assert_eq!(state["Status"], "running");
    assert_eq!(
        lines(&ok(&env, &["inspect", "-f", "{{.Name}}", &a, &b])),
        vec![format!("/{prefix}1"), format!("/{prefix}2")]
    );

    // logs with the invoker's flags: --since/--until in Unix seconds, --timestamps.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (since, until) = ((now - 60).to_string(), (now + 60).to_string());
    let logs = docker(
        &env,
        &[
            "logs",
            &a,
            "--since",
            &since,
            "--until",
            &until,
            "--timestamps",
        ],
    );
    assert!(logs.status.success(), "{}", stderr(&logs));
    for (text, line) in [(stdout(&logs), "out-line"), (stderr(&logs), "err-line")] {
        let (time, rest) = text.trim_end().split_once(' ').expect("a timestamp first");
        assert_eq!(rest, line);
        assert!(time.ends_with('Z') && time.len() == 30, "{time:?}");
    }
    let later = (now + 30).to_string();
    let none = docker(&env, &["logs", &a, "--since", &later]);
    assert!(none.status.success() && stdout(&none).is_empty() && stderr(&none).is_empty());
    assert_eq!(stdout(&docker(&env, &["logs", "--tail", "1", &a])), "");
    assert_eq!(
        stderr(&docker(&env, &["logs", "--tail", "1", &a])),
        "err-line\n"
    );

    // A symlink named docker, with ocishim's settings from the environment.
    let link_dir = env.base.join("bin");
    std::fs::create_dir_all(&link_dir).unwrap();
    let link = link_dir.join("docker");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let via_link = |args: &[&str]| {
        Command::new(&link)
            .args(args)
            .env("OCISHIM_ROOT", &env.root)
            .env("OCISHIM_DATA_ROOT", &env.data_root)
            .env("OCISHIM_RUNTIME", &env.runtime)
            .env("OCISHIM_RUNTIME_ROOT", &env.runtime_root)
            .env("OCISHIM_BRIDGE", &env.bridge)
            .env("OCISHIM_BRIDGE_SUBNET", &env.subnet)
            .stdin(Stdio::null())
            .bounded()
    };
    let o = via_link(&[
        "ps",
        "--quiet",
        "--no-trunc",
        "--all",
        "--filter",
        &name_filter,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut listed = lines(&stdout(&o));
    listed.sort();
    assert_eq!(listed, both);
    // pause/unpause through the symlink take the clap-free path: same result.
    let o = via_link(&["unpause", &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{b}\n"));
    assert_eq!(
        ok(&env, &["inspect", &b, "-f", "{{.State.Status}}"]),
        "running\n"
    );
    assert_eq!(stdout(&via_link(&["pause", &b])), format!("{b}\n"));

    for id in [&a, &b, &c] {
        let o = via_link(&["rm", "-f", id]);
        assert!(o.status.success(), "{}", stderr(&o));
        env.assert_gone(id, &[]);
    }
    // A missing full ID: quiet success, as docker's.
    let o = via_link(&["rm", "-f", &a]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    env.assert_empty();
}

/// `docker run -d`'s start failures as the invoker sees them: 127, 126 and 125, each with
/// the ID and a newline on stdout and one stderr line; `rm ID -f` (the flag after the ID)
/// removes each; the name filter is an unanchored regex (a match inside the name).
#[test]
fn run_start_failures_print_the_id_and_the_name_filter_matches_inside_names() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let tag = &env.cgroup_parent[env.cgroup_parent.len() - 6..];
    let file = env.base.join("afile");
    std::fs::write(&file, "x").unwrap();
    let vol = format!("{}:/etc", file.display());
    let names: Vec<String> = (0..3)
        .map(|i| format!("wsk{tag}_{i}_guest_hello"))
        .collect();
    let mut ids = Vec::new();
    for (i, (extra, cmd, code)) in [
        (&[][..], "no-such-command", 127),
        (&[][..], "/etc/passwd", 126),
        (&["-v", vol.as_str()][..], "true", 125),
    ]
    .into_iter()
    .enumerate()
    {
        let mut a = vec!["run", "-d", "--network", "none", "--name", &names[i]];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--rootfs", &rootfs, cmd]);
        let o = docker(&env, &a);
        assert_eq!(o.status.code(), Some(code), "{cmd}: {}", stderr(&o));
        let out = stdout(&o);
        assert_eq!(out.len(), 65, "{cmd}: the ID and a newline: {out:?}");
        assert!(out.ends_with('\n') && out[..64].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        ids.push(out.trim().to_string());
    }
    // Unanchored: "guest_hel" is in the middle of each name, so is "_1_".
    let listed = |filter: &str| {
        let mut v = lines(&ok(
            &env,
            &["ps", "--quiet", "--no-trunc", "--all", "--filter", filter],
        ));
        v.sort();
        v
    };
    let mut all = ids.clone();
    all.sort();
    assert_eq!(listed("name=guest_hel"), all);
    assert_eq!(listed(&format!("name={tag}_1_")), vec![ids[1].clone()]);
    assert_eq!(listed("name=hello$"), all);
    assert!(listed("name=^guest").is_empty());
    for id in &ids {
        let o = docker(&env, &["rm", id, "-f"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), format!("{id}\n"));
        env.assert_gone(id, &[]);
    }
    env.assert_empty();
}

/// Every rewrite of `config.v2.json` is a rename of a whole file: a reader polling it (as
/// the invoker does after `run -d` and for `OOMKilled`) parses every read, while starts,
/// exits and the monitor's writes replace it dozens of times.
#[test]
fn a_reader_never_sees_a_torn_config_v2_json() {
    let env = Env::new();
    let rootfs = env.rootfs();
    let id = ok(
        &env,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--rootfs",
            &rootfs,
            "true",
        ],
    )
    .trim()
    .to_string();
    let path = env
        .data_root
        .join("containers")
        .join(&id)
        .join("config.v2.json");
    let done = std::sync::atomic::AtomicBool::new(false);
    let (reads, starts) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0u64;
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the writer never finished"
                );
                let bytes = std::fs::read(&path).expect("the record is always there");
                let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "read {reads}: a torn record ({e}): {:?}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                assert_eq!(v["ID"], id.as_str());
                reads += 1;
            }
            reads
        });
        let mut starts = 0;
        for _ in 0..15 {
            env.wait_exited(&id, Duration::from_secs(10));
            ok(&env, &["start", &id]);
            starts += 1;
        }
        env.wait_exited(&id, Duration::from_secs(10));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (reader.join().unwrap(), starts)
    });
    assert_eq!(starts, 15);
    assert!(
        reads > 100,
        "only {reads} reads while the record was rewritten"
    );
    ok(&env, &["rm", "-f", &id]);
    env.assert_empty();
}
