//! A layer tar stream unpacked into a fresh directory `dest` inside a fresh parent that also
//! holds a `canary` file: whatever the stream (it may fail), nothing is created, changed or
//! linked outside `dest`: the parent still holds exactly `dest` and `canary`, the canary's
//! content and link count are unchanged, and no entry under `dest` is the canary's inode.
//!
//! Input: first byte even: the rest is the tar stream as is. Odd: the rest describes
//! entries (kind, name, link target, mode, content) built into a tar with names and link
//! targets from an alphabet meant to escape: `..`, `/`, `.wh.` names, and `@P`, the
//! parent's absolute path.
#![no_main]

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tar::{EntryType, Header};

const PARTS: &[&str] = &[
    "a",
    "b",
    "d",
    "..",
    ".",
    "",
    "@P",
    "canary",
    ".wh.a",
    ".wh..wh..opq",
    "a/../..",
    "/",
    ".wh.canary",
    "dest",
];
const CANARY: &[u8] = b"canary content\n";

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn path(&mut self, parent: &str) -> Vec<u8> {
        let n = self.byte() % 4 + 1;
        let parts: Vec<String> = (0..n)
            .map(|_| match PARTS[self.byte() as usize % PARTS.len()] {
                "@P" => parent.to_string(),
                p => p.to_string(),
            })
            .collect();
        let mut p = parts.join("/").into_bytes();
        p.truncate(99);
        p
    }
}

/// A tar of the entries `data` describes.
fn build(data: &[u8], parent: &str) -> Vec<u8> {
    let mut input = Input(data);
    let mut out = Vec::new();
    while !input.0.is_empty() {
        let kind = input.byte() % 8;
        let name = input.path(parent);
        let mut h = Header::new_gnu();
        let mut content = Vec::new();
        let (ty, link) = match kind {
            0 => {
                let n = (input.byte() % 32) as usize;
                content = (0..n).map(|_| input.byte()).collect();
                (EntryType::Regular, None)
            }
            1 => (EntryType::Directory, None),
            2 => (EntryType::Symlink, Some(input.path(parent))),
            3 => (EntryType::Link, Some(input.path(parent))),
            4 => (EntryType::Fifo, None),
            5 => (EntryType::Char, None),
            6 => (EntryType::Regular, None),
            _ => (EntryType::Block, None),
        };
        h.set_entry_type(ty);
        h.set_size(content.len() as u64);
        h.set_mode(0o644 | (u32::from(input.byte()) << 3 & 0o7777));
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        if matches!(ty, EntryType::Char | EntryType::Block) {
            let _ = h.set_device_major(1);
            let _ = h.set_device_minor(3);
        }
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(&name);
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(&l);
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&content);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// (dev, ino) of every entry under `dir`, symlinks not followed.
fn inodes(dir: &Path, out: &mut BTreeSet<(u64, u64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if let Ok(m) = std::fs::symlink_metadata(e.path()) {
            out.insert((m.dev(), m.ino()));
            if m.is_dir() {
                inodes(&e.path(), out);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let canary = parent.path().join("canary");
    std::fs::write(&canary, CANARY).unwrap();
    let cm = std::fs::metadata(&canary).unwrap();

    let layer = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        build(rest, parent.path().to_str().unwrap())
    };
    let _ = ocishim::image::unpack::unpack(&layer[..], &dest);

    let names: BTreeSet<String> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = ["canary", "dest"].map(String::from).into();
    assert_eq!(names, want, "something was created outside dest");
    let now = std::fs::symlink_metadata(&canary).unwrap();
    assert!(now.is_file(), "the canary was replaced");
    assert_eq!(
        (now.ino(), now.nlink()),
        (cm.ino(), 1),
        "the canary was linked"
    );
    assert_eq!(
        std::fs::read(&canary).unwrap(),
        CANARY,
        "the canary was written"
    );
    assert!(
        std::fs::symlink_metadata(&dest).unwrap().is_dir(),
        "dest was replaced"
    );
    let mut seen = BTreeSet::new();
    inodes(&dest, &mut seen);
    assert!(
        !seen.contains(&(cm.dev(), cm.ino())),
        "the canary is linked under dest"
    );
});
