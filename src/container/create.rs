//! `create`: a sequence of named steps; each step that makes something registers its undo
//! on the [`Rollback`] guard before the next step runs. On any error the guard undoes in
//! reverse order; a failed create keeps its record (docker's "created" with `Error` and
//! `ExitCode`) unless `--rm`, and an undo that fails is kept in that `Error` too.
//!
//! | step      | makes                                                  | undo                                        |
//! |-----------|--------------------------------------------------------|---------------------------------------------|
//! | `name`    | the name reservation                                   | release it (unless a kept record owns it)   |
//! | `record`  | the container directory and `config.v2.json`, naming this process its creator (written again once the network is attached) | removed before the network step; kept with the error after it; removed with `--rm` |
//! | `cgroup`  | the cgroup in every hierarchy, limits written, read back | remove it (and a parent ocishim made)     |
//! | `userns`  | `--userns auto`: the container's id range              | release it                                  |
//! | `network` | address, netns, veth (bridge networks)                 | detach: veth, netns, address                |
//! | `rootfs`  | an image's overlay; `--userns auto`: idmapped rootfs    | unmount, remove its directories             |
//! | `bundle`  | hostname, hosts, resolv.conf, bundle/config.json       | remove them                                 |
//! | `monitor` | the monitor and the runtime's create                   | kill, runtime delete, wait for the monitor  |
//!
//! `run` goes on with the runtime's start on the same guard (see `start.rs`).

use std::cell::Cell;
use std::fs;
use std::rc::Rc;
use std::time::Duration;

use super::bundle::{self, set_paths};
use super::images::{self, RunImage};
use super::prepare::{cgroups_path, prepare, Prepared};
use super::rollback::Rollback;
use super::{now, refresh, Context};
use crate::cgroup::{self, ContainerCgroup};
use crate::config::{ContainerConfig, LogDriver, NetworkMode, UsernsMode};
use crate::error::{io_err, Error};
use crate::exit_code;
use crate::image::rootfs::{self, Idmap, Overlay};
use crate::image::ImageError;
use crate::monitor::{self, protocol};
use crate::network::NetworkDef;
use crate::record::{Creator, EndpointSettings, Record};
use crate::runtime::{last_error, Runtime};
use crate::security::userns;
use crate::store;
use crate::sys::failpoint;
use crate::teardown;

/// How long a CLI waits for a monitor to report the runtime's create.
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);

/// The steps' names, as the guard and the logs know them.
pub mod step {
    pub const NAME: &str = "name";
    pub const CGROUP: &str = "cgroup";
    pub const USERNS: &str = "userns";
    pub const NETWORK: &str = "network";
    pub const RECORD: &str = "record";
    pub const ROOTFS: &str = "rootfs";
    pub const BUNDLE: &str = "bundle";
    pub const MONITOR: &str = "monitor";
}

/// Options of create/run that are not part of the container's config.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOpts {
    /// The CLI stays attached (run without -d): the monitor does not auto-remove.
    pub attached: bool,
    /// The runtime starts the container as it creates it (`run`: its `run --detach`, one
    /// runtime process where create + start take two, each with its own start-up).
    pub start: bool,
}

/// What the monitor reported about the runtime's create.
#[derive(Debug, Clone, Copy)]
pub struct MonitorStarted {
    pub monitor_pid: i32,
    pub monitor_start_time: u64,
    pub pid: i32,
}

/// What create does about the network, decided before anything is made.
pub enum NetPlan {
    /// none (the runtime makes a namespace with lo) or host.
    Nothing,
    Bridge(NetworkDef),
    Join(JoinTarget),
}

pub struct JoinTarget {
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
                return Err(Error::JoinNotRunning(tid));
            }
            // Its init's namespace: a bridge network's namespace has no file of its own.
            NetPlan::Join(JoinTarget {
                sandbox: format!("/proc/{}/ns/net", t.state.pid),
                hosts: t.hosts_path.clone(),
                resolv: t.resolv_conf_path.clone(),
            })
        }
    })
}

