//! The json-file log against the real runtime: rotation (`--log-opt max-size/max-file`),
//! `logs` and `logs -f` across rotated files, bad options, and a full data root (a small
//! tmpfs) that the monitor rides out.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{stderr, stdout, Bounded, Env};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The log files of a container, oldest first (`-json.log.2`, `.1`, then the current one).
fn log_files(env: &Env, id: &str) -> Vec<PathBuf> {
    let dir = env.data_root.join("containers").join(id);
    let base = format!("{id}-json.log");
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix(&base)?;
            let n = match rest {
                "" => 0,
                r => r.strip_prefix('.')?.parse().ok()?,
            };
            Some((n, e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files.into_iter().map(|(_, p)| p).collect()
}

/// Every line of a log file as its entry's `log`, asserting each line is complete JSON.
fn entries(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in a partial line",
        path.display()
    );
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: {l:?} is not an entry: {e}", path.display()));
            v["log"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The numbers of `lines` ("N\n" or "lineN\n"), asserting they are consecutive.
fn consecutive(lines: &[String], prefix: &str) -> Vec<u64> {
    let nums: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.strip_prefix(prefix)
                .and_then(|l| l.strip_suffix('\n'))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l:?}"))
        })
        .collect();
    for w in nums.windows(2) {
        assert_eq!(w[1], w[0] + 1, "a gap or disorder in {nums:?}");
    }
    nums
}

#[test]
fn rotation_keeps_max_file_files_of_whole_entries() {
    let env = Env::new();
    let id = env.run_d(
        &["--log-opt", "max-size=1k", "--log-opt", "max-file=3"],
        &["seq", "1", "3000"],
    );
    let v = env.wait_exited(&id, WAIT);
    assert_eq!(v["State"]["ExitCode"], 0);
    assert_eq!(
        v["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "3"}})
    );
    assert_eq!(v["Ocishim"]["LogLinesDropped"], 0);
    let files = log_files(&env, &id);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files[2].ends_with(format!("{id}-json.log")));
    let mut kept = Vec::new();
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= 1000, "{} has {size} bytes", f.display());
        let e = entries(f);
        assert!(!e.is_empty(), "{} is empty", f.display());
        kept.extend(e);
    }
    let nums = consecutive(&kept, "");
    assert_eq!(*nums.last().unwrap(), 3000);
    assert!(nums.len() > 20, "{nums:?}");
    // `logs` prints the same, oldest file first; --tail counts across the files.
    let o = env.ocishim(&["logs", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), kept.concat());
    let o = env.ocishim(&["logs", "--tail", "20", &id]);
    assert_eq!(stdout(&o), kept[kept.len() - 20..].concat());

    // max-file=1: one file, still whole entries, the tail of the sequence.
    let one = env.run_d(
        &["--log-opt", "max-size=1k", "--log-opt", "max-file=1"],
        &["seq", "1", "3000"],
    );
    env.wait_exited(&one, WAIT);
    let files = log_files(&env, &one);
    assert_eq!(files.len(), 1, "{files:?}");
    let e = entries(&files[0]);
    assert_eq!(*consecutive(&e, "").last().unwrap(), 3000);
    assert_eq!(stdout(&env.ocishim(&["logs", &one])), e.concat());

    // An entry larger than max-size is written whole, alone, then rotated.
    let big = env.run_d(
        &["--log-opt", "max-size=1k", "--log-opt", "max-file=2"],
        &[
            "sh",
            "-c",
            "echo before; head -c 3000 /dev/zero | tr '\\0' x; echo; echo after",
        ],
    );
    env.wait_exited(&big, WAIT);
    let files = log_files(&env, &big);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(entries(&files[0]), [format!("{}\n", "x".repeat(3000))]);
    assert_eq!(entries(&files[1]), ["after\n"]);

    // Without --log-opt: one file, never rotated (docker's default).
    let plain = env.run_d(&[], &["seq", "1", "3000"]);
    env.wait_exited(&plain, WAIT);
    let files = log_files(&env, &plain);
    assert_eq!(files.len(), 1);
    assert_eq!(consecutive(&entries(&files[0]), "").len(), 3000);
    let v = env.inspect(&plain);
    assert_eq!(
        v["HostConfig"]["LogConfig"]["Config"],
        serde_json::json!({})
    );

    env.ok(&["rm", &id, &one, &big, &plain]);
    env.assert_empty();
}

