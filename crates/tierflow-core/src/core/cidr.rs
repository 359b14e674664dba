//! CIDR parsing with the checks people get wrong: host bits set, `except` outside its CIDR.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// A network in canonical form (no host bits set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr(IpNet);

/// Why a CIDR string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not of the form `address/prefix`.
    #[error("{0:?} is not a CIDR (expected address/prefix, for example 10.0.0.0/8)")]
    Syntax(String),
    /// Bits set below the prefix: almost always a typo for the network address.
    #[error("{given:?} has host bits set; did you mean {canonical}?")]
    HostBits {
        /// What was written.
        given: String,
        /// The network it most likely meant.
        canonical: String,
    },
}

impl Cidr {
    /// Parses a CIDR and insists on the canonical network address.
    pub fn parse(s: &str) -> Result<Self, CidrError> {
        let net = IpNet::from_str(s.trim()).map_err(|_| CidrError::Syntax(s.to_string()))?;
        if net.trunc() != net {
            return Err(CidrError::HostBits {
                given: s.to_string(),
                canonical: net.trunc().to_string(),
            });
        }
        Ok(Cidr(net))
    }

    /// A single address as a /32 (IPv4) or /128 (IPv6).
    pub fn host(addr: IpAddr) -> Self {
        Cidr(IpNet::from(addr))
    }

    /// Every address of one family: `0.0.0.0/0` (`v4`) or `::/0`.
    pub fn all(v4: bool) -> Self {
        if v4 {
            Cidr(IpNet::V4(ipnet::Ipv4Net::default()))
        } else {
            Cidr(IpNet::V6(ipnet::Ipv6Net::default()))
        }
    }

    /// Whether this is every address of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_all(&self) -> bool {
        self.prefix_len() == 0
    }

    /// Whether `other` lies entirely inside this network (same address family).
    pub fn contains(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0)
    }

    /// Whether the address lies inside this network.
    pub fn contains_addr(&self, addr: &IpAddr) -> bool {
        self.0.contains(addr)
    }

    /// The network's address (as written: `10.0.0.0` of `10.0.0.0/8`).
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }

    /// Prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// True for IPv4 networks.
    pub fn is_ipv4(&self) -> bool {
        matches!(self.0, IpNet::V4(_))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_cidrs_parse() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().prefix_len(), 0);
    }

    #[test]
    fn all_of_a_family() {
        assert_eq!(Cidr::all(true).to_string(), "0.0.0.0/0");
        assert_eq!(Cidr::all(false).to_string(), "::/0");
        assert!(Cidr::all(false).is_all() && !Cidr::parse("::/1").unwrap().is_all());
    }

    #[test]
    fn host_bits_are_rejected_with_the_likely_meaning() {
        let err = Cidr::parse("10.1.2.3/8").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"10.1.2.3/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(Cidr::parse("10.0.0.0"), Err(CidrError::Syntax(_))));
        assert!(matches!(
            Cidr::parse("300.0.0.0/8"),
            Err(CidrError::Syntax(_))
        ));
        assert!(matches!(
            Cidr::parse("10.0.0.0/33"),
            Err(CidrError::Syntax(_))
        ));
    }

    #[test]
    fn containment_respects_families_and_prefixes() {
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        let meta = Cidr::parse("169.254.169.254/32").unwrap();
        let v6 = Cidr::parse("::/0").unwrap();
        assert!(all.contains(&meta));
        assert!(!meta.contains(&all));
        assert!(!v6.contains(&meta));
    }
}
