//! Diagrams of the intent: a [`Diagram`] (nodes grouped by namespace, labelled edges, each
//! edge kept, added or removed) and its two spellings, Mermaid ([`Diagram::to_mermaid`], which
//! GitHub renders in Markdown) and Graphviz ([`Diagram::to_dot`]).
//!
//! [`of_model`] draws an AppNetwork as `explain --output mermaid|dot` shows it: its tiers in its
//! namespace, every peer of its flows (pods of other namespaces in their namespace, CIDRs,
//! FQDNs, the world, the API server), one edge per flow labelled with its ports, and DNS once,
//! as one edge from the namespace. [`of_diff`] draws the connections of a
//! [`diff`](super::diff) between representatives: those the version allows as declared, those
//! that become allowed (green, `+`) and those that become denied (red, dashed, `-`).
//!
//! Every identifier in the output is generated (`n0`, `g0`, ...), never taken from the input;
//! every label is quoted, with the characters either language would read escaped (Mermaid:
//! entity codes such as `#quot;`; Graphviz: backslash escapes).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::diff::{AppDiff, Connection};
use crate::core::port::DNS_PORTS;
use crate::core::Port;
use crate::model::{AppModel, Flow, NamespaceMatch, Peer};

/// What an edge says about a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// Allowed in the version shown, and unchanged.
    Kept,
    /// Becomes allowed.
    Added,
    /// Becomes denied.
    Removed,
}

/// How a node is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A tier of the app (rounded box).
    Tier,
    /// Other pods (box).
    Pods,
    /// Something outside the pods: a CIDR, an FQDN, the world (hexagon / ellipse).
    Outside,
    /// A service shown once: DNS, the Kubernetes API server (cylinder).
    Service,
}

/// A node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// A key unique in the diagram (never written out).
    pub key: String,
    /// What is written in it.
    pub label: String,
    /// The group (namespace) it is drawn in, by key.
    pub group: Option<String>,
    /// Its shape.
    pub shape: Shape,
}

/// A group of nodes: a namespace, or namespaces chosen by a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// A key unique in the diagram.
    pub key: String,
    /// Its title.
    pub label: String,
}

/// One end of an edge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    /// A node, by key.
    Node(String),
    /// A whole group, by key (every pod in it).
    Group(String),
}

/// An edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Where it starts.
    pub from: End,
    /// Where it ends.
    pub to: End,
    /// What is written on it (ports).
    pub label: String,
    /// Kept, added or removed.
    pub mark: Mark,
}

/// A diagram: groups, nodes and edges, in the order they are written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagram {
    /// The groups.
    pub groups: Vec<Group>,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The edges.
    pub edges: Vec<Edge>,
}

const GREEN: &str = "#1a7f37";
const RED: &str = "#cf222e";

