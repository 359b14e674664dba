//! Ports and protocols.

use std::fmt;

/// Transport protocols NetworkPolicy understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Protocol {
    /// TCP (the Kubernetes default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The spelling Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// Parses `TCP`, `UDP` or `SCTP` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container port name: an IANA service name (at most 15 lower-case letters, digits and
/// '-', at least one letter, no leading, trailing or double '-'), as Kubernetes requires of
/// `containerPort.name`. Stored inline so that [`Port`] stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortName {
    len: u8,
    bytes: [u8; PortName::MAX],
}

impl PortName {
    /// The longest name Kubernetes allows (IANA_SVC_NAME).
    pub const MAX: usize = 15;

    /// Parses a name, or says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > Self::MAX {
            return Err(format!(
                "{s:?} is not a port name (1-15 characters; IANA service name)"
            ));
        }
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok_chars
            || s.starts_with('-')
            || s.ends_with('-')
            || s.contains("--")
            || !s.bytes().any(|b| b.is_ascii_lowercase())
        {
            return Err(format!(
                "{s:?} is not a port name (lower-case letters, digits and single '-' inside, at least one letter; IANA service name)"
            ));
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(PortName {
            len: s.len() as u8,
            bytes,
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which destination ports a [`Port`] means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortId {
    /// One port number (1-65535; zero is rejected by validation).
    Number(u16),
    /// Every port from the first to the last, both included (first < last).
    Range(u16, u16),
    /// The container port of this name on the destination pod (the number may differ from
    /// pod to pod).
    Name(PortName),
}

/// A destination port (a number, a range or a container port name) and its protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// The port(s).
    pub id: PortId,
    /// The protocol.
    pub protocol: Protocol,
}

impl Port {
    /// One numbered port.
    pub const fn new(number: u16, protocol: Protocol) -> Self {
        Port {
            id: PortId::Number(number),
            protocol,
        }
    }

    /// A TCP port.
    pub const fn tcp(number: u16) -> Self {
        Port::new(number, Protocol::Tcp)
    }

    /// A UDP port.
    pub const fn udp(number: u16) -> Self {
        Port::new(number, Protocol::Udp)
    }

    /// The ports `first..=last` (one port when they are equal).
    pub fn range(first: u16, last: u16, protocol: Protocol) -> Self {
        let id = if first == last {
            PortId::Number(first)
        } else {
            PortId::Range(first.min(last), first.max(last))
        };
        Port { id, protocol }
    }

    /// A named container port.
    pub const fn named(name: PortName, protocol: Protocol) -> Self {
        Port {
            id: PortId::Name(name),
            protocol,
        }
    }

    /// The number of a single numbered port.
    pub fn number(&self) -> Option<u16> {
        match self.id {
            PortId::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The first and last port of a numbered port or range.
    pub fn bounds(&self) -> Option<(u16, u16)> {
        match self.id {
            PortId::Number(n) => Some((n, n)),
            PortId::Range(a, b) => Some((a, b)),
            PortId::Name(_) => None,
        }
    }

    /// The last port of a range (`None` for a single port or a name): NetworkPolicy's and
    /// Cilium's `endPort`.
    pub fn end(&self) -> Option<u16> {
        match self.id {
            PortId::Range(_, b) => Some(b),
            _ => None,
        }
    }

    /// The container port name, for a named port.
    pub fn name(&self) -> Option<PortName> {
        match self.id {
            PortId::Name(n) => Some(n),
            _ => None,
        }
    }

    /// Whether this is a range of more than one port.
    pub fn is_range(&self) -> bool {
        matches!(self.id, PortId::Range(..))
    }

    /// Whether a connection to `number`/`protocol` matches a numbered port or range (a named
    /// port needs the destination's container ports: [`Port::matches_on`]).
    pub fn contains(&self, number: u16, protocol: Protocol) -> bool {
        protocol == self.protocol
            && self
                .bounds()
                .is_some_and(|(a, b)| (a..=b).contains(&number))
    }

    /// Whether a connection to `number`/`protocol` on a destination whose container ports are
    /// `(name, number, protocol)` matches.
    pub fn matches_on<'a>(
        &self,
        number: u16,
        protocol: Protocol,
        container_ports: impl IntoIterator<Item = (Option<&'a str>, u16, Protocol)>,
    ) -> bool {
        match self.id {
            PortId::Name(name) => {
                protocol == self.protocol
                    && container_ports.into_iter().any(|(n, p, proto)| {
                        n == Some(name.as_str()) && p == number && proto == protocol
                    })
            }
            _ => self.contains(number, protocol),
        }
    }

    /// The port part as written in the CRD and in messages: `8080`, `30000-32767`, `http`.
    pub fn value(&self) -> String {
        match self.id {
            PortId::Number(n) => n.to_string(),
            PortId::Range(a, b) => format!("{a}-{b}"),
            PortId::Name(n) => n.to_string(),
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.value(), self.protocol)
    }
}

impl Port {
    /// A list of ports as people read it: `80/TCP, 443/TCP`.
    pub fn list(ports: &[Port]) -> String {
        ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The ports DNS needs: UDP and TCP 53 (TCP for truncated answers and large records).
pub const DNS_PORTS: [Port; 2] = [Port::udp(53), Port::tcp(53)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_follow_iana_service_names() {
        assert_eq!(PortName::parse("http").unwrap().as_str(), "http");
        assert_eq!(
            PortName::parse("metrics-9090").unwrap().to_string(),
            "metrics-9090"
        );
        for bad in [
            "",
            "HTTP",
            "-http",
            "http-",
            "a--b",
            "1234",
            "sixteen-chars-xx",
            "h_t",
        ] {
            assert!(PortName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_and_names_match_what_they_say() {
        let r = Port::range(30000, 32767, Protocol::Udp);
        assert!(r.contains(30000, Protocol::Udp) && r.contains(32767, Protocol::Udp));
        assert!(!r.contains(29999, Protocol::Udp) && !r.contains(32768, Protocol::Udp));
        assert!(!r.contains(30000, Protocol::Tcp));
        assert_eq!(r.to_string(), "30000-32767/UDP");
        assert_eq!(Port::range(80, 80, Protocol::Tcp), Port::tcp(80));
        let http = Port::named(PortName::parse("http").unwrap(), Protocol::Tcp);
        assert!(!http.contains(80, Protocol::Tcp));
        assert!(http.matches_on(8080, Protocol::Tcp, [(Some("http"), 8080, Protocol::Tcp)]));
        assert!(!http.matches_on(8081, Protocol::Tcp, [(Some("http"), 8080, Protocol::Tcp)]));
        assert!(!http.matches_on(8080, Protocol::Tcp, [(Some("web"), 8080, Protocol::Tcp)]));
        assert_eq!(http.to_string(), "http/TCP");
    }
}
