//! create / start / run / pause / resume / kill / rm as ordered steps. A failure in create
//! or start undoes every step already done and leaves only the record, with the error and
//! docker's exit code in it.

use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::cgroup::{self, CgroupError, ContainerCgroup};
use crate::config::{ConfigError, ContainerConfig, LogDriver, NetworkMode};
use crate::exit_code;
use crate::log_file;
use crate::monitor;
use crate::network::dns;
use crate::record::Record;
use crate::runtime::{last_error, Runtime, RuntimeError};
use crate::spec::{self, EtcFiles, ResolvedDevice, SpecError, SpecInput};
use crate::store::{self, Store, StoreError};
use crate::sys;

/// How long a CLI waits for a monitor to report the runtime's create.
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long rm waits for a killed container to be reaped.
const KILL_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// Bad input found while preparing (before any record exists).
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The runtime refused to create or start the container; the record keeps the error.
    #[error("{message}")]
    StartFailed {
        id: Option<String>,
        message: String,
        cli_status: i32,
    },
    #[error("You cannot remove a {status} container {id}. Stop the container before attempting removal or force remove")]
    RemoveRunning { id: String, status: String },
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    #[error("Container {0} is paused, unpause the container before stopping or killing")]
    Paused(String),
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("invalid signal: {0}")]
    BadSignal(String),
    #[error("configured logging driver does not support reading")]
    NoLogs,
    #[error("monitor: {0}")]
    Monitor(String),
    /// Errors already printed one a line (rm of several containers).
    #[error("some containers could not be removed")]
    Reported,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// What every command needs: the store and how to run the runtime and the monitor.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    /// The runtime named on the command line (for new containers).
    pub runtime: String,
    pub runtime_root: Option<PathBuf>,
    /// `--log-level` to pass on to the monitor.
    pub log_level: Option<String>,
    pub networks: crate::network::Networks,
}

impl Context {
    /// The runtime a container was created with.
    fn runtime_for(&self, rec: &Record) -> Result<Runtime, Error> {
        let root = rec.ocishim.runtime_root.as_ref().map(PathBuf::from);
        Ok(Runtime::new(&rec.ocishim.runtime, root)?)
    }
}

pub fn now() -> String {
    log_file::format_time(SystemTime::now())
}

/// Check what can be checked before anything exists: rootfs, user, devices, bind sources.
struct Prepared {
    user: spec::ResolvedUser,
    devices: Vec<ResolvedDevice>,
}

fn device_from_host(host: &Path, container: &str, perms: &str) -> Result<ResolvedDevice, Error> {
    let md = fs::metadata(host).map_err(|e| {
        Error::Invalid(format!(
            "error gathering device information while adding custom device {:?}: {e}",
            host.display().to_string()
        ))
    })?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return Err(Error::Invalid(format!(
            "error gathering device information while adding custom device {:?}: not a device node",
            host.display().to_string()
        )));
    };
    let rdev = md.rdev();
    Ok(ResolvedDevice {
        path: container.to_string(),
        typ,
        major: libc::major(rdev) as i64,
        minor: libc::minor(rdev) as i64,
        file_mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        permissions: perms.to_string(),
    })
}

/// Every device node under /dev, for --privileged (docker gives them all).
fn host_devices() -> Vec<ResolvedDevice> {
    fn walk(dir: &Path, out: &mut Vec<ResolvedDevice>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name();
            if matches!(
                name.to_str(),
                Some(
                    "pts"
                        | "shm"
                        | "fd"
                        | "mqueue"
                        | ".lxc"
                        | ".lxd-mounts"
                        | ".udev"
                        | "console"
                        | "ptmx"
                )
            ) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(&p, out);
            } else if ft.is_char_device() || ft.is_block_device() {
                let s = p.to_string_lossy().to_string();
                if let Ok(d) = device_from_host(&p, &s, "rwm") {
                    out.push(d);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/dev"), &mut out);
    out
}

fn prepare(cfg: &ContainerConfig) -> Result<Prepared, Error> {
    match fs::metadata(&cfg.rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "rootfs {}: not a directory",
                cfg.rootfs.display()
            )))
        }
        Err(e) => {
            return Err(Error::Invalid(format!(
                "rootfs {}: {e}",
                cfg.rootfs.display()
            )))
        }
    }
    let read = |p: &str| fs::read_to_string(cfg.rootfs.join(p)).unwrap_or_default();
    let user = spec::resolve_user(cfg.user.as_deref(), &read("etc/passwd"), &read("etc/group"))?;
    let mut devices = Vec::new();
    for d in &cfg.devices {
        devices.push(device_from_host(&d.host, &d.container, &d.permissions)?);
    }
    if cfg.privileged {
        devices.extend(host_devices());
    }
    for b in &cfg.binds {
        if !b.source.exists() {
            return Err(Error::Invalid(format!(
                "invalid value for --volume: bind source path does not exist: {}",
                b.source.display()
            )));
        }
    }
    Ok(Prepared { user, devices })
}

/// The hostname a container gets.
fn hostname_for(cfg: &ContainerConfig, id: &str) -> String {
    if let Some(h) = &cfg.hostname {
        return h.clone();
    }
    if cfg.network == NetworkMode::Host {
        if let Ok(h) = nix::unistd::gethostname() {
            return h.to_string_lossy().into_owned();
        }
    }
    id[..12].to_string()
}

fn cgroups_path(cfg: &ContainerConfig, id: &str) -> String {
    format!("/{}/{id}", cfg.cgroup_parent)
}

/// The marker saying ocishim made a cgroup parent (so rm may remove it when empty).
fn parent_marker(ctx: &Context, cg: &ContainerCgroup) -> Option<(PathBuf, String)> {
    let (parent, _) = cg.path.rsplit_once('/')?;
    let key = format!("cgparent-{}", parent.replace('/', "%"));
    Some((ctx.store.root().join("cgroup-parents").join(&key), key))
}

