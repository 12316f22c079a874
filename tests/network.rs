//! Networking against the real kernel: per-container namespaces on a bridge this test
//! made, addresses from the IPAM, named networks, modes, DNS files, teardown. Traffic goes
//! only between this host and namespaces on bridges the tests created.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{stderr, stdout, Bounded, Env};

/// A shell command that GETs /hostname from ip:8080 with busybox nc (busybox-static's
/// wget crashes in static glibc's resolver) and prints the body.
fn fetch_hostname(host: &str) -> String {
    format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 8080 | tail -n 1")
}

/// `sh -c script` attached in a container on `net`, removed afterwards.
fn sh_on(env: &Env, net: &str, script: &str) -> std::process::Output {
    let r = env.rootfs();
    env.ocishim(&[
        "run",
        "--rm",
        "--network",
        net,
        "--rootfs",
        &r,
        "sh",
        "-c",
        script,
    ])
}

/// busybox httpd on `net`, serving /etc on 8080: (ID, IP).
fn httpd_on(env: &Env, net: &str) -> (String, String) {
    let id = env.run_d(
        &["--network", net],
        &["httpd", "-f", "-p", "8080", "-h", "/etc"],
    );
    let ip = endpoint(env, &id, net)["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    (id, ip)
}

fn endpoint(env: &Env, id: &str, net: &str) -> serde_json::Value {
    env.inspect(id)["NetworkSettings"]["Networks"][net].clone()
}

/// GET `path` from ip:8080, retrying the connect for up to 2 s as OpenWhisk does.
fn http_get(ip: &str, path: &str) -> String {
    let addr: SocketAddr = format!("{ip}:8080").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut s = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no answer from {addr}: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn httpd_answers_at_the_reported_ip_right_after_run() {
    let env = Env::new();
    let id = env.run_d(&[], &["httpd", "-f", "-p", "8080", "-h", "/etc"]);
    let ep = endpoint(&env, &id, "bridge");
    let ip = ep["IPAddress"].as_str().unwrap().to_string();
    let subnet: ipnetwork::Ipv4Network = env.subnet.parse().unwrap();
    assert!(subnet.contains(ip.parse().unwrap()), "{ip} in {subnet}");
    assert_eq!(ep["Gateway"], subnet.nth(1).unwrap().to_string());
    assert_eq!(ep["IPPrefixLen"], 24);
    assert!(ep["MacAddress"].as_str().unwrap().starts_with("02:42:"));
    let body = http_get(&ip, "/hostname");
    assert!(body.starts_with("HTTP/1."), "{body}");
    assert!(body.ends_with(&format!("{}\n", &id[..12])), "{body}");
    // /etc/hosts names the container at its address
    let hosts = std::fs::read_to_string(env.inspect(&id)["HostsPath"].as_str().unwrap()).unwrap();
    assert!(hosts.contains(&format!("{ip}\t{}\n", &id[..12])), "{hosts}");
    // IPv4 only: eth0 came up without an IPv6 address (a link-local one would send DAD,
    // router solicitations and MLD reports, flooded by the bridge to every container);
    // lo keeps ::1.
    let pid = env.inspect(&id)["State"]["Pid"].to_string();
    let o = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-n", "ip", "-6", "-o", "addr", "show"])
        .output()
        .expect("nsenter");
    let v6 = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(v6.contains("::1/128"), "{v6}");
    assert!(!v6.contains("eth0"), "{v6}");
    // Nor has the host end: IPv6 is off on it (no address, no route of its own).
    let host_if = format!("osv{}", &id[..11]);
    let off = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{host_if}/disable_ipv6"))
        .expect("the host end's disable_ipv6");
    assert_eq!(off.trim(), "1", "{host_if}");
    let o = std::process::Command::new("ip")
        .args(["-6", "-o", "addr", "show", "dev", &host_if])
        .output()
        .expect("ip");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "", "{host_if} has IPv6 addresses");
    // The bridge has a MAC of its own (docker's 02:42 and the gateway's bytes), not the
    // lowest of its ports'.
    let gw: std::net::Ipv4Addr = ep["Gateway"].as_str().unwrap().parse().unwrap();
    let mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", env.bridge)).unwrap();
    let o = gw.octets();
    assert_eq!(
        mac.trim(),
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[]);
}

#[test]
fn same_network_reaches_other_networks_do_not() {
    let env = Env::new();
    let r = env.rootfs();
    let a = env.run_d(
        &["--name", "srv"],
        &["httpd", "-f", "-p", "8080", "-h", "/etc"],
    );
    let ip = endpoint(&env, &a, "bridge")["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--rootfs",
        &r,
        "sh",
        "-c",
        &fetch_hostname(&ip),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\n", &a[..12]));

    // Isolation holds whether or not the host forwards (another test here turns NAT on).
    let n1 = format!("n1-{}", &env.bridge[4..]);
    let n2 = format!("n2-{}", &env.bridge[4..]);
    env.ok(&["network", "create", &n1]);
    env.ok(&["network", "create", &n2]);
    let (c, cip) = httpd_on(&env, &n1);
    let same = sh_on(&env, &n1, &fetch_hostname(&cip));
    assert_eq!(
        stdout(&same),
        format!("{}\n", &c[..12]),
        "{}",
        stderr(&same)
    );
    let other = sh_on(&env, &n2, &fetch_hostname(&cip));
    assert_eq!(
        stdout(&other),
        "",
        "a container on another network reached {cip}"
    );
    // inspect lists the container; rm is refused while it is attached
    let insp: serde_json::Value =
        serde_json::from_str(&env.ok(&["network", "inspect", &n1])).unwrap();
    assert!(insp[0]["Containers"][&c].is_object(), "{insp}");
    assert!(env.ok(&["network", "ls"]).contains(&n1));
    let o = env.ocishim(&["network", "rm", &n1]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("in use"));
    env.ok(&["rm", "-f", &a, &c]);
    let bridge1 = insp[0]["Bridge"].as_str().unwrap().to_string();
    assert!(ocishim::network::firewall::has_bridge(&bridge1));
    env.ok(&["network", "rm", &n1, &n2]);
    assert!(
        !ocishim::network::bridge::link_exists(&bridge1).unwrap(),
        "network rm deletes its bridge"
    );
    assert!(
        !ocishim::network::firewall::has_bridge(&bridge1),
        "network rm deletes its forwarding rules"
    );
    env.assert_gone(&a, &[]);
    env.assert_gone(&c, &[]);
}

#[test]
fn none_host_and_container_modes() {
    let env = Env::new();
    let r = env.rootfs();
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--rootfs",
        &r,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(stdout(&o), "lo\n", "{}", stderr(&o));
    // host: the host's interfaces, among them this test's bridge (made by a first container)
    let keep = env.run_d(&[], &["httpd", "-f", "-p", "8080", "-h", "/etc"]);
    // (checked by name: other tests add and remove veths on the host meanwhile)
    let probe = format!("test -e /sys/class/net/{} && echo host-ns", env.bridge);
    let o = sh_on(&env, "host", &probe);
    assert_eq!(stdout(&o), "host-ns\n", "{:?}: {}", o.status, stderr(&o));
    // container:<id>: the same namespace, the same address and MAC
    let ep = endpoint(&env, &keep, "bridge");
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--network",
        &format!("container:{}", &keep[..12]),
        "--rootfs",
        &r,
        "sh",
        "-c",
        &format!(
            "cat /sys/class/net/eth0/address; {}",
            fetch_hostname("127.0.0.1")
        ),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{}\n{}\n", ep["MacAddress"].as_str().unwrap(), &keep[..12])
    );
    env.ok(&["rm", "-f", &keep]);
    env.assert_gone(&keep, &[]);
    let o = env.ocishim(&[
        "run",
        "-d",
        "--network",
        &format!("container:{keep}"),
        "--rootfs",
        &r,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "joining a missing container");
    env.assert_empty();
}

#[test]
fn fifty_parallel_runs_get_fifty_addresses() {
    let env = Env::new();
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..5)
            .map(|_| {
                let env = &env;
                s.spawn(move || {
                    (0..10)
                        .map(|_| env.run_d(&[], &["sleep", "1000"]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let ips: HashSet<String> = ids
        .iter()
        .map(|id| {
            endpoint(&env, id, "bridge")["IPAddress"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ips.len(), 50);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    env.ok(&args);
    for id in &ids {
        env.assert_gone(id, &[]);
    }
    let left = env.addresses("bridge");
    assert!(left.is_empty(), "allocations left: {left:?}");
    env.assert_empty();
}

#[test]
fn dns_and_hosts_files_follow_the_options() {
    let env = Env::new();
    let r = env.rootfs();
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--hostname",
        "web",
        "--dns",
        "10.1.2.3",
        "--dns",
        "10.1.2.4",
        "--dns-search",
        "svc.example",
        "--dns-opt",
        "ndots:3",
        "--add-host",
        "db:10.9.9.9",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ---; cat /etc/hosts",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let (resolv, hosts) = out.split_once("---\n").unwrap();
    assert!(
        resolv.contains(
            "search svc.example\nnameserver 10.1.2.3\nnameserver 10.1.2.4\noptions ndots:3\n"
        ),
        "{resolv}"
    );
    assert!(
        !resolv.lines().any(|l| l.starts_with("nameserver 127.")),
        "{resolv}"
    );
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("10.9.9.9\tdb\n"), "{hosts}");
    assert!(hosts.lines().last().unwrap().ends_with("\tweb"), "{hosts}");
    env.assert_empty();
}

/// Wait (bounded) until host link `name` is gone: a namespace nothing holds any more is
/// destroyed by the kernel shortly after, with the veths in it.
fn wait_link_gone(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while ocishim::network::bridge::link_exists(name).unwrap() {
        assert!(Instant::now() < deadline, "{name} still exists after 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bridge_namespace_is_no_host_mount_and_is_made_again_on_restart() {
    let env = Env::new();
    let id = env.run_d(&[], &["httpd", "-f", "-p", "8080", "-h", "/etc"]);
    // Nothing in the host's mount table: the runtime reads it on every create and start,
    // so a mount per container would make each start slower than the last.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "a mount names {id}: {mounts}");
    assert!(
        !mounts.contains(&env.root.display().to_string()),
        "a mount under --root: {mounts}"
    );
    let v = env.inspect(&id);
    let pid = v["State"]["Pid"].as_i64().unwrap();
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(ns, std::fs::read_link("/proc/self/ns/net").unwrap());
    let ip = endpoint(&env, &id, "bridge")["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(http_get(&ip, "/hostname").ends_with(&format!("{}\n", &id[..12])));
    // The container ends: its namespace and veth go with it; the address stays its own.
    env.ok(&["kill", "-s", "KILL", &id]);
    env.wait_exited(&id, Duration::from_secs(20));
    let veth = ocishim::network::host_if(&id);
    wait_link_gone(&veth);
    // docker start: a new namespace and veth, the same address, answering there.
    env.ok(&["start", &id]);
    assert!(ocishim::network::bridge::link_exists(&veth).unwrap());
    let again = endpoint(&env, &id, "bridge");
    assert_eq!(again["IPAddress"], ip.as_str(), "{again}");
    let pid2 = env.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    assert_ne!(pid, pid2);
    assert!(http_get(&ip, "/hostname").ends_with(&format!("{}\n", &id[..12])));
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[]);
}

#[test]
fn prune_removes_what_a_lost_record_left() {
    let env = Env::new();
    let id = env.run_d(&[], &["sleep", "1000"]);
    let v = env.inspect(&id);
    let mpid = v["Ocishim"]["MonitorPid"].as_i64().unwrap() as i32;
    // Lose the record as a crash would: the monitor dies, the container is killed through
    // the runtime, the record directory disappears. The address remains; the namespace,
    // which only the container's processes held, goes with them, and its veth with it.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mpid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let rt = std::process::Command::new(&env.runtime)
        .arg("--root")
        .arg(&env.runtime_root)
        .args(["delete", "-f", &id])
        .bounded();
    assert!(
        rt.status.success(),
        "{}",
        String::from_utf8_lossy(&rt.stderr)
    );
    std::fs::remove_dir_all(env.data_root.join("containers").join(&id)).unwrap();
    std::fs::remove_dir_all(env.root.join("containers").join(&id)).unwrap();
    let veth = ocishim::network::host_if(&id);
    wait_link_gone(&veth);
    // Another installation's container (its own root and bridge) is not touched.
    let other = Env::new();
    let keep = other.run_d(&[], &["sleep", "1000"]);
    let keep_veth = ocishim::network::host_if(&keep);
    // Rules of a bridge that is gone (deleted by hand, say) are pruned too.
    let gone = format!("osbg{}", &ocishim::store::new_id()[..8]);
    ocishim::network::firewall::add_bridge(&gone, "10.216.0.0/24".parse().unwrap(), false).unwrap();
    let out = env.ok(&["network", "prune"]);
    assert!(out.contains(&format!("of {id} on bridge")), "{out}");
    assert!(
        out.contains(&format!("forwarding rules of {gone}")),
        "{out}"
    );
    assert!(!ocishim::network::firewall::has_bridge(&gone));
    assert!(
        ocishim::network::bridge::link_exists(&keep_veth).unwrap(),
        "{out}"
    );
    assert!(!out.contains(&keep_veth), "{out}");
    other.ok(&["rm", "-f", &keep]);
    env.assert_gone(&id, &[]);
    // the cgroup the lost container had is not the network's business; clean it here
    for d in env.cgroup_dirs(&id) {
        let _ = std::fs::remove_dir(d);
    }
}

#[test]
fn a_full_subnet_is_125_and_leaves_nothing() {
    let env = Env::new();
    let r = env.rootfs();
    // A /30 has two host addresses: the gateway and one container.
    let net = format!("full-{}", &env.bridge[4..]);
    let (_, other) = common::free_bridge("full");
    let base: ipnetwork::Ipv4Network = other.parse().unwrap();
    let small = format!("{}/30", base.network());
    env.ok(&["network", "create", "--subnet", &small, &net]);
    let a = env.run_d(&["--network", &net], &["sleep", "1000"]);
    let o = env.ocishim(&[
        "run",
        "-d",
        "--network",
        &net,
        "--rootfs",
        &r,
        "sleep",
        "1000",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no free address"), "{err}");
    assert!(stdout(&o).is_empty());
    assert_eq!(
        env.ok(&["ps", "-aq"]).lines().count(),
        1,
        "only the first container exists"
    );
    let held = env.addresses(&net);
    assert_eq!(
        held.iter().map(|(_, o)| o.as_str()).collect::<Vec<_>>(),
        [a.as_str()],
        "only the first address: {held:?}"
    );
    env.ok(&["rm", "-f", &a]);
    env.ok(&["network", "rm", &net]);
    env.assert_gone(&a, &[]);
    env.assert_empty();
}

/// veth pairs this test put on a bridge, their peers in a namespace held by a process of
/// its own, named by PID (iproute2 6.1 leaks an fd per `netns NAME` in batch mode: the
/// cgroup v2 guest, with 1,024 fds a process, ran out at 1,019).
/// Killing the holder deletes them all in one batch of the kernel's (one by one, each
/// deletion waits for an RCU grace period).
struct Fillers {
    holder: std::process::Child,
    links: Vec<String>,
}

impl Fillers {
    fn new(tag: &str, n: usize) -> Fillers {
        let holder = std::process::Command::new("unshare")
            .args(["--net", "--", "sleep", "600"])
            .spawn()
            .expect("unshare (util-linux)");
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let fillers = Fillers {
            links: (0..n).map(|i| format!("osf{tag}{i:04}")).collect(),
            holder,
        };
        // Until the holder is in its namespace (bounded).
        let ns = format!("/proc/{}/ns/net", fillers.holder.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(&ns).map_or(true, |l| l == ours) {
            assert!(
                Instant::now() < deadline,
                "unshare --net never got its namespace"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        fillers
    }
}

impl Drop for Fillers {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// `ip -force -batch -` of `batch`, bounded as every command of the tests.
fn ip_batch(batch: &str) -> std::process::Output {
    let mut ip = std::process::Command::new("ip");
    ip.args(["-force", "-batch", "-"]);
    common::run_bounded(&mut ip, true, Some(batch.as_bytes()), common::COMMAND_BOUND)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The links on `bridge`.
fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// A Linux bridge takes at most 1023 links: one more is a clear 125 (not the kernel's
/// bare EXFULL), and the container's address, namespace, veth and record are undone.
#[test]
fn a_bridge_with_no_free_port_is_125_and_leaves_nothing() {
    let env = Env::new();
    let r = env.rootfs();
    let a = env.run_d(&[], &["sleep", "1000"]);
    // The bridge has one port (a's); veth pairs whose peers are in the holder's
    // namespace (no container) fill it.
    let tag = &ocishim::store::new_id()[..6];
    let fill = ocishim::network::bridge::MAX_PORTS - 1;
    let fillers = Fillers::new(tag, fill);
    let mut batch = String::new();
    for (i, l) in fillers.links.iter().enumerate() {
        batch += &format!(
            "link add {l} type veth peer name p{i} netns {}\nlink set {l} master {}\n",
            fillers.holder.id(),
            env.bridge
        );
    }
    let made = ip_batch(&batch);
    assert!(made.status.success(), "{}", stderr(&made));
    assert_eq!(
        bridge_ports(&env.bridge).len(),
        ocishim::network::bridge::MAX_PORTS
    );
    let o = env.ocishim(&["run", "-d", "--rootfs", &r, "sleep", "1000"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("bridge {} has no free port", env.bridge)),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
    assert_eq!(
        env.ok(&["ps", "-aq", "--no-trunc"]).trim(),
        a,
        "only the first container exists"
    );
    let held = env.addresses("bridge");
    assert_eq!(
        held.iter().map(|(_, o)| o.as_str()).collect::<Vec<_>>(),
        [a.as_str()],
        "only the first address: {held:?}"
    );
    let veths: Vec<String> = bridge_ports(&env.bridge)
        .into_iter()
        .filter(|n| n.starts_with("osv"))
        .collect();
    assert_eq!(veths, [ocishim::network::host_if(&a)], "only a's veth");
    let netns: Vec<_> = std::fs::read_dir(env.root.join("netns"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(netns.is_empty(), "namespace files left: {netns:?}");
    // A port freed: the next container gets it.
    let freed = ip_batch(&format!("link del {}\n", fillers.links[0]));
    assert!(freed.status.success(), "{}", stderr(&freed));
    let b = env.run_d(&[], &["sleep", "1000"]);
    drop(fillers);
    env.ok(&["rm", "-f", &a, &b]);
    env.assert_gone(&a, &[]);
    env.assert_gone(&b, &[]);
    env.assert_empty();
}

/// A host "outside" every ocishim network, made by this test: a namespace with a veth to
/// the host on a free /24 and no route back to any container subnet, so only masqueraded
/// packets can be answered. Removed on drop.
struct Outside {
    ns: String,
    host_if: String,
    host_ip: String,
    ip: String,
}

impl Outside {
    fn new() -> Outside {
        let tag = &ocishim::store::new_id()[..8];
        let ns = format!("ocishim-test-out-{tag}");
        let host_if = format!("osxt{tag}");
        let mut pick = None;
        for x in 0..=255u8 {
            let net: ipnetwork::Ipv4Network = format!("10.215.{x}.0/24").parse().unwrap();
            if let Ok(None) = ocishim::network::bridge::route_collision(net, &host_if) {
                pick = Some(x);
                break;
            }
        }
        let x = pick.expect("a free 10.215.x.0/24");
        let o = Outside {
            ns,
            host_if,
            host_ip: format!("10.215.{x}.1"),
            ip: format!("10.215.{x}.2"),
        };
        let ip = |args: &[&str]| {
            let st = std::process::Command::new("ip").args(args).bounded_status();
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &o.ns]);
        ip(&[
            "link", "add", &o.host_if, "type", "veth", "peer", "name", "eth0", "netns", &o.ns,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", o.host_ip),
            "dev",
            &o.host_if,
        ]);
        ip(&["link", "set", &o.host_if, "up"]);
        ip(&[
            "-n",
            &o.ns,
            "addr",
            "add",
            &format!("{}/24", o.ip),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &o.ns, "link", "set", "eth0", "up"]);
        o
    }

    /// Accept TCP connections on port 9000 inside the namespace for `secs`, answering
    /// "hi" and collecting the peers' addresses.
    fn listen(&self, secs: u64) -> std::thread::JoinHandle<Vec<String>> {
        let path = format!("/run/netns/{}", self.ns);
        let ready = std::sync::Arc::new(std::sync::Barrier::new(2));
        let r2 = ready.clone();
        let h = std::thread::spawn(move || {
            let f = std::fs::File::open(&path).unwrap();
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let l = std::net::TcpListener::bind("0.0.0.0:9000").unwrap();
            l.set_nonblocking(true).unwrap();
            r2.wait();
            let mut peers = Vec::new();
            let end = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < end {
                match l.accept() {
                    Ok((mut c, a)) => {
                        let _ = c.write_all(b"hi\n");
                        peers.push(a.ip().to_string());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            peers
        });
        ready.wait();
        h
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .bounded_status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .bounded_status();
    }
}

#[test]
fn nat_is_opt_in_and_networks_stay_isolated_while_forwarding() {
    let env = Env::new();
    let out = Outside::new();
    let nat = format!("nat-{}", &env.bridge[4..]);
    let iso = format!("iso-{}", &env.bridge[4..]);
    env.ok(&["--enable-nat", "network", "create", &nat]);
    env.ok(&["network", "create", &iso]);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1",
        "a NAT network switches IPv4 forwarding on"
    );
    let insp: serde_json::Value =
        serde_json::from_str(&env.ok(&["network", "inspect", &nat, &iso])).unwrap();
    assert_eq!(
        insp[0]["Options"]["com.docker.network.bridge.enable_ip_masquerade"],
        "true"
    );
    assert_eq!(
        insp[1]["Options"]["com.docker.network.bridge.enable_ip_masquerade"],
        "false"
    );
    let talk = format!("sleep 3 | nc -w 2 {} 9000", out.ip);
    let listener = out.listen(12);
    // From the NAT network: reaches the outside host, masqueraded to the host's address.
    let o = sh_on(&env, &nat, &talk);
    assert_eq!(
        stdout(&o),
        "hi\n",
        "NAT network did not reach {}: {}",
        out.ip,
        stderr(&o)
    );
    // From the network without NAT, and from the default one: nothing gets out.
    for net in [iso.as_str(), "bridge"] {
        let o = sh_on(&env, net, &talk);
        assert_eq!(stdout(&o), "", "{net} reached the outside without NAT");
    }
    // NAT does not open the way to another ocishim network.
    let (srv, sip) = httpd_on(&env, &iso);
    let o = sh_on(&env, &nat, &fetch_hostname(&sip));
    assert_eq!(stdout(&o), "", "the NAT network reached {sip} on {iso}");
    assert!(
        http_get(&sip, "/hostname").ends_with(&format!("{}\n", &srv[..12])),
        "the host still reaches it"
    );
    let peers = listener.join().unwrap();
    assert_eq!(
        peers,
        vec![out.host_ip.clone()],
        "exactly one masqueraded connection"
    );
    env.ok(&["rm", "-f", &srv]);
    let nat_bridge = insp[0]["Bridge"].as_str().unwrap().to_string();
    env.ok(&["network", "rm", &nat, &iso]);
    assert!(!ocishim::network::firewall::has_bridge(&nat_bridge));
    env.assert_gone(&srv, &[]);
}
