//! A real local OCI registry for the pull tests: Debian's `docker-registry` (distribution
//! 2.8) on 127.0.0.1 with a free port, its own storage and config, optionally behind token
//! auth (tests/support/token_server.py) or htpasswd (basic) auth, or inside a private
//! network namespace (only loopback: nothing there can reach another host). Images go in
//! with skopeo; the registry's access log (its standard output, one Apache-combined line per
//! request) is what the tests count. Everything is stopped by PID and removed on Drop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::Bounded;
use serde_json::Value;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The tools the registry tests drive, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("openssl", "openssl"),
    ("python3", "python3"),
    ("htpasswd", "apache2-utils"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
    ("setpriv", "util-linux"),
    ("ip", "iproute2"),
    ("zstd", "zstd"),
];

/// Fails (never skips) when not root or a tool is missing, naming the package to install.
pub fn require_tools() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "the registry tests must run as root"
    );
    for (tool, package) in TOOLS {
        assert!(
            which(tool).is_some(),
            "{tool} is not installed: apt-get install -y {package} (or run scripts/setup)"
        );
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A command for a long-lived helper process (registry, token server, namespace holder):
/// `setpriv --pdeathsig KILL -- PROGRAM`, which execs PROGRAM under the same PID, so that
/// it dies with the test thread that started it even when the test binary is killed and no
/// Drop runs (no unsafe pre_exec needed).
fn guarded(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--pdeathsig", "KILL", "--", program]);
    c
}

/// A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it now).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

pub use crate::common::image;

/// The default busybox image (an OCI archive, one gzip layer); the same file tests/image.rs
/// builds.
pub fn busybox_oci() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| image("busybox-oci.tar", &[])).clone()
}

/// How the registry authenticates.
#[derive(Clone, Debug, PartialEq)]
pub enum Auth {
    None,
    /// Bearer tokens from tests/support/token_server.py, which wants these credentials.
    Token {
        user: String,
        password: String,
    },
    /// HTTP basic auth against a bcrypt htpasswd file.
    Basic {
        user: String,
        password: String,
    },
}

impl Auth {
    fn creds(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Token { user, password } | Auth::Basic { user, password } => {
                Some(format!("{user}:{password}"))
            }
        }
    }
}

/// A process started by the harness, stopped by its PID (TERM, then KILL) on drop.
struct Proc {
    child: Child,
    what: &'static str,
}

