//! `tierflow simulate`: reachability for every ordered pair of distinct pods of the input, on
//! each given port (default: every port named in the policies).

use serde::Serialize;

use super::aligned;
use crate::core::Port;
use crate::engine::{Endpoint, Scenario};
use crate::verify::intent::probe_number;

/// One connection and its verdict; serialises as
/// `{"from", "to", "port", "protocol", "allowed", "decidedBy"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// `namespace/pod` of the source.
    pub from: String,
    /// `namespace/pod` of the destination.
    pub to: String,
    /// Destination port.
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// Whether the policies allow it.
    pub allowed: bool,
    /// The policies that decided (`namespace/name`, or `name` for cluster-scoped ones).
    pub decided_by: Vec<String>,
}

/// The output of `simulate`: `{"results": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Results {
    /// Every connection, by source, destination, then port.
    pub results: Vec<Connection>,
}

/// The ports to simulate: the given ones, else every port the policies name.
pub fn ports_for(scenario: &Scenario, given: &[Port]) -> Vec<Port> {
    if !given.is_empty() {
        let mut p = given.to_vec();
        p.sort();
        p.dedup();
        return p;
    }
    scenario
        .ports_named_in_policies()
        .into_iter()
        .map(|(number, protocol)| Port::new(number, protocol))
        .collect()
}

/// Decides every ordered pair of distinct pods on every port.
pub fn simulate(scenario: &Scenario, ports: &[Port]) -> Results {
    let pods = scenario.pods();
    let mut results = Vec::with_capacity(pods.len() * pods.len() * ports.len());
    for (i, a) in pods.iter().enumerate() {
        for (j, b) in pods.iter().enumerate() {
            if i == j {
                continue;
            }
            for p in ports {
                let v = scenario.check(
                    Endpoint::Pod(i),
                    Endpoint::Pod(j),
                    probe_number(*p),
                    p.protocol,
                );
                results.push(Connection {
                    from: format!("{}/{}", a.namespace, a.name),
                    to: format!("{}/{}", b.namespace, b.name),
                    port: probe_number(*p),
                    protocol: p.protocol.as_str().to_string(),
                    allowed: v.allowed,
                    decided_by: v.decided_by.to_strings(),
                });
            }
        }
    }
    Results { results }
}

/// The results as an aligned table for people.
pub fn to_table(r: &Results) -> String {
    let mut rows = vec![vec![
        "FROM".to_string(),
        "TO".to_string(),
        "PORT".to_string(),
        "ALLOWED".to_string(),
        "DECIDED BY".to_string(),
    ]];
    for c in &r.results {
        rows.push(vec![
            c.from.clone(),
            c.to.clone(),
            format!("{}/{}", c.port, c.protocol),
            if c.allowed { "yes" } else { "no" }.to_string(),
            if c.decided_by.is_empty() {
                "(no policy)".to_string()
            } else {
                c.decided_by.join(", ")
            },
        ]);
    }
    aligned(&rows)
}
