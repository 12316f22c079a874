//! The monitor's relay: the container's stdout and stderr pipes into the json-file log,
//! through a [`LogSink`] that rotates the log by size and rides out a full disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::log_file::rotate::{self, Rotation, Step};
use crate::log_file::{LogWriter, Stream};

/// Read buffer for the container's pipes.
const BUF: usize = 16 * 1024;

/// How often at most the relay tries to record the dropped-line count while it runs.
const RECORD_EVERY: Duration = Duration::from_secs(1);

/// The json-file log as the monitor writes it: whole entries only, rotated by size when
/// asked, and never blocking the relay. A write that fails (a full disk) drops the entries
/// it could not write whole (a partially written one is cut off again), counts them, and
/// the next batch tries again: writing resumes by itself once there is space.
pub struct LogSink {
    path: PathBuf,
    file: Option<File>,
    /// Bytes in the current file (only the monitor writes it).
    size: u64,
    rotation: Option<Rotation>,
    /// Entries dropped since the monitor started.
    pub dropped: u64,
    /// The last write failed (for one warning per episode).
    failing: bool,
}

impl LogSink {
    pub fn new(path: &Path, rotation: Option<Rotation>) -> LogSink {
        let mut s = LogSink {
            path: path.to_path_buf(),
            file: None,
            size: 0,
            rotation,
            dropped: 0,
            failing: false,
        };
        s.open();
        s
    }

    fn open(&mut self) -> bool {
        let opened = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path)
            .and_then(|f| Ok((f.metadata()?.len(), f)));
        match opened {
            Ok((size, f)) => {
                (self.file, self.size) = (Some(f), size);
                true
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!("opening {}: {e}", self.path.display());
                }
                false
            }
        }
    }

    /// Rotate: rename the files along (see [`rotate::plan`]) and start a new current file.
    /// False when the current file could not be moved away.
    fn rotate(&mut self, r: Rotation) -> bool {
        self.file = None;
        for step in rotate::plan(r.max_file) {
            let done = match step {
                Step::Rename { from, to } => std::fs::rename(
                    rotate::file_path(&self.path, from),
                    rotate::file_path(&self.path, to),
                ),
                Step::Remove(n) => std::fs::remove_file(rotate::file_path(&self.path, n)),
            };
            match done {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    tracing::warn!("rotating {}: {e}", self.path.display());
                    self.open();
                    return false;
                }
                _ => {}
            }
        }
        self.open()
    }

    fn drop_entries(&mut self, bytes: &[u8], e: &io::Error) {
        if !self.failing {
            tracing::warn!("writing {}: {e}; dropping output", self.path.display());
        }
        self.failing = true;
        self.dropped += rotate::count_entries(bytes);
    }

    /// Write `batch` (whole entries) whole into the current file; on failure the file is
    /// cut back to its last whole entry and the rest of the batch is dropped.
    fn write_batch(&mut self, mut batch: &[u8]) {
        while !batch.is_empty() {
            if self.file.is_none() && !self.open() {
                let e = io::Error::new(io::ErrorKind::NotFound, "no log file");
                return self.drop_entries(batch, &e);
            }
            let n = match self.rotation {
                None => batch.len(),
                Some(r) => match rotate::fitting(self.size, batch, r.max_size) {
                    0 if self.rotate(r) => continue,
                    // The file could not be rotated: it takes one entry past max-size
                    // rather than none.
                    0 => batch
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(batch.len(), |i| i + 1),
                    n => n,
                },
            };
            let Some(f) = self.file.as_mut() else {
                continue;
            };
            let (written, res) = write_counted(f, &batch[..n]);
            if let Err(e) = res {
                let keep = rotate::whole_prefix(&batch[..written]);
                if keep < written {
                    if let Err(t) = f.set_len(self.size + keep as u64) {
                        tracing::warn!("cutting off a partial entry: {t}");
                    }
                }
                self.size += keep as u64;
                return self.drop_entries(&batch[keep..], &e);
            }
            self.size += n as u64;
            self.failing = false;
            batch = &batch[n..];
        }
    }
}

