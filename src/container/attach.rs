//! An attached `run` (the log printed as it grows, signals forwarded, the container's
//! exit code returned) and `logs`.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use super::{monitor_alive, Context};
use crate::error::{io_err, Error};
use crate::log_file::{LogEntry, LogReader};
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

/// Print the log from where `reader` stopped, opening it once it exists.
fn print_new(path: &Path, reader: &mut Option<LogReader>) -> Result<(), Error> {
    if reader.is_none() {
        *reader = LogReader::open(path).ok();
    }
    if let Some(r) = reader.as_mut() {
        r.read_available(&mut print)
            .map_err(io_err("reading the log"))?;
    }
    Ok(())
}

/// Wait for an attached container: print its log as it grows, forward signals, and
/// return its exit code once the monitor has recorded it.
pub fn attach_wait(ctx: &Context, id: &str) -> Result<i32, Error> {
    let rec = ctx.store.read(id)?;
    let mfd = sys::pidfd_open(rec.ocishim.monitor_pid).map_err(io_err("watching the monitor"))?;
    let log_path = Path::new(&rec.log_path);
    let mut reader = None;
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
            print_new(log_path, &mut reader)?;
        }
        if done {
            break;
        }
    }
    let rec = ctx.store.read(id)?;
    Ok(rec.state.exit_code)
}

/// `logs`: print the log; with `follow`, until the container has exited.
pub fn logs(ctx: &Context, query: &str, follow: bool) -> Result<(), Error> {
    let id = ctx.store.resolve(query)?;
    let rec = ctx.store.read(&id)?;
    if rec.log_path.is_empty() {
        return Err(Error::NoLogs);
    }
    let path = Path::new(&rec.log_path);
    let mut reader = match LogReader::open(path) {
        Ok(r) => Some(r),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("opening the log")(e)),
    };
    let mfd = if follow && monitor_alive(&rec) {
        sys::pidfd_open(rec.ocishim.monitor_pid).ok().flatten()
    } else {
        None
    };
    loop {
        let done = match &mfd {
            Some(fd) => sys::pidfd_wait(fd, Duration::from_millis(50)),
            None => true,
        };
        print_new(path, &mut reader)?;
        if done {
            return Ok(());
        }
    }
}
