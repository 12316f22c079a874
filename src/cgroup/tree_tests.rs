//! Create, apply, read and remove on temp trees that imitate v1 and v2 hierarchies.

use super::*;
use crate::config::Resources;
use tempfile::TempDir;

const V1_HYBRID: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
37 31 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
39 31 0:36 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,cpuset
41 31 0:38 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,net_cls,net_prio
42 31 0:39 / /sys/fs/cgroup/misc rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,misc
60 22 0:50 / /run rw,nosuid,nodev shared:30 - tmpfs tmpfs rw,size=812304k,mode=755
";

const V2_HOST: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
29 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

fn mkfile(p: &Path, text: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The v1 hybrid host's table, moved under `t`.
fn v1_fs(t: &TempDir) -> CgroupFs {
    let root = t.path().to_str().unwrap();
    let text = V1_HYBRID.replace(" /sys/fs/cgroup/", &format!(" {root}/"));
    let fs = CgroupFs::from_mountinfo(root, Version::V1, &text);
    for m in fs.mounts() {
        fs::create_dir_all(&m.point).unwrap();
    }
    mkfile(&t.path().join("cpuset/cpuset.cpus"), "0-3\n");
    mkfile(&t.path().join("cpuset/cpuset.mems"), "0\n");
    fs
}

fn v2_fs(t: &TempDir) -> CgroupFs {
    let root = t.path();
    mkfile(
        &root.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    );
    mkfile(&root.join("cgroup.subtree_control"), "");
    CgroupFs::new(
        root,
        Version::V2,
        vec![Mount {
            version: Version::V2,
            point: root.to_path_buf(),
            options: "rw".into(),
        }],
    )
}

/// Remove the regular files under each of `cg`'s directories (the kernel's control
/// files go with the rmdir; a plain directory's do not).
fn strip_files(cg: &ContainerCgroup, path: &str) {
    fn strip(d: &Path) {
        for e in fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                strip(&e.path());
            } else {
                fs::remove_file(e.path()).unwrap();
            }
        }
    }
    for d in cg.dirs_of(path) {
        if d.is_dir() {
            strip(&d);
        }
    }
}

#[test]
fn mountinfo_of_a_v1_hybrid_host() {
    let fs = CgroupFs::from_mountinfo(CGROUP_ROOT, Version::V1, V1_HYBRID);
    let points: Vec<_> = fs.all_mounts();
    let names: Vec<_> = points
        .iter()
        .map(|p| p.strip_prefix(CGROUP_ROOT).unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "unified",
            "systemd",
            "cpu,cpuacct",
            "memory",
            "pids",
            "freezer",
            "cpuset",
            "net_cls,net_prio",
            "misc"
        ]
    );
    assert_eq!(fs.mounts()[0].version, Version::V2);
    assert_eq!(fs.mounts()[1].options, "rw,xattr,name=systemd");
    let at = |c: &str| fs.v1_mount(c).map(|p| p.to_str().unwrap().to_string());
    assert_eq!(at("cpuacct").as_deref(), Some("/sys/fs/cgroup/cpu,cpuacct"));
    assert_eq!(at("cpu").as_deref(), Some("/sys/fs/cgroup/cpu,cpuacct"));
    assert_eq!(
        at("name=systemd").as_deref(),
        Some("/sys/fs/cgroup/systemd")
    );
    assert_eq!(at("blkio"), None);
    // The unified mount carries no v1 controller.
    assert_eq!(at("nsdelegate"), None);
    let cg = ContainerCgroup::new(&fs, "/ocishim/c1/");
    assert_eq!(cg.path, "ocishim/c1");
    assert_eq!(
        cg.dir("memory"),
        Some(PathBuf::from("/sys/fs/cgroup/memory/ocishim/c1"))
    );
    assert_eq!(cg.dir("blkio"), None);
}

#[test]
fn mountinfo_of_a_v2_host() {
    let fs = CgroupFs::from_mountinfo(CGROUP_ROOT, Version::V2, V2_HOST);
    assert_eq!(
        fs.mounts(),
        [Mount {
            version: Version::V2,
            point: PathBuf::from("/sys/fs/cgroup"),
            options: "rw,nsdelegate,memory_recursiveprot".into(),
        }]
    );
    assert_eq!(fs.v1_mount("memory"), None);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    assert_eq!(cg.version, Version::V2);
    for c in ["memory", "cpu", "freezer"] {
        assert_eq!(cg.dir(c), Some(PathBuf::from("/sys/fs/cgroup/ocishim/c1")));
    }
}

