//! Just enough rtnetlink to build a user-defined network: a bridge, a veth
//! pair whose far end goes into a container's network namespace, addresses
//! and a default route. `ip` would do it too, but a run would then spawn
//! half a dozen processes and each would have to enter the namespace; a
//! netlink socket opened in a namespace keeps talking to that namespace
//! from whichever namespace its owner is in later.
//!
//! Message layouts are those of linux/netlink.h, linux/rtnetlink.h,
//! linux/if_link.h and linux/veth.h.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::socket::{
    bind, recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

// linux/netlink.h
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
// linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
/// The multicast group of IPv4 route changes (RTMGRP_IPV4_ROUTE).
const IPV4_ROUTE_GROUP: u32 = 0x40;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const RTN_UNREACHABLE: u8 = 7;
const RTA_DST: u16 = 1;
const RTA_GATEWAY: u16 = 5;
// linux/if_addr.h
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
// linux/if_link.h
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
// linux/veth.h
const VETH_INFO_PEER: u16 = 1;
// linux/if.h
const IFF_UP: u32 = 0x1;
const AF_INET: u8 = libc::AF_INET as u8;
/// Nested attributes carry this bit in their type (NLA_F_NESTED).
const NESTED: u16 = 0x8000;

/// An rtnetlink socket bound to one network namespace.
pub struct Netlink {
    socket: OwnedFd,
    sequence: u32,
}

