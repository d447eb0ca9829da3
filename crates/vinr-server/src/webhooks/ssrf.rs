//! The addresses an endpoint may reach (SPEC §6). Live-mode endpoints reach public addresses
//! only: never loopback, private, link-local (the cloud metadata address 169.254.169.254
//! included), shared (CGNAT), unique-local (fd00:ec2::254 included), unspecified, multicast or
//! reserved ones — in any spelling, IPv4-mapped and other IPv6 forms that embed an IPv4 address
//! included. Test-mode endpoints may also reach loopback (a receiver under development), and
//! any host listed in `[webhooks] test_allowed_hosts` (a receiver in another container of a CI
//! job, at a private address).
//!
//! Registration checks the URL's host when it is an address literal or `localhost`
//! ([`check_url`]; the `url` crate has already normalised every IPv4 spelling, `127.1`,
//! `2130706433`, `0x7f000001` or `0177.0.0.1`, to 127.0.0.1, as browsers do). Delivery checks
//! again: literals with [`check_url`], names on the resolved address inside the HTTP client's
//! resolver ([`Guarded`]), so the address checked is the address connected to (no second
//! lookup a DNS rebinding could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Deserialize;
use vinr_domain::Mode;

/// A kind of address that is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    Shared,
    UniqueLocal,
    SiteLocal,
    ProtocolAssignments,
    Benchmarking,
    Multicast,
    /// Documentation ranges (TEST-NET-1/2/3, `2001:db8::/32`): never a real receiver.
    Documentation,
    /// A cloud provider's instance-metadata or host-agent address that is not link-local
    /// (Azure's wireserver, `168.63.129.16`).
    Metadata,
    /// Local-use NAT64 (`64:ff9b:1::/48`) and Teredo (`2001::/32`): they tunnel to IPv4
    /// addresses that cannot be judged from the IPv6 address alone.
    Tunnel,
    /// A 6to4, NAT64 or IPv4-compatible address embedding a loopback one: not loopback (it
    /// would be routed elsewhere), and reachable in no mode.
    EmbeddedLoopback,
    Other,
}

impl Reserved {
    pub fn describe(self) -> &'static str {
        match self {
            Reserved::Unspecified => "unspecified",
            Reserved::Loopback => "loopback",
            Reserved::Private => "private",
            Reserved::LinkLocal => "link-local",
            Reserved::Shared => "shared (CGNAT)",
            Reserved::UniqueLocal => "private (unique local)",
            Reserved::SiteLocal => "site-local",
            Reserved::ProtocolAssignments => "reserved (IETF protocol assignments)",
            Reserved::Benchmarking => "reserved (benchmarking)",
            Reserved::Multicast => "multicast",
            Reserved::Documentation => "reserved (documentation)",
            Reserved::Metadata => "cloud metadata",
            Reserved::Tunnel => "reserved (a tunnel to IPv4: local-use NAT64 or Teredo)",
            Reserved::EmbeddedLoopback => "reserved (embeds a loopback address)",
            Reserved::Other => "reserved",
        }
    }
}

/// What kind of non-public address `ip` is, or `None` when it is a public address.
pub fn reserved(ip: IpAddr) -> Option<Reserved> {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<Reserved> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        (168, 63) if (c, d) == (129, 16) => Reserved::Metadata,
        (192, 0) if c == 2 => Reserved::Documentation,
        (198, 51) if c == 100 => Reserved::Documentation,
        (203, 0) if c == 113 => Reserved::Documentation,
        (0, _) => Reserved::Unspecified,
        (127, _) => Reserved::Loopback,
        (10, _) | (172, 16..=31) | (192, 168) => Reserved::Private,
        (169, 254) => Reserved::LinkLocal,
        (100, 64..=127) => Reserved::Shared,
        (192, 0) if c == 0 => Reserved::ProtocolAssignments,
        (198, 18..=19) => Reserved::Benchmarking,
        (224..=239, _) => Reserved::Multicast,
        (240..=255, _) => Reserved::Other,
        _ => return None,
    })
}