/// A label for Mermaid, to be written between double quotes: every character Mermaid or the
/// HTML it renders to would read is written as an entity code (`#quot;`, `#35;`, ...), so a
/// label can hold anything.
pub fn mermaid_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '|' => out.push_str("#124;"),
            '`' => out.push_str("#96;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A string for Graphviz, to be written between double quotes.
pub fn dot_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

impl Diagram {
    fn group(&mut self, key: &str, label: &str) -> String {
        if !self.groups.iter().any(|g| g.key == key) {
            self.groups.push(Group {
                key: key.to_string(),
                label: label.to_string(),
            });
        }
        key.to_string()
    }

    fn node(&mut self, key: &str, label: &str, group: Option<String>, shape: Shape) -> End {
        if !self.nodes.iter().any(|n| n.key == key) {
            self.nodes.push(Node {
                key: key.to_string(),
                label: label.to_string(),
                group,
                shape,
            });
        }
        End::Node(key.to_string())
    }

    fn ids(&self) -> (BTreeMap<&str, String>, BTreeMap<&str, String>) {
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.key.as_str(), format!("n{i}")))
            .collect();
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.key.as_str(), format!("g{i}")))
            .collect();
        (nodes, groups)
    }

    /// The diagram as a Mermaid flowchart (left to right).
    pub fn to_mermaid(&self) -> String {
        let (nodes, groups) = self.ids();
        let id = |e: &End| match e {
            End::Node(k) => nodes.get(k.as_str()).cloned(),
            End::Group(k) => groups.get(k.as_str()).cloned(),
        };
        let mut out = String::from("flowchart LR\n");
        let node_line = |n: &Node, id: &str| {
            let l = mermaid_label(&n.label);
            match n.shape {
                Shape::Tier => format!("{id}(\"{l}\")"),
                Shape::Pods => format!("{id}[\"{l}\"]"),
                Shape::Outside => format!("{id}{{{{\"{l}\"}}}}"),
                Shape::Service => format!("{id}[(\"{l}\")]"),
            }
        };
        for (g, gid) in self.groups.iter().zip(0..) {
            let _ = writeln!(out, "  subgraph g{gid}[\"{}\"]", mermaid_label(&g.label));
            for (i, n) in self.nodes.iter().enumerate() {
                if n.group.as_deref() == Some(g.key.as_str()) {
                    let _ = writeln!(out, "    {}", node_line(n, &format!("n{i}")));
                }
            }
            out.push_str("  end\n");
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let grouped = n
                .group
                .as_ref()
                .is_some_and(|g| self.groups.iter().any(|x| &x.key == g));
            if !grouped {
                let _ = writeln!(out, "  {}", node_line(n, &format!("n{i}")));
            }
        }
        let mut styles = Vec::new();
        let mut index = 0usize;
        for e in &self.edges {
            let (Some(a), Some(b)) = (id(&e.from), id(&e.to)) else {
                continue;
            };
            let (arrow, prefix) = match e.mark {
                Mark::Kept => ("-->", ""),
                Mark::Added => ("==>", "+ "),
                Mark::Removed => ("-.->", "- "),
            };
            let label = format!("{prefix}{}", e.label);
            if label.is_empty() {
                let _ = writeln!(out, "  {a} {arrow} {b}");
            } else {
                let _ = writeln!(out, "  {a} {arrow}|\"{}\"| {b}", mermaid_label(&label));
            }
            match e.mark {
                Mark::Kept => {}
                Mark::Added => styles.push(format!(
                    "  linkStyle {index} stroke:{GREEN},stroke-width:2px,color:{GREEN}"
                )),
                Mark::Removed => styles.push(format!(
                    "  linkStyle {index} stroke:{RED},stroke-width:2px,stroke-dasharray:5 5,color:{RED}"
                )),
            }
            index += 1;
        }
        for s in styles {
            out.push_str(&s);
            out.push('\n');
        }
        out
    }

    /// The diagram as a Graphviz `digraph` (left to right; groups are clusters).
    pub fn to_dot(&self) -> String {
        let (nodes, groups) = self.ids();
        let mut out = String::from(
            "digraph tierflow {\n  rankdir=LR;\n  compound=true;\n  \
             node [fontname=\"sans-serif\", fontsize=11];\n  \
             edge [fontname=\"sans-serif\", fontsize=10];\n",
        );
        let attrs = |n: &Node| {
            let shape = match n.shape {
                Shape::Tier => "box, style=rounded",
                Shape::Pods => "box",
                Shape::Outside => "hexagon",
                Shape::Service => "cylinder",
            };
            format!("[label=\"{}\", shape={shape}]", dot_label(&n.label))
        };
        for (g, gid) in self.groups.iter().zip(0..) {
            let _ = writeln!(
                out,
                "  subgraph cluster_{gid} {{\n    label=\"{}\";\n    style=rounded;",
                dot_label(&g.label)
            );
            let mut empty = true;
            for (i, n) in self.nodes.iter().enumerate() {
                if n.group.as_deref() == Some(g.key.as_str()) {
                    let _ = writeln!(out, "    n{i} {};", attrs(n));
                    empty = false;
                }
            }
            if empty {
                // A cluster needs a node to exist and to be an edge's end.
                let _ = writeln!(
                    out,
                    "    g{gid}_anchor [label=\"\", shape=point, style=invis];"
                );
            }
            out.push_str("  }\n");
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let grouped = n
                .group
                .as_ref()
                .is_some_and(|g| self.groups.iter().any(|x| &x.key == g));
            if !grouped {
                let _ = writeln!(out, "  n{i} {};", attrs(n));
            }
        }
        // A group as an edge's end: one of its nodes, with the edge clipped at the cluster.
        let end = |e: &End| -> Option<(String, Option<String>)> {
            match e {
                End::Node(k) => nodes.get(k.as_str()).map(|id| (id.clone(), None)),
                End::Group(k) => {
                    let gid = groups.get(k.as_str())?;
                    let member = self
                        .nodes
                        .iter()
                        .position(|n| n.group.as_deref() == Some(k.as_str()))
                        .map_or_else(|| format!("{gid}_anchor"), |i| format!("n{i}"));
                    Some((member, Some(gid.replace('g', "cluster_"))))
                }
            }
        };
        for e in &self.edges {
            let (Some((a, ta)), Some((b, hb))) = (end(&e.from), end(&e.to)) else {
                continue;
            };
            let mut attrs = Vec::new();
            let (prefix, style) = match e.mark {
                Mark::Kept => ("", String::new()),
                Mark::Added => (
                    "+ ",
                    format!("color=\"{GREEN}\", fontcolor=\"{GREEN}\", penwidth=2"),
                ),
                Mark::Removed => (
                    "- ",
                    format!("color=\"{RED}\", fontcolor=\"{RED}\", style=dashed, penwidth=2"),
                ),
            };
            let label = format!("{prefix}{}", e.label);
            if !label.is_empty() {
                attrs.push(format!("label=\"{}\"", dot_label(&label)));
            }
            if !style.is_empty() {
                attrs.push(style);
            }
            if let Some(t) = ta {
                attrs.push(format!("ltail={t}"));
            }
            if let Some(h) = hb {
                attrs.push(format!("lhead={h}"));
            }
            let _ = writeln!(out, "  {a} -> {b} [{}];", attrs.join(", "));
        }
        out.push_str("}\n");
        out
    }
}

