//! Property tests (issue 16 §6) of the parsers and writers that take outside input:
//! option values (sizes, CPUs, cpusets, ulimits, env files, volumes, tmpfs, devices), the
//! json-file log writer and reader, the exit-code translator, image references and
//! `--format` templates. Each property states what must hold for every input, not just
//! that the code runs; case counts stay small so the unit suite stays fast. The fuzz
//! targets under `fuzz/` exercise the same entry points without a time bound.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use serde_json::{json, Value};

// A test-only module (the layout test exempts it from the one-way rule): it reaches `cli`
// only to test the template parser; nothing depends on it.
use crate::cli::template::Template;
use crate::config::{
    clean_path, parse_bytes, parse_cpuset, parse_device, parse_nano_cpus, parse_tmpfs,
    parse_ulimit, parse_volume, ConfigError, HostFacts, RawOptions, DEFAULT_PATH,
};
use crate::exit_code::{cli_status, from_wait_status, translate, ENOTDIR_HINT};
use crate::image::reference::Reference;
use crate::log_file::{
    format_time, parse_line, parse_time, parse_time_arg, LogReader, LogWriter, Stream, MAX_LINE,
};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // No files of persisted failures in the source tree: failures print their input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that is mostly ASCII punctuation and letters, sometimes anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ -~]{0,40}",
        1 => any::<String>(),
        1 => "[\\PC\\n\\r\\t]{0,20}",
    ]
}

// ---- option values ----------------------------------------------------------------------

const UNITS: &[(&str, u32)] = &[
    ("", 0),
    ("b", 0),
    ("B", 0),
    ("k", 1),
    ("K", 1),
    ("kb", 1),
    ("KiB", 1),
    ("m", 2),
    ("M", 2),
    ("mb", 2),
    ("Mi", 2),
    ("g", 3),
    ("GB", 3),
    ("gib", 3),
    ("t", 4),
    ("TB", 4),
    ("p", 5),
    ("pib", 5),
];

const ULIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// An absolute path with `.`, `..` and empty components mixed in.
fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![4 => "[a-z0-9_.-]{1,6}", 1 => Just(".".to_string()), 1 => Just("..".to_string()), 1 => Just(String::new())],
        0..6,
    )
    .prop_map(|c| format!("/{}", c.join("/")))
}