/// Create the container's cgroup and write its limits (read back from the kernel). On a
/// refused value nothing is left.
fn setup_cgroup(ctx: &Context, cfg: &ContainerConfig, id: &str) -> Result<(), Error> {
    let cg = ContainerCgroup::at(&cgroups_path(cfg, id));
    let marker = parent_marker(ctx, &cg);
    if runtime_makes_cgroup(cfg, &cg, marker.as_ref().map(|(m, _)| m.as_path())) {
        tracing::debug!(%id, "no limits under a standing parent: the runtime makes the cgroup");
        return Ok(());
    }
    {
        let _lock = match &marker {
            Some((_, key)) => Some(ctx.store.lock(key)?),
            None => None,
        };
        // ocishim made the parent only if no hierarchy had it before.
        let parent = cg.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let parent_existed = cgroup::all_mounts().iter().any(|m| m.join(parent).exists());
        cg.create()?;
        if let (false, Some((m, _))) = (parent_existed, &marker) {
            let _ = fs::create_dir_all(m.parent().unwrap_or(Path::new("/")));
            let _ = fs::write(m, "");
        }
    }
    let applied = cgroup::plan(&cfg.resources, cg.version, cg.swap_accounting())
        .and_then(|writes| cg.apply(&writes));
    if let Err(e) = applied {
        remove_cgroup(ctx, &cg.path);
        return Err(e.into());
    }
    Ok(())
}

/// Whether the container's cgroup can be left to the runtime, which makes it from the
/// spec's cgroupsPath (and removes it at delete) as it would anyway: there are no limits
/// to write, and the parent stands in every hierarchy without ocishim's marker, so no
/// removal of an emptied parent that ocishim made can race with the runtime's mkdir.
fn runtime_makes_cgroup(
    cfg: &ContainerConfig,
    cg: &ContainerCgroup,
    marker: Option<&Path>,
) -> bool {
    let (Some(marker), Some((parent, _))) = (marker, cg.path.rsplit_once('/')) else {
        return false;
    };
    let mounts = cgroup::all_mounts();
    cfg.resources == crate::config::Resources::default()
        && !marker.exists()
        && !mounts.is_empty()
        && mounts.iter().all(|m| m.join(parent).is_dir())
}

/// Remove the container's cgroup everywhere, and its parent if ocishim made it and it is
/// now empty.
fn remove_cgroup(ctx: &Context, cgroups_path: &str) {
    if cgroups_path.is_empty() {
        return;
    }
    let cg = ContainerCgroup::at(cgroups_path);
    if let Err(e) = cg.remove() {
        tracing::warn!("{e}");
    }
    if let Some((m, key)) = parent_marker(ctx, &cg) {
        if m.exists() {
            if let Ok(_lock) = ctx.store.lock(&key) {
                cg.remove_parent_if_empty();
                let parent = cg.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                let gone = cgroup::all_mounts()
                    .iter()
                    .all(|mnt| !mnt.join(parent).exists());
                if gone {
                    let _ = fs::remove_file(&m);
                }
            }
        }
    }
}

/// Remove everything of a container that has stopped: cgroup, then the record and its
/// directory.
pub fn purge(ctx: &Context, rec: &Record) -> Result<(), Error> {
    remove_cgroup(ctx, &rec.ocishim.cgroups_path);
    detach_network(ctx, rec);
    ctx.store.remove(rec)?;
    Ok(())
}

/// Build the spec from the config and what the record says about the container (its
/// /etc files, its network namespace).
fn build_spec(
    cfg: &ContainerConfig,
    rec: &Record,
    prep: &Prepared,
) -> Result<oci_spec::runtime::Spec, Error> {
    let etc = EtcFiles {
        hostname: PathBuf::from(&rec.hostname_path),
        hosts: PathBuf::from(&rec.hosts_path),
        resolv_conf: PathBuf::from(&rec.resolv_conf_path),
    };
    let sandbox = &rec.network_settings.sandbox_key;
    Ok(spec::generate(&SpecInput {
        cfg,
        hostname: hostname_for(cfg, &rec.id),
        user: prep.user.clone(),
        devices: prep.devices.clone(),
        etc: Some(etc),
        cgroups_path: cgroups_path(cfg, &rec.id),
        cgroup_ns: sys::has_cgroup_ns(),
        netns: (!sandbox.is_empty() && cfg.network != NetworkMode::None)
            .then(|| PathBuf::from(sandbox)),
    })?)
}

/// `spec`: the config.json `run` would use, creating nothing.
pub fn spec_json(ctx: &Context, cfg: &ContainerConfig) -> Result<String, Error> {
    let prep = prepare(cfg)?;
    let id = store::new_id();
    let mut rec = Record::new(&id, "spec", cfg, now());
    set_paths(ctx, &mut rec);
    if let NetworkMode::Bridge(_) = cfg.network {
        rec.network_settings.sandbox_key = ctx.networks.netns_dir().join(&id).display().to_string();
    }
    let spec = build_spec(cfg, &rec, &prep)?;
    Ok(serde_json::to_string_pretty(&spec).expect("spec serializes"))
}