/// `create`: the steps, then the record says `created`. Returns the ID.
pub fn create(ctx: &Context, cfg: ContainerConfig, opts: CreateOpts) -> Result<String, Error> {
    let (rec, m, rb) = create_monitored(ctx, cfg, opts)?;
    let recorded = ctx.store.update(&rec.id, |r| {
        set_created(r, &m);
        set_network(r, &rec);
    });
    if let Err(e) = recorded {
        return Err(fail(ctx, &rec, rb, e.into()));
    }
    rb.commit();
    Ok(rec.id)
}

/// Everything of create but recording the monitor (run records it with the start). The
/// guard comes back uncommitted: the caller commits it once its own part succeeded.
pub(super) fn create_monitored(
    ctx: &Context,
    mut cfg: ContainerConfig,
    opts: CreateOpts,
) -> Result<(Record, MonitorStarted, Rollback<'_>), Error> {
    // Checks before anything exists: bad input leaves nothing behind.
    let runtime = Runtime::new(&ctx.runtime, ctx.runtime_root.clone())?;
    let id = store::new_id();
    // From the image's lookup (or pull) to its rootfs step, no prune may remove its layers.
    let _using = if cfg.from_image {
        Some(images::use_lock(ctx)?)
    } else {
        None
    };
    let image = image_for(ctx, &mut cfg, &id)?;
    let layers = image.as_ref().map(|i| i.layers.as_slice()).unwrap_or(&[]);
    let prep = prepare(&cfg, layers)?;
    if idmapped_dir(&cfg).is_some() {
        // The runtime's root is the idmapped mount of the directory, made at create.
        cfg.rootfs = teardown::overlay_dirs(&ctx.store, &id).target;
    }
    let net = plan_network(ctx, &cfg)?;
    ctx.store.init()?;
    let mut rb = Rollback::new();
    let mut rec = None;
    let plan = Plan {
        cfg: &cfg,
        prep: &prep,
        image: image.as_ref(),
        runtime: &runtime,
        id: &id,
        opts,
    };
    match steps(ctx, &plan, net, &mut rb, &mut rec) {
        Ok(m) => Ok((rec.expect("the record step ran"), m, rb)),
        Err(e) => match rec {
            Some(rec) => Err(fail(ctx, &rec, rb, e)),
            None => {
                // Before the record: nothing to keep; undo failures are logged.
                rb.undo();
                Err(e)
            }
        },
    }
}

/// What create checked and resolved before making anything.
struct Plan<'p> {
    cfg: &'p ContainerConfig,
    prep: &'p Prepared,
    image: Option<&'p RunImage>,
    runtime: &'p Runtime,
    id: &'p str,
    opts: CreateOpts,
}

/// The image of a container made from IMAGE (its config merged into `cfg`, whose rootfs
/// becomes the container's overlay); None for --rootfs.
pub(super) fn image_for(
    ctx: &Context,
    cfg: &mut ContainerConfig,
    id: &str,
) -> Result<Option<RunImage>, Error> {
    if !cfg.from_image {
        return Ok(None);
    }
    let entrypoint_given = !cfg.entrypoint.is_empty();
    let image = images::for_run(ctx, cfg, entrypoint_given)?;
    cfg.rootfs = teardown::overlay_dirs(&ctx.store, id).target;
    Ok(Some(image))
}

