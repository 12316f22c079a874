//! Forwarding rules for ocishim's bridges, in one nftables table (`ip ocishim`).
//!
//! Every bridge ocishim makes gets two chains, reached through verdict maps keyed by the
//! bridge's name, so a bridge's rules are added and removed by name in one atomic `nft -f`
//! transaction without touching any other bridge's:
//!
//! - from the bridge: to the same bridge accept; to another ocishim bridge drop; anywhere
//!   else drop, unless NAT is enabled on the network;
//! - to the bridge: drop, unless NAT is enabled, when replies of connections made from it
//!   are let through;
//! - with NAT, packets from the network's subnet leaving by another interface are
//!   masqueraded, and IPv4 forwarding is switched on (as docker does; it stays on).
//!
//! So networks are isolated from each other and from the outside also on a host that
//! forwards (ip_forward=1, a docker host), and NAT is opt-in. The rules are per network,
//! not per container: they are written when a bridge is first used or a network made, never
//! on a container's hot path. nftables is driven through `nft -f -` (one transaction per
//! change); container links themselves are made with netlink.

use std::io::Write;
use std::process::{Command, Stdio};

use ipnetwork::Ipv4Network;

/// The nftables table holding every ocishim rule (family ip).
pub const TABLE: &str = "ocishim";
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nft not found: install nftables (bridge networks need its forwarding rules)")]
    NoNft,
    #[error("nft failed: {0}")]
    Nft(String),
    #[error("enabling IPv4 forwarding ({IP_FORWARD}): {0}")]
    Forwarding(std::io::Error),
}