/// Write hostname, hosts, resolv.conf and bundle/config.json into the container dir.
fn write_bundle(
    ctx: &Context,
    rec: &Record,
    cfg: &ContainerConfig,
    prep: &Prepared,
) -> Result<(), Error> {
    let id = &rec.id;
    let dir = ctx.store.container_dir(id);
    let spec = build_spec(cfg, rec, prep)?;
    let hostname = spec.hostname().clone().unwrap_or_default();
    let ip = rec
        .network_settings
        .networks
        .values()
        .map(|e| e.ip_address.clone())
        .find(|ip| !ip.is_empty());
    let (hosts, resolv) = match &cfg.network {
        NetworkMode::Host => (
            fs::read_to_string("/etc/hosts")
                .unwrap_or_else(|_| dns::container_hosts(&hostname, None, &[])),
            dns::container_resolv_conf(
                &dns::read_host_resolv_conf(),
                true,
                &cfg.dns,
                &cfg.dns_search,
                &cfg.dns_options,
            ),
        ),
        // container:ID shares the other container's files (set as the record's paths).
        NetworkMode::Container(_) => (String::new(), String::new()),
        _ => (
            dns::container_hosts(&hostname, ip.as_deref(), &cfg.extra_hosts),
            dns::container_resolv_conf(
                &dns::read_host_resolv_conf(),
                false,
                &cfg.dns,
                &cfg.dns_search,
                &cfg.dns_options,
            ),
        ),
    };
    if let NetworkMode::Container(_) = cfg.network {
        let p = dir.join("hostname");
        fs::write(&p, format!("{hostname}\n"))
            .map_err(io_err(format!("writing {}", p.display())))?;
    } else {
        for (name, text) in [
            ("hostname", format!("{hostname}\n")),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ] {
            let p = dir.join(name);
            fs::write(&p, text).map_err(io_err(format!("writing {}", p.display())))?;
        }
    }
    let bundle = ctx.store.bundle_dir(id);
    fs::create_dir_all(&bundle).map_err(io_err(format!("creating {}", bundle.display())))?;
    let data = serde_json::to_vec_pretty(&spec).expect("spec serializes");
    let p = bundle.join("config.json");
    fs::write(&p, data).map_err(io_err(format!("writing {}", p.display())))?;
    Ok(())
}

/// Remove what create made besides the record: bundle, /etc files, runtime log, pid file.
fn remove_bundle(store: &Store, id: &str) {
    let dir = store.container_dir(id);
    let _ = fs::remove_dir_all(store.bundle_dir(id));
    for f in [
        "hostname",
        "hosts",
        "resolv.conf",
        "init.pid",
        "runtime.log",
    ] {
        let _ = fs::remove_file(dir.join(f));
    }
}

/// What the monitor reported about the runtime's create.
pub struct MonitorStarted {
    pub monitor_pid: i32,
    pub monitor_start_time: u64,
    pub pid: i32,
}

/// Where the container's stdout/stderr go: pipes the monitor relays into the json-file
/// log, the attached CLI's own (no log driver), or /dev/null.
fn output(cfg: &ContainerConfig, opts: CreateOpts) -> monitor::Output {
    if opts.attached && cfg.log_driver == LogDriver::None {
        monitor::Output::Inherit
    } else if cfg.log_driver == LogDriver::JsonFile {
        monitor::Output::Pipes
    } else {
        monitor::Output::Null
    }
}

/// Start the container's monitor, which runs the runtime's create (see
/// [`monitor::launch`]), and wait for its report. Err(message) inside carries the
/// runtime's error text.
fn launch_monitor(
    ctx: &Context,
    rec: &Record,
    output: monitor::Output,
    attached: bool,
) -> Result<Result<MonitorStarted, String>, Error> {
    let id = &rec.id;
    let store = &ctx.store;
    let rt = ctx.runtime_for(rec)?;
    let runtime_log = store.runtime_log_path(id);
    let pid_file = store.pid_file(id);
    let fds = monitor::LaunchFds::open(output).map_err(io_err("creating the monitor's pipes"))?;
    let create = rt.create_command(id, &store.bundle_dir(id), &pid_file, &runtime_log);
    let exe = std::env::current_exe().map_err(io_err("finding ocishim's own binary"))?;
    let mut args: Vec<std::ffi::OsString> = vec![
        monitor::ARGV_TAG.into(),
        "--root".into(),
        store.root().into(),
        "--data-root".into(),
        store.data_root().into(),
    ];
    if let Some(l) = &ctx.log_level {
        args.extend(["--log-level".into(), l.into()]);
    }
    if attached {
        args.push("--attached".into());
    }
    if let Some(fds) = fds.log_fds_arg() {
        args.extend(["--log-fds".into(), fds.into()]);
    }
    args.push(id.into());
    let prepared = monitor::Exec::from_command(&create).and_then(|create| {
        let mon = monitor::Exec::new(exe.as_os_str(), &args)?;
        Ok((create, mon, monitor::Env::current()?))
    });
    let (create, mon, env) = prepared.map_err(io_err("starting the monitor"))?;
    let (sync, child) = monitor::launch(fds, output, &create, &mon, &env, &pid_file)
        .map_err(io_err("starting the monitor"))?;
    let report = read_report(sync);
    sys::reap(child);
    Ok(match parse_report(&report?) {
        Report::Started { monitor_pid, pid } => Ok(MonitorStarted {
            monitor_pid,
            monitor_start_time: store::process_start_time(monitor_pid).unwrap_or(0),
            pid,
        }),
        Report::Failed(message) => Err(message),
        Report::CreateFailed { status, stderr } => {
            use std::os::unix::process::ExitStatusExt;
            let log = fs::read_to_string(&runtime_log).unwrap_or_default();
            Err(last_error(&log)
                .or_else(|| last_error(&stderr))
                .unwrap_or_else(|| {
                    let status = std::process::ExitStatus::from_raw(status);
                    format!("{} create exited with {status}", rt.name())
                }))
        }
    })
}

/// What the monitor writes on the sync pipe: up to its EOF, or up to a complete "K" line
/// (the monitor then execs `ocishim __monitor`, which closes the pipe; that need not be
/// waited for).
fn read_report(r: OwnedFd) -> Result<Vec<u8>, Error> {
    let deadline = Instant::now() + CREATE_TIMEOUT;
    let mut f = fs::File::from(r);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n == 0 {
            return Err(Error::Monitor(
                "timed out waiting for the runtime's create".into(),
            ));
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(io_err("waiting for the monitor")(e));
        }
        match f.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if started(&buf) {
                    return Ok(buf);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("reading the monitor's report")(e)),
        }
    }
}