/// The steps of create, in order (the README's data flow names the same).
fn steps<'a>(
    ctx: &'a Context,
    p: &Plan,
    net: NetPlan,
    rb: &mut Rollback<'a>,
    out: &mut Option<Record>,
) -> Result<MonitorStarted, Error> {
    let name = reserve_name(ctx, p.cfg, p.id, rb)?;
    failpoint("create::name");
    // The record comes first, naming this process as its creator: everything made after
    // it is named from the ID, so a create killed at any point leaves a record from
    // which `rm -f` and `gc` find all of it.
    let mut rec = new_record(ctx, p.id, &name, p.cfg, p.runtime);
    if let NetPlan::Bridge(_) = &net {
        rec.network_settings.sandbox_key =
            ctx.networks.netns_dir().join(p.id).display().to_string();
    }
    write_record(ctx, &rec, rb)?;
    failpoint("create::record");
    make_cgroup(ctx, p.cfg, p.id, rb)?;
    failpoint("create::cgroup");
    rec.ocishim.userns_base = allocate_userns(ctx, p.cfg, p.id, None, rb)?;
    failpoint("create::userns");
    // The id range goes on record now: teardown reads it to unmount a rootfs mapped with
    // it. The network needs no write of its own: its address, namespace and veth are
    // found from the ID (and the record's sandbox key, written above), so its settings
    // go on record with the monitor, in the write that makes the container created
    // (one inode fewer on the data root per `run -d`).
    if rec.ocishim.userns_base.is_some() {
        ctx.store.write(&rec)?;
    }
    attach_network(ctx, net, &mut rec, rb)?;
    failpoint("create::network");
    let rec = out.insert(rec);
    let base = rec.ocishim.userns_base;
    if let Some(image) = p.image {
        mount_rootfs(ctx, &rec.id, &image.lowers, base, rb)?;
    } else if let (Some(dir), Some(base)) = (idmapped_dir(p.cfg), base) {
        mount_idmapped_dir(ctx, &rec.id, &dir, base, rb)?;
    }
    failpoint("create::rootfs");
    write_bundle(ctx, rec, p.cfg, p.prep, rb)?;
    failpoint("create::bundle");
    let m = start_monitor(ctx, rec, p.cfg, p.opts, rb)?;
    failpoint("create::monitor");
    Ok(m)
}

/// The `--rootfs` directory of a container whose root is an idmapped mount of it
/// (`--userns auto`); None otherwise. (`ContainerConfig::image` keeps the directory:
/// `rootfs` becomes the mount.)
pub(super) fn idmapped_dir(cfg: &ContainerConfig) -> Option<std::path::PathBuf> {
    (cfg.userns == UsernsMode::Auto && !cfg.from_image)
        .then(|| std::path::PathBuf::from(&cfg.image))
}

/// Step `userns`: with `--userns auto`, the container's id range (the one it holds
/// already, else `want` if free, else the lowest free one). Only a range allocated here
/// is released by the undo. Returns its base.
pub(super) fn allocate_userns<'a>(
    ctx: &'a Context,
    cfg: &ContainerConfig,
    id: &str,
    want: Option<u32>,
    rb: &mut Rollback<'a>,
) -> Result<Option<u32>, Error> {
    if cfg.userns != UsernsMode::Auto {
        return Ok(None);
    }
    let ranges = userns::Ranges::new(ctx.store.root());
    let holder = userns::Holder::this_process(id);
    let (base, new) = ranges.allocate(holder, want, |o| ctx.store.record_path(o).exists())?;
    if new {
        let id = id.to_string();
        rb.push(step::USERNS, move || teardown::userns(&ctx.store, &id));
    }
    tracing::debug!(%id, base, new, "id range");
    Ok(Some(base))
}

