//! ocishim's native CLI (clap derive) and the dispatch of each command.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::images;
use super::output;
use crate::config::ConfigError;
use crate::config::{HostFacts, RawOptions};
use crate::container::{self, Context, CreateOpts};
use crate::error::Error;
use crate::store::Store;

/// `--root`'s default.
pub const DEFAULT_ROOT: &str = "/run/ocishim";
/// `--data-root`'s default.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/ocishim";
/// `--runtime`'s default.
pub const DEFAULT_RUNTIME: &str = "runc";

#[derive(Debug, Parser)]
#[command(
    name = "ocishim",
    version,
    about = "A daemonless, low-level container shim over an OCI runtime"
)]
pub struct Cli {
    /// Volatile state (locks).
    #[arg(long, global = true, env = "OCISHIM_ROOT", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Persistent state: records, logs, bundles.
    #[arg(long = "data-root", global = true, env = "OCISHIM_DATA_ROOT", default_value = DEFAULT_DATA_ROOT)]
    pub data_root: PathBuf,
    /// The OCI runtime binary for new containers (runc, crun, or a path).
    #[arg(long, global = true, env = "OCISHIM_RUNTIME", default_value = DEFAULT_RUNTIME)]
    pub runtime: String,
    /// The runtime's --root (default: the runtime's own default).
    #[arg(long = "runtime-root", global = true, env = "OCISHIM_RUNTIME_ROOT")]
    pub runtime_root: Option<PathBuf>,
    /// The default bridge network's Linux bridge.
    #[arg(long, global = true, env = "OCISHIM_BRIDGE", default_value = crate::network::DEFAULT_BRIDGE)]
    pub bridge: String,
    /// The default bridge network's subnet (must not collide with the host's routes).
    #[arg(long = "bridge-subnet", global = true, env = "OCISHIM_BRIDGE_SUBNET", default_value = crate::network::DEFAULT_SUBNET)]
    pub bridge_subnet: String,
    /// The cgroup parent of containers run or created without --cgroup-parent.
    #[arg(
        long = "default-cgroup-parent",
        global = true,
        env = "OCISHIM_CGROUP_PARENT"
    )]
    pub default_cgroup_parent: Option<String>,
    /// Outbound NAT (masquerade) and IPv4 forwarding for the default bridge network
    /// (run/create) or the network `network create` makes. Off by default.
    #[arg(long = "enable-nat", global = true)]
    pub enable_nat: bool,
    /// Log level for ocishim's own diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long = "log-level", global = true, env = "OCISHIM_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// The settings file (registries; default /etc/ocishim/settings.json when present).
    #[arg(long, global = true, env = "OCISHIM_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each one's flags are built only when it is the one invoked (clap's
