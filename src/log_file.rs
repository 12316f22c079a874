//! docker's json-file log format: one JSON object per line,
//! `{"log":"...","stream":"stdout"|"stderr","time":"<RFC3339, 9 fractional digits, UTC>"}`.
//! The writer escapes as Go's encoding/json does and splits lines over 16 KiB; the reader
//! follows a file that is still being written; [`rotate`] has the rotation by size.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

pub mod rotate;

pub use rotate::{RotatedReader, Rotation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Max bytes of one entry's payload before docker splits a line (16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// docker's fixed RFC3339 nano format, UTC: "2026-11-23T03:40:24.123456789Z".
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Parse an RFC3339 UTC time ("Z" suffix, any fraction) as written by `format_time` or
/// docker. None for anything else (docker's zero time gives a time before the epoch: None).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let mo: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut tp = hms.split(':');
    let h: i64 = tp.next()?.parse().ok()?;
    let mi: i64 = tp.next()?.parse().ok()?;
    let se: i64 = tp.next()?.parse().ok()?;
    // RFC 3339's ranges (beyond them the arithmetic below would overflow); the fraction
    // is digits (slicing it at 9 bytes must not split a character).
    if !(0..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..61).contains(&se)
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    if secs < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::new(secs as u64, nanos))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `payload` as the body of a JSON string, escaped as Go's encoding/json does.
fn escape_into(out: &mut Vec<u8>, payload: &[u8]) {
    let mut rest = payload;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                escape_str(out, s);
                return;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // SAFETY-free: from_utf8 said this prefix is valid.
                escape_str(out, std::str::from_utf8(valid).unwrap_or(""));
                // Go replaces each invalid byte with U+FFFD.
                let bad = e.error_len().unwrap_or(after.len()).max(1);
                for _ in 0..bad.min(after.len()) {
                    out.extend_from_slice(b"\\ufffd");
                }
                rest = &after[bad.min(after.len())..];
            }
        }
    }
}

