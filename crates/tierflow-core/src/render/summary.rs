//! A plain-text table of what an AppNetwork allows, for people (`tierflow render --summary`).

use std::fmt::Write;

use crate::model::{AppModel, NamespaceMatch, Peer};

fn peer(model: &AppModel, p: &Peer) -> String {
    match p {
        Peer::Tier(i) => format!(
            "tier {} ({})",
            model.tiers[*i].name, model.tiers[*i].selector
        ),
        Peer::Pods { namespaces, pods } => {
            let ns = match namespaces {
                NamespaceMatch::Own => format!("namespace {}", model.namespace),
                NamespaceMatch::Named(n) => format!("namespace {n}"),
                NamespaceMatch::Selector(s) => format!("namespaces {s}"),
                NamespaceMatch::All => "every namespace".to_string(),
            };
            match pods {
                Some(s) => format!("{ns}, pods {s}"),
                None => format!("{ns}, every pod"),
            }
        }
        Peer::Fqdn(name) => format!("DNS name {name}"),
        Peer::KubeApiServer => "the Kubernetes API server".to_string(),
        Peer::World => "outside the cluster (world)".to_string(),
        Peer::Cidr { cidr, except } if except.is_empty() => format!("{cidr}"),
        Peer::Cidr { cidr, except } => {
            let ex: Vec<String> = except.iter().map(ToString::to_string).collect();
            format!("{cidr} except {}", ex.join(", "))
        }
    }
}

/// The declared flows, DNS and the baseline, as an aligned table.
pub fn table(model: &AppModel) -> String {
    let mut rows: Vec<[String; 3]> = vec![["FROM".into(), "TO".into(), "PORTS".into()]];
    for f in &model.flows {
        let mut ports: Vec<String> = f.ports.iter().map(ToString::to_string).collect();
        if ports.is_empty() {
            ports.push("its own ports".into());
        }
        let mut to = peer(model, &f.to);
        for h in &f.http {
            to.push_str(&format!(
                " [HTTP {} {}]",
                h.method.as_deref().unwrap_or("*"),
                h.path.as_deref().unwrap_or("*")
            ));
        }
        rows.push([peer(model, &f.from), to, ports.join(", ")]);
    }
    if let Some(dns) = &model.dns {
        let mut to = format!("DNS: namespace {}, pods {}", dns.namespace, dns.pods);
        if let Some(a) = dns.node_local {
            to.push_str(&format!(" and {a}"));
        }
        rows.push(["every tier".into(), to, "53/UDP, 53/TCP".into()]);
    }
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in &rows {
        let _ = writeln!(out, "{:<w0$}  {:<w1$}  {}", r[0], r[1], r[2]);
    }
    let b = &model.baseline;
    let deny = match (b.deny_ingress, b.deny_egress) {
        (true, true) => "ingress and egress denied (DNS allowed)",
        (true, false) => "ingress denied, egress open",
        (false, true) => "egress denied (DNS allowed), ingress open",
        (false, false) => "no baseline",
    };
    let _ = writeln!(
        out,
        "\nEverything else to or from a tier is denied. Other pods of namespace {}: {deny}.",
        model.namespace
    );
    out
}
