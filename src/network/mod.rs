//! Container networking. For now: the per-container DNS and hosts files. The bridge,
//! netns and IPAM modules come with the networking issue.

pub mod dns;
