//! `--userns auto` against the real runtime and kernel, as root: the container's user
//! namespace maps 0..65535 to a range of user ocishim's subordinate ids (the real
//! /etc/subuid and /etc/subgid, which scripts/setup fills), its processes run as host ids
//! of that range, two containers hold disjoint ranges, its root writes where host root
//! could through the idmapped rootfs (a --rootfs directory stores host uid 0; an image's
//! writes land in the upper dir owned by the range), bind mounts keep host ownership, and
//! rm, every failed create and exhaustion leave no range, mount or record behind.
//!
//! In a chroot the kernel refuses user namespaces: there only the refusal is checked (a
//! one-line 125 error, nothing left), and each test says so on stderr. Neither CI stage is
//! a chroot (the qemu guest of scripts/vm-test moves its root as switch_root does), so CI
//! runs every test whole; the branch is for a suite run by hand inside one.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{image, in_a_chroot, overlay_takes_idmapped_lowers, stderr, stdout, Bounded, Env};
use ocishim::security::userns::{Holder, Ranges, RANGE};

fn busybox_oci() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| image("busybox-oci.tar", &[])).clone()
}

/// The subordinate-id entries of user ocishim (start, count); the tests need one.
fn ocishim_subids(file: &str) -> Vec<(u32, u32)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let e = ocishim::security::userns::parse_subids(&text, "ocishim");
    assert!(
        !e.is_empty(),
        "{file} has no range for user ocishim: run scripts/setup"
    );
    e
}

fn ranges(env: &Env) -> Ranges {
    Ranges::new(&env.root)
}

/// The ranges held in `env`: (base, container ID).
fn held(env: &Env) -> Vec<(u32, String)> {
    ranges(env).allocations().unwrap()
}

fn pid_of(env: &Env, id: &str) -> i64 {
    let pid = env.inspect(id)["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0, "no pid for {id}");
    pid
}

/// `/proc/PID/uid_map` (or gid_map) as "0 BASE 65536"; returns BASE.
fn mapped_base(pid: i64, file: &str) -> u32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{file}: {text:?}");
    assert_eq!(f[0], "0", "{file}: {text:?}");
    assert_eq!(f[2], RANGE.to_string(), "{file}: {text:?}");
    f[1].parse().unwrap()
}

/// The container's base, checked: uid and gid maps agree, the base is at least 65536 and
/// the range lies in ocishim's subordinate ids, the record and the table say the same,
/// and its init runs as host ids of the range.
fn check_mapped(env: &Env, id: &str) -> u32 {
    let pid = pid_of(env, id);
    let base = mapped_base(pid, "uid_map");
    assert_eq!(mapped_base(pid, "gid_map"), base);
    assert!(base >= 65536, "base {base}");
    for file in ["/etc/subuid", "/etc/subgid"] {
        let inside = ocishim_subids(file)
            .iter()
            .any(|&(s, c)| base >= s && u64::from(base) + 65536 <= u64::from(s) + u64::from(c));
        assert!(inside, "range {base} is not ocishim's in {file}");
    }
    let rec = env.inspect(id);
    assert_eq!(rec["HostConfig"]["UsernsMode"], "auto");
    assert_eq!(rec["Ocishim"]["UsernsBase"], base);
    assert!(
        held(env).contains(&(base, id.to_string())),
        "{:?}",
        held(env)
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for key in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        for v in line.split_whitespace().skip(1) {
            let v: u32 = v.parse().unwrap();
            assert!((base..base + RANGE).contains(&v), "{line} (base {base})");
        }
    }
    base
}

/// In a chroot: `run --userns auto` is a one-line 125 error naming user namespaces, and
/// nothing is left (no range, record, cgroup, mount).
fn refused_in_a_chroot(env: &Env, args: &[&str]) {
    eprintln!("in a chroot: user namespaces cannot be made here; only the refusal is checked");
    let o = env.ocishim(args);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("user namespaces"), "{err}");
    for id in env.ok(&["ps", "-aq", "--no-trunc"]).split_whitespace() {
        env.ok(&["rm", "-f", id]);
    }
    assert!(held(env).is_empty(), "{:?}", held(env));
    env.assert_empty();
}

