//! The filter flags (`--protocol`, `--src-ip`, `--port`, `--vlan`, …) as
//! values: each is parsed as what it is (an address or network, a port, a
//! VLAN id) and becomes a test of its own, never text pasted into an
//! expression (`--src-ip '198.18.0.9 or udp'` is refused, not obeyed).

use std::net::{IpAddr, Ipv6Addr};

use super::{ethertype, ipproto, Dir, Expr, FilterError, Net, Test};

/// The frames a TCP server on `port` at `addrs` needs from the host stack
/// to be reachable through a captured interface: TCP to the port (at those
/// addresses; at any when `addrs` is empty), and the address resolution for
/// each address (ARP whose target it is; for IPv6, ICMPv6 to its
/// solicited-node group or to itself, the neighbour solicitations and
/// advertisements). A capture selects `not` these before the user's filter.
pub fn server_traffic(port: u16, addrs: &[IpAddr]) -> Expr {
    let to = |a: IpAddr| Expr::net(Dir::Dst, Net::host(a));
    let and = |a: Expr, b: Expr| Expr::And(Box::new(a), Box::new(b));
    let or = |a: Expr, b: Expr| Expr::Or(Box::new(a), Box::new(b));
    let tcp = Expr::Test(Test::IpProto {
        family: 0,
        proto: ipproto::TCP,
    });
    let mut all = and(tcp, Expr::port(Dir::Dst, port));
    if let Some(any) = addrs.iter().map(|&a| to(a)).reduce(or) {
        all = and(all, any);
    }
    for &a in addrs {
        let resolution = match a {
            IpAddr::V4(_) => and(Expr::Test(Test::EtherType(ethertype::ARP)), to(a)),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                let group = Ipv6Addr::new(
                    0xff02,
                    0,
                    0,
                    0,
                    0,
                    1,
                    0xff00 | u16::from(o[13]),
                    u16::from_be_bytes([o[14], o[15]]),
                );
                let icmp6 = Expr::Test(Test::IpProto {
                    family: 6,
                    proto: ipproto::ICMPV6,
                });
                and(icmp6, or(to(IpAddr::V6(group)), to(a)))
            }
        };
        all = or(all, resolution);
    }
    all
}

/// A protocol a flag can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagProtocol {
    /// TCP over IPv4 or IPv6.
    Tcp,
    /// UDP over IPv4 or IPv6.
    Udp,
    /// ICMP (IPv4).
    Icmp,
    /// ICMPv6.
    Icmp6,
}

impl FlagProtocol {
    fn word(self) -> &'static str {
        match self {
            FlagProtocol::Tcp => "tcp",
            FlagProtocol::Udp => "udp",
            FlagProtocol::Icmp => "icmp",
            FlagProtocol::Icmp6 => "icmp6",
        }
    }

    fn expr(self) -> Expr {
        let (family, proto) = match self {
            FlagProtocol::Tcp => (0, ipproto::TCP),
            FlagProtocol::Udp => (0, ipproto::UDP),
            FlagProtocol::Icmp => (4, ipproto::ICMP),
            FlagProtocol::Icmp6 => (6, ipproto::ICMPV6),
        };
        Expr::Test(Test::IpProto { family, proto })
    }
}

