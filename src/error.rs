//! The crate's error: every module's typed error rolled up, plus the errors of the
//! container operations themselves. `main.rs` maps it to an exit status, in one place.

use std::io;
use std::path::PathBuf;

use crate::cgroup::CgroupError;
use crate::config::ConfigError;
use crate::image::ImageError;
use crate::monitor::MonitorError;
use crate::network::NetworkError;
use crate::record::Status;
use crate::runtime::RuntimeError;
use crate::spec::SpecError;
use crate::store::StoreError;
use crate::teardown::TeardownError;

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
    Network(#[from] NetworkError),
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    #[error(transparent)]
    Teardown(#[from] TeardownError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Userns(#[from] crate::security::userns::UsernsError),
    /// The rootfs given with --rootfs cannot be used.
    #[error("rootfs {}: {why}", path.display())]
    Rootfs { path: PathBuf, why: String },
    /// A --device (or, privileged, a host device) that is not a device node.
    #[error("error gathering device information while adding custom device {:?}: {why}", path.display().to_string())]
    Device { path: PathBuf, why: String },
    /// A -v source that does not exist (ocishim does not create it).
    #[error("invalid value for --volume: bind source path does not exist: {}", .0.display())]
    BindSourceMissing(PathBuf),
    /// --network container:ID names a container that does not run.
    #[error("cannot join network of a non running container: {0}")]
    JoinNotRunning(String),
    /// A --filter that is not name=REGEX, or a bad regex.
    #[error("invalid filter {filter:?}: {why}")]
    BadFilter { filter: String, why: String },
    /// A --format other than json or table.
    #[error("invalid format {0:?}: json or table")]
    BadFormat(String),
    /// A record written before ocishim kept the config (cannot be started or updated).
    #[error("container {0}: the record has no stored config")]
    NoStoredConfig(String),
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
    RemoveRunning { id: String, status: Status },
    #[error("container {id} is being created by process {pid}: try again once that is over (a create whose process is gone is removed at once)")]
    BeingCreated { id: String, pid: i32 },
    /// `start` of a create (or start) whose process is gone: half-made.
    #[error("container {id} is an abandoned create (the process creating it, pid {pid}, is gone): remove it with rm -f")]
    Abandoned { id: String, pid: i32 },
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
    /// A command used in a way it refuses (docker's words).
    #[error("{0}")]
    Usage(String),
    /// Errors already printed one a line (rm of several containers).
    #[error("some containers could not be removed")]
    Reported,
}

/// `map_err` helper: an I/O error with what was being done.
pub fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
