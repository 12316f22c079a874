//! An attached `run` (the log printed as it grows, signals forwarded, the container's
//! exit code returned) and `logs`.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{monitor_alive, Context};
use crate::error::{io_err, Error};
use crate::log_file::{self, LogEntry, RotatedReader};
use crate::record::Record;
use crate::sys;

/// Print a log entry to stdout or stderr, as its stream says.
fn print(e: &LogEntry) {
    // A closed stdout/stderr (the reader went away) is not an error of the container's.
    let _ = if e.stream == "stderr" {
        io::stderr().lock().write_all(e.log.as_bytes())
    } else {
        io::stdout().lock().write_all(e.log.as_bytes())
    };
}

/// A reader of the container's log and its rotated files (`--log-opt max-file`).
fn log_reader(rec: &Record) -> RotatedReader {
    let files = crate::config::log_opts::rotation(&rec.host_config.log_config.config)
        .ok()
        .flatten()
        .map_or(1, |r| r.max_file);
    RotatedReader::new(Path::new(&rec.log_path), files)
}

/// Wait for an attached container: print its log as it grows, forward signals, and
/// return its exit code once the monitor has recorded it.
pub fn attach_wait(ctx: &Context, id: &str) -> Result<i32, Error> {
    let rec = ctx.store.read(id)?;
    let mfd = sys::pidfd_open(rec.ocishim.monitor_pid).map_err(io_err("watching the monitor"))?;
    let mut reader = log_reader(&rec);
    sys::forward_signals_install();
    let rt = ctx.runtime_for(&rec)?;
    loop {
        let done = match &mfd {
            Some(fd) => sys::pidfd_wait(fd, Duration::from_millis(20)),
            None => true,
        };
        if let Some(sig) = sys::forward_signals_take() {
            if let Err(e) = rt.kill(id, &sig.to_string()) {
                tracing::debug!(%id, sig, "forwarding a signal: {e}");
            }
        }
        if !rec.log_path.is_empty() {
            reader
                .read_available(&mut print)
                .map_err(io_err("reading the log"))?;
        }
        if done {
            break;
        }
    }
    let rec = ctx.store.read(id)?;
    if rec.state.exit_code == 255 && !rec.state.error.is_empty() {
        // The monitor could not learn the exit status: say why, beside the 255.
        eprintln!("ocishim: {id}: {}", rec.state.error);
    }
    Ok(rec.state.exit_code)
}

/// What `logs` prints.
#[derive(Debug, Default, Clone)]
pub struct LogsOpts {
    pub follow: bool,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub timestamps: bool,
    /// Only the last N entries of what is there now.
    pub tail: Option<usize>,
}

impl LogsOpts {
    /// The options from the CLI's spellings (docker's).
    pub fn parse(
        follow: bool,
        since: Option<&str>,
        until: Option<&str>,
        timestamps: bool,
        tail: Option<&str>,
    ) -> Result<LogsOpts, Error> {
        let now = SystemTime::now();
        let time = |flag: &str, v: Option<&str>| {
            v.map(|v| {
                log_file::parse_time_arg(v, now).ok_or_else(|| {
                    Error::Usage(format!(
                        "invalid value for {flag}: {v:?} is not a time, Unix timestamp or duration"
                    ))
                })
            })
            .transpose()
        };
        let tail = match tail {
            None | Some("all") => None,
            Some(n) => Some(n.parse::<usize>().map_err(|_| {
                Error::Usage(format!(
                    "invalid value for --tail: {n:?} is not a number or \"all\""
                ))
            })?),
        };
        Ok(LogsOpts {
            follow,
            since: time("--since", since)?,
            until: time("--until", until)?,
            timestamps,
            tail,
        })
    }

    /// Whether an entry written at `time` is printed.
    fn keeps(&self, time: &str) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(t) = log_file::parse_time(time) else {
            return false;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    fn print(&self, e: &LogEntry) {
        if !self.keeps(&e.time) {
            return;
        }
        if self.timestamps {
            let stamped = LogEntry {
                log: format!("{} {}", e.time, e.log),
                stream: e.stream.clone(),
                time: String::new(),
            };
            print(&stamped);
        } else {
            print(e);
        }
    }
}

/// `logs`: print the log, its rotated files first (oldest first); with `follow`, until the
/// container has exited, across rotations.
pub fn logs(ctx: &Context, query: &str, opts: &LogsOpts) -> Result<(), Error> {
    let id = ctx.store.resolve(query)?;
    let rec = ctx.store.read(&id)?;
    if rec.log_path.is_empty() {
        return Err(Error::NoLogs);
    }
    let mut reader = log_reader(&rec);
    if let Some(n) = opts.tail {
        let mut last = std::collections::VecDeque::with_capacity(n.min(4096));
        reader
            .read_available(&mut |e| {
                if n > 0 && opts.keeps(&e.time) {
                    if last.len() == n {
                        last.pop_front();
                    }
                    last.push_back(e.clone());
                }
            })
            .map_err(io_err("reading the log"))?;
        for e in &last {
            opts.print(e);
        }
    }
    let mfd = if opts.follow && monitor_alive(&ctx.store, &rec) {
        sys::pidfd_open(rec.ocishim.monitor_pid).ok().flatten()
    } else {
        None
    };
    loop {
        let done = match &mfd {
            Some(fd) => sys::pidfd_wait(fd, Duration::from_millis(50)),
            None => true,
        };
        reader
            .read_available(&mut |e| opts.print(e))
            .map_err(io_err("reading the log"))?;
        if done {
            return Ok(());
        }
    }
}