/// A new link's name, MTU and, for a veth's far end, its MAC address.
pub struct LinkSpec<'a> {
    pub name: &'a str,
    pub mtu: u32,
    pub mac: Option<[u8; 6]>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        Ok(Netlink {
            socket: route_socket(0)?,
            sequence: 0,
        })
    }

    /// A socket in the network namespace `netns` names. A thread of its
    /// own enters the namespace, so this process stays where it is.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(netns, CloneFlags::CLONE_NEWNET)
                        .context("entering the network namespace")?;
                    Netlink::open()
                })
                .join()
                .unwrap_or_else(|_| bail!("the thread opening a netlink socket panicked"))
        })
    }

    /// The index of the link called `name`.
    pub fn link_index(&mut self, name: &str) -> Result<i32> {
        let mut message = Message::new(RTM_GETLINK, 0);
        message.link_header(0, 0);
        message.attribute(IFLA_IFNAME, &name_bytes(name));
        let reply = self
            .exchange(message, false)
            .with_context(|| format!("looking up the link {name}"))?;
        // The reply is an RTM_NEWLINK: the header, then ifinfomsg whose
        // index is at offset 4.
        let index = reply
            .get(16 + 4..16 + 8)
            .with_context(|| format!("a short reply about the link {name}"))?;
        Ok(i32::from_ne_bytes(index.try_into().expect("four bytes")))
    }

    /// Makes a bridge, up.
    pub fn add_bridge(&mut self, name: &str, mtu: u32) -> Result<()> {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        message.link_header(0, IFF_UP);
        message.attribute(IFLA_IFNAME, &name_bytes(name));
        message.attribute(IFLA_MTU, &mtu.to_ne_bytes());
        let info = message.begin_nested(IFLA_LINKINFO);
        message.attribute(IFLA_INFO_KIND, b"bridge");
        message.end_nested(info);
        self.exchange(message, true)
            .with_context(|| format!("creating the bridge {name}"))
            .map(drop)
    }

    /// Makes a veth pair, both ends down: `near` here, enslaved to the
    /// bridge `master`; `far` moved into the namespace `far_netns`. (An end
    /// cannot come up before its pair is made: the kernel answers
    /// ENOTCONN.)
    pub fn add_veth(
        &mut self,
        near: &LinkSpec<'_>,
        master: i32,
        far: &LinkSpec<'_>,
        far_netns: BorrowedFd<'_>,
    ) -> Result<()> {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        message.link_header(0, 0);
        message.attribute(IFLA_IFNAME, &name_bytes(near.name));
        message.attribute(IFLA_MTU, &near.mtu.to_ne_bytes());
        message.attribute(IFLA_MASTER, &master.to_ne_bytes());
        let info = message.begin_nested(IFLA_LINKINFO);
        message.attribute(IFLA_INFO_KIND, b"veth");
        let data = message.begin_nested(IFLA_INFO_DATA);
        let peer = message.begin_nested(VETH_INFO_PEER);
        message.link_header(0, 0);
        message.attribute(IFLA_IFNAME, &name_bytes(far.name));
        message.attribute(IFLA_MTU, &far.mtu.to_ne_bytes());
        if let Some(mac) = far.mac {
            message.attribute(IFLA_ADDRESS, &mac);
        }
        message.attribute(IFLA_NET_NS_FD, &far_netns.as_raw_fd().to_ne_bytes());
        message.end_nested(peer);
        message.end_nested(data);
        message.end_nested(info);
        self.exchange(message, true)
            .with_context(|| format!("creating the veth pair {} and {}", near.name, far.name))
            .map(drop)
    }

    /// Brings the link `index` up, with `mtu` when given.
    pub fn set_up(&mut self, index: i32, mtu: Option<u32>) -> Result<()> {
        let mut message = Message::new(RTM_NEWLINK, 0);
        message.link_header(index, IFF_UP);
        if let Some(mtu) = mtu {
            message.attribute(IFLA_MTU, &mtu.to_ne_bytes());
        }
        self.exchange(message, true)
            .with_context(|| format!("bringing link {index} up"))
            .map(drop)
    }

    /// Enslaves the link `index` to the bridge `master`.
    pub fn set_master(&mut self, index: i32, master: i32) -> Result<()> {
        let mut message = Message::new(RTM_NEWLINK, 0);
        message.link_header(index, 0);
        message.attribute(IFLA_MASTER, &master.to_ne_bytes());
        self.exchange(message, true)
            .with_context(|| format!("adding link {index} to its bridge"))
            .map(drop)
    }

    /// Removes the link called `name`; one already gone is no error.
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let mut message = Message::new(RTM_DELLINK, 0);
        message.link_header(0, 0);
        message.attribute(IFLA_IFNAME, &name_bytes(name));
        match self.exchange(message, true) {
            Err(err) if err.downcast_ref::<Errno>() == Some(&Errno::ENODEV) => Ok(()),
            other => other
                .with_context(|| format!("removing the link {name}"))
                .map(drop),
        }
    }

    /// Gives the link `index` the address `address/prefix`.
    pub fn add_address(&mut self, index: i32, address: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut message = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        message.bytes(&[AF_INET, prefix, 0, RT_SCOPE_UNIVERSE]);
        message.bytes(&(index as u32).to_ne_bytes());
        message.attribute(IFA_LOCAL, &address.octets());
        message.attribute(IFA_ADDRESS, &address.octets());
        self.exchange(message, true)
            .with_context(|| format!("adding the address {address}/{prefix}"))
            .map(drop)
    }

    /// Routes everything not on a link through `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut message = route_message(RTM_NEWROUTE, 0, RTN_UNICAST);
        message.attribute(RTA_GATEWAY, &gateway.octets());
        self.exchange(message, true)
            .with_context(|| format!("adding the default route through {gateway}"))
            .map(drop)
    }

    /// Makes `destination/prefix` unreachable: a connection there fails at
    /// once, and no packet leaves.
    pub fn add_unreachable_route(&mut self, destination: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut message = route_message(RTM_NEWROUTE, prefix, RTN_UNREACHABLE);
        message.attribute(RTA_DST, &destination.octets());
        self.exchange(message, true)
            .with_context(|| format!("making {destination}/{prefix} unreachable"))
            .map(drop)
    }

    /// Undoes `add_unreachable_route`; none there is no error.
    pub fn delete_unreachable_route(&mut self, destination: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut message = route_message(RTM_DELROUTE, prefix, RTN_UNREACHABLE);
        message.attribute(RTA_DST, &destination.octets());
        match self.exchange(message, true) {
            Err(err) if err.downcast_ref::<Errno>() == Some(&Errno::ESRCH) => Ok(()),
            other => other
                .with_context(|| format!("making {destination}/{prefix} reachable"))
                .map(drop),
        }
    }

    /// Sends `message` and reads the kernel's answer: the acknowledgement
    /// (`ack`), or the first reply message. A negative error number in the
    /// answer comes back as that `Errno`.
    fn exchange(&mut self, mut message: Message, ack: bool) -> Result<Vec<u8>> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        if ack {
            message.add_flags(NLM_F_ACK);
        }
        let bytes = message.finish(sequence);
        sendto(
            self.socket.as_raw_fd(),
            &bytes,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .context("sending to netlink")?;
        let mut buffer = vec![0u8; 16384];
        loop {
            let length = recv(self.socket.as_raw_fd(), &mut buffer, MsgFlags::empty())
                .context("reading from netlink")?;
            let reply = &buffer[..length];
            if reply.len() < 16 {
                bail!("a netlink reply of {length} bytes");
            }
            let kind = u16::from_ne_bytes([reply[4], reply[5]]);
            let replied_to = u32::from_ne_bytes(reply[8..12].try_into().expect("four bytes"));
            if replied_to != sequence {
                continue; // An answer to an earlier request that gave up.
            }
            if kind == NLMSG_ERROR {
                let code = reply
                    .get(16..20)
                    .map(|b| i32::from_ne_bytes(b.try_into().expect("four bytes")))
                    .context("a short netlink error")?;
                if code == 0 {
                    return Ok(Vec::new());
                }
                return Err(Errno::from_raw(-code).into());
            }
            return Ok(reply.to_vec());
        }
    }
}