impl Proc {
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} (pid {pid}) ignored SIGTERM: SIGKILL", self.what);
        let _ = kill(pid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private network namespace with only loopback up, held by a sleeping process: whatever
/// runs in it (the registry, skopeo, ocishim through [`NetNs::wrap`]) reaches 127.0.0.1 of
/// that namespace and nothing else.
pub struct NetNs {
    holder: Proc,
}

impl NetNs {
    pub fn new() -> NetNs {
        let child = guarded("unshare")
            .args(["--net", "--", "sleep", "100000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("running unshare --net");
        let mut ns = NetNs {
            holder: Proc {
                child,
                what: "netns holder",
            },
        };
        // Wait (bounded) until the holder is in its own namespace, then bring lo up.
        let me = std::fs::read_link("/proc/self/ns/net").unwrap();
        let pid = ns.pid();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(ns.holder.alive(), "unshare --net exited");
            if let Ok(theirs) = std::fs::read_link(format!("/proc/{pid}/ns/net")) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if theirs != me && comm.trim() == "sleep" {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "unshare --net did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let o = ns
            .wrap(Command::new("ip").args(["link", "set", "lo", "up"]))
            .bounded();
        assert!(o.status.success(), "ip link set lo up: {o:?}");
        ns
    }

    pub fn pid(&self) -> u32 {
        self.holder.child.id()
    }

    /// The same command, run in this namespace (`nsenter -t PID -n -- PROGRAM ARGS`), with
    /// the command's environment and stdin settings.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid().to_string())
            .arg("-n")
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Run `f` on a thread that joined this namespace (for the harness's own TCP checks).
    fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.pid())).unwrap();
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .unwrap()
    }
}

/// The token endpoint (tests/support/token_server.py) of a token-auth registry.
struct TokenServer {
    proc: Proc,
    port: u16,
    log: PathBuf,
}

/// One docker-registry with its storage, config, logs and (token auth) token server.
pub struct Registry {
    pub port: u16,
    pub auth: Auth,
    /// Config, logs, storage, certificate: removed on drop.
    pub dir: tempfile::TempDir,
    /// The filesystem driver's rootdirectory.
    pub storage: PathBuf,
    /// The access log (the registry's stdout): one Apache-combined line per request.
    pub access_log: PathBuf,
    /// logrus's lines (stderr): "response completed", auth warnings...
    pub error_log: PathBuf,
    proc: Option<Proc>,
    token: Option<TokenServer>,
    netns: Option<NetNs>,
}

/// One access-log line.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub status: u16,
}

impl Registry {
    /// Plain HTTP, no auth.
    pub fn start() -> Registry {
        Registry::launch(Auth::None, false)
    }

    /// Behind bearer-token auth (a token server with these credentials).
    pub fn start_token(user: &str, password: &str) -> Registry {
        Registry::launch(
            Auth::Token {
                user: user.into(),
                password: password.into(),
            },
            false,
        )
    }

    /// Behind basic auth (htpasswd -B).
    pub fn start_htpasswd(user: &str, password: &str) -> Registry {
        Registry::launch(
            Auth::Basic {
                user: user.into(),
                password: password.into(),
            },
            false,
        )
    }

    /// No auth, in a private network namespace of its own (run clients with [`Registry::wrap`]).
    pub fn start_isolated() -> Registry {
        Registry::launch(Auth::None, true)
    }

    fn launch(auth: Auth, isolated: bool) -> Registry {
        require_tools();
        let dir = tempfile::Builder::new()
            .prefix("ocishim-registry-")
            .tempdir()
            .unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let netns = isolated.then(NetNs::new);
        let mut reg = Registry {
            port: 0,
            access_log: dir.path().join("access.log"),
            error_log: dir.path().join("registry.log"),
            storage,
            auth,
            dir,
            proc: None,
            token: None,
            netns,
        };
        let auth_yaml = reg.auth_config();
        // The port was free a moment ago; another process may take it first: retry.
        for attempt in 0..5 {
            let port = free_port();
            let cfg = reg.dir.path().join("config.yml");
            std::fs::write(&cfg, reg.config_yaml(port, &auth_yaml)).unwrap();
            let out = std::fs::File::create(&reg.access_log).unwrap();
            let err = std::fs::File::create(&reg.error_log).unwrap();
            let mut c = guarded("docker-registry");
            c.arg("serve").arg(&cfg);
            let mut c = reg.in_ns(c);
            let child = c
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("running docker-registry");
            let mut p = Proc {
                child,
                what: "docker-registry",
            };
            if reg.wait_ready(&mut p, port) {
                reg.port = port;
                reg.proc = Some(p);
                return reg;
            }
            p.stop();
            eprintln!(
                "docker-registry on port {port} did not come up (attempt {attempt}): {}",
                std::fs::read_to_string(&reg.error_log).unwrap_or_default()
            );
        }
        panic!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(&reg.error_log).unwrap_or_default()
        );
    }

    /// The `auth:` section (starting the token server or writing the htpasswd file).
    fn auth_config(&mut self) -> String {
        let d = self.dir.path().to_path_buf();
        match self.auth.clone() {
            Auth::None => String::new(),
            Auth::Basic { user, password } => {
                let o = Command::new("htpasswd")
                    .args(["-Bbn", &user, &password])
                    .bounded();
                assert!(o.status.success(), "htpasswd -Bbn: {o:?}");
                let file = d.join("htpasswd");
                std::fs::write(&file, &o.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: ocishim-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token { user, password } => {
                let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
                let o = Command::new("openssl")
                    .args([
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    ])
                    .args(["-subj", "/CN=ocishim-test-token"])
                    .arg("-keyout")
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert)
                    .bounded();
                assert!(o.status.success(), "openssl req -x509: {o:?}");
                let (issuer, service) = ("ocishim-test-issuer", "ocishim-test-registry");
                let script =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/token_server.py");
                let (port_file, log) = (d.join("token.port"), d.join("token.log"));
                let child = guarded("python3")
                    .arg(&script)
                    .arg(&cert)
                    .arg(&key)
                    .args([issuer, service, &user, &password])
                    .stdin(Stdio::null())
                    .stdout(std::fs::File::create(&port_file).unwrap())
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .expect("running python3 tests/support/token_server.py");
                let mut proc = Proc {
                    child,
                    what: "token server",
                };
                let deadline = Instant::now() + Duration::from_secs(15);
                let port = loop {
                    let text = std::fs::read_to_string(&port_file).unwrap_or_default();
                    if let Some(p) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                        if text.contains('\n') {
                            break p;
                        }
                    }
                    assert!(
                        proc.alive(),
                        "the token server exited: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    assert!(
                        Instant::now() < deadline,
                        "the token server printed no port"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                };
                self.token = Some(TokenServer { proc, port, log });
                format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    \
                     service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    cert.display()
                )
            }
        }
    }

    fn config_yaml(&self, port: u16, auth: &str) -> String {
        format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n  fields:\n    service: registry\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: ocishim-test-{port}\n\
             {auth}",
            self.storage.display()
        )
    }

    /// Poll (up to 10 s) until this process logged that it listens on the port and GET /v2/
    /// (raw HTTP/1.0) answers 200 or 401; false when it exited (the port was taken).
    fn wait_ready(&self, p: &mut Proc, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listening = format!("listening on 127.0.0.1:{port}");
        while Instant::now() < deadline {
            if !p.alive() {
                return false;
            }
            let log = std::fs::read_to_string(&self.error_log).unwrap_or_default();
            if !log.contains(&listening) {
                std::thread::sleep(Duration::from_millis(25));
                continue;
            }
            let answer = match &self.netns {
                Some(ns) => ns.within(move || http_get(port, "/v2/")),
                None => http_get(port, "/v2/"),
            };
            if let Some(status) = answer {
                if status == 200 || status == 401 {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    fn in_ns(&self, c: Command) -> Command {
        match &self.netns {
            Some(ns) => ns.wrap(&c),
            None => c,
        }
    }

    /// A command run where this registry is reachable (its namespace when isolated).
    pub fn wrap(&self, c: Command) -> Command {
        self.in_ns(c)
    }

    /// "127.0.0.1:PORT".
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// "127.0.0.1:PORT/NAME" for "NAME" (a repository, with or without :tag or @digest).
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// Push an OCI archive (a file) or layout (a directory) as REPO:TAG with skopeo; returns
    /// the digest ("sha256:…") of the manifest (or index) pushed. Blobs keep their digests
    /// (--preserve-digests) unless `extra` asks for another compression or format (e.g.
    /// `--format v2s2`, docker's schema 2, gzip layers unchanged); mind that skopeo
    /// then reuses a blob of the same content the registry already has (in any repository)
    /// instead of recompressing: zstd images come from `scripts/build-image --compression
    /// zstd` instead.
    pub fn push(&self, src: &Path, repo_tag: &str, extra: &[&str]) -> String {
        // skopeo silently keeps the source's format under --preserve-digests.
        let convert = extra
            .iter()
            .any(|a| a.starts_with("--dest-compress") || a.starts_with("--format"));
        let mut args: Vec<String> = vec!["copy".into(), "-q".into()];
        if !convert {
            args.push("--preserve-digests".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--dest-tls-verify=false".into());
        if let Some(c) = self.auth.creds() {
            args.push(format!("--dest-creds={c}"));
        }
        let digest_file = self
            .dir
            .path()
            .join(format!("digest-{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
        args.push(format!("--digestfile={}", digest_file.display()));
        let transport = if src.is_dir() { "oci" } else { "oci-archive" };
        args.push(format!("{transport}:{}", src.display()));
        args.push(format!("docker://{}", self.reference(repo_tag)));
        let o = self.skopeo(&args);
        assert!(
            o.status.success(),
            "skopeo {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let d = std::fs::read_to_string(&digest_file).unwrap();
        let _ = std::fs::remove_file(&digest_file);
        assert!(d.starts_with("sha256:"), "skopeo --digestfile wrote {d:?}");
        d.trim().to_string()
    }

    /// skopeo with the given arguments, where the registry is reachable.
    pub fn skopeo(&self, args: &[String]) -> Output {
        let mut c = Command::new("skopeo");
        c.args(args).stdin(Stdio::null());
        self.in_ns(c).bounded()
    }

    /// The raw manifest (or index) of REPO:TAG or REPO@DIGEST, read with skopeo.
    pub fn manifest(&self, name: &str) -> Value {
        let mut args = vec![
            "inspect".to_string(),
            "--raw".into(),
            "--tls-verify=false".into(),
        ];
        if let Some(c) = self.auth.creds() {
            args.push(format!("--creds={c}"));
        }
        args.push(format!("docker://{}", self.reference(name)));
        let o = self.skopeo(&args);
        assert!(
            o.status.success(),
            "skopeo inspect --raw {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("a manifest is JSON")
    }

    /// The manifest of one platform of an index, or the manifest itself.
    pub fn image_manifest(&self, repo: &str, name: &str, arch: &str) -> Value {
        let m = self.manifest(name);
        match m["manifests"].as_array() {
            Some(list) => {
                let d = list
                    .iter()
                    .find(|d| d["platform"]["architecture"] == arch)
                    .unwrap_or_else(|| panic!("no {arch} manifest in {m}"));
                self.manifest(&format!("{repo}@{}", d["digest"].as_str().unwrap()))
            }
            None => m,
        }
    }

    /// The digests ("sha256:…") of a manifest's config and layers.
    pub fn blobs_of(manifest: &Value) -> (String, Vec<String>) {
        let config = manifest["config"]["digest"].as_str().unwrap().to_string();
        let layers = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect();
        (config, layers)
    }

    /// The stored blob file of a digest ("sha256:HEX" or "HEX").
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Overwrite bytes in the middle of a stored blob (same size): a client that checks
    /// digests refuses it.
    pub fn corrupt_blob(&self, digest: &str) {
        let p = self.blob_path(digest);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let len = f.metadata().unwrap().len();
        assert!(len > 64, "blob {digest} too small to corrupt");
        let at = len / 2;
        let mut buf = [0u8; 32];
        f.read_exact_at(&mut buf, at).unwrap();
        for b in buf.iter_mut() {
            *b ^= 0xff;
        }
        f.write_all_at(&buf, at).unwrap();
        f.sync_all().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), len);
    }

    /// Wait (bounded) until the access log stopped growing: the registry writes a line once
    /// the handler returned, which can be just after the client got the last byte.
    pub fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(3);
        let size = || {
            std::fs::metadata(&self.access_log)
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let mut last = size();
        let mut stable_since = Instant::now();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(25));
            let now = size();
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if stable_since.elapsed() >= Duration::from_millis(150) {
                return;
            }
        }
    }

    /// Every request so far (after [`Registry::settle`]), from the access log.
    pub fn requests(&self) -> Vec<Request> {
        self.settle();
        let text = std::fs::read_to_string(&self.access_log).unwrap_or_default();
        text.lines().filter_map(parse_access_line).collect()
    }

    /// Successful (2xx/3xx) GETs of blobs whose path contains `needle`: a digest (with or
    /// without "sha256:"), "REPO/blobs/" or "" for all. HEADs and refused requests (401)
    /// are not counted.
    pub fn blob_gets(&self, needle: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/blobs/sha256:"))
            .filter(|r| r.path.starts_with("/v2/") && r.path.contains(needle))
            .filter(|r| (200..400).contains(&r.status))
            .count()
    }

    /// Successful GETs and HEADs of manifests of REPO ("" for any): a client may check a
    /// tag's digest with HEAD before it GETs anything.
    pub fn manifest_requests(&self, repo: &str) -> usize {
        let prefix = format!("/v2/{repo}");
        self.requests()
            .iter()
            .filter(|r| (r.method == "GET" || r.method == "HEAD") && r.path.contains("/manifests/"))
            .filter(|r| r.path.starts_with(&prefix))
            .filter(|r| (200..400).contains(&r.status))
            .count()
    }

    /// Tokens the token server issued (200s), and refused (401s).
    pub fn token_requests(&self) -> (usize, usize) {
        let Some(t) = &self.token else {
            return (0, 0);
        };
        let text = std::fs::read_to_string(&t.log).unwrap_or_default();
        let ok = text.lines().filter(|l| l.starts_with("token 200 ")).count();
        let refused = text.lines().filter(|l| l.starts_with("token 401 ")).count();
        (ok, refused)
    }

    /// The PIDs of the processes the harness started for this registry (the registry, the
    /// token server, the network namespace's holder): all gone after drop.
    pub fn pids(&self) -> Vec<u32> {
        let mut v = vec![];
        v.extend(self.proc.as_ref().map(|p| p.child.id()));
        v.extend(self.token.as_ref().map(|t| t.proc.child.id()));
        v.extend(self.netns.as_ref().map(|n| n.pid()));
        v
    }

    pub fn token_port(&self) -> Option<u16> {
        self.token.as_ref().map(|t| t.port)
    }

    /// The logs, for assertion messages (the access log without the pushes' uploads).
    pub fn logs(&self) -> String {
        let tok = self
            .token
            .as_ref()
            .map(|t| std::fs::read_to_string(&t.log).unwrap_or_default())
            .unwrap_or_default();
        let access = std::fs::read_to_string(&self.access_log).unwrap_or_default();
        let access: Vec<&str> = access
            .lines()
            .filter(|l| !l.contains("/blobs/uploads/"))
            .collect();
        format!("access log:\n{}\ntoken server:\n{tok}", access.join("\n"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
        if let Some(mut t) = self.token.take() {
            t.proc.stop();
        }
        if let Some(mut ns) = self.netns.take() {
            ns.holder.stop();
        }
        // The TempDir goes with the struct.
    }
}

/// `127.0.0.1 - - [05/Dec/2026:14:09:17 +0000] "GET /v2/x/blobs/sha256:… HTTP/1.1" 200 412 "" "ua"`
fn parse_access_line(l: &str) -> Option<Request> {
    let (_, rest) = l.split_once(" \"")?;
    let (req, rest) = rest.split_once("\" ")?;
    let mut r = req.split(' ');
    let method = r.next()?.to_string();
    let path = r.next()?.to_string();
    let status = rest.split(' ').next()?.parse().ok()?;
    Some(Request {
        method,
        path,
        status,
    })
}

/// Run a command to completion within `limit` (its stdout and stderr captured, `input` on
/// its stdin when given); past the limit it is killed by its PID and the test fails.
pub fn output_within(cmd: &mut Command, input: Option<&[u8]>, limit: Duration) -> Output {
    crate::common::run_bounded(cmd, true, input, limit).unwrap_or_else(|e| panic!("{e}"))
}

/// GET PATH on 127.0.0.1:PORT (HTTP/1.0, 2 s timeouts): the status code, None when no answer.
pub fn http_get(port: u16, path: &str) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    let _ = s.take(4096).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .next()?
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
}
