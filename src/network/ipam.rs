//! IPv4 address allocation, one JSON file per network under a directory, every change made
//! under an exclusive flock and written atomically (temp file + rename). flock dies with
//! its process, so a lock held by a killed ocishim never blocks the next one.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;

use crate::store::{write_atomic, Lock};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("network {network}: no free address left in {subnet}")]
    Full { network: String, subnet: String },
    #[error("ipam {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("ipam {path}: corrupt allocation file: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
}

pub struct Ipam {
    dir: PathBuf,
}

type Table = BTreeMap<Ipv4Addr, String>;

impl Ipam {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Ipam { dir: dir.into() }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IpamError + '_ {
        move |source| IpamError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// Lock the network's table, load it, let `f` change it, save it if changed.
    fn with_table<T>(
        &self,
        network: &str,
        f: impl FnOnce(&mut Table) -> Result<(T, bool), IpamError>,
    ) -> Result<T, IpamError> {
        fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let lock_path = self.dir.join(format!("{network}.lock"));
        let _lock = Lock::acquire(&lock_path).map_err(Self::io(&lock_path))?;
        let path = self.dir.join(format!("{network}.json"));
        let mut table: Table = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| IpamError::Corrupt {
                path: path.display().to_string(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::new(),
            Err(e) => return Err(Self::io(&path)(e)),
        };
        let (out, changed) = f(&mut table)?;
        if changed {
            let data = serde_json::to_vec(&table).expect("table serializes");
            write_atomic(&path, &data).map_err(Self::io(&path))?;
        }
        Ok(out)
    }

    /// The lowest free host address of `subnet` (never the network, broadcast or gateway
    /// address) for `owner`; the same address again for an owner that has one.
    pub fn allocate(
        &self,
        network: &str,
        subnet: Ipv4Network,
        gateway: Ipv4Addr,
        owner: &str,
    ) -> Result<Ipv4Addr, IpamError> {
        self.with_table(network, |t| {
            if let Some((ip, _)) = t.iter().find(|(_, o)| o.as_str() == owner) {
                return Ok((*ip, false));
            }
            let net = u32::from(subnet.network());
            let bcast = u32::from(subnet.broadcast());
            let free = (net.saturating_add(1)..bcast)
                .map(Ipv4Addr::from)
                .find(|ip| *ip != gateway && !t.contains_key(ip));
            match free {
                Some(ip) => {
                    t.insert(ip, owner.to_string());
                    Ok((ip, true))
                }
                None => Err(IpamError::Full {
                    network: network.to_string(),
                    subnet: subnet.to_string(),
                }),
            }
        })
    }

    /// Release `owner`'s address; nothing to release is fine.
    pub fn release(&self, network: &str, owner: &str) -> Result<(), IpamError> {
        self.with_table(network, |t| {
            let before = t.len();
            t.retain(|_, o| o != owner);
            Ok(((), t.len() != before))
        })
    }

    pub fn allocations(&self, network: &str) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        self.with_table(network, |t| {
            Ok((t.iter().map(|(i, o)| (*i, o.clone())).collect(), false))
        })
    }

    /// Drop every allocation whose owner fails `keep`; returns the removed owners.
    pub fn retain(
        &self,
        network: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, IpamError> {
        self.with_table(network, |t| {
            let gone: Vec<String> = t.values().filter(|o| !keep(o)).cloned().collect();
            t.retain(|_, o| keep(o));
            let changed = !gone.is_empty();
            Ok((gone, changed))
        })
    }

    /// Names of networks that have an allocation table.
    pub fn networks(&self) -> Vec<String> {
        fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().into_string().ok()?;
                        n.strip_suffix(".json").map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> (Ipam, PathBuf) {
        let d = std::env::temp_dir().join(format!("ocishim-ipam-{}", crate::store::new_id()));
        (Ipam::new(&d), d)
    }

    #[test]
    fn lowest_free_skipping_gateway_and_idempotent() {
        let (ipam, d) = tmp();
        let net: Ipv4Network = "10.1.0.0/24".parse().unwrap();
        let gw: Ipv4Addr = "10.1.0.1".parse().unwrap();
        assert_eq!(
            ipam.allocate("n", net, gw, "a").unwrap(),
            Ipv4Addr::new(10, 1, 0, 2)
        );
        assert_eq!(
            ipam.allocate("n", net, gw, "b").unwrap(),
            Ipv4Addr::new(10, 1, 0, 3)
        );
        assert_eq!(
            ipam.allocate("n", net, gw, "a").unwrap(),
            Ipv4Addr::new(10, 1, 0, 2)
        );
        ipam.release("n", "a").unwrap();
        ipam.release("n", "nobody").unwrap();
        assert_eq!(
            ipam.allocate("n", net, gw, "c").unwrap(),
            Ipv4Addr::new(10, 1, 0, 2)
        );
        assert_eq!(ipam.allocations("n").unwrap().len(), 2);
        let gone = ipam.retain("n", |o| o == "b").unwrap();
        assert_eq!(gone, vec!["c".to_string()]);
        assert_eq!(ipam.networks(), vec!["n".to_string()]);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn full_subnet_is_an_error() {
        let (ipam, d) = tmp();
        let net: Ipv4Network = "10.2.0.0/30".parse().unwrap();
        let gw: Ipv4Addr = "10.2.0.1".parse().unwrap();
        assert_eq!(
            ipam.allocate("s", net, gw, "a").unwrap(),
            Ipv4Addr::new(10, 2, 0, 2)
        );
        let e = ipam.allocate("s", net, gw, "b").unwrap_err();
        assert!(matches!(e, IpamError::Full { .. }));
        assert!(e.to_string().contains("no free address"));
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn concurrent_allocations_are_distinct() {
        let (ipam, d) = tmp();
        let net: Ipv4Network = "10.3.0.0/24".parse().unwrap();
        let gw: Ipv4Addr = "10.3.0.1".parse().unwrap();
        // A lock file left by a dead process is harmless: flock state lives with the holder.
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("p.lock"), "").unwrap();
        let ips: Vec<Ipv4Addr> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let ipam = &ipam;
                    s.spawn(move || {
                        (0..10)
                            .map(|j| ipam.allocate("p", net, gw, &format!("o{i}-{j}")).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let set: std::collections::HashSet<_> = ips.iter().collect();
        assert_eq!(set.len(), 80);
        assert!(!set.contains(&gw));
        fs::remove_dir_all(d).unwrap();
    }
}