fn escape_str(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// Append one encoded entry, with its trailing newline, to `out`.
pub fn encode_entry(out: &mut Vec<u8>, payload: &[u8], stream: Stream, time: &str) {
    out.extend_from_slice(b"{\"log\":\"");
    escape_into(out, payload);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Turns raw bytes read from a container's pipes into entries, one partial line buffered
/// per stream. A line longer than MAX_LINE is emitted in MAX_LINE pieces (docker's split):
/// the split happens as soon as the buffered bytes without a newline reach MAX_LINE.
pub struct LogWriter<W: Write> {
    out: W,
    partial: [Vec<u8>; 2],
    buf: Vec<u8>,
}

impl<W: Write> LogWriter<W> {
    pub fn new(out: W) -> Self {
        LogWriter {
            out,
            partial: [Vec::new(), Vec::new()],
            buf: Vec::new(),
        }
    }

    fn idx(stream: Stream) -> usize {
        match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    /// Feed bytes read from `stream`; all entries they complete go out in one write.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> io::Result<()> {
        let now = format_time(SystemTime::now());
        let i = Self::idx(stream);
        self.buf.clear();
        while !data.is_empty() {
            let pending = &mut self.partial[i];
            let room = MAX_LINE - pending.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let line = &data[..=nl];
                    if pending.is_empty() {
                        encode_entry(&mut self.buf, line, stream, &now);
                    } else {
                        pending.extend_from_slice(line);
                        encode_entry(&mut self.buf, pending, stream, &now);
                        pending.clear();
                    }
                    data = &data[nl + 1..];
                }
                None if window.len() == room => {
                    pending.extend_from_slice(window);
                    encode_entry(&mut self.buf, pending, stream, &now);
                    pending.clear();
                    data = &data[room..];
                }
                None => {
                    pending.extend_from_slice(window);
                    data = &[];
                }
            }
        }
        self.flush_buf()
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        if self.buf.capacity() > 4 * MAX_LINE {
            self.buf.shrink_to(MAX_LINE);
        }
        Ok(())
    }

    /// At EOF of a stream: emit its buffered partial line (without newline) if any.
    pub fn finish(&mut self, stream: Stream) -> io::Result<()> {
        let i = Self::idx(stream);
        if self.partial[i].is_empty() {
            return Ok(());
        }
        let now = format_time(SystemTime::now());
        self.buf.clear();
        encode_entry(&mut self.buf, &self.partial[i], stream, &now);
        self.partial[i].clear();
        self.flush_buf()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Parse one JSON line.
pub fn parse_line(line: &[u8]) -> Result<LogEntry, serde_json::Error> {
    serde_json::from_slice(line)
}

/// Reads a json-file log, keeping its place so a follower can continue where it stopped.
/// A trailing line without its newline yet is kept back until it is complete.
pub struct LogReader {
    file: File,
    partial: Vec<u8>,
    line_no: usize,
}

impl LogReader {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(LogReader::from_file(File::open(path)?))
    }

    /// A reader of `file` from its current offset.
    pub fn from_file(file: File) -> Self {
        LogReader {
            file,
            partial: Vec::new(),
            line_no: 0,
        }
    }

    /// A writer that could not write an entry whole (a full disk) cuts the file back to
    /// the entry's start, where its next entry then goes: when the partial entry read last
    /// time is no longer in the file as read, it is dropped and reading resumes where it
    /// started.
    fn skip_cut_entry(&mut self) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::FileExt;
        if self.partial.is_empty() {
            return Ok(());
        }
        let at = self.file.stream_position()?;
        let start = at.saturating_sub(self.partial.len() as u64);
        let mut now = vec![0u8; self.partial.len()];
        let same = match self.file.read_exact_at(&mut now, start) {
            Ok(()) => now == self.partial,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => false,
            Err(e) => return Err(e),
        };
        if !same {
            self.file.seek(SeekFrom::Start(start))?;
            self.partial.clear();
        }
        Ok(())
    }

    /// Read everything complete in the file now, calling `f` for each entry in order.
    pub fn read_available(&mut self, f: &mut dyn FnMut(&LogEntry)) -> io::Result<usize> {
        let mut count = 0;
        self.skip_cut_entry()?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match self.file.read(&mut chunk) {
                Ok(0) => return Ok(count),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.partial.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            while let Some(pos) = self.partial[start..].iter().position(|&b| b == b'\n') {
                let line = &self.partial[start..start + pos];
                self.line_no += 1;
                if !line.is_empty() {
                    let e = parse_line(line).map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("log line {}: {e}", self.line_no),
                        )
                    })?;
                    f(&e);
                    count += 1;
                }
                start += pos + 1;
            }
            self.partial.drain(..start);
        }
    }
}

/// A `logs --since`/`--until` value as docker reads it: a Go duration before `now`
/// ("10m", "1h30m", "1.5s"), Unix seconds with an optional fraction ("1700000000.5"),
/// an RFC 3339 UTC time, or a date ("2026-12-05", midnight UTC). None for anything else.
pub fn parse_time_arg(s: &str, now: SystemTime) -> Option<SystemTime> {
    if let Some(d) = parse_go_duration(s) {
        return Some(
            now.checked_sub(d)
                .filter(|t| *t >= UNIX_EPOCH)
                .unwrap_or(UNIX_EPOCH),
        );
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if digits(whole) && (frac.is_empty() || digits(frac)) && !s.ends_with('.') {
        let secs: u64 = whole.parse().ok()?;
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?
        };
        return UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
    }
    if s.len() == 10 && s.as_bytes()[4] == b'-' {
        return parse_time(&format!("{s}T00:00:00Z"));
    }
    parse_time(s)
}

