//! Helpers every reader of input objects shares (the Kubernetes one in `parse`, the Calico
//! and Cilium ones): where compiled peers go, ports, protocols, CIDRs and label selectors.
//! It imports no other reader, so `parse`, `calico` and `cilium` can all use it without a
//! cycle between them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::core::{Cidr, CidrError, Protocol, Selector};

use super::error::EngineError;
use super::json::{at, get, join, Ctx};
use super::model::{Alt, Peer, PeerId};

/// Where compiled peers go.
pub(crate) struct Sink<'a> {
    /// The scenario's peer table.
    pub peers: &'a mut Vec<Peer>,
}

impl Sink<'_> {
    /// Stores a peer and returns its id.
    pub fn peer(&mut self, alts: Vec<Alt>) -> PeerId {
        self.peers.push(Peer { alts });
        u32::try_from(self.peers.len() - 1).unwrap_or(u32::MAX)
    }
}

/// A port number 1-65535.
pub(crate) fn port_number(ctx: &Ctx, v: &Value, path: &str) -> Result<u16, EngineError> {
    let n = ctx.uint(v, path, 65535)?;
    if n == 0 {
        return Err(ctx.err(path, "port 0 is not a valid port (1-65535)"));
    }
    u16::try_from(n).map_err(|_| ctx.err(path, "out of range"))
}

/// An optional `protocol` field: TCP, UDP or SCTP.
pub(crate) fn protocol_field(
    ctx: &Ctx,
    m: &Map<String, Value>,
    path: &str,
) -> Result<Option<Protocol>, EngineError> {
    match ctx.opt_str(m, "protocol", path)? {
        None => Ok(None),
        Some(s) => Protocol::parse(s).map(Some).ok_or_else(|| {
            ctx.err(
                &join(path, "protocol"),
                format!("unknown protocol {s:?} (expected TCP, UDP or SCTP)"),
            )
        }),
    }
}

/// A CIDR, or a bare address (a host route). Host bits are cleared, as the API servers of
/// Kubernetes, Calico and Cilium accept them; `tierflow lint` is where they get reported.
pub(crate) fn parse_cidr(ctx: &Ctx, s: &str, path: &str) -> Result<Cidr, EngineError> {
    if !s.contains('/') {
        if let Ok(ip) = s.trim().parse::<IpAddr>() {
            return Ok(Cidr::host(ip));
        }
    }
    match Cidr::parse(s) {
        Ok(c) => Ok(c),
        Err(CidrError::HostBits { canonical, .. }) => {
            Cidr::parse(&canonical).map_err(|e| ctx.err(path, e))
        }
        Err(e) => Err(ctx.err(path, e)),
    }
}

/// A Kubernetes LabelSelector (`matchLabels`, `matchExpressions`), validated.
pub(crate) fn k8s_selector(ctx: &Ctx, v: &Value, path: &str) -> Result<Selector, EngineError> {
    let (labels, exprs) = raw_selector(ctx, v, path, |k| Some(k.to_string()))?;
    Selector::new(labels, exprs).map_err(|e| ctx.err(path, e))
}

type RawSelector = (BTreeMap<String, String>, Vec<(String, String, Vec<String>)>);

/// The parts of a LabelSelector, keys passed through `key` (`None` drops nothing; it is only
/// used to rewrite keys).
pub(crate) fn raw_selector(
    ctx: &Ctx,
    v: &Value,
    path: &str,
    key: impl Fn(&str) -> Option<String>,
) -> Result<RawSelector, EngineError> {
    let m = ctx.obj(v, path)?;
    let mut labels = BTreeMap::new();
    if let Some(ml) = get(m, "matchLabels") {
        for (k, val) in ctx.string_map(ml, &join(path, "matchLabels"))? {
            if let Some(k) = key(&k) {
                labels.insert(k, val);
            }
        }
    }
    let mut exprs = Vec::new();
    let epath = join(path, "matchExpressions");
    for (i, e) in ctx
        .opt_list(m, "matchExpressions", path)?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let ep = at(&epath, i);
        let e = ctx.obj(e, &ep)?;
        let k = ctx
            .opt_str(e, "key", &ep)?
            .ok_or_else(|| ctx.err(&join(&ep, "key"), "missing"))?;
        let op = ctx
            .opt_str(e, "operator", &ep)?
            .ok_or_else(|| ctx.err(&join(&ep, "operator"), "missing"))?;
        let values = ctx.opt_strings(e, "values", &ep)?;
        if let Some(k) = key(k) {
            exprs.push((k, op.to_string(), values));
        }
    }
    Ok((labels, exprs))
}
