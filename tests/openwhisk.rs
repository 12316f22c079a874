//! An Apache OpenWhisk invoker replayed end to end: exactly the argv its DockerClient and
//! RuncClient run, through a symlink named `docker` pointing at the ocishim binary, with
//! ocishim's settings in `OCISHIM_*` variables (no `OCISHIM_RUNTIME_ROOT`: the runtime's
//! default root, so the plain `runc pause ID` the invoker runs finds the container). The
//! action image comes from scripts/build-action-image (busybox-static, OpenWhisk's action
//! protocol on :8080); the invoker's HTTP client is a small HTTP/1.1 client over TcpStream,
//! talking only to the container's address on the test's bridge. Also with crun as
//! ocishim's runtime (OCISHIM_TEST_RUNTIME=crun; then `crun pause ID`).

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{stderr, stdout, Bounded, Env, BIN};
use registry::{output_within, Registry};
use serde_json::{json, Value};

const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";
/// The invoker's timeouts: run 1 min, pull 10 min (a loopback pull takes seconds), the
/// rest at most 1 min.
const LIMIT: Duration = Duration::from_secs(60);

/// The action image built by scripts/build-action-image with these arguments, once per
/// change of the scripts or the arguments (`fixtures/images/`).
fn action_image(name: &str, args: &[&str]) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("fixtures/images");
    std::fs::create_dir_all(&dir).unwrap();
    let script = manifest.join("scripts/build-action-image");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let scripts = (
        std::fs::read(&script).unwrap(),
        std::fs::read(manifest.join("scripts/build-image")).unwrap(),
    );
    std::hash::Hash::hash(&(scripts, args), &mut h);
    let out = dir.join(format!("{:016x}-{name}", std::hash::Hasher::finish(&h)));
    if !out.exists() {
        let st = Command::new(&script).args(args).arg(&out).bounded_status();
        assert!(st.success(), "scripts/build-action-image {args:?} failed");
    }
    out
}

/// A random tag for names: `wsk<tag>_` is this test's invoker prefix.
fn tag() -> String {
    ocishim::store::new_id()[..8].to_string()
}

/// The invoker's host: an ocishim installation (Env) and a directory holding the `docker`
/// symlink.
struct Invoker {
    env: Env,
    bin: tempfile::TempDir,
    docker: PathBuf,
    runtime: String,
}

impl Invoker {
    fn new() -> Invoker {
        let env = Env::new();
        let runtime = env.runtime.clone();
        let bin = tempfile::Builder::new()
            .prefix("ocishim-openwhisk-bin-")
            .tempdir()
            .unwrap();
        let docker = bin.path().join("docker");
        std::os::unix::fs::symlink(BIN, &docker).unwrap();
        std::fs::write(bin.path().join("settings.json"), "{}\n").unwrap();
        Invoker {
            env,
            bin,
            docker,
            runtime,
        }
    }

    /// `docker ARGS...` as the invoker runs it: argv straight to the binary, ocishim's
    /// settings from the environment, the runtime's default root.
    fn cmd(&self, args: &[&str]) -> Command {
        let e = &self.env;
        let mut c = Command::new(&self.docker);
        c.args(args)
            .env("OCISHIM_ROOT", &e.root)
            .env("OCISHIM_DATA_ROOT", &e.data_root)
            .env("OCISHIM_RUNTIME", &e.runtime)
            .env_remove("OCISHIM_RUNTIME_ROOT")
            .env("OCISHIM_BRIDGE", &e.bridge)
            .env("OCISHIM_BRIDGE_SUBNET", &e.subnet)
            .env("OCISHIM_CGROUP_PARENT", &e.cgroup_parent)
            .env("OCISHIM_CONFIG", self.bin.path().join("settings.json"))
            .env("DOCKER_CONFIG", self.bin.path())
            .stdin(Stdio::null());
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        output_within(&mut self.cmd(args), None, LIMIT)
    }

