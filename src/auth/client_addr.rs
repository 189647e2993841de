//! The client's address, for per-address limits. It is the TCP peer, unless the peer is one of
//! the configured trusted proxies: then it is the right-most `X-Forwarded-For` entry that is not
//! itself a trusted proxy (entries further left can be forged by the client).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::app::AppState;
use crate::http::ApiError;

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
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        Ok(ClientAddr(client_of(
            peer,
            &forwarded,
            &state.auth.trusted_proxies,
        )))
    }
}

fn client_of(peer: IpAddr, forwarded: &[IpAddr], trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    forwarded
        .iter()
        .rev()
        .find(|hop| !trusted.contains(hop))
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::client_of;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            client_of(ip("203.0.113.9"), &[ip("1.2.3.4")], &[ip("10.0.0.1")]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let forwarded = [ip("6.6.6.6"), ip("198.51.100.7"), ip("10.0.0.2")];
        assert_eq!(
            client_of(ip("10.0.0.1"), &forwarded, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_peer_without_forwarding_is_itself() {
        assert_eq!(
            client_of(ip("10.0.0.1"), &[], &[ip("10.0.0.1")]),
            ip("10.0.0.1")
        );
    }
}
