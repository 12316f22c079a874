//! The container record, `config.v2.json`, in dockerd's shape (plus an `Ocishim` section
//! for what only ocishim needs). `inspect` prints it with docker's key `Id`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{ContainerConfig, NetworkMode};

pub mod row;

/// Docker's zero time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    #[serde(rename = "ID")]
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: RecordConfig,
    pub image: String,
    pub name: String,
    pub host_config: HostConfig,
    pub state: State,
    pub network_settings: NetworkSettings,
    pub log_path: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub ocishim: Ext,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RecordConfig {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub image: String,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    /// From the image, as docker's (ExposedPorts: `{"80/tcp": {}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UlimitRec {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceRec {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub typ: String,
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub binds: Vec<String>,
    pub network_mode: String,
    pub auto_remove: bool,
    pub log_config: LogConfig,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub oom_score_adj: i32,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub cgroup_parent: String,
    pub cpu_shares: i64,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub devices: Vec<DeviceRec>,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<UlimitRec>,
    pub runtime: String,
    /// `--userns`: "" (the host's) or "auto".
    #[serde(default)]
    pub userns_mode: String,
    /// `--cgroupns` as resolved at create: "host" or "private".
    #[serde(default)]
    pub cgroupns_mode: String,
}

impl HostConfig {
    /// The resource fields, as docker records them (MemorySwap: the memory+swap limit).
    pub fn set_resources(&mut self, r: &crate::config::Resources) {
        self.cpu_shares = r.cpu_shares;
        self.memory = r.memory;
        self.nano_cpus = r.nano_cpus;
        self.cpu_period = r.cpu_period;
        self.cpu_quota = r.cpu_quota;
        self.cpuset_cpus = r.cpuset_cpus.clone();
        self.cpuset_mems = r.cpuset_mems.clone();
        self.memory_reservation = r.memory_reservation;
        self.memory_swap = match r.effective_swap() {
            Some(s) if r.memory > 0 || s == -1 => s,
            _ => 0,
        };
        self.pids_limit = r.pids_limit;
    }
}

/// A container's status, serialized as docker's `State.Status` strings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made by the runtime's create (or a create/start that failed), not started.
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    /// docker's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// A running container's status: paused or not.
    pub fn running(paused: bool) -> Status {
        if paused {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// docker's `ps` state of a container with this status and `State.Paused`: `paused`
    /// for a paused running container, else the status.
    pub fn docker(self, paused: bool) -> &'static str {
        if paused && self.is_running() {
            "paused"
        } else {
            self.as_str()
        }
    }

    /// Running or paused: docker's `State.Running` (a paused container runs), what `rm`
    /// refuses without -f and `ps` lists without -a.
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }

    /// Whether a container in this status can have a live monitor and runtime state
    /// (created by the runtime, running or paused).
    pub fn has_runtime_state(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }

    /// Whether `pause` applies (running and not paused).
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }

    /// Whether `resume` applies.
    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: Status,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
        }
    }
}

impl State {
    pub fn set_running(&mut self, pid: i32, started_at: String) {
        self.status = Status::Running;
        self.running = true;
        self.paused = false;
        self.dead = false;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.oom_killed = false;
        self.started_at = started_at;
        self.finished_at = ZERO_TIME.into();
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.status = Status::running(paused);
    }

    pub fn set_exited(&mut self, code: i32, finished_at: String) {
        self.status = Status::Exited;
        self.running = false;
        self.paused = false;
        self.pid = 0;
        self.exit_code = code;
        self.finished_at = finished_at;
    }

    /// docker's `ps` state: `paused` for a paused running container, else the status.
    pub fn docker_status(&self) -> &'static str {
        self.status.docker(self.paused)
    }

    /// A create/start that failed: docker leaves the container "created" with the error.
    pub fn set_start_failed(&mut self, code: i32, error: String) {
        self.status = Status::Created;
        self.running = false;
        self.paused = false;
        self.pid = 0;
        self.exit_code = code;
        self.error = error;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub gateway: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub networks: BTreeMap<String, EndpointSettings>,
    pub sandbox_key: String,
}