    /// `docker ARGS...` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}): {}",
            o.status,
            stderr(&o)
        );
        stdout(&o)
    }

    /// `/usr/bin/runc pause ID` as the invoker's RuncClient runs it: no flag at all (crun
    /// the same way when it is ocishim's runtime).
    fn runc(&self, verb: &str, id: &str) -> Output {
        let mut c = Command::new(&self.runtime);
        c.args([verb, id]).stdin(Stdio::null());
        output_within(&mut c, None, Duration::from_secs(10))
    }

    /// The runtime's default state directory (/run/runc, /run/crun).
    fn runtime_state_dir(&self, id: &str) -> PathBuf {
        Path::new("/run").join(&self.runtime).join(id)
    }

    /// The invoker's `docker run -d` of an action container.
    fn run_args<'a>(&self, name: &'a str, image: &'a str) -> Vec<&'a str> {
        vec![
            "run",
            "-d",
            "--cpu-shares",
            "128",
            "--memory",
            "256m",
            "--memory-swap",
            "256m",
            "--network",
            "bridge",
            "-e",
            "__OW_API_HOST=https://192.0.2.1",
            "-e",
            "__OW_ALLOW_CONCURRENT=false",
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "ow.example",
            "--dns-option",
            "ndots:2",
            "--name",
            name,
            "--cpus",
            "0.25",
            "--cap-drop",
            "NET_RAW",
            "--cap-drop",
            "NET_ADMIN",
            "--ulimit",
            "nofile=1024:1024",
            "--pids-limit",
            "1024",
            "--log-driver",
            "json-file",
            image,
        ]
    }

    /// `docker run -d ...`: stdout is exactly the 64-hex ID and a newline; returns the ID.
    fn run(&self, name: &str, image: &str) -> String {
        let o = self.docker(&self.run_args(name, image));
        assert!(
            o.status.success(),
            "docker run -d {image} failed ({}): {}",
            o.status,
            stderr(&o)
        );
        let out = stdout(&o);
        assert_full_id_line(&out);
        out.trim_end().to_string()
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.env.data_root.join("containers").join(id)
    }

    /// config.v2.json as the invoker reads it (one read, no retry).
    fn config_v2(&self, id: &str) -> Value {
        let p = self.container_dir(id).join("config.v2.json");
        let text = std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        serde_json::from_slice(&text).expect("config.v2.json is whole JSON")
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// Nothing of the container is left anywhere: ocishim's record, cgroups, netns, veth,
    /// mounts, monitor, and the runtime's state in its default root.
    fn assert_gone(&self, id: &str) {
        self.env.assert_gone(id, &[]);
        assert!(
            !self.runtime_state_dir(id).exists(),
            "{} left behind",
            self.runtime_state_dir(id).display()
        );
        let o = self.runc("state", id);
        assert!(
            !o.status.success(),
            "{} state {id} still knows the container: {}",
            self.runtime,
            stdout(&o)
        );
    }
}

fn assert_full_id_line(out: &str) {
    let id = out.strip_suffix('\n').unwrap_or("");
    assert!(
        id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "stdout must be exactly a 64-hex ID and a newline, got {out:?}"
    );
}

/// An HTTP/1.1 response: status code and body (framed by Content-Length).
struct Response {
    status: u16,
    body: String,
}

