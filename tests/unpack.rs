//! Layer extraction (`image::unpack`) as root. Every case builds its tar in memory, unpacks
//! it into `dest/` of a fresh temp dir and checks the result and that `outside/` (a
//! sentinel and a `victim` file of a known mode) and the temp dir itself are unchanged.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ocishim::image::unpack::{unpack, UnpackError, UnpackStats};
use tar::{EntryType, Header};

const VICTIM: &[u8] = b"victim content\n";
const SENTINEL: &[u8] = b"sentinel\n";
const MTIME: u64 = 1_600_000_000;

struct Case {
    tmp: tempfile::TempDir,
    dest: PathBuf,
    outside: PathBuf,
}

impl Case {
    fn new() -> Case {
        assert_eq!(
            nix::unistd::geteuid().as_raw(),
            0,
            "tests/unpack.rs must run as root (it chowns, makes devices and trusted xattrs)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        let outside = tmp.path().join("outside");
        fs::create_dir(&dest).unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(outside.join("sentinel"), SENTINEL).unwrap();
        fs::write(outside.join("victim"), VICTIM).unwrap();
        fs::set_permissions(outside.join("victim"), fs::Permissions::from_mode(0o640)).unwrap();
        Case { tmp, dest, outside }
    }

    fn unpack(&self, tar: Vec<u8>) -> Result<UnpackStats, UnpackError> {
        let r = unpack(tar.as_slice(), &self.dest);
        self.check_outside();
        r
    }

    fn check_outside(&self) {
        let names = |p: &Path| {
            let mut v: Vec<String> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(self.tmp.path()), ["dest", "outside"]);
        assert_eq!(names(&self.outside), ["sentinel", "victim"]);
        let m = fs::symlink_metadata(&self.outside).unwrap();
        assert!(m.is_dir());
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 0, 0));
        assert_eq!(fs::read(self.outside.join("sentinel")).unwrap(), SENTINEL);
        assert_eq!(fs::read(self.outside.join("victim")).unwrap(), VICTIM);
        let m = fs::symlink_metadata(self.outside.join("victim")).unwrap();
        assert!(m.is_file());
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid(), m.nlink()),
            (0o640, 0, 0, 1)
        );
    }

    fn outside_str(&self) -> String {
        self.outside.to_str().unwrap().to_string()
    }

    fn meta(&self, p: &str) -> fs::Metadata {
        fs::symlink_metadata(self.dest.join(p)).unwrap()
    }
}

/// Writes `s` into a header field (no validation: `..` and absolute names included).
fn raw(h: &mut Header, at: usize, len: usize, s: &str) {
    assert!(s.len() <= len, "{s:?} does not fit the field");
    let b = h.as_mut_bytes();
    b[at..at + len].fill(0);
    b[at..at + s.len()].copy_from_slice(s.as_bytes());
}

struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(kind: EntryType, name: &str, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        raw(&mut h, 0, 100, name);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h
    }

    fn add(mut self, mut h: Header, data: &[u8]) -> Tar {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(self, name: &str, mode: u32, data: &[u8]) -> Tar {
        let h = Tar::header(EntryType::Regular, name, mode, data.len() as u64);
        self.add(h, data)
    }

    fn owned_file(self, name: &str, mode: u32, uid: u64, data: &[u8]) -> Tar {
        let mut h = Tar::header(EntryType::Regular, name, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(uid);
        self.add(h, data)
    }

    fn dir(self, name: &str, mode: u32) -> Tar {
        self.add(Tar::header(EntryType::Directory, name, mode, 0), b"")
    }

    fn link(self, kind: EntryType, name: &str, target: &str) -> Tar {
        let mut h = Tar::header(kind, name, 0o777, 0);
        raw(&mut h, 157, 100, target);
        self.add(h, b"")
    }

    fn symlink(self, name: &str, target: &str) -> Tar {
        self.link(EntryType::Symlink, name, target)
    }

    fn hardlink(self, name: &str, target: &str) -> Tar {
        self.link(EntryType::Link, name, target)
    }

    fn node(self, kind: EntryType, name: &str, mode: u32, major: u32, minor: u32) -> Tar {
        let mut h = Tar::header(kind, name, mode, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.add(h, b"")
    }

    fn pax(mut self, records: &[(&str, &[u8])]) -> Tar {
        self.0
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .unwrap();
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn refused(r: Result<UnpackStats, UnpackError>) -> String {
    match r {
        Err(e @ (UnpackError::Refused { .. } | UnpackError::Link { .. })) => e.to_string(),
        other => panic!("expected a refused entry, got {other:?}"),
    }
}

#[test]
fn files_dirs_links_modes_owners_times() {
    let c = Case::new();
    let tar = Tar::new()
        .dir("./", 0o755)
        .dir("./a/", 0o750)
        .owned_file("./a/f", 0o640, 1000, b"hello")
        .owned_file("bin/su", 0o4755, 0, b"#!su")
        .owned_file("bin/sg", 0o2711, 1000, b"#!sg")
        .dir("tmp", 0o1777)
        .file("deep/er/file", 0o600, b"x")
        .symlink("a/s", "f")
        .hardlink("a/h", "./a/f")
        .hardlink("a/h2", "/a/f")
        .bytes();
    let stats = c.unpack(tar).unwrap();
    assert_eq!(
        stats,
        UnpackStats {
            entries: 10,
            bytes: 14
        }
    );

    let m = c.meta("");
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o755, MTIME as i64));
    let m = c.meta("a");
    assert!(m.is_dir());
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o750, MTIME as i64));
    let m = c.meta("a/f");
    assert!(m.is_file());
    assert_eq!(fs::read(c.dest.join("a/f")).unwrap(), b"hello");
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 1000, 1000));
    assert_eq!(
        (m.mtime(), m.atime(), m.nlink()),
        (MTIME as i64, MTIME as i64, 3)
    );
    let m = c.meta("bin/su");
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o4755, 0));
    let m = c.meta("bin/sg");
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o2711, 1000, 1000));
    assert_eq!(c.meta("tmp").mode() & 0o7777, 0o1777);
    // Parents missing from the tar: 0755, root-owned.
    for p in ["bin", "deep", "deep/er"] {
        let m = c.meta(p);
        assert!(m.is_dir());
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o755, 0), "{p}");
    }
    let m = c.meta("a/s");
    assert!(m.file_type().is_symlink());
    assert_eq!(fs::read_link(c.dest.join("a/s")).unwrap(), Path::new("f"));
    assert_eq!(m.mtime(), MTIME as i64);
    assert_eq!(c.meta("a/h").ino(), c.meta("a/f").ino());
    assert_eq!(c.meta("a/h2").ino(), c.meta("a/f").ino());
}

#[test]
fn dotdot_names_are_refused() {
    for name in ["../x", "a/../../x", "./../x", "a/.."] {
        let c = Case::new();
        let e = refused(c.unpack(Tar::new().file(name, 0o644, b"evil").bytes()));
        assert!(e.contains(name), "{e}");
        assert!(!c.tmp.path().join("x").exists());
    }
}

#[test]
fn absolute_names_are_refused() {
    let c = Case::new();
    let victim = format!("{}/victim", c.outside_str());
    refused(c.unpack(Tar::new().file(&victim, 0o777, b"evil").bytes()));
    let c = Case::new();
    refused(c.unpack(Tar::new().file("/abs", 0o644, b"x").bytes()));
    assert!(!c.dest.join("abs").exists());
}

