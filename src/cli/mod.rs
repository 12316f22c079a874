//! Command-line front ends. `native` is ocishim's own CLI; both turn argv into the same
//! `ContainerConfig` and call `lifecycle`.

pub mod fast;
pub mod native;
