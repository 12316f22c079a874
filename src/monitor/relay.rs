//! The monitor's relay: the container's stdout and stderr pipes into the json-file log.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::log_file::{LogWriter, Stream};

/// Read buffer for the container's pipes.
const BUF: usize = 16 * 1024;

/// Copy both pipes into the json-file log until both reach EOF.
pub fn relay(log_path: &Path, out: OwnedFd, err: OwnedFd) -> io::Result<()> {
    // Without a log file the pipes are still drained (into /dev/null), or the container
    // would block once a pipe is full.
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(log_path)
        .or_else(|e| {
            tracing::warn!("opening {}: {e}", log_path.display());
            OpenOptions::new().write(true).open("/dev/null")
        })?;
    let mut w = LogWriter::new(file);
    let mut fds = [
        (Some(File::from(out)), Stream::Stdout),
        (Some(File::from(err)), Stream::Stderr),
    ];
    let mut buf = vec![0u8; BUF];
    loop {
        // Which pipes are still open and, of those, which have something (or EOF).
        let mut ready = [false; 2];
        {
            let [out, err] = &fds;
            let mut pfds: [Option<PollFd>; 2] = [
                out.0
                    .as_ref()
                    .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)),
                err.0
                    .as_ref()
                    .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)),
            ];
            let polled = match &mut pfds {
                [None, None] => return Ok(()),
                [Some(a), Some(b)] => {
                    let mut both = [*a, *b];
                    let r = nix::poll::poll(&mut both, PollTimeout::NONE);
                    ready = both.map(|p| p.any().unwrap_or(false));
                    r
                }
                [Some(one), None] | [None, Some(one)] => {
                    let r = nix::poll::poll(std::slice::from_mut(one), PollTimeout::NONE);
                    let i = usize::from(out.0.is_none());
                    ready[i] = one.any().unwrap_or(false);
                    r
                }
            };
            match polled {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        for (i, ready) in ready.into_iter().enumerate() {
            if !ready {
                continue;
            }
            let (slot, stream) = &mut fds[i];
            let Some(f) = slot.as_mut() else { continue };
            // A log write that fails (disk full) must not stop the draining: a container
            // whose pipe fills would block. Output is dropped until writes work again.
            let keep = |r: io::Result<()>| {
                if let Err(e) = r {
                    tracing::warn!("writing the log: {e}");
                }
            };
            match f.read(&mut buf) {
                Ok(0) => {
                    keep(w.finish(*stream));
                    *slot = None;
                }
                Ok(n) => keep(w.write(*stream, &buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    keep(w.finish(*stream));
                    *slot = None;
                    tracing::warn!("reading container output: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn both_pipes_end_up_in_the_log_until_eof() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let (or, ow) = crate::sys::pipe().unwrap();
        let (er, ew) = crate::sys::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let (mut o, mut e) = (File::from(ow), File::from(ew));
            o.write_all(b"out 1\nout ").unwrap();
            e.write_all(b"err 1\n").unwrap();
            o.write_all(b"2\n").unwrap();
        });
        relay(&log, or, er).unwrap();
        writer.join().unwrap();
        let mut lines = Vec::new();
        let mut r = crate::log_file::LogReader::open(&log).unwrap();
        r.read_available(&mut |e| lines.push((e.stream.clone(), e.log.clone())))
            .unwrap();
        lines.sort();
        assert_eq!(
            lines,
            vec![
                ("stderr".to_string(), "err 1\n".to_string()),
                ("stdout".to_string(), "out 1\n".to_string()),
                ("stdout".to_string(), "out 2\n".to_string()),
            ]
        );
    }
}