fn reserved_v6(ip: Ipv6Addr) -> Option<Reserved> {
    if ip.is_unspecified() {
        return Some(Reserved::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Reserved::Loopback);
    }
    // An IPv4 address in IPv6 clothing is judged as that IPv4 address; only the IPv4-mapped
    // form of a loopback address reaches loopback.
    if let Some(v4) = embedded_v4(ip) {
        return match reserved_v4(v4) {
            Some(Reserved::Loopback) if ip.to_ipv4_mapped().is_none() => {
                Some(Reserved::EmbeddedLoopback)
            }
            kind => kind,
        };
    }
    let segments = ip.segments();
    let first = segments[0];
    if (first, segments[1]) == (0x2001, 0x0db8) {
        return Some(Reserved::Documentation);
    }
    if (first, segments[1], segments[2]) == (0x64, 0xff9b, 1) || (first, segments[1]) == (0x2001, 0)
    {
        return Some(Reserved::Tunnel);
    }
    if first & 0xfe00 == 0xfc00 {
        return Some(Reserved::UniqueLocal);
    }
    if first & 0xffc0 == 0xfe80 {
        return Some(Reserved::LinkLocal);
    }
    if first & 0xffc0 == 0xfec0 {
        return Some(Reserved::SiteLocal);
    }
    if first & 0xff00 == 0xff00 {
        return Some(Reserved::Multicast);
    }
    None
}

/// The IPv4 address embedded by IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`) addresses.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

/// Which addresses endpoints of a mode may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Live mode: public addresses only.
    Public,
    /// Test mode: public and loopback addresses.
    PublicAndLoopback,
}

impl Reach {
    pub fn of(mode: Mode) -> Reach {
        match mode {
            Mode::Live => Reach::Public,
            Mode::Test => Reach::PublicAndLoopback,
        }
    }

    /// Why `ip` is out of reach, or `None` when it may be reached.
    pub fn refuses(self, ip: IpAddr) -> Option<Reserved> {
        let kind = reserved(ip)?;
        match (self, kind) {
            (Reach::PublicAndLoopback, Reserved::Loopback) => None,
            _ => Some(kind),
        }
    }

    /// The rule, for messages.
    pub fn rule(self) -> &'static str {
        match self {
            Reach::Public => "live-mode endpoints must be public",
            Reach::PublicAndLoopback => {
                "test-mode endpoints may reach public and loopback addresses, and the hosts \
                 listed in [webhooks] test_allowed_hosts"
            }
        }
    }
}

/// What a URL's host is, for these rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// An address literal, in whatever spelling the URL used.
    Address(IpAddr),
    /// `localhost` or a name under it: loopback by definition (RFC 6761), whatever a resolver
    /// says.
    Localhost,
    /// Another name: judged on the addresses it resolves to, at delivery.
    Name,
}

/// What `url`'s host is; `None` for a URL without a host.
pub fn host_kind(url: &url::Url) -> Option<HostKind> {
    Some(match url.host()? {
        url::Host::Ipv4(v4) => HostKind::Address(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => HostKind::Address(IpAddr::V6(v6)),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                HostKind::Localhost
            } else {
                HostKind::Name
            }
        }
    })
}

/// Whether `url`'s host is loopback by itself (a loopback literal or `localhost`).
pub fn is_loopback_host(url: &url::Url) -> bool {
    match host_kind(url) {
        Some(HostKind::Address(ip)) => reserved(ip) == Some(Reserved::Loopback),
        Some(HostKind::Localhost) => true,
        Some(HostKind::Name) | None => false,
    }
}

/// Why an address may not be reached; its text ends up in the attempt's `error`, or (at
/// registration) in the 400's message.
#[derive(Debug)]
pub struct Refused {
    /// The name, or the address literal as normalised (`127.0.0.1` for `0x7f000001`).
    pub host: String,
    /// The address it is or resolves to (`None` for `localhost`, refused by name).
    pub ip: Option<IpAddr>,
    pub kind: Reserved,
    pub reach: Reach,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, rule) = (self.kind.describe(), self.reach.rule());
        match self.ip {
            Some(ip) if ip.to_string() == self.host => {
                write!(f, "refused: {ip} is a {kind} address ({rule})")
            }
            Some(ip) => write!(
                f,
                "refused: {} resolves to {ip}, a {kind} address ({rule})",
                self.host
            ),
            None => write!(f, "refused: {} is a {kind} name ({rule})", self.host),
        }
    }
}

impl std::error::Error for Refused {}

/// Checks what `url`'s host says by itself (an address literal, `localhost`) against `reach`;
/// other names pass here and are checked on what they resolve to.
pub fn check_url(url: &url::Url, reach: Reach) -> Result<(), Refused> {
    let host = url.host_str().unwrap_or_default().to_owned();
    match host_kind(url) {
        Some(HostKind::Address(ip)) => match reach.refuses(ip) {
            Some(kind) => Err(Refused {
                host: ip.to_string(),
                ip: Some(ip),
                kind,
                reach,
            }),
            None => Ok(()),
        },
        Some(HostKind::Localhost) if reach == Reach::Public => Err(Refused {
            host,
            ip: None,
            kind: Reserved::Loopback,
            reach,
        }),
        _ => Ok(()),
    }
}

