//! `generate` on representative configs: docker's defaults, and the layout of the
//! mounts, process, resources and namespaces pinned.

use std::collections::HashSet;

use super::*;
use crate::config::{HostFacts, RawOptions, DEFAULT_PATH};

fn cfg(f: impl FnOnce(&mut RawOptions)) -> ContainerConfig {
    let mut r = RawOptions {
        rootfs: Some("/tmp/rootfs".into()),
        args: vec!["sh".into(), "-c".into(), "true".into()],
        ..Default::default()
    };
    f(&mut r);
    r.into_config(&HostFacts {
        ncpu: 2,
        cpus_online: "0-1".into(),
        mems_online: "0".into(),
        env: Default::default(),
    })
    .unwrap()
}

fn gen(c: &ContainerConfig) -> serde_json::Value {
    gen_with(c, |_| {})
}

/// The spec as JSON for `c`, with the input changed by `f`; the capability sets (hash
/// sets, in no particular order) sorted.
fn gen_with(c: &ContainerConfig, f: impl FnOnce(&mut SpecInput)) -> serde_json::Value {
    let mut inp = SpecInput {
        cfg: c,
        hostname: "0123456789ab".into(),
        user: ResolvedUser::default(),
        devices: vec![],
        etc: Some(EtcFiles {
            hostname: "/x/hostname".into(),
            hosts: "/x/hosts".into(),
            resolv_conf: "/x/resolv.conf".into(),
        }),
        cgroups_path: "/ocishim/abc".into(),
        cgroup_ns: true,
        netns: Some("/run/ocishim/netns/abc".into()),
        bounding: crate::config::all_caps(),
        seccomp_host: crate::security::seccomp::Host {
            arch: "amd64",
            seccomp_arch: oci_spec::runtime::Arch::ScmpArchX86_64,
            kernel: (6, 1),
        },
        userns_base: None,
    };
    f(&mut inp);
    let mut v = serde_json::to_value(generate(&inp).unwrap()).unwrap();
    if let Some(caps) = v["process"]["capabilities"].as_object_mut() {
        for set in caps.values_mut() {
            set.as_array_mut()
                .unwrap()
                .sort_by_key(|c| c.as_str().unwrap().to_string());
        }
    }
    v
}

fn strs(v: &serde_json::Value) -> HashSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn docker_defaults() {
    let v = gen(&cfg(|_| {}));
    assert_eq!(v["hostname"], "0123456789ab");
    assert_eq!(v["process"]["terminal"], false);
    assert_eq!(v["process"]["noNewPrivileges"], false);
    assert!(v["process"].get("rlimits").is_none());
    let caps = &v["process"]["capabilities"];
    let want: HashSet<String> = crate::config::DEFAULT_CAPS
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    for set in ["bounding", "permitted", "effective"] {
        assert_eq!(strs(&caps[set]), want, "{set}");
    }
    assert!(caps["inheritable"].as_array().unwrap().is_empty());
    assert!(caps["ambient"].as_array().unwrap().is_empty());
    let env = strs(&v["process"]["env"]);
    assert!(env.contains(DEFAULT_PATH));
    assert!(env.contains("HOSTNAME=0123456789ab"));
    assert_eq!(strs(&v["linux"]["maskedPaths"]).len(), MASKED_PATHS.len());
    assert_eq!(
        strs(&v["linux"]["readonlyPaths"]).len(),
        READONLY_PATHS.len()
    );
    let dests: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ] {
        assert!(dests.contains(&d), "{d}");
    }
    let shm = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev/shm")
        .unwrap();
    assert!(strs(&shm["options"]).contains("size=65536k"));
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network", "cgroup"]);
    assert_eq!(
        v["linux"]["namespaces"][4]["path"],
        "/run/ocishim/netns/abc"
    );
    let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(rules[0]["allow"], false);
    assert_eq!(rules[0]["access"], "rwm");
    for (maj, min) in [(1, 3), (1, 5), (1, 8), (1, 9), (5, 0), (5, 1)] {
        assert!(rules.iter().any(|r| r["allow"] == true
            && r["type"] == "c"
            && r["major"] == maj
            && r["minor"] == min
            && r["access"] == "rwm"));
    }
    assert!(v["linux"]["resources"].get("memory").is_none());
    assert!(!v.to_string().contains("youki"));
    assert!(v.get("annotations").is_none());
    assert_eq!(v["root"]["readonly"], false);
}