fn namespace_group(d: &mut Diagram, ns: &str) -> String {
    d.group(&format!("ns:{ns}"), &format!("namespace {ns}"))
}

fn tier_key(model: &AppModel, name: &str) -> String {
    format!("tier:{}/{}:{name}", model.namespace, model.name)
}

/// The node (or group) a peer of `model` is drawn as.
fn peer(d: &mut Diagram, model: &AppModel, p: &Peer) -> End {
    match p {
        Peer::Tier(i) => {
            let name = model.tiers.get(*i).map_or("?", |t| t.name.as_str());
            let g = namespace_group(d, &model.namespace);
            d.node(&tier_key(model, name), name, Some(g), Shape::Tier)
        }
        Peer::Pods { namespaces, pods } => {
            let (group, what) = match namespaces {
                NamespaceMatch::Own | NamespaceMatch::Named(_) => {
                    let ns = match namespaces {
                        NamespaceMatch::Named(n) => n.as_str(),
                        _ => model.namespace.as_str(),
                    };
                    (namespace_group(d, ns), ns.to_string())
                }
                NamespaceMatch::Selector(s) => (
                    d.group(&format!("nssel:{s}"), &format!("namespaces {s}")),
                    format!("sel {s}"),
                ),
                NamespaceMatch::All => (d.group("all", "every namespace"), "all".to_string()),
            };
            // Every pod of the namespaces is a node too: an empty group draws badly.
            let (key, label) = match pods {
                Some(s) => (format!("pods:{what}:{s}"), format!("pods {s}")),
                None => (format!("pods:{what}:*"), "every pod".to_string()),
            };
            d.node(&key, &label, Some(group), Shape::Pods)
        }
        Peer::Cidr { cidr, except } => {
            let mut label = cidr.to_string();
            if !except.is_empty() {
                let e: Vec<String> = except.iter().map(ToString::to_string).collect();
                label.push_str(&format!(" except {}", e.join(", ")));
            }
            d.node(&format!("cidr:{label}"), &label, None, Shape::Outside)
        }
        Peer::World => d.node("world", "world (outside the cluster)", None, Shape::Outside),
        Peer::Fqdn(name) => d.node(&format!("fqdn:{name}"), name, None, Shape::Outside),
        Peer::KubeApiServer => d.node("kube-apiserver", "kube-apiserver", None, Shape::Service),
    }
}

