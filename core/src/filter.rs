//! Capture filters: a subset of tcpdump's expression language, compiled into
//! the test list the XDP program runs (see `bpf/xsktap.h`), with a userspace
//! evaluator of the same compiled list.
//!
//! Grammar (tcpdump's words for the same primitives):
//!
//! ```text
//! expr      := and ( ("or" | "||") and )*
//! and       := unary ( ("and" | "&&") unary )*
//! unary     := ("not" | "!") unary | "(" expr ")" | primitive
//! primitive := "ip" | "ip6" | "arp" | "rarp" | "icmp" | "icmp6"
//!            | ("tcp" | "udp") [ [dir] ("port" N | "portrange" A-B) ]
//!            | "vlan" [N]
//!            | [dir] "host" ADDR | [dir] "net" CIDR
//!            | [dir] "port" N | [dir] "portrange" A-B
//! dir       := "src" | "dst"
//! ```
//!
//! Compilation is short-circuit code generation: every test jumps forward on
//! true and on false, to another test or to accept/reject, so the program
//! always ends and the verifier sees a bounded loop.

use std::fmt;
use std::net::IpAddr;

use crate::parse::{ethertype, ipproto, Packet};

/// Tests the XDP program's filter holds (`XSKTAP_FILTER_MAX_INSNS`).
pub const MAX_TESTS: u16 = 64;
/// The jump target that accepts the frame (`XSKTAP_FILTER_ACCEPT`).
pub const TARGET_ACCEPT: u16 = MAX_TESTS;
/// The jump target that rejects the frame (`XSKTAP_FILTER_REJECT`).
pub const TARGET_REJECT: u16 = MAX_TESTS + 1;
/// The VLAN id of a test that matches any tag (`XSKTAP_VLAN_ANY`).
pub const VLAN_ANY: u16 = 0xffff;

/// The operation of one encoded test (`enum xsktap_filter_op`); the sys
/// crate checks at compile time that each value equals the header's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum FilterOp {
    /// Always true (an all-zero first test accepts every frame).
    #[default]
    Accept = 0,
    /// Ethertype after VLAN tags == `lo`.
    EtherType = 1,
    /// Upper-layer protocol == `lo`, for `family` 4, 6 or 0 (either).
    IpProto = 2,
    /// (source & mask) == addr (ARP: sender).
    SrcNet = 3,
    /// (destination & mask) == addr (ARP: target).
    DstNet = 4,
    /// lo <= source port <= hi.
    SrcPort = 5,
    /// lo <= destination port <= hi.
    DstPort = 6,
    /// Some VLAN tag has id `lo`; [`VLAN_ANY`]: any tag.
    Vlan = 7,
}

/// One encoded test, field for field `struct xsktap_filter_insn`; the sys
/// crate converts it to the skeleton's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilterInsn {
    /// What the test checks.
    pub op: FilterOp,
    /// 4 or 6 for net and protocol tests, 0 for either.
    pub family: u32,
    /// Low bound, or the value compared.
    pub lo: u16,
    /// High bound of a port range.
    pub hi: u16,
    /// Next test when true ([`TARGET_ACCEPT`] or [`TARGET_REJECT`] end the program).
    pub jt: u16,
    /// Next test when false.
    pub jf: u16,
    /// Address bytes in network order, already masked, as the program loads them.
    pub addr: [u64; 2],
    /// Mask of the same layout.
    pub mask: [u64; 2],
}

/// A filter expression that could not be parsed or compiled; the message
/// names the word and its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

/// Which address or port of a packet a primitive looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The source.
    Src,
    /// The destination.
    Dst,
    /// Either.
    Either,
}

/// A network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    /// The network address (host bits zero).
    pub addr: IpAddr,
    /// Prefix length (0..=32 or 0..=128).
    pub prefix: u8,
}