/// A Go duration ("300ms", "1h30m", "-"-less); None when `s` is not one.
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(payload: &[u8]) -> String {
        let mut v = Vec::new();
        encode_entry(&mut v, payload, Stream::Stdout, "T");
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escaping_as_go() {
        let cases: &[(&[u8], &str)] = &[
            (b"hello\n", r#"hello\n"#),
            (b"a\"b\\c", r#"a\"b\\c"#),
            (b"\r\t", r#"\r\t"#),
            (b"\x00\x01\x1f\x7f", "\\u0000\\u0001\\u001f\x7f"),
            (b"<a>&", r#"\u003ca\u003e\u0026"#),
            ("\u{2028}\u{2029}".as_bytes(), r#"\u2028\u2029"#),
            ("héllo €".as_bytes(), "héllo €"),
            (b"a\xffb", r#"a\ufffdb"#),
            (b"\xe2\x82", r#"\ufffd\ufffd"#),
            (b"\xc3", r#"\ufffd"#),
        ];
        for (input, want) in cases {
            assert_eq!(
                enc(input),
                format!("{{\"log\":\"{want}\",\"stream\":\"stdout\",\"time\":\"T\"}}\n"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn round_trip_random_bytes() {
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..200 {
            let len = (seed % 64) as usize;
            let mut payload = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                payload.push((seed & 0xff) as u8);
            }
            let mut v = Vec::new();
            encode_entry(&mut v, &payload, Stream::Stderr, "T");
            let e = parse_line(&v).unwrap();
            assert_eq!(e.log, go_lossy(&payload));
            assert_eq!(e.stream, "stderr");
        }
    }

    /// Go's replacement: one U+FFFD per invalid byte.
    fn go_lossy(b: &[u8]) -> String {
        let mut out = String::new();
        let mut rest = b;
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    out.push_str(std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap());
                    let after = &rest[e.valid_up_to()..];
                    let bad = e.error_len().unwrap_or(after.len()).max(1).min(after.len());
                    for _ in 0..bad {
                        out.push('\u{fffd}');
                    }
                    rest = &after[bad..];
                }
            }
        }
        out
    }

    fn entries(w: LogWriter<Vec<u8>>) -> Vec<(String, String)> {
        let bytes = w.into_inner();
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let e = parse_line(l).unwrap();
                (e.stream, e.log)
            })
            .collect()
    }

    #[test]
    fn byte_by_byte_equals_one_write() {
        let data = b"one\ntwo\n\nthree-partial";
        let mut a = LogWriter::new(Vec::new());
        a.write(Stream::Stdout, data).unwrap();
        a.finish(Stream::Stdout).unwrap();
        let mut b = LogWriter::new(Vec::new());
        for byte in data {
            b.write(Stream::Stdout, &[*byte]).unwrap();
        }
        b.finish(Stream::Stdout).unwrap();
        let ea = entries(a);
        assert_eq!(ea, entries(b));
        let logs: Vec<&str> = ea.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(logs, ["one\n", "two\n", "\n", "three-partial"]);
    }

    #[test]
    fn streams_keep_their_own_partial_lines() {
        let mut w = LogWriter::new(Vec::new());
        w.write(Stream::Stdout, b"out-a").unwrap();
        w.write(Stream::Stderr, b"err-a").unwrap();
        w.write(Stream::Stdout, b"-b\n").unwrap();
        w.write(Stream::Stderr, b"-b\n").unwrap();
        assert_eq!(
            entries(w),
            vec![
                ("stdout".to_string(), "out-a-b\n".to_string()),
                ("stderr".to_string(), "err-a-b\n".to_string())
            ]
        );
    }

    #[test]
    fn long_lines_split_at_16k() {
        let mut w = LogWriter::new(Vec::new());
        w.write(Stream::Stdout, &vec![b'x'; 40 * 1024]).unwrap();
        w.finish(Stream::Stdout).unwrap();
        let lens: Vec<usize> = entries(w).iter().map(|(_, l)| l.len()).collect();
        assert_eq!(lens, [MAX_LINE, MAX_LINE, 40 * 1024 - 2 * MAX_LINE]);

        // Exactly MAX_LINE bytes then the newline: the bytes are one piece, "\n" another.
        let mut w = LogWriter::new(Vec::new());
        let mut line = vec![b'y'; MAX_LINE];
        line.push(b'\n');
        w.write(Stream::Stdout, &line).unwrap();
        let e = entries(w);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].1.len(), MAX_LINE);
        assert_eq!(e[1].1, "\n");

        // One byte less fits whole with its newline.
        let mut w = LogWriter::new(Vec::new());
        let mut line = vec![b'z'; MAX_LINE - 1];
        line.push(b'\n');
        w.write(Stream::Stdout, &line).unwrap();
        assert_eq!(entries(w).len(), 1);
    }

    #[test]
    fn finish_without_partial_is_silent() {
        let mut w = LogWriter::new(Vec::new());
        w.write(Stream::Stdout, b"done\n").unwrap();
        w.finish(Stream::Stdout).unwrap();
        w.finish(Stream::Stderr).unwrap();
        assert_eq!(entries(w).len(), 1);
    }

    #[test]
    fn times() {
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_millis(1500)),
            "1970-01-01T00:00:01.500000000Z"
        );
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 1);
        assert_eq!(format_time(t), "2024-02-29T12:34:56.000000001Z");
        assert_eq!(parse_time("2024-02-29T12:34:56.000000001Z"), Some(t));
        assert_eq!(
            parse_time("2024-02-29T12:34:56Z"),
            Some(UNIX_EPOCH + Duration::new(1_709_210_096, 0))
        );
        assert_eq!(parse_time(crate::record::ZERO_TIME), None);
        assert_eq!(parse_time("garbage"), None);
        let now = SystemTime::now();
        assert_eq!(parse_time(&format_time(now)), Some(now));
    }

    #[test]
    fn reader_waits_for_complete_lines() {
        let p = std::env::temp_dir().join(format!(
            "ocishim-log-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut a = Vec::new();
        encode_entry(&mut a, b"first\n", Stream::Stdout, "T");
        let mut b = Vec::new();
        encode_entry(&mut b, b"second\n", Stream::Stderr, "T");
        let cut = b.len() / 2;
        let mut f = File::create(&p).unwrap();
        f.write_all(&a).unwrap();
        f.write_all(&b[..cut]).unwrap();
        let mut r = LogReader::open(&p).unwrap();
        let mut got = Vec::new();
        assert_eq!(
            r.read_available(&mut |e| got.push(e.log.clone())).unwrap(),
            1
        );
        f.write_all(&b[cut..]).unwrap();
        assert_eq!(
            r.read_available(&mut |e| got.push(e.log.clone())).unwrap(),
            1
        );
        assert_eq!(got, ["first\n", "second\n"]);
        // The writer cuts off an entry it could not write whole, then writes the next one
        // where it started: the reader drops what it had of the cut one.
        let mut c = Vec::new();
        encode_entry(&mut c, b"third\n", Stream::Stdout, "T");
        let len = f.metadata().unwrap().len();
        f.write_all(&c[..10]).unwrap();
        assert_eq!(r.read_available(&mut |_| {}).unwrap(), 0);
        f.set_len(len).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(len)).unwrap();
        f.write_all(&c).unwrap();
        assert_eq!(
            r.read_available(&mut |e| got.push(e.log.clone())).unwrap(),
            1
        );
        assert_eq!(got, ["first\n", "second\n", "third\n"]);
        std::fs::write(&p, b"not json\n").unwrap();
        let mut r = LogReader::open(&p).unwrap();
        assert_eq!(
            r.read_available(&mut |_| {}).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn since_and_until_as_docker_reads_them() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s| parse_time_arg(s, now);
        assert_eq!(at("10m"), Some(now - Duration::from_secs(600)));
        assert_eq!(at("1h30m"), Some(now - Duration::from_secs(5400)));
        assert_eq!(at("1.5s"), Some(now - Duration::from_millis(1500)));
        assert_eq!(at("0"), Some(UNIX_EPOCH));
        assert_eq!(
            at("12.25"),
            Some(UNIX_EPOCH + Duration::from_millis(12_250))
        );
        assert_eq!(
            at("1970-01-02T00:00:01.5Z"),
            Some(UNIX_EPOCH + Duration::from_millis(86_401_500))
        );
        assert_eq!(
            at("1970-01-03"),
            Some(UNIX_EPOCH + Duration::from_secs(172_800))
        );
        for bad in ["", "x", "1.", "10q", "tomorrow", "-5m"] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }
}
