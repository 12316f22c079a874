//! Security settings of a container beyond capabilities: seccomp profiles.

pub mod seccomp;