/// A private copy of the busybox rootfs (the container writes into it) with `/data`, a
/// directory of host root's (0755).
fn own_rootfs(env: &Env) -> PathBuf {
    let dir = env.base.join("rootfs");
    let st = Command::new("cp")
        .arg("-a")
        .arg(env.rootfs())
        .arg(&dir)
        .bounded_status();
    assert!(st.success());
    std::fs::create_dir(dir.join("data")).unwrap();
    std::os::unix::fs::chown(dir.join("data"), Some(0), Some(0)).unwrap();
    dir
}

#[test]
fn rootfs_dir_is_idmapped_and_its_root_writes_as_host_root() {
    let env = Env::new();
    let rootfs = own_rootfs(&env);
    let r = rootfs.display().to_string();
    let vol = env.base.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("f"), "x").unwrap();
    let bind = format!("{}:/vol", vol.display());
    let base_args = [
        "run",
        "-d",
        "--userns",
        "auto",
        "--network",
        "none",
        "-v",
        &bind,
        "--rootfs",
        &r,
    ];
    if in_a_chroot() {
        let mut a = base_args.to_vec();
        a.extend(["sleep", "30"]);
        return refused_in_a_chroot(&env, &a);
    }
    let mut a = base_args.to_vec();
    a.extend(["sleep", "30"]);
    let id = env.ok(&a);
    let base = check_mapped(&env, &id);
    let pid = pid_of(&env, &id);
    // The root is the idmapped mount of the directory, at the container's own path.
    let target = env.data_root.join("containers").join(&id).join("rootfs");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let t = target.display().to_string();
    assert!(
        mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(t.as_str())),
        "no mount at {t}"
    );
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[pid]);
    assert!(
        held(&env).is_empty(),
        "rm released nothing: {:?}",
        held(&env)
    );

    // The container's root is root inside, sees the host's root files as its own and
    // writes where host root could; the file is stored as host uid 0. A bind mount keeps
    // host ownership: host root's file is nobody's inside.
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--userns",
        "auto",
        "--network",
        "none",
        "-v",
        &bind,
        "--rootfs",
        &r,
        "sh",
        "-c",
        "id -u; stat -c %u /data; touch /data/made-inside && echo touched; stat -c %u /vol/f",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "0\n0\ntouched\n65534\n");
    let made = std::fs::metadata(rootfs.join("data/made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (0, 0));
    // The released range was the lowest free one: the same again.
    let id = env.run_d(&["--userns", "auto", "--network", "none"], &["sleep", "30"]);
    assert_eq!(check_mapped(&env, &id), base);
    let pid = pid_of(&env, &id);
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[pid]);
    env.assert_empty();
}

#[test]
fn two_containers_on_a_bridge_hold_disjoint_ranges() {
    let env = Env::new();
    if in_a_chroot() {
        let r = env.rootfs();
        return refused_in_a_chroot(
            &env,
            &[
                "run", "-d", "--userns", "auto", "--rootfs", &r, "sleep", "30",
            ],
        );
    }
    let a = env.run_d(&["--userns", "auto"], &["sleep", "30"]);
    let b = env.run_d(&["--userns", "auto"], &["sleep", "30"]);
    let (ba, bb) = (check_mapped(&env, &a), check_mapped(&env, &b));
    assert!(ba.abs_diff(bb) >= RANGE, "{ba} and {bb} overlap");
    let pids = [pid_of(&env, &a), pid_of(&env, &b)];
    // The host's view of each: every process of the container runs in its own range.
    for (id, base) in [(&a, ba), (&b, bb)] {
        let o = env.ocishim(&["ps", "-a"]);
        assert!(o.status.success());
        assert!(stdout(&o).contains(&id[..12]));
        let pid = pid_of(&env, id);
        let st = std::fs::metadata(format!("/proc/{pid}")).unwrap();
        assert!((base..base + RANGE).contains(&st.uid()), "{}", st.uid());
    }
    // /etc files, /dev/shm, sysctls and the network work as without a user namespace.
    let r = env.rootfs();
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--userns",
        "auto",
        "--hostname",
        "uns-host",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "grep -c uns-host /etc/hosts; cat /etc/hostname; test -r /etc/resolv.conf && echo resolv; \
         touch /dev/shm/x && echo shm; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; \
         ip -4 -o addr show eth0 | grep -c inet; test -d /sys/fs/cgroup && echo cgroup",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "1\nuns-host\nresolv\nshm\n0\n1\ncgroup\n");
    // The bundle's spec: a user namespace with the mappings, /sys bound from the host
    // (the bridge network's namespace is not the container's to mount sysfs for), and
    // valid against the OCI schema.
    let config = env.root.join("containers").join(&a).join("config.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let want = serde_json::json!([{"containerID": 0, "hostID": ba, "size": RANGE}]);
    assert_eq!(spec["linux"]["uidMappings"], want);
    assert_eq!(spec["linux"]["gidMappings"], want);
    assert_eq!(spec["linux"]["namespaces"][0]["type"], "user");
    let sys = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert_eq!(
        (&sys["type"], &sys["source"]),
        (&"bind".into(), &"/sys".into())
    );
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new("python3")
        .arg(manifest.join("scripts/validate-spec.py"))
        .arg(manifest.join("tests/oci-runtime-schema"))
        .arg(&config)
        .bounded();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    env.ok(&["rm", "-f", &a, &b]);
    env.assert_gone(&a, &pids[..1]);
    env.assert_gone(&b, &pids[1..]);
    assert!(held(&env).is_empty(), "{:?}", held(&env));
    env.assert_empty();
}