fn is_clean(p: &str) -> bool {
    p.starts_with('/')
        && (p == "/" || !p.ends_with('/'))
        && p[1..]
            .split('/')
            .all(|c| p == "/" || !matches!(c, "" | "." | ".."))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn bytes_with_units_are_exact_multiples(n in 0u64..(1 << 53), u in 0..UNITS.len(), sp in any::<bool>()) {
        let (unit, power) = UNITS[u];
        let s = format!("{n}{}{unit}", if sp && !unit.is_empty() { " " } else { "" });
        let want = (n as u128) << (10 * power);
        match parse_bytes(&s) {
            Ok(v) => prop_assert_eq!(v as u128, want, "{}", s),
            Err(e) => {
                prop_assert!(want >= i64::MAX as u128, "{s}: {e}");
                prop_assert_eq!(e, format!("invalid size: '{s}'"));
            }
        }
    }

    #[test]
    fn bytes_of_any_text(s in text()) {
        match parse_bytes(&s) {
            Ok(v) => {
                prop_assert!(v >= 0);
                // Surrounding blanks do not matter.
                prop_assert_eq!(parse_bytes(&format!(" {s}\t")), Ok(v));
            }
            Err(e) => prop_assert_eq!(e, format!("invalid size: '{s}'")),
        }
    }

    #[test]
    fn nano_cpus_round_trip(v in any::<i64>().prop_filter("-MIN", |v| *v != i64::MIN), pad in 0usize..3) {
        let a = v.unsigned_abs();
        let s = format!(
            "{}{}.{:09}{}",
            if v < 0 { "-" } else { "" },
            a / 1_000_000_000,
            a % 1_000_000_000,
            "0".repeat(pad)
        );
        prop_assert_eq!(parse_nano_cpus(&s), Ok(v), "{}", s);
    }

    #[test]
    fn nano_cpus_of_any_text(s in prop_oneof!["-?[0-9]{0,12}(\\.[0-9]{0,12})?", text()]) {
        if let Ok(v) = parse_nano_cpus(&s) {
            // Whatever parsed prints back in the fixed form and parses to the same.
            let a = v.unsigned_abs();
            let back = format!("{}{}.{:09}", if v < 0 { "-" } else { "" }, a / 1_000_000_000, a % 1_000_000_000);
            prop_assert_eq!(parse_nano_cpus(&back), Ok(v));
            if let Some(pos) = s.trim().strip_prefix('-') {
                prop_assert_eq!(parse_nano_cpus(pos), Ok(-v));
            }
        }
    }

    #[test]
    fn cpusets_round_trip(ranges in prop::collection::vec((0u32..10_000, 0u32..20, any::<bool>()), 0..6)) {
        let mut want = Vec::new();
        let parts: Vec<String> = ranges
            .iter()
            .map(|&(a, len, single)| {
                if single {
                    want.push(a);
                    a.to_string()
                } else {
                    want.extend(a..=a + len);
                    format!("{a}-{}", a + len)
                }
            })
            .collect();
        prop_assert_eq!(parse_cpuset(&parts.join(",")), Some(want));
    }

    #[test]
    fn cpusets_of_any_text(s in prop_oneof!["[0-9,-]{0,16}", text()]) {
        if let Some(v) = parse_cpuset(&s) {
            let list: Vec<String> = v.iter().map(u32::to_string).collect();
            prop_assert_eq!(parse_cpuset(&list.join(",")), Some(v));
        }
    }

    #[test]
    fn ulimits_accept_exactly_ordered_pairs(n in 0..ULIMITS.len(), soft in -1i64..1 << 40, hard in -1i64..1 << 40, one in any::<bool>()) {
        let name = ULIMITS[n];
        let s = if one { format!("{name}={soft}") } else { format!("{name}={soft}:{hard}") };
        let hard = if one { soft } else { hard };
        let unlimited = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        match parse_ulimit(&s) {
            Ok(u) => {
                prop_assert!(unlimited(soft) <= unlimited(hard));
                prop_assert_eq!((u.name.as_str(), u.soft, u.hard), (name, soft, hard));
            }
            Err(e) => {
                prop_assert!(unlimited(soft) > unlimited(hard), "{s}: {e}");
                prop_assert!(e.to_string().contains("soft limit"), "{e}");
            }
        }
    }

    #[test]
    fn ulimits_of_any_text(s in prop_oneof!["[a-z]{1,10}=-?[0-9]{1,4}(:-?[0-9]{1,4})?", text()]) {
        match parse_ulimit(&s) {
            Ok(u) => {
                prop_assert!(ULIMITS.contains(&u.name.as_str()));
                prop_assert!(u.soft >= -1 && u.hard >= -1);
                let again = parse_ulimit(&format!("{}={}:{}", u.name, u.soft, u.hard));
                prop_assert_eq!(again, Ok(u));
            }
            Err(e) => {
                let ours = matches!(e, ConfigError::InvalidValue { flag: "--ulimit", .. });
                prop_assert!(ours, "{e}");
            }
        }
    }

    #[test]
    fn clean_paths_are_clean_and_stable(p in prop_oneof![raw_path(), text()]) {
        let c = clean_path(&p);
        prop_assert!(is_clean(&c), "{:?} -> {:?}", p, c);
        prop_assert_eq!(clean_path(&c), c.clone());
    }

    #[test]
    fn volumes_round_trip(src in raw_path(), dst in raw_path(), ro in any::<bool>(), pi in 0..PROPAGATIONS.len(), extra in prop::sample::subsequence(vec!["z", "Z", "nocopy"], 0..2)) {
        let mut opts = vec![if ro { "ro" } else { "rw" }, PROPAGATIONS[pi]];
        opts.extend(extra);
        let s = format!("{src}:{dst}:{}", opts.join(","));
        match parse_volume(&s) {
            Ok(b) => {
                prop_assert_eq!(b.source.to_str().unwrap(), clean_path(&src));
                prop_assert_eq!(&b.destination, &clean_path(&dst));
                prop_assert_eq!((b.read_only, b.propagation.as_str()), (ro, PROPAGATIONS[pi]));
            }
            Err(e) => prop_assert!(clean_path(&dst) == "/", "{s}: {e}"),
        }
    }

    #[test]
    fn volumes_of_any_text(s in prop_oneof!["(/[a-z.]{0,3}){1,3}:(/[a-z.]{0,3}){1,3}(:[a-z,]{0,12})?", text()]) {
        if let Ok(b) = parse_volume(&s) {
            let src = b.source.to_str().unwrap().to_string();
            prop_assert!(is_clean(&src) && is_clean(&b.destination) && b.destination != "/");
            prop_assert!(PROPAGATIONS.contains(&b.propagation.as_str()));
            let again = format!("{src}:{}:{},{}", b.destination, if b.read_only { "ro" } else { "rw" }, b.propagation);
            prop_assert_eq!(parse_volume(&again), Ok(b));
        }
    }

    #[test]
    fn tmpfs_of_any_text(s in prop_oneof!["(/[a-z.]{0,3}){1,3}(:[a-z=0-9,]{0,20})?", text()]) {
        if let Ok(t) = parse_tmpfs(&s) {
            prop_assert!(is_clean(&t.destination) && t.destination != "/");
            let mut seen = t.options.clone();
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), t.options.len(), "duplicate options {:?}", t.options);
            prop_assert_eq!(parse_tmpfs(&format!("{}:{}", t.destination, t.options.join(","))), Ok(t));
        }
    }

    #[test]
    fn devices_round_trip(host in "(/[a-z0-9]{1,5}){1,3}", ctr in raw_path(), perms in "[rwm]{1,3}", form in 0..4) {
        let s = match form {
            0 => host.clone(),
            1 => format!("{host}:{perms}"),
            2 => format!("{host}:{ctr}"),
            _ => format!("{host}:{ctr}:{perms}"),
        };
        let d = parse_device(&s).unwrap();
        prop_assert_eq!(d.host.to_str().unwrap(), host.as_str());
        let (want_ctr, want_perms) = match form {
            0 => (host.clone(), "rwm"),
            1 => (host.clone(), perms.as_str()),
            2 => (clean_path(&ctr), "rwm"),
            _ => (clean_path(&ctr), perms.as_str()),
        };
        prop_assert_eq!(&d.container, &want_ctr);
        prop_assert_eq!(d.permissions.as_str(), want_perms);
    }

    #[test]
    fn devices_of_any_text(s in prop_oneof!["(/[a-z]{0,3}){1,2}(:(/[a-z]{0,3}){1,2})?(:[rwmx]{0,3})?", text()]) {
        if let Ok(d) = parse_device(&s) {
            let host = d.host.to_str().unwrap().to_string();
            prop_assert!(host.starts_with('/') && is_clean(&d.container));
            prop_assert!(!d.permissions.is_empty() && d.permissions.chars().all(|c| "rwm".contains(c)));
            let again = format!("{host}:{}:{}", d.container, d.permissions);
            prop_assert_eq!(parse_device(&again), Ok(d));
        }
    }
}

