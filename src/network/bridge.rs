//! Bridge and veth through netlink (rtnetlink), one connection per public call, on a
//! current-thread tokio runtime made for that call. Work inside a container's namespace
//! runs on a thread that has joined it (a netlink socket belongs to the namespace it was
//! opened in).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::stream::TryStreamExt;
use ipnetwork::Ipv4Network;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoVeth, LinkAttribute, LinkFlags,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::netns;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("netlink: {what}: {}", describe(source))]
    Netlink {
        what: String,
        source: rtnetlink::Error,
    },
    #[error("netlink: {0}")]
    Setup(String),
    #[error(
        "bridge {0} has no free port: a Linux bridge takes at most {MAX_PORTS} links \
         (give containers beyond that another network, with a bridge of its own)"
    )]
    NoFreePort(String),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> BridgeError {
    let what = what.into();
    move |source| BridgeError::Netlink { what, source }
}

/// The most links one Linux bridge takes: port numbers are 10 bits and 0 is not used
/// (`BR_MAX_PORTS`); one more is refused with EXFULL.
pub const MAX_PORTS: usize = 1023;

/// The kernel's refusal as the errno it is (rtnetlink's own text wraps it in "Received a
/// netlink error message").
fn describe(e: &rtnetlink::Error) -> String {
    match errno(e) {
        Some(n) => std::io::Error::from_raw_os_error(n).to_string(),
        None => e.to_string(),
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// How long one batch of netlink requests may take. The kernel answers in microseconds; a
/// reply that never comes (a message lost to a full socket buffer) must not hang a create
/// or a removal forever.
const NETLINK_BOUND: std::time::Duration = std::time::Duration::from_secs(30);

/// Run `f` with a netlink handle in the current thread's namespace, bounded by
/// [`NETLINK_BOUND`].
fn with_handle<T, F, Fut>(f: F) -> Result<T, BridgeError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Result<T, BridgeError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| BridgeError::Setup(format!("tokio runtime: {e}")))?;
    rt.block_on(async move {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| BridgeError::Setup(format!("netlink socket: {e}")))?;
        let task = tokio::spawn(conn);
        let out = tokio::time::timeout(NETLINK_BOUND, f(handle)).await;
        task.abort();
        out.unwrap_or_else(|_| {
            Err(BridgeError::Setup(format!(
                "netlink did not answer within {}s",
                NETLINK_BOUND.as_secs()
            )))
        })
    })
}

async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, BridgeError> {
    Ok(link_of(h, name).await?.map(|(i, _)| i))
}

/// A link's index and whether it is up, by name (None when there is none).
async fn link_of(h: &Handle, name: &str) -> Result<Option<(u32, bool)>, BridgeError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some((
            l.header.index,
            l.header.flags.contains(LinkFlags::Up),
        ))),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("looking up {name}"))(e)),
    }
}

/// Create the bridge if missing, give it `gateway/prefix`, set it up. Idempotent and safe
/// when processes race.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<(), BridgeError> {
    with_handle(|h| async move { ensure(&h, name, gateway, prefix, None).await.map(drop) })
}

/// The first IPv4 route of the main table overlapping `subnet`, not via `own_index`.
async fn collision(
    h: &Handle,
    subnet: Ipv4Network,
    own_index: Option<u32>,
) -> Result<Option<String>, BridgeError> {
    let mut routes = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(r) = routes.try_next().await.map_err(nl("listing routes"))? {
        if r.header.table != 254 || r.header.destination_prefix_length == 0 {
            continue;
        }
        let mut dst = None;
        let mut oif = None;
        for a in &r.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(*d),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        let Some(d) = dst else { continue };
        if oif.is_some() && oif == own_index {
            continue;
        }
        let Ok(net) = Ipv4Network::new(d, r.header.destination_prefix_length) else {
            continue;
        };
        if net.overlaps(subnet) {
            return Ok(Some(format!("{net}")));
        }
    }
    Ok(None)
}