/// Step `rootfs`: the container's overlay of its image's layers, their ids mapped to
/// the range at `base` with `--userns auto` (registered first: a mount that fails
/// half-way may leave its directories).
pub(super) fn mount_rootfs<'a>(
    ctx: &'a Context,
    id: &str,
    lowers: &[String],
    base: Option<u32>,
    rb: &mut Rollback<'a>,
) -> Result<(), Error> {
    let dirs = teardown::overlay_dirs(&ctx.store, id);
    let undo_id = id.to_string();
    rb.push(step::ROOTFS, move || teardown::rootfs(&ctx.store, &undo_id));
    let ns = base.map(userns::userns_fd).transpose()?;
    let idmap = ns.as_ref().zip(base).map(|(ns, base)| Idmap {
        userns: std::os::fd::AsFd::as_fd(ns),
        base,
    });
    let overlay = Overlay {
        base: ctx.images.root(),
        lowers,
        upper: &dirs.upper,
        work: &dirs.work,
        target: &dirs.target,
        volatile: false,
        idmap,
    };
    if idmap.is_none() {
        // Mounted by the monitor in a mount namespace of the container's own (see
        // monitor::launch::PrivateOverlay): nothing in the host's mount table.
        let options = rootfs::prepare(&overlay).map_err(ImageError::from)?;
        let abs = |p: &std::path::Path| std::path::absolute(p).map_err(io_err("resolving a path"));
        let planned = (abs(ctx.images.root())?, abs(&dirs.target)?, options);
        let mut planned_here = private_overlays();
        planned_here.retain(|(i, _)| i != id);
        planned_here.push((id.to_string(), planned));
        tracing::debug!(%id, layers = lowers.len(), "rootfs prepared");
        return Ok(());
    }
    rootfs::mount(&overlay).map_err(ImageError::from)?;
    tracing::debug!(%id, layers = lowers.len(), "rootfs mounted");
    Ok(())
}

/// Overlays prepared by this process for its monitors to mount: ID, (base, target,
/// options).
type Planned = (String, (std::path::PathBuf, std::path::PathBuf, String));

fn private_overlays() -> std::sync::MutexGuard<'static, Vec<Planned>> {
    static PLANNED: std::sync::Mutex<Vec<Planned>> = std::sync::Mutex::new(Vec::new());
    PLANNED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Step `rootfs` of a `--rootfs` directory with `--userns auto`: its idmapped mount at
/// the container directory's `rootfs`.
pub(super) fn mount_idmapped_dir<'a>(
    ctx: &'a Context,
    id: &str,
    dir: &std::path::Path,
    base: u32,
    rb: &mut Rollback<'a>,
) -> Result<(), Error> {
    let target = teardown::overlay_dirs(&ctx.store, id).target;
    let undo_id = id.to_string();
    rb.push(step::ROOTFS, move || teardown::rootfs(&ctx.store, &undo_id));
    let ns = userns::userns_fd(base)?;
    let idmap = Idmap {
        userns: std::os::fd::AsFd::as_fd(&ns),
        base,
    };
    rootfs::mount_idmapped(dir, &target, idmap).map_err(ImageError::from)?;
    tracing::debug!(%id, "idmapped rootfs mounted");
    Ok(())
}

/// Step `name`: reserve the name (or a generated one) for the ID.
fn reserve_name<'a>(
    ctx: &'a Context,
    cfg: &ContainerConfig,
    id: &str,
    rb: &mut Rollback<'a>,
) -> Result<String, Error> {
    let name = ctx.store.reserve_name_for(cfg.name.as_deref(), id)?;
    tracing::debug!(%id, "name reserved");
    let (n, id) = (name.clone(), id.to_string());
    rb.push(step::NAME, move || {
        // Once a record exists the name is its own: removing the record frees it.
        if !ctx.store.record_path(&id).exists() {
            ctx.store.release_name(&n, &id);
        }
        Ok::<_, Error>(())
    });
    Ok(name)
}

