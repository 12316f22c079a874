//! Bridge and veth through netlink (rtnetlink), one connection per public call, on a
//! current-thread tokio runtime made for that call. Work inside a container's namespace
//! runs on a thread that has joined it (a netlink socket belongs to the namespace it was
//! opened in).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::stream::TryStreamExt;
use ipnetwork::Ipv4Network;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoVeth, LinkAttribute,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::netns;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("netlink: {what}: {source}")]
    Netlink {
        what: String,
        source: rtnetlink::Error,
    },
    #[error("netlink: {0}")]
    Setup(String),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> BridgeError {
    let what = what.into();
    move |source| BridgeError::Netlink { what, source }
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
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("looking up {name}"))(e)),
    }
}

async fn has_addr(h: &Handle, index: u32, ip: Ipv4Addr) -> Result<bool, BridgeError> {
    // IPv4 only: an unfiltered dump is every address of the host, and each container's
    // veth has an IPv6 link-local one (a thousand containers made it the longest netlink
    // call of `run -d`).
    let mut req = h.address().get().set_link_index_filter(index);
    req.message_mut().header.family = AddressFamily::Inet;
    let mut addrs = req.execute();
    while let Some(a) = addrs.try_next().await.map_err(nl("listing addresses"))? {
        if a.header.index != index {
            continue;
        }
        if a.attributes
            .iter()
            .any(|at| matches!(at, AddressAttribute::Address(IpAddr::V4(x)) if *x == ip))
        {
            return Ok(true);
        }
    }
    Ok(false)
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
async fn ensure(
    h: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
    check: Option<Ipv4Network>,
) -> Result<u32, BridgeError> {
    {
        let h = h.clone();
        let idx = match index_of(&h, name).await? {
            Some(i) => i,
            None => {
                if let Some(subnet) = check {
                    let found = match collision(&h, subnet, None).await? {
                        // Another ocishim may have made this very bridge meanwhile: its
                        // own route is not a collision.
                        Some(_) => match index_of(&h, name).await? {
                            Some(i) => collision(&h, subnet, Some(i)).await?,
                            None => collision(&h, subnet, None).await?,
                        },
                        None => None,
                    };
                    if let Some(route) = found {
                        return Err(BridgeError::Setup(format!(
                            "subnet {subnet} of bridge {name} collides with the host route {route}: choose another subnet"
                        )));
                    }
                }
                match h.link().add(LinkBridge::new(name).build()).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => return Err(nl(format!("creating bridge {name}"))(e)),
                }
                index_of(&h, name)
                    .await?
                    .ok_or_else(|| BridgeError::Setup(format!("bridge {name} vanished")))?
            }
        };
        if !has_addr(&h, idx, gateway).await? {
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
        }
        h.link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(nl(format!("setting {name} up")))?;
        Ok(idx)
    }
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
    let mac = mac_for(ip);
    // One request: the host end on the bridge and up, the peer created directly inside the
    // namespace as eth0 with its MAC (moving a link between namespaces afterwards costs an
    // RCU grace period, tens of milliseconds). The peer cannot be up yet: it is opened
    // before the two ends are linked.
    let made = with_handle(|h| async move {
        let br = ensure(&h, &bridge_s, gateway, prefix, Some(subnet)).await?;
        let peer = LinkUnspec::new_with_name("eth0")
            .address(mac.to_vec())
            .setns_by_fd(fd)
            .build();
        let msg = LinkVeth::new(&host, "eth0")
            .controller(br)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(nl(format!("creating veth {host} on {bridge_s}")))
    });
    drop(ns_file);
    tracing::debug!("veth made");
    if let Err(e) = made {
        let _ = delete_link(host_if);
        return Err(e);
    }
    let inside = netns::run_in(netns_path, move || {
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
    });
    match inside.map_err(BridgeError::from).and_then(|r| r) {
        Ok(()) => Ok(mac_string(&mac)),
        Err(e) => {
            let _ = delete_link(host_if);
            Err(e)
        }
    }
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