/// Connect as the invoker's client does: retry every 50 ms for up to 2 s.
fn connect(ip: Ipv4Addr) -> TcpStream {
    let addr = SocketAddr::from((ip, 8080));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => return s,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no connection to {addr} in 2 s: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// POST a JSON body; Err when the connection ends before a whole response.
fn post(ip: Ipv4Addr, path: &str, body: &Value, timeout: Duration) -> Result<Response, String> {
    let mut s = connect(ip);
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {ip}:8080\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            let mut parts = status_line.splitn(3, ' ');
            let proto = parts.next().unwrap_or("");
            assert!(proto.starts_with("HTTP/1."), "status line {status_line:?}");
            let status: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let len: usize = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().parse().expect("a numeric Content-Length"))
                .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
            while buf.len() < end + 4 + len {
                assert!(Instant::now() < deadline, "body of {path} not read in time");
                match s.read(&mut chunk) {
                    Ok(0) => return Err(format!("connection closed inside the body of {path}")),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) => return Err(e.to_string()),
                }
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
            return Ok(Response { status, body });
        }
        if Instant::now() >= deadline {
            return Err(format!("no response to {path} in {timeout:?}"));
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err(format!("connection closed before a response to {path}")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One json-file line.
#[derive(Debug)]
struct LogLine {
    log: String,
    stream: String,
}

/// Read the log as the invoker does: from `offset`, whole lines only (a partial line at
/// EOF fails the invoker, so it fails here), until a sentinel has come on stdout and one
/// on stderr (bounded). Returns the lines and the new offset.
fn read_activation_log(path: &Path, offset: u64) -> (Vec<LogLine>, u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let data = std::fs::read(path).expect("reading the json-file log");
        assert!(
            data.len() as u64 >= offset,
            "the log shrank (it is append-only)"
        );
        let new = &data[offset as usize..];
        assert!(
            new.is_empty() || new.ends_with(b"\n"),
            "a partial line at the log's end: {:?}",
            String::from_utf8_lossy(new)
        );
        let lines: Vec<LogLine> = new
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                    panic!(
                        "not a json-file line: {:?}: {e}",
                        String::from_utf8_lossy(l)
                    )
                });
                let time = v["time"].as_str().expect("a time field");
                assert!(time.ends_with('Z') && time.contains('T'), "time {time:?}");
                LogLine {
                    log: v["log"].as_str().expect("a log field").to_string(),
                    stream: v["stream"].as_str().expect("a stream field").to_string(),
                }
            })
            .collect();
        let done = ["stdout", "stderr"].iter().all(|s| {
            lines
                .iter()
                .any(|l| l.stream == *s && l.log == format!("{SENTINEL}\n"))
        });
        if done {
            return (lines, data.len() as u64);
        }
        assert!(
            Instant::now() < deadline,
            "no sentinels on both streams in 5 s: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lines of one stream, in order.
fn stream(lines: &[LogLine], name: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.stream == name)
        .map(|l| l.log.clone())
        .collect()
}