#[test]
fn options_applied() {
    let c = cfg(|r| {
        r.memory = Some("256m".into());
        r.cpus = Some("0.5".into());
        r.pids_limit = Some("64".into());
        r.cpu_shares = Some("512".into());
        r.cap_drop = vec!["ALL".into()];
        r.cap_add = vec!["net_admin".into()];
        r.read_only = true;
        r.network = Some("host".into());
        r.volume = vec!["/data:/data:ro".into(), "/data/sub:/data/sub/x".into()];
        r.tmpfs = vec!["/dev/shm:size=1m".into()];
        r.ulimit = vec!["nofile=100:200".into()];
        r.security_opt = vec!["no-new-privileges".into()];
        r.workdir = Some("/tmp".into());
        r.env = vec!["A=1".into()];
    });
    let v = gen(&c);
    let res = &v["linux"]["resources"];
    assert_eq!(res["memory"]["limit"], 256i64 << 20);
    assert_eq!(res["memory"]["swap"], 512i64 << 20);
    assert_eq!(res["cpu"]["quota"], 50000);
    assert_eq!(res["cpu"]["period"], 100000);
    assert_eq!(res["cpu"]["shares"], 512);
    assert_eq!(res["pids"]["limit"], 64);
    assert_eq!(
        strs(&v["process"]["capabilities"]["bounding"]),
        ["CAP_NET_ADMIN".to_string()].into()
    );
    assert_eq!(v["root"]["readonly"], true);
    assert_eq!(v["process"]["noNewPrivileges"], true);
    assert_eq!(v["process"]["cwd"], "/tmp");
    assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
    assert_eq!(v["process"]["rlimits"][0]["soft"], 100);
    assert!(strs(&v["process"]["env"]).contains("A=1"));
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(!ns.contains(&"network"));
    assert!(v["linux"].get("sysctl").is_none());
    let mounts = v["mounts"].as_array().unwrap();
    let shm: Vec<_> = mounts
        .iter()
        .filter(|m| m["destination"] == "/dev/shm")
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(shm[0]["type"], "tmpfs");
    assert!(strs(&shm[0]["options"]).contains("size=1m"));
    let data = mounts
        .iter()
        .position(|m| m["destination"] == "/data")
        .unwrap();
    let sub = mounts
        .iter()
        .position(|m| m["destination"] == "/data/sub/x")
        .unwrap();
    assert!(data < sub);
    assert!(strs(&mounts[data]["options"]).contains("ro"));
}

#[test]
fn privileged_and_all_grant_the_callers_bounding_set() {
    // A caller whose bounding set lacks CAP_SYS_RESOURCE (this machine's) and CAP_SYS_MODULE.
    let bounding: Vec<String> = crate::config::all_caps()
        .into_iter()
        .filter(|c| c != "CAP_SYS_RESOURCE" && c != "CAP_SYS_MODULE")
        .collect();
    for c in [
        cfg(|r| r.privileged = true),
        cfg(|r| r.cap_add = vec!["ALL".into()]),
    ] {
        let v = gen_with(&c, |inp| inp.bounding = bounding.clone());
        for set in ["bounding", "effective", "permitted"] {
            let got = strs(&v["process"]["capabilities"][set]);
            let want: HashSet<String> = bounding.iter().cloned().collect();
            assert_eq!(got, want, "{set}");
        }
    }
}

#[test]
fn privileged() {
    let v = gen(&cfg(|r| r.privileged = true));
    assert_eq!(
        v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        crate::config::all_caps().len()
    );
    assert!(v["linux"].get("maskedPaths").is_none());
    assert!(v["linux"].get("readonlyPaths").is_none());
    assert!(v["linux"].get("seccomp").is_none());
    let sys = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert!(
        !sys["options"].as_array().unwrap().iter().any(|o| o == "ro"),
        "{sys}"
    );
    let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["allow"], true);
}

/// Most options at once, for the pinned layouts below.
fn full() -> ContainerConfig {
    cfg(|r| {
        r.memory = Some("256m".into());
        r.memory_reservation = Some("64m".into());
        r.cpus = Some("1.5".into());
        r.cpu_shares = Some("512".into());
        r.cpuset_cpus = Some("0-1".into());
        r.pids_limit = Some("64".into());
        r.ulimit = vec!["nofile=100:200".into(), "core=-1".into()];
        r.volume = vec![
            "/data/sub:/data/sub/x:rshared".into(),
            "/data:/data:ro".into(),
            "/h:/dev/shm".into(),
        ];
        r.tmpfs = vec!["/run:exec,size=64m".into(), "/tmp".into()];
        r.read_only = true;
        r.workdir = Some("/tmp".into());
        r.entrypoint = Some("/bin/ep".into());
        r.env = vec!["A=1".into(), "PATH=/x".into()];
        r.oom_score_adj = Some("-500".into());
        r.security_opt = vec!["no-new-privileges".into()];
        r.cap_drop = vec!["ALL".into()];
        r.cap_add = vec!["net_raw".into(), "chown".into()];
    })
}