/// Step `cgroup`: the container's cgroup with its limits (read back from the kernel).
pub(super) fn make_cgroup<'a>(
    ctx: &'a Context,
    cfg: &ContainerConfig,
    id: &str,
    rb: &mut Rollback<'a>,
) -> Result<(), Error> {
    let path = cgroups_path(cfg, id);
    let undo_path = path.clone();
    // Registered first: a creation that fails half-way may leave some hierarchies made.
    rb.push(step::CGROUP, move || {
        teardown::cgroup(&ctx.store, ctx.cgroups, &undo_path)
    });
    let cg = ctx.cgroup(&path);
    let marker = teardown::parent_marker(&ctx.store, &path);
    if runtime_makes_cgroup(ctx, cfg, &cg, marker.as_ref().map(|m| m.path.as_path())) {
        tracing::debug!(%id, "no limits under a standing parent: the runtime makes the cgroup");
        return Ok(());
    }
    {
        let _lock = match &marker {
            Some(m) => Some(ctx.store.lock(&m.key)?),
            None => None,
        };
        // ocishim made the parent only if no hierarchy had it before.
        let parent = cg.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let parent_existed = ctx
            .cgroups
            .all_mounts()
            .iter()
            .any(|m| m.join(parent).exists());
        cg.create()?;
        if let (false, Some(m)) = (parent_existed, &marker) {
            let made = m.path.parent().map_or(Ok(()), fs::create_dir_all);
            made.and_then(|_| fs::write(&m.path, ""))
                .map_err(io_err(format!("writing {}", m.path.display())))?;
        }
    }
    let writes = cgroup::plan(&cfg.resources, cg.version, cg.swap_accounting())?;
    cg.apply(&writes)?;
    Ok(())
}

/// Whether the container's cgroup can be left to the runtime, which makes it from the
/// spec's cgroupsPath (and removes it at delete) as it would anyway: there are no limits
/// to write, and the parent stands in every hierarchy without ocishim's marker, so no
/// removal of an emptied parent that ocishim made can race with the runtime's mkdir.
fn runtime_makes_cgroup(
    ctx: &Context,
    cfg: &ContainerConfig,
    cg: &ContainerCgroup,
    marker: Option<&std::path::Path>,
) -> bool {
    let (Some(marker), Some((parent, _))) = (marker, cg.path.rsplit_once('/')) else {
        return false;
    };
    let mounts = ctx.cgroups.all_mounts();
    cfg.resources == crate::config::Resources::default()
        && !marker.exists()
        && !mounts.is_empty()
        && mounts.iter().all(|m| m.join(parent).is_dir())
}

/// The record of a new container (not written yet).
fn new_record(
    ctx: &Context,
    id: &str,
    name: &str,
    cfg: &ContainerConfig,
    runtime: &Runtime,
) -> Record {
    let mut rec = Record::new(id, name, cfg, now());
    rec.ocishim.creator = Some(Creator::this_process());
    rec.ocishim.boot_id = crate::record::boot_id().to_string();
    set_paths(ctx, &mut rec);
    rec.host_config.runtime = runtime.name().to_string();
    rec.host_config.cgroupns_mode = cfg.cgroupns.resolved(ctx.cgroups.is_v2()).to_string();
    rec.ocishim.runtime = runtime.path().display().to_string();
    rec.ocishim.runtime_root = runtime.root().map(|p| p.display().to_string());
    rec
}

/// Step `network`: an address, a namespace and a veth on a bridge network; the other
/// container's namespace and files for container:ID; nothing for none and host.
fn attach_network<'a>(
    ctx: &'a Context,
    net: NetPlan,
    rec: &mut Record,
    rb: &mut Rollback<'a>,
) -> Result<(), Error> {
    attach_network_again(ctx, net, rec, rb, false)
}

/// The network step of `start` of an exited container: a bridge network's namespace
/// went with the container's processes, a joined container's init may have changed.
/// `rb` already undoes the network (see [`existing`]). The record is updated.
pub(super) fn reattach_network<'a>(
    ctx: &'a Context,
    cfg: &ContainerConfig,
    rec: &mut Record,
    rb: &mut Rollback<'a>,
) -> Result<(), Error> {
    let net = plan_network(ctx, cfg)?;
    attach_network_again(ctx, net, rec, rb, true)?;
    let settings = rec.network_settings.clone();
    let (hosts, resolv) = (rec.hosts_path.clone(), rec.resolv_conf_path.clone());
    ctx.store.update(&rec.id, |r| {
        r.network_settings = settings;
        (r.hosts_path, r.resolv_conf_path) = (hosts, resolv);
    })?;
    Ok(())
}

