//! Images: references, the content-addressed store, layer unpacking, archives and the
//! per-container overlay rootfs. Image work runs in the CLI process, never in a monitor.

pub mod digest;
pub mod reference;
pub mod rootfs;
pub mod store;
pub mod unpack;