/// What the filter flags ask for; every test given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterFlags {
    /// `--protocol`.
    pub protocol: Option<FlagProtocol>,
    /// `--src-ip`.
    pub src: Option<Net>,
    /// `--dst-ip`.
    pub dst: Option<Net>,
    /// `--host`.
    pub host: Option<Net>,
    /// `--src-port`.
    pub src_port: Option<u16>,
    /// `--dst-port`.
    pub dst_port: Option<u16>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--vlan`.
    pub vlan: Option<u16>,
}

/// Parses an address or network flag's value.
///
/// # Errors
/// One line naming the flag, the value and what was expected.
pub fn parse_net(flag: &str, value: &str) -> Result<Net, FilterError> {
    Net::parse(value, false).map_err(|why| FilterError(format!("{flag} {value:?}: {why}")))
}

impl FilterFlags {
    /// The tests the flags ask for, all of them to match; `None` without any.
    ///
    /// # Errors
    /// A VLAN id above 4094.
    pub fn expr(&self) -> Result<Option<Expr>, FilterError> {
        if let Some(v) = self.vlan.filter(|&v| v > 4094) {
            return Err(FilterError(format!(
                "--vlan {v}: VLAN ids go from 0 to 4094"
            )));
        }
        let nets = [
            (Dir::Src, self.src),
            (Dir::Dst, self.dst),
            (Dir::Either, self.host),
        ];
        let ports = [
            (Dir::Src, self.src_port),
            (Dir::Dst, self.dst_port),
            (Dir::Either, self.port),
        ];
        let tests = self
            .protocol
            .map(FlagProtocol::expr)
            .into_iter()
            .chain(nets.into_iter().filter_map(|(d, n)| Some(Expr::net(d, n?))))
            .chain(
                ports
                    .into_iter()
                    .filter_map(|(d, p)| Some(Expr::port(d, p?))),
            )
            .chain(self.vlan.map(|v| Expr::Test(Test::Vlan(Some(v)))));
        Ok(tests.fold(None, |all, t| Expr::and(all, Some(t))))
    }

    /// The flags in the expression syntax, for display (the start line, the
    /// summary): built from the parsed values, so it reads back the same.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.protocol.map(|p| p.word().to_string()));
        for (dir, net) in [("src ", self.src), ("dst ", self.dst), ("", self.host)] {
            if let Some(n) = net {
                let kind = if n.is_host() { "host" } else { "net" };
                parts.push(format!("{dir}{kind} {n}"));
            }
        }
        for (dir, port) in [
            ("src ", self.src_port),
            ("dst ", self.dst_port),
            ("", self.port),
        ] {
            parts.extend(port.map(|p| format!("{dir}port {p}")));
        }
        parts.extend(self.vlan.map(|v| format!("vlan {v}")));
        parts.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse_expr;

    #[test]
    fn server_traffic_is_the_port_and_address_resolution() {
        use crate::filter::Program;
        let expr = server_traffic(9100, &["198.18.0.2".parse().unwrap()]);
        let want = parse_expr(
            "(tcp dst port 9100 and dst host 198.18.0.2) or (arp and dst host 198.18.0.2)",
        )
        .unwrap()
        .unwrap();
        assert_eq!(expr, want);
        let v6 = server_traffic(9100, &["2001:2::1:2:3".parse().unwrap()]);
        let want = parse_expr(
            "(tcp dst port 9100 and dst host 2001:2::1:2:3) or (icmp6 and (dst host ff02::1:ff02:3 or dst host 2001:2::1:2:3))",
        )
        .unwrap()
        .unwrap();
        assert_eq!(v6, want);
        let any = server_traffic(9100, &[]);
        assert_eq!(any, parse_expr("tcp dst port 9100").unwrap().unwrap());
        // What a capture adds in front of the user's filter fits the program.
        let excluded = Expr::Not(Box::new(expr));
        assert!(Program::compile(Some(&excluded), 64).is_ok());
    }

    #[test]
    fn a_value_with_filter_words_is_refused() {
        let err = parse_net("--src-ip", "198.18.0.9 or udp").unwrap_err();
        assert!(
            err.to_string().contains("--src-ip \"198.18.0.9 or udp\""),
            "{err}"
        );
        assert!(
            parse_net("--host", "198.18.0.1/24").is_err(),
            "host bits set"
        );
        assert!(parse_net("--host", "2001:2::/48").is_ok());
    }

    #[test]
    fn flags_build_what_the_same_expression_would() {
        let flags = FilterFlags {
            protocol: Some(FlagProtocol::Udp),
            src: Some(parse_net("--src-ip", "198.18.0.9").unwrap()),
            dst: Some(parse_net("--dst-ip", "198.18.0.0/15").unwrap()),
            port: Some(53),
            vlan: Some(10),
            ..FilterFlags::default()
        };
        let text = flags.text();
        assert_eq!(
            text,
            "udp and src host 198.18.0.9 and dst net 198.18.0.0/15 and port 53 and vlan 10"
        );
        assert_eq!(flags.expr().unwrap(), parse_expr(&text).unwrap());
        assert_eq!(FilterFlags::default().expr().unwrap(), None);
        let bad = FilterFlags {
            vlan: Some(4095),
            ..FilterFlags::default()
        };
        assert!(bad.expr().is_err());
    }
}
