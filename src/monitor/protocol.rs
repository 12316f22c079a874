//! Both ends of the sync pipe between a launching CLI and a container's monitor.
//!
//! The monitor's first half (see [`super::launch`]) writes, with no allocation:
//! - `M<monitor pid>\n` once it runs;
//! - `K<container pid>\n` once the runtime's create succeeded (then it execs
//!   `ocishim __monitor`, which closes the pipe);
//! - `F<wait status>\n` and then the runtime's stderr, when the create failed;
//! - `\nE<message>` when the monitor itself failed (fork, setsid, no pid file, ...).
//!
//! The CLI reads up to EOF or up to a complete `K` line ([`read_report`]) and parses
//! what it got into a [`Report`].

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::MonitorError;

/// The tag of the monitor's own PID.
pub const MONITOR: u8 = b'M';
/// The tag of the container's PID: the create succeeded.
pub const STARTED: u8 = b'K';
/// The tag of the runtime's wait status: its create failed (its stderr follows).
pub const CREATE_FAILED: u8 = b'F';
/// The tag of the monitor's own failure (after a newline).
pub const FAILED: u8 = b'E';

/// A tagged number line (`M123\n`) in `buf`, without allocating: for the forked child.
pub fn encode(tag: u8, v: i64, buf: &mut [u8; 24]) -> &[u8] {
    let mut digits = [0u8; 20];
    let d = itoa(v, &mut digits);
    buf[0] = tag;
    buf[1..1 + d.len()].copy_from_slice(d);
    buf[1 + d.len()] = b'\n';
    &buf[..d.len() + 2]
}

/// The decimal digits of `v` in `buf`, without allocating.
pub fn itoa(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// A PID file's content: decimal digits, maybe surrounded by whitespace.
pub fn parse_pid(b: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(b).ok()?.trim();
    s.parse().ok().filter(|p: &i32| *p > 0)
}

/// What the monitor reported on its sync pipe.
#[derive(Debug, PartialEq)]
pub enum Report {
    /// "M<monitor pid>\n" then "K<container pid>\n".
    Started { monitor_pid: i32, pid: i32 },
    /// "F<wait status>\n" and the runtime's stderr: its create failed.
    CreateFailed { status: i32, stderr: String },
    /// "E<message>" (after a newline), or nothing at all.
    Failed(String),
}

/// What the monitor writes on the sync pipe: up to its EOF, or up to a complete "K" line
/// (the monitor then execs `ocishim __monitor`, which closes the pipe; that need not be
/// waited for). At most `timeout` in all.
pub fn read_report(r: OwnedFd, timeout: Duration) -> Result<Vec<u8>, MonitorError> {
    let deadline = Instant::now() + timeout;
    let mut f = File::from(r);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return Err(MonitorError::Timeout),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(MonitorError::Io {
                    what: "waiting for the monitor",
                    source: e.into(),
                })
            }
        }
        match f.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if started(&buf) {
                    return Ok(buf);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(MonitorError::Io {
                    what: "reading the monitor's report",
                    source,
                })
            }
        }
    }
}

/// Whether `buf` holds a complete "K" line before any "F" or "E".
pub fn started(buf: &[u8]) -> bool {
    for line in buf.split_inclusive(|&b| b == b'\n') {
        match line.first() {
            Some(&STARTED) => return line.ends_with(b"\n"),
            Some(&CREATE_FAILED | &FAILED) => return false,
            _ => {}
        }
    }
    false
}

