//! SSRF protection for live-mode delivery (SPEC §6): an endpoint may not reach loopback,
//! private, link-local (the cloud metadata address 169.254.169.254 included), shared
//! (CGNAT), unspecified, multicast or reserved addresses — in any spelling, IPv4-mapped and
//! other IPv6 forms that embed an IPv4 address included.
//!
//! The check runs on the resolved address at delivery, inside the HTTP client's resolver
//! ([`PublicOnly`]), so the address checked is the address connected to (no second lookup a
//! DNS rebinding could answer differently). URLs with a literal IP never reach a resolver;
//! [`check_literal_host`] covers them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address may not be delivered to, or `None` when it is a public address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    Some(match (a, b) {
        (0, _) => "unspecified",
        (127, _) => "loopback",
        (10, _) | (172, 16..=31) | (192, 168) => "private",
        (169, 254) => "link-local",
        (100, 64..=127) => "shared (CGNAT)",
        (192, 0) if ip.octets()[2] == 0 => "reserved (IETF protocol assignments)",
        (198, 18..=19) => "reserved (benchmarking)",
        (224..=239, _) => "multicast",
        (240..=255, _) => "reserved",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // An IPv4 address in IPv6 clothing is judged as that IPv4 address.
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    if first & 0xfe00 == 0xfc00 {
        return Some("private (unique local)");
    }
    if first & 0xffc0 == 0xfe80 {
        return Some("link-local");
    }
    if first & 0xffc0 == 0xfec0 {
        return Some("site-local");
    }
    if first & 0xff00 == 0xff00 {
        return Some("multicast");
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

/// The error a refused address produces; its text ends up in the attempt's `error`.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refusal(host: &str, ip: IpAddr, why: &str) -> Refused {
    Refused(format!(
        "refused: {host} resolves to {ip}, a {why} address (live-mode endpoints must be public)"
    ))
}

/// For a URL whose host is a literal IP (which no resolver sees): refuses a forbidden one.
pub fn check_literal_host(url: &str) -> Result<(), Refused> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match forbidden(ip) {
        Some(why) => Err(refusal(&ip.to_string(), ip, why)),
        None => Ok(()),
    }
}

/// A resolver for the live-mode client: the system's answers, less every forbidden address;
/// a name with none left is refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match forbidden(addr.ip()) {
                    Some(why) => {
                        first_refusal.get_or_insert_with(|| refusal(&host, addr.ip(), why));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let error = first_refusal
                    .unwrap_or_else(|| Refused(format!("refused: {host} has no address")));
                return Err(Box::new(error) as Box<dyn std::error::Error + Send + Sync>);
            }
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
        ] {
            assert!(forbidden(ip(text)).is_some(), "{text} must be refused");
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
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
        ] {
            assert_eq!(forbidden(ip(text)), None, "{text} is public");
        }
    }

    #[test]
    fn literal_hosts_are_checked() {
        assert!(check_literal_host("https://127.0.0.1:8443/hook").is_err());
        assert!(check_literal_host("https://[::ffff:169.254.169.254]/latest").is_err());
        assert!(check_literal_host("https://[fe80::1]/").is_err());
        assert!(check_literal_host("https://8.8.8.8/").is_ok());
        assert!(check_literal_host("https://shop.example/").is_ok());
        // The url crate normalises other IPv4 spellings before anyone connects.
        assert!(check_literal_host("https://2130706433/").is_err());
        assert!(check_literal_host("https://0x7f.1/").is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_forbidden_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let error = match PublicOnly.resolve(name).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("refused: localhost resolves to"), "{error}");
        assert!(error.contains("loopback"), "{error}");
    }
}
