//! Observed flows: what `hubble observe`, Calico flow logs or a plain CSV say happened, read
//! into one form ([`Flow`]) that `suggest` and the audit replay.
//!
//! # Hubble (`hubble observe -o json` / `-o jsonpb`, one JSON object a line)
//! The field layout is Cilium's `api/v1/flow/flow.proto` (cilium/cilium, commit
//! `04bbfcb5ddb0c31cd0f130cb4e1f0f5e6e6ec768`) in proto3's JSON mapping with the proto field
//! names, as the Hubble printer writes it (`hubble/pkg/printer/printer_test.go` of cilium/cilium
//! at commit `4e76d1f0faeee09a1d1e12773314d56f7958a3e2`, cases `json` and `jsonpb`): either the
//! flow itself (`-o json`) or a `GetFlowsResponse` holding it under `"flow"` (`-o jsonpb`).
//! Read: `verdict` (`FORWARDED`, `REDIRECTED`: observed; `AUDIT`: observed, and a policy in
//! audit mode would have dropped it; `DROPPED`: denied; others are no connection outcome and
//! are passed over), `IP.source` / `IP.destination`, `l4.TCP|UDP|SCTP.destination_port`
//! (ICMP has no port and is passed over), `source` / `destination` (`namespace`, `labels` in
//! `source:key=value` form, `pod_name`), `traffic_direction` and `is_reply` (replies are not
//! flows; the deprecated `reply` too). Labels with the `reserved:` source name Cilium's
//! identities: `reserved:kube-apiserver` is the API server, `reserved:world` an address outside
//! the cluster; `reserved:host`, `remote-node`, `health` and the like are nodes, which
//! AppNetworks do not describe, and are passed over. Cilium's own labels
//! (`io.kubernetes.pod.namespace`, `io.cilium.k8s.*`) are left out of the pod labels.
//! Lines that hold no flow (`node_status`, `lost_events`) are passed over.
//!
//! In the JSON-lines forms (Hubble, Calico) and in CSV a line starting with `#` is a comment.
//!
//! # Calico flow logs (JSON, one object a line, or an array; Elasticsearch hits' `_source`)
//! Fields as Calico Enterprise documents them ("Flow log data types", tigera/docs
//! `calico-enterprise/observability/elastic/flow/datatypes.mdx`, commit
//! `95c3a9a059fe796634d931a82af7917a074fcaf2`): `source_namespace` / `dest_namespace` (`-`:
//! not namespaced), `source_labels` / `dest_labels` (an array of `key=value`, also accepted
//! under `{"labels": [...]}`, `-` when aggregated), `source_ip` / `dest_ip` (null when
//! aggregated), `source_type` / `dest_type` (`wep` a pod, `ns` a network set, `net` a network,
//! `hep` a host), `source_name` / `dest_name`, `dest_port`, `proto` (`tcp`, `udp`, `sctp`, or
//! the protocol number; `icmp` is passed over), `action` (`allow`, `deny`), `reporter` (`src`,
//! `dst`, `fwd`), `dest_service_namespace` / `dest_service_name` (`default` / `kubernetes`:
//! the API server), and `num_flows` (how many flows the entry aggregates; default 1).
//!
//! # CSV
//! `src_ns,src_pod_labels,dst_ns,dst_pod_labels,dst_ip,port,protocol[,action]`; an optional
//! header line starting `src_ns`. Labels are `k=v;k=v`, or `k=v,k=v` inside double quotes.
//! An empty (or `-`) `dst_ns` with a `dst_ip` is an address outside the cluster; `dst_ns`
//! `default` with `dst_pod_labels` `kube-apiserver` is the API server. `action` is `allow`
//! (default) or `deny`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

use crate::core::Protocol;

/// The formats [`parse`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `hubble observe -o json` (or `-o jsonpb`) lines.
    Hubble,
    /// Calico flow logs (JSON).
    Calico,
    /// `src_ns,src_pod_labels,dst_ns,dst_pod_labels,dst_ip,port,protocol[,action]`.
    Csv,
}