#[test]
fn symlink_to_outside_then_a_file_below_it_stays_inside() {
    let c = Case::new();
    let tar = Tar::new()
        .symlink("a", &c.outside_str())
        .file("a/passwd", 0o644, b"evil")
        .file("a/victim", 0o777, b"evil")
        .bytes();
    // `a` resolves to dest/<outside path>, which is missing: the layer fails (or would
    // write inside dest), never outside.
    if c.unpack(tar).is_ok() {
        let inner = c.dest.join(c.outside.strip_prefix("/").unwrap());
        assert_eq!(fs::read(inner.join("passwd")).unwrap(), b"evil");
    }

    // With the absolute target present in the layer, the file lands there.
    let c = Case::new();
    let etc = fs::read("/etc/passwd").unwrap();
    let tar = Tar::new()
        .dir("etc", 0o755)
        .symlink("e", "/etc")
        .file("e/passwd", 0o644, b"root::0:0::/:/bin/sh\n")
        .bytes();
    c.unpack(tar).unwrap();
    assert_eq!(
        fs::read(c.dest.join("etc/passwd")).unwrap(),
        b"root::0:0::/:/bin/sh\n"
    );
    assert_eq!(fs::read("/etc/passwd").unwrap(), etc);
}

#[test]
fn symlink_to_dotdot_resolves_in_dest() {
    let c = Case::new();
    let tar = Tar::new()
        .symlink("l", "..")
        .file("l/x/y", 0o644, b"y")
        .symlink("sub/up", "../../..")
        .file("sub/up/z", 0o644, b"z")
        .bytes();
    c.unpack(tar).unwrap();
    assert_eq!(fs::read(c.dest.join("x/y")).unwrap(), b"y");
    assert_eq!(fs::read(c.dest.join("z")).unwrap(), b"z");
    assert!(c.meta("l").file_type().is_symlink());
}

#[test]
fn directory_entry_replaces_a_symlink() {
    let c = Case::new();
    let tar = Tar::new()
        .symlink("d", &c.outside_str())
        .dir("d", 0o777)
        .file("d/f", 0o644, b"f")
        .dir("d", 0o700)
        .symlink("v", &format!("{}/victim", c.outside_str()))
        .file("v", 0o777, b"new")
        .bytes();
    c.unpack(tar).unwrap();
    let m = c.meta("d");
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o700);
    assert_eq!(fs::read(c.dest.join("d/f")).unwrap(), b"f");
    let m = c.meta("v");
    assert!(m.is_file());
    assert_eq!(m.mode() & 0o7777, 0o777);
    assert_eq!(fs::read(c.dest.join("v")).unwrap(), b"new");
}

