//! Multicast group membership on an interface (`xsktap feed --join`): the
//! sockets that hold IGMP/MLD memberships so that a switch forwards the
//! groups to the port, for as long as they stay open.
//!
//! The kernel sends the membership reports when a group is joined and
//! answers the network's queriers afterwards, which is how IGMP and MLD keep
//! a membership alive; closing the sockets leaves the groups.

use std::net::IpAddr;
use std::os::fd::OwnedFd;

use crate::error::Result;
use crate::syscall::{dgram_socket, setsockopt_at};

/// IPv4 groups one socket may hold (the kernel's default
/// `net.ipv4.igmp_max_memberships`).
const V4_PER_SOCKET: usize = 20;

/// Memberships held; dropping it leaves every group.
#[derive(Debug)]
pub struct Membership {
    _sockets: Vec<OwnedFd>,
    groups: Vec<IpAddr>,
}

impl Membership {
    /// The groups joined.
    pub fn groups(&self) -> &[IpAddr] {
        &self.groups
    }
}

/// Joins every group of `groups` on interface `ifindex` (duplicates once).
///
/// # Errors
/// [`crate::Error::Syscall`] naming the call when the kernel refuses a group.
pub fn join(ifindex: u32, groups: &[IpAddr]) -> Result<Membership> {
    let mut unique: Vec<IpAddr> = groups.to_vec();
    unique.sort();
    unique.dedup();
    let v4: Vec<_> = unique
        .iter()
        .filter_map(|g| match g {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<_> = unique
        .iter()
        .filter_map(|g| match g {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        })
        .collect();
    let mut sockets = Vec::new();
    for chunk in v4.chunks(V4_PER_SOCKET) {
        let fd = dgram_socket(libc::AF_INET, "socket(AF_INET)")?;
        for group in chunk {
            let req = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(group.octets()),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as libc::c_int,
            };
            setsockopt_at(
                &fd,
                libc::IPPROTO_IP,
                libc::IP_ADD_MEMBERSHIP,
                &req,
                "setsockopt(IP_ADD_MEMBERSHIP)",
            )?;
        }
        sockets.push(fd);
    }
    if !v6.is_empty() {
        let fd = dgram_socket(libc::AF_INET6, "socket(AF_INET6)")?;
        for group in &v6 {
            let req = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: group.octets(),
                },
                ipv6mr_interface: ifindex,
            };
            setsockopt_at(
                &fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_ADD_MEMBERSHIP,
                &req,
                "setsockopt(IPV6_ADD_MEMBERSHIP)",
            )?;
        }
        sockets.push(fd);
    }
    Ok(Membership {
        _sockets: sockets,
        groups: unique,
    })
}