/// Waits until the calling thread's network namespace has an IPv4 default
/// route in its main table (one already there counts). Unprivileged: any
/// process may read routes and follow their changes.
pub fn wait_for_default_route() -> Result<()> {
    let socket = route_socket(IPV4_ROUTE_GROUP).context("following the route changes")?;
    // Subscribed first, then the table: a route added before the dump is
    // in it, one added after comes as a notification.
    let ask_for_the_table = || {
        let mut dump = Message::new(RTM_GETROUTE, NLM_F_DUMP);
        // struct rtmsg, all zero but the family.
        dump.bytes(&[AF_INET, 0, 0, 0, 0, 0, 0, 0]);
        dump.bytes(&0u32.to_ne_bytes());
        sendto(
            socket.as_raw_fd(),
            &dump.finish(1),
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .context("asking for the routes")
        .map(drop)
    };
    ask_for_the_table()?;
    let mut buffer = vec![0u8; 16384];
    loop {
        match recv(socket.as_raw_fd(), &mut buffer, MsgFlags::empty()) {
            Ok(length) if holds_a_default_route(&buffer[..length]) => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => {}
            // Notifications were dropped for want of room: read the table
            // again rather than miss the one awaited.
            Err(Errno::ENOBUFS) => ask_for_the_table()?,
            Err(err) => return Err(err).context("reading the route changes"),
        }
    }
}

/// An rtnetlink socket in the calling thread's network namespace, bound to
/// the multicast `groups` (none: requests and their answers only).
fn route_socket(groups: u32) -> Result<OwnedFd> {
    let socket = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .context("opening a netlink socket")?;
    bind(socket.as_raw_fd(), &NetlinkAddr::new(0, groups)).context("binding a netlink socket")?;
    Ok(socket)
}

/// Whether these netlink messages (a datagram of them) announce an IPv4
/// unicast route to 0.0.0.0/0 in the main table.
fn holds_a_default_route(mut messages: &[u8]) -> bool {
    while messages.len() >= 16 {
        let length = u32::from_ne_bytes(messages[0..4].try_into().expect("four bytes")) as usize;
        if length < 16 || length > messages.len() {
            return false;
        }
        let kind = u16::from_ne_bytes([messages[4], messages[5]]);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
        // scope, type.
        if let (RTM_NEWROUTE, Some(route)) = (kind, messages.get(16..24)) {
            if route[0] == AF_INET
                && route[1] == 0
                && route[4] == RT_TABLE_MAIN
                && route[7] == RTN_UNICAST
            {
                return true;
            }
        }
        // Each message starts on a 4-byte boundary.
        let next = (length + 3) & !3;
        messages = messages.get(next..).unwrap_or_default();
    }
    false
}

/// A route of `kind` in the main table, to a destination of `prefix` bits,
/// to add or delete (`request`; its attributes follow).
fn route_message(request: u16, prefix: u8, kind: u8) -> Message {
    let flags = match request {
        RTM_NEWROUTE => NLM_F_CREATE | NLM_F_EXCL,
        _ => 0,
    };
    let mut message = Message::new(request, flags);
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
    // type, flags.
    message.bytes(&[
        AF_INET,
        prefix,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        kind,
    ]);
    message.bytes(&0u32.to_ne_bytes());
    message
}

/// A link name as the kernel takes it: at most 15 bytes, NUL-terminated.
fn name_bytes(name: &str) -> Vec<u8> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.truncate(15);
    bytes.push(0);
    bytes
}