#[test]
fn the_host_is_read_once() {
    let fs = CgroupFs::host();
    assert!(std::ptr::eq(fs, CgroupFs::host()));
    assert_eq!(fs.root(), Path::new(CGROUP_ROOT));
    assert_eq!(fs.version(), detect(Path::new(CGROUP_ROOT)));
    assert_eq!(all_mounts(), fs.all_mounts());
    let cg = ContainerCgroup::at("/ocishim/c1");
    assert_eq!(cg.path, "ocishim/c1");
    assert_eq!(cg.version, fs.version());
}

#[test]
fn v1_create_makes_every_hierarchy_and_copies_cpusets() {
    let t = TempDir::new().unwrap();
    let fs = v1_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    cg.create().unwrap();
    for h in [
        "systemd",
        "cpu,cpuacct",
        "memory",
        "pids",
        "freezer",
        "cpuset",
        "net_cls,net_prio",
    ] {
        assert!(t.path().join(h).join("ocishim/c1").is_dir(), "{h}");
    }
    // Not a controller cgroups-rs knew, nor a v1 hierarchy.
    assert!(!t.path().join("misc/ocishim").exists());
    assert!(!t.path().join("unified/ocishim").exists());
    for level in ["ocishim", "ocishim/c1"] {
        let d = t.path().join("cpuset").join(level);
        assert_eq!(read(&d.join("cpuset.cpus")), "0-3");
        assert_eq!(read(&d.join("cpuset.mems")), "0");
    }
    assert_eq!(cg.existing_dirs().len(), 7);
    // A parent's own sets are kept and passed on; a set already there is kept.
    fs::write(t.path().join("cpuset/ocishim/cpuset.cpus"), "1\n").unwrap();
    mkfile(&t.path().join("cpuset/ocishim/c2/cpuset.mems"), "0\n");
    ContainerCgroup::new(&fs, "ocishim/c2").create().unwrap();
    let c2 = t.path().join("cpuset/ocishim/c2");
    assert_eq!(read(&c2.join("cpuset.cpus")), "1");
    assert_eq!(read(&c2.join("cpuset.mems")), "0\n");
}

#[test]
fn v1_create_fails_with_the_path() {
    let t = TempDir::new().unwrap();
    let fs = v1_fs(&t);
    // A file where the parent's directory should be.
    mkfile(&t.path().join("memory/ocishim"), "");
    let err = ContainerCgroup::new(&fs, "ocishim/c1")
        .create()
        .unwrap_err();
    assert!(matches!(&err, CgroupError::Create { path, .. } if path == "ocishim/c1"));
    assert!(err
        .to_string()
        .starts_with("cgroup ocishim/c1: fs error caused by: "));
}

#[test]
fn v2_create_enables_controllers_above_the_cgroup() {
    let t = TempDir::new().unwrap();
    let fs = v2_fs(&t);
    let root = t.path();
    // Made as the kernel would, except b's subtree_control.
    mkfile(&root.join("a/cgroup.subtree_control"), "");
    mkfile(&root.join("a/b/c/cgroup.subtree_control"), "");
    ContainerCgroup::new(&fs, "a/b/c").create().unwrap();
    assert!(root.join("a/b/c").is_dir());
    // One write per controller; a plain file keeps the last.
    assert_eq!(read(&root.join("cgroup.subtree_control")), "+pids");
    assert_eq!(read(&root.join("a/cgroup.subtree_control")), "+pids");
    // A missing file is not made, and the cgroup's own is not written.
    assert!(!root.join("a/b/cgroup.subtree_control").exists());
    assert_eq!(read(&root.join("a/b/c/cgroup.subtree_control")), "");
}