#[test]
fn an_images_writes_land_in_the_upper_dir_owned_by_the_range() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["load", "-i", busybox_oci().to_str().unwrap()]),
        "Loaded image: busybox:latest"
    );
    if in_a_chroot() {
        return refused_in_a_chroot(
            &env,
            &["run", "-d", "--userns", "auto", "busybox", "sleep", "30"],
        );
    }
    if !overlay_takes_idmapped_lowers() {
        eprintln!("this kernel's overlayfs takes no idmapped lowers: only the refusal is checked");
        let o = env.ocishim(&["run", "-d", "--userns", "auto", "busybox", "sleep", "30"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("idmapped lower layers"), "{err}");
        // The rootfs step comes after the record: docker's failed create, its ID printed,
        // its range given back; rm -f leaves nothing.
        let id = stdout(&o).trim().to_string();
        assert_eq!(id.len(), 64, "{id:?}");
        assert!(held(&env).is_empty(), "{:?}", held(&env));
        env.ok(&["rm", "-f", &id]);
        env.assert_empty();
        return;
    }
    let id = env.ok(&[
        "run",
        "-d",
        "--userns",
        "auto",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "id -u > /etc/who; stat -c %u /etc >> /etc/who; mkdir /made; exec sleep 30",
    ]);
    let base = check_mapped(&env, &id);
    let pid = pid_of(&env, &id);
    let upper = env.data_root.join("containers").join(&id).join("upper");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !upper.join("made").exists() {
        assert!(std::time::Instant::now() < deadline, "nothing written");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Root inside, owning the image's /etc; on the host all of it belongs to the range.
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/who")).unwrap(),
        "0\n0\n"
    );
    for p in ["", "etc", "etc/who", "made"] {
        let m = std::fs::metadata(upper.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (base, base), "upper/{p}");
    }
    // The image's layers are untouched: still host root's.
    let store_files = env.data_root.join("image");
    assert!(store_files.is_dir());
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[pid]);
    assert!(held(&env).is_empty(), "{:?}", held(&env));
    env.assert_empty();
}