/// Whether `buf` holds a complete "K" line before any "F" or "E".
fn started(buf: &[u8]) -> bool {
    for line in buf.split_inclusive(|&b| b == b'\n') {
        match line.first() {
            Some(b'K') => return line.ends_with(b"\n"),
            Some(b'F' | b'E') => return false,
            _ => {}
        }
    }
    false
}

/// What the monitor reported on its sync pipe.
#[derive(Debug, PartialEq)]
enum Report {
    /// "M<monitor pid>\n" then "K<container pid>\n".
    Started { monitor_pid: i32, pid: i32 },
    /// "F<wait status>\n" and the runtime's stderr: its create failed.
    CreateFailed { status: i32, stderr: String },
    /// "E<message>" (after a newline), or nothing at all.
    Failed(String),
}

fn parse_report(buf: &[u8]) -> Report {
    let text = String::from_utf8_lossy(buf);
    let mut monitor_pid = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let (tag, rest) = line.split_at(1.min(line.len()));
        match tag {
            "M" => monitor_pid = rest.trim().parse().unwrap_or(0),
            "K" => {
                return Report::Started {
                    monitor_pid,
                    pid: rest.trim().parse().unwrap_or(0),
                }
            }
            "F" => {
                return Report::CreateFailed {
                    status: rest.trim().parse().unwrap_or(-1),
                    stderr: text[at + line.len()..].to_string(),
                }
            }
            "E" => return Report::Failed(text[at + 1..].trim().to_string()),
            _ => {}
        }
        at += line.len();
    }
    Report::Failed(format!(
        "the monitor exited without reporting{}",
        if text.is_empty() {
            String::new()
        } else {
            format!(": {}", text.trim())
        }
    ))
}

/// What create does about the network, decided before anything is made.
enum NetPlan {
    /// none (the runtime makes a namespace with lo) or host.
    Nothing,
    Bridge(crate::network::NetworkDef),
    Join(JoinTarget),
}

struct JoinTarget {
    sandbox: String,
    hosts: String,
    resolv: String,
}

fn plan_network(ctx: &Context, cfg: &ContainerConfig) -> Result<NetPlan, Error> {
    Ok(match &cfg.network {
        NetworkMode::None | NetworkMode::Host => NetPlan::Nothing,
        NetworkMode::Bridge(name) => NetPlan::Bridge(ctx.networks.get(name)?),
        NetworkMode::Container(target) => {
            let tid = ctx.store.resolve(target)?;
            let t = refresh(ctx, ctx.store.read(&tid)?, false);
            if !t.state.running {
                return Err(Error::Invalid(format!(
                    "cannot join network of a non running container: {tid}"
                )));
            }
            let sandbox = if t.network_settings.sandbox_key.is_empty() {
                format!("/proc/{}/ns/net", t.state.pid)
            } else {
                t.network_settings.sandbox_key.clone()
            };
            NetPlan::Join(JoinTarget {
                sandbox,
                hosts: t.hosts_path.clone(),
                resolv: t.resolv_conf_path.clone(),
            })
        }
    })
}

/// Release what a bridge network gave the container (veth, namespace, address).
fn detach_network(ctx: &Context, rec: &Record) {
    if !rec.host_config.network_mode.starts_with("container:")
        && !matches!(rec.host_config.network_mode.as_str(), "none" | "host")
        && !rec.network_settings.sandbox_key.is_empty()
    {
        let net = rec.host_config.network_mode.clone();
        if let Err(e) =
            ctx.networks
                .detach(&net, &rec.id, Path::new(&rec.network_settings.sandbox_key))
        {
            tracing::warn!(id = %rec.id, "network teardown: {e}");
        }
    }
}

/// The record's file paths in the container directory.
fn set_paths(ctx: &Context, rec: &mut Record) {
    let id = rec.id.clone();
    let dir = ctx.store.container_dir(&id);
    rec.log_path = match rec.host_config.log_config.typ.as_str() {
        "none" => String::new(),
        _ => ctx.store.log_path(&id).display().to_string(),
    };
    rec.resolv_conf_path = dir.join("resolv.conf").display().to_string();
    rec.hostname_path = dir.join("hostname").display().to_string();
    rec.hosts_path = dir.join("hosts").display().to_string();
    rec.ocishim.bundle = ctx.store.bundle_dir(&id).display().to_string();
    rec.ocishim.cgroups_path = rec
        .ocishim
        .config
        .as_ref()
        .map(|c| cgroups_path(c, &id))
        .unwrap_or_default();
    if let Some(c) = &rec.ocishim.config {
        rec.ocishim.rootfs = c.rootfs.display().to_string();
    }
}

/// Options of create/run that are not part of the container's config.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOpts {
    /// The CLI stays attached (run without -d): the monitor does not auto-remove.
    pub attached: bool,
}

/// Record + bundle + runtime create through a new monitor. On a runtime failure the
/// record is kept with the error (unless --rm) and StartFailed is returned.
pub fn create(ctx: &Context, cfg: ContainerConfig, opts: CreateOpts) -> Result<String, Error> {
    let (rec, m) = create_monitored(ctx, cfg, opts)?;
    record_created(ctx, &rec, &m)?;
    Ok(rec.id)
}