/// `[webhooks] test_allowed_hosts`: hosts (`app`, any port) or host:port pairs (`app:3000`)
/// that test-mode endpoints may reach whatever their addresses — by `http` or `https`, at
/// registration and at delivery. Names and address literals are normalised as URLs normalise
/// them, so `app:3000` matches `http://APP:3000/hooks` and `10.1:8080` matches
/// `http://10.0.0.1:8080/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct AllowedHosts(Vec<(String, Option<u16>)>);

impl TryFrom<Vec<String>> for AllowedHosts {
    type Error = String;

    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        AllowedHosts::parse(&entries)
    }
}

impl AllowedHosts {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowedHosts, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref();
                let bad = |why: &str| {
                    format!(
                        "webhooks.test_allowed_hosts: `{entry}` is not a host or host:port ({why})"
                    )
                };
                if entry.is_empty() || entry.ends_with(':') {
                    return Err(bad("empty"));
                }
                if entry.contains(['/', '@', '?', '#', '\\'])
                    || entry.chars().any(char::is_whitespace)
                {
                    return Err(bad("only a host and an optional port, no scheme or path"));
                }
                let url = url::Url::parse(&format!("http://{entry}/"))
                    .map_err(|error| bad(&error.to_string()))?;
                let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
                // The URL leaves out http's default port; an entry that names it still means it.
                let after_host = entry.rfind(']').map_or(entry, |end| &entry[end..]);
                let port = after_host
                    .contains(':')
                    .then(|| url.port_or_known_default())
                    .flatten();
                Ok((host, port))
            })
            .collect::<Result<Vec<_>, String>>()
            .map(AllowedHosts)
    }

    /// Whether `url`'s host (and port) is listed.
    pub fn allows(&self, url: &url::Url) -> bool {
        let (Some(host), port) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        self.0.iter().any(|(listed, listed_port)| {
            listed == host && listed_port.is_none_or(|p| Some(p) == port)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Of the addresses `host` resolved to, those `reach` allows; refused when none is left.
pub fn filter_resolved(
    host: &str,
    resolved: impl IntoIterator<Item = SocketAddr>,
    reach: Reach,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let mut first_refusal = None;
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| match reach.refuses(addr.ip()) {
            Some(kind) => {
                first_refusal.get_or_insert(Refused {
                    host: host.to_owned(),
                    ip: Some(addr.ip()),
                    kind,
                    reach,
                });
                false
            }
            None => true,
        })
        .collect();
    if allowed.is_empty() {
        return Err(match first_refusal {
            Some(refused) => Box::new(refused),
            None => format!("{host} has no address").into(),
        });
    }
    Ok(allowed)
}

/// A resolver for the delivery clients: the system's answers, less every address out of
/// reach; a name with none left is refused.
#[derive(Debug, Clone, Copy)]
pub struct Guarded(pub Reach);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let reach = self.0;
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = filter_resolved(&host, resolved, reach)?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn refuses_every_non_public_range() {
        for text in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "168.63.129.16",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.255",
            "2001:db8::1",
            "64:ff9b:1::a00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(reserved(ip(text)).is_some(), "{text} must be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "192.169.0.1",
            "168.63.129.17",
            "192.0.3.1",
            "203.0.114.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
        ] {
            assert_eq!(reserved(ip(text)), None, "{text} is public");
            assert_eq!(Reach::Public.refuses(ip(text)), None, "{text}");
        }
    }

    /// Every spelling of a non-public host: what the `url` crate normalises it to (WHATWG
    /// host parsing, as browsers do: nothing here parses IPv4 by hand), what kind it is, and
    /// what each mode's reach makes of it.
    #[test]
    fn every_spelling_of_a_reserved_host_is_refused_in_live_mode() {
        use HostKind::{Address, Localhost};
        use Reserved::*;
        let loopback = Address(ip("127.0.0.1"));
        let cases: &[(&str, &str, HostKind, Reserved)] = &[
            ("http://127.0.0.1/", "127.0.0.1", loopback, Loopback),
            ("http://127.1/", "127.0.0.1", loopback, Loopback),
            ("http://2130706433/", "127.0.0.1", loopback, Loopback),
            ("http://0x7f000001/", "127.0.0.1", loopback, Loopback),
            ("http://0177.0.0.1/", "127.0.0.1", loopback, Loopback),
            ("http://017700000001/", "127.0.0.1", loopback, Loopback),
            ("http://0x7f.1/", "127.0.0.1", loopback, Loopback),
            ("http://127.0.0.1./", "127.0.0.1", loopback, Loopback),
            (
                "https://127.0.0.2:8443/x",
                "127.0.0.2",
                Address(ip("127.0.0.2")),
                Loopback,
            ),
            ("http://[::1]/", "[::1]", Address(ip("::1")), Loopback),
            (
                "http://[::ffff:127.0.0.1]/",
                "[::ffff:7f00:1]",
                Address(ip("::ffff:127.0.0.1")),
                Loopback,
            ),
            ("http://localhost/", "localhost", Localhost, Loopback),
            ("http://LOCALHOST.:9000/", "localhost.", Localhost, Loopback),
            (
                "http://hooks.localhost/",
                "hooks.localhost",
                Localhost,
                Loopback,
            ),
            (
                "http://169.254.169.254/latest",
                "169.254.169.254",
                Address(ip("169.254.169.254")),
                LinkLocal,
            ),
            (
                "http://0xa9fea9fe/",
                "169.254.169.254",
                Address(ip("169.254.169.254")),
                LinkLocal,
            ),
            (
                "http://[::ffff:a9fe:a9fe]/",
                "[::ffff:a9fe:a9fe]",
                Address(ip("::ffff:169.254.169.254")),
                LinkLocal,
            ),
            (
                "http://[::ffff:169.254.169.254]/",
                "[::ffff:a9fe:a9fe]",
                Address(ip("::ffff:169.254.169.254")),
                LinkLocal,
            ),
            (
                "http://[fd00:ec2::254]/",
                "[fd00:ec2::254]",
                Address(ip("fd00:ec2::254")),
                UniqueLocal,
            ),
            (
                "http://[fe80::1]/",
                "[fe80::1]",
                Address(ip("fe80::1")),
                LinkLocal,
            ),
            (
                "http://10.0.0.1/",
                "10.0.0.1",
                Address(ip("10.0.0.1")),
                Private,
            ),
            ("http://10.1/", "10.0.0.1", Address(ip("10.0.0.1")), Private),
            (
                "http://167772161/",
                "10.0.0.1",
                Address(ip("10.0.0.1")),
                Private,
            ),
            (
                "http://192.168.1.1/",
                "192.168.1.1",
                Address(ip("192.168.1.1")),
                Private,
            ),
            (
                "http://[fd00::1]/",
                "[fd00::1]",
                Address(ip("fd00::1")),
                UniqueLocal,
            ),
            (
                "http://100.64.0.1/",
                "100.64.0.1",
                Address(ip("100.64.0.1")),
                Shared,
            ),
            (
                "http://100.100.100.200/",
                "100.100.100.200",
                Address(ip("100.100.100.200")),
                Shared,
            ),
            (
                "http://0.0.0.0/",
                "0.0.0.0",
                Address(ip("0.0.0.0")),
                Unspecified,
            ),
            ("http://0/", "0.0.0.0", Address(ip("0.0.0.0")), Unspecified),
            ("http://[::]/", "[::]", Address(ip("::")), Unspecified),
            (
                "http://[2002:7f00:1::]/",
                "[2002:7f00:1::]",
                Address(ip("2002:7f00:1::")),
                EmbeddedLoopback,
            ),
            (
                "http://[64:ff9b::7f00:1]/",
                "[64:ff9b::7f00:1]",
                Address(ip("64:ff9b::7f00:1")),
                EmbeddedLoopback,
            ),
            (
                "http://[::127.0.0.1]/",
                "[::7f00:1]",
                Address(ip("::127.0.0.1")),
                EmbeddedLoopback,
            ),
        ];
        for &(text, normalised, kind, reserved_kind) in cases {
            let parsed = url(text);
            assert_eq!(parsed.host_str(), Some(normalised), "{text}");
            assert_eq!(host_kind(&parsed), Some(kind), "{text}");
            if let Address(address) = kind {
                assert_eq!(reserved(address), Some(reserved_kind), "{text}");
            }
            let refused = check_url(&parsed, Reach::Public)
                .expect_err(&format!("{text} must be refused in live mode"));
            assert_eq!(refused.kind, reserved_kind, "{text}");
            assert!(refused.to_string().starts_with("refused: "), "{refused}");
            assert!(
                refused.to_string().contains(reserved_kind.describe()),
                "{refused}"
            );
            // Test mode: loopback (and localhost) stays reachable, nothing else.
            let in_test = check_url(&parsed, Reach::PublicAndLoopback);
            assert_eq!(
                in_test.is_ok(),
                reserved_kind == Loopback,
                "{text} in test mode: {in_test:?}"
            );
            assert_eq!(
                is_loopback_host(&parsed),
                reserved_kind == Loopback,
                "{text}"
            );
        }
    }

    #[test]
    fn public_hosts_and_names_pass_the_url_check() {
        for text in [
            "https://8.8.8.8/",
            "https://[2606:4700:4700::1111]/",
            "https://shop.example/hooks",
            "https://localhost.shop.example/",
            "https://mylocalhost/",
        ] {
            let parsed = url(text);
            assert!(check_url(&parsed, Reach::Public).is_ok(), "{text}");
            assert!(
                check_url(&parsed, Reach::PublicAndLoopback).is_ok(),
                "{text}"
            );
            assert!(!is_loopback_host(&parsed), "{text}");
        }
    }

    #[test]
    fn allowed_hosts_match_host_or_host_and_port_as_urls_normalise_them() {
        let allowed =
            AllowedHosts::parse(&["app:3000", "Receiver", "10.1:8080", "[fd00::1]", "web:80"])
                .expect("valid entries");
        for (text, listed) in [
            ("http://app:3000/hooks", true),
            ("https://APP:3000/", true),
            ("http://app/", false),
            ("http://app:3001/", false),
            ("http://receiver/", true),
            ("https://receiver:9443/", true),
            ("http://10.0.0.1:8080/", true),
            ("http://167772161:8080/", true),
            ("http://10.0.0.1/", false),
            ("http://[fd00::1]:9/", true),
            ("http://[fd00::2]/", false),
            ("http://web/", true),
            ("http://web:80/", true),
            ("https://web/", false),
            ("http://application:3000/", false),
        ] {
            assert_eq!(allowed.allows(&url(text)), listed, "{text}");
        }
        assert!(AllowedHosts::default().is_empty());
        for bad in [
            "",
            "http://app:3000",
            "app:3000/x",
            "app:",
            "user@app",
            "a b",
            "app:99999",
        ] {
            let error = AllowedHosts::parse(&[bad]).expect_err(bad);
            assert!(
                error.starts_with("webhooks.test_allowed_hosts: "),
                "{error}"
            );
        }
        let parsed: AllowedHosts =
            serde_json::from_str(r#"["app:3000"]"#).expect("a list of strings parses");
        assert!(parsed.allows(&url("http://app:3000/")));
        assert!(serde_json::from_str::<AllowedHosts>(r#"["app:x"]"#).is_err());
    }

    #[test]
    fn resolved_addresses_are_filtered_by_reach() {
        let addrs = |list: &[&str]| -> Vec<SocketAddr> {
            list.iter().map(|a| SocketAddr::new(ip(a), 443)).collect()
        };
        // A name that resolves to a private address: refused in both modes (unless the host is
        // listed, which sends it through a client without this resolver).
        for reach in [Reach::Public, Reach::PublicAndLoopback] {
            let error = filter_resolved("app", addrs(&["10.0.0.5"]), reach)
                .expect_err("a private address is out of reach");
            assert_eq!(
                error.to_string(),
                format!(
                    "refused: app resolves to 10.0.0.5, a private address ({})",
                    reach.rule()
                )
            );
        }
        let error = filter_resolved(
            "meta",
            addrs(&["169.254.169.254", "fd00:ec2::254"]),
            Reach::PublicAndLoopback,
        )
        .expect_err("metadata");
        assert!(error.to_string().contains("link-local"), "{error}");
        // Loopback: test mode only.
        let local = addrs(&["127.0.0.1", "::1"]);
        assert_eq!(
            filter_resolved("localhost", local.clone(), Reach::PublicAndLoopback)
                .expect("test mode"),
            local
        );
        assert!(filter_resolved("localhost", local, Reach::Public).is_err());
        // Mixed answers keep only what is in reach.
        assert_eq!(
            filter_resolved("mixed", addrs(&["10.0.0.5", "8.8.8.8"]), Reach::Public)
                .expect("one public"),
            addrs(&["8.8.8.8"])
        );
        assert!(filter_resolved("nothing", addrs(&[]), Reach::Public)
            .expect_err("no address")
            .to_string()
            .contains("no address"));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_forbidden_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let error = match Guarded(Reach::Public).resolve(name).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("refused: localhost resolves to"), "{error}");
        assert!(error.contains("loopback"), "{error}");
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let addrs: Vec<SocketAddr> = Guarded(Reach::PublicAndLoopback)
            .resolve(name)
            .await
            .expect("loopback is in reach in test mode")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