#[test]
fn hardlinks_outside_or_early_are_refused() {
    let c = Case::new();
    let e = refused(c.unpack(Tar::new().hardlink("h", "../outside/victim").bytes()));
    assert!(e.contains("../outside/victim"), "{e}");
    let c = Case::new();
    let victim = format!("{}/victim", c.outside_str());
    refused(c.unpack(Tar::new().hardlink("h", &victim).bytes()));
    let c = Case::new();
    let tar = Tar::new()
        .symlink("o", &c.outside_str())
        .hardlink("h", "o/victim")
        .bytes();
    refused(c.unpack(tar));
    let c = Case::new();
    let tar = Tar::new()
        .hardlink("h", "later")
        .file("later", 0o644, b"x")
        .bytes();
    let e = refused(c.unpack(tar));
    assert!(e.contains("\"h\"") && e.contains("later"), "{e}");
    let c = Case::new();
    refused(c.unpack(Tar::new().dir("d", 0o755).hardlink("h", "d").bytes()));
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink() {
    let c = Case::new();
    let tar = Tar::new()
        .symlink("s", &format!("{}/victim", c.outside_str()))
        .hardlink("h", "s")
        .bytes();
    c.unpack(tar).unwrap();
    let (s, h) = (c.meta("s"), c.meta("h"));
    assert!(h.file_type().is_symlink());
    assert_eq!((h.ino(), h.nlink()), (s.ino(), 2));
}

#[test]
fn devices_and_fifos() {
    let c = Case::new();
    let tar = Tar::new()
        .node(EntryType::Char, "dev/null", 0o666, 1, 3)
        .node(EntryType::Block, "dev/loop9", 0o660, 7, 9)
        .node(EntryType::Fifo, "run/fifo", 0o620, 0, 0)
        .bytes();
    c.unpack(tar).unwrap();
    let m = c.meta("dev/null");
    assert!(m.file_type().is_char_device());
    assert_eq!(
        (m.mode() & 0o7777, m.rdev()),
        (0o666, nix::sys::stat::makedev(1, 3))
    );
    let m = c.meta("dev/loop9");
    assert!(m.file_type().is_block_device());
    assert_eq!(
        (m.mode() & 0o7777, m.rdev()),
        (0o660, nix::sys::stat::makedev(7, 9))
    );
    let m = c.meta("run/fifo");
    assert!(m.file_type().is_fifo());
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o620, MTIME as i64));
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(p, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => None,
        Err(e) => panic!("getxattr {p:?} {name}: {e}"),
    }
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let c = Case::new();
    let tar = Tar::new()
        .file("dir/gone", 0o644, b"x")
        .file("dir/.wh.gone", 0o644, b"")
        .file(".wh.other", 0o644, b"")
        .file("w/sub/file", 0o644, b"x")
        .file(".wh.w", 0o644, b"")
        .file("op/.wh..wh..opq", 0o644, b"")
        .file("op/kept", 0o644, b"k")
        .file(".wh..wh.plnk", 0o644, b"")
        .bytes();
    c.unpack(tar).unwrap();
    for p in ["dir/gone", "other", "w"] {
        assert!(is_whiteout(&c.meta(p)), "{p}");
    }
    for p in [
        "dir/.wh.gone",
        ".wh.other",
        ".wh.w",
        "op/.wh..wh..opq",
        ".wh..wh.plnk",
    ] {
        assert!(!c.dest.join(p).exists(), "{p}");
    }
    assert_eq!(
        xattr(&c.dest.join("op"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(fs::read(c.dest.join("op/kept")).unwrap(), b"k");
    assert_eq!(xattr(&c.dest.join("dir"), "trusted.overlay.opaque"), None);
}

#[test]
fn bad_whiteout_names_are_refused() {
    for name in [".wh.", ".wh..", "a/.wh..", ".wh..."] {
        let c = Case::new();
        refused(c.unpack(Tar::new().file(name, 0o644, b"").bytes()));
    }
}

#[test]
fn xattrs_trusted_dropped_security_and_user_kept() {
    // VFS_CAP_REVISION_2, effective, permitted = cap_net_bind_service.
    let cap: Vec<u8> = [0x0200_0001u32, 1 << 10, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let c = Case::new();
    let records: &[(&str, &[u8])] = &[
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.trusted.foo", b"bar"),
        ("SCHILY.xattr.security.capability", &cap),
        ("SCHILY.xattr.user.note", b"kept"),
    ];
    let tar = Tar::new()
        .pax(records)
        .file("bin/ping", 0o755, b"ping")
        .pax(records)
        .dir("d", 0o755)
        .bytes();
    c.unpack(tar).unwrap();
    // user.* xattrs need a filesystem that takes them (tmpfs does from Linux 6.6 on; the
    // v2 guest's 6.1 does not): there the unpack skips them, as a layer must still unpack.
    let probe = c.dest.join("probe");
    fs::write(&probe, "").unwrap();
    let user_xattrs =
        match rustix::fs::setxattr(&probe, "user.probe", b"1", rustix::fs::XattrFlags::empty()) {
            Ok(()) => true,
            Err(rustix::io::Errno::NOTSUP) => false,
            Err(e) => panic!("probing user xattrs: {e}"),
        };
    for p in ["bin/ping", "d"] {
        let p = c.dest.join(p);
        assert_eq!(xattr(&p, "trusted.overlay.opaque"), None);
        assert_eq!(xattr(&p, "trusted.foo"), None);
        if user_xattrs {
            assert_eq!(xattr(&p, "user.note").as_deref(), Some(&b"kept"[..]));
        }
    }
    assert!(xattr(&c.dest.join("bin/ping"), "security.capability").is_some());
}

#[test]
fn pax_owner_and_mtime_override_ustar() {
    let c = Case::new();
    let tar = Tar::new()
        .pax(&[
            ("uid", b"70000"),
            ("gid", b"70001"),
            ("mtime", b"1700000000.25"),
        ])
        .file("f", 0o644, b"x")
        .bytes();
    c.unpack(tar).unwrap();
    let m = c.meta("f");
    assert_eq!((m.uid(), m.gid()), (70000, 70001));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
}

#[test]
fn later_entries_replace_earlier_ones() {
    let c = Case::new();
    let tar = Tar::new()
        .file("f", 0o600, b"one")
        .file("f", 0o644, b"two")
        .file("x", 0o644, b"file")
        .dir("x", 0o755)
        .file("y/inner", 0o644, b"i")
        .file("y", 0o644, b"now a file")
        .symlink("z", "f")
        .file("z", 0o644, b"zz")
        .bytes();
    c.unpack(tar).unwrap();
    assert_eq!(fs::read(c.dest.join("f")).unwrap(), b"two");
    assert_eq!(c.meta("f").mode() & 0o7777, 0o644);
    assert!(c.meta("x").is_dir());
    assert!(c.meta("y").is_file());
    assert_eq!(fs::read(c.dest.join("y")).unwrap(), b"now a file");
    assert!(c.meta("z").is_file());
    assert_eq!(fs::read(c.dest.join("z")).unwrap(), b"zz");
}

#[test]
fn truncated_archive_fails() {
    let full = Tar::new().file("big", 0o644, &[b'A'; 2000]).bytes();
    for cut in [512 + 1000, 300, 512 + 2000] {
        let c = Case::new();
        let r = c.unpack(full[..cut].to_vec());
        assert!(
            matches!(
                r,
                Err(UnpackError::Truncated { .. } | UnpackError::Archive { .. })
            ),
            "cut at {cut}: {r:?}"
        );
    }
}

#[test]
fn bad_checksum_fails() {
    let mut tar = Tar::new()
        .file("a", 0o644, b"a")
        .file("b", 0o644, b"b")
        .bytes();
    tar[1024] ^= 0x01; // the second header's name
    let c = Case::new();
    let r = c.unpack(tar);
    let e = r.expect_err("bad checksum accepted");
    assert!(matches!(e, UnpackError::Archive { .. }), "{e:?}");
    assert!(e.to_string().contains("\"a\""), "{e}");
}

#[test]
fn pax_size_mismatch_fails() {
    // PAX size past the archive's end.
    let c = Case::new();
    let tar = Tar::new()
        .pax(&[("size", b"5000")])
        .file("f", 0o644, b"short")
        .bytes();
    assert!(c.unpack(tar).is_err());
    // PAX size below the ustar size: the rest of the data is read as a header.
    let c = Case::new();
    let tar = Tar::new()
        .pax(&[("size", b"3")])
        .file("f", 0o644, &[b'A'; 600])
        .bytes();
    assert!(c.unpack(tar).is_err());
}

#[test]
fn missing_dest_fails() {
    let c = Case::new();
    let r = unpack(&b""[..], &c.tmp.path().join("nope"));
    assert!(matches!(r, Err(UnpackError::Dest { .. })), "{r:?}");
    let r = unpack(&b""[..], &c.outside.join("victim"));
    assert!(matches!(r, Err(UnpackError::Dest { .. })), "{r:?}");
    c.check_outside();
}

#[test]
fn pax_path_with_dotdot_is_refused() {
    let c = Case::new();
    let tar = Tar::new()
        .pax(&[("path", b"../outside/victim")])
        .file("harmless", 0o777, b"evil")
        .bytes();
    let e = refused(c.unpack(tar));
    assert!(e.contains("../outside/victim"), "{e}");
    assert!(!c.dest.join("harmless").exists());
}

#[test]
fn root_entry_must_be_a_directory() {
    let c = Case::new();
    refused(c.unpack(Tar::new().file("./", 0o644, b"x").bytes()));
    let c = Case::new();
    refused(c.unpack(Tar::new().symlink(".", &c.outside_str()).bytes()));
    assert!(c.meta("").is_dir());
}