/// Everything of create but recording the monitor (run records it with the start).
fn create_monitored(
    ctx: &Context,
    cfg: ContainerConfig,
    opts: CreateOpts,
) -> Result<(Record, MonitorStarted), Error> {
    let runtime = Runtime::new(&ctx.runtime, ctx.runtime_root.clone())?;
    let prep = prepare(&cfg)?;
    let net = plan_network(ctx, &cfg)?;
    let id = store::new_id();
    ctx.store.init()?;
    let name = ctx.store.reserve_name_for(cfg.name.as_deref(), &id)?;
    tracing::debug!(%id, "name reserved");
    if let Err(e) = setup_cgroup(ctx, &cfg, &id) {
        ctx.store.release_name(&name, &id);
        return Err(e);
    }
    let dir = ctx.store.container_dir(&id);
    let mut rec = Record::new(&id, &name, &cfg, now());
    set_paths(ctx, &mut rec);
    rec.host_config.runtime = runtime.name().to_string();
    rec.ocishim.runtime = runtime.path().display().to_string();
    rec.ocishim.runtime_root = runtime.root().map(|p| p.display().to_string());
    match &net {
        NetPlan::Join(target) => {
            rec.network_settings.sandbox_key = target.sandbox.clone();
            rec.hosts_path = target.hosts.clone();
            rec.resolv_conf_path = target.resolv.clone();
        }
        NetPlan::Bridge(def) => match ctx.networks.attach(def, &id) {
            Ok(a) => {
                rec.network_settings.sandbox_key = a.netns.display().to_string();
                rec.network_settings.networks.insert(
                    a.network.clone(),
                    crate::record::EndpointSettings {
                        ip_address: a.ip.to_string(),
                        ip_prefix_len: a.prefix,
                        gateway: a.gateway.to_string(),
                        mac_address: a.mac.clone(),
                    },
                );
                tracing::debug!(%id, ip = %a.ip, "network attached");
            }
            Err(e) => {
                ctx.store.release_name(&name, &id);
                remove_cgroup(ctx, &cgroups_path(&cfg, &id));
                return Err(e.into());
            }
        },
        NetPlan::Nothing => {}
    }
    if let Err(e) = fs::create_dir_all(&dir)
        .map_err(io_err(format!("creating {}", dir.display())))
        .and_then(|_| ctx.store.write(&rec).map_err(Error::from))
    {
        let _ = fs::remove_dir_all(&dir);
        ctx.store.release_name(&name, &id);
        remove_cgroup(ctx, &cgroups_path(&cfg, &id));
        detach_network(ctx, &rec);
        return Err(e);
    }
    tracing::debug!(%id, %name, "record written");
    match setup_and_create(ctx, &rec, &cfg, &prep, opts) {
        Ok(m) => Ok((rec, m)),
        Err(e) => Err(fail_start(ctx, &rec, e)),
    }
}

/// Bundle, then the runtime's create through the container's monitor.
fn setup_and_create(
    ctx: &Context,
    rec: &Record,
    cfg: &ContainerConfig,
    prep: &Prepared,
    opts: CreateOpts,
) -> Result<MonitorStarted, Error> {
    write_bundle(ctx, rec, cfg, prep)?;
    tracing::debug!(id = %rec.id, "bundle written");
    match launch_monitor(ctx, rec, output(cfg, opts), opts.attached)? {
        Ok(m) => {
            tracing::debug!(id = %rec.id, pid = m.pid, monitor = m.monitor_pid, "created");
            Ok(m)
        }
        Err(message) => Err(Error::StartFailed {
            id: Some(rec.id.clone()),
            message,
            cli_status: 125,
        }),
    }
}

/// The record's state once the runtime has created the container under monitor `m`.
fn set_created(r: &mut Record, m: &MonitorStarted) {
    r.state.status = "created".into();
    r.state.pid = m.pid;
    r.state.error.clear();
    r.state.exit_code = 0;
    set_monitor(r, m);
}

fn set_monitor(r: &mut Record, m: &MonitorStarted) {
    r.ocishim.monitor_pid = m.monitor_pid;
    r.ocishim.monitor_start_time = m.monitor_start_time;
    r.ocishim.monitor_gone = false;
    r.ocishim.runtime_deleted = false;
}

fn record_created(ctx: &Context, rec: &Record, m: &MonitorStarted) -> Result<(), Error> {
    match ctx.store.update(&rec.id, |r| set_created(r, m)) {
        Ok(_) => Ok(()),
        Err(e) => Err(fail_start(ctx, rec, e.into())),
    }
}

/// Undo a failed create/start: runtime state, monitor, bundle; keep the record with the
/// error and docker's exit code (or remove it all with --rm). Returns the error to report.
fn fail_start(ctx: &Context, rec: &Record, err: Error) -> Error {
    let raw = match &err {
        Error::StartFailed { message, .. } => message.clone(),
        Error::Runtime(e) => e.message(),
        other => other.to_string(),
    };
    let failure = exit_code::translate(&raw, &rec.path);
    tracing::debug!(id = %rec.id, error = %failure.message, "create/start failed, undoing");
    if let Ok(rt) = ctx.runtime_for(rec) {
        let _ = rt.kill(&rec.id, "KILL");
        let _ = rt.delete_if_exists(&rec.id, true);
    }
    if let Ok(r) = ctx.store.read(&rec.id) {
        if r.ocishim.monitor_pid > 0 {
            sys::wait_pid_gone(
                r.ocishim.monitor_pid,
                r.ocishim.monitor_start_time,
                KILL_TIMEOUT,
            );
        }
    }
    remove_bundle(&ctx.store, &rec.id);
    let auto_remove = rec.host_config.auto_remove;
    if auto_remove {
        let _ = purge(ctx, rec);
    } else {
        remove_cgroup(ctx, &rec.ocishim.cgroups_path);
        detach_network(ctx, rec);
        let _ = ctx.store.update(&rec.id, |r| {
            r.state
                .set_start_failed(failure.exit_code, failure.message.clone());
            r.ocishim.monitor_pid = 0;
            r.ocishim.monitor_start_time = 0;
        });
    }
    match err {
        Error::StartFailed { .. } | Error::Runtime(_) => Error::StartFailed {
            id: (!auto_remove).then(|| rec.id.clone()),
            message: failure.message,
            cli_status: failure.cli_status,
        },
        // Our own failures (I/O, spec) keep their text; the record still says what failed.
        other => Error::StartFailed {
            id: (!auto_remove).then(|| rec.id.clone()),
            message: other.to_string(),
            cli_status: 125,
        },
    }
}