// ---- env files ----------------------------------------------------------------------------

fn host_facts() -> HostFacts {
    HostFacts {
        ncpu: 2,
        cpus_online: "0-1".into(),
        mems_online: "0".into(),
        env: [("HOSTVAR".to_string(), "from host".to_string())].into(),
    }
}

/// The container's env for an env file holding `text` (PATH comes first, as always).
fn env_of_file(text: &str) -> Result<Vec<String>, ConfigError> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let raw = RawOptions {
        rootfs: Some("/tmp/rootfs".into()),
        args: vec!["true".into()],
        env_file: vec![f.path().to_path_buf()],
        ..Default::default()
    };
    raw.into_config(&host_facts()).map(|c| c.env)
}

/// One env file line and what it contributes: (key, entry) or nothing.
fn env_line() -> impl Strategy<Value = (String, Option<(String, Option<String>)>)> {
    let key = "[A-Za-z_][A-Za-z0-9_.]{0,6}|HOSTVAR|PATH";
    prop_oneof![
        4 => (key, "[ -~\u{e9}\t]{0,12}", "[ \t]{0,2}").prop_map(|(k, v, lead)| {
            let v = v.trim_end_matches('\r').to_string();
            (format!("{lead}{k}={v}"), Some((k.clone(), Some(format!("{k}={v}")))))
        }),
        1 => (key, "[ \t]{0,2}").prop_map(|(k, trail)| {
            let entry = (k == "HOSTVAR").then(|| "HOSTVAR=from host".to_string());
            (format!("{k}{trail}"), Some((k, entry)))
        }),
        1 => "[ \t]{0,3}(#[ -~]{0,10})?".prop_map(|l| (l, None)),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn env_files_later_lines_win(lines in prop::collection::vec(env_line(), 0..12), crlf in any::<bool>()) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let text: String = lines.iter().map(|(l, _)| format!("{l}{nl}")).collect();
        // Model: PATH first, a key keeps the place of its first line and the value of its
        // last; a bare key absent from the host's environment adds nothing.
        let mut want: Vec<(String, String)> = vec![("PATH".into(), DEFAULT_PATH.into())];
        for (key, entry) in lines.iter().filter_map(|(_, e)| e.clone()) {
            let Some(entry) = entry else { continue };
            match want.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = entry,
                None => want.push((key, entry)),
            }
        }
        let want: Vec<String> = want.into_iter().map(|(_, e)| e).collect();
        prop_assert_eq!(env_of_file(&text), Ok(want), "{:?}", text);
    }

    #[test]
    fn env_files_of_any_text(text in prop_oneof![
        prop::collection::vec("[ \t]{0,2}[A-Za-z #=\t]{0,6}(=[ -~]{0,6})?", 0..6).prop_map(|l| l.join("\n")),
        text(),
    ]) {
        // A line is refused exactly when its key (before '=', blanks at the start dropped)
        // is empty or holds whitespace; comment and blank lines are skipped.
        let bad_line = text.lines().find(|l| {
            let l = l.trim_start();
            if l.is_empty() || l.starts_with('#') {
                return false;
            }
            let k = l.split_once('=').map_or(l.trim_end(), |(k, _)| k);
            k.is_empty() || k.contains(char::is_whitespace)
        });
        match env_of_file(&text) {
            Ok(env) => {
                prop_assert!(bad_line.is_none(), "{:?} accepted", bad_line);
                for e in &env {
                    let k = e.split('=').next().unwrap();
                    prop_assert!(!k.is_empty() && !k.contains(char::is_whitespace), "{e:?}");
                }
            }
            Err(e) => {
                prop_assert!(bad_line.is_some(), "{text:?}: {e}");
                let ours = matches!(e, ConfigError::EnvFile { .. });
                prop_assert!(ours, "{e}");
            }
        }
    }
}

