//! A json-file log of any bytes, read by `LogReader` (as `logs` reads it), whole and in two
//! parts as a follower does: never a panic, errors are InvalidData, the two ways read the
//! same entries, and times parse (or not) without a panic.
#![no_main]

use std::io::Write;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use ocishim::log_file::{format_time, parse_line, parse_time, parse_time_arg, LogReader};

type Entry = (String, String, String);

fn read(r: &mut LogReader, out: &mut Vec<Entry>) -> std::io::Result<usize> {
    r.read_available(&mut |e| out.push((e.stream.clone(), e.log.clone(), e.time.clone())))
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    std::fs::write(&path, bytes).unwrap();
    let mut whole = Vec::new();
    let all = read(&mut LogReader::open(&path).unwrap(), &mut whole);
    if let Err(e) = &all {
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    }

    // Followed: the first part, then the rest appended.
    let cut = (cut as usize * bytes.len()) / 255;
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let mut r = LogReader::open(&path).unwrap();
    let mut followed = Vec::new();
    let first = read(&mut r, &mut followed);
    if all.is_ok() {
        assert!(first.is_ok());
        let f = std::fs::OpenOptions::new().append(true).open(&path);
        f.unwrap().write_all(&bytes[cut..]).unwrap();
        assert!(read(&mut r, &mut followed).is_ok());
        assert_eq!(followed, whole);
    }

    for line in bytes.split(|&b| b == b'\n') {
        if let Ok(e) = parse_line(line) {
            if let Some(t) = parse_time(&e.time) {
                assert_eq!(parse_time(&format_time(t)), Some(t), "{:?}", e.time);
            }
            let _ = parse_time_arg(&e.time, SystemTime::now());
            let _ = parse_time_arg(&e.log, SystemTime::now());
        }
    }
});