/// Whether the record's monitor is alive.
pub fn monitor_alive(rec: &Record) -> bool {
    store::process_alive(rec.ocishim.monitor_pid, rec.ocishim.monitor_start_time)
}

/// `start`: runtime start of a created container; a stopped or failed one is created
/// again first (docker's `start` of an exited container).
pub fn start(ctx: &Context, query: &str) -> Result<String, Error> {
    let id = ctx.store.resolve(query)?;
    start_id(ctx, &id, CreateOpts::default())
}

fn start_id(ctx: &Context, id: &str, opts: CreateOpts) -> Result<String, Error> {
    let mut rec = ctx.store.read(id)?;
    if matches!(rec.state.status.as_str(), "running" | "paused") && monitor_alive(&rec) {
        return Ok(rec.id);
    }
    if !(rec.state.status == "created" && monitor_alive(&rec)) {
        // Nothing of the runtime's exists: set it up again from the stored config.
        let cfg = rec
            .ocishim
            .config
            .clone()
            .ok_or_else(|| Error::Monitor("the record has no stored config".into()))?;
        let prep = prepare(&cfg)?;
        let _ = fs::remove_file(ctx.store.runtime_log_path(id));
        setup_cgroup(ctx, &cfg, id)?;
        let m = match setup_and_create(ctx, &rec, &cfg, &prep, opts) {
            Ok(m) => m,
            Err(e) => return Err(fail_start(ctx, &rec, e)),
        };
        record_created(ctx, &rec, &m)?;
        rec = ctx.store.read(id)?;
    }
    runtime_start(ctx, &rec, None)
}

/// The runtime's start of a created container; `created` is the monitor of a create that
/// has not been recorded yet (run records both in one write).
fn runtime_start(
    ctx: &Context,
    rec: &Record,
    created: Option<&MonitorStarted>,
) -> Result<String, Error> {
    let id = &rec.id;
    let rt = ctx.runtime_for(rec)?;
    let lock = ctx.store.lock(id)?;
    let started_at = now();
    tracing::debug!(%id, "runtime start");
    let pid = created.map(|m| m.pid).unwrap_or(rec.state.pid);
    match rt.start(id) {
        Ok(()) => {
            let mut r = ctx.store.read(id)?;
            if let Some(m) = created {
                set_monitor(&mut r, m);
            }
            // The monitor may already have recorded a very quick exit: keep it.
            if r.state.status == "created" {
                r.state.set_running(pid, started_at);
            }
            ctx.store.write(&r)?;
            drop(lock);
            tracing::debug!(%id, "started");
            Ok(rec.id.clone())
        }
        Err(e) => {
            // fail_start finds the monitor through the record.
            if let (Some(m), Ok(mut r)) = (created, ctx.store.read(id)) {
                set_monitor(&mut r, m);
                let _ = ctx.store.write(&r);
            }
            drop(lock);
            Err(fail_start(ctx, rec, Error::Runtime(e)))
        }
    }
}

/// `create` then `start`. Returns the ID.
pub fn run(ctx: &Context, cfg: ContainerConfig, opts: CreateOpts) -> Result<String, Error> {
    let (rec, m) = create_monitored(ctx, cfg, opts)?;
    runtime_start(ctx, &rec, Some(&m))
}

/// Wait for an attached container: print its log as it grows, forward signals, and
/// return its exit code once the monitor has recorded it.
pub fn attach_wait(ctx: &Context, id: &str) -> Result<i32, Error> {
    let rec = ctx.store.read(id)?;
    let mfd = sys::pidfd_open(rec.ocishim.monitor_pid).map_err(io_err("watching the monitor"))?;
    let log_path = PathBuf::from(&rec.log_path);
    let mut reader = None;
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut print = |e: &log_file::LogEntry| {
        use std::io::Write;
        let _ = if e.stream == "stderr" {
            stderr.lock().write_all(e.log.as_bytes())
        } else {
            stdout.lock().write_all(e.log.as_bytes())
        };
    };
    signals::install();
    let rt = ctx.runtime_for(&rec)?;
    loop {
        let done = match &mfd {
            Some(fd) => sys::pidfd_wait(fd, Duration::from_millis(20)),
            None => true,
        };
        if let Some(sig) = signals::take() {
            let _ = rt.kill(id, &sig.to_string());
        }
        if !rec.log_path.is_empty() {
            if reader.is_none() {
                reader = log_file::LogReader::open(&log_path).ok();
            }
            if let Some(r) = reader.as_mut() {
                r.read_available(&mut print)
                    .map_err(io_err("reading the log"))?;
            }
        }
        if done {
            break;
        }
    }
    let rec = ctx.store.read(id)?;
    Ok(rec.state.exit_code)
}

/// Signal forwarding for attached runs (docker's sig-proxy).
mod signals {
    use std::sync::atomic::{AtomicI32, Ordering};

    static PENDING: AtomicI32 = AtomicI32::new(0);

    extern "C" fn handler(sig: libc::c_int) {
        PENDING.store(sig, Ordering::SeqCst);
    }

