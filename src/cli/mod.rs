//! Command-line front ends: `native` is ocishim's own CLI (clap), `fast` its clap-free
//! path for the frequent single-container commands, `docker` docker's spelling of the same
//! commands; `output`, `system` and `template` format what they print.
//! Each turns argv into the same `ContainerConfig` and calls `container`.

pub mod docker;
pub mod fast;
pub mod filters;
pub mod images;
pub mod native;
pub mod output;
pub mod system;
pub mod template;
