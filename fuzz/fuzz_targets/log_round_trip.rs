//! Bytes from a container's pipes through the json-file writer and back through the
//! reader: the entries are what docker's json-file driver writes (a line ends at a newline
//! or after 16 KiB; each stream keeps its own partial line; invalid UTF-8 becomes one
//! U+FFFD per byte, as Go's encoding/json does).
//!
//! Input: a sequence of writes, each `[stream/length byte][length bytes...]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocishim::log_file::{LogReader, LogWriter, Stream, MAX_LINE};

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

fuzz_target!(|data: &[u8]| {
    // Decode the writes; a length byte of 0x7f means a long run (to reach MAX_LINE).
    let mut writes: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut rest = data;
    while let Some((&h, tail)) = rest.split_first() {
        let err = h & 0x80 != 0;
        let n = (h & 0x7f) as usize;
        if n == 0x7f {
            let fill = tail.first().copied().unwrap_or(b'x');
            writes.push((err, vec![fill; MAX_LINE + 7]));
            rest = tail.get(1..).unwrap_or(&[]);
            continue;
        }
        let n = n.min(tail.len());
        writes.push((err, tail[..n].to_vec()));
        rest = &tail[n..];
    }

    let mut w = LogWriter::new(Vec::new());
    for (err, d) in &writes {
        w.write(if *err { Stream::Stderr } else { Stream::Stdout }, d)
            .unwrap();
    }
    w.finish(Stream::Stdout).unwrap();
    w.finish(Stream::Stderr).unwrap();
    let bytes = w.into_inner();

    // The model, byte by byte.
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut want = Vec::new();
    let name = |i: usize| if i == 0 { "stdout" } else { "stderr" };
    for (err, d) in &writes {
        let i = *err as usize;
        for &b in d {
            pending[i].push(b);
            if b == b'\n' || pending[i].len() == MAX_LINE {
                want.push((
                    name(i).to_string(),
                    go_lossy(&std::mem::take(&mut pending[i])),
                ));
            }
        }
    }
    for (i, p) in pending.iter().enumerate() {
        if !p.is_empty() {
            want.push((name(i).to_string(), go_lossy(p)));
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    std::fs::write(&path, &bytes).unwrap();
    let mut got = Vec::new();
    LogReader::open(&path)
        .unwrap()
        .read_available(&mut |e| got.push((e.stream.clone(), e.log.clone())))
        .unwrap();
    assert_eq!(got, want);
});
