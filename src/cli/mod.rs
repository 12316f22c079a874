//! Command-line front ends: `native` is ocishim's own CLI (clap), `fast` its clap-free
//! path for the frequent single-container commands; `output` formats what they print.
//! Each turns argv into the same `ContainerConfig` and calls `container`.

pub mod fast;
pub mod images;
pub mod native;
pub mod output;
pub mod template;