/// The label of a flow's edge: its ports (for a flow without ports, the destination tier's,
/// or the API server's), and `HTTP` when it has HTTP rules.
fn flow_label(model: &AppModel, f: &Flow) -> String {
    let ports = if f.ports.is_empty() {
        match f.to {
            Peer::Tier(i) => model
                .tiers
                .get(i)
                .map(|t| t.ports.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    } else {
        f.ports.clone()
    };
    let mut label = if ports.is_empty() && f.to == Peer::KubeApiServer {
        "API server port".to_string()
    } else {
        Port::list(&ports)
    };
    if !f.http.is_empty() {
        label.push_str(" (HTTP rules)");
    }
    label
}

/// One AppNetwork's intent as a diagram (see the module documentation).
pub fn of_model(model: &AppModel) -> Diagram {
    of_models(std::slice::from_ref(model))
}

/// Several AppNetworks in one diagram: each namespace, DNS target and the API server drawn
/// once.
pub fn of_models(models: &[AppModel]) -> Diagram {
    let mut d = Diagram::default();
    for model in models {
        let g = namespace_group(&mut d, &model.namespace);
        for t in &model.tiers {
            d.node(
                &tier_key(model, &t.name),
                &t.name,
                Some(g.clone()),
                Shape::Tier,
            );
        }
        for f in &model.flows {
            let from = peer(&mut d, model, &f.from);
            let to = peer(&mut d, model, &f.to);
            d.edges.push(Edge {
                from,
                to,
                label: flow_label(model, f),
                mark: Mark::Kept,
            });
        }
        if let Some(dns) = &model.dns {
            let dg = namespace_group(&mut d, &dns.namespace);
            let to = d.node(
                &format!("dns:{}:{}", dns.namespace, dns.pods),
                &format!("DNS {}", dns.pods),
                Some(dg),
                Shape::Service,
            );
            let edge = Edge {
                from: End::Group(g),
                to,
                label: Port::list(&DNS_PORTS),
                mark: Mark::Kept,
            };
            if !d.edges.contains(&edge) {
                d.edges.push(edge);
            }
        }
    }
    d
}

/// The connections of one AppNetwork's diff on the backend it shows
/// ([`AppDiff::shown`]) as a diagram: those kept (allowed in both versions, declared by the
/// version shown), added and removed. Connections between the same two endpoints with the
/// same mark are one edge, its ports joined.
pub fn of_diff(app: &AppDiff) -> Diagram {
    let mut d = Diagram::default();
    let mut edges: BTreeMap<(Mark, String, String), Vec<String>> = BTreeMap::new();
    let mut marked: Vec<(Mark, &Connection)> = Vec::new();
    if let Some(b) = app.shown() {
        marked.extend(b.kept.iter().map(|c| (Mark::Kept, c)));
        marked.extend(b.allowed.iter().map(|c| (Mark::Added, c)));
        marked.extend(b.denied.iter().map(|c| (Mark::Removed, c)));
    }
    for (mark, c) in marked {
        edges
            .entry((mark, c.from.clone(), c.to.clone()))
            .or_default()
            .push(format!("{}/{}", c.port, c.protocol));
    }
    let used: std::collections::BTreeSet<&str> = edges
        .keys()
        .flat_map(|(_, a, b)| [a.as_str(), b.as_str()])
        .collect();
    for e in &app.endpoints {
        if !e.tier && !used.contains(e.name.as_str()) {
            continue;
        }
        let group = e.namespace.as_ref().map(|ns| namespace_group(&mut d, ns));
        let label = match &e.namespace {
            Some(ns) => e
                .name
                .strip_prefix(&format!("{ns}/"))
                .unwrap_or(&e.name)
                .to_string(),
            None => e.name.clone(),
        };
        let shape = match (e.tier, &e.namespace) {
            (true, _) => Shape::Tier,
            (false, Some(_)) => Shape::Pods,
            (false, None) => Shape::Outside,
        };
        d.node(&format!("rep:{}", e.name), &label, group, shape);
    }
    // Kept edges first (context), then removed, then added.
    let mut ordered: Vec<_> = edges.into_iter().collect();
    ordered.sort_by_key(|((mark, a, b), _)| (*mark, a.clone(), b.clone()));
    for ((mark, a, b), ports) in ordered {
        d.edges.push(Edge {
            from: End::Node(format!("rep:{a}")),
            to: End::Node(format!("rep:{b}")),
            label: ports.join(", "),
            mark,
        });
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_labels_escape_everything_mermaid_reads() {
        assert_eq!(
            mermaid_label("a \"b\" <c> & #d | `e`"),
            "a #quot;b#quot; #lt;c#gt; #amp; #35;d #124; #96;e#96;"
        );
        assert_eq!(mermaid_label("end\nline"), "end line");
    }

    #[test]
    fn dot_labels_escape_quotes_and_backslashes() {
        assert_eq!(dot_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn identifiers_are_generated_never_taken_from_the_input() {
        let mut d = Diagram::default();
        let g = d.group("ns:end", "namespace end");
        let a = d.node("tier:end", "end", Some(g.clone()), Shape::Tier);
        let b = d.node("x\"];evil", "x\"];evil", None, Shape::Outside);
        d.edges.push(Edge {
            from: a,
            to: b,
            label: "8080/TCP".into(),
            mark: Mark::Added,
        });
        d.edges.push(Edge {
            from: End::Group(g),
            to: End::Node("x\"];evil".into()),
            label: String::new(),
            mark: Mark::Removed,
        });
        let m = d.to_mermaid();
        assert_eq!(
            m,
            "flowchart LR\n  subgraph g0[\"namespace end\"]\n    n0(\"end\")\n  end\n  \
             n1{{\"x#quot;];evil\"}}\n  n0 ==>|\"+ 8080/TCP\"| n1\n  g0 -.->|\"- \"| n1\n  \
             linkStyle 0 stroke:#1a7f37,stroke-width:2px,color:#1a7f37\n  \
             linkStyle 1 stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 5,color:#cf222e\n"
        );
        let dot = d.to_dot();
        assert!(
            dot.contains("n1 [label=\"x\\\"];evil\", shape=hexagon];"),
            "{dot}"
        );
        assert!(
            dot.contains("n0 -> n1 [label=\"+ 8080/TCP\", color=\"#1a7f37\""),
            "{dot}"
        );
        assert!(
            dot.contains("style=dashed, penwidth=2, ltail=cluster_0];"),
            "{dot}"
        );
    }
}