/// The chain-name suffix of a bridge: its name in hex (interface names may hold '.' and
/// '-', which nft identifiers do not take unquoted).
fn tag(bridge: &str) -> String {
    bridge.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The table, its sets and maps and base chains; idempotent (`add` of what exists is a
/// no-op; the base chains are flushed and refilled).
fn skeleton() -> String {
    format!(
        "add table ip {TABLE}
add set ip {TABLE} bridges {{ type ifname; }}
add map ip {TABLE} from_bridge {{ type ifname : verdict; }}
add map ip {TABLE} to_bridge {{ type ifname : verdict; }}
add map ip {TABLE} nat_from {{ type ifname : verdict; }}
add chain ip {TABLE} forward {{ type filter hook forward priority -1; policy accept; }}
add chain ip {TABLE} postrouting {{ type nat hook postrouting priority 100; policy accept; }}
flush chain ip {TABLE} forward
flush chain ip {TABLE} postrouting
add rule ip {TABLE} forward iifname vmap @from_bridge
add rule ip {TABLE} forward oifname vmap @to_bridge
add rule ip {TABLE} postrouting iifname vmap @nat_from
"
    )
}

/// The script that (re)writes `bridge`'s rules.
pub fn add_script(bridge: &str, subnet: Ipv4Network, nat: bool) -> String {
    let t = tag(bridge);
    let mut s = skeleton();
    let from = format!("from_{t}");
    let to = format!("to_{t}");
    let masq = format!("nat_{t}");
    for c in [&from, &to, &masq] {
        s += &format!("add chain ip {TABLE} {c}\nflush chain ip {TABLE} {c}\n");
    }
    s += &format!("add rule ip {TABLE} {from} oifname \"{bridge}\" accept\n");
    s += &format!("add rule ip {TABLE} {from} oifname @bridges drop\n");
    if nat {
        s += &format!("add rule ip {TABLE} {from} accept\n");
        s += &format!("add rule ip {TABLE} {to} ct state established,related accept\n");
        s += &format!(
            "add rule ip {TABLE} {masq} ip saddr {subnet} oifname != \"{bridge}\" masquerade\n"
        );
    } else {
        s += &format!("add rule ip {TABLE} {from} drop\n");
    }
    s += &format!("add rule ip {TABLE} {to} drop\n");
    s += &format!("add element ip {TABLE} bridges {{ \"{bridge}\" }}\n");
    s += &format!("add element ip {TABLE} from_bridge {{ \"{bridge}\" : jump {from} }}\n");
    s += &format!("add element ip {TABLE} to_bridge {{ \"{bridge}\" : jump {to} }}\n");
    s += &format!("add element ip {TABLE} nat_from {{ \"{bridge}\" : jump {masq} }}\n");
    s
}

/// The script that removes `bridge`'s rules (whether or not they exist: each element is
/// added first, so deleting it cannot fail).
pub fn remove_script(bridge: &str) -> String {
    let t = tag(bridge);
    let mut s = skeleton();
    let chains = [format!("from_{t}"), format!("to_{t}"), format!("nat_{t}")];
    for c in &chains {
        s += &format!("add chain ip {TABLE} {c}\n");
    }
    s += &format!("add element ip {TABLE} bridges {{ \"{bridge}\" }}\n");
    for (map, c) in [
        ("from_bridge", &chains[0]),
        ("to_bridge", &chains[1]),
        ("nat_from", &chains[2]),
    ] {
        s += &format!("add element ip {TABLE} {map} {{ \"{bridge}\" : jump {c} }}\n");
        s += &format!("delete element ip {TABLE} {map} {{ \"{bridge}\" }}\n");
    }
    s += &format!("delete element ip {TABLE} bridges {{ \"{bridge}\" }}\n");
    for c in &chains {
        s += &format!("flush chain ip {TABLE} {c}\ndelete chain ip {TABLE} {c}\n");
    }
    s
}

fn nft(script: &str) -> Result<(), FirewallError> {
    let exe = crate::runtime::which("nft").ok_or(FirewallError::NoNft)?;
    let mut child = Command::new(exe)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FirewallError::Nft(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| FirewallError::Nft(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| FirewallError::Nft(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("Error:"))
        .or_else(|| err.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("exited non-zero")
        .trim()
        .to_string();
    Err(FirewallError::Nft(line))
}

/// Install (or rewrite) `bridge`'s rules; with `nat`, also switch IPv4 forwarding on.
pub fn add_bridge(bridge: &str, subnet: Ipv4Network, nat: bool) -> Result<(), FirewallError> {
    nft(&add_script(bridge, subnet, nat))?;
    if nat {
        if let Err(e) = enable_forwarding() {
            // Leave no half-applied NAT behind: the rules go with the failure.
            let _ = nft(&remove_script(bridge));
            return Err(e);
        }
    }
    tracing::debug!(bridge, nat, "forwarding rules written");
    Ok(())
}

/// Remove `bridge`'s rules (a bridge without rules is fine).
pub fn remove_bridge(bridge: &str) -> Result<(), FirewallError> {
    match crate::runtime::which("nft") {
        None => Ok(()),
        Some(_) => nft(&remove_script(bridge)),
    }
}

/// The bridges that have rules in ocishim's table (none when there is no table or no nft).
pub fn bridges() -> Vec<String> {
    let Some(exe) = crate::runtime::which("nft") else {
        return Vec::new();
    };
    Command::new(exe)
        .args(["list", "set", "ip", TABLE, "bridges"])
        .stderr(Stdio::null())
        .output()
        .map(|o| set_elements(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

/// The quoted names in `nft list set` output's `elements = { ... }`.
fn set_elements(text: &str) -> Vec<String> {
    let Some((_, rest)) = text.split_once("elements") else {
        return Vec::new();
    };
    let body = rest.split('}').next().unwrap_or("");
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// Whether `bridge` has rules in ocishim's table.
pub fn has_bridge(bridge: &str) -> bool {
    bridges().iter().any(|b| b == bridge)
}

fn enable_forwarding() -> Result<(), FirewallError> {
    let cur = std::fs::read_to_string(IP_FORWARD).map_err(FirewallError::Forwarding)?;
    if cur.trim() != "1" {
        std::fs::write(IP_FORWARD, "1").map_err(FirewallError::Forwarding)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_listing_is_parsed() {
        let out = "table ip ocishim {\n\tset bridges {\n\t\ttype ifname\n\t\telements = { \"osb1\",\n\t\t\t     \"ocishim0\" }\n\t}\n}\n";
        assert_eq!(set_elements(out), vec!["osb1", "ocishim0"]);
        assert!(
            set_elements("table ip ocishim {\n\tset bridges {\n\t\ttype ifname\n\t}\n}\n")
                .is_empty()
        );
    }

    #[test]
    fn chain_names_are_plain_identifiers() {
        assert_eq!(tag("ocishim0"), "6f63697368696d30");
        assert_eq!(tag("br-x.1"), "62722d782e31");
    }

    #[test]
    fn isolated_bridge_forwards_nothing_but_to_itself() {
        let s = add_script("ocishim0", "172.30.0.0/16".parse().unwrap(), false);
        let t = tag("ocishim0");
        assert!(s.contains(&format!(
            "add rule ip ocishim from_{t} oifname \"ocishim0\" accept\n"
        )));
        assert!(s.contains(&format!("add rule ip ocishim from_{t} drop\n")));
        assert!(s.contains(&format!("add rule ip ocishim to_{t} drop\n")));
        assert!(!s.contains("masquerade"));
        assert!(!s.contains("established"));
        // Same-bridge accept comes before the drops.
        let acc = s.find("oifname \"ocishim0\" accept").unwrap();
        assert!(acc < s.find("oifname @bridges drop").unwrap());
    }

    #[test]
    fn nat_bridge_masquerades_its_subnet_and_lets_replies_in() {
        let s = add_script("osb1", "10.1.2.0/24".parse().unwrap(), true);
        let t = tag("osb1");
        assert!(s.contains(&format!(
            "add rule ip ocishim nat_{t} ip saddr 10.1.2.0/24 oifname != \"osb1\" masquerade\n"
        )));
        assert!(s.contains(&format!("to_{t} ct state established,related accept")));
        assert!(s.contains(&format!("add rule ip ocishim from_{t} accept\n")));
        // Other ocishim bridges stay unreachable even with NAT.
        let drop = s.find(&format!("from_{t} oifname @bridges drop")).unwrap();
        assert!(drop < s.find(&format!("from_{t} accept\n")).unwrap());
    }

    #[test]
    fn remove_adds_each_element_before_deleting_it() {
        let s = remove_script("osb1");
        for map in ["bridges", "from_bridge", "to_bridge", "nat_from"] {
            let add = s.find(&format!("add element ip ocishim {map} ")).unwrap();
            let del = s
                .find(&format!("delete element ip ocishim {map} "))
                .unwrap();
            assert!(add < del, "{map}");
        }
        let t = tag("osb1");
        for c in ["from", "to", "nat"] {
            assert!(s.contains(&format!("delete chain ip ocishim {c}_{t}\n")));
        }
    }
}
