//! A typed client for an OCI runtime binary (runc, crun): create, start, state, pause,
//! resume, kill, delete. Errors carry the runtime's own last error message, read from its
//! JSON log (`--log-format json`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime {0:?} not found in PATH")]
    NotFound(String),
    #[error("running {runtime} {op}: {source}")]
    Exec {
        runtime: String,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{op} failed: {message}")]
    Failed { op: &'static str, message: String },
    #[error("{runtime} state: unexpected output: {why}")]
    BadState { runtime: String, why: String },
}

impl RuntimeError {
    /// The runtime's message, for exit code translation.
    pub fn message(&self) -> String {
        match self {
            RuntimeError::Failed { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// True when the runtime says it does not know the container.
    pub fn is_not_exist(&self) -> bool {
        match self {
            RuntimeError::Failed { message, .. } => {
                let m = message.to_ascii_lowercase();
                m.contains("does not exist")
                    || m.contains("container not found")
                    || (m.contains("no such file or directory")
                        && (m.contains("status") || m.contains("cannot open directory")))
            }
            _ => false,
        }
    }
}

/// `runtime state` output (the OCI state plus runc's extras we read).
#[derive(Debug, Clone, Deserialize)]
pub struct State {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub bundle: String,
}

/// One runtime call; [`Runtime::args`] spells it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// `create --bundle B --pid-file P ID`, logging to `log`; with `start`, `run --detach`
    /// and the same flags: created and started by one runtime process (`run`), which
    /// spares a second one's start-up.
    Create {
        id: &'a str,
        bundle: &'a Path,
        pid_file: &'a Path,
        log: &'a Path,
        start: bool,
    },
    Start {
        id: &'a str,
    },
    State {
        id: &'a str,
    },
    Pause {
        id: &'a str,
    },
    Resume {
        id: &'a str,
    },
    /// `kill ID SIGNAL`; the signal as the runtime takes it (a name or a number).
    Kill {
        id: &'a str,
        signal: &'a str,
    },
    /// `delete [--force] ID`.
    Delete {
        id: &'a str,
        force: bool,
    },
    /// `list --format json`: every container under the root.
    List,
}

impl Call<'_> {
    /// The runtime's subcommand, which is also the operation named in errors.
    pub fn op(&self) -> &'static str {
        match self {
            Call::Create { .. } => "create",
            Call::Start { .. } => "start",
            Call::State { .. } => "state",
            Call::Pause { .. } => "pause",
            Call::Resume { .. } => "resume",
            Call::Kill { .. } => "kill",
            Call::Delete { .. } => "delete",
            Call::List => "list",
        }
    }

    /// The runtime's subcommand: [`Call::op`], but `run` for a create that also starts.
    pub fn subcommand(&self) -> &'static str {
        match self {
            Call::Create { start: true, .. } => "run",
            other => other.op(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Runtime {
    path: PathBuf,
    root: Option<PathBuf>,
    name: String,
}

/// Look a program up in PATH (or take it as a path when it has a slash).
pub fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// The last error message in a runtime's JSON log output (runc: {"level":"error","msg":..};
/// crun: the same shape). Falls back to the last non-empty plain line.
pub fn last_error(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        level: String,
        #[serde(default)]
        msg: String,
    }
    let mut last_error = None;
    let mut last_plain = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match serde_json::from_str::<Entry>(line) {
            Ok(e)
                if matches!(e.level.as_str(), "error" | "fatal" | "panic") && !e.msg.is_empty() =>
            {
                last_error = Some(e.msg)
            }
            Ok(_) => {}
            Err(_) => last_plain = Some(line.to_string()),
        }
    }
    last_error.or(last_plain)
}

impl Runtime {
    pub fn new(prog: &str, root: Option<PathBuf>) -> Result<Self, RuntimeError> {
        let path = which(prog).ok_or_else(|| RuntimeError::NotFound(prog.to_string()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| prog.to_string());
        Ok(Runtime { path, root, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The arguments (after the program) of one call: `[--root R] [--log L] --log-format
    /// json OP ...`; `--log` for `create` only.
    pub fn args(&self, call: &Call) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::with_capacity(12);
        if let Some(r) = &self.root {
            a.extend(["--root".into(), r.into()]);
        }
        if let Call::Create { log, .. } = call {
            a.extend(["--log".into(), log.into()]);
        }
        a.extend([
            "--log-format".into(),
            "json".into(),
            call.subcommand().into(),
        ]);
        match *call {
            Call::Create {
                id,
                bundle,
                pid_file,
                start,
                ..
            } => {
                if start {
                    a.push("--detach".into());
                }
                a.extend([
                    "--bundle".into(),
                    bundle.into(),
                    "--pid-file".into(),
                    pid_file.into(),
                    id.into(),
                ])
            }
            Call::Start { id } | Call::State { id } | Call::Pause { id } | Call::Resume { id } => {
                a.push(id.into())
            }
            Call::Kill { id, signal } => a.extend([id.into(), signal.into()]),
            Call::Delete { id, force } => {
                if force {
                    a.push("--force".into());
                }
                a.push(id.into());
            }
            Call::List => a.extend(["--format".into(), "json".into()]),
        }
        a
    }

    /// The `create` command (`run --detach` with `start`); the caller sets stdio and
    /// spawns it (the monitor does).
    pub fn create_command(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        log: &Path,
        start: bool,
    ) -> Command {
        let mut c = Command::new(&self.path);
        c.args(self.args(&Call::Create {
            id,
            bundle,
            pid_file,
            log,
            start,
        }));
        c
    }

    /// Run a call to completion: its stdout, or the runtime's last error.
    fn run(&self, call: &Call) -> Result<Vec<u8>, RuntimeError> {
        let op = call.op();
        let args = self.args(call);
        tracing::debug!(runtime = %self.name, ?args, "runtime call");
        let out = Command::new(&self.path)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| RuntimeError::Exec {
                runtime: self.name.clone(),
                op,
                source,
            })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let text = String::from_utf8_lossy(&out.stderr);
        let message = last_error(&text)
            .unwrap_or_else(|| format!("{} exited with {}", self.name, out.status));
        Err(RuntimeError::Failed { op, message })
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&Call::Start { id }).map(drop)
    }

    pub fn state(&self, id: &str) -> Result<State, RuntimeError> {
        let out = self.run(&Call::State { id })?;
        serde_json::from_slice(&out).map_err(|e| RuntimeError::BadState {
            runtime: self.name.clone(),
            why: e.to_string(),
        })
    }

    /// The state, or None when the runtime does not know the container.
    pub fn state_opt(&self, id: &str) -> Result<Option<State>, RuntimeError> {
        match self.state(id) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_exist() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&Call::Pause { id }).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&Call::Resume { id }).map(drop)
    }

    pub fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        self.run(&Call::Kill { id, signal }).map(drop)
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        self.run(&Call::Delete { id, force }).map(drop)
    }

    /// Every container the runtime has under its root (`gc` looks for ocishim's whose
    /// record is gone); a root that does not exist has none.
    pub fn list(&self) -> Result<Vec<State>, RuntimeError> {
        if self.root.as_ref().is_some_and(|r| !r.exists()) {
            return Ok(Vec::new());
        }
        let out = self.run(&Call::List)?;
        let parsed: Option<Vec<State>> =
            serde_json::from_slice(&out).map_err(|e| RuntimeError::BadState {
                runtime: self.name.clone(),
                why: e.to_string(),
            })?;
        Ok(parsed.unwrap_or_default())
    }

    /// Delete, treating "does not exist" as done.
    pub fn delete_if_exists(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        match self.delete(id, force) {
            Err(e) if e.is_not_exist() => Ok(()),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_from_json_log() {
        let log = r#"{"level":"warning","msg":"something","time":"2026-11-23T03:40:24Z"}
{"level":"error","msg":"runc create failed: unable to start container process: exec: \"x\": executable file not found in $PATH","time":"2026-11-23T03:40:24Z"}
"#;
        assert_eq!(
            last_error(log).unwrap(),
            "runc create failed: unable to start container process: exec: \"x\": executable file not found in $PATH"
        );
        assert_eq!(
            last_error("plain text error\n\n").unwrap(),
            "plain text error"
        );
        assert_eq!(last_error(""), None);
    }

    fn rt(root: Option<&str>) -> Runtime {
        Runtime {
            path: "/usr/bin/runc".into(),
            root: root.map(PathBuf::from),
            name: "runc".into(),
        }
    }

    fn args(rt: &Runtime, call: Call) -> Vec<String> {
        rt.args(&call)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn argv_of_each_call() {
        let create = Call::Create {
            id: "c1",
            bundle: Path::new("/b"),
            pid_file: Path::new("/b/init.pid"),
            log: Path::new("/b/runtime.log"),
            start: false,
        };
        let run = Call::Create {
            id: "c1",
            bundle: Path::new("/b"),
            pid_file: Path::new("/b/init.pid"),
            log: Path::new("/b/runtime.log"),
            start: true,
        };
        let cases: &[(Call, &[&str])] = &[
            (
                run,
                &[
                    "--log",
                    "/b/runtime.log",
                    "--log-format",
                    "json",
                    "run",
                    "--detach",
                    "--bundle",
                    "/b",
                    "--pid-file",
                    "/b/init.pid",
                    "c1",
                ],
            ),
            (
                create,
                &[
                    "--log",
                    "/b/runtime.log",
                    "--log-format",
                    "json",
                    "create",
                    "--bundle",
                    "/b",
                    "--pid-file",
                    "/b/init.pid",
                    "c1",
                ],
            ),
            (
                Call::Start { id: "c1" },
                &["--log-format", "json", "start", "c1"],
            ),
            (
                Call::State { id: "c1" },
                &["--log-format", "json", "state", "c1"],
            ),
            (
                Call::Pause { id: "c1" },
                &["--log-format", "json", "pause", "c1"],
            ),
            (
                Call::Resume { id: "c1" },
                &["--log-format", "json", "resume", "c1"],
            ),
            (
                Call::Kill {
                    id: "c1",
                    signal: "15",
                },
                &["--log-format", "json", "kill", "c1", "15"],
            ),
            (
                Call::Delete {
                    id: "c1",
                    force: false,
                },
                &["--log-format", "json", "delete", "c1"],
            ),
            (
                Call::Delete {
                    id: "c1",
                    force: true,
                },
                &["--log-format", "json", "delete", "--force", "c1"],
            ),
        ];
        for &(call, want) in cases {
            assert_eq!(args(&rt(None), call), want, "{call:?}");
            let mut rooted = vec!["--root", "/run/rt"];
            rooted.extend_from_slice(want);
            assert_eq!(
                args(&rt(Some("/run/rt")), call),
                rooted,
                "{call:?} with --root"
            );
        }
    }

    #[test]
    fn create_command_spells_the_create_call() {
        let r = rt(Some("/run/rt"));
        for start in [false, true] {
            let c = r.create_command(
                "c1",
                Path::new("/b"),
                Path::new("/b/init.pid"),
                Path::new("/b/runtime.log"),
                start,
            );
            assert_eq!(c.get_program(), "/usr/bin/runc");
            let got: Vec<_> = c.get_args().collect();
            let want = r.args(&Call::Create {
                id: "c1",
                bundle: Path::new("/b"),
                pid_file: Path::new("/b/init.pid"),
                log: Path::new("/b/runtime.log"),
                start,
            });
            assert_eq!(got, want.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn not_exist_detection() {
        let e = RuntimeError::Failed {
            op: "state",
            message: "container \"abc\" does not exist".into(),
        };
        assert!(e.is_not_exist());
        let e = RuntimeError::Failed {
            op: "pause",
            message: "container not running".into(),
        };
        assert!(!e.is_not_exist());
    }
}