impl Net {
    /// Parses an address (`198.18.0.9`, a host) or, unless `host_only`, a
    /// network (`198.18.0.0/15`, `2001:2::/48`) whose host bits are zero.
    ///
    /// # Errors
    /// What is wrong with `text`, to be shown after its name.
    pub fn parse(text: &str, host_only: bool) -> Result<Net, &'static str> {
        let parsed = match text.split_once('/') {
            Some((a, p)) if !host_only => a.parse::<IpAddr>().ok().zip(p.parse::<u8>().ok()),
            None => text
                .parse::<IpAddr>()
                .ok()
                .map(|a| (a, if a.is_ipv4() { 32 } else { 128 })),
            Some(_) => None,
        };
        let Some((addr, prefix)) = parsed else {
            return Err(if host_only {
                "expected an IP address"
            } else {
                "expected an IP address or a network like 198.18.0.0/15 or 2001:2::/48"
            });
        };
        let net = Net { addr, prefix };
        if prefix > net.bits() {
            return Err("prefix length too long");
        }
        if net.bytes_and_mask().0 != masked(&net) {
            return Err("non-network bits set in the network address");
        }
        Ok(net)
    }

    /// The network of one address.
    pub fn host(addr: IpAddr) -> Net {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Net { addr, prefix }
    }

    /// Whether the network is one address.
    pub fn is_host(&self) -> bool {
        self.prefix == self.bits()
    }

    fn bits(&self) -> u8 {
        if self.addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// Address bytes (4 or 16) and the mask of the same length.
    fn bytes_and_mask(&self) -> ([u8; 16], [u8; 16]) {
        let mut addr = [0u8; 16];
        match self.addr {
            IpAddr::V4(a) => addr[..4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => addr.copy_from_slice(&a.octets()),
        }
        let mut mask = [0u8; 16];
        for (i, m) in mask.iter_mut().enumerate() {
            let bits = (i32::from(self.prefix) - 8 * i as i32).clamp(0, 8);
            *m = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
        }
        (addr, mask)
    }

    /// Whether `addr` is inside this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        if addr.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (net, mask) = self.bytes_and_mask();
        let (other, _) = Net { addr, prefix: 0 }.bytes_and_mask();
        (0..16).all(|i| other[i] & mask[i] == net[i])
    }
}

/// One test on a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Ethertype after VLAN tags.
    EtherType(u16),
    /// Upper-layer protocol, for family 4, 6 or either (0).
    IpProto {
        /// 4, 6 or 0.
        family: u8,
        /// Protocol number.
        proto: u8,
    },
    /// Source or destination address inside a network.
    Net(Dir, Net),
    /// Source or destination port inside a range.
    Port(Dir, u16, u16),
    /// A VLAN tag with this id, or any tag.
    Vlan(Option<u16>),
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// Not.
    Not(Box<Expr>),
    /// A primitive.
    Test(Test),
}

#[derive(Debug, Clone)]
struct Token<'a> {
    text: &'a str,
    at: usize,
}

fn lex(input: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut start = None;
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let single = matches!(c, b'(' | b')');
        let double =
            i + 1 < bytes.len() && (&bytes[i..i + 2] == b"&&" || &bytes[i..i + 2] == b"||");
        let bang = c == b'!';
        if c.is_ascii_whitespace() || single || double || bang {
            if let Some(s) = start.take() {
                tokens.push(Token {
                    text: &input[s..i],
                    at: s,
                });
            }
            if single || bang {
                tokens.push(Token {
                    text: &input[i..i + 1],
                    at: i,
                });
            } else if double {
                tokens.push(Token {
                    text: &input[i..i + 2],
                    at: i,
                });
                i += 1;
            }
        } else if start.is_none() {
            start = Some(i);
        }
        i += 1;
    }
    if let Some(s) = start {
        tokens.push(Token {
            text: &input[s..],
            at: s,
        });
    }
    tokens
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    /// Open parentheses and `not`s around the current position.
    depth: usize,
}

/// The deepest nesting of parentheses and `not` a filter may have (the
/// parser recurses on each; 20,000 `(` would overflow the stack).
pub const MAX_DEPTH: usize = 64;
/// The most words a filter may have: no filter of more fits the XDP
/// program's 64 tests, and the syntax tree stays shallow enough to walk.
pub const MAX_WORDS: usize = 1024;