#[test]
fn apply_writes_and_reads_back() {
    let m = 64i64 << 20;
    let r = Resources {
        memory: m,
        memory_swap: 2 * m,
        cpu_shares: 512,
        nano_cpus: 500_000_000,
        cpuset_cpus: "0".into(),
        pids_limit: Some(64),
        ..Default::default()
    };
    // v1: the files in the hierarchy of their controller.
    let t = TempDir::new().unwrap();
    let fs = v1_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    cg.create().unwrap();
    mkfile(&t.path().join("memory/memory.memsw.limit_in_bytes"), "");
    assert!(cg.swap_accounting());
    let writes = plan(&r, cg.version, cg.swap_accounting()).unwrap();
    for wr in &writes {
        mkfile(&cg.dir(wr.controller).unwrap().join(wr.file), "");
    }
    cg.apply(&writes).unwrap();
    let at = |h: &str, f: &str| read(&t.path().join(h).join("ocishim/c1").join(f));
    assert_eq!(at("memory", "memory.limit_in_bytes"), m.to_string());
    assert_eq!(
        at("memory", "memory.memsw.limit_in_bytes"),
        (2 * m).to_string()
    );
    assert_eq!(at("cpu,cpuacct", "cpu.shares"), "512");
    assert_eq!(at("cpu,cpuacct", "cpu.cfs_quota_us"), "50000");
    assert_eq!(at("cpuset", "cpuset.cpus"), "0");
    assert_eq!(at("pids", "pids.max"), "64");
    // v2: all in the one directory.
    let t = TempDir::new().unwrap();
    let fs = v2_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    cg.create().unwrap();
    let d = t.path().join("ocishim/c1");
    mkfile(&d.join("memory.swap.max"), "");
    assert!(cg.swap_accounting());
    let writes = plan(&r, cg.version, true).unwrap();
    for wr in &writes {
        mkfile(&d.join(wr.file), "");
    }
    cg.apply(&writes).unwrap();
    assert_eq!(read(&d.join("memory.max")), m.to_string());
    assert_eq!(read(&d.join("memory.swap.max")), m.to_string());
    assert_eq!(read(&d.join("cpu.weight")), "20");
    assert_eq!(read(&d.join("cpu.max")), "50000 100000");
    assert_eq!(read(&d.join("pids.max")), "64");
}

#[test]
fn apply_errors() {
    let t = TempDir::new().unwrap();
    let fs = v1_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    cg.create().unwrap();
    assert!(!cg.swap_accounting());
    let mem = t.path().join("memory/ocishim/c1");
    // No such file: the controller, or swap accounting, is missing.
    let one = |file: &'static str, value: &str| {
        let controller = file.split('.').next().unwrap();
        cg.apply(&[w(controller, file, value)])
    };
    assert!(matches!(
        one("pids.max", "64"),
        Err(CgroupError::NoController(c)) if c == "pids"
    ));
    assert!(matches!(
        one("memory.memsw.limit_in_bytes", "1"),
        Err(CgroupError::NoSwapAccounting { file }) if file == "memory.memsw.limit_in_bytes"
    ));
    // No hierarchy for the controller.
    assert!(matches!(
        cg.apply(&[w("blkio", "blkio.weight", 10)]),
        Err(CgroupError::NoController(c)) if c == "blkio"
    ));
    // Reads back something else (here nothing).
    std::os::unix::fs::symlink("/dev/null", mem.join("memory.limit_in_bytes")).unwrap();
    assert!(matches!(
        one("memory.limit_in_bytes", "4096"),
        Err(CgroupError::Mismatch { file, value, got })
            if file == "memory.limit_in_bytes" && value == "4096" && got.is_empty()
    ));
    // A write refused.
    fs::create_dir(mem.join("memory.soft_limit_in_bytes")).unwrap();
    assert!(matches!(
        one("memory.soft_limit_in_bytes", "4096"),
        Err(CgroupError::Refused { file, .. }) if file == "memory.soft_limit_in_bytes"
    ));
}

#[test]
fn frozen_reads_the_freezer() {
    let t = TempDir::new().unwrap();
    let fs = v1_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    assert_eq!(cg.frozen(), None);
    cg.create().unwrap();
    let state = t.path().join("freezer/ocishim/c1/freezer.self_freezing");
    for (text, frozen) in [("1\n", true), ("0\n", false)] {
        fs::write(&state, text).unwrap();
        assert_eq!(cg.frozen(), Some(frozen), "{text}");
    }
    // The freezer mounted elsewhere: found through the table.
    let elsewhere = t.path().join("elsewhere");
    let fs = CgroupFs::new(
        t.path(),
        Version::V1,
        vec![Mount {
            version: Version::V1,
            point: elsewhere.clone(),
            options: "rw,freezer".into(),
        }],
    );
    mkfile(&elsewhere.join("ocishim/c2/freezer.self_freezing"), "1\n");
    assert_eq!(ContainerCgroup::new(&fs, "ocishim/c2").frozen(), Some(true));
    // v2: cgroup.freeze.
    let t = TempDir::new().unwrap();
    let fs = v2_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    assert_eq!(cg.frozen(), None);
    cg.create().unwrap();
    let freeze = t.path().join("ocishim/c1/cgroup.freeze");
    for (text, frozen) in [("1\n", true), ("0\n", false)] {
        fs::write(&freeze, text).unwrap();
        assert_eq!(cg.frozen(), Some(frozen), "{text}");
    }
}

