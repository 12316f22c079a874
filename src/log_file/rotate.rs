//! docker's json-file rotation (`--log-opt max-size=SIZE --log-opt max-file=N`): the
//! monitor writes `<id>-json.log` until the next entry would take it past max-size, then
//! renames it to `<id>-json.log.1` (`.1` → `.2`, …), keeping max-file files in all (the
//! current one included), and starts a new one. Entries are never split across files: an
//! entry larger than max-size is written whole into an empty file, which is rotated
//! before the next one. The pure parts (which entries fit, which file goes where) are
//! here with the readers' side: [`RotatedReader`] reads the files oldest first and
//! follows the current file across rotations.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{LogEntry, LogReader};

/// The rotation options of a json-file log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes of one file before it is rotated (≥ 1).
    pub max_size: u64,
    /// Files kept, the current one included (≥ 1).
    pub max_file: u32,
}

/// The path of file `n` of the log at `base`: `base` itself for 0, else `base.n`.
pub fn file_path(base: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return base.to_path_buf();
    }
    let mut s = base.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// One step of a rotation, on file numbers (0 is the current file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Rename file `from` to file `to` (replacing it); a missing `from` is skipped.
    Rename { from: u32, to: u32 },
    /// Remove the file (max-file=1: nothing is kept).
    Remove(u32),
}

/// The renames of one rotation keeping `max_file` files: `.{max-2}` → `.{max-1}` (the
/// oldest is replaced), …, `.1` → `.2`, current → `.1`; with max-file=1 the current file
/// is removed. Renamed, not truncated in place, so that a follower holding the old file
/// notices the change of inode and reads it to its end.
pub fn plan(max_file: u32) -> Vec<Step> {
    if max_file <= 1 {
        return vec![Step::Remove(0)];
    }
    (0..max_file - 1)
        .rev()
        .map(|from| Step::Rename { from, to: from + 1 })
        .collect()
}

/// How many leading bytes of `batch` (whole entries, each ending in `\n`) go into a
/// current file of `size` bytes before it must be rotated: entries are taken while the
/// file stays within `max_size`; a file that is empty takes its first entry whatever its
/// size. 0 means: rotate first.
pub fn fitting(size: u64, batch: &[u8], max_size: u64) -> usize {
    let mut n = 0usize;
    for entry in batch.split_inclusive(|&b| b == b'\n') {
        let after = size + (n + entry.len()) as u64;
        if after > max_size && size + n as u64 > 0 {
            break;
        }
        n += entry.len();
    }
    n
}