/// `defer`; the nested `image` and `network` enums likewise): a `run` does not build the
/// hundred-odd flags of `create`, nor every other subcommand's. Measured here (medians of
/// 300 processes): a `run`'s parse 0.61 → 0.55 ms, a `docker inspect`'s 0.75 → 0.56 ms,
/// 36 page faults fewer. Metadata of a flattened `Args` struct (a doc comment) would then
/// override the variant's: they have none (a unit test holds `run`'s about).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create and start a container.
    Run(RunArgs),
    /// Create a container (runtime create) without starting it.
    Create(RunArgs),
    /// Start created (or exited) containers.
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Freeze all processes of containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw paused containers.
    #[command(alias = "unpause")]
    Resume {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers' init.
    Kill {
        #[arg(short = 's', long = "signal", default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers.
    Ps {
        #[arg(short = 'a', long)]
        all: bool,
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        /// name=REGEX (unanchored, as docker's), id=PREFIX, status=S, label=K[=V], exited=N
        #[arg(short = 'f', long)]
        filter: Vec<String>,
        /// "json" (one JSON object per line), "table", or a Go template
        #[arg(long)]
        format: Option<String>,
    },
    /// Print containers' (or images') records as a JSON array (docker's shape).
    Inspect {
        /// A Go template rendered once per object ({{.State.Pid}}, {{json .Config}})
        #[arg(short = 'f', long)]
        format: Option<String>,
        /// container or image (default: a container, else an image)
        #[arg(long = "type")]
        kind: Option<String>,
        /// Accepted for docker's spelling (sizes are not computed).
        #[arg(short = 's', long)]
        size: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print a container's log.
    Logs(LogsArgs),
    /// Change the limits of containers live (docker update).
    Update(UpdateArgs),
    /// Memory, CPU, pids and OOM figures from the containers' cgroups.
    Stats {
        /// Print one sample and exit (default: refresh every second until the containers exit).
        #[arg(long = "no-stream")]
        no_stream: bool,
        /// "json": one JSON object per container per sample
        #[arg(long)]
        format: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print the config.json that `run` would use; creates nothing.
    Spec(RunArgs),
    /// Reclaim what killed creates, lost records and killed monitors left (one line each).
    Gc {
        /// List what would be reclaimed, without acting.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// Bridge networks.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Load images from a docker-archive or an OCI image layout (tar, or a directory).
    Load(LoadArgs),
    /// Write images as one docker-archive.
    Save(SaveArgs),
    /// An image of one layer from a plain rootfs tarball (`-` for standard input).
    Import(ImportArgs),
    /// List images.
    Images(ImagesArgs),
    /// Remove images.
    Rmi(RmiArgs),
    /// Name an image anew: SOURCE (name or ID) as TARGET.
    Tag(TagArgs),
    /// Images: ls, inspect, rm, prune, load, save, import, tag, pull.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Log in to a registry (stores the credentials in docker's config.json).
    Login(LoginArgs),
    /// Log out from a registry.
    Logout {
        /// The registry (default: Docker Hub).
        server: Option<String>,
    },
    /// Print version information (docker's shape).
    Version {
        /// A Go template over {Client, Server} ({{.Client.Version}}), or "json"
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Print system-wide information (docker's shape).
    Info {
        /// A Go template ({{json .}}, {{.DockerRootDir}}), or "json"
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// docker's command line: `ocishim docker run ...` (as a symlink named docker).
    #[command(disable_help_flag = true)]
    Docker {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Args, Clone)]
pub struct LogsArgs {
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines at or after this time (RFC 3339, Unix seconds, or a duration ago: 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines before or at this time (as --since)
    #[arg(long)]
    pub until: Option<String>,
    /// Prefix each line with its time (RFC 3339 with nanoseconds)
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Only the last N lines ("all": every line)
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    pub container: String,
}

#[derive(Debug, Args, Clone)]
pub struct ImagesArgs {
    /// Only the IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// "json": one JSON object per line
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository (NAME or NAME:TAG).
    pub reference: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct PullArgs {
    /// Print only the image's reference.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// os/arch[/variant] to pick from a multi-platform image (default: this host's).
    #[arg(long)]
    pub platform: Option<String>,
    pub reference: String,
}

#[derive(Debug, Args, Clone)]
pub struct LoginArgs {
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// The archive, or an OCI layout directory (default: standard input).
    #[arg(short = 'i', long = "input")]
    pub input: Option<PathBuf>,
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SaveArgs {
    /// The file (default: standard output, which must not be a terminal).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    pub file: String,
    pub reference: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct RmiArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCmd {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Print images' records as a JSON array (docker's shape).
    Inspect {
        /// A Go template rendered once per image
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images.
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Remove images no container uses: untagged ones, or with -a every one.
    Prune {
        #[arg(short = 'a', long)]
        all: bool,
        /// Accepted for docker's spelling: ocishim never asks.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// As `ocishim load`.
    Load(LoadArgs),
    /// As `ocishim save`.
    Save(SaveArgs),
    /// As `ocishim import`.
    Import(ImportArgs),
    /// As `ocishim tag`.
    Tag(TagArgs),
    /// As `ocishim pull`.
    Pull(PullArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Create a bridge network (the subnet is checked against the host's routes).
    Create {
        #[arg(long)]
        subnet: Option<String>,
        #[arg(long)]
        gateway: Option<String>,
        name: String,
    },
    /// List networks.
    Ls,
    /// Print networks as a JSON array, with their containers' addresses.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container uses one).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove addresses, namespaces and veths whose container record is gone.
    Prune,
}

// The resource limits `run`, `create`, `spec` and `update` take.
#[derive(Debug, Args, Clone, Default)]
pub struct ResourceArgs {
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    #[arg(short = 'c', long = "cpu-shares", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
}

impl ResourceArgs {
    fn into_raw(self, raw: RawOptions) -> RawOptions {
        RawOptions {
            memory: self.memory,
            memory_swap: self.memory_swap,
            memory_reservation: self.memory_reservation,
            cpu_shares: self.cpu_shares,
            cpus: self.cpus,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus,
            cpuset_mems: self.cpuset_mems,
            pids_limit: self.pids_limit,
            ..raw
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: ResourceArgs,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl UpdateArgs {
    pub fn raw(&self) -> RawOptions {
        self.resources.clone().into_raw(RawOptions::default())
    }
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run this directory as the container's root filesystem.
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    #[command(flatten)]
    pub resources: ResourceArgs,
    #[arg(long)]
    pub ulimit: Vec<String>,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// host (default) | auto: a user namespace of the container's own, with 65536 ids
    /// allocated from the subordinate ids of user ocishim
    #[arg(long)]
    pub userns: Option<String>,
    /// host | private: the container's cgroup namespace (default: the host's on cgroup v1,
    /// its own on v2, as docker)
    #[arg(long)]
    pub cgroupns: Option<String>,
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    #[arg(long)]
    pub tmpfs: Vec<String>,
    #[arg(long)]
    pub device: Vec<String>,
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    #[arg(short = 'l', long)]
    pub label: Vec<String>,
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// none | host (bridge and container:ID come with networking)
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// json-file (default) | none
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// json-file options: max-size=SIZE, max-file=N (rotation)
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// missing (default) | never | always: when to pull IMAGE from its registry
    #[arg(long)]
    pub pull: Option<String>,
    /// os/arch[/variant] of IMAGE to pull (default: this host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// IMAGE (unless --rootfs) then the command and its arguments.
    #[arg(trailing_var_arg = true)]
    pub args: Vec<String>,
}

impl RunArgs {
    pub fn raw(&self) -> RawOptions {
        let a = self.clone();
        let raw = RawOptions {
            name: a.name,
            env: a.env,
            env_file: a.env_file,
            workdir: a.workdir,
            user: a.user,
            hostname: a.hostname,
            entrypoint: a.entrypoint,
            ulimit: a.ulimit,
            cap_add: a.cap_add,
            cap_drop: a.cap_drop,
            privileged: a.privileged,
            read_only: a.read_only,
            security_opt: a.security_opt,
            userns: a.userns,
            cgroupns: a.cgroupns,
            volume: a.volume,
            tmpfs: a.tmpfs,
            device: a.device,
            oom_score_adj: a.oom_score_adj,
            label: a.label,
            cgroup_parent: a.cgroup_parent,
            network: a.network,
            dns: a.dns,
            dns_search: a.dns_search,
            dns_option: a.dns_option,
            add_host: a.add_host,
            log_driver: a.log_driver,
            log_opt: a.log_opt,
            pull: a.pull,
            platform: a.platform,
            rm: a.rm,
            rootfs: a.rootfs,
            args: a.args,
            ..Default::default()
        };
        a.resources.into_raw(raw)
    }
}

/// Run a parsed command. Ok(status) is the process's exit status (0, or an attached
/// container's own code).
pub fn execute(cli: Cli) -> Result<i32, Error> {
    let ctx = context(&cli)?;
    dispatch(&ctx, cli.command, cli.default_cgroup_parent.as_deref())
}

/// The global flags as a [`Context`].
pub fn context(cli: &Cli) -> Result<Context, Error> {
    let subnet: ipnetwork::Ipv4Network =
        cli.bridge_subnet
            .parse()
            .map_err(|e: ipnetwork::IpNetworkError| ConfigError::InvalidValue {
                flag: "--bridge-subnet",
                value: cli.bridge_subnet.clone(),
                why: e.to_string(),
            })?;
    if cli.bridge.is_empty() || cli.bridge.len() > 15 || cli.bridge.contains('/') {
        return Err(ConfigError::InvalidValue {
            flag: "--bridge",
            value: cli.bridge.clone(),
            why: "not a link name".into(),
        }
        .into());
    }
    let mut networks =
        crate::network::Networks::new(&cli.root, &cli.data_root, &cli.bridge, subnet);
    networks.default_nat = cli.enable_nat;
    let ctx = Context {
        networks,
        store: Store::new(&cli.root, &cli.data_root),
        runtime: cli.runtime.clone(),
        runtime_root: cli.runtime_root.clone(),
        log_level: cli.log_level.clone(),
        cgroups: crate::cgroup::CgroupFs::host(),
        images: crate::image::store::ImageStore::new(cli.data_root.join("image")),
        settings: cli.config.clone(),
    };
    Ok(ctx)
}

/// `run`/`create`/`spec` options with the global default cgroup parent.
fn raw_options(a: &RunArgs, default_cgroup_parent: Option<&str>) -> RawOptions {
    let mut raw = a.raw();
    if raw.cgroup_parent.is_none() {
        raw.cgroup_parent = default_cgroup_parent.map(str::to_string);
    }
    raw
}

/// Run one command in `ctx`.
pub fn dispatch(
    ctx: &Context,
    command: Command,
    default_cgroup_parent: Option<&str>,
) -> Result<i32, Error> {
    // A pull's progress is drawn by other threads (layer workers, indicatif's ticker):
    // stdout must not stay locked by this one meanwhile.
    let command = match command {
        Command::Pull(a) | Command::Image(ImageCmd::Pull(a)) => {
            return images::pull(ctx, &mut std::io::stdout(), a)
        }
        c => c,
    };
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock, s: &str| {
        let _ = writeln!(out, "{s}");
    };
    match command {
        Command::Run(a) => {
            let cfg = raw_options(&a, default_cgroup_parent).into_config(&HostFacts::detect())?;
            let auto_remove = cfg.auto_remove;
            let opts = CreateOpts {
                attached: !a.detach,
                ..CreateOpts::default()
            };
            match container::run(ctx, cfg, opts) {
                Ok(id) if a.detach => {
                    print(&mut out, &id);
                    Ok(0)
                }
                Ok(id) => {
                    drop(out);
                    let code = container::attach_wait(ctx, &id)?;
                    if auto_remove {
                        container::remove(ctx, &id, true)?;
                    }
                    Ok(code)
                }
                Err(e) => {
                    if let (true, Error::StartFailed { id: Some(id), .. }) = (a.detach, &e) {
                        print(&mut out, id);
                    }
                    Err(e)
                }
            }
        }
        Command::Create(a) => {
            let cfg = raw_options(&a, default_cgroup_parent).into_config(&HostFacts::detect())?;
            match container::create(ctx, cfg, CreateOpts::default()) {
                Ok(id) => {
                    print(&mut out, &id);
                    Ok(0)
                }
                Err(e) => {
                    if let Error::StartFailed { id: Some(id), .. } = &e {
                        print(&mut out, id);
                    }
                    Err(e)
                }
            }
        }
        Command::Start { containers } => each(&mut out, &containers, |c| {
            container::start(ctx, c)?;
            Ok(())
        }),
        Command::Pause { containers } => each(&mut out, &containers, |c| {
            container::pause(ctx, c)?;
            Ok(())
        }),
        Command::Resume { containers } => each(&mut out, &containers, |c| {
            container::resume(ctx, c)?;
            Ok(())
        }),
        Command::Kill { signal, containers } => each(&mut out, &containers, |c| {
            container::kill(ctx, c, &signal)?;
            Ok(())
        }),
        Command::Rm { force, containers } => {
            let mut first_err = None;
            for c in &containers {
                match container::remove(ctx, c, force) {
                    Ok(Some(_)) => print(&mut out, c),
                    Ok(None) => {}
                    Err(e) => {
                        let _ = out.flush();
                        eprintln!("ocishim: {e}");
                        first_err.get_or_insert(e);
                    }
                }
            }
            match first_err {
                Some(_) => Err(Error::Reported),
                None => Ok(0),
            }
        }
        Command::Ps {
            all,
            quiet,
            no_trunc,
            filter,
            format,
        } => output::ps(
            ctx,
            &mut out,
            all,
            quiet,
            no_trunc,
            &filter,
            format.as_deref(),
        ),
        Command::Inspect {
            format,
            kind,
            containers,
            ..
        } => {
            let kind = kind.as_deref();
            if !matches!(kind, None | Some("container") | Some("image")) {
                return Err(Error::Usage(format!(
                    "\"{}\" is not a valid value for --type",
                    kind.unwrap_or_default()
                )));
            }
            output::inspect_all(&mut out, &containers, format.as_deref(), |q| match kind {
                Some("image") => crate::container::images::inspect(ctx, q),
                Some(_) => container::inspect(ctx, q),
                None => container::inspect(ctx, q)
                    .or_else(|e| crate::container::images::inspect(ctx, q).map_err(|_| e)),
            })
        }
        Command::Logs(a) => {
            drop(out);
            let opts = container::LogsOpts::parse(
                a.follow,
                a.since.as_deref(),
                a.until.as_deref(),
                a.timestamps,
                a.tail.as_deref(),
            )?;
            container::logs(ctx, &a.container, &opts)?;
            Ok(0)
        }
        Command::Update(a) => {
            let raw = a.raw();
            for c in &a.containers {
                container::update(ctx, c, &raw)?;
                print(&mut out, c);
            }
            Ok(0)
        }
        Command::Stats {
            no_stream,
            format,
            containers,
        } => output::stats(ctx, &mut out, no_stream, format.as_deref(), &containers),
        Command::Network(n) => network(ctx, &mut out, n),
        Command::Gc { dry_run } => {
            for line in container::gc(ctx, dry_run)? {
                print(&mut out, &line);
            }
            Ok(0)
        }
        Command::Spec(a) => {
            let cfg = raw_options(&a, default_cgroup_parent).into_config(&HostFacts::detect())?;
            print(&mut out, &container::spec_json(ctx, &cfg)?);
            Ok(0)
        }
        Command::Load(a) => images::run(ctx, &mut out, ImageCmd::Load(a)),
        Command::Save(a) => images::run(ctx, &mut out, ImageCmd::Save(a)),
        Command::Import(a) => images::run(ctx, &mut out, ImageCmd::Import(a)),
        Command::Images(a) => images::run(ctx, &mut out, ImageCmd::Ls(a)),
        Command::Rmi(a) => images::run(ctx, &mut out, ImageCmd::Rm(a)),
        Command::Tag(a) => images::run(ctx, &mut out, ImageCmd::Tag(a)),
        Command::Image(c) => images::run(ctx, &mut out, c),
        Command::Pull(_) => unreachable!("pull is dispatched before stdout is locked"),
        Command::Login(a) => images::login(ctx, &mut out, a),
        Command::Logout { server } => images::logout(&mut out, server.as_deref()),
        Command::Version { format } => super::system::version(ctx, &mut out, format.as_deref()),
        Command::Info { format } => super::system::info(ctx, &mut out, format.as_deref()),
        Command::Docker { .. } => unreachable!("main hands `docker` argv to cli::docker"),
    }
}

/// A command over several containers: each one's name printed when it succeeds, each
/// failure on its own stderr line; the status is 125 when any failed.
fn each(
    out: &mut std::io::StdoutLock,
    containers: &[String],
    f: impl Fn(&str) -> Result<(), Error>,
) -> Result<i32, Error> {
    let mut failed = None;
    for c in containers {
        match f(c) {
            Ok(()) => {
                let _ = writeln!(out, "{c}");
            }
            Err(e) if containers.len() == 1 => return Err(e),
            Err(e) => {
                let _ = out.flush();
                eprintln!("ocishim: {e}");
                failed.get_or_insert(e);
            }
        }
    }
    failed.map_or(Ok(0), |_| Err(Error::Reported))
}

fn network(ctx: &Context, out: &mut std::io::StdoutLock, cmd: NetworkCmd) -> Result<i32, Error> {
    let nets = &ctx.networks;
    match cmd {
        NetworkCmd::Create {
            subnet,
            gateway,
            name,
        } => {
            let subnet = subnet
                .map(|s| {
                    s.parse::<ipnetwork::Ipv4Network>()
                        .map_err(|e| ConfigError::InvalidValue {
                            flag: "--subnet",
                            value: s.clone(),
                            why: e.to_string(),
                        })
                })
                .transpose()?;
            let gateway = gateway
                .map(|g| {
                    g.parse::<std::net::Ipv4Addr>()
                        .map_err(|e| ConfigError::InvalidValue {
                            flag: "--gateway",
                            value: g.clone(),
                            why: e.to_string(),
                        })
                })
                .transpose()?;
            let def = nets.create(&name, subnet, gateway, nets.default_nat)?;
            let _ = writeln!(out, "{}", def.name);
        }
        NetworkCmd::Ls => {
            let _ = writeln!(out, "{:<24}{:<18}{:<20}GATEWAY", "NAME", "BRIDGE", "SUBNET");
            for d in nets.list() {
                let _ = writeln!(
                    out,
                    "{:<24}{:<18}{:<20}{}",
                    d.name,
                    d.bridge,
                    d.subnet.to_string(),
                    d.gateway
                );
            }
        }
        NetworkCmd::Inspect { names } => {
            let mut found = Vec::new();
            for n in &names {
                let d = nets.get(n)?;
                let containers: serde_json::Map<String, serde_json::Value> = nets
                    .ipam()
                    .allocations(&d.name)
                    .map_err(crate::network::NetworkError::from)?
                    .into_iter()
                    .map(|(ip, id)| (id, serde_json::json!({ "IPv4Address": format!("{ip}/{}", d.subnet.prefix()) })))
                    .collect();
                found.push(serde_json::json!({
                    "Name": d.name,
                    "Driver": "bridge",
                    "Bridge": d.bridge,
                    "Options": { "com.docker.network.bridge.enable_ip_masquerade": d.nat.to_string() },
                    "IPAM": { "Config": [{ "Subnet": d.subnet.to_string(), "Gateway": d.gateway.to_string() }] },
                    "Containers": containers,
                }));
            }
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&found).expect("json")
            );
        }
        NetworkCmd::Rm { names } => {
            for n in &names {
                nets.remove(n)?;
                let _ = writeln!(out, "{n}");
            }
        }
        NetworkCmd::Prune => {
            let ids = ctx.store.ids()?;
            let alive = |owner: &str| container::gc::owner_has_record(ctx, &ids, owner);
            for r in nets.prune(&alive)? {
                let _ = writeln!(out, "removed {r}");
            }
        }
    }
    Ok(0)
}