const PRIMITIVES: &str =
    "ip, ip6, arp, rarp, icmp, icmp6, tcp, udp, vlan [N], [src|dst] host ADDR, [src|dst] net CIDR, [src|dst] port N, [src|dst] portrange A-B, and, or, not, ( )";

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.pos)
    }

    fn peek_is(&self, words: &[&str]) -> bool {
        self.peek().is_some_and(|t| words.contains(&t.text))
    }

    fn next(&mut self) -> Option<Token<'a>> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn error_at(&self, token: Option<&Token<'_>>, what: &str) -> FilterError {
        match token {
            Some(t) => FilterError(format!(
                "filter {:?}: {what} at {:?} (character {}); xsktap supports: {PRIMITIVES}",
                self.input,
                t.text,
                t.at + 1
            )),
            None => FilterError(format!(
                "filter {:?}: {what} at the end of the expression; xsktap supports: {PRIMITIVES}",
                self.input
            )),
        }
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.peek_is(&["or", "||"]) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        while self.peek_is(&["and", "&&"]) {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.peek_is(&["not", "!", "("]) && self.depth >= MAX_DEPTH {
            let t = self.peek().cloned();
            return Err(FilterError(format!(
                "filter nests parentheses and \"not\" deeper than {MAX_DEPTH} levels (at character {}): simplify it",
                t.map_or(0, |t| t.at + 1)
            )));
        }
        if self.peek_is(&["not", "!"]) {
            self.pos += 1;
            self.depth += 1;
            let e = self.unary();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e?)));
        }
        if self.peek_is(&["("]) {
            self.pos += 1;
            self.depth += 1;
            let e = self.expr();
            self.depth -= 1;
            let e = e?;
            let close = self.next();
            if close.as_ref().map(|t| t.text) != Some(")") {
                return Err(self.error_at(close.as_ref(), "expected \")\""));
            }
            return Ok(e);
        }
        self.primitive()
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, FilterError> {
        let t = self.next();
        t.as_ref()
            .and_then(|t| t.text.parse().ok())
            .ok_or_else(|| self.error_at(t.as_ref(), &format!("expected {what}")))
    }

    fn port_test(&mut self, dir: Dir) -> Result<Expr, FilterError> {
        let kw = self.next().expect("caller peeked port or portrange");
        let (lo, hi) = if kw.text == "port" {
            let p: u16 = self.number("a port number (0-65535)")?;
            (p, p)
        } else {
            let t = self.next();
            let range = t.as_ref().and_then(|t| {
                let (a, b) = t.text.split_once('-')?;
                Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?))
            });
            match range {
                Some((a, b)) if a <= b => (a, b),
                _ => return Err(self.error_at(t.as_ref(), "expected a port range like 1000-2000")),
            }
        };
        Ok(either(dir, |d| Expr::Test(Test::Port(d, lo, hi))))
    }

    fn net_test(&mut self, dir: Dir, host: bool) -> Result<Expr, FilterError> {
        let t = self.next();
        let text = t.as_ref().map_or("", |t| t.text);
        let net = Net::parse(text, host).map_err(|why| self.error_at(t.as_ref(), why))?;
        Ok(Expr::net(dir, net))
    }

    fn primitive(&mut self) -> Result<Expr, FilterError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.error_at(None, "expected a primitive"));
        };
        let dir = match t.text {
            "src" => Some(Dir::Src),
            "dst" => Some(Dir::Dst),
            _ => None,
        };
        if let Some(dir) = dir {
            self.pos += 1;
            return match self.peek().map(|t| t.text) {
                Some("host") => {
                    self.pos += 1;
                    self.net_test(dir, true)
                }
                Some("net") => {
                    self.pos += 1;
                    self.net_test(dir, false)
                }
                Some("port" | "portrange") => self.port_test(dir),
                _ => Err(self.error_at(
                    self.peek(),
                    "expected host, net, port or portrange after src/dst",
                )),
            };
        }
        self.pos += 1;
        let proto = |family, proto| Expr::Test(Test::IpProto { family, proto });
        Ok(match t.text {
            "ip" => Expr::Test(Test::EtherType(ethertype::IPV4)),
            "ip6" => Expr::Test(Test::EtherType(ethertype::IPV6)),
            "arp" => Expr::Test(Test::EtherType(ethertype::ARP)),
            "rarp" => Expr::Test(Test::EtherType(ethertype::RARP)),
            "icmp" => proto(4, ipproto::ICMP),
            "icmp6" => proto(6, ipproto::ICMPV6),
            "tcp" | "udp" => {
                let p = proto(
                    0,
                    if t.text == "tcp" {
                        ipproto::TCP
                    } else {
                        ipproto::UDP
                    },
                );
                // `tcp port 80`, `udp src port 53`: the protocol qualifies the port.
                let dir = match self.peek().map(|t| t.text) {
                    Some("src")
                        if self
                            .tokens
                            .get(self.pos + 1)
                            .is_some_and(|t| t.text.starts_with("port")) =>
                    {
                        self.pos += 1;
                        Some(Dir::Src)
                    }
                    Some("dst")
                        if self
                            .tokens
                            .get(self.pos + 1)
                            .is_some_and(|t| t.text.starts_with("port")) =>
                    {
                        self.pos += 1;
                        Some(Dir::Dst)
                    }
                    Some("port" | "portrange") => Some(Dir::Either),
                    _ => None,
                };
                match dir {
                    Some(d) => Expr::And(Box::new(p), Box::new(self.port_test(d)?)),
                    None => p,
                }
            }
            "vlan" => {
                let id = match self.peek().and_then(|t| t.text.parse::<u16>().ok()) {
                    Some(id) if id < 4095 => {
                        self.pos += 1;
                        Some(id)
                    }
                    Some(_) => return Err(self.error_at(self.peek(), "VLAN ids go from 0 to 4094")),
                    None => None,
                };
                Expr::Test(Test::Vlan(id))
            }
            "host" => self.net_test(Dir::Either, true)?,
            "net" => self.net_test(Dir::Either, false)?,
            "port" | "portrange" => {
                self.pos -= 1;
                self.port_test(Dir::Either)?
            }
            _ => return Err(self.error_at(Some(&t), "unknown or unsupported word")),
        })
    }
}