impl Format {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Hubble => "hubble",
            Format::Calico => "calico",
            Format::Csv => "csv",
        }
    }

    /// Guesses the format from the text: JSON with Hubble's fields, JSON with Calico's, else CSV.
    pub fn detect(text: &str) -> Format {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        match first {
            Some(l) if l.starts_with('{') || l.starts_with('[') => {
                if l.contains("\"dest_port\"")
                    || l.contains("\"source_namespace\"")
                    || l.contains("\"reporter\"")
                    || l.contains("\"_source\"")
                {
                    Format::Calico
                } else {
                    Format::Hubble
                }
            }
            _ => Format::Csv,
        }
    }
}

/// One end of an observed flow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum End {
    /// A pod: its namespace, labels (as observed; may be empty), and where known its name and
    /// address.
    Pod {
        /// Namespace.
        namespace: String,
        /// Labels as the flow record gives them.
        labels: BTreeMap<String, String>,
        /// The pod's name, when the record has it.
        name: Option<String>,
        /// The pod's address, when the record has it.
        ip: Option<IpAddr>,
    },
    /// The Kubernetes API server (its address when known).
    ApiServer {
        /// The address the flow went to.
        ip: Option<IpAddr>,
    },
    /// An address that is no pod (outside the cluster).
    Address(IpAddr),
}

impl End {
    /// The namespace of a pod end.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            End::Pod { namespace, .. } => Some(namespace),
            _ => None,
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Pod {
                namespace,
                name: Some(n),
                ..
            } => write!(f, "{namespace}/{n}"),
            End::Pod {
                namespace,
                labels,
                ip,
                ..
            } => {
                let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "{namespace}/{{{}}}", l.join(","))?;
                if let Some(ip) = ip {
                    write!(f, " ({ip})")?;
                }
                Ok(())
            }
            End::ApiServer { ip: Some(ip) } => write!(f, "kube-apiserver ({ip})"),
            End::ApiServer { ip: None } => f.write_str("kube-apiserver"),
            End::Address(ip) => write!(f, "{ip}"),
        }
    }
}

/// What the network did with a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// It went through (Hubble `FORWARDED` / `REDIRECTED`, Calico `allow`).
    Forwarded,
    /// It went through, and a policy in audit mode would have dropped it (Hubble `AUDIT`).
    Audit,
    /// It was denied (Hubble `DROPPED`, Calico `deny`).
    Denied,
}

/// One observed flow: who connected to whom on which destination port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// 1-based line (Hubble, CSV) or record (Calico) of the input.
    pub record: usize,
    /// Who opened the connection.
    pub source: End,
    /// Who accepted it.
    pub destination: End,
    /// Destination port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// What happened to it.
    pub outcome: Outcome,
    /// How many flows the record stands for (Calico `num_flows`; else 1).
    pub count: u64,
    /// Which end reported it (Hubble `traffic_direction`, Calico `reporter`): a connection
    /// between two pods is usually reported at both, and counts once.
    pub seen_at: SeenAt,
}

/// Which end of a connection a record was taken at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeenAt {
    /// At the source (Hubble `EGRESS`, Calico `reporter: src`).
    Source,
    /// At the destination (Hubble `INGRESS`, Calico `reporter: dst`).
    Destination,
    /// Not said (CSV, Calico `fwd`).
    #[default]
    Unknown,
}

/// Why a record was passed over (not a flow an AppNetwork describes), as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Passed {
    /// A reply (Hubble `is_reply`), part of a flow already counted.
    Reply,
    /// No transport port (ICMP).
    NoPort,
    /// An end is a node or another reserved identity (Cilium `reserved:host`, `remote-node`,
    /// `health`, `init`, ...; Calico `hep`).
    Node,
    /// An end cannot be told: no namespace, no labels and no address (aggregated).
    Unknown,
    /// Not a flow at all (Hubble `node_status`, `lost_events`; a verdict that is no outcome).
    NotAFlow,
}

impl Passed {
    /// Words for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Passed::Reply => "replies (part of a flow already counted)",
            Passed::NoPort => "without a transport port (ICMP)",
            Passed::Node => {
                "to or from a node or another reserved identity (host network, health, init), \
                 which AppNetworks do not describe"
            }
            Passed::Unknown => "with an end that cannot be told (aggregated, no address)",
            Passed::NotAFlow => "that are no flow (node status, lost events, trace points)",
        }
    }
}