#[test]
fn failed_creates_release_the_range_and_leave_no_mount() {
    let env = Env::new();
    let r = env.rootfs();
    if in_a_chroot() {
        return refused_in_a_chroot(
            &env,
            &["run", "--userns", "auto", "--rootfs", &r, "no-such-command"],
        );
    }
    // The runtime cannot find the command: 127, the record kept with the error, its range
    // and its idmapped rootfs gone.
    let o = env.ocishim(&[
        "run",
        "--userns",
        "auto",
        "--network",
        "none",
        "--name",
        "uns-missing",
        "--rootfs",
        &r,
        "no-such-command",
    ]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let id = env.inspect("uns-missing")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(held(&env).is_empty(), "{:?}", held(&env));
    let target = env.data_root.join("containers").join(&id).join("rootfs");
    assert!(!target.exists(), "rootfs mount point left");
    assert!(
        mounts_under(&env.base).is_empty(),
        "{:?}",
        mounts_under(&env.base)
    );
    // Started again, it gets a range (and its mount) anew, then fails the same way.
    let o = env.ocishim(&["start", "uns-missing"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(held(&env).is_empty(), "{:?}", held(&env));
    env.ok(&["rm", "uns-missing"]);
    env.assert_gone(&id, &[]);

    // A directory whose filesystem cannot be idmapped (ramfs): a one-line 125 naming it,
    // nothing mounted, the range given back.
    let ram = env.base.join("ram");
    std::fs::create_dir(&ram).unwrap();
    let st = Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(&ram)
        .bounded_status();
    assert!(st.success(), "mounting a ramfs");
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{r}/."))
        .arg(&ram)
        .bounded_status();
    assert!(st.success());
    let rr = ram.display().to_string();
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--userns",
        "auto",
        "--network",
        "none",
        "--rootfs",
        &rr,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot be idmapped") && err.contains(&rr),
        "{err}"
    );
    assert!(held(&env).is_empty(), "{:?}", held(&env));
    assert_eq!(mounts_under(&env.data_root), Vec::<String>::new());
    nix::mount::umount2(&ram, nix::mount::MntFlags::MNT_DETACH).unwrap();
    env.assert_empty();
}

#[test]
fn exhaustion_is_a_one_line_125_that_leaves_nothing() {
    let env = Env::new();
    let r = env.rootfs();
    // Every range of ocishim's subordinate ids held by (live) others: the table written
    // whole (one allocation per range would take minutes under qemu), then checked full
    // by the allocator itself.
    let rs = ranges(&env);
    let gids = ocishim_subids("/etc/subgid");
    let mut table = std::collections::BTreeMap::new();
    for (start, count) in ocishim_subids("/etc/subuid") {
        let end = u64::from(start) + u64::from(count);
        let mut b = u64::from(start);
        while b + u64::from(RANGE) <= end {
            let in_gids = gids.iter().any(|&(s, c)| {
                b >= u64::from(s) && b + u64::from(RANGE) <= u64::from(s) + u64::from(c)
            });
            if in_gids {
                let n = table.len();
                table.insert(b as u32, Holder::this_process(&format!("filler-{n}")));
            }
            b += u64::from(RANGE);
        }
    }
    let n = table.len();
    assert!(n >= 1);
    std::fs::create_dir_all(env.ranges_file().parent().unwrap()).unwrap();
    std::fs::write(env.ranges_file(), serde_json::to_vec(&table).unwrap()).unwrap();
    let e = rs
        .allocate(Holder::this_process("one-more"), None, |_| false)
        .unwrap_err();
    assert!(e.to_string().contains(&format!("all {n} ranges")), "{e}");
    let before = held(&env);
    let o = env.ocishim(&[
        "run", "--userns", "auto", "--name", "uns-full", "--rootfs", &r, "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--userns auto") && err.contains("are in use"),
        "{err}"
    );
    // Nothing made: no record, no name, no cgroup, no address, no range.
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    assert_eq!(held(&env), before);
    env.assert_empty_but_ranges();
    // Once one is given back, the next container gets it.
    rs.release(&before[0].1).unwrap();
    if in_a_chroot() {
        std::fs::remove_file(env.ranges_file()).unwrap();
        return refused_in_a_chroot(&env, &["run", "--userns", "auto", "--rootfs", &r, "true"]);
    }
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--userns",
        "auto",
        "--network",
        "none",
        "--rootfs",
        &r,
        "cat",
        "/proc/self/uid_map",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).split_whitespace().nth(1).unwrap(),
        before[0].0.to_string()
    );
    assert_eq!(held(&env).len(), n - 1);
    std::fs::remove_file(env.ranges_file()).unwrap();
    env.assert_empty();
}

fn mounts_under(base: &Path) -> Vec<String> {
    let b = base.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&b))
        .collect()
}