fn masked(net: &Net) -> [u8; 16] {
    let (a, m) = net.bytes_and_mask();
    std::array::from_fn(|i| a[i] & m[i])
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl Expr {
    /// Both, when both are given.
    pub fn and(a: Option<Expr>, b: Option<Expr>) -> Option<Expr> {
        match (a, b) {
            (Some(a), Some(b)) => Some(Expr::And(Box::new(a), Box::new(b))),
            (a, b) => a.or(b),
        }
    }

    /// The source, the destination or either address inside `net`.
    pub fn net(dir: Dir, net: Net) -> Expr {
        either(dir, |d| Expr::Test(Test::Net(d, net)))
    }

    /// The source, the destination or either port equal to `port`.
    pub fn port(dir: Dir, port: u16) -> Expr {
        either(dir, |d| Expr::Test(Test::Port(d, port, port)))
    }
}

fn either(dir: Dir, make: impl Fn(Dir) -> Expr) -> Expr {
    match dir {
        Dir::Either => Expr::Or(Box::new(make(Dir::Src)), Box::new(make(Dir::Dst))),
        d => make(d),
    }
}

/// Parses a filter expression; an empty one (only spaces) is `None`: everything matches.
///
/// # Errors
/// A [`FilterError`] naming the first word outside the supported subset.
pub fn parse_expr(input: &str) -> Result<Option<Expr>, FilterError> {
    let tokens = lex(input);
    if tokens.is_empty() {
        return Ok(None);
    }
    if tokens.len() > MAX_WORDS {
        return Err(FilterError(format!(
            "filter has {} words; xsktap takes at most {MAX_WORDS} (the XDP program holds {MAX_TESTS} tests): simplify it",
            tokens.len()
        )));
    }
    let mut p = Parser {
        input,
        tokens,
        pos: 0,
        depth: 0,
    };
    let e = p.expr()?;
    if let Some(t) = p.peek() {
        let t = t.clone();
        return Err(p.error_at(Some(&t), "unexpected word (missing \"and\"/\"or\"?)"));
    }
    Ok(Some(e))
}

/// Where a test jumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// To test number N.
    Test(u16),
    /// The frame matches.
    Accept,
    /// The frame does not match.
    Reject,
}

/// A compiled filter: tests in execution order, jumping forward only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    /// Each test with its targets on true and on false.
    pub tests: Vec<(Test, Target, Target)>,
}

impl Program {
    /// Compiles `expr` into at most `max_tests` tests.
    ///
    /// # Errors
    /// A [`FilterError`] when the expression needs more tests than the XDP program holds.
    pub fn compile(expr: Option<&Expr>, max_tests: usize) -> Result<Program, FilterError> {
        let Some(expr) = expr else {
            return Ok(Program::default());
        };
        // Generated last-first: every target exists before the test that jumps to it.
        let mut rev: Vec<(Test, Target, Target)> = Vec::new();
        gen(expr, Target::Accept, Target::Reject, &mut rev);
        if rev.len() > max_tests {
            return Err(FilterError(format!(
                "filter needs {} tests; the XDP program holds at most {max_tests}: simplify it",
                rev.len()
            )));
        }
        let n = rev.len();
        let fix = |t: Target| match t {
            Target::Test(id) => Target::Test((n - 1 - usize::from(id)) as u16),
            other => other,
        };
        let tests = rev
            .into_iter()
            .rev()
            .map(|(test, t, f)| (test, fix(t), fix(f)))
            .collect();
        Ok(Program { tests })
    }

    /// Whether `packet` matches (the userspace evaluator).
    pub fn matches(&self, packet: &Packet) -> bool {
        let mut pc = 0usize;
        if self.tests.is_empty() {
            return true;
        }
        // Jumps go forward only, so this ends within `len` steps.
        loop {
            let (test, t, f) = self.tests[pc];
            match if eval(&test, packet) { t } else { f } {
                Target::Accept => return true,
                Target::Reject => return false,
                Target::Test(next) => {
                    debug_assert!(usize::from(next) > pc);
                    pc = usize::from(next);
                }
            }
        }
    }

