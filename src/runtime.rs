//! A typed client for an OCI runtime binary (runc, crun): create, start, state, pause,
//! resume, kill, delete. Errors carry the runtime's own last error message, read from its
//! JSON log (`--log-format json`).

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
                    || (m.contains("no such file or directory") && m.contains("status"))
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

    /// The base command: `RUNTIME [--root R] [--log LOG] --log-format json`.
    pub fn command(&self, log: Option<&Path>) -> Command {
        let mut c = Command::new(&self.path);
        if let Some(r) = &self.root {
            c.arg("--root").arg(r);
        }
        if let Some(l) = log {
            c.arg("--log").arg(l);
        }
        c.arg("--log-format").arg("json");
        c
    }

    /// The `create` command; the caller sets stdio and spawns it (the monitor does).
    pub fn create_command(&self, id: &str, bundle: &Path, pid_file: &Path, log: &Path) -> Command {
        let mut c = self.command(Some(log));
        c.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id);
        c
    }

    fn run(&self, op: &'static str, args: &[&str]) -> Result<Vec<u8>, RuntimeError> {
        let mut c = self.command(None);
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tracing::debug!(runtime = %self.name, ?args, "runtime call");
        let out = c.output().map_err(|source| RuntimeError::Exec {
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
        self.run("start", &["start", id]).map(drop)
    }

    pub fn state(&self, id: &str) -> Result<State, RuntimeError> {
        let out = self.run("state", &["state", id])?;
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
        self.run("pause", &["pause", id]).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("resume", &["resume", id]).map(drop)
    }

    pub fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        self.run("kill", &["kill", id, signal]).map(drop)
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        if force {
            self.run("delete", &["delete", "--force", id]).map(drop)
        } else {
            self.run("delete", &["delete", id]).map(drop)
        }
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
