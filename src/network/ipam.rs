//! IPv4 address allocation, one directory per network, every change made under an
//! exclusive flock (flock dies with its process, so a lock held by a killed ocishim never
//! blocks the next one). Each allocated address is a symlink named by the address whose
//! target is its owner, made with the one `symlink` call that fails when the address is
//! taken; each owner has a symlink `owner.<ID>` to its address; `low` holds the lowest
//! address that may be free (every one below it is taken). Allocating and releasing are
//! then a handful of calls whatever the number of containers: the JSON table of earlier
//! versions was read and written whole, a millisecond at 900 containers on every `run -d`
//! and `rm`. A table left by an earlier version is taken over on first use.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;

use crate::store::Lock;

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

/// One network's allocations, while its lock is held.
struct Table {
    dir: PathBuf,
}

/// The name of `owner`'s link to its address.
fn owner_link(owner: &str) -> String {
    format!("owner.{owner}")
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IpamError + '_ {
    move |source| IpamError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Table {
    fn link(&self, name: &str) -> Option<String> {
        fs::read_link(self.dir.join(name))
            .ok()?
            .into_os_string()
            .into_string()
            .ok()
    }

    fn owner_of(&self, ip: Ipv4Addr) -> Option<String> {
        self.link(&ip.to_string())
    }

    /// `owner`'s address, when both of its links agree.
    fn address_of(&self, owner: &str) -> Option<Ipv4Addr> {
        let ip: Ipv4Addr = self.link(&owner_link(owner))?.parse().ok()?;
        (self.owner_of(ip).as_deref() == Some(owner)).then_some(ip)
    }

    /// Take `ip` for `owner`: false when it is taken.
    fn take(&self, ip: Ipv4Addr, owner: &str) -> Result<bool, IpamError> {
        let p = self.dir.join(ip.to_string());
        match symlink(owner, &p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    fn name(&self, owner: &str, ip: Ipv4Addr) -> Result<(), IpamError> {
        let p = self.dir.join(owner_link(owner));
        let _ = fs::remove_file(&p);
        symlink(ip.to_string(), &p).map_err(io_err(&p))
    }

    /// Free `ip` (and its owner's link when it names this address).
    fn free(&self, ip: Ipv4Addr, owner: &str) -> Result<(), IpamError> {
        let p = self.dir.join(ip.to_string());
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&p)(e)),
            _ => {}
        }
        let link = owner_link(owner);
        if self.link(&link) == Some(ip.to_string()) {
            let _ = fs::remove_file(self.dir.join(link));
        }
        if self.low().is_none_or(|low| ip < low) {
            self.set_low(ip);
        }
        Ok(())
    }

    /// The hint: None when missing or unreadable (then the search starts at the subnet).
    fn low(&self) -> Option<Ipv4Addr> {
        fs::read_to_string(self.dir.join("low"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Rewritten in place: a torn write reads as no hint, which is slower, not wrong.
    fn set_low(&self, ip: Ipv4Addr) {
        let _ = fs::write(self.dir.join("low"), ip.to_string());
    }

    fn all(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut out: Vec<(Ipv4Addr, String)> = rd
            .flatten()
            .filter_map(|e| {
                let ip: Ipv4Addr = e.file_name().to_str()?.parse().ok()?;
                Some((ip, self.owner_of(ip)?))
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

impl Ipam {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Ipam { dir: dir.into() }
    }

    /// Lock the network's allocations and let `f` work on them; an earlier version's
    /// table is taken over first.
    fn with_table<T>(
        &self,
        network: &str,
        f: impl FnOnce(&Table) -> Result<T, IpamError>,
    ) -> Result<T, IpamError> {
        let t = Table {
            dir: self.dir.join(network),
        };
        fs::create_dir_all(&t.dir).map_err(io_err(&t.dir))?;
        let lock_path = self.dir.join(format!("{network}.lock"));
        let _lock = Lock::acquire(&lock_path).map_err(io_err(&lock_path))?;
        let old = self.dir.join(format!("{network}.json"));
        match fs::read(&old) {
            Ok(b) => {
                let table: BTreeMap<Ipv4Addr, String> =
                    serde_json::from_slice(&b).map_err(|source| IpamError::Corrupt {
                        path: old.display().to_string(),
                        source,
                    })?;
                for (ip, owner) in &table {
                    if t.take(*ip, owner)? {
                        t.name(owner, *ip)?;
                    }
                }
                fs::remove_file(&old).map_err(io_err(&old))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&old)(e)),
        }
        f(&t)
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
            if let Some(ip) = t.address_of(owner) {
                return Ok(ip);
            }
            let first = u32::from(subnet.network()).saturating_add(1);
            let end = u32::from(subnet.broadcast());
            let low = t
                .low()
                .map(u32::from)
                .filter(|l| (first..end).contains(l))
                .unwrap_or(first);
            // From the hint up, then (should the hint be wrong) the rest.
            for a in (low..end).chain(first..low) {
                let ip = Ipv4Addr::from(a);
                if ip != gateway && t.take(ip, owner)? {
                    crate::sys::failpoint("ipam::taken");
                    // A failed allocation holds nothing: the address goes back.
                    if let Err(e) = t.name(owner, ip) {
                        let _ = fs::remove_file(t.dir.join(ip.to_string()));
                        return Err(e);
                    }
                    t.set_low(Ipv4Addr::from(a + 1));
                    return Ok(ip);
                }
            }
            Err(IpamError::Full {
                network: network.to_string(),
                subnet: subnet.to_string(),
            })
        })
    }

    /// Release `owner`'s address; nothing to release is fine. An allocation killed
    /// between taking its address and naming it (a create killed, say by the invoker's
    /// SIGTERM) left the address without the owner's link: found by its owner then (a
    /// listing of the table, only when the owner's link is missing).
    pub fn release(&self, network: &str, owner: &str) -> Result<(), IpamError> {
        self.with_table(network, |t| match t.address_of(owner) {
            Some(ip) => t.free(ip, owner),
            None => {
                let _ = fs::remove_file(t.dir.join(owner_link(owner)));
                for (ip, o) in t.all()? {
                    if o == owner {
                        t.free(ip, owner)?;
                    }
                }
                Ok(())
            }
        })
    }

    /// Free `ip` if `owner` holds it; whether it did.
    pub fn release_address(
        &self,
        network: &str,
        ip: Ipv4Addr,
        owner: &str,
    ) -> Result<bool, IpamError> {
        self.with_table(network, |t| {
            if t.owner_of(ip).as_deref() != Some(owner) {
                return Ok(false);
            }
            t.free(ip, owner)?;
            Ok(true)
        })
    }

    /// Every address taken and its owner, in address order.
    pub fn allocations(&self, network: &str) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        self.with_table(network, |t| t.all())
    }

    /// Drop every allocation whose owner fails `keep`; returns the removed owners.
    pub fn retain(
        &self,
        network: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, IpamError> {
        self.with_table(network, |t| {
            let mut gone = Vec::new();
            for (ip, owner) in t.all()? {
                if !keep(&owner) {
                    t.free(ip, &owner)?;
                    gone.push(owner);
                }
            }
            Ok(gone)
        })
    }

    /// Names of networks that have allocations (or an earlier version's table).
    pub fn networks(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().into_string().ok()?;
                        if e.file_type().ok()?.is_dir() {
                            return Some(n);
                        }
                        n.strip_suffix(".json").map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
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

    /// An earlier version's JSON table is taken over, addresses and owners as they were;
    /// after it the search starts at the lowest free address again.
    #[test]
    fn a_table_of_an_earlier_version_is_taken_over() {
        let (ipam, d) = tmp();
        let net: Ipv4Network = "10.4.0.0/24".parse().unwrap();
        let gw: Ipv4Addr = "10.4.0.1".parse().unwrap();
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("old.json"),
            r#"{"10.4.0.2":"a","10.4.0.3":"b","10.4.0.5":"c"}"#,
        )
        .unwrap();
        assert_eq!(ipam.networks(), vec!["old".to_string()]);
        assert_eq!(
            ipam.allocate("old", net, gw, "b").unwrap(),
            Ipv4Addr::new(10, 4, 0, 3)
        );
        assert!(!d.join("old.json").exists());
        assert_eq!(
            ipam.allocate("old", net, gw, "d").unwrap(),
            Ipv4Addr::new(10, 4, 0, 4)
        );
        assert_eq!(
            ipam.allocate("old", net, gw, "e").unwrap(),
            Ipv4Addr::new(10, 4, 0, 6)
        );
        let all = ipam.allocations("old").unwrap();
        assert_eq!(
            all.iter().map(|(_, o)| o.as_str()).collect::<Vec<_>>(),
            ["a", "b", "d", "c", "e"]
        );
        // A garbage table is an error naming it, and nothing is taken over.
        fs::write(d.join("bad.json"), "{").unwrap();
        let e = ipam.allocate("bad", net, gw, "x").unwrap_err();
        assert!(e.to_string().contains("bad.json"), "{e}");
        fs::remove_dir_all(d).unwrap();
    }

    /// What a create killed between its two links leaves (an address without its owner's
    /// link) is never handed out twice, and `retain` reclaims it.
    #[test]
    fn a_half_made_allocation_is_never_given_twice() {
        let (ipam, d) = tmp();
        let net: Ipv4Network = "10.5.0.0/29".parse().unwrap();
        let gw: Ipv4Addr = "10.5.0.1".parse().unwrap();
        assert_eq!(
            ipam.allocate("h", net, gw, "a").unwrap(),
            Ipv4Addr::new(10, 5, 0, 2)
        );
        fs::remove_file(d.join("h/owner.a")).unwrap();
        fs::remove_file(d.join("h/low")).unwrap();
        assert_eq!(
            ipam.allocate("h", net, gw, "b").unwrap(),
            Ipv4Addr::new(10, 5, 0, 3)
        );
        assert_eq!(
            ipam.retain("h", |o| o == "b").unwrap(),
            vec!["a".to_string()]
        );
        assert_eq!(
            ipam.allocate("h", net, gw, "c").unwrap(),
            Ipv4Addr::new(10, 5, 0, 2)
        );
        ipam.release("h", "b").unwrap();
        ipam.release("h", "c").unwrap();
        assert!(ipam.allocations("h").unwrap().is_empty());
        fs::remove_dir_all(d).unwrap();
    }

    /// An allocation that fails half-way (its owner's link cannot be made) gives the
    /// address back.
    #[test]
    fn an_allocation_killed_before_its_owner_link_is_released() {
        let (ipam, d) = tmp();
        let net: Ipv4Network = "10.7.0.0/29".parse().unwrap();
        let gw: Ipv4Addr = "10.7.0.1".parse().unwrap();
        let a = ipam.allocate("n", net, gw, "a").unwrap();
        // Killed between the address's link and the owner's.
        let t = Table { dir: d.join("n") };
        assert!(t.take("10.7.0.5".parse().unwrap(), "b").unwrap());
        assert_eq!(ipam.allocations("n").unwrap().len(), 2);
        ipam.release("n", "b").unwrap();
        assert_eq!(ipam.allocations("n").unwrap(), vec![(a, "a".to_string())]);
        ipam.release("n", "a").unwrap();
        assert_eq!(ipam.allocations("n").unwrap(), vec![]);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_failed_allocation_holds_nothing() {
        let (ipam, d) = tmp();
        let net: Ipv4Network = "10.6.0.0/29".parse().unwrap();
        let gw: Ipv4Addr = "10.6.0.1".parse().unwrap();
        // An owner name no link can have (a path separator in it).
        assert!(ipam.allocate("f", net, gw, "a/b").is_err());
        assert!(ipam.allocations("f").unwrap().is_empty());
        assert_eq!(
            ipam.allocate("f", net, gw, "c").unwrap(),
            Ipv4Addr::new(10, 6, 0, 2)
        );
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