/// ensure_bridge inside an open connection; with `check`, a bridge that has to be made
/// first has its subnet checked against the host's routes. Returns the bridge's index.
///
/// Every `run -d` on the network passes here, so an existing bridge costs three requests
/// of constant cost whatever the number of ports: its index by name, its gateway address
/// added (EEXIST when it has it: a dump of the host's addresses instead walked every link,
/// a thousand veths' worth), and up only when it is not.
async fn ensure(
    h: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
    check: Option<Ipv4Network>,
) -> Result<u32, BridgeError> {
    let (idx, up) = match link_of(h, name).await? {
        Some(found) => found,
        None => {
            if let Some(subnet) = check {
                let found = match collision(h, subnet, None).await? {
                    // Another ocishim may have made this very bridge meanwhile: its own
                    // route is not a collision.
                    Some(_) => match index_of(h, name).await? {
                        Some(i) => collision(h, subnet, Some(i)).await?,
                        None => collision(h, subnet, None).await?,
                    },
                    None => None,
                };
                if let Some(route) = found {
                    return Err(BridgeError::Setup(format!(
                        "subnet {subnet} of bridge {name} collides with the host route {route}: choose another subnet"
                    )));
                }
            }
            // The bridge's own MAC, set as docker sets one: otherwise the kernel gives it
            // the lowest of its ports' and looks for that through every port each time a
            // port joins or leaves (and changes it when the lowest leaves).
            let msg = LinkBridge::new(name)
                .address(mac_for(gateway).to_vec())
                .build();
            match h.link().add(msg).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                Err(e) => return Err(nl(format!("creating bridge {name}"))(e)),
            }
            link_of(h, name)
                .await?
                .ok_or_else(|| BridgeError::Setup(format!("bridge {name} vanished")))?
        }
    };
    match h
        .address()
        .add(idx, IpAddr::V4(gateway), prefix)
        .execute()
        .await
    {
        Ok(()) => {}
        Err(e) if errno(&e) == Some(libc::EEXIST) => {}
        Err(e) => return Err(nl(format!("adding {gateway}/{prefix} to {name}"))(e)),
    }
    if !up {
        h.link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(nl(format!("setting {name} up")))?;
    }
    Ok(idx)
}

/// docker's MAC for an address: 02:42 then the IPv4 bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A veth pair: `host_if` on `bridge` and up; the peer in the namespace at `netns` as
/// eth0 with `ip/prefix`, up, lo up, default route via `gateway`. Returns eth0's MAC. On
/// failure the veth is deleted.
pub fn setup_veth(
    bridge: &str,
    subnet: Ipv4Network,
    host_if: &str,
    netns_path: &Path,
    ip: Ipv4Addr,
    gateway: Ipv4Addr,
) -> Result<String, BridgeError> {
    let prefix = subnet.prefix();
    let ns_file = std::fs::File::open(netns_path)
        .map_err(|e| BridgeError::Setup(format!("opening {}: {e}", netns_path.display())))?;
    let fd = ns_file.as_raw_fd();
    let bridge_s = bridge.to_string();
    let host = host_if.to_string();
    let ns_path = netns_path.to_path_buf();
    let mac = mac_for(ip);
    // One request: the host end on the bridge, down, and the peer created directly inside
    // the namespace as eth0 with its MAC (moving a link between namespaces afterwards
    // costs an RCU grace period, tens of milliseconds). Then eth0 is set up inside, and
    // the host end comes up last, with IPv6 off: its carrier is then on from the start,
    // and the bridge enables the port once. (Up first, the port was enabled as it came
    // up, disabled when the kernel saw no carrier, enabled again when eth0 came up: three
    // passes over all the bridge's ports, two of them later, under the lock every other
    // netlink request waits for.)
    let made = with_handle(|h| async move {
        let br = ensure(&h, &bridge_s, gateway, prefix, Some(subnet)).await?;
        let peer = LinkUnspec::new_with_name("eth0")
            .address(mac.to_vec())
            .setns_by_fd(fd)
            .build();
        let msg = LinkVeth::new(&host, "eth0")
            .controller(br)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| match errno(&e) {
                Some(libc::EXFULL) => BridgeError::NoFreePort(bridge_s.clone()),
                _ => nl(format!("creating veth {host} on {bridge_s}"))(e),
            })?;
        tracing::debug!("veth made");
        netns::run_in_file(ns_file, &ns_path, move || {
            configure_inside(ip, prefix, gateway)
        })??;
        host_ipv6_off(&host);
        h.link()
            .set(LinkUnspec::new_with_name(&host).up().build())
            .execute()
            .await
            .map_err(nl(format!("setting {host} up")))
    });
    match made {
        Ok(()) => Ok(mac_string(&mac)),
        Err(e) => {
            let _ = delete_link(host_if);
            Err(e)
        }
    }
}