// ---- json-file logs -------------------------------------------------------------------------

/// Go's `encoding/json` view of bytes: each byte that does not start a valid UTF-8
/// sequence becomes one U+FFFD (decoded one rune at a time, as `utf8.DecodeRune`).
fn go_lossy(b: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let one = (1..=4)
            .filter(|l| i + l <= b.len())
            .find_map(|l| std::str::from_utf8(&b[i..i + l]).ok().map(|s| (s, l)));
        match one {
            Some((s, l)) => {
                out.push_str(s);
                i += l;
            }
            None => {
                out.push('\u{fffd}');
                i += 1;
            }
        }
    }
    out
}

/// What the writer must produce for these writes, byte by byte: a line ends at a newline,
/// or when it reaches MAX_LINE bytes; each stream keeps its own partial line; at the end
/// each stream's partial line is emitted (stdout first, as `finish` is called below).
fn split_model(writes: &[(bool, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut out = Vec::new();
    let name = |i: usize| if i == 0 { "stdout" } else { "stderr" }.to_string();
    for (err, data) in writes {
        let i = *err as usize;
        for &b in data {
            pending[i].push(b);
            if b == b'\n' || pending[i].len() == MAX_LINE {
                out.push((name(i), std::mem::take(&mut pending[i])));
            }
        }
    }
    for (i, p) in pending.into_iter().enumerate() {
        if !p.is_empty() {
            out.push((name(i), p));
        }
    }
    out
}

/// Writes: bytes with many newlines and invalid UTF-8, now and then a long run without a
/// newline (so lines split at MAX_LINE, possibly inside a multi-byte character).
fn log_writes() -> impl Strategy<Value = Vec<(bool, Vec<u8>)>> {
    let chunk = prop_oneof![
        6 => prop::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(0xc3), Just(0xa9)], 0..64),
        1 => (1usize..3 * MAX_LINE, any::<u8>(), any::<bool>()).prop_map(|(n, b, euro)| {
            if euro {
                "€".repeat(n / 3).into_bytes()
            } else {
                vec![if b == b'\n' { b'x' } else { b }; n]
            }
        }),
    ];
    prop::collection::vec((any::<bool>(), chunk), 0..8)
}

