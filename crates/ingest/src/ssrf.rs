//! Crawl safety: bot owners type the URLs we fetch, and the worker runs inside the cloud
//! network next to the instance metadata service (169.254.169.254). Every address a request
//! would connect to is checked here, after DNS resolution and again on every redirect.
//!
//! Three places use these rules: [`SsrfResolver`] filters what DNS returns (so the connection
//! can only go to an allowed address, which also defeats DNS rebinding), [`check_url`] checks
//! URLs whose host is a literal address (the resolver never sees those), and the redirect
//! policy in `fetch.rs` calls [`check_url`] for every hop.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::error::BlockedAddress;
use crate::options::AllowList;

/// The address rules plus their exceptions, shared by the resolver and the redirect policy.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: AllowList,
    overrides: HashMap<String, Vec<IpAddr>>,
}

impl AddressPolicy {
    /// Rules with the given exceptions and fixed host answers.
    pub fn new(allow: AllowList, overrides: HashMap<String, Vec<IpAddr>>) -> Self {
        let overrides = overrides
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Self { allow, overrides }
    }

    /// Decides whether a connection to `ip`, reached through the name `host`, may be made.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), BlockedReason> {
        match blocked_reason(ip) {
            None => Ok(()),
            Some(_) if self.allow.allows_addr(ip) || self.allow.allows_host(host) => Ok(()),
            Some(reason) => Err(reason),
        }
    }

    fn blocked(&self, host: &str, ip: IpAddr) -> Option<BlockedAddress> {
        self.check(host, ip).err().map(|reason| BlockedAddress {
            host: host.to_owned(),
            addr: ip,
            reason: reason.as_str(),
        })
    }

    /// Resolves `host` (overrides first, then the system resolver) and keeps only the
    /// addresses that may be contacted; fails when none may.
    pub(crate) async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let host_lc = host.to_ascii_lowercase();
        let candidates: Vec<IpAddr> = match self.overrides.get(&host_lc) {
            Some(addrs) => addrs.clone(),
            None => tokio::net::lookup_host((host_lc.as_str(), 0))
                .await
                .map_err(|e| ResolveError::Lookup(format!("cannot resolve {host}: {e}")))?
                .map(|sa| sa.ip())
                .collect(),
        };
        let mut first_blocked = None;
        let mut allowed = Vec::with_capacity(candidates.len());
        for ip in candidates {
            match self.blocked(&host_lc, ip) {
                None => allowed.push(ip),
                Some(b) => {
                    first_blocked.get_or_insert(b);
                }
            }
        }
        match (allowed.is_empty(), first_blocked) {
            (false, _) => Ok(allowed),
            (true, Some(b)) => Err(ResolveError::Blocked(b)),
            (true, None) => Err(ResolveError::Lookup(format!("{host} has no address"))),
        }
    }
}

/// Why resolution gave no usable address.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error(transparent)]
    Blocked(BlockedAddress),
    #[error("{0}")]
    Lookup(String),
}

/// Which rule refuses an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedReason {
    /// 127.0.0.0/8 or ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT) and other non-public IPv4.
    Private,
    /// 169.254.0.0/16 (incl. the metadata service) or fe80::/10.
    LinkLocal,
    /// fc00::/7 (incl. the IPv6 metadata address fd00:ec2::254).
    UniqueLocal,
    /// 0.0.0.0/8 or ::.
    Unspecified,
    /// Multicast, broadcast or reserved ranges.
    NotUnicast,
}

impl BlockedReason {
    /// The rule in words, as shown to the bot owner.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback address",
            Self::Private => "private network address",
            Self::LinkLocal => "link-local address (includes the cloud metadata service)",
            Self::UniqueLocal => "unique-local IPv6 address",
            Self::Unspecified => "unspecified address",
            Self::NotUnicast => "multicast, broadcast or reserved address",
        }
    }
}

/// Unwraps IPv4 addresses carried inside IPv6 ones (mapped, compatible, NAT64, 6to4), so a
/// rule for 169.254.169.254 also catches `::ffff:169.254.169.254`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) but not :: or ::1.
    if s[..6] == [0; 6] && !(s[6] == 0 && (s[7] == 0 || s[7] == 1)) {
        return Some(tail);
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// The rule that refuses `ip`, or `None` for a public unicast address.
pub fn blocked_reason(ip: IpAddr) -> Option<BlockedReason> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<BlockedReason> {
    let [a, b, c, _] = ip.octets();
    Some(if a == 0 {
        BlockedReason::Unspecified
    } else if a == 127 {
        BlockedReason::Loopback
    } else if a == 169 && b == 254 {
        BlockedReason::LinkLocal
    } else if a == 10
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..=127).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..=19).contains(&b))
    {
        BlockedReason::Private
    } else if a >= 224 {
        BlockedReason::NotUnicast
    } else {
        return None;
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<BlockedReason> {
    let s0 = ip.segments()[0];
    Some(if ip.is_unspecified() {
        BlockedReason::Unspecified
    } else if ip.is_loopback() {
        BlockedReason::Loopback
    } else if s0 & 0xffc0 == 0xfe80 {
        BlockedReason::LinkLocal
    } else if s0 & 0xffc0 == 0xfec0 {
        // Deprecated site-local.
        BlockedReason::Private
    } else if s0 & 0xfe00 == 0xfc00 {
        BlockedReason::UniqueLocal
    } else if s0 & 0xff00 == 0xff00 {
        BlockedReason::NotUnicast
    } else {
        return None;
    })
}

/// Checks what can be checked before any DNS lookup: the scheme, and the host when it is a
/// literal address (reqwest connects to those without asking the resolver).
pub(crate) fn check_url(policy: &AddressPolicy, url: &Url) -> Result<(), UrlRefused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme(url.scheme().to_owned()));
    }
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(UrlRefused::NoHost),
    };
    match policy.blocked(&ip.to_string(), ip) {
        None => Ok(()),
        Some(b) => Err(UrlRefused::Blocked(b)),
    }
}

