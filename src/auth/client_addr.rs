//! The client's address, for per-address limits. It is the TCP peer, unless the peer is one of
//! the configured trusted proxies: then it is the right-most `X-Forwarded-For` entry that is not
//! itself a trusted proxy (entries further left can be forged by the client). The walk from the
//! right stops at the first entry that is not an address: everything left of it was written by
//! whoever sent that entry, so the client is then the last trusted hop reached.
//!
//! Limits count addresses by [`rate_key`]: an IPv6 client is its /64, since one subscriber or
//! host is routinely given a whole /64 and could otherwise take a fresh address per request.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::login_limits::rate_key;
use crate::http::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::internal("served without connection info"))?;
        let trusted = &state.auth.trusted_proxies;
        if !is_trusted(peer, trusted) {
            return Ok(ClientAddr(peer.to_canonical()));
        }
        let forwarded = forwarded_hops(&parts.headers);
        Ok(ClientAddr(client_of(peer, &forwarded, trusted)))
    }
}

/// Every `X-Forwarded-For` entry, left to right across all the header's lines; `None` for an
/// entry that is not an address (or a line that is not text).
fn forwarded_hops(headers: &axum::http::HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for line in headers.get_all("x-forwarded-for") {
        match line.to_str() {
            Ok(text) => hops.extend(text.split(',').map(parse_hop)),
            Err(_) => hops.push(None),
        }
    }
    hops
}

/// An address as proxies write it: bare (`198.51.100.7`, `2001:db8::1`), or with a port
/// (`198.51.100.7:4711`, `[2001:db8::1]:4711`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

fn is_trusted(addr: IpAddr, trusted: &[IpAddr]) -> bool {
    let addr = addr.to_canonical();
    trusted.iter().any(|proxy| proxy.to_canonical() == addr)
}

/// Walks `forwarded` from the right while the hops are trusted proxies. The first untrusted
/// address is the client; at an entry that is not an address the walk stops, and the last
/// trusted hop reached (at worst the peer) stands in for the client, never an entry further
/// left that the client could have written.
fn client_of(peer: IpAddr, forwarded: &[Option<IpAddr>], trusted: &[IpAddr]) -> IpAddr {
    let mut client = peer.to_canonical();
    if !is_trusted(client, trusted) {
        return client;
    }
    for hop in forwarded.iter().rev() {
        let Some(hop) = *hop else {
            return client;
        };
        client = hop;
        if !is_trusted(hop, trusted) {
            return client;
        }
    }
    client
}

impl ClientAddr {
    /// See [`rate_key`].
    pub fn rate_key(&self) -> String {
        rate_key(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{client_of, forwarded_hops, rate_key};
    use axum::http::{HeaderMap, HeaderValue};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn hops(lines: &[&[u8]]) -> Vec<Option<IpAddr>> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_bytes(line).unwrap());
        }
        forwarded_hops(&headers)
    }

    /// The client as seen behind `peer` with these X-Forwarded-For lines.
    fn client(peer: &str, lines: &[&str], trusted: &[&str]) -> IpAddr {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| ip(t)).collect();
        client_of(ip(peer), &hops(&lines), &trusted)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            client("203.0.113.9", &["1.2.3.4"], &["10.0.0.1"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        assert_eq!(
            client(
                "10.0.0.1",
                &["6.6.6.6, 198.51.100.7, 10.0.0.2"],
                &["10.0.0.1", "10.0.0.2"]
            ),
            ip("198.51.100.7")
        );
        // Several header lines read as one list, in order.
        assert_eq!(
            client(
                "10.0.0.1",
                &["6.6.6.6", "198.51.100.7", "10.0.0.2"],
                &["10.0.0.1", "10.0.0.2"]
            ),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_peer_without_forwarding_is_itself() {
        assert_eq!(client("10.0.0.1", &[], &["10.0.0.1"]), ip("10.0.0.1"));
    }

    #[test]
    fn an_unparseable_entry_stops_the_walk_so_a_spoofed_entry_left_of_it_is_not_believed() {
        // The proxy vouches only for what it saw connect: "garbage". The 6.6.6.6 left of it
        // was written by that unknown sender and proves nothing.
        for garbage in ["garbage", "unknown", "", "1.2.3", "6.6.6.6 7.7.7.7", "[::1"] {
            let line = format!("6.6.6.6, {garbage}");
            assert_eq!(
                client("10.0.0.1", &[&line], &["10.0.0.1"]),
                ip("10.0.0.1"),
                "{line:?}"
            );
            let line = format!("6.6.6.6, {garbage}, 10.0.0.2");
            assert_eq!(
                client("10.0.0.1", &[&line], &["10.0.0.1", "10.0.0.2"]),
                ip("10.0.0.2"),
                "{line:?}: the last trusted hop reached"
            );
        }
        // A header line that is not even text stops it too.
        let lines: [&[u8]; 2] = [b"6.6.6.6", b"\xff\xfe"];
        assert_eq!(
            client_of(ip("10.0.0.1"), &hops(&lines), &[ip("10.0.0.1")]),
            ip("10.0.0.1")
        );
        // An unparseable entry further left than the client does not matter.
        assert_eq!(
            client("10.0.0.1", &["garbage, 198.51.100.7"], &["10.0.0.1"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn entries_with_ports_and_mapped_addresses_are_read() {
        assert_eq!(
            client("10.0.0.1", &["198.51.100.7:4711"], &["10.0.0.1"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            client("10.0.0.1", &["[2001:db8::7]:4711"], &["10.0.0.1"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            client("::ffff:10.0.0.1", &["::ffff:198.51.100.7"], &["10.0.0.1"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_ipv4_clients_by_their_address() {
        assert_eq!(
            rate_key(ip("2001:db8:1:2:aaaa::1")),
            rate_key(ip("2001:db8:1:2:ffff:ffff:ffff:fffe"))
        );
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_ne!(
            rate_key(ip("2001:db8:1:2::1")),
            rate_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(rate_key(ip("198.51.100.7")), "198.51.100.7");
        assert_ne!(rate_key(ip("198.51.100.7")), rate_key(ip("198.51.100.8")));
        assert_eq!(rate_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(rate_key(ip("::1")), "::/64");
    }
}