/// write(2) all of `buf`, retrying on EINTR: how much was written, and the error if any.
fn write_counted(f: &mut File, buf: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < buf.len() {
        match f.write(&buf[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// The sink takes the encoded entries [`LogWriter`] hands it, always whole: it never
/// fails and never writes short (what it cannot write it drops and counts).
impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_batch(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copy both pipes into the json-file log until both reach EOF. Whatever happens to the
/// log (a full disk, a missing directory), the pipes are drained, or the container would
/// block once one is full. While entries are being dropped, `record(dropped)` is called
/// now and then (at most every [`RECORD_EVERY`], after a write) to store the count of
/// dropped entries; it returns whether that worked. Returns the count.
pub fn relay(
    sink: LogSink,
    out: OwnedFd,
    err: OwnedFd,
    record: &mut dyn FnMut(u64) -> bool,
) -> io::Result<u64> {
    let mut w = LogWriter::new(sink);
    let mut recorded = 0u64;
    let mut last_try: Option<Instant> = None;
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
                [None, None] => return Ok(w.into_inner().dropped),
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
        let sink = w.get_ref();
        if sink.dropped > recorded && last_try.is_none_or(|t| t.elapsed() >= RECORD_EVERY) {
            last_try = Some(Instant::now());
            if record(sink.dropped) {
                recorded = sink.dropped;
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
        let dropped = relay(LogSink::new(&log, None), or, er, &mut |_| true).unwrap();
        assert_eq!(dropped, 0);
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

    /// Entries into a sink rotating at 1000 bytes keeping 3 files: at most 3 files, none
    /// past max-size but for one oversized entry alone, whole entries only, and what is
    /// kept is the tail of what was written, in order.
    #[test]
    fn the_sink_rotates_between_whole_entries() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let rot = Rotation {
            max_size: 1000,
            max_file: 3,
        };
        let mut w = LogWriter::new(LogSink::new(&log, Some(rot)));
        for i in 0..500 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
            if i == 250 {
                w.write(Stream::Stdout, &[b'x'; 3000]).unwrap();
                w.write(Stream::Stdout, b"\n").unwrap();
            }
        }
        // A batch of many entries at once is split at entry boundaries too.
        let batch: String = (500..600).map(|i| format!("line {i}\n")).collect();
        w.write(Stream::Stdout, batch.as_bytes()).unwrap();
        assert_eq!(w.get_ref().dropped, 0);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["c-json.log", "c-json.log.1", "c-json.log.2"]);
        let mut seen = Vec::new();
        for n in [2, 1, 0] {
            let text = std::fs::read(rotate::file_path(&log, n)).unwrap();
            assert!(text.len() <= 1000, "file {n}: {} bytes", text.len());
            assert!(text.ends_with(b"\n"));
            for l in text.split_inclusive(|&b| b == b'\n') {
                let e = crate::log_file::parse_line(l).unwrap();
                seen.push(e.log.trim_end().to_string());
            }
        }
        let want: Vec<String> = (600 - seen.len()..600)
            .map(|i| format!("line {i}"))
            .collect();
        assert_eq!(seen, want);

        // The oversized entry went whole into a file of its own.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let mut w = LogWriter::new(LogSink::new(&log, Some(rot)));
        w.write(Stream::Stdout, b"before\n").unwrap();
        w.write(Stream::Stdout, &[b'x'; 3000]).unwrap();
        w.write(Stream::Stdout, b"\nafter\n").unwrap();
        let sizes: Vec<usize> = [2, 1, 0]
            .map(|n| std::fs::read(rotate::file_path(&log, n)).unwrap().len())
            .to_vec();
        assert!(
            sizes[0] < 100 && sizes[1] > 3000 && sizes[2] < 100,
            "{sizes:?}"
        );

        // max-file=1: one file, replaced when full.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let one = Rotation {
            max_size: 1000,
            max_file: 1,
        };
        let mut w = LogWriter::new(LogSink::new(&log, Some(one)));
        for i in 0..100 {
            w.write(Stream::Stderr, format!("e{i}\n").as_bytes())
                .unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.len() <= 1000 && text.contains("e99"), "{text}");
    }

    /// A log that cannot be written (/dev/full: every write fails with ENOSPC) drops
    /// whole entries and counts them; the writer never sees an error.
    #[test]
    fn entries_that_cannot_be_written_are_counted() {
        // No rotation here: it would rename /dev/full.
        let mut w = LogWriter::new(LogSink::new(Path::new("/dev/full"), None));
        w.write(Stream::Stdout, b"one\ntwo\nthr").unwrap();
        w.write(Stream::Stderr, b"err\n").unwrap();
        w.write(Stream::Stdout, b"ee\n").unwrap();
        w.finish(Stream::Stdout).unwrap();
        assert_eq!(w.get_ref().dropped, 4);
    }
}
