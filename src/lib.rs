//! ocishim: a daemonless, low-level container shim that drives an OCI runtime.
//!
//! See README.md for the architecture; each module owns one concern and has its own
//! error type, rolled up into [`error::Error`] and mapped to exit codes in `main.rs`.

pub mod cgroup;
pub mod cli;
pub mod config;
pub mod container;
pub mod error;
pub mod exit_code;
pub mod log_file;
pub mod monitor;
pub mod network;
pub mod record;
pub mod runtime;
pub mod spec;
pub mod store;
pub mod sys;
pub mod teardown;