fn devices() -> Vec<ResolvedDevice> {
    vec![
        ResolvedDevice {
            path: "/dev/fuse".into(),
            typ: 'c',
            major: 10,
            minor: 229,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
            permissions: "rwm".into(),
        },
        ResolvedDevice {
            path: "/dev/sdx".into(),
            typ: 'b',
            major: 8,
            minor: 16,
            file_mode: 0o660,
            uid: 0,
            gid: 6,
            permissions: "r".into(),
        },
    ]
}

fn mount_lines(v: &serde_json::Value) -> Vec<String> {
    v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let opts: Vec<&str> = m["options"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_str().unwrap())
                .collect();
            format!(
                "{} {} {} {}",
                m["destination"].as_str().unwrap(),
                m["type"].as_str().unwrap(),
                m["source"].as_str().unwrap(),
                opts.join(",")
            )
        })
        .collect()
}

#[test]
fn mounts_in_order() {
    let defaults = [
        "/proc proc proc nosuid,noexec,nodev",
        "/dev tmpfs tmpfs nosuid,strictatime,mode=755,size=65536k",
        "/dev/pts devpts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
        "/sys sysfs sysfs nosuid,noexec,nodev,ro",
        "/sys/fs/cgroup cgroup cgroup nosuid,noexec,nodev,relatime,ro",
        "/dev/mqueue mqueue mqueue nosuid,noexec,nodev",
        "/dev/shm tmpfs shm nosuid,noexec,nodev,mode=1777,size=65536k",
    ];
    let etc = [
        "/etc/resolv.conf bind /x/resolv.conf rbind,rprivate",
        "/etc/hostname bind /x/hostname rbind,rprivate",
        "/etc/hosts bind /x/hosts rbind,rprivate",
    ];
    let v = gen_with(&cfg(|_| {}), |inp| inp.etc = None);
    assert_eq!(mount_lines(&v), defaults);
    let v = gen(&cfg(|_| {}));
    assert_eq!(mount_lines(&v), [&defaults[..], &etc[..]].concat());
    let v = gen(&cfg(|r| r.privileged = true));
    let lines = mount_lines(&v);
    assert_eq!(lines[3], "/sys sysfs sysfs nosuid,noexec,nodev,rw");
    assert_eq!(
        lines[4],
        "/sys/fs/cgroup cgroup cgroup nosuid,noexec,nodev,relatime,rw"
    );

    // A user mount replaces the default on its destination (/dev/shm); user mounts come
    // last, binds then tmpfs, sorted by depth.
    let v = gen(&full());
    let want = [
        &defaults[..6],
        &etc[..],
        &[
            "/data bind /data rbind,rprivate,ro",
            "/run tmpfs tmpfs nosuid,nodev,exec,size=64m",
            "/tmp tmpfs tmpfs noexec,nosuid,nodev",
            "/dev/shm bind /h rbind,rprivate",
            "/data/sub/x bind /data/sub rbind,rshared",
        ][..],
    ]
    .concat();
    assert_eq!(mount_lines(&v), want);
}

#[test]
fn process_fields() {
    let v = gen_with(&full(), |inp| {
        inp.user = ResolvedUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10, 29],
        }
    });
    let caps = serde_json::json!(["CAP_CHOWN", "CAP_NET_RAW"]);
    assert_eq!(
        v["process"],
        serde_json::json!({
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 29]},
            "args": ["/bin/ep", "sh", "-c", "true"],
            "env": ["PATH=/x", "HOSTNAME=0123456789ab", "A=1"],
            "cwd": "/tmp",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "inheritable": [],
                "ambient": [],
            },
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100},
                {"type": "RLIMIT_CORE", "hard": u64::MAX, "soft": u64::MAX},
            ],
            "noNewPrivileges": true,
            "oomScoreAdj": -500,
        })
    );
    assert_eq!(
        v["root"],
        serde_json::json!({"path": "/tmp/rootfs", "readonly": true})
    );

    let v = gen(&cfg(|_| {}));
    assert_eq!(
        v["process"]["user"],
        serde_json::json!({"uid": 0, "gid": 0})
    );
    assert_eq!(v["process"]["cwd"], "/");
    assert_eq!(v["process"]["oomScoreAdj"], 0);
    let v = gen(&cfg(|r| r.privileged = true));
    let mut all = crate::config::all_caps();
    all.sort();
    assert_eq!(
        v["process"]["capabilities"]["bounding"],
        serde_json::json!(all)
    );
}