/// `n` layers under `base/layers/<i>/diff` behind short links `l/<i>` (as the image store
/// makes them), each with its own file and `shared` naming the layer; topmost first.
fn layers(base: &Path, n: usize) -> Vec<String> {
    std::fs::create_dir_all(base.join("l")).unwrap();
    let mut names = Vec::new();
    for i in 0..n {
        let d = base.join(format!("layers/{i:064x}/diff"));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(d.join(format!("etc/layer-{i}")), "x").unwrap();
        std::fs::write(d.join("shared"), format!("{i}")).unwrap();
        let short = format!("l/{i:016x}");
        std::os::unix::fs::symlink(format!("../layers/{i:064x}/diff"), base.join(&short)).unwrap();
        names.push(short);
    }
    names.reverse();
    names
}

#[test]
fn an_idmapped_overlay_of_a_hundred_and_twenty_layers_leaves_only_itself() {
    common::require_root_and_runtime();
    use ocishim::image::rootfs::{self, Idmap, Overlay};
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("image");
    let lowers = layers(&base, 120);
    let c = tmp.path().join("container");
    std::fs::create_dir_all(&c).unwrap();
    let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
    let ns = match ocishim::security::userns::userns_fd(1_000_000) {
        Ok(ns) => ns,
        Err(e) => {
            assert!(in_a_chroot(), "{e}");
            eprintln!("in a chroot: user namespaces cannot be made here: {e}");
            assert!(e.to_string().contains("user namespaces"), "{e}");
            return;
        }
    };
    let before = mounts_under(tmp.path());
    let o = Overlay {
        base: &base,
        lowers: &lowers,
        upper: &upper,
        work: &work,
        target: &target,
        volatile: true,
        idmap: Some(Idmap {
            userns: std::os::fd::AsFd::as_fd(&ns),
            base: 1_000_000,
        }),
    };
    if !overlay_takes_idmapped_lowers() {
        let e = rootfs::mount(&o).unwrap_err();
        assert!(e.to_string().contains("idmapped lower layers"), "{e}");
        assert_eq!(mounts_under(tmp.path()), before, "nothing left mounted");
        return;
    }
    assert!(before.is_empty(), "{before:?}");
    rootfs::mount(&o).unwrap();
    // One mount: the overlay; the idmapped layers are attached nowhere.
    assert_eq!(mounts_under(tmp.path()), vec![target.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(target.join("shared")).unwrap(),
        "119"
    );
    assert!(target.join("etc/layer-0").exists() && target.join("etc/layer-119").exists());
    // The layers' host-root files appear as the range's base; the layers keep uid 0.
    let m = std::fs::metadata(target.join("etc/layer-7")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1_000_000, 1_000_000));
    let layer = base.join(format!("layers/{:064x}/diff/etc/layer-7", 7));
    assert_eq!(std::fs::metadata(layer).unwrap().uid(), 0);
    for p in [&upper, &work] {
        assert_eq!(std::fs::metadata(p).unwrap().uid(), 1_000_000, "{p:?}");
    }
    rootfs::remove(&target, &upper, &work).unwrap();
    assert!(mounts_under(tmp.path()).is_empty());
    assert!(!target.exists() && !upper.exists() && !work.exists());

    // The fallback of kernels whose overlayfs takes no layer fds (5.19 to 6.12): the
    // layers attached beside the target for the mount only. The same result, and again
    // only the overlay is left mounted.
    for p in [&upper, &work, &target] {
        std::fs::create_dir(p).unwrap();
    }
    let fds: Vec<_> = lowers
        .iter()
        .map(|l| ocishim::sys::idmapped_tree(&base.join(l), std::os::fd::AsFd::as_fd(&ns)).unwrap())
        .collect();
    rootfs::mount_attached_lowers(&o, &fds).unwrap();
    drop(fds);
    assert_eq!(mounts_under(tmp.path()), vec![target.display().to_string()]);
    assert!(!rootfs::attached_lowers_dir(&target).exists());
    assert_eq!(
        std::fs::read_to_string(target.join("shared")).unwrap(),
        "119"
    );
    let m = std::fs::metadata(target.join("etc/layer-7")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1_000_000, 1_000_000));
    std::fs::write(target.join("new"), "n").unwrap();
    assert!(upper.join("new").exists());
    rootfs::remove(&target, &upper, &work).unwrap();
    assert!(mounts_under(tmp.path()).is_empty());
    assert!(!target.exists() && !upper.exists() && !work.exists());
}