fn attach_network_again<'a>(
    ctx: &'a Context,
    net: NetPlan,
    rec: &mut Record,
    rb: &mut Rollback<'a>,
    again: bool,
) -> Result<(), Error> {
    match net {
        NetPlan::Join(target) => {
            rec.network_settings.sandbox_key = target.sandbox;
            rec.hosts_path = target.hosts;
            rec.resolv_conf_path = target.resolv;
        }
        NetPlan::Bridge(def) => {
            let a = if again {
                let old = std::path::PathBuf::from(&rec.network_settings.sandbox_key);
                rec.network_settings.networks.clear();
                ctx.networks.reattach(&def, &rec.id, &old)?
            } else {
                ctx.networks.attach(&def, &rec.id)?
            };
            rec.network_settings.networks.insert(
                a.network.clone(),
                EndpointSettings {
                    ip_address: a.ip.to_string(),
                    ip_prefix_len: a.prefix,
                    gateway: a.gateway.to_string(),
                    mac_address: a.mac.clone(),
                },
            );
            tracing::debug!(id = %rec.id, ip = %a.ip, "network attached");
            if !again {
                let attached = rec.clone();
                rb.push(step::NETWORK, move || {
                    teardown::network(&ctx.networks, &attached)
                });
            }
            if rec.ocishim.userns_base.is_some() {
                crate::network::set_sysctls(&a.netns)?;
            }
        }
        NetPlan::Nothing => {}
    }
    Ok(())
}

/// Step `record`: the container's directory and its record, before anything else of
/// the container is made.
fn write_record<'a>(ctx: &'a Context, rec: &Record, rb: &mut Rollback<'a>) -> Result<(), Error> {
    let dir = ctx.store.container_dir(&rec.id);
    let written = fs::create_dir_all(&dir)
        .map_err(io_err(format!("creating {}", dir.display())))
        .and_then(|_| {
            failpoint("create::directory");
            ctx.store.write(rec).map_err(Error::from)
        });
    if let Err(e) = written {
        // This step's own partial work: the directory.
        if let Err(u) = fs::remove_dir_all(&dir) {
            tracing::warn!(id = %rec.id, "removing {}: {u}", dir.display());
        }
        return Err(e);
    }
    tracing::debug!(id = %rec.id, name = %rec.name, "record written");
    let written = rec.clone();
    rb.push(step::RECORD, move || teardown::record(&ctx.store, &written));
    Ok(())
}

/// Step `bundle`: /etc files and bundle/config.json.
pub(super) fn write_bundle<'a>(
    ctx: &'a Context,
    rec: &Record,
    cfg: &ContainerConfig,
    prep: &Prepared,
    rb: &mut Rollback<'a>,
) -> Result<(), Error> {
    let id = rec.id.clone();
    rb.push(step::BUNDLE, move || teardown::bundle(&ctx.store, &id));
    bundle::write_files(ctx, rec, cfg, prep)?;
    tracing::debug!(id = %rec.id, "bundle written");
    Ok(())
}

/// Step `monitor`: the container's monitor, which runs the runtime's create. Its undo is
/// registered first: a create that fails half-way may leave runtime state.
pub(super) fn start_monitor<'a>(
    ctx: &'a Context,
    rec: &Record,
    cfg: &ContainerConfig,
    opts: CreateOpts,
    rb: &mut Rollback<'a>,
) -> Result<MonitorStarted, Error> {
    let rt = ctx.runtime_for(rec)?;
    let started = Rc::new(Cell::new(None::<MonitorStarted>));
    let (id, seen, undo_rt) = (rec.id.clone(), started.clone(), rt.clone());
    rb.push(step::MONITOR, move || {
        teardown::runtime_state(&undo_rt, &id)?;
        match seen.get() {
            Some(m) => teardown::monitor(m.monitor_pid, m.monitor_start_time),
            None => Ok(()),
        }
    });
    match launch_monitor(ctx, rec, &rt, output(cfg, opts), opts)? {
        Ok(m) => {
            tracing::debug!(id = %rec.id, pid = m.pid, monitor = m.monitor_pid, "created");
            started.set(Some(m));
            Ok(m)
        }
        Err(message) => Err(Error::StartFailed {
            id: Some(rec.id.clone()),
            message,
            cli_status: 125,
        }),
    }
}