/// Complete entries (lines) in `bytes`.
pub fn count_entries(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The byte length of the whole entries at the start of `bytes` (up to its last `\n`).
pub fn whole_prefix(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// (device, inode) of a file: what identifies it across renames.
fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Reads a json-file log and its rotated files in order, oldest first, and keeps up with
/// rotations while it follows: when the file it reads has been renamed, it reads that file
/// to its end and then goes on with the files that followed it. Files that were rotated
/// away (deleted) before it got to them are lost to it, as to docker's reader.
pub struct RotatedReader {
    base: PathBuf,
    max_file: u32,
    current: Option<(LogReader, (u64, u64))>,
}

impl RotatedReader {
    /// A reader of the log at `base` with up to `max_file` files (1 without rotation).
    pub fn new(base: &Path, max_file: u32) -> RotatedReader {
        RotatedReader {
            base: base.to_path_buf(),
            max_file: max_file.max(1),
            current: None,
        }
    }

    /// Each file's identity now, by number (None when missing).
    fn chain(&self) -> Vec<Option<(u64, u64)>> {
        (0..self.max_file)
            .map(|n| {
                std::fs::metadata(file_path(&self.base, n))
                    .ok()
                    .map(|m| identity(&m))
            })
            .collect()
    }

    /// Open file `n` if it is still the file `want`; None when it moved meanwhile.
    fn open(&self, n: u32, want: (u64, u64)) -> io::Result<Option<(LogReader, (u64, u64))>> {
        let path = file_path(&self.base, n);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = identity(&file.metadata()?);
        Ok((id == want).then(|| (LogReader::from_file(file), id)))
    }

    /// Read every complete entry there is now, in order, across the files.
    pub fn read_available(&mut self, f: &mut dyn FnMut(&LogEntry)) -> io::Result<usize> {
        let mut count = 0;
        // Bounded: each pass either reads on from the file after the current one or finds
        // that a rotation moved files meanwhile (then looks again).
        for _ in 0..64 {
            if let Some((r, _)) = self.current.as_mut() {
                count += r.read_available(f)?;
            }
            let chain = self.chain();
            let at = self
                .current
                .as_ref()
                .and_then(|(_, id)| chain.iter().position(|c| *c == Some(*id)));
            // The file after the current one: the next newer, or, when the current one is
            // gone (or none is open yet), the oldest there is.
            if at == Some(0) {
                return Ok(count);
            }
            // The current file was rotated: it is complete (the monitor renames a file only
            // once done with it), so what was written since the read above is read now.
            if let Some((r, _)) = self.current.as_mut() {
                count += r.read_available(f)?;
            }
            let next = match at {
                Some(0) => return Ok(count),
                Some(k) => k - 1,
                None => match chain.iter().rposition(Option::is_some) {
                    Some(k) => k,
                    None => return Ok(count),
                },
            };
            let Some(want) = chain[next] else {
                // Between a rename and the new file's creation: the next pass sees it.
                return Ok(count);
            };
            if let Some(opened) = self.open(next as u32, want)? {
                self.current = Some(opened);
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(n: usize, len: usize) -> Vec<u8> {
        let mut e = vec![b'a' + (n % 26) as u8; len - 1];
        e.push(b'\n');
        e
    }

    #[test]
    fn paths_and_plans() {
        let b = Path::new("/d/c-json.log");
        assert_eq!(file_path(b, 0), b);
        assert_eq!(file_path(b, 2), Path::new("/d/c-json.log.2"));
        assert_eq!(plan(1), [Step::Remove(0)]);
        assert_eq!(plan(2), [Step::Rename { from: 0, to: 1 }]);
        assert_eq!(
            plan(3),
            [
                Step::Rename { from: 1, to: 2 },
                Step::Rename { from: 0, to: 1 }
            ]
        );
    }

    #[test]
    fn which_entries_fit() {
        let batch = [entry(0, 10), entry(1, 10), entry(2, 10)].concat();
        assert_eq!(fitting(0, &batch, 100), 30);
        assert_eq!(fitting(0, &batch, 25), 20);
        assert_eq!(fitting(0, &batch, 20), 20, "exactly max-size fits");
        assert_eq!(fitting(5, &batch, 25), 20);
        assert_eq!(fitting(6, &batch, 25), 10);
        assert_eq!(fitting(16, &batch, 25), 0, "rotate first");
        assert_eq!(fitting(25, &batch, 25), 0);
        // An entry larger than max-size goes whole into an empty file, alone.
        let big = [entry(0, 50), entry(1, 10)].concat();
        assert_eq!(fitting(0, &big, 25), 50);
        assert_eq!(fitting(1, &big, 25), 0);
        assert_eq!(fitting(0, b"", 25), 0);
    }

    #[test]
    fn entry_counts_and_prefixes() {
        assert_eq!(count_entries(b"a\nb\nc"), 2);
        assert_eq!(whole_prefix(b"a\nb\nc"), 4);
        assert_eq!(whole_prefix(b"abc"), 0);
        assert_eq!(whole_prefix(b"a\n"), 2);
    }

    fn line(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        super::super::encode_entry(
            &mut v,
            format!("{n}\n").as_bytes(),
            super::super::Stream::Stdout,
            "T",
        );
        v
    }

    /// Write entries `range` to the current file, rotating (keeping `max_file`) first.
    fn rotate_then_write(base: &Path, max_file: u32, range: std::ops::Range<usize>) {
        for s in plan(max_file) {
            match s {
                Step::Rename { from, to } => {
                    let _ = std::fs::rename(file_path(base, from), file_path(base, to));
                }
                Step::Remove(n) => {
                    let _ = std::fs::remove_file(file_path(base, n));
                }
            }
        }
        write(base, range);
    }

    fn write(base: &Path, range: std::ops::Range<usize>) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(base)
            .unwrap();
        for n in range {
            f.write_all(&line(n)).unwrap();
        }
    }

    fn read(r: &mut RotatedReader, got: &mut Vec<String>) {
        r.read_available(&mut |e| got.push(e.log.trim_end().to_string()))
            .unwrap();
    }

    #[test]
    fn reads_oldest_first_and_follows_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("c-json.log");
        let mut r = RotatedReader::new(&base, 3);
        let mut got = Vec::new();
        read(&mut r, &mut got);
        assert!(got.is_empty(), "no file yet");
        write(&base, 0..3);
        rotate_then_write(&base, 3, 3..6);
        rotate_then_write(&base, 3, 6..9);
        read(&mut r, &mut got);
        let want = |r: std::ops::Range<usize>| r.map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(got, want(0..9));
        // Following: more in the current file, then two rotations between two reads.
        write(&base, 9..10);
        rotate_then_write(&base, 3, 10..12);
        rotate_then_write(&base, 3, 12..13);
        read(&mut r, &mut got);
        assert_eq!(got, want(0..13));
        // The file being read is deleted (rotated away) before the reader gets back: it
        // reads it to its end through its open file, then the oldest file there is.
        write(&base, 13..14);
        for i in 0..4 {
            rotate_then_write(&base, 3, 14 + i..15 + i);
        }
        read(&mut r, &mut got);
        assert_eq!(
            got,
            [want(0..14), want(15..18)].concat(),
            "14 was rotated away"
        );
        // max-file=1: the file is replaced; the reader moves to the new one.
        let base1 = dir.path().join("d-json.log");
        let mut r = RotatedReader::new(&base1, 1);
        let mut got = Vec::new();
        write(&base1, 0..2);
        read(&mut r, &mut got);
        rotate_then_write(&base1, 1, 2..4);
        read(&mut r, &mut got);
        assert_eq!(got, want(0..4));
    }
}