fn bridge_ip(config: &Value) -> Ipv4Addr {
    let ip = config["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("no bridge IPAddress in config.v2.json: {config}"));
    ip.parse().expect("an IPv4 address")
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn invoker_replayed() {
    let inv = Invoker::new();
    let reg = Registry::start();
    let t = tag();
    let prefix = format!("wsk{t}_");

    // 1. version: one line, not 1.12 (the invoker then passes --dns-option).
    let v = inv.ok(&["version", "--format", "{{.Client.Version}}"]);
    assert_eq!(v.lines().count(), 1, "version prints one line: {v:?}");
    let v = v.trim_end();
    assert!(
        !v.is_empty() && !v.starts_with("1.12") && v.as_bytes()[0].is_ascii_digit(),
        "client version {v:?}"
    );

    // 2. the start-up cleanup of this invoker's prefix: nothing there yet.
    let ps = ["ps", "--quiet", "--no-trunc", "--all", "--filter"];
    let by_name = format!("name={prefix}");
    let mut cleanup_ps = ps.to_vec();
    cleanup_ps.push(&by_name);
    assert_eq!(inv.ok(&cleanup_ps), "", "no container of {prefix} yet");

    // 3. pull of the action image from the loopback registry.
    let image_dir = action_image("openwhisk-action-oci-dir", &["--format", "oci-dir"]);
    let repo = format!("openwhisk/action-{t}:latest");
    reg.push(&image_dir, &repo, &[]);
    let image = reg.reference(&repo);
    let o = inv.docker(&["pull", &image]);
    assert!(o.status.success(), "docker pull {image}: {}", stderr(&o));
    // A pull the registry cannot serve: non-zero (the invoker needs only the status), one
    // line saying why, nothing stored.
    let missing = reg.reference(&format!("openwhisk/missing-{t}:1"));
    let o = inv.docker(&["pull", &missing]);
    assert_ne!(o.status.code(), Some(0), "docker pull {missing}");
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    assert_eq!(inv.ok(&["images", "-q"]).lines().count(), 1);

    // 4. run -d; 5. the IP from config.v2.json at once; the log file already there.
    let name = format!("{prefix}12_guest_hello");
    let id = inv.run(&name, &image);
    let config = inv.config_v2(&id);
    let ip = bridge_ip(&config);
    let subnet: ipnetwork::Ipv4Network = inv.env.subnet.parse().unwrap();
    assert!(
        subnet.contains(ip),
        "{ip} is not on the test's bridge {subnet}"
    );
    assert!(
        inv.log_path(&id).exists(),
        "the json-file log exists when run -d returns"
    );
    assert_eq!(config["Name"], format!("/{name}"));
    // The argv's limits, capabilities (CAP_-prefixed, as dockerd 20.10 stores them), ulimit
    // and DNS as docker records them; the DNS in the container's resolv.conf.
    let hc = &config["HostConfig"];
    for (key, want) in [
        ("CpuShares", serde_json::json!(128)),
        ("Memory", serde_json::json!(256 << 20)),
        ("MemorySwap", serde_json::json!(256 << 20)),
        ("NanoCpus", serde_json::json!(250_000_000)),
        ("PidsLimit", serde_json::json!(1024)),
        (
            "CapDrop",
            serde_json::json!(["CAP_NET_RAW", "CAP_NET_ADMIN"]),
        ),
        ("Dns", serde_json::json!(["192.0.2.53"])),
        ("DnsSearch", serde_json::json!(["ow.example"])),
        ("DnsOptions", serde_json::json!(["ndots:2"])),
    ] {
        assert_eq!(hc[key], want, "HostConfig.{key}: {hc}");
    }
    assert_eq!(hc["Ulimits"][0]["Name"], "nofile", "{hc}");
    assert_eq!(hc["Ulimits"][0]["Soft"], 1024, "{hc}");
    let resolv = std::fs::read_to_string(config["ResolvConfPath"].as_str().unwrap()).unwrap();
    for line in [
        "nameserver 192.0.2.53",
        "search ow.example",
        "options ndots:2",
    ] {
        assert!(resolv.lines().any(|l| l == line), "{line:?} in {resolv:?}");
    }
    let ip_fmt = "{{.NetworkSettings.Networks.bridge.IPAddress}}";
    assert_eq!(
        inv.ok(&["inspect", "--format", ip_fmt, &id]),
        format!("{ip}\n")
    );
    assert_eq!(inv.ok(&cleanup_ps), format!("{id}\n"));

    // /init, then /run: its value echoed; a log line and the sentinel on both streams.
    let init = json!({"value": {"name": "hello", "main": "main", "binary": false,
                                "code": "function main(p) { return p }", "env": {}}});
    let r = post(ip, "/init", &init, Duration::from_secs(10)).expect("POST /init");
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"ok":true}"#));
    let run_msg = |value: Value| {
        json!({"value": value, "namespace": "guest", "action_name": "hello",
               "activation_id": tag(), "deadline": "0", "api_key": ""})
    };
    let first = json!({"name": "first", "n": [1, 2, {"x": "y,}"}]});
    let r = post(ip, "/run", &run_msg(first.clone()), Duration::from_secs(10)).expect("/run");
    assert_eq!(r.status, 200, "/run: {}", r.body);
    assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap(), first);
    let (lines, offset) = read_activation_log(&inv.log_path(&id), 0);
    assert_eq!(
        stream(&lines, "stdout"),
        [format!("run: {first}\n"), format!("{SENTINEL}\n")]
    );
    assert_eq!(
        stream(&lines, "stderr"),
        ["run: on stderr\n".to_string(), format!("{SENTINEL}\n")]
    );

    // The warm path: runc pause and resume directly, then /run; the log from the offset.
    let o = inv.runc("pause", &id);
    assert!(
        o.status.success(),
        "{} pause {id}: {}",
        inv.runtime,
        stderr(&o)
    );
    let mut paused_ps = cleanup_ps.clone();
    paused_ps.extend(["--filter", "status=paused"]);
    assert_eq!(
        inv.ok(&paused_ps),
        format!("{id}\n"),
        "ps --filter status=paused"
    );
    let o = inv.runc("resume", &id);
    assert!(
        o.status.success(),
        "{} resume {id}: {}",
        inv.runtime,
        stderr(&o)
    );
    assert_eq!(inv.ok(&paused_ps), "", "no longer paused");
    let second = json!({"name": "second"});
    let r = post(
        ip,
        "/run",
        &run_msg(second.clone()),
        Duration::from_secs(10),
    )
    .expect("/run");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, second.to_string().as_str())
    );
    let (lines, _) = read_activation_log(&inv.log_path(&id), offset);
    assert_eq!(
        lines.len(),
        4,
        "only the second activation's lines: {lines:?}"
    );
    assert_eq!(stream(&lines, "stdout")[0], format!("run: {second}\n"));

    // docker pause/unpause (the invoker without runc), logs, inspect templates, info.
    inv.ok(&["pause", &id]);
    assert_eq!(inv.ok(&paused_ps), format!("{id}\n"));
    inv.ok(&["unpause", &id]);
    assert_eq!(inv.ok(&paused_ps), "");
    let until = (now_epoch() + 2).to_string();
    let o = inv.docker(&[
        "logs",
        &id,
        "--since",
        "0",
        "--until",
        &until,
        "--timestamps",
    ]);
    assert!(o.status.success(), "docker logs: {}", stderr(&o));
    let out = stdout(&o);
    let out_lines: Vec<&str> = out.lines().collect();
    assert_eq!(out_lines.len(), 4, "stdout lines of both runs: {out:?}");
    for l in &out_lines {
        let (ts, rest) = l.split_once(' ').expect("a timestamp, a space, the line");
        assert!(ts.ends_with('Z') && ts.contains('T'), "timestamp {ts:?}");
        assert!(
            rest.starts_with("run: ") || rest == SENTINEL,
            "line {rest:?}"
        );
    }
    assert_eq!(
        stderr(&o).lines().filter(|l| l.ends_with(SENTINEL)).count(),
        2
    );
    let o = inv.docker(&["logs", &id, "--since", "0", "--until", "1", "--timestamps"]);
    assert!(
        o.status.success() && stdout(&o).is_empty(),
        "--until 1: {o:?}"
    );
    assert_eq!(
        inv.ok(&["inspect", &id, "--format", "{{.State.OOMKilled}}"]),
        "false\n"
    );
    let info: Value = serde_json::from_str(&inv.ok(&["info", "-f", "json"])).expect("info JSON");
    assert_eq!(
        info["DockerRootDir"].as_str(),
        Some(inv.env.data_root.to_str().unwrap()),
        "{info}"
    );

    // The OOM route: no response, then OOMKilled in config.v2.json within 2 s (the
    // invoker polls 400 times, 5 ms apart).
    let r = post(
        ip,
        "/run",
        &run_msg(json!({"oom": true})),
        Duration::from_secs(30),
    );
    assert!(r.is_err(), "the OOM route answered: {}", r.unwrap().body);
    let mut oom = false;
    for _ in 0..400 {
        if inv.config_v2(&id)["State"]["OOMKilled"] == json!(true) {
            oom = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        oom,
        "State.OOMKilled not true in 2 s: {}",
        inv.config_v2(&id)["State"]
    );
    assert_eq!(
        inv.ok(&["inspect", &id, "--format", "{{.State.OOMKilled}}"]),
        "true\n"
    );
    inv.ok(&["rm", "-f", &id]);
    inv.assert_gone(&id);
    assert_eq!(inv.ok(&cleanup_ps), "");
    let o = inv.docker(&["rm", "-f", &id]);
    assert!(
        o.status.success(),
        "rm -f of a missing ID exits 0: {}",
        stderr(&o)
    );

    // An image whose command is missing (put on the host with docker load): 127, the ID on
    // stdout; then rm -f, and the image removed.
    let missing = action_image(
        "openwhisk-action-missing.tar",
        &[
            "--format",
            "docker-archive",
            "--name",
            "openwhisk-missing:latest",
            "--cmd",
            r#"["/action/missing"]"#,
        ],
    );
    let loaded = inv.ok(&["load", "-i", missing.to_str().unwrap()]);
    assert!(loaded.contains("openwhisk-missing:latest"), "{loaded}");
    let images = inv.ok(&["images"]);
    assert!(
        images.contains("openwhisk-missing"),
        "docker images: {images}"
    );
    let o = inv.docker(&inv.run_args(&format!("{prefix}13_guest_missing"), "openwhisk-missing"));
    assert_eq!(
        o.status.code(),
        Some(127),
        "a missing command: {}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert_full_id_line(&out);
    let mid = out.trim_end().to_string();
    inv.ok(&["rm", "-f", &mid]);
    inv.assert_gone(&mid);
    inv.ok(&["rmi", "openwhisk-missing:latest"]);
    assert!(!inv.ok(&["images"]).contains("openwhisk-missing"));
    inv.env.assert_empty();
    drop(reg);
}

#[test]
fn invoker_cleanup_of_20() {
    let inv = Invoker::new();
    let t = tag();
    let prefix = format!("wsk{t}_");
    // An operator's way onto a host with no registry: docker load of an OCI archive.
    let archive = action_image(
        "openwhisk-action-oci.tar",
        &["--format", "oci", "--name", "openwhisk-action:latest"],
    );
    let loaded = inv.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("openwhisk-action:latest"), "{loaded}");
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(inv.run(
            &format!("{prefix}{i}_guest_a{i}"),
            "openwhisk-action:latest",
        ));
    }
    // The first answers /init (the containers serve); a third of them paused by runc.
    let ip = bridge_ip(&inv.config_v2(&ids[0]));
    let r = post(ip, "/init", &json!({"value": {}}), Duration::from_secs(10)).expect("/init");
    assert_eq!(r.status, 200);
    let mut paused = BTreeSet::new();
    for id in ids.iter().step_by(3) {
        let o = inv.runc("pause", id);
        assert!(o.status.success(), "{} pause: {}", inv.runtime, stderr(&o));
        paused.insert(id.clone());
    }
    let by_name = format!("name={prefix}");
    let ps = ["ps", "--quiet", "--no-trunc", "--all", "--filter", &by_name];
    let mut ps_paused = ps.to_vec();
    ps_paused.extend(["--filter", "status=paused"]);
    let listed: BTreeSet<String> = inv.ok(&ps_paused).lines().map(String::from).collect();
    assert_eq!(listed, paused, "ps --filter name --filter status=paused");

    // The invoker's removeAllActionContainers: ps by prefix, then for every ID at once
    // `runc resume` (its failure ignored) and `docker rm -f`.
    let started = Instant::now();
    let out = inv.ok(&ps);
    let listed: BTreeSet<String> = out.lines().map(String::from).collect();
    assert_eq!(
        listed,
        ids.iter().cloned().collect(),
        "ps lists the 20: {out:?}"
    );
    std::thread::scope(|s| {
        for id in &listed {
            let inv = &inv;
            s.spawn(move || {
                let _ = inv.runc("resume", id);
                let o = inv.docker(&["rm", "-f", id]);
                assert!(o.status.success(), "docker rm -f {id}: {}", stderr(&o));
            });
        }
    });
    let took = started.elapsed();
    eprintln!("the invoker's cleanup of 20 containers took {took:?}");
    assert!(
        took < Duration::from_secs(30),
        "the cleanup of 20 took {took:?}"
    );
    assert_eq!(inv.ok(&ps), "", "nothing of {prefix} left");
    for id in &ids {
        inv.assert_gone(id);
    }
    inv.env.assert_empty();
    inv.ok(&["rmi", "openwhisk-action:latest"]);
}