/// Why a URL is refused before connecting.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum UrlRefused {
    #[error("only http and https URLs can be fetched, not {0}:")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error(transparent)]
    Blocked(BlockedAddress),
}

/// A DNS resolver for reqwest that only ever returns addresses the policy allows.
#[derive(Debug, Clone)]
pub struct SsrfResolver {
    policy: Arc<AddressPolicy>,
}

impl SsrfResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for SsrfResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match policy.resolve(&host).await {
                Ok(ips) => {
                    let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                    Ok(addrs)
                }
                Err(ResolveError::Blocked(b)) => Err(Box::new(b) as _),
                Err(e @ ResolveError::Lookup(_)) => Err(Box::new(e) as _),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused_by_default() {
        let cases = [
            ("127.0.0.1", BlockedReason::Loopback),
            ("127.9.9.9", BlockedReason::Loopback),
            ("::1", BlockedReason::Loopback),
            ("10.0.0.1", BlockedReason::Private),
            ("172.16.5.4", BlockedReason::Private),
            ("172.31.255.255", BlockedReason::Private),
            ("192.168.1.1", BlockedReason::Private),
            ("100.64.0.1", BlockedReason::Private),
            ("169.254.169.254", BlockedReason::LinkLocal),
            ("fe80::1", BlockedReason::LinkLocal),
            ("fd00:ec2::254", BlockedReason::UniqueLocal),
            ("fc00::1", BlockedReason::UniqueLocal),
            ("0.0.0.0", BlockedReason::Unspecified),
            ("::", BlockedReason::Unspecified),
            ("::ffff:169.254.169.254", BlockedReason::LinkLocal),
            ("::ffff:127.0.0.1", BlockedReason::Loopback),
            ("64:ff9b::a9fe:a9fe", BlockedReason::LinkLocal),
            ("2002:a9fe:a9fe::1", BlockedReason::LinkLocal),
            ("224.0.0.1", BlockedReason::NotUnicast),
            ("255.255.255.255", BlockedReason::NotUnicast),
        ];
        for (addr, want) in cases {
            assert_eq!(blocked_reason(ip(addr)), Some(want), "{addr}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111"] {
            assert_eq!(blocked_reason(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn the_allow_list_opens_listed_networks_and_hosts_only() {
        let policy = AddressPolicy::new(AllowList::loopback(), HashMap::new());
        assert!(policy.check("localhost", ip("127.0.0.1")).is_ok());
        assert!(policy.check("x", ip("::1")).is_ok());
        assert_eq!(
            policy.check("x", ip("169.254.169.254")),
            Err(BlockedReason::LinkLocal)
        );
        assert_eq!(
            policy.check("x", ip("10.0.0.1")),
            Err(BlockedReason::Private)
        );

        let by_host = AddressPolicy::new(
            AllowList {
                nets: vec![],
                hosts: vec!["Intranet.Example".into()],
            },
            HashMap::new(),
        );
        assert!(by_host.check("intranet.example", ip("10.0.0.1")).is_ok());
        assert!(by_host.check("other.example", ip("10.0.0.1")).is_err());
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_private_address_is_refused() {
        let overrides = HashMap::from([
            ("intranet.example".to_owned(), vec![ip("10.1.2.3")]),
            (
                "mixed.example".to_owned(),
                vec![ip("192.168.0.9"), ip("93.184.216.34")],
            ),
        ]);
        let policy = Arc::new(AddressPolicy::new(AllowList::default(), overrides));
        let resolver = SsrfResolver::new(Arc::clone(&policy));
        let name: Name = "Intranet.Example".parse().unwrap();
        let err = match resolver.resolve(name).await {
            Ok(_) => panic!("a private address was returned"),
            Err(e) => e,
        };
        let blocked = err
            .downcast_ref::<BlockedAddress>()
            .expect("a BlockedAddress");
        assert_eq!(blocked.addr, ip("10.1.2.3"));
        assert_eq!(blocked.reason, BlockedReason::Private.as_str());

        // Only the public address of a mixed answer survives.
        let addrs: Vec<_> = resolver
            .resolve("mixed.example".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, vec![SocketAddr::new(ip("93.184.216.34"), 0)]);
    }

    #[test]
    fn literal_addresses_and_schemes_are_checked_before_connecting() {
        let policy = AddressPolicy::new(AllowList::loopback(), HashMap::new());
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(check_url(&policy, &url("http://127.0.0.1:8080/")).is_ok());
        assert!(matches!(
            check_url(&policy, &url("http://169.254.169.254/latest/meta-data/")),
            Err(UrlRefused::Blocked(_))
        ));
        assert!(matches!(
            check_url(&policy, &url("http://[::ffff:a9fe:a9fe]/")),
            Err(UrlRefused::Blocked(_))
        ));
        assert!(matches!(
            check_url(&policy, &url("file:///etc/passwd")),
            Err(UrlRefused::Scheme(_))
        ));
        assert!(check_url(&policy, &url("https://example.com/")).is_ok());
    }
}