/// What only ocishim needs to drive the container again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Ext {
    pub bundle: String,
    pub rootfs: String,
    pub runtime: String,
    pub runtime_root: Option<String>,
    pub cgroups_path: String,
    pub monitor_pid: i32,
    /// The monitor's start time (clock ticks since boot, /proc/PID/stat field 22), so a
    /// reused PID is never taken for the monitor.
    pub monitor_start_time: u64,
    /// The monitor is gone while the container may still run (set by inspect/ps).
    #[serde(default)]
    pub monitor_gone: bool,
    /// The monitor ran `runtime delete` after the exit.
    #[serde(default)]
    pub runtime_deleted: bool,
    /// `--userns auto`: the first host id of the container's range (container id 0),
    /// uids and gids alike; the range is held until rm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_base: Option<u32>,
    /// The process making the container's resources (create, or start of a stopped
    /// container) while it does; None otherwise. A record whose creator is gone is an
    /// abandoned create: `ps` shows it Dead, `rm -f` and `gc` reclaim all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<Creator>,
    /// The host's boot id when the container was last created or started: after a reboot
    /// nothing of a running container survives (see `container::refresh`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub boot_id: String,
    /// Log entries (lines, or 16 KiB pieces of longer ones) the monitor dropped because
    /// the log could not be written (a full disk), over all of the container's runs.
    #[serde(default)]
    pub log_lines_dropped: u64,
    /// The full validated config, to recreate the container on `start` ([`Ext::config`]).
    #[serde(rename = "Config")]
    pub stored_config: Option<StoredConfig>,
}

impl Ext {
    /// The stored config, parsed now (None when there is none or it does not parse).
    pub fn config(&self) -> Option<ContainerConfig> {
        self.stored_config.as_ref().and_then(StoredConfig::get)
    }

    pub fn set_config(&mut self, cfg: &ContainerConfig) {
        self.stored_config = Some(StoredConfig::new(cfg));
    }
}

/// The validated config inside a record, kept as its JSON text until it is asked for: it
/// is most of a record's parsing, and `ps` over a thousand records never needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredConfig(Box<serde_json::value::RawValue>);

impl StoredConfig {
    pub fn new(cfg: &ContainerConfig) -> StoredConfig {
        StoredConfig(serde_json::value::to_raw_value(cfg).expect("a config serializes"))
    }

    pub fn get(&self) -> Option<ContainerConfig> {
        serde_json::from_str(self.0.get()).ok()
    }
}

impl PartialEq for StoredConfig {
    fn eq(&self, other: &StoredConfig) -> bool {
        self.get() == other.get()
    }
}

/// A process, as a PID with its start time (a reused PID is another process).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Creator {
    pub pid: i32,
    pub start_time: u64,
}