#[test]
fn resources_and_devices() {
    let v = gen_with(&full(), |inp| inp.devices = devices());
    let defaults = serde_json::json!([
        {"allow": false, "type": "a", "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
    ]);
    let mut rules = defaults.as_array().unwrap().clone();
    rules.push(serde_json::json!(
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
    ));
    rules.push(serde_json::json!(
        {"allow": true, "type": "b", "major": 8, "minor": 16, "access": "r"}
    ));
    assert_eq!(
        v["linux"]["resources"],
        serde_json::json!({
            "devices": rules,
            "memory": {"limit": 256 << 20, "reservation": 64 << 20, "swap": 512 << 20},
            "cpu": {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0-1"},
            "pids": {"limit": 64},
        })
    );
    let devs = serde_json::json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666,
         "uid": 0, "gid": 0},
        {"path": "/dev/sdx", "type": "b", "major": 8, "minor": 16, "fileMode": 0o660,
         "uid": 0, "gid": 6},
    ]);
    assert_eq!(v["linux"]["devices"], devs);

    let v = gen(&cfg(|_| {}));
    assert_eq!(
        v["linux"]["resources"],
        serde_json::json!({"devices": defaults})
    );
    assert!(v["linux"].get("devices").is_none());

    // --privileged: every device allowed, the device nodes still created.
    let v = gen_with(&cfg(|r| r.privileged = true), |inp| inp.devices = devices());
    assert_eq!(
        v["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": true, "type": "a", "access": "rwm"}])
    );
    assert_eq!(v["linux"]["devices"], devs);

    // Unlimited values: pids 0 is -1; memory-swap -1 alone.
    let v = gen(&cfg(|r| {
        r.pids_limit = Some("0".into());
        r.memory_swap = Some("-1".into());
    }));
    assert_eq!(
        v["linux"]["resources"]["pids"],
        serde_json::json!({"limit": -1})
    );
    assert_eq!(
        v["linux"]["resources"]["memory"],
        serde_json::json!({"swap": -1})
    );
}

#[test]
fn linux_by_network() {
    let netns = "/run/ocishim/netns/abc";
    let sysctl = serde_json::json!({
        "net.ipv4.ip_unprivileged_port_start": "0",
        "net.ipv4.ping_group_range": "0 2147483647",
    });
    // --network, whether a namespace is joined, cgroup namespaces, the namespaces, sysctls.
    #[rustfmt::skip]
    let cases = [
        (None, true, true, "pid ipc uts mount network cgroup", Some(&sysctl)),
        (Some("mynet"), true, false, "pid ipc uts mount network", Some(&sysctl)),
        (Some("none"), false, true, "pid ipc uts mount network cgroup", Some(&sysctl)),
        (Some("host"), false, true, "pid ipc uts mount cgroup", None),
        (Some("container:abc"), true, true, "pid ipc uts mount network cgroup", None),
    ];
    for (network, joined, cgroup_ns, want_ns, want_sysctl) in cases {
        let c = cfg(|r| r.network = network.map(Into::into));
        let v = gen_with(&c, |inp| {
            inp.cgroup_ns = cgroup_ns;
            inp.netns = joined.then(|| netns.into());
        });
        let ns: Vec<String> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| match n.get("path") {
                Some(p) => format!("{}={}", n["type"].as_str().unwrap(), p.as_str().unwrap()),
                None => n["type"].as_str().unwrap().to_string(),
            })
            .collect();
        let want: Vec<String> = want_ns
            .split(' ')
            .map(|t| match (t, joined) {
                ("network", true) => format!("network={netns}"),
                _ => t.to_string(),
            })
            .collect();
        assert_eq!(ns, want, "{network:?}");
        assert_eq!(v["linux"].get("sysctl"), want_sysctl, "{network:?}");
        assert_eq!(v["linux"]["cgroupsPath"], "/ocishim/abc");
    }
}

#[test]
fn userns_auto_maps_the_range() {
    let c = cfg(|r| r.userns = Some("auto".into()));
    let v = gen_with(&c, |inp| inp.userns_base = Some(165536));
    let want = serde_json::json!([{"containerID": 0, "hostID": 165536, "size": 65536}]);
    assert_eq!(v["linux"]["uidMappings"], want);
    assert_eq!(v["linux"]["gidMappings"], want);
    assert_eq!(v["linux"]["namespaces"][0]["type"], "user");
    // Without a range: the host's user namespace, no mappings.
    let v = gen(&c);
    assert!(v["linux"].get("uidMappings").is_none());
    assert!(!v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
}