/// Everything read from one flow file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observations {
    /// The flows.
    pub flows: Vec<Flow>,
    /// How many records were passed over, by why.
    pub passed: BTreeMap<Passed, usize>,
}

/// A flow file that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// A record is malformed.
    #[error("{format} record {record}: {message}")]
    Record {
        /// The format it was read as.
        format: &'static str,
        /// 1-based line or record.
        record: usize,
        /// What is wrong.
        message: String,
    },
    /// Not one flow record was read: the file is empty, holds only comments (or a CSV header),
    /// or is in another format. An audit or a suggestion of nothing would pass vacuously.
    #[error(
        "no flow record read as {format}: the file is empty, holds only comments or a header, \
         or is not in this format (Hubble JSON lines, Calico flow logs, or CSV \
         src_ns,src_pod_labels,dst_ns,dst_pod_labels,dst_ip,port,protocol[,action])"
    )]
    NoRecords {
        /// The format it was read as.
        format: &'static str,
    },
}

impl FlowError {
    /// A bounded reason.
    pub fn reason(&self) -> &'static str {
        match self {
            FlowError::Record { .. } => "MalformedFlowRecord",
            FlowError::NoRecords { .. } => "NoFlowRecords",
        }
    }
}

/// Reads flows in the given format. A text of which no record is read (no flow and nothing
/// passed over) is an error ([`FlowError::NoRecords`]), never an empty observation.
pub fn parse(format: Format, text: &str) -> Result<Observations, FlowError> {
    let o = match format {
        Format::Hubble => hubble(text),
        Format::Calico => calico(text),
        Format::Csv => csv(text),
    }?;
    if o.flows.is_empty() && o.passed.is_empty() {
        return Err(FlowError::NoRecords {
            format: format.as_str(),
        });
    }
    Ok(o)
}

fn err(format: Format, record: usize, message: impl Into<String>) -> FlowError {
    FlowError::Record {
        format: format.as_str(),
        record,
        message: message.into(),
    }
}

/// A field read from either the proto name or its lowerCamelCase JSON name.
fn field<'v>(v: &'v Value, proto: &str, camel: &str) -> Option<&'v Value> {
    v.get(proto).or_else(|| v.get(camel))
}

fn ip_of(v: Option<&Value>) -> Option<IpAddr> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

fn port_of(v: Option<&Value>) -> Option<u16> {
    let v = v?;
    let n = v
        .as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    u16::try_from(n).ok().filter(|n| *n > 0)
}

/// Hubble reads: see the module documentation.
fn hubble(text: &str) -> Result<Observations, FlowError> {
    let mut out = Observations::default();
    for (i, line) in text.lines().enumerate() {
        let record = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| err(Format::Hubble, record, format!("not JSON: {e}")))?;
        let flow = v.get("flow").unwrap_or(&v);
        if !flow.is_object()
            || (flow.get("verdict").is_none()
                && flow.get("l4").is_none()
                && v.get("flow").is_none())
        {
            *out.passed.entry(Passed::NotAFlow).or_default() += 1;
            continue;
        }
        match hubble_flow(flow, record)? {
            Ok(f) => out.flows.push(f),
            Err(p) => *out.passed.entry(p).or_default() += 1,
        }
    }
    Ok(out)
}