/// eth0 and lo in the container's namespace (this thread's): eth0 without IPv6, up, with
/// `ip/prefix` and the default route via `gateway`; lo up.
fn configure_inside(ip: Ipv4Addr, prefix: u8, gateway: Ipv4Addr) -> Result<(), BridgeError> {
    with_handle(|h| async move {
        let pi = index_of(&h, "eth0")
            .await?
            .ok_or_else(|| BridgeError::Setup("eth0 is not in the namespace".into()))?;
        silence_ipv6(&h, pi).await;
        h.link()
            .set(LinkUnspec::new_with_index(pi).up().build())
            .execute()
            .await
            .map_err(nl("setting eth0 up"))?;
        h.address()
            .add(pi, IpAddr::V4(ip), prefix)
            .execute()
            .await
            .map_err(nl(format!("adding {ip}/{prefix} to eth0")))?;
        if let Some(lo) = index_of(&h, "lo").await? {
            h.link()
                .set(LinkUnspec::new_with_index(lo).up().build())
                .execute()
                .await
                .map_err(nl("setting lo up"))?;
        }
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(pi)
            .build();
        h.route()
            .add(route)
            .execute()
            .await
            .map_err(nl(format!("default route via {gateway}")))
    })
}

/// The network is IPv4 only: eth0, still down, gets no IPv6 address when it comes up
/// (address generation mode none), so it sends nothing of IPv6's own accord. Its
/// link-local address would send DAD, router solicitations and MLD reports, each flooded by
/// the bridge to every other container: with 1,000 on the bridge, ~25 ms of softirq CPU on
/// this host per container started. (Recent dockerd disables IPv6 on the interfaces of
/// IPv4-only networks through `/proc/sys`; opening that file from the host's /proc walks a
/// dentry per network namespace there, 1.5 ms with 1,000, where this is one netlink
/// request.) `lo` keeps ::1. A kernel without IPv6 refuses: nothing to silence, and any
/// other refusal costs only the traffic, so neither fails the start.
async fn silence_ipv6(h: &Handle, index: u32) {
    let none =
        LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
            In6AddrGenMode::None,
        )])]);
    let msg = LinkUnspec::new_with_index(index)
        .append_extra_attribute(none)
        .build();
    if let Err(e) = h.link().set(msg).execute().await {
        if errno(&e) != Some(libc::EAFNOSUPPORT) {
            tracing::warn!("eth0's IPv6 address generation: {e}");
        }
    }
}

/// The host end of a veth, still down, gets no IPv6 at all (`disable_ipv6`, which this
/// host's /proc/sys has per link): no link-local address, no `fe80::/64` and `ff00::/8`
/// route of its own. Each such route is one more entry beside the same prefix of every
/// other port, and the kernel walks those lists whenever a link comes up or goes: with
/// 1,000 containers on the bridge, IPv6 routing was the largest share of the kernel's work
/// tearing a container's namespace down and bringing a new port up, both under the lock
/// every other `run -d` and `rm` takes for its own netlink requests. A kernel without
/// IPv6 has no such file: nothing to turn off. Any other refusal costs only that time, so
/// it is a warning, not a failed start.
fn host_ipv6_off(host_if: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{host_if}/disable_ipv6");
    match std::fs::write(&path, b"1") {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("{path}: {e}"),
    }
}

/// Delete a link by name; a missing one is fine.
pub fn delete_link(name: &str) -> Result<(), BridgeError> {
    let name = name.to_string();
    with_handle(|h| async move {
        let Some(i) = index_of(&h, &name).await? else {
            return Ok(());
        };
        match h.link().del(i).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(nl(format!("deleting {name}"))(e)),
        }
    })
}

pub fn link_exists(name: &str) -> Result<bool, BridgeError> {
    let name = name.to_string();
    with_handle(|h| async move { Ok(index_of(&h, &name).await?.is_some()) })
}

/// Names of host links starting with `prefix`.
pub fn links_with_prefix(prefix: &str) -> Result<Vec<String>, BridgeError> {
    let prefix = prefix.to_string();
    with_handle(|h| async move {
        let mut out = Vec::new();
        let mut links = h.link().get().execute();
        while let Some(l) = links.try_next().await.map_err(nl("listing links"))? {
            for a in &l.attributes {
                if let LinkAttribute::IfName(n) = a {
                    if n.starts_with(&prefix) {
                        out.push(n.clone());
                    }
                }
            }
        }
        Ok(out)
    })
}

/// The first host IPv4 route (main table) overlapping `subnet` that is not on `own_bridge`.
pub fn route_collision(
    subnet: Ipv4Network,
    own_bridge: &str,
) -> Result<Option<String>, BridgeError> {
    let own = own_bridge.to_string();
    with_handle(|h| async move {
        let own_idx = index_of(&h, &own).await?;
        collision(&h, subnet, own_idx).await
    })
}