impl Creator {
    /// This process (read from /proc once).
    pub fn this_process() -> Creator {
        static ME: std::sync::OnceLock<Creator> = std::sync::OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id() as i32;
            Creator {
                pid,
                start_time: crate::store::process_start_time(pid).unwrap_or(0),
            }
        })
    }

    pub fn alive(&self) -> bool {
        crate::store::process_alive(self.pid, self.start_time)
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`, read once), "" when unreadable.
pub fn boot_id() -> &'static str {
    static BOOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// The few fields of a record that `pause`, `resume` and `kill` need, read without the
/// rest (the stored config alone is most of a record's parsing): OpenWhisk's invoker
/// pauses and resumes a container around every activation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Brief {
    #[serde(rename = "ID")]
    pub id: String,
    pub state: BriefState,
    pub ocishim: BriefExt,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BriefState {
    pub status: Status,
    pub paused: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BriefExt {
    pub runtime: String,
    pub runtime_root: Option<String>,
    pub cgroups_path: String,
    pub monitor_pid: i32,
    pub monitor_start_time: u64,
}

impl Record {
    /// A record as `ps` needs it, parsed from its file's bytes ([`row::Row`]): everything
    /// else is left empty; such a record is for showing, never for writing back.
    pub fn listed(bytes: &[u8]) -> serde_json::Result<Record> {
        serde_json::from_slice::<row::Row>(bytes).map(|r| r.to_record())
    }
}

impl Record {
    /// A new record for a validated config.
    pub fn new(id: &str, name: &str, cfg: &ContainerConfig, created: String) -> Record {
        let argv = cfg.argv();
        let mut rec = Record {
            id: id.to_string(),
            created,
            path: argv.first().cloned().unwrap_or_default(),
            args: argv.iter().skip(1).cloned().collect(),
            config: RecordConfig {
                hostname: cfg.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
                user: cfg.user.clone().unwrap_or_default(),
                env: cfg.env.clone(),
                cmd: cfg.cmd.clone(),
                entrypoint: (!cfg.entrypoint.is_empty()).then(|| cfg.entrypoint.clone()),
                image: cfg.image.clone(),
                working_dir: cfg.workdir.clone().unwrap_or_default(),
                labels: cfg.labels.clone(),
                stop_signal: cfg.stop_signal.clone(),
                exposed_ports: cfg
                    .exposed_ports
                    .iter()
                    .map(|p| (p.clone(), serde_json::Map::new()))
                    .collect(),
            },
            // docker's: the image's ID (Config.Image keeps the name as given).
            image: cfg.image_id.clone().unwrap_or_else(|| cfg.image.clone()),
            name: format!("/{name}"),
            host_config: HostConfig {
                binds: cfg.binds_raw.clone(),
                network_mode: cfg.network.as_str(),
                auto_remove: cfg.auto_remove,
                log_config: LogConfig {
                    typ: cfg.log_driver.as_str().to_string(),
                    config: cfg.log_opts.clone(),
                },
                cap_add: cfg.cap_add.clone(),
                cap_drop: cfg.cap_drop.clone(),
                dns: cfg.dns.clone(),
                dns_options: cfg.dns_options.clone(),
                dns_search: cfg.dns_search.clone(),
                extra_hosts: cfg
                    .extra_hosts
                    .iter()
                    .map(|(n, i)| format!("{n}:{i}"))
                    .collect(),
                oom_score_adj: cfg.oom_score_adj,
                privileged: cfg.privileged,
                readonly_rootfs: cfg.read_only,
                security_opt: if cfg.no_new_privileges {
                    vec!["no-new-privileges".into()]
                } else {
                    vec![]
                },
                tmpfs: cfg
                    .tmpfs
                    .iter()
                    .map(|t| (t.destination.clone(), t.options.join(",")))
                    .collect(),
                cgroup_parent: cfg.cgroup_parent.clone(),
                devices: cfg
                    .devices
                    .iter()
                    .map(|d| DeviceRec {
                        path_on_host: d.host.display().to_string(),
                        path_in_container: d.container.clone(),
                        cgroup_permissions: d.permissions.clone(),
                    })
                    .collect(),
                ulimits: cfg
                    .ulimits
                    .iter()
                    .map(|u| UlimitRec {
                        name: u.name.clone(),
                        soft: u.soft,
                        hard: u.hard,
                    })
                    .collect(),
                runtime: String::new(),
                userns_mode: cfg.userns.as_str().to_string(),
                ..Default::default()
            },
            state: State::default(),
            network_settings: NetworkSettings {
                networks: match &cfg.network {
                    NetworkMode::None => [("none".to_string(), EndpointSettings::default())].into(),
                    NetworkMode::Host => [("host".to_string(), EndpointSettings::default())].into(),
                    NetworkMode::Bridge(n) => [(n.clone(), EndpointSettings::default())].into(),
                    NetworkMode::Container(_) => BTreeMap::new(),
                },
                sandbox_key: String::new(),
            },
            log_path: String::new(),
            resolv_conf_path: String::new(),
            hostname_path: String::new(),
            hosts_path: String::new(),
            ocishim: Ext {
                stored_config: Some(StoredConfig::new(cfg)),
                ..Default::default()
            },
        };
        rec.host_config.set_resources(&cfg.resources);
        rec
    }

    /// The name without docker's leading slash.
    pub fn short_name(&self) -> &str {
        self.name.strip_prefix('/').unwrap_or(&self.name)
    }

    /// The JSON `inspect` prints: docker's shape, `Id` for `ID`, without ocishim's
    /// internal copy of the config.
    pub fn to_inspect(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            if let Some(id) = obj.remove("ID") {
                obj.insert("Id".into(), id);
            }
            if let Some(ext) = obj.get_mut("Ocishim").and_then(|e| e.as_object_mut()) {
                ext.remove("Config");
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_spelling_and_predicates() {
        for (s, text) in [
            (Status::Created, "created"),
            (Status::Running, "running"),
            (Status::Paused, "paused"),
            (Status::Restarting, "restarting"),
            (Status::Removing, "removing"),
            (Status::Exited, "exited"),
            (Status::Dead, "dead"),
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<Status>(&format!("\"{text}\"")).unwrap(),
                s
            );
            assert_eq!(s.to_string(), text);
        }
        assert!(Status::Paused.is_running() && Status::Running.is_running());
        assert!(!Status::Created.is_running() && !Status::Exited.is_running());
        assert!(Status::Running.can_pause() && !Status::Paused.can_pause());
        assert!(Status::Paused.can_resume() && !Status::Running.can_resume());
        assert!(Status::Created.has_runtime_state() && !Status::Exited.has_runtime_state());
    }

    #[test]
    fn state_transitions() {
        let mut st = State::default();
        assert_eq!(st.status, Status::Created);
        st.set_running(7, "t".into());
        assert_eq!((st.status, st.running, st.pid), (Status::Running, true, 7));
        st.set_paused(true);
        assert_eq!(
            (st.status, st.paused, st.running),
            (Status::Paused, true, true)
        );
        st.set_exited(3, "f".into());
        assert_eq!(
            (st.status, st.running, st.exit_code),
            (Status::Exited, false, 3)
        );
        st.set_start_failed(127, "boom".into());
        assert_eq!(
            (st.status, st.exit_code, st.error.as_str()),
            (Status::Created, 127, "boom")
        );
    }
}
