//! Container networking: named network namespaces, the bridge and veth pairs (netlink),
//! address allocation, named networks, and the per-container DNS and hosts files.

pub mod bridge;
pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod netns;

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

/// The default network's name, as docker's.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge and subnet (both configurable with --bridge, --bridge-subnet).
pub const DEFAULT_BRIDGE: &str = "ocishim0";
pub const DEFAULT_SUBNET: &str = "172.30.0.0/16";
/// Host ends of containers' veth pairs: "osv" + the first 11 characters of the ID.
pub const VETH_PREFIX: &str = "osv";

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("network {name} is in use by {count} container(s)")]
    InUse { name: String, count: usize },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Bridge(#[from] bridge::BridgeError),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error(transparent)]
    Firewall(#[from] firewall::FirewallError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// A bridge network: the default one or one made by `network create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkDef {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    /// Outbound NAT (masquerade) and IPv4 forwarding for this network; off by default.
    #[serde(default, rename = "EnableNAT")]
    pub nat: bool,
}

/// Docker's sysctls of a container's network namespace (unprivileged ports from 0, ping
/// for every group), written by ocishim into the namespace at `netns`: for a container
/// with a user namespace of its own, whose runtime cannot write them into a namespace
/// made in the host's user namespace.
pub fn set_sysctls(netns: &Path) -> Result<(), NetworkError> {
    netns::run_in(netns, || -> std::io::Result<()> {
        // /proc/sys/net is the namespace of the thread that opens it: this one.
        std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")?;
        std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")
    })?
    .map_err(|source| NetworkError::Io {
        what: "setting the sysctls of",
        path: netns.display().to_string(),
        source,
    })
}

/// Where networks and their state live.
#[derive(Debug, Clone)]
pub struct Networks {
    /// <data-root>/networks: one JSON file per named network.
    pub defs_dir: PathBuf,
    /// <root>/ipam and <root>/netns.
    pub root: PathBuf,
    pub default_bridge: String,
    pub default_subnet: Ipv4Network,
    /// --enable-nat: outbound NAT on the default network.
    pub default_nat: bool,
}

/// What a container got on its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub netns: PathBuf,
}

pub fn host_if(id: &str) -> String {
    format!("{VETH_PREFIX}{}", &id[..11])
}

fn first_host(subnet: Ipv4Network) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1))
}

fn bridge_name_for(name: &str) -> String {
    // A stable short name from the network's name (FNV-1a).
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    format!("osb{h:08x}")
}

impl Networks {
    pub fn new(root: &Path, data_root: &Path, bridge: &str, subnet: Ipv4Network) -> Networks {
        Networks {
            defs_dir: data_root.join("networks"),
            root: root.to_path_buf(),
            default_bridge: bridge.to_string(),
            default_subnet: subnet,
            default_nat: false,
        }
    }

    pub fn ipam(&self) -> ipam::Ipam {
        ipam::Ipam::new(self.root.join("ipam"))
    }

    pub fn netns_dir(&self) -> PathBuf {
        self.root.join("netns")
    }

    fn def_path(&self, name: &str) -> PathBuf {
        self.defs_dir.join(format!("{name}.json"))
    }

    pub fn default_def(&self) -> NetworkDef {
        NetworkDef {
            name: DEFAULT_NETWORK.into(),
            bridge: self.default_bridge.clone(),
            subnet: self.default_subnet,
            gateway: first_host(self.default_subnet),
            nat: self.default_nat,
        }
    }

    pub fn get(&self, name: &str) -> Result<NetworkDef, NetworkError> {
        if name == DEFAULT_NETWORK {
            return Ok(self.default_def());
        }
        let p = self.def_path(name);
        let data = fs::read(&p).map_err(|_| NetworkError::NotFound(name.to_string()))?;
        serde_json::from_slice(&data)
            .map_err(|e| NetworkError::Invalid(format!("network {name}: {e}")))
    }