/// A netlink message under construction.
struct Message {
    bytes: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Message {
        let mut bytes = Vec::with_capacity(256);
        // struct nlmsghdr: length and sequence are filled in by `finish`.
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        Message { bytes }
    }

    fn add_flags(&mut self, flags: u16) {
        let old = u16::from_ne_bytes([self.bytes[6], self.bytes[7]]);
        self.bytes[6..8].copy_from_slice(&(old | flags).to_ne_bytes());
    }

    /// struct ifinfomsg: family, pad, type, index, flags, change mask.
    fn link_header(&mut self, index: i32, flags: u32) {
        self.bytes.extend_from_slice(&[0, 0, 0, 0]);
        self.bytes.extend_from_slice(&index.to_ne_bytes());
        self.bytes.extend_from_slice(&flags.to_ne_bytes());
        self.bytes.extend_from_slice(&flags.to_ne_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn attribute(&mut self, kind: u16, value: &[u8]) {
        let length = 4 + value.len() as u16;
        self.bytes.extend_from_slice(&length.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        self.pad();
    }

    /// Starts a nested attribute; `end_nested` writes its length.
    fn begin_nested(&mut self, kind: u16) -> usize {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&0u16.to_ne_bytes());
        self.bytes.extend_from_slice(&(kind | NESTED).to_ne_bytes());
        start
    }

    fn end_nested(&mut self, start: usize) {
        let length = (self.bytes.len() - start) as u16;
        self.bytes[start..start + 2].copy_from_slice(&length.to_ne_bytes());
    }

    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }

    fn finish(mut self, sequence: u32) -> Vec<u8> {
        let length = self.bytes.len() as u32;
        self.bytes[0..4].copy_from_slice(&length.to_ne_bytes());
        self.bytes[8..12].copy_from_slice(&sequence.to_ne_bytes());
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ipv4_unicast_default_route_in_the_main_table_counts() {
        let route = |prefix: u8, kind: u8| route_message(RTM_NEWROUTE, prefix, kind).finish(1);
        assert!(holds_a_default_route(&route(0, RTN_UNICAST)));
        assert!(!holds_a_default_route(&route(24, RTN_UNICAST)));
        assert!(!holds_a_default_route(&route(0, RTN_UNREACHABLE)));
        assert!(!holds_a_default_route(
            &route_message(RTM_DELROUTE, 0, RTN_UNICAST).finish(1)
        ));
        // Found after another message in the same datagram, whose length
        // is not a multiple of four.
        let mut link = Message::new(RTM_NEWLINK, 0);
        link.link_header(0, 0);
        link.bytes(&[1, 2]);
        let mut both = link.finish(1);
        while both.len() % 4 != 0 {
            both.push(0);
        }
        both.extend(route(0, RTN_UNICAST));
        assert!(holds_a_default_route(&both));
        // A truncated message ends the search.
        assert!(!holds_a_default_route(&route(0, RTN_UNICAST)[..20]));
    }

    #[test]
    fn attributes_are_padded_and_nested_lengths_cover_their_children() {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_CREATE);
        message.link_header(0, IFF_UP);
        let info = message.begin_nested(IFLA_LINKINFO);
        message.attribute(IFLA_INFO_KIND, b"veth");
        message.end_nested(info);
        let bytes = message.finish(7);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(bytes[0..4].try_into().unwrap()),
            bytes.len() as u32
        );
        assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 7);
        // After the 16-byte header and the 16-byte ifinfomsg: the nested
        // attribute, 4 bytes of its own and 8 of "veth".
        let nested = &bytes[32..];
        assert_eq!(u16::from_ne_bytes([nested[0], nested[1]]), 12);
        assert_eq!(
            u16::from_ne_bytes([nested[2], nested[3]]),
            IFLA_LINKINFO | NESTED
        );
        assert_eq!(&nested[8..12], b"veth");
        assert_eq!(name_bytes("a-name-longer-than-fifteen").len(), 16);
    }
}