/// Parse what the monitor wrote.
pub fn parse_report(buf: &[u8]) -> Report {
    let text = String::from_utf8_lossy(buf);
    let mut monitor_pid = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let (tag, rest) = line.split_at(1.min(line.len()));
        match tag.as_bytes().first() {
            Some(&MONITOR) => monitor_pid = rest.trim().parse().unwrap_or(0),
            Some(&STARTED) => {
                return Report::Started {
                    monitor_pid,
                    pid: rest.trim().parse().unwrap_or(0),
                }
            }
            Some(&CREATE_FAILED) => {
                return Report::CreateFailed {
                    status: rest.trim().parse().unwrap_or(-1),
                    stderr: text[at + line.len()..].to_string(),
                }
            }
            Some(&FAILED) => return Report::Failed(text[at + 1..].trim().to_string()),
            _ => {}
        }
        at += line.len();
    }
    Report::Failed(format!(
        "the monitor exited without reporting{}",
        if text.is_empty() {
            String::new()
        } else {
            format!(": {}", text.trim())
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_without_allocation() {
        let mut b = [0u8; 20];
        assert_eq!(itoa(0, &mut b), b"0");
        assert_eq!(itoa(4194304, &mut b), b"4194304");
        assert_eq!(itoa(-11, &mut b), b"-11");
        assert_eq!(itoa(i64::MIN, &mut b), b"-9223372036854775808");
        let mut line = [0u8; 24];
        assert_eq!(encode(MONITOR, 12, &mut line), b"M12\n");
        assert_eq!(
            encode(CREATE_FAILED, i64::MIN, &mut line),
            b"F-9223372036854775808\n"
        );
        assert_eq!(parse_pid(b"1234"), Some(1234));
        assert_eq!(parse_pid(b" 1234\n"), Some(1234));
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"0"), None);
        assert_eq!(parse_pid(b"12a"), None);
    }

    #[test]
    fn what_the_writer_encodes_the_reader_parses() {
        let mut a = [0u8; 24];
        let mut b = [0u8; 24];
        let mut report = encode(MONITOR, 12, &mut a).to_vec();
        report.extend_from_slice(encode(STARTED, 34, &mut b));
        assert!(started(&report));
        assert_eq!(
            parse_report(&report),
            Report::Started {
                monitor_pid: 12,
                pid: 34
            }
        );
    }

    #[test]
    fn monitor_reports() {
        assert_eq!(
            parse_report(b"M12\nK34\n"),
            Report::Started {
                monitor_pid: 12,
                pid: 34
            }
        );
        // The runtime's stderr after F is taken whole, even lines that look like tags.
        assert_eq!(
            parse_report(b"M12\nF256\nK1\nerror: boom\n"),
            Report::CreateFailed {
                status: 256,
                stderr: "K1\nerror: boom\n".into()
            }
        );
        let failed: [(&[u8], &str); 4] = [
            (
                b"M12\n\nEmonitor: fork: errno 11",
                "monitor: fork: errno 11",
            ),
            (b"\nEmonitor: setsid: errno 1", "monitor: setsid: errno 1"),
            (b"", "the monitor exited without reporting"),
            (b"M12\n", "the monitor exited without reporting: M12"),
        ];
        for (report, message) in failed {
            assert_eq!(parse_report(report), Report::Failed(message.into()));
        }
        // The CLI stops reading at a whole K line; before it, or after F/E, it reads on.
        assert!(started(b"M12\nK34\n"));
        assert!(!started(b"M12\nK3"));
        assert!(!started(b"M12\n"));
        assert!(!started(b"M12\nF256\nK1\n"));
        assert!(!started(b"M12\n\nEx\nK1\n"));
    }

    #[test]
    fn read_report_stops_at_k_or_eof_and_times_out() {
        use std::io::Write;
        let (r, w) = crate::sys::pipe().unwrap();
        let mut w = File::from(w);
        w.write_all(b"M1\nK2\n").unwrap();
        // The writer is still open: the reader returns at the K line, not at EOF.
        assert_eq!(read_report(r, Duration::from_secs(5)).unwrap(), b"M1\nK2\n");
        let (r, w) = crate::sys::pipe().unwrap();
        File::from(w).write_all(b"M1\nF256\nboom").unwrap();
        assert_eq!(
            read_report(r, Duration::from_secs(5)).unwrap(),
            b"M1\nF256\nboom"
        );
        let (r, _w) = crate::sys::pipe().unwrap();
        assert!(matches!(
            read_report(r, Duration::from_millis(30)),
            Err(MonitorError::Timeout)
        ));
    }
}