    /// Encodes the program for the XDP program's filter map.
    pub fn encode(&self) -> Vec<FilterInsn> {
        let target = |t: Target| match t {
            Target::Test(i) => i,
            Target::Accept => TARGET_ACCEPT,
            Target::Reject => TARGET_REJECT,
        };
        self.tests
            .iter()
            .map(|(test, t, f)| {
                let mut insn = FilterInsn {
                    jt: target(*t),
                    jf: target(*f),
                    ..Default::default()
                };
                match *test {
                    Test::EtherType(e) => {
                        insn.op = FilterOp::EtherType;
                        insn.lo = e;
                    }
                    Test::IpProto { family, proto } => {
                        insn.op = FilterOp::IpProto;
                        insn.family = u32::from(family);
                        insn.lo = u16::from(proto);
                    }
                    Test::Net(dir, net) => {
                        insn.op = if dir == Dir::Src {
                            FilterOp::SrcNet
                        } else {
                            FilterOp::DstNet
                        };
                        insn.family = if net.addr.is_ipv4() { 4 } else { 6 };
                        let (_, mask) = net.bytes_and_mask();
                        let addr = masked(&net);
                        insn.addr = [u64_at(&addr, 0), u64_at(&addr, 8)];
                        insn.mask = [u64_at(&mask, 0), u64_at(&mask, 8)];
                    }
                    Test::Port(dir, lo, hi) => {
                        insn.op = if dir == Dir::Src {
                            FilterOp::SrcPort
                        } else {
                            FilterOp::DstPort
                        };
                        insn.lo = lo;
                        insn.hi = hi;
                    }
                    Test::Vlan(id) => {
                        insn.op = FilterOp::Vlan;
                        insn.lo = id.unwrap_or(VLAN_ANY);
                    }
                }
                insn
            })
            .collect()
    }
}

/// The bytes at `at..at + 8` as the XDP program loads them (memory order).
fn u64_at(bytes: &[u8; 16], at: usize) -> u64 {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn gen(e: &Expr, t: Target, f: Target, out: &mut Vec<(Test, Target, Target)>) -> Target {
    match e {
        Expr::Test(test) => {
            out.push((*test, t, f));
            Target::Test((out.len() - 1) as u16)
        }
        Expr::Not(x) => gen(x, f, t, out),
        Expr::And(a, b) => {
            let b = gen(b, t, f, out);
            gen(a, b, f, out)
        }
        Expr::Or(a, b) => {
            let b = gen(b, t, f, out);
            gen(a, t, b, out)
        }
    }
}

/// The addresses a net test looks at: the IP header's, or ARP's and RARP's
/// sender and target (as tcpdump's `host` and `net` do; xsktap reads them
/// where the header's sizes put them, tcpdump at the offsets of 6-byte
/// hardware addresses).
fn addresses(p: &Packet) -> Option<(IpAddr, IpAddr)> {
    match (p.src, p.dst, p.arp) {
        (Some(s), Some(d), _) => Some((s, d)),
        (_, _, Some((s, d))) => Some((IpAddr::V4(s), IpAddr::V4(d))),
        _ => None,
    }
}

fn eval(test: &Test, p: &Packet) -> bool {
    match *test {
        Test::EtherType(e) => p.ethertype == e,
        Test::IpProto { family, proto } => {
            let fam_ok = matches!(
                (family, p.src),
                (0, _) | (4, Some(IpAddr::V4(_))) | (6, Some(IpAddr::V6(_)))
            );
            fam_ok && p.ip_proto == Some(proto)
        }
        Test::Net(dir, net) => addresses(p).is_some_and(|(s, d)| match dir {
            Dir::Src => net.contains(s),
            Dir::Dst => net.contains(d),
            Dir::Either => net.contains(s) || net.contains(d),
        }),
        Test::Port(dir, lo, hi) => {
            let inside = |port: Option<u16>| port.is_some_and(|x| (lo..=hi).contains(&x));
            match dir {
                Dir::Src => inside(p.sport),
                Dir::Dst => inside(p.dport),
                Dir::Either => inside(p.sport) || inside(p.dport),
            }
        }
        Test::Vlan(None) => p.vlan_count > 0,
        Test::Vlan(Some(id)) => p.vlan_ids().contains(&id),
    }
}

pub mod flags;

#[cfg(test)]
mod tests;
