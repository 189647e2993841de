//! Where callbacks may go. In production: https only, and never to loopback, private,
//! link-local or otherwise non-public addresses — checked when the URL is registered, and again
//! at every delivery after DNS resolution, by the resolver the HTTP client connects through, so
//! the connection goes to the very address that was checked (no DNS rebinding). Development
//! allows plain http and loopback, for tests and the demo.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::config::Mode;

/// Which callback URLs and addresses are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destinations {
    /// Production: https to public addresses only.
    PublicHttps,
    /// Development: anything reachable, loopback included.
    Any,
}

impl Destinations {
    pub fn for_mode(mode: Mode) -> Self {
        match mode {
            Mode::Production => Destinations::PublicHttps,
            Mode::Development => Destinations::Any,
        }
    }

    /// Whether a merchant may register this callback URL (its name is resolved later, at
    /// each delivery).
    pub fn url_allowed(self, url: &Url) -> bool {
        let host_allowed = match url.host() {
            None => false,
            Some(Host::Ipv4(ip)) => self.address_allowed(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.address_allowed(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => self == Destinations::Any || !is_local_name(name),
        };
        let scheme_allowed = match self {
            Destinations::PublicHttps => url.scheme() == "https",
            Destinations::Any => matches!(url.scheme(), "https" | "http"),
        };
        host_allowed && scheme_allowed && url.username().is_empty() && url.password().is_none()
    }

    pub fn address_allowed(self, ip: IpAddr) -> bool {
        self == Destinations::Any || is_public(ip)
    }
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local")
}

/// Globally routable unicast: not loopback, private, shared (CGNAT), link-local, multicast,
/// documentation, benchmarking or reserved space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_public_v4(mapped),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)); // benchmarking
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let first = segments[0];
    let reserved = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // IPv4-compatible `::a.b.c.d` (deprecated by RFC 4291; `::` and `::1` are in it too):
        // no public host is reached this way, and a stack may route it to the embedded v4.
        || segments[..6].iter().all(|&s| s == 0)
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated, still private where used)
        || (first == 0x2001 && segments[1] == 0x0db8) // documentation
        || (first == 0x0064 && segments[1] == 0xff9b) // NAT64: may reach private v4
        || first == 0x2002; // 6to4: may embed any v4
    !reserved
}

/// The HTTP client's resolver: resolves with the system, keeps only allowed addresses, and
/// fails when none is left, so a refused name is never connected to.
#[derive(Debug)]
pub struct CheckedResolver(pub Destinations);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let destinations = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| destinations.address_allowed(address.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no address callbacks may reach").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn production_accepts_https_to_public_names_and_addresses_only() {
        let production = Destinations::PublicHttps;
        assert!(production.url_allowed(&url("https://shop.example.vn/callbacks")));
        assert!(production.url_allowed(&url("https://203.113.1.10/cb")));
        for refused in [
            "http://shop.example.vn/callbacks",
            "https://localhost/cb",
            "https://api.localhost/cb",
            "https://127.0.0.1/cb",
            "https://10.1.2.3/cb",
            "https://172.16.0.1/cb",
            "https://192.168.1.1/cb",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/cb",
            "https://0.0.0.0/cb",
            "https://[::1]/cb",
            "https://[fd00::1]/cb",
            "https://[fe80::1]/cb",
            "https://[::ffff:127.0.0.1]/cb",
            "https://user:pass@shop.example.vn/cb",
            "ftp://shop.example.vn/cb",
        ] {
            assert!(
                !production.url_allowed(&url(refused)),
                "{refused} was allowed"
            );
        }
    }

    #[test]
    fn ipv4_compatible_and_site_local_v6_addresses_are_not_public() {
        for refused in [
            "::127.0.0.1",
            "::10.0.0.1",
            "::192.168.1.1",
            "::169.254.169.254",
            "::8.8.8.8", // deprecated form even for a public v4: nobody is reached this way
            "::",
            "::1",
            "::2",
            "fec0::1",
            "feff:ffff::1",
            "fed0::10.0.0.1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(!is_public(ip), "{refused} counted as public");
            let callback = url(&format!("https://[{refused}]/cb"));
            assert!(
                !Destinations::PublicHttps.url_allowed(&callback),
                "{callback} was allowed"
            );
        }
        for public in [
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860:4860::8888",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(is_public(ip), "{public} counted as non-public");
        }
        // The IPv4-mapped form keeps following its v4 address.
        assert!(is_public("::ffff:8.8.8.8".parse().unwrap()));
        assert!(!is_public("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn development_accepts_loopback_over_http() {
        assert!(Destinations::Any.url_allowed(&url("http://127.0.0.1:9000/cb")));
        assert!(Destinations::Any.url_allowed(&url("http://localhost:9000/cb")));
        assert!(!Destinations::Any.url_allowed(&url("ftp://127.0.0.1/cb")));
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_only_to_loopback() {
        let name: Name = "localhost".parse().unwrap();
        let refused = CheckedResolver(Destinations::PublicHttps)
            .resolve(name)
            .await;
        assert!(refused.is_err());
        let name: Name = "localhost".parse().unwrap();
        let addresses: Vec<SocketAddr> = CheckedResolver(Destinations::Any)
            .resolve(name)
            .await
            .unwrap()
            .collect();
        assert!(addresses.iter().any(|a| a.ip().is_loopback()));
    }
}