/// The undos of a container that exists already (its record, network, cgroup, and the
/// runtime's container with its monitor when `with_monitor`), for a failed `start`.
pub(super) fn existing<'a>(ctx: &'a Context, rec: &Record, with_monitor: bool) -> Rollback<'a> {
    let mut rb = Rollback::new();
    if teardown::has_own_network(rec) {
        let r = rec.clone();
        rb.push(step::NETWORK, move || teardown::network(&ctx.networks, &r));
    }
    let path = rec.ocishim.cgroups_path.clone();
    rb.push(step::CGROUP, move || {
        teardown::cgroup(&ctx.store, ctx.cgroups, &path)
    });
    let r = rec.clone();
    rb.push(step::RECORD, move || teardown::record(&ctx.store, &r));
    if with_monitor {
        let id = rec.id.clone();
        rb.push(step::BUNDLE, move || teardown::bundle(&ctx.store, &id));
        let (r, rt) = (rec.clone(), ctx.runtime_for(rec));
        rb.push(step::MONITOR, move || {
            teardown::runtime_state(&rt?, &r.id)?;
            teardown::monitor(r.ocishim.monitor_pid, r.ocishim.monitor_start_time)
                .map_err(Error::from)
        });
    }
    rb
}

/// Undo a failed create/start with its guard: the record is kept with the error and
/// docker's exit code (or removed with --rm), with any undo that failed. Returns the
/// error to report.
pub(super) fn fail(ctx: &Context, rec: &Record, mut rb: Rollback, err: Error) -> Error {
    let raw = match &err {
        Error::StartFailed { message, .. } => message.clone(),
        Error::Runtime(e) => e.message(),
        other => other.to_string(),
    };
    let failure = exit_code::translate(&raw, &rec.path);
    tracing::debug!(id = %rec.id, error = %failure.message, "create/start failed, undoing");
    let kept = !rec.host_config.auto_remove && rb.keep(step::RECORD);
    let cleanup = rb.undo();
    if kept {
        let mut error = failure.message.clone();
        if !cleanup.is_empty() {
            error = format!("{error} (cleanup: {})", cleanup.join("; "));
        }
        let recorded = ctx.store.update(&rec.id, |r| {
            r.ocishim.creator = None;
            r.state.set_start_failed(failure.exit_code, error);
            r.ocishim.monitor_pid = 0;
            r.ocishim.monitor_start_time = 0;
        });
        if let Err(e) = recorded {
            tracing::warn!(id = %rec.id, "recording the failure: {e}");
        }
    }
    let id = kept.then(|| rec.id.clone());
    match err {
        Error::StartFailed { .. } | Error::Runtime(_) => Error::StartFailed {
            id,
            message: failure.message,
            cli_status: failure.cli_status,
        },
        // Our own failures (I/O, spec) keep their text; the record still says what failed.
        other => Error::StartFailed {
            id,
            message: other.to_string(),
            cli_status: 125,
        },
    }
}

/// The record's state once the runtime has created the container under monitor `m`.
pub(super) fn set_created(r: &mut Record, m: &MonitorStarted) {
    r.ocishim.creator = None;
    r.state.status = crate::record::Status::Created;
    r.state.pid = m.pid;
    r.state.error.clear();
    r.state.exit_code = 0;
    set_monitor(r, m);
}

/// What create's network step put in its copy of the record `made` (recorded with the
/// monitor).
pub(super) fn set_network(r: &mut Record, made: &Record) {
    r.network_settings = made.network_settings.clone();
    r.hosts_path.clone_from(&made.hosts_path);
    r.resolv_conf_path.clone_from(&made.resolv_conf_path);
}