fn read_all(path: &std::path::Path) -> std::io::Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    LogReader::open(path)?
        .read_available(&mut |e| out.push((e.stream.clone(), e.log.clone(), e.time.clone())))?;
    Ok(out)
}

/// The json-file bytes the writer makes of `writes` (stdout's partial line finished first).
fn written(writes: &[(bool, Vec<u8>)]) -> Vec<u8> {
    let mut w = LogWriter::new(Vec::new());
    for (err, data) in writes {
        w.write(if *err { Stream::Stderr } else { Stream::Stdout }, data)
            .unwrap();
    }
    w.finish(Stream::Stdout).unwrap();
    w.finish(Stream::Stderr).unwrap();
    w.into_inner()
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn log_writer_reader_round_trip(writes in log_writes()) {
        let before = SystemTime::now() - Duration::from_secs(1);
        let bytes = written(&writes);
        let after = SystemTime::now() + Duration::from_secs(1);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        std::fs::write(&path, &bytes).unwrap();
        let got = read_all(&path).unwrap();
        let want = split_model(&writes);
        prop_assert_eq!(got.len(), want.len());
        for ((stream, log, time), (wstream, piece)) in got.iter().zip(&want) {
            prop_assert_eq!(stream, wstream);
            prop_assert_eq!(log, &go_lossy(piece));
            let t = parse_time(time).unwrap();
            prop_assert!(t >= before && t <= after, "{time}");
            prop_assert_eq!(&format_time(t), time);
        }
        // Without invalid UTF-8 in a piece, the text comes back byte for byte.
        let all: Vec<u8> = writes.iter().flat_map(|(_, d)| d.clone()).collect();
        if writes.iter().all(|(e, _)| !e) && std::str::from_utf8(&all).is_ok() && !all.is_empty() && all.len() < MAX_LINE {
            let text: String = got.iter().map(|(_, l, _)| l.as_str()).collect();
            prop_assert_eq!(text.as_bytes(), &all[..]);
        }
        // Every line is one JSON object and nothing else.
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).unwrap();
            prop_assert_eq!(v.as_object().map(|o| o.len()), Some(3));
        }
    }

    #[test]
    fn log_reader_follows_a_growing_file(writes in log_writes(), cut in any::<prop::sample::Index>()) {
        let bytes = written(&writes);
        let cut = if bytes.is_empty() { 0 } else { cut.index(bytes.len() + 1) };

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let whole = {
            std::fs::write(&path, &bytes).unwrap();
            read_all(&path).unwrap()
        };
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let mut r = LogReader::open(&path).unwrap();
        let mut got = Vec::new();
        r.read_available(&mut |e| got.push((e.stream.clone(), e.log.clone(), e.time.clone()))).unwrap();
        let complete = bytes[..cut].iter().filter(|&&b| b == b'\n').count();
        prop_assert_eq!(got.len(), complete, "a partial line was read");
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&bytes[cut..]).unwrap();
        r.read_available(&mut |e| got.push((e.stream.clone(), e.log.clone(), e.time.clone()))).unwrap();
        prop_assert_eq!(got, whole);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn log_lines_of_any_bytes(line in prop_oneof![
        any::<Vec<u8>>(),
        "\\{\"log\":\"[ -~]{0,10}\",\"stream\":\"[a-z]{0,6}\",\"time\":\"[0-9T:.Z-]{0,12}\"\\}".prop_map(String::into_bytes),
    ]) {
        // A reader never panics: a line parses to the three fields or is InvalidData.
        if let Ok(e) = parse_line(&line) {
            let mut again = Vec::new();
            crate::log_file::encode_entry(&mut again, e.log.as_bytes(), Stream::Stdout, &e.time);
            prop_assert_eq!(parse_line(&again).unwrap().log, e.log);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        std::fs::write(&path, [&line[..], b"\n"].concat()).unwrap();
        if let Err(e) = read_all(&path) {
            prop_assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn log_times_round_trip(secs in 0u64..253_402_300_800, nanos in 0u32..1_000_000_000) {
        let t = UNIX_EPOCH + Duration::new(secs, nanos);
        let s = format_time(t);
        prop_assert_eq!(s.len(), 30, "{}", s);
        prop_assert_eq!(parse_time(&s), Some(t));
        prop_assert_eq!(parse_time_arg(&s, SystemTime::now()), Some(t));
    }

    #[test]
    fn log_times_of_any_text(s in prop_oneof![
        (prop::collection::vec(prop_oneof!["[0-9]{1,2}", "[0-9]{4}", "-?[0-9]{12,19}"], 6), "(\\.[0-9\u{e9}+-]{0,12})?")
            .prop_map(|(f, frac)| format!("{}-{}-{}T{}:{}:{}{frac}Z", f[0], f[1], f[2], f[3], f[4], f[5])),
        "[0-9]{1,3}|[0-9]{17,22}(\\.[0-9]{0,12})?",
        "[0-9.]{1,8}(ns|us|µs|ms|s|m|h)([0-9.]{1,8}(s|m|h))?",
        text(),
    ]) {
        // Neither the reader's time parser nor `logs --since` may panic on any text.
        let now = SystemTime::now();
        if let Some(t) = parse_time(&s) {
            prop_assert_eq!(parse_time(&format_time(t)), Some(t), "{}", s);
        }
        if let Some(t) = parse_time_arg(&s, now) {
            prop_assert!(t >= UNIX_EPOCH);
        }
    }
}

// ---- exit codes -------------------------------------------------------------------------------

const PHRASES: &[&str] = &[
    "executable file not found in $PATH",
    "no such file or directory",
    "Permission Denied",
    "is a directory",
    "NOT A DIRECTORY",
    "system cannot find the file specified",
];

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn exit_codes_translate_consistently(
        parts in prop::collection::vec(prop_oneof![text(), prop::sample::select(PHRASES).prop_map(String::from)], 0..4),
        cmd in prop_oneof![Just(String::new()), "[a-z/]{1,8}", text()],
    ) {
        let text = parts.join(" ");
        let f = translate(&text, &cmd);
        prop_assert!(matches!(f.exit_code, 126..=128), "{f:?}");
        prop_assert!(matches!(f.cli_status, 125..=127), "{f:?}");
        prop_assert_eq!(f.cli_status, cli_status(&f.message));
        prop_assert!(f.message.starts_with(text.trim()), "{f:?}");
        prop_assert_eq!(&translate(&text, &cmd), &f);
        let lower = text.to_ascii_lowercase();
        if lower.contains("not a directory") {
            prop_assert_eq!(f.exit_code, 127);
            prop_assert!(f.message.ends_with(ENOTDIR_HINT));
        } else if lower.contains("permission denied") || lower.contains("is a directory") {
            prop_assert_eq!(f.exit_code, 126);
            prop_assert!(f.message.to_ascii_lowercase().contains("permission denied"));
        } else if PHRASES.iter().all(|p| !lower.contains(&p.to_ascii_lowercase())) {
            prop_assert_eq!((f.exit_code, f.cli_status), (128, 125));
            prop_assert_eq!(f.message.as_str(), text.trim());
        }
    }

    #[test]
    fn wait_statuses_map_into_a_byte(status in any::<i32>()) {
        let code = from_wait_status(status);
        prop_assert!((0..=255).contains(&code), "{status:#x} -> {code}");
    }
}

// ---- image references -------------------------------------------------------------------------

/// References in docker's grammar: optional domain, path, optional tag and digest; with
/// the path (as normalised) they must parse to.
fn reference_text() -> impl Strategy<Value = (String, String)> {
    let component = "[a-z0-9]{1,4}(([._]|__|-{1,2})[a-z0-9]{1,3}){0,2}";
    let domain = prop_oneof![
        Just(String::new()),
        Just("localhost/".to_string()),
        Just("docker.io/".to_string()),
        Just("index.docker.io/".to_string()),
        "[a-z0-9]{1,5}(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,3}[a-z0-9])?){1,2}(:[0-9]{1,5})?/",
        "[A-Z][a-z]{0,3}(:[0-9]{1,5})?/",
        "\\[[0-9a-f]{0,4}:[0-9a-f:]{0,6}\\](:[0-9]{2})?/",
    ];
    (
        domain,
        prop::collection::vec(component, 1..4),
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        prop::option::of("[0-9a-f]{64}"),
    )
        .prop_map(|(d, path, tag, digest)| {
            let path = path.join("/");
            // Without a domain, a first component that looks like one is the domain.
            let first = path.split('/').next().unwrap_or("");
            let d = if d.is_empty() && (first.contains('.') || first == "localhost") {
                "docker.io/".to_string()
            } else {
                d
            };
            let mut s = format!("{d}{path}");
            if let Some(t) = tag {
                s += &format!(":{t}");
            }
            if let Some(h) = digest {
                s += &format!("@sha256:{h}");
            }
            let hub = matches!(d.as_str(), "" | "docker.io/" | "index.docker.io/");
            let path = if hub && !path.contains('/') {
                format!("library/{path}")
            } else {
                path
            };
            (s, path)
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn references_in_the_grammar_parse((s, path) in reference_text()) {
        let r = Reference::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        prop_assert_eq!(&r.path, &path);
        prop_assert!(r.tag.is_some() || r.digest.is_some());
        prop_assert_eq!(r.tag.is_none(), s.contains('@') && !s.rsplit('/').next().unwrap().split('@').next().unwrap().contains(':'));
    }

    #[test]
    fn references_print_and_reparse(s in prop_oneof![reference_text().prop_map(|(s, _)| s), "[a-zA-Z0-9./:@_-]{0,30}", text()]) {
        // Never panics; whatever parses prints (full and familiar forms) to text that
        // parses to the same reference.
        if let Ok(r) = Reference::parse(&s) {
            prop_assert!(r.name().len() <= crate::image::reference::NAME_MAX);
            prop_assert!(r.tag.is_some() || r.digest.is_some());
            let full = r.to_string();
            prop_assert_eq!(Reference::parse(&full), Ok(r.clone()), "{} -> {}", s, full);
            // As docker's FamiliarName, the short form drops `docker.io/`, so a Hub path
            // whose first component looks like a domain (`docker.io/a.b/c`) reads back as
            // that domain; Hub namespaces never look so.
            let first = r.path.split('/').next().unwrap_or("");
            let ambiguous = r.domain == "docker.io" && (first.contains(['.', ':']) || first == "localhost");
            if !ambiguous {
                let familiar = r.familiar();
                prop_assert_eq!(Reference::parse(&familiar), Ok(r.clone()), "{} -> {}", s, familiar);
            }
            prop_assert_eq!(full.parse::<Reference>(), Ok(r));
        }
    }
}

// ---- --format templates -----------------------------------------------------------------------

fn template_data() -> Value {
    json!({
        "Args": ["-c", "echo <hi> & \"bye\""],
        "Config": {"Cmd": null, "Env": ["A=1", "B=2"], "Labels": {"a": "1", "b\nc": "x"}},
        "Id": "4f1c2d",
        "Name": "/web",
        "Num": 1e6,
        "State": {"ExitCode": 0, "OOMKilled": false, "Pid": 4242, "Running": true},
        "Weird": "line\nbreak\u{0}"
    })
}

/// Text made of template pieces, so that most inputs get past the lexer.
fn template_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "{{",
        "}}",
        "{{- ",
        " -}}",
        "{{/*",
        "*/}}",
        ".",
        ".Id",
        ".State.Pid",
        ".Config.Labels",
        ".Args",
        ".Weird",
        ".Nope",
        " ",
        "|",
        "(",
        ")",
        "json",
        "upper",
        "lower",
        "join",
        "len",
        "index",
        "if",
        "else",
        "else if",
        "range",
        "end",
        "with",
        "$x",
        "nil",
        "\"s\"",
        "`r`",
        "\"\\n\"",
        "1",
        "-2.5",
        "0x1f",
        "true",
        "false",
        "\n",
        "é",
        "'c'",
        ",",
    ]);
    prop::collection::vec(piece, 0..16).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn templates_never_panic_and_errors_are_one_line(text in prop_oneof![template_text(), text()]) {
        let data = template_data();
        match Template::parse(&text) {
            Ok(t) => {
                let first = t.render(&data);
                match &first {
                    Ok(out) => {
                        if !text.contains("{{") {
                            prop_assert_eq!(out, &text);
                        }
                    }
                    Err(e) => {
                        let m = e.to_string();
                        prop_assert!(!m.contains('\n') && m.contains(&format!("{text:?}")), "{m}");
                    }
                }
                // Rendering is a pure function of template and data.
                prop_assert_eq!(format!("{:?}", t.render(&data)), format!("{first:?}"));
            }
            Err(e) => {
                let m = e.to_string();
                prop_assert!(!m.contains('\n') && m.contains(&format!("{text:?}")), "{m}");
            }
        }
    }

    #[test]
    fn templates_print_fields_and_json(value in text(), key in "[A-Za-z][A-Za-z0-9]{0,8}") {
        let data = json!({ key.clone(): value.clone() });
        let t = Template::parse(&format!("{{{{.{key}}}}}|{{{{json .}}}}")).unwrap();
        let out = t.render(&data).unwrap();
        let (field, js) = out.split_at(value.len());
        prop_assert_eq!(field, value.as_str());
        let back: Value = serde_json::from_str(js.strip_prefix('|').unwrap()).unwrap();
        prop_assert_eq!(back, data);
    }
}

/// The inputs the properties above found panicking (fixed in `log_file`).
#[test]
fn log_times_found_by_the_properties() {
    for s in [
        "99999999999999999-01-01T00:00:00Z",
        "2000-01-01T9999999999999999:00:00Z",
        "2000-01-01T00:00:00.12345678\u{e9}Z",
        "2000-01-01T00:00:00.+1Z",
    ] {
        assert_eq!(parse_time(s), None, "{s}");
    }
    for s in ["18446744073709551615", "18446744073709551615.5"] {
        assert_eq!(parse_time_arg(s, SystemTime::now()), None, "{s}");
    }
}