    pub fn list(&self) -> Vec<NetworkDef> {
        let mut out = vec![self.default_def()];
        if let Ok(rd) = fs::read_dir(&self.defs_dir) {
            let mut named: Vec<NetworkDef> = rd
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .into_string()
                        .ok()?
                        .strip_suffix(".json")
                        .map(String::from)
                })
                .filter_map(|n| self.get(&n).ok())
                .collect();
            named.sort_by(|a, b| a.name.cmp(&b.name));
            out.extend(named);
        }
        out
    }

    /// `network create`: a new bridge network; the subnet must not overlap the host's
    /// routes or another network's.
    pub fn create(
        &self,
        name: &str,
        subnet: Option<Ipv4Network>,
        gateway: Option<Ipv4Addr>,
        nat: bool,
    ) -> Result<NetworkDef, NetworkError> {
        if matches!(name, "bridge" | "host" | "none" | "default") || name.starts_with("container:")
        {
            return Err(NetworkError::Exists(name.to_string()));
        }
        crate::config::validate_name(name).map_err(|e| NetworkError::Invalid(e.to_string()))?;
        if self.def_path(name).exists() {
            return Err(NetworkError::Exists(name.to_string()));
        }
        let others = self.list();
        let bridge = bridge_name_for(name);
        let subnet = match subnet {
            Some(s) => {
                if let Some(o) = others.iter().find(|o| o.subnet.overlaps(s)) {
                    return Err(NetworkError::Invalid(format!(
                        "subnet {s} overlaps network {} ({})",
                        o.name, o.subnet
                    )));
                }
                if let Some(route) = bridge::route_collision(s, &bridge)? {
                    return Err(NetworkError::Invalid(format!(
                        "subnet {s} collides with the host route {route}"
                    )));
                }
                s
            }
            None => {
                let mut found = None;
                for x in 0..=255u8 {
                    let s = Ipv4Network::new(Ipv4Addr::new(10, 213, x, 0), 24).expect("valid");
                    if others.iter().any(|o| o.subnet.overlaps(s)) {
                        continue;
                    }
                    if bridge::route_collision(s, &bridge)?.is_none() {
                        found = Some(s);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    NetworkError::Invalid("no free subnet in 10.213.0.0/16".into())
                })?
            }
        };
        let gateway = gateway.unwrap_or_else(|| first_host(subnet));
        if !subnet.contains(gateway) || gateway == subnet.network() || gateway == subnet.broadcast()
        {
            return Err(NetworkError::Invalid(format!(
                "gateway {gateway} is not a host address of {subnet}"
            )));
        }
        let def = NetworkDef {
            name: name.into(),
            bridge,
            subnet,
            gateway,
            nat,
        };
        fs::create_dir_all(&self.defs_dir).map_err(|source| NetworkError::Io {
            what: "creating",
            path: self.defs_dir.display().to_string(),
            source,
        })?;
        // Rules first: they name the bridge, which need not exist yet.
        firewall::add_bridge(&def.bridge, def.subnet, def.nat)?;
        let undo = |def: &NetworkDef| {
            let _ = bridge::delete_link(&def.bridge);
            let _ = firewall::remove_bridge(&def.bridge);
        };
        if let Err(e) = bridge::ensure_bridge(&def.bridge, def.gateway, def.subnet.prefix()) {
            undo(&def);
            return Err(e.into());
        }
        let data = serde_json::to_vec_pretty(&def).expect("def serializes");
        if let Err(source) = crate::store::write_atomic(&self.def_path(name), &data) {
            undo(&def);
            return Err(NetworkError::Io {
                what: "writing",
                path: self.def_path(name).display().to_string(),
                source,
            });
        }
        Ok(def)
    }

    /// `network rm`: refused while a container has an address on it.
    pub fn remove(&self, name: &str) -> Result<(), NetworkError> {
        if name == DEFAULT_NETWORK {
            return Err(NetworkError::Invalid(
                "bridge is a pre-defined network and cannot be removed".into(),
            ));
        }
        let def = self.get(name)?;
        let used = self.ipam().allocations(name)?;
        if !used.is_empty() {
            return Err(NetworkError::InUse {
                name: name.into(),
                count: used.len(),
            });
        }
        bridge::delete_link(&def.bridge)?;
        firewall::remove_bridge(&def.bridge)?;
        let _ = fs::remove_file(self.root.join("ipam").join(format!("{name}.json")));
        let _ = fs::remove_file(self.def_path(name));
        Ok(())
    }

    /// Give container `id` a namespace, an address and a veth on `def`'s bridge. The
    /// namespace is held by this process ([`netns::create_held`]): `Attachment::netns` is
    /// the path the runtime joins it by. On failure everything made is undone.
    pub fn attach(&self, def: &NetworkDef, id: &str) -> Result<Attachment, NetworkError> {
        // A bridge about to be made (first use, or after a reboot) gets its forwarding
        // rules first; NAT is (re)applied whenever asked for. Otherwise this is one stat.
        if def.nat || !Path::new("/sys/class/net").join(&def.bridge).exists() {
            firewall::add_bridge(&def.bridge, def.subnet, def.nat)?;
        }
        let ipam = self.ipam();
        let ip = ipam.allocate(&def.name, def.subnet, def.gateway, id)?;
        tracing::debug!(%ip, "address allocated");
        let ns = match netns::create_held(id) {
            Ok(p) => p,
            Err(e) => {
                let _ = ipam.release(&def.name, id);
                return Err(e.into());
            }
        };
        tracing::debug!("namespace created");
        match bridge::setup_veth(&def.bridge, def.subnet, &host_if(id), &ns, ip, def.gateway) {
            Ok(mac) => Ok(Attachment {
                network: def.name.clone(),
                ip,
                prefix: def.subnet.prefix(),
                gateway: def.gateway,
                mac,
                netns: ns,
            }),
            Err(e) => {
                netns::release(id);
                let _ = ipam.release(&def.name, id);
                Err(e.into())
            }
        }
    }

    /// [`Networks::attach`] for a container that had a namespace before (a start after
    /// an exit, or after a reboot): its address again when it still holds it, a new
    /// namespace and veth (the old veth first deleted, if the old namespace is still
    /// going, and an older version's namespace file removed).
    pub fn reattach(
        &self,
        def: &NetworkDef,
        id: &str,
        old_netns: &Path,
    ) -> Result<Attachment, NetworkError> {
        bridge::delete_link(&host_if(id))?;
        self.delete_netns_file(old_netns)?;
        self.attach(def, id)
    }

    /// Unmount and remove the namespace file at `path` when it is one of ours: only an
    /// older version made them (bind mounts under `<root>/netns`); other paths (a joined
    /// container's `/proc/PID/ns/net`) are left alone.
    fn delete_netns_file(&self, path: &Path) -> Result<(), netns::NetnsError> {
        if path.starts_with(self.netns_dir()) {
            netns::delete(path)?;
        }
        Ok(())
    }

    /// Undo `attach` (best effort, every step attempted): veth, namespace, address.
    pub fn detach(&self, network: &str, id: &str, netns_path: &Path) -> Result<(), NetworkError> {
        netns::release(id);
        let a = bridge::delete_link(&host_if(id)).map_err(NetworkError::from);
        let b = self
            .delete_netns_file(netns_path)
            .map_err(NetworkError::from);
        let c = self.ipam().release(network, id).map_err(NetworkError::from);
        a.and(b).and(c)
    }

    /// `network prune`: [`Networks::orphans`] (veths on no bridge too) reclaimed, then the
    /// forwarding rules of bridges that no longer exist. (Not part of `gc`: a bridge's rules
    /// are added just before the bridge is made, so a concurrent first attach could lose
    /// them.)
    pub fn prune(&self, alive: &dyn Fn(&str) -> bool) -> Result<Vec<String>, NetworkError> {
        let mut removed = Vec::new();
        for o in self.orphans(alive, true)? {
            if self.reclaim(&o)? {
                removed.push(o.line());
            }
        }
        for b in firewall::bridges() {
            if !bridge::link_exists(&b)? {
                firewall::remove_bridge(&b)?;
                removed.push(format!("forwarding rules of {b}"));
            }
        }
        Ok(removed)
    }

    /// Allocations, namespaces (older versions' files) and veths on this installation's
    /// bridges whose container record is gone (`alive` says whether an owner has one); with
    /// `masterless`, veths on no bridge too (`network prune` only: another installation's
    /// may be between its creation and its attachment). Nothing is changed:
    /// [`Networks::reclaim`] reclaims one.
    pub fn orphans(
        &self,
        alive: &dyn Fn(&str) -> bool,
        masterless: bool,
    ) -> Result<Vec<Orphan>, NetworkError> {
        let mut found = Vec::new();
        let ipam = self.ipam();
        for net in ipam.networks() {
            for (ip, owner) in ipam.allocations(&net)? {
                if !alive(&owner) {
                    found.push(Orphan::Address {
                        network: net.clone(),
                        ip,
                        owner,
                    });
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.netns_dir()) {
            for e in rd.flatten() {
                let owner = e.file_name().to_string_lossy().into_owned();
                if !alive(&owner) {
                    found.push(Orphan::Namespace {
                        path: e.path(),
                        owner,
                    });
                }
            }
        }
        // Veths on this installation's bridges (or on none: their bridge is gone); another
        // --root's containers sit on other bridges and are left alone.
        let ours: Vec<String> = self.list().into_iter().map(|d| d.bridge).collect();
        for link in bridge::links_with_prefix(VETH_PREFIX)? {
            let short = &link[VETH_PREFIX.len()..];
            let master = fs::read_link(Path::new("/sys/class/net").join(&link).join("master"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            let mine = match &master {
                Some(m) => ours.contains(m),
                None => masterless,
            };
            if short.len() == 11 && mine && !alive(short) {
                found.push(Orphan::Veth {
                    owner: short.to_string(),
                    link,
                });
            }
        }
        Ok(found)
    }

    /// Reclaim what [`Networks::orphans`] found; false when it was gone already (a removal
    /// under way, or the namespace that held a veth went meanwhile).
    pub fn reclaim(&self, o: &Orphan) -> Result<bool, NetworkError> {
        Ok(match o {
            Orphan::Address { network, ip, owner } => {
                self.ipam().release_address(network, *ip, owner)?
            }
            Orphan::Namespace { path, .. } => {
                let there = path.exists();
                netns::delete(path)?;
                there
            }
            Orphan::Veth { link, .. } => {
                let there = bridge::link_exists(link)?;
                bridge::delete_link(link)?;
                there
            }
        })
    }
}

/// A network resource whose container has no record ([`Networks::orphans`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Orphan {
    /// An address allocation.
    Address {
        network: String,
        ip: Ipv4Addr,
        owner: String,
    },
    /// An older version's namespace file under `<root>/netns`.
    Namespace { path: PathBuf, owner: String },
    /// A veth; its owner is the first 11 characters of the container ID.
    Veth { link: String, owner: String },
}

impl Orphan {
    /// The container ID it belongs to (a veth: the ID's first 11 characters).
    pub fn owner(&self) -> &str {
        match self {
            Orphan::Address { owner, .. }
            | Orphan::Namespace { owner, .. }
            | Orphan::Veth { owner, .. } => owner,
        }
    }

    /// What `gc` and `network prune` print for it, reclaimed (or with `gc --dry-run`, to
    /// reclaim).
    pub fn line(&self) -> String {
        match self {
            Orphan::Address { network, ip, owner } => {
                format!("address {ip} of {owner} on {network}")
            }
            Orphan::Namespace { owner, .. } => format!("namespace {owner}"),
            Orphan::Veth { link, .. } => format!("veth {link}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(host_if(&id), "osv0123456789a");
        assert!(host_if(&id).len() < 15, "the peer name fits IFNAMSIZ");
        assert_eq!(bridge_name_for("a"), bridge_name_for("a"));
        assert_ne!(bridge_name_for("a"), bridge_name_for("b"));
        assert!(bridge_name_for("some-long-network-name").len() <= 15);
        assert_eq!(
            first_host("10.0.0.0/24".parse().unwrap()),
            Ipv4Addr::new(10, 0, 0, 1)
        );
    }

    #[test]
    fn defs_on_disk() {
        let d = std::env::temp_dir().join(format!("ocishim-nets-{}", crate::store::new_id()));
        let n = Networks {
            defs_dir: d.join("defs"),
            root: d.join("root"),
            default_bridge: "osx0".into(),
            default_subnet: "10.99.0.0/16".parse().unwrap(),
            default_nat: false,
        };
        assert_eq!(
            n.get("bridge").unwrap().gateway,
            Ipv4Addr::new(10, 99, 0, 1)
        );
        assert!(matches!(n.get("nosuch"), Err(NetworkError::NotFound(_))));
        assert!(matches!(
            n.create("bridge", None, None, false),
            Err(NetworkError::Exists(_))
        ));
        assert_eq!(n.list().len(), 1);
        let _ = fs::remove_dir_all(d);
    }
}