    pub fn install() {
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ] {
            // SAFETY: the handler only stores to an atomic.
            unsafe {
                libc::signal(sig, handler as *const () as libc::sighandler_t);
            }
        }
    }

    pub fn take() -> Option<i32> {
        match PENDING.swap(0, Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

/// What the container's cgroup freezer says (None without a cgroup path or freezer file).
fn frozen(cgroups_path: &str) -> Option<bool> {
    (!cgroups_path.is_empty())
        .then(|| ContainerCgroup::at(cgroups_path).frozen())
        .flatten()
}

/// The record as of now: Paused from the cgroup freezer; a running container whose monitor
/// is gone is checked with the runtime (`query_runtime`), so inspect tells the truth.
pub fn refresh(ctx: &Context, mut rec: Record, query_runtime: bool) -> Record {
    let live = matches!(rec.state.status.as_str(), "running" | "paused" | "created")
        && rec.ocishim.monitor_pid > 0;
    if !live {
        return rec;
    }
    let alive = monitor_alive(&rec);
    rec.ocishim.monitor_gone = !alive;
    // Paused is not recorded by pause/resume: the container's cgroup freezer says it (one
    // small file read), so it is true whoever paused the container.
    if matches!(rec.state.status.as_str(), "running" | "paused") {
        if let Some(frozen) = frozen(&rec.ocishim.cgroups_path) {
            rec.state.set_paused(frozen);
        }
    }
    if !alive || query_runtime {
        let state = ctx
            .runtime_for(&rec)
            .ok()
            .and_then(|rt| rt.state_opt(&rec.id).ok());
        match state.flatten() {
            Some(s) if s.status == "paused" => rec.state.set_paused(true),
            Some(s) if s.status == "running" && rec.state.status != "created" => {
                rec.state.set_paused(false)
            }
            Some(s) if s.status == "created" || s.status == "running" => {}
            _ if alive => {}
            _ => {
                rec.state
                    .set_exited(rec.state.exit_code, rec.state.finished_at.clone());
                if rec.state.error.is_empty() {
                    rec.state.error = "the monitor is gone: exit status unknown".into();
                }
            }
        }
    }
    rec
}

pub fn inspect(ctx: &Context, query: &str) -> Result<serde_json::Value, Error> {
    let id = ctx.store.resolve(query)?;
    let rec = refresh(ctx, ctx.store.read(&id)?, true);
    Ok(rec.to_inspect())
}

/// A running or paused container: its ID, whether it is paused, and its runtime.
fn running_container(ctx: &Context, query: &str) -> Result<(String, bool, Runtime), Error> {
    let id = ctx.store.resolve(query)?;
    // The usual case, a live monitor, from a brief read of the record: what `refresh`
    // would conclude for it (paused from the freezer, no runtime query).
    if let Ok(b) = ctx.store.read_as::<crate::record::Brief>(&id) {
        if matches!(b.state.status.as_str(), "running" | "paused")
            && b.ocishim.monitor_pid > 0
            && store::process_alive(b.ocishim.monitor_pid, b.ocishim.monitor_start_time)
        {
            let paused = frozen(&b.ocishim.cgroups_path).unwrap_or(b.state.paused);
            let root = b.ocishim.runtime_root.map(PathBuf::from);
            return Ok((b.id, paused, Runtime::new(&b.ocishim.runtime, root)?));
        }
    }
    let rec = refresh(ctx, ctx.store.read(&id)?, false);
    if !matches!(rec.state.status.as_str(), "running" | "paused") {
        return Err(Error::NotRunning(id));
    }
    let rt = ctx.runtime_for(&rec)?;
    Ok((rec.id, rec.state.paused, rt))
}

pub fn pause(ctx: &Context, query: &str) -> Result<String, Error> {
    let (id, paused, rt) = running_container(ctx, query)?;
    if paused {
        return Err(Error::AlreadyPaused(id));
    }
    rt.pause(&id)?;
    Ok(id)
}

pub fn resume(ctx: &Context, query: &str) -> Result<String, Error> {
    let (id, paused, rt) = running_container(ctx, query)?;
    if !paused {
        return Err(Error::NotPaused(id));
    }
    rt.resume(&id)?;
    Ok(id)
}

pub fn kill(ctx: &Context, query: &str, signal: &str) -> Result<String, Error> {
    let sig = sys::parse_signal(signal).ok_or_else(|| Error::BadSignal(signal.to_string()))?;
    let (id, _, rt) = running_container(ctx, query)?;
    rt.kill(&id, &sig.to_string())?;
    Ok(id)
}

/// `rm`: refuse a live container unless forced; kill it, let the monitor record the exit
/// and delete the runtime state, then remove bundle, log and record.
pub fn remove(ctx: &Context, query: &str, force: bool) -> Result<Option<String>, Error> {
    let id = match ctx.store.resolve(query) {
        Ok(id) => id,
        // docker >= 20.10: removing a missing container by full ID is not an error.
        Err(StoreError::NotFound(_))
            if query.len() == 64 && query.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    let rec = refresh(ctx, ctx.store.read(&id)?, false);
    let status = rec.state.status.clone();
    let live = matches!(status.as_str(), "running" | "paused");
    if live && !force {
        return Err(Error::RemoveRunning { id, status });
    }
    let rt = ctx.runtime_for(&rec);
    let alive = monitor_alive(&rec);
    if alive || live {
        if let Ok(rt) = &rt {
            let _ = rt.kill(&id, "KILL");
            if rec.state.paused || status == "paused" {
                let _ = rt.resume(&id);
            }
        }
        if alive {
            sys::wait_pid_gone(
                rec.ocishim.monitor_pid,
                rec.ocishim.monitor_start_time,
                KILL_TIMEOUT,
            );
        } else if rec.state.pid > 0 {
            if let Ok(Some(fd)) = sys::pidfd_open(rec.state.pid) {
                sys::pidfd_wait(&fd, KILL_TIMEOUT);
            }
        }
    }
    let rec = ctx.store.read(&id).unwrap_or(rec);
    if !rec.ocishim.runtime_deleted {
        if let Ok(rt) = &rt {
            rt.delete_if_exists(&id, true)?;
        }
    }
    purge(ctx, &rec)?;
    Ok(Some(id))
}

/// `update`: change a container's limits live (docker update): validated as at run,
/// written to its cgroup and read back, then recorded (HostConfig, stored config, bundle).
pub fn update(
    ctx: &Context,
    query: &str,
    raw: &crate::config::RawOptions,
) -> Result<String, Error> {
    let id = ctx.store.resolve(query)?;
    let rec = ctx.store.read(&id)?;
    let mut cfg = rec
        .ocishim
        .config
        .clone()
        .ok_or_else(|| Error::Monitor("the record has no stored config".into()))?;
    let new = raw.resources_over(&cfg.resources, &crate::config::HostFacts::detect())?;
    let cg = ContainerCgroup::at(&rec.ocishim.cgroups_path);
    if !cg.existing_dirs().is_empty() {
        let writes = cgroup::plan(&new, cg.version, cg.swap_accounting())?;
        cg.apply(&writes)?;
    }
    cfg.resources = new;
    let bundle_cfg = ctx.store.bundle_dir(&id).join("config.json");
    if bundle_cfg.exists() {
        let prep = prepare(&cfg)?;
        let spec = build_spec(&cfg, &rec, &prep)?;
        let data = serde_json::to_vec_pretty(&spec).expect("spec serializes");
        store::write_atomic(&bundle_cfg, &data)
            .map_err(io_err(format!("writing {}", bundle_cfg.display())))?;
    }
    ctx.store.update(&id, |r| {
        r.host_config.set_resources(&cfg.resources);
        r.ocishim.config = Some(cfg.clone());
    })?;
    Ok(id)
}

/// `stats`: the cgroup's figures for a container.
pub fn stats(ctx: &Context, query: &str) -> Result<(Record, cgroup::Stats), Error> {
    let id = ctx.store.resolve(query)?;
    let rec = ctx.store.read(&id)?;
    let st = if matches!(rec.state.status.as_str(), "running" | "paused") {
        ContainerCgroup::at(&rec.ocishim.cgroups_path).stats()
    } else {
        cgroup::Stats::default()
    };
    Ok((rec, st))
}

/// `logs`: print the log; with `follow`, until the container has exited.
pub fn logs(ctx: &Context, query: &str, follow: bool) -> Result<(), Error> {
    let id = ctx.store.resolve(query)?;
    let rec = ctx.store.read(&id)?;
    if rec.log_path.is_empty() {
        return Err(Error::NoLogs);
    }
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut print = |e: &log_file::LogEntry| {
        use std::io::Write;
        let _ = if e.stream == "stderr" {
            stderr.lock().write_all(e.log.as_bytes())
        } else {
            stdout.lock().write_all(e.log.as_bytes())
        };
    };
    let mut reader = match log_file::LogReader::open(Path::new(&rec.log_path)) {
        Ok(r) => Some(r),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("opening the log")(e)),
    };
    let mfd = if follow && monitor_alive(&rec) {
        sys::pidfd_open(rec.ocishim.monitor_pid).ok().flatten()
    } else {
        None
    };
    loop {
        let done = match &mfd {
            Some(fd) => sys::pidfd_wait(fd, Duration::from_millis(50)),
            None => true,
        };
        if reader.is_none() {
            reader = log_file::LogReader::open(Path::new(&rec.log_path)).ok();
        }
        if let Some(r) = reader.as_mut() {
            r.read_available(&mut print)
                .map_err(io_err("reading the log"))?;
        }
        if done {
            return Ok(());
        }
    }
}

/// The status column of `ps`, as docker words it.
pub fn human_status(rec: &Record, now: SystemTime) -> String {
    let ago = |t: &str| {
        log_file::parse_time(t).map(|t| human_duration(now.duration_since(t).unwrap_or_default()))
    };
    match rec.state.status.as_str() {
        "running" | "paused" => {
            let up = ago(&rec.state.started_at).unwrap_or_default();
            let mut s = format!("Up {up}");
            if rec.state.paused {
                s.push_str(" (Paused)");
            }
            if rec.ocishim.monitor_gone {
                s.push_str(" (monitor gone)");
            }
            s
        }
        "exited" => format!(
            "Exited ({}) {} ago",
            rec.state.exit_code,
            ago(&rec.state.finished_at).unwrap_or_default()
        ),
        "created" => "Created".into(),
        other => {
            let mut c = other.to_string();
            if let Some(f) = c.get_mut(0..1) {
                f.make_ascii_uppercase();
            }
            c
        }
    }
}

/// docker's HumanDuration.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
    }

    #[test]
    fn monitor_reports() {
        assert_eq!(
            parse_report(b"M12\nK34\n"),
            Report::Started {
                monitor_pid: 12,
                pid: 34
            }
        );
        // The runtime's stderr after F is taken whole, even lines that look like tags.
        assert_eq!(
            parse_report(b"M12\nF256\nK1\nerror: boom\n"),
            Report::CreateFailed {
                status: 256,
                stderr: "K1\nerror: boom\n".into()
            }
        );
        let failed: [(&[u8], &str); 4] = [
            (
                b"M12\n\nEmonitor: fork: errno 11",
                "monitor: fork: errno 11",
            ),
            (b"\nEmonitor: setsid: errno 1", "monitor: setsid: errno 1"),
            (b"", "the monitor exited without reporting"),
            (b"M12\n", "the monitor exited without reporting: M12"),
        ];
        for (report, message) in failed {
            assert_eq!(parse_report(report), Report::Failed(message.into()));
        }
        // The CLI stops reading at a whole K line; before it, or after F/E, it reads on.
        assert!(started(b"M12\nK34\n"));
        assert!(!started(b"M12\nK3"));
        assert!(!started(b"M12\n"));
        assert!(!started(b"M12\nF256\nK1\n"));
        assert!(!started(b"M12\n\nEx\nK1\n"));
    }
}
