//! Security settings of a container beyond capabilities: seccomp profiles, user
//! namespaces (`--userns auto`).

pub mod seccomp;
pub mod userns;