pub(super) fn set_monitor(r: &mut Record, m: &MonitorStarted) {
    r.ocishim.monitor_pid = m.monitor_pid;
    r.ocishim.monitor_start_time = m.monitor_start_time;
    r.ocishim.monitor_gone = false;
    r.ocishim.runtime_deleted = false;
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
    rt: &Runtime,
    output: monitor::Output,
    opts: CreateOpts,
) -> Result<Result<MonitorStarted, String>, Error> {
    let id = &rec.id;
    let store = &ctx.store;
    let runtime_log = store.runtime_log_path(id);
    let pid_file = store.pid_file(id);
    let fds = monitor::LaunchFds::open(output).map_err(io_err("creating the monitor's pipes"))?;
    let bundle = store.bundle_dir(id);
    let create = rt.create_command(id, &bundle, &pid_file, &runtime_log, opts.start);
    let exe = monitor_exe()?;
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
    if opts.attached {
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
    let log_file = (output == monitor::Output::Pipes && !rec.log_path.is_empty())
        .then(|| std::path::Path::new(&rec.log_path));
    let planned = {
        let mut p = private_overlays();
        let i = p.iter().position(|(i, _)| i == id);
        i.map(|i| p.remove(i).1)
    };
    // Held by the monitor's first half until it execs the monitor: an `rm -f` of this
    // create, if this process is killed meanwhile, waits for that (then finds the
    // monitor by its argv) instead of racing the runtime's create.
    let launch_lock = store
        .launch_lock(id)
        .map_err(io_err("locking the monitor's launch"))?;
    let also = monitor::launch::Also {
        hold: Some(std::os::fd::AsRawFd::as_raw_fd(&launch_lock)),
        log_file,
        rootfs: planned
            .as_ref()
            .map(|(base, target, options)| monitor::launch::PrivateOverlay {
                base,
                target,
                options,
            }),
    };
    let (sync, child) = monitor::launch(fds, output, &create, &mon, &env, &pid_file, &also)
        .map_err(io_err("starting the monitor"))?;
    // Closed, not unlocked: the monitor's copy keeps the lock.
    drop(launch_lock);
    let report = protocol::read_report(sync, CREATE_TIMEOUT);
    crate::sys::reap(child);
    // The container holds its network namespace now (or the create failed).
    crate::network::netns::release(id);
    let report = protocol::parse_report(&report?);
    if let (Some(log), false) = (log_file, matches!(report, protocol::Report::Started { .. })) {
        // The monitor made the log while the runtime worked: an empty one goes again with
        // the failed create (a log of earlier runs stays).
        if fs::metadata(log).is_ok_and(|m| m.len() == 0) {
            let _ = fs::remove_file(log);
        }
    }
    Ok(match report {
        protocol::Report::Started { monitor_pid, pid } => Ok(MonitorStarted {
            monitor_pid,
            monitor_start_time: store::process_start_time(monitor_pid).unwrap_or(0),
            pid,
        }),
        protocol::Report::Failed(message) => Err(message),
        protocol::Report::CreateFailed { status, stderr } => {
            use std::os::unix::process::ExitStatusExt;
            let log = fs::read_to_string(&runtime_log).unwrap_or_default();
            Err(last_error(&log)
                .or_else(|| last_error(&stderr))
                .unwrap_or_else(|| {
                    let status = std::process::ExitStatus::from_raw(status);
                    let op = if opts.start { "run" } else { "create" };
                    format!("{} {op} exited with {status}", rt.name())
                }))
        }
    })
}

/// The monitor's executable: `ocishim-monitor` beside this binary (smaller: see
/// `src/bin/monitor.rs`), else this binary itself (`ocishim __monitor`).
fn monitor_exe() -> Result<std::path::PathBuf, Error> {
    let exe = std::env::current_exe().map_err(io_err("finding ocishim's own binary"))?;
    let small = exe.with_file_name("ocishim-monitor");
    Ok(if small.is_file() { small } else { exe })
}