fn hubble_flow(f: &Value, record: usize) -> Result<Result<Flow, Passed>, FlowError> {
    let verdict = match f.get("verdict") {
        Some(Value::String(s)) => s.as_str().to_string(),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(1) => "FORWARDED".into(),
            Some(2) => "DROPPED".into(),
            Some(4) => "AUDIT".into(),
            Some(5) => "REDIRECTED".into(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let outcome = match verdict.as_str() {
        "FORWARDED" | "REDIRECTED" => Outcome::Forwarded,
        "AUDIT" => Outcome::Audit,
        "DROPPED" => Outcome::Denied,
        _ => return Ok(Err(Passed::NotAFlow)),
    };
    let reply = field(f, "is_reply", "isReply")
        .or_else(|| f.get("reply"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if reply {
        return Ok(Err(Passed::Reply));
    }
    let Some(l4) = f.get("l4") else {
        return Ok(Err(Passed::NoPort));
    };
    let mut found = None;
    for (key, protocol) in [
        ("TCP", Protocol::Tcp),
        ("UDP", Protocol::Udp),
        ("SCTP", Protocol::Sctp),
    ] {
        if let Some(p) = l4.get(key).or_else(|| l4.get(key.to_ascii_lowercase())) {
            let port =
                port_of(field(p, "destination_port", "destinationPort")).ok_or_else(|| {
                    err(
                        Format::Hubble,
                        record,
                        format!("l4.{key}.destination_port: missing or not a port (1-65535)"),
                    )
                })?;
            found = Some((port, protocol));
        }
    }
    let Some((port, protocol)) = found else {
        return Ok(Err(Passed::NoPort));
    };
    let ip = f.get("IP").or_else(|| f.get("ip"));
    let src_ip = ip_of(ip.and_then(|i| i.get("source")));
    let dst_ip = ip_of(ip.and_then(|i| i.get("destination")));
    let source = match hubble_end(f.get("source"), src_ip) {
        Ok(e) => e,
        Err(p) => return Ok(Err(p)),
    };
    let destination = match hubble_end(f.get("destination"), dst_ip) {
        Ok(e) => e,
        Err(p) => return Ok(Err(p)),
    };
    let seen_at = match field(f, "traffic_direction", "trafficDirection").and_then(Value::as_str) {
        Some("EGRESS") => SeenAt::Source,
        Some("INGRESS") => SeenAt::Destination,
        _ => SeenAt::Unknown,
    };
    Ok(Ok(Flow {
        record,
        source,
        destination,
        port,
        protocol,
        outcome,
        count: 1,
        seen_at,
    }))
}

/// Cilium identity labels that say what an end is (`reserved:` source).
fn hubble_end(e: Option<&Value>, ip: Option<IpAddr>) -> Result<End, Passed> {
    let namespace = e
        .and_then(|e| e.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let raw: Vec<&str> = e
        .and_then(|e| e.get("labels"))
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let reserved: Vec<&str> = raw
        .iter()
        .filter_map(|l| l.strip_prefix("reserved:"))
        .map(|l| l.split('=').next().unwrap_or(l))
        .collect();
    if reserved.contains(&"kube-apiserver") {
        return Ok(End::ApiServer { ip });
    }
    if reserved.contains(&"world")
        || reserved.contains(&"world-ipv4")
        || reserved.contains(&"world-ipv6")
    {
        return ip.map(End::Address).ok_or(Passed::Unknown);
    }
    if !reserved.is_empty() {
        return Err(Passed::Node);
    }
    if namespace.is_empty() {
        return ip.map(End::Address).ok_or(Passed::Unknown);
    }
    let mut labels = BTreeMap::new();
    for l in raw {
        // `source:key=value`; the source is `k8s` for pod labels.
        let (source, kv) = match l.split_once(':') {
            Some((s, kv)) if !s.contains('=') => (s, kv),
            _ => ("k8s", l),
        };
        if source != "k8s" {
            continue;
        }
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k == crate::vocab::CILIUM_POD_NAMESPACE_LABEL || k.starts_with("io.cilium.k8s.") {
            continue;
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let name = e
        .and_then(|e| field(e, "pod_name", "podName"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(End::Pod {
        namespace: namespace.to_string(),
        labels,
        name,
        ip,
    })
}

/// Calico reads: see the module documentation.
fn calico(text: &str) -> Result<Observations, FlowError> {
    let trimmed = text.trim_start();
    let records: Vec<(usize, Value)> = if trimmed.starts_with('[') {
        let all: Vec<Value> = serde_json::from_str(trimmed)
            .map_err(|e| err(Format::Calico, 1, format!("not a JSON array: {e}")))?;
        all.into_iter()
            .enumerate()
            .map(|(i, v)| (i + 1, v))
            .collect()
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .map_err(|e| err(Format::Calico, i + 1, format!("not JSON: {e}")))?;
            out.push((i + 1, v));
        }
        out
    };
    let mut out = Observations::default();
    for (record, v) in records {
        let v = v.get("_source").unwrap_or(&v);
        match calico_flow(v, record)? {
            Ok(f) => out.flows.push(f),
            Err(p) => *out.passed.entry(p).or_default() += 1,
        }
    }
    Ok(out)
}

fn calico_str<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default()
}

fn calico_flow(v: &Value, record: usize) -> Result<Result<Flow, Passed>, FlowError> {
    let proto = match v.get("proto").or_else(|| v.get("protocol")) {
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let protocol = match proto.as_str() {
        "tcp" | "6" => Protocol::Tcp,
        "udp" | "17" => Protocol::Udp,
        "sctp" | "132" => Protocol::Sctp,
        "icmp" | "icmp6" | "icmpv6" | "1" | "58" => return Ok(Err(Passed::NoPort)),
        other => {
            return Err(err(
                Format::Calico,
                record,
                format!("proto: {other:?} is not tcp, udp, sctp or icmp"),
            ))
        }
    };
    let port = port_of(v.get("dest_port")).ok_or_else(|| {
        err(
            Format::Calico,
            record,
            "dest_port: missing or not a port (1-65535)",
        )
    })?;
    let outcome = match calico_str(v, "action").to_ascii_lowercase().as_str() {
        "allow" => Outcome::Forwarded,
        "deny" => Outcome::Denied,
        other => {
            return Err(err(
                Format::Calico,
                record,
                format!("action: {other:?} is not allow or deny"),
            ))
        }
    };
    let source = match calico_end(v, "source") {
        Ok(e) => e,
        Err(p) => return Ok(Err(p)),
    };
    let api = calico_str(v, "dest_service_namespace") == "default"
        && calico_str(v, "dest_service_name") == "kubernetes";
    let destination = if api {
        End::ApiServer {
            ip: ip_of(v.get("dest_ip")),
        }
    } else {
        match calico_end(v, "dest") {
            Ok(e) => e,
            Err(p) => return Ok(Err(p)),
        }
    };
    let count = v
        .get("num_flows")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let seen_at = match calico_str(v, "reporter").to_ascii_lowercase().as_str() {
        "src" => SeenAt::Source,
        "dst" => SeenAt::Destination,
        _ => SeenAt::Unknown,
    };
    Ok(Ok(Flow {
        record,
        source,
        destination,
        port,
        protocol,
        outcome,
        count,
        seen_at,
    }))
}

fn calico_labels(v: Option<&Value>) -> BTreeMap<String, String> {
    let list = match v {
        Some(Value::Object(o)) => o.get("labels").and_then(Value::as_array),
        Some(Value::Array(a)) => Some(a),
        _ => None,
    };
    list.into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn calico_end(v: &Value, side: &str) -> Result<End, Passed> {
    let namespace = calico_str(v, &format!("{side}_namespace"));
    let kind = calico_str(v, &format!("{side}_type"));
    let ip = ip_of(v.get(format!("{side}_ip")));
    if kind == "hep" {
        return Err(Passed::Node);
    }
    if kind == "wep" || (!namespace.is_empty() && namespace != "-" && kind.is_empty()) {
        let name = calico_str(v, &format!("{side}_name"));
        let labels = calico_labels(v.get(format!("{side}_labels")));
        if namespace.is_empty() || namespace == "-" {
            return Err(Passed::Unknown);
        }
        return Ok(End::Pod {
            namespace: namespace.to_string(),
            labels,
            name: (!name.is_empty() && name != "-" && !name.ends_with('*'))
                .then(|| name.to_string()),
            ip,
        });
    }
    ip.map(End::Address).ok_or(Passed::Unknown)
}

/// Splits one CSV line into fields (double quotes group, `""` inside quotes is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

fn csv_labels(s: &str, record: usize) -> Result<BTreeMap<String, String>, FlowError> {
    let mut out = BTreeMap::new();
    for pair in s.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            err(
                Format::Csv,
                record,
                format!("label {pair:?} is not of the form key=value"),
            )
        })?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// CSV reads: see the module documentation.
fn csv(text: &str) -> Result<Observations, FlowError> {
    let mut out = Observations::default();
    for (i, line) in text.lines().enumerate() {
        let record = i + 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let f = csv_fields(line);
        if f.first().is_some_and(|c| c == "src_ns") {
            continue;
        }
        if f.len() < 7 || f.len() > 8 {
            return Err(err(
                Format::Csv,
                record,
                format!(
                    "expected 7 or 8 fields (src_ns,src_pod_labels,dst_ns,dst_pod_labels,dst_ip,\
                     port,protocol[,action]), found {}",
                    f.len()
                ),
            ));
        }
        let port = port_of(Some(&Value::from(f[5].as_str()))).ok_or_else(|| {
            err(
                Format::Csv,
                record,
                format!("port {:?} is not a port (1-65535)", f[5]),
            )
        })?;
        let protocol = Protocol::parse(&f[6]).ok_or_else(|| {
            err(
                Format::Csv,
                record,
                format!("protocol {:?} is not TCP, UDP or SCTP", f[6]),
            )
        })?;
        let outcome = match f.get(7).map(|a| a.to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("allow") | Some("forwarded") => Outcome::Forwarded,
            Some("deny") | Some("dropped") => Outcome::Denied,
            Some("audit") => Outcome::Audit,
            Some(other) => {
                return Err(err(
                    Format::Csv,
                    record,
                    format!("action {other:?} is not allow or deny"),
                ))
            }
        };
        let dst_ip = if f[4].is_empty() || f[4] == "-" {
            None
        } else {
            Some(f[4].parse::<IpAddr>().map_err(|_| {
                err(
                    Format::Csv,
                    record,
                    format!("dst_ip {:?} is not an IP address", f[4]),
                )
            })?)
        };
        let no_ns = |s: &str| s.is_empty() || s == "-";
        if no_ns(&f[0]) {
            *out.passed.entry(Passed::Unknown).or_default() += 1;
            continue;
        }
        let source = End::Pod {
            namespace: f[0].clone(),
            labels: csv_labels(&f[1], record)?,
            name: None,
            ip: None,
        };
        let destination = if no_ns(&f[2]) {
            match dst_ip {
                Some(ip) => End::Address(ip),
                None => {
                    *out.passed.entry(Passed::Unknown).or_default() += 1;
                    continue;
                }
            }
        } else if f[2] == "default" && f[3] == "kube-apiserver" {
            End::ApiServer { ip: dst_ip }
        } else {
            End::Pod {
                namespace: f[2].clone(),
                labels: csv_labels(&f[3], record)?,
                name: None,
                ip: dst_ip,
            }
        };
        out.flows.push(Flow {
            record,
            source,
            destination,
            port,
            protocol,
            outcome,
            count: 1,
            seen_at: SeenAt::Unknown,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // The `jsonpb` case of cilium/cilium hubble/pkg/printer/printer_test.go (commit
    // 4e76d1f0faeee09a1d1e12773314d56f7958a3e2) with endpoints, as our own table.
    const HUBBLE: &str = r#"
{"flow":{"time":"2026-11-30T10:00:00.1Z","verdict":"FORWARDED","IP":{"source":"10.244.1.5","destination":"10.244.2.7","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":41234,"destination_port":8080,"flags":{"SYN":true}}},"source":{"ID":101,"identity":3001,"namespace":"shop","labels":["k8s:app=web","k8s:io.kubernetes.pod.namespace=shop","k8s:io.cilium.k8s.policy.serviceaccount=default"],"pod_name":"web-5d8f-abcde"},"destination":{"ID":102,"identity":3002,"namespace":"shop","labels":["k8s:app=api","k8s:io.kubernetes.pod.namespace=shop"],"pod_name":"api-0"},"Type":"L3_L4","node_name":"kind-worker","event_type":{"type":4},"traffic_direction":"EGRESS","is_reply":false,"Summary":"TCP Flags: SYN"},"node_name":"kind-worker","time":"2026-11-30T10:00:00.1Z"}
{"flow":{"verdict":"FORWARDED","IP":{"source":"10.244.2.7","destination":"10.244.1.5"},"l4":{"TCP":{"source_port":8080,"destination_port":41234}},"source":{"namespace":"shop","labels":["k8s:app=api"]},"destination":{"namespace":"shop","labels":["k8s:app=web"]},"traffic_direction":"INGRESS","is_reply":true}}
{"node_status":{"state_change":"NODE_CONNECTED","node_names":["kind-worker"]}}
{"verdict":"DROPPED","IP":{"source":"10.244.1.5","destination":"203.0.113.9"},"l4":{"UDP":{"source_port":5000,"destination_port":443}},"source":{"namespace":"shop","labels":["k8s:app=web"]},"destination":{"identity":2,"labels":["reserved:world"]},"traffic_direction":"EGRESS","is_reply":false}
{"flow":{"verdict":"FORWARDED","IP":{"source":"10.244.2.7","destination":"172.18.0.2"},"l4":{"TCP":{"source_port":4000,"destination_port":6443}},"source":{"namespace":"shop","labels":["k8s:app=api"]},"destination":{"identity":7,"labels":["reserved:kube-apiserver","reserved:host"]},"is_reply":false}}
{"flow":{"verdict":"FORWARDED","IP":{"source":"10.244.2.7","destination":"172.18.0.3"},"l4":{"TCP":{"source_port":4000,"destination_port":10250}},"source":{"namespace":"shop","labels":["k8s:app=api"]},"destination":{"identity":6,"labels":["reserved:remote-node"]},"is_reply":false}}
{"flow":{"verdict":"FORWARDED","IP":{"source":"10.244.2.7","destination":"10.244.0.3"},"l4":{"ICMPv4":{"type":8}},"source":{"namespace":"shop","labels":["k8s:app=api"]},"destination":{"namespace":"kube-system","labels":["k8s:k8s-app=kube-dns"]}}}
"#;

    #[test]
    fn hubble_lines_give_flows_and_pass_over_replies_nodes_and_status() {
        let o = parse(Format::Hubble, HUBBLE).unwrap();
        assert_eq!(o.flows.len(), 3, "{o:?}");
        let f = &o.flows[0];
        assert_eq!(f.record, 2);
        assert_eq!(f.port, 8080);
        assert_eq!(f.outcome, Outcome::Forwarded);
        assert_eq!(
            f.source,
            End::Pod {
                namespace: "shop".into(),
                labels: labels(&[("app", "web")]),
                name: Some("web-5d8f-abcde".into()),
                ip: Some("10.244.1.5".parse().unwrap()),
            }
        );
        assert_eq!(o.flows[1].outcome, Outcome::Denied);
        assert_eq!(
            o.flows[1].destination,
            End::Address("203.0.113.9".parse().unwrap())
        );
        assert_eq!(o.flows[1].protocol, Protocol::Udp);
        assert_eq!(
            o.flows[2].destination,
            End::ApiServer {
                ip: Some("172.18.0.2".parse().unwrap())
            }
        );
        assert_eq!(o.passed[&Passed::Reply], 1);
        assert_eq!(o.passed[&Passed::NotAFlow], 1);
        assert_eq!(o.passed[&Passed::Node], 1);
        assert_eq!(o.passed[&Passed::NoPort], 1);
    }

    #[test]
    fn a_hubble_line_that_is_not_json_names_its_line() {
        let e = parse(Format::Hubble, "{\"flow\":{}}\nnot json\n").unwrap_err();
        assert!(
            e.to_string().starts_with("hubble record 2: not JSON"),
            "{e}"
        );
        assert_eq!(e.reason(), "MalformedFlowRecord");
    }

    #[test]
    fn calico_records_read_pods_networks_and_the_api_server() {
        let text = r#"{"action":"allow","reporter":"src","proto":"tcp","dest_port":5432,"num_flows":3,"source_type":"wep","source_namespace":"shop","source_name":"api-0","source_name_aggr":"api-*","source_ip":"10.244.2.7","source_labels":{"labels":["app=api","pod-template-hash=5d8f"]},"dest_type":"wep","dest_namespace":"shop","dest_name":"-","dest_name_aggr":"db-*","dest_ip":null,"dest_labels":{"labels":["app=db"]}}
{"action":"deny","reporter":"src","proto":"6","dest_port":443,"source_type":"wep","source_namespace":"shop","source_labels":["app=api"],"dest_type":"net","dest_namespace":"-","dest_name_aggr":"pub","dest_ip":"198.51.100.4"}
{"action":"allow","reporter":"src","proto":"tcp","dest_port":443,"source_type":"wep","source_namespace":"shop","source_labels":["app=api"],"dest_type":"net","dest_namespace":"-","dest_ip":"10.96.0.1","dest_service_namespace":"default","dest_service_name":"kubernetes"}
{"action":"allow","reporter":"dst","proto":"icmp","source_type":"wep","source_namespace":"shop"}
{"action":"allow","reporter":"src","proto":"tcp","dest_port":22,"source_type":"hep","source_namespace":"-","dest_type":"wep","dest_namespace":"shop","dest_labels":["app=api"]}"#;
        let o = parse(Format::Calico, text).unwrap();
        assert_eq!(o.flows.len(), 3);
        assert_eq!(o.flows[0].count, 3);
        assert_eq!(
            o.flows[0].destination,
            End::Pod {
                namespace: "shop".into(),
                labels: labels(&[("app", "db")]),
                name: None,
                ip: None
            }
        );
        assert_eq!(o.flows[1].outcome, Outcome::Denied);
        assert_eq!(
            o.flows[2].destination,
            End::ApiServer {
                ip: Some("10.96.0.1".parse().unwrap())
            }
        );
        assert_eq!(o.passed[&Passed::NoPort], 1);
        assert_eq!(o.passed[&Passed::Node], 1);
    }

    #[test]
    fn csv_takes_either_label_form_and_a_header() {
        let text = "src_ns,src_pod_labels,dst_ns,dst_pod_labels,dst_ip,port,protocol\n\
                    shop,app=web;tier=front,shop,app=api,,8080,TCP\n\
                    shop,\"app=api,tier=back\",,,203.0.113.9,443,tcp,deny\n\
                    shop,app=api,default,kube-apiserver,10.96.0.1,443,TCP\n";
        let o = parse(Format::Csv, text).unwrap();
        assert_eq!(o.flows.len(), 3);
        assert_eq!(
            o.flows[0].source,
            End::Pod {
                namespace: "shop".into(),
                labels: labels(&[("app", "web"), ("tier", "front")]),
                name: None,
                ip: None
            }
        );
        assert_eq!(
            o.flows[1].source,
            End::Pod {
                namespace: "shop".into(),
                labels: labels(&[("app", "api"), ("tier", "back")]),
                name: None,
                ip: None
            }
        );
        assert_eq!(o.flows[1].outcome, Outcome::Denied);
        assert!(matches!(o.flows[2].destination, End::ApiServer { .. }));
        let e = parse(Format::Csv, "shop,app=web,shop,app=api,,http,TCP\n").unwrap_err();
        assert!(e.to_string().contains("\"http\" is not a port"), "{e}");
    }

    #[test]
    fn a_file_of_which_no_record_is_read_is_an_error_in_every_format() {
        for (format, text) in [
            (Format::Csv, ""),
            (Format::Csv, "# only a comment\n"),
            (
                Format::Csv,
                "src_ns,src_pod_labels,dst_ns,dst_pod_labels,dst_ip,port,protocol\n",
            ),
            (Format::Hubble, "\n\n"),
            (Format::Calico, "[]"),
        ] {
            let e = parse(format, text).unwrap_err();
            assert_eq!(e.reason(), "NoFlowRecords", "{format:?} {text:?}");
        }
    }

    #[test]
    fn formats_are_detected_from_the_first_line_that_is_no_comment() {
        assert_eq!(Format::detect(HUBBLE), Format::Hubble);
        assert_eq!(
            Format::detect("{\"action\":\"allow\",\"dest_port\":80}"),
            Format::Calico
        );
        assert_eq!(Format::detect("src_ns,src_pod_labels\n"), Format::Csv);
    }
}