#[test]
fn logs_follow_reads_on_across_rotations() {
    let env = Env::new();
    let n = 200;
    let id = env.run_d(
        &["--log-opt", "max-size=1k", "--log-opt", "max-file=3"],
        &[
            "sh",
            "-c",
            &format!("i=0; while [ $i -lt {n} ]; do echo line$i; i=$((i+1)); sleep 0.02; done"),
        ],
    );
    // The newest line there is before `logs -f` starts: it must print everything from it on.
    let deadline = Instant::now() + WAIT;
    // (Read leniently: a file may be renamed or half-written as it is read.)
    let newest = loop {
        let last = log_files(&env, &id)
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter_map(|v| v["log"].as_str().map(String::from))
                    .collect::<Vec<_>>()
            })
            .last();
        if let Some(last) = last {
            break consecutive(&[last], "line")[0];
        }
        assert!(Instant::now() < deadline, "no log line appeared");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut child = env
        .cmd(&["logs", "-f", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("logs -f did not end with the container");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(|l| format!("{l}\n")).collect();
    let nums = consecutive(&lines, "line");
    assert!(
        nums.first().is_some_and(|&f| f <= newest),
        "logs -f started after line {newest} but printed from {:?}",
        nums.first()
    );
    assert_eq!(nums.last(), Some(&(n - 1)));
    let rotated = log_files(&env, &id);
    assert_eq!(rotated.len(), 3, "the log was rotated: {rotated:?}");
    env.ok(&["rm", &id]);
    env.assert_empty();
}

#[test]
fn bad_log_opts_are_refused_naming_the_option() {
    let env = Env::new();
    let r = env.rootfs();
    let cases: &[(&[&str], &str)] = &[
        (&["--log-opt", "max-size=0"], "max-size"),
        (&["--log-opt", "max-size=12q"], "max-size"),
        (&["--log-opt", "max-size=-1"], "max-size"),
        (&["--log-opt", "max-size"], "max-size"),
        (
            &["--log-opt", "max-size=1k", "--log-opt", "max-file=0"],
            "max-file",
        ),
        (&["--log-opt", "max-file=x"], "max-file"),
        (&["--log-opt", "no-such-opt=1"], "no-such-opt"),
        (&["--log-opt", "compress=true"], "compress"),
        (
            &["--log-driver", "none", "--log-opt", "max-size=1k"],
            "max-size",
        ),
    ];
    for (case, key) in cases {
        for mode in [&["run", "-d"][..], &["create"][..]] {
            let mut args: Vec<&str> = mode.to_vec();
            args.extend_from_slice(case);
            args.extend_from_slice(&["--rootfs", &r, "true"]);
            let o = env.ocishim(&args);
            assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
            let err = stderr(&o);
            assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
            assert!(
                err.starts_with("ocishim: ") && err.contains("--log-opt") && err.contains(key),
                "{args:?}: {err:?}"
            );
            assert!(stdout(&o).is_empty(), "{args:?} printed {:?}", stdout(&o));
        }
    }
    env.assert_empty();
}

/// A tmpfs mounted as the data root of an [`Env`]; on drop (a failed assertion too) the
/// containers are removed first, then the tmpfs is unmounted.
struct SmallDataRoot {
    env: Env,
}

impl SmallDataRoot {
    fn new(size: &str) -> SmallDataRoot {
        let env = Env::new();
        std::fs::create_dir_all(&env.data_root).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &env.data_root,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .unwrap_or_else(|e| panic!("mounting a tmpfs on {}: {e}", env.data_root.display()));
        SmallDataRoot { env }
    }

    /// Fill the tmpfs to the last byte with `name`.
    fn fill(&self, name: &str) -> PathBuf {
        let p = self.env.data_root.join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        let chunk = vec![1u8; 4096];
        for _ in 0..1_000_000 {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
        for _ in 0..4096 {
            if f.write_all(&[1]).is_err() {
                return p;
            }
        }
        panic!("the tmpfs did not fill up");
    }
}

impl Drop for SmallDataRoot {
    fn drop(&mut self) {
        if let Some(o) = self.env.cmd(&["ps", "-aq", "--no-trunc"]).try_bounded() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.env.cmd(&["rm", "-f", id]).try_bounded();
            }
        }
        let _ = nix::mount::umount2(&self.env.data_root, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_data_root_drops_whole_lines_and_never_blocks_the_container() {
    let small = SmallDataRoot::new("8m");
    let env = &small.env;
    let sig = env.base.join("sig");
    std::fs::create_dir_all(&sig).unwrap();
    let vol = format!("{}:/sig", sig.display());
    let wait_go = "while [ ! -e /sig/go ]; do sleep 0.05; done";
    // Made while there is room; both wait for the disk to be full.
    let burst = env.run_d(
        &["-v", &vol],
        &[
            "sh",
            "-c",
            &format!("{wait_go}; seq 1 20000; i=0; while [ $i -lt 200 ]; do echo tail$i; i=$((i+1)); done; exit 3"),
        ],
    );
    let later = env.run_d(
        &["-v", &vol],
        &[
            "sh",
            "-c",
            &format!("{wait_go}; seq 1 30000; touch /sig/dropped; while [ ! -e /sig/freed ]; do sleep 0.05; done; echo late1; echo late2"),
        ],
    );
    let filler = small.fill("filler");
    std::fs::write(sig.join("go"), b"").unwrap();

    // The first one prints all of its output into a full disk, exits, and its exit is
    // recorded all the same.
    let v = env.wait_exited(&burst, WAIT);
    assert_eq!(v["State"]["ExitCode"], 3, "{v}");
    let dropped = v["Ocishim"]["LogLinesDropped"].as_u64().unwrap();
    assert!(dropped > 0, "{v}");
    assert!(dropped <= 20200, "{dropped}");
    let mut kept = 0;
    for f in log_files(env, &burst) {
        kept += entries(&f).len() as u64;
    }
    assert_eq!(kept + dropped, 20200, "every line is kept or counted");

    // The second one printed into the full disk too; space comes back, and its later
    // lines are written.
    wait_for("the second container's first lines", || {
        sig.join("dropped").exists()
    });
    std::fs::remove_file(&filler).unwrap();
    std::fs::write(sig.join("freed"), b"").unwrap();
    let v = env.wait_exited(&later, WAIT);
    assert_eq!(v["State"]["ExitCode"], 0, "{v}");
    let dropped = v["Ocishim"]["LogLinesDropped"].as_u64().unwrap();
    assert!(dropped > 0, "{v}");
    let o = env.ocishim(&["logs", &later]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).ends_with("late1\nlate2\n"), "{:?}", stdout(&o));
    let lines: Vec<String> = log_files(env, &later)
        .iter()
        .flat_map(|f| entries(f))
        .collect();
    assert_eq!(
        lines.len() as u64 + dropped,
        30002,
        "every line is kept or counted"
    );

    // inspect's template reaches the count.
    let n = env.ok(&["inspect", "-f", "{{.Ocishim.LogLinesDropped}}", &later]);
    assert_eq!(n, dropped.to_string());
    env.ok(&["rm", &burst, &later]);
    env.assert_empty();
}