#[test]
fn oom_kills_and_stats() {
    let t = TempDir::new().unwrap();
    let fs = v1_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    assert_eq!(cg.oom_kills(), 0);
    assert_eq!(cg.stats(), Stats::default());
    cg.create().unwrap();
    let at = |h: &str| t.path().join(h).join("ocishim/c1");
    mkfile(
        &at("memory").join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    mkfile(&at("memory").join("memory.usage_in_bytes"), "1000\n");
    mkfile(&at("memory").join("memory.limit_in_bytes"), "4096\n");
    mkfile(&at("memory").join("memory.max_usage_in_bytes"), "2000\n");
    mkfile(&at("cpu,cpuacct").join("cpuacct.usage"), "123456789\n");
    mkfile(&at("pids").join("pids.current"), "7\n");
    assert_eq!(cg.oom_kills(), 3);
    assert_eq!(
        cg.stats(),
        Stats {
            memory_usage: 1000,
            memory_limit: 4096,
            memory_max_usage: 2000,
            cpu_usage_ns: 123_456_789,
            pids_current: 7,
            oom_kills: 3,
        }
    );
    let t = TempDir::new().unwrap();
    let fs = v2_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    cg.create().unwrap();
    let d = t.path().join("ocishim/c1");
    mkfile(
        &d.join("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n",
    );
    mkfile(&d.join("memory.current"), "1000\n");
    mkfile(&d.join("memory.max"), "max\n");
    mkfile(&d.join("memory.peak"), "2000\n");
    mkfile(
        &d.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    );
    mkfile(&d.join("pids.current"), "4\n");
    assert_eq!(cg.oom_kills(), 2);
    assert_eq!(
        cg.stats(),
        Stats {
            memory_usage: 1000,
            memory_limit: u64::MAX,
            memory_max_usage: 2000,
            cpu_usage_ns: 1_500_000,
            pids_current: 4,
            oom_kills: 2,
        }
    );
}

#[test]
fn remove_takes_every_hierarchy() {
    let t = TempDir::new().unwrap();
    let fs = v1_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    cg.create().unwrap();
    // Also in hierarchies ocishim does not create in, with a child cgroup.
    fs::create_dir_all(t.path().join("unified/ocishim/c1/sub")).unwrap();
    fs::create_dir_all(t.path().join("misc/ocishim/c1")).unwrap();
    fs::create_dir_all(t.path().join("memory/ocishim/c1/sub/subsub")).unwrap();
    strip_files(&cg, "ocishim/c1");
    assert_eq!(cg.existing_dirs().len(), 9);
    cg.remove().unwrap();
    assert!(cg.existing_dirs().is_empty());
    assert!(t.path().join("memory/ocishim").is_dir());
    // Missing is fine.
    cg.remove().unwrap();
    // v2.
    let t = TempDir::new().unwrap();
    let fs = v2_fs(&t);
    let cg = ContainerCgroup::new(&fs, "ocishim/c1");
    cg.create().unwrap();
    fs::create_dir_all(t.path().join("ocishim/c1/sub")).unwrap();
    cg.remove().unwrap();
    assert!(!t.path().join("ocishim/c1").exists());
    assert!(t.path().join("ocishim").is_dir());
    cg.remove().unwrap();
}

#[test]
fn remove_parent_if_empty_keeps_a_parent_with_another_child() {
    let t = TempDir::new().unwrap();
    let fs = v1_fs(&t);
    let c1 = ContainerCgroup::new(&fs, "ocishim/c1");
    let c2 = ContainerCgroup::new(&fs, "ocishim/c2");
    c1.create().unwrap();
    c2.create().unwrap();
    strip_files(&c1, "ocishim");
    c1.remove().unwrap();
    c1.remove_parent_if_empty();
    assert_eq!(
        c1.dirs_of("ocishim").iter().filter(|d| d.is_dir()).count(),
        7
    );
    c2.remove().unwrap();
    c2.remove_parent_if_empty();
    assert!(c2.dirs_of("ocishim").iter().all(|d| !d.exists()));
    // No parent: nothing to do.
    ContainerCgroup::new(&fs, "c3").remove_parent_if_empty();
    assert!(t.path().join("memory").is_dir());
}
