//! The suggestion, held against the engine: every observed flow allowed on every backend, a
//! held-out set of never-observed connections between the same pods denied.

use std::collections::BTreeSet;

use super::*;
use crate::adopt::flows::{parse, Format};
use crate::adopt::replay::replay;
use crate::plan::AppInput;

const PODS: &str = include_str!("../../../../../tests/fixtures/flows/shop-pods.yaml");
const HUBBLE: &str = include_str!("../../../../../tests/fixtures/flows/shop.hubble.jsonl");
const CALICO: &str = include_str!("../../../../../tests/fixtures/flows/shop.calico.jsonl");
const CSV: &str = include_str!("../../../../../tests/fixtures/flows/shop.csv");

const BACKENDS: [Backend; 3] = [Backend::NetworkPolicy, Backend::Calico, Backend::Cilium];

fn known() -> Known {
    let values: Vec<Value> = serde_yaml::Deserializer::from_str(PODS)
        .map(|d| {
            let y = <serde_yaml::Value as serde::Deserialize>::deserialize(d).unwrap();
            serde_json::to_value(y).unwrap()
        })
        .collect();
    Known::from_values(values).unwrap()
}

fn options() -> Options {
    Options {
        name: "observed".into(),
        ..Options::default()
    }
}

fn inputs(s: &Suggestion) -> Vec<AppInput> {
    s.app_networks
        .iter()
        .map(|a| AppInput {
            name: a.name.clone(),
            namespace: a.namespace.clone(),
            uid: None,
            generation: None,
            spec: a.spec.clone(),
        })
        .collect()
}

fn suggestion(format: Format, text: &str) -> (Vec<Flow>, Suggestion) {
    let flows = parse(format, text).unwrap().flows;
    let s = suggest(&flows, &known(), &options());
    (flows, s)
}

fn app<'a>(s: &'a Suggestion, ns: &str) -> &'a Suggested {
    s.app_networks
        .iter()
        .find(|a| a.namespace == ns)
        .unwrap_or_else(|| panic!("no AppNetwork for {ns} in {s:#?}"))
}

use crate::model::Backend;

#[test]
fn every_suggestion_is_a_valid_app_network() {
    for (format, text) in [
        (Format::Hubble, HUBBLE),
        (Format::Calico, CALICO),
        (Format::Csv, CSV),
    ] {
        let (_, s) = suggestion(format, text);
        let namespaces: Vec<&str> = s
            .app_networks
            .iter()
            .map(|a| a.namespace.as_str())
            .collect();
        assert_eq!(namespaces, ["monitoring", "shop"], "{format:?}");
        for a in &s.app_networks {
            crate::validate::app_network(&a.name, &a.namespace, &a.spec)
                .unwrap_or_else(|e| panic!("{format:?} {}: {e:?}", a.namespace));
            assert_eq!(a.flow_counts.len(), a.spec.flows.len());
        }
    }
}

#[test]
fn the_suggestion_allows_every_observed_flow_on_every_backend() {
    for (format, text) in [
        (Format::Hubble, HUBBLE),
        (Format::Calico, CALICO),
        (Format::Csv, CSV),
    ] {
        let (flows, s) = suggestion(format, text);
        let observed = group(&flows);
        for backend in BACKENDS {
            let r = replay(&inputs(&s), &observed, &known(), backend, &[]).unwrap();
            assert!(r.passed(), "{format:?} on {backend:?}: {r:#?}");
            assert!(r.checked >= 6, "{format:?} on {backend:?}: {r:#?}");
            // Only the API server flow goes unchecked, and only where it is named by entity.
            let api_unchecked = r.unchecked.len();
            let expected = usize::from(backend != Backend::NetworkPolicy);
            assert_eq!(api_unchecked, expected, "{format:?} on {backend:?}: {r:#?}");
        }
    }
}

#[test]
fn the_suggestion_denies_never_observed_connections_between_the_same_pods() {
    let k = known();
    let (flows, s) = suggestion(Format::Hubble, HUBBLE);
    let allowed: Vec<&Flow> = flows
        .iter()
        .filter(|f| f.outcome != Outcome::Denied)
        .collect();
    // Observed, by workload (stable labels) and port.
    let workload = |e: &End| stable(&k.labels_of(e));
    let seen: BTreeSet<(Labels, Labels, u16, Protocol)> = allowed
        .iter()
        .map(|f| {
            (
                workload(&f.source),
                workload(&f.destination),
                f.port,
                f.protocol,
            )
        })
        .collect();
    let ports: BTreeSet<(u16, Protocol)> = allowed
        .iter()
        .map(|f| (f.port, f.protocol))
        .chain([(22, Protocol::Tcp), (8443, Protocol::Tcp)])
        .collect();
    let mut held_out = Vec::new();
    for a in &k.pods {
        for b in &k.pods {
            if a.name == b.name || b.labels.get("k8s-app").map(String::as_str) == Some("kube-dns") {
                continue;
            }
            for &(port, protocol) in &ports {
                let key = (stable(&a.labels), stable(&b.labels), port, protocol);
                if seen.contains(&key) {
                    continue;
                }
                held_out.push(Observed {
                    source: End::Pod {
                        namespace: a.namespace.clone(),
                        labels: a.labels.clone(),
                        name: Some(a.name.clone()),
                        ip: a.ip(),
                    },
                    destination: End::Pod {
                        namespace: b.namespace.clone(),
                        labels: b.labels.clone(),
                        name: Some(b.name.clone()),
                        ip: b.ip(),
                    },
                    port,
                    protocol,
                    outcome: Outcome::Forwarded,
                    count: 1,
                    first_record: 0,
                });
            }
        }
    }
    // And addresses never seen: the next address after each observed one, on the same port.
    for ip in ["203.0.113.11", "203.0.113.26", "198.51.100.7"] {
        held_out.push(Observed {
            source: End::Pod {
                namespace: "shop".into(),
                labels: [("app".to_string(), "api".to_string())].into(),
                name: Some("api-0".into()),
                ip: None,
            },
            destination: End::Address(ip.parse().unwrap()),
            port: 443,
            protocol: Protocol::Tcp,
            outcome: Outcome::Forwarded,
            count: 1,
            first_record: 0,
        });
    }
    assert!(held_out.len() > 150, "{}", held_out.len());
    for backend in BACKENDS {
        let r = replay(&inputs(&s), &held_out, &k, backend, &[]).unwrap();
        assert_eq!(r.checked, held_out.len(), "{backend:?}");
        assert_eq!(
            r.denied.len(),
            held_out.len(),
            "{backend:?}: allowed although never observed: {:#?}",
            held_out
                .iter()
                .filter(|o| !r.denied.iter().any(|d| d.port == o.port
                    && d.from == describe_end(&k, &o.source)
                    && d.to == describe_end(&k, &o.destination)))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn dropped_flows_are_listed_apart_and_stay_denied() {
    let k = known();
    for (format, text) in [
        (Format::Hubble, HUBBLE),
        (Format::Calico, CALICO),
        (Format::Csv, CSV),
    ] {
        let (flows, s) = suggestion(format, text);
        let denied: Vec<&Observed> = s
            .left_out
            .iter()
            .filter(|(_, why)| *why == LeftOut::Denied)
            .map(|(o, _)| o)
            .collect();
        assert_eq!(denied.len(), 1, "{format:?}: {:#?}", s.left_out);
        assert_eq!(denied[0].port, 5432);
        assert_eq!(describe_end(&k, &denied[0].destination), "shop/db-0");
        // Replayed as if it had gone through, the suggestion denies it.
        let mut again = denied[0].clone();
        again.outcome = Outcome::Forwarded;
        let r = replay(&inputs(&s), &[again], &k, Backend::NetworkPolicy, &[]).unwrap();
        assert_eq!(r.denied.len(), 1, "{format:?}");
        assert!(flows.iter().any(|f| f.outcome == Outcome::Denied));
    }
}

#[test]
fn tiers_select_workloads_by_stable_labels_and_dns_follows_what_was_seen() {
    let (_, s) = suggestion(Format::Hubble, HUBBLE);
    let shop = app(&s, "shop");
    let tiers: Vec<(String, Labels)> = shop
        .spec
        .tiers
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.selector.match_labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    let l = |k: &str, v: &str| -> Labels { [(k.to_string(), v.to_string())].into() };
    assert_eq!(
        tiers,
        [
            ("api".to_string(), l("app", "api")),
            ("db".to_string(), l("app", "db")),
            ("web".to_string(), l("app.kubernetes.io/name", "web")),
        ]
    );
    assert_eq!(
        shop.tier_pods[2],
        BTreeSet::from([
            "shop/web-7c9f8d-aaaaa".to_string(),
            "shop/web-7c9f8d-bbbbb".to_string()
        ])
    );
    assert!(shop.spec.dns.enabled);
    assert_eq!(shop.dns_count, 3);
    assert!(!app(&s, "monitoring").spec.dns.enabled);
    // web -> api is one entry covering both replicas; each connection was reported at both
    // ends (egress and ingress) and counts once.
    let i = shop
        .spec
        .flows
        .iter()
        .position(|f| f.from.tier.as_deref() == Some("web") && f.to.tier.as_deref() == Some("api"))
        .unwrap();
    assert_eq!(shop.flow_counts[i], 2);
    // The API server is a kubeAPIServer flow, without ports (its own).
    assert!(shop
        .spec
        .flows
        .iter()
        .any(|f| f.to.kube_api_server == Some(true) && f.ports.is_none()));
}

#[test]
fn addresses_are_grouped_into_networks_only_when_asked() {
    let cidrs = |s: &Suggestion| -> Vec<String> {
        app(s, "shop")
            .spec
            .flows
            .iter()
            .filter_map(|f| f.to.cidr.clone())
            .collect()
    };
    let flows = parse(Format::Hubble, HUBBLE).unwrap().flows;
    let plain = suggest(&flows, &known(), &options());
    assert_eq!(cidrs(&plain), ["203.0.113.10/32", "203.0.113.25/32"]);
    let wide = suggest(
        &flows,
        &known(),
        &Options {
            aggregate_v4: Some(24),
            ..options()
        },
    );
    assert_eq!(cidrs(&wide), ["203.0.113.0/24"]);
    let i = app(&wide, "shop")
        .spec
        .flows
        .iter()
        .position(|f| f.to.cidr.is_some())
        .unwrap();
    assert_eq!(app(&wide, "shop").flow_counts[i], 2);
}

#[test]
fn workloads_sharing_their_preferred_label_are_told_apart_by_all_their_stable_labels() {
    let l = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let ls = [
        l(&[("app", "pg"), ("role", "primary")]),
        l(&[("app", "pg"), ("role", "replica")]),
        l(&[("app", "web")]),
    ];
    let ws: BTreeSet<Workload> = ls.iter().cloned().map(Workload::Labels).collect();
    let members: Vec<(Workload, Labels, String)> = ls
        .iter()
        .map(|l| (Workload::Labels(l.clone()), l.clone(), format!("{l:?}")))
        .collect();
    let t = tiers_of(&ws, &members);
    let names: Vec<&String> = t.by_workload.values().map(|(_, n)| n).collect();
    assert_eq!(names, ["pg-primary", "pg-replica", "web"]);
    assert_eq!(
        t.by_workload[&Workload::Labels(l(&[("app", "pg"), ("role", "replica")]))].0,
        Sel::of(l(&[("app", "pg"), ("role", "replica")]))
    );
}

#[test]
fn the_audit_names_the_app_network_and_tier_that_would_deny_a_flow() {
    let k = known();
    let (flows, s) = suggestion(Format::Hubble, HUBBLE);
    let mut intended = inputs(&s);
    // The intent forgot that api talks to db.
    let shop = intended.iter_mut().find(|a| a.namespace == "shop").unwrap();
    shop.spec
        .flows
        .retain(|f| !(f.from.tier.as_deref() == Some("api") && f.to.tier.as_deref() == Some("db")));
    let r = replay(&intended, &group(&flows), &k, Backend::NetworkPolicy, &[]).unwrap();
    assert!(!r.passed());
    let d: Vec<&crate::adopt::replay::Refusal> = r.denied.iter().collect();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(
        (d[0].from.as_str(), d[0].to.as_str(), d[0].port),
        ("shop/api-0", "shop/db-0", 5432)
    );
    assert_eq!(d[0].count, 1, "reported at both ends, counted once");
    assert_eq!(d[0].app_networks, ["shop/observed"]);
    assert!(
        d[0].why.iter().any(|w| w.contains("egress of tier api")),
        "{:?}",
        d[0].why
    );
    assert!(
        d[0].why.iter().any(|w| w.contains("ingress of tier db")),
        "{:?}",
        d[0].why
    );
}

#[test]
fn a_pod_in_no_tier_is_denied_by_its_namespace_baseline_and_the_audit_says_so() {
    let k = known();
    let (_, s) = suggestion(Format::Hubble, HUBBLE);
    let batch = k.pods.iter().find(|p| p.name.starts_with("batch")).unwrap();
    let flow = Observed {
        source: End::Pod {
            namespace: "shop".into(),
            labels: batch.labels.clone(),
            name: Some(batch.name.clone()),
            ip: batch.ip(),
        },
        destination: End::Address("203.0.113.10".parse().unwrap()),
        port: 443,
        protocol: Protocol::Tcp,
        outcome: Outcome::Forwarded,
        count: 1,
        first_record: 7,
    };
    let r = replay(&inputs(&s), &[flow], &k, Backend::NetworkPolicy, &[]).unwrap();
    assert_eq!(r.denied.len(), 1);
    assert_eq!(r.denied[0].app_networks, ["shop/observed"]);
    assert_eq!(
        r.denied[0].why,
        [
            "the egress end is in no tier, and the baseline of namespace shop denies its egress \
          (shop/tierflow-baseline)"
        ]
    );
}

#[test]
fn namespace_limits_which_app_networks_are_written_and_keeps_the_other_side_as_a_peer() {
    let flows = parse(Format::Hubble, HUBBLE).unwrap().flows;
    let s = suggest(
        &flows,
        &known(),
        &Options {
            namespaces: ["shop".to_string()].into(),
            ..options()
        },
    );
    let namespaces: Vec<&str> = s
        .app_networks
        .iter()
        .map(|a| a.namespace.as_str())
        .collect();
    assert_eq!(namespaces, ["shop"]);
    assert!(app(&s, "shop").spec.flows.iter().any(|f| {
        f.from.namespace.as_deref() == Some("monitoring") && f.to.tier.as_deref() == Some("api")
    }));
    // Still every observed flow into shop is allowed.
    let r = replay(
        &inputs(&s),
        &group(&flows),
        &known(),
        Backend::NetworkPolicy,
        &[],
    )
    .unwrap();
    assert!(r.passed(), "{r:#?}");
}

#[test]
fn a_record_with_labels_only_is_the_pod_with_exactly_its_stable_labels_first() {
    let pod = |name: &str, labels: &[(&str, &str)]| Pod {
        namespace: "shop".into(),
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Pod::default()
    };
    let k = Known::new(
        vec![
            pod("api-canary", &[("app", "api"), ("track", "canary")]),
            pod("api-1", &[("app", "api"), ("pod-template-hash", "x")]),
        ],
        BTreeMap::new(),
    );
    let end = End::Pod {
        namespace: "shop".into(),
        labels: [("app".to_string(), "api".to_string())].into(),
        name: None,
        ip: None,
    };
    assert_eq!(k.resolve(&end), Some(1));
}

#[test]
fn ipv6_addresses_are_grouped_by_their_own_prefix() {
    let o = Options {
        aggregate_v4: Some(24),
        aggregate_v6: Some(64),
        ..options()
    };
    assert_eq!(
        aggregate("2001:db8:1:2::7".parse().unwrap(), &o).to_string(),
        "2001:db8:1:2::/64"
    );
    assert_eq!(
        aggregate("2001:db8:1:2::7".parse().unwrap(), &options()).to_string(),
        "2001:db8:1:2::7/128"
    );
}

#[test]
fn the_api_server_calling_a_webhook_is_its_address() {
    let line = r#"{"flow":{"verdict":"FORWARDED","IP":{"source":"172.18.0.2","destination":"10.244.2.20"},"l4":{"TCP":{"source_port":50000,"destination_port":9443}},"source":{"identity":7,"labels":["reserved:kube-apiserver"]},"destination":{"namespace":"shop","labels":["k8s:app=api"],"pod_name":"api-0"},"traffic_direction":"INGRESS","is_reply":false}}"#;
    let flows = parse(Format::Hubble, line).unwrap().flows;
    let s = suggest(&flows, &known(), &options());
    let f = &app(&s, "shop").spec.flows[0];
    assert_eq!(f.from.cidr.as_deref(), Some("172.18.0.2/32"));
    assert_eq!(f.to.tier.as_deref(), Some("api"));
    let r = replay(&inputs(&s), &group(&flows), &known(), Backend::Calico, &[]).unwrap();
    assert!(r.passed() && r.checked == 1, "{r:#?}");
}

mod random {
    //! For random workloads and random observed flows between them (across two namespaces, and
    //! to outside addresses): the suggestion allows every observed flow and denies every
    //! connection between the same workloads (or to the same addresses) on the same ports that
    //! was never observed, wherever an AppNetwork governs an end.

    use proptest::prelude::*;

    use super::*;

    const NAMESPACES: [&str; 2] = ["a", "b"];
    const PORTS: [(u16, Protocol); 4] = [
        (80, Protocol::Tcp),
        (443, Protocol::Tcp),
        (5432, Protocol::Tcp),
        (9000, Protocol::Udp),
    ];
    const ADDRESSES: [&str; 3] = ["203.0.113.1", "203.0.113.2", "198.51.100.9"];

    #[derive(Clone, Debug)]
    enum To {
        Workload(usize, usize),
        Address(usize),
    }

    /// (namespace, replicas) per workload; flows as (workload, replica, to, port).
    #[allow(clippy::type_complexity)]
    fn world() -> impl Strategy<Value = (Vec<(usize, usize)>, Vec<(usize, usize, To, usize)>)> {
        prop::collection::vec((0..2usize, 1..=2usize), 2..=5).prop_flat_map(|ws| {
            let n = ws.len();
            let to = prop_oneof![
                3 => (0..n, 0..2usize).prop_map(|(w, r)| To::Workload(w, r)),
                1 => (0..ADDRESSES.len()).prop_map(To::Address),
            ];
            let flows = prop::collection::vec((0..n, 0..2usize, to, 0..PORTS.len()), 1..10);
            (Just(ws), flows)
        })
    }

    fn pod(ws: &[(usize, usize)], w: usize, r: usize) -> Pod {
        let (ns, replicas) = ws[w];
        let r = r % replicas;
        Pod {
            namespace: NAMESPACES[ns].into(),
            name: format!("w{w}-{r}"),
            labels: [
                ("app".to_string(), format!("w{w}")),
                ("pod-template-hash".to_string(), format!("h{w}")),
            ]
            .into(),
            ips: vec![format!("10.244.{w}.{}", r + 1).parse().unwrap()],
            ..Pod::default()
        }
    }

    fn end(p: &Pod) -> End {
        End::Pod {
            namespace: p.namespace.clone(),
            labels: [("app".to_string(), p.labels["app"].clone())].into(),
            name: Some(p.name.clone()),
            ip: p.ip(),
        }
    }

    fn observed(from: End, to: End, port: (u16, Protocol)) -> Observed {
        Observed {
            source: from,
            destination: to,
            port: port.0,
            protocol: port.1,
            outcome: Outcome::Forwarded,
            count: 1,
            first_record: 0,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn the_suggestion_allows_exactly_what_was_observed((ws, fs) in world()) {
            let pods: Vec<Pod> = (0..ws.len())
                .flat_map(|w| (0..ws[w].1).map(move |r| (w, r)))
                .map(|(w, r)| pod(&ws, w, r))
                .collect();
            let known = Known::new(pods.clone(), BTreeMap::new());
            let mut flows = Vec::new();
            let mut seen = BTreeSet::new();
            for (i, (w, r, to, port)) in fs.iter().enumerate() {
                let src = pod(&ws, *w, *r);
                let (dst, key) = match to {
                    To::Workload(v, r2) => {
                        let d = pod(&ws, *v, *r2);
                        if d.name == src.name {
                            continue;
                        }
                        (end(&d), format!("w{v}"))
                    }
                    To::Address(k) => (End::Address(ADDRESSES[*k].parse().unwrap()), ADDRESSES[*k].to_string()),
                };
                seen.insert((*w, key, *port));
                flows.push(Flow {
                    record: i + 1,
                    source: end(&src),
                    destination: dst,
                    port: PORTS[*port].0,
                    protocol: PORTS[*port].1,
                    outcome: Outcome::Forwarded,
                    count: 1,
                    seen_at: crate::adopt::flows::SeenAt::Source,
                });
            }
            prop_assume!(!flows.is_empty());
            let s = suggest(&flows, &known, &options());
            for a in &s.app_networks {
                prop_assert!(crate::validate::app_network(&a.name, &a.namespace, &a.spec).is_ok());
            }
            let governed: BTreeSet<&str> = s.app_networks.iter().map(|a| a.namespace.as_str()).collect();
            // Never observed, between the same workloads and addresses, on the same ports.
            let mut held_out = Vec::new();
            for a in &pods {
                let w: usize = a.name[1..a.name.find('-').unwrap()].parse().unwrap();
                for (p, port) in PORTS.iter().enumerate() {
                    for b in &pods {
                        let governs = governed.contains(a.namespace.as_str())
                            || governed.contains(b.namespace.as_str());
                        if b.name == a.name || !governs || seen.contains(&(w, b.labels["app"].clone(), p)) {
                            continue;
                        }
                        held_out.push(observed(end(a), end(b), *port));
                    }
                    for addr in ADDRESSES {
                        if governed.contains(a.namespace.as_str()) && !seen.contains(&(w, addr.to_string(), p)) {
                            held_out.push(observed(end(a), End::Address(addr.parse().unwrap()), *port));
                        }
                    }
                }
            }
            prop_assert!(!held_out.is_empty());
            for backend in [Backend::NetworkPolicy, Backend::Cilium] {
                let r = replay(&inputs(&s), &group(&flows), &known, backend, &[]).unwrap();
                prop_assert!(r.passed(), "{backend:?}: {:#?}\n{:#?}", r.denied, s.app_networks);
                let r = replay(&inputs(&s), &held_out, &known, backend, &[]).unwrap();
                prop_assert_eq!(r.denied.len(), held_out.len(), "{:?}: allowed never-observed connections; {:#?}", backend, s.app_networks);
            }
        }
    }
}

#[test]
fn an_app_network_in_audit_mode_is_replayed_as_it_would_enforce() {
    let k = known();
    let (flows, s) = suggestion(Format::Hubble, HUBBLE);
    let mut intended = inputs(&s);
    for a in &mut intended {
        a.spec.mode = crate::crd::ModeSpec::Audit;
        a.spec.flows.retain(|f| f.to.cidr.is_none());
    }
    // On NetworkPolicy an Audit AppNetwork is held by the planner; replayed, it is enforced.
    let r = replay(&intended, &group(&flows), &k, Backend::NetworkPolicy, &[]).unwrap();
    assert!(r.held.is_empty(), "{:?}", r.held);
    let to: Vec<&str> = r.denied.iter().map(|d| d.to.as_str()).collect();
    assert_eq!(to, ["203.0.113.10", "203.0.113.25"]);
}

fn known_of(yaml: &str) -> Known {
    let values: Vec<Value> = serde_yaml::Deserializer::from_str(yaml)
        .map(|d| {
            let y = <serde_yaml::Value as serde::Deserialize>::deserialize(d).unwrap();
            serde_json::to_value(y).unwrap()
        })
        .collect();
    Known::from_values(values).unwrap()
}

fn pod_end(k: &Known, name: &str) -> End {
    let p = k.pods.iter().find(|p| p.name == name).unwrap();
    End::Pod {
        namespace: p.namespace.clone(),
        labels: p.labels.clone(),
        name: Some(p.name.clone()),
        ip: p.ip(),
    }
}

fn connection(k: &Known, from: &str, to: &str, port: u16) -> Observed {
    Observed {
        source: pod_end(k, from),
        destination: pod_end(k, to),
        port,
        protocol: Protocol::Tcp,
        outcome: Outcome::Forwarded,
        count: 1,
        first_record: 0,
    }
}

#[test]
fn a_known_pod_never_seen_in_a_flow_is_not_selected_by_a_tier_that_shares_its_label() {
    // api-admin-0 carries api's `app: api` and more; it never shows up in a flow. Deciding
    // that `app: api` is unique among the observed pods only would give it api's access.
    let admin = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: api-admin-0\n  \
                 namespace: shop\n  labels: {app: api, component: admin}\n\
                 spec: {containers: [{name: a, image: a, ports: [{containerPort: 8080}]}]}\n\
                 status: {podIP: 10.244.2.21}\n";
    let k = known_of(&format!("{PODS}\n{admin}"));
    let flows = parse(Format::Hubble, HUBBLE).unwrap().flows;
    let s = suggest(&flows, &k, &options());
    let shop = app(&s, "shop");
    let api = shop
        .spec
        .tiers
        .iter()
        .position(|t| t.name == "api")
        .unwrap_or_else(|| panic!("{:#?}", shop.spec.tiers));
    assert_eq!(
        shop.tier_pods[api],
        BTreeSet::from(["shop/api-0".to_string()]),
        "{:#?}",
        shop.spec.tiers[api]
    );
    assert!(
        !shop
            .tier_pods
            .iter()
            .flatten()
            .any(|p| p == "shop/api-admin-0"),
        "{:#?}",
        shop.tier_pods
    );
    // Every observed flow is still allowed; the admin pod's connections, the ones api has,
    // are denied.
    let observed = group(&flows);
    let held_out = vec![
        connection(&k, "web-7c9f8d-aaaaa", "api-admin-0", 8080),
        connection(&k, "api-admin-0", "db-0", 5432),
    ];
    for backend in BACKENDS {
        let r = replay(&inputs(&s), &observed, &k, backend, &[]).unwrap();
        assert!(r.passed(), "{backend:?}: {:#?}", r.denied);
        let r = replay(&inputs(&s), &held_out, &k, backend, &[]).unwrap();
        assert_eq!(r.denied.len(), 2, "{backend:?}: {r:#?}");
    }
}

#[test]
fn a_workload_whose_pods_cannot_be_told_from_another_by_labels_is_left_out() {
    // Two pods of different owners with the very same labels: no selector tells them apart.
    let pods = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a-0\n  namespace: shop\n  \
                labels: {app: a}\n  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, \
                name: a, uid: u1, controller: true}]\nspec: {containers: [{name: a, image: a}]}\n\
                status: {podIP: 10.0.0.1}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  \
                name: b-0\n  namespace: shop\n  labels: {app: a}\n  ownerReferences: \
                [{apiVersion: apps/v1, kind: StatefulSet, name: b, uid: u2, controller: true}]\n\
                spec: {containers: [{name: a, image: a}]}\nstatus: {podIP: 10.0.0.2}\n";
    let k = known_of(pods);
    let flows = parse(Format::Csv, "shop,app=a,-,,203.0.113.1,443,TCP\n")
        .unwrap()
        .flows;
    let s = suggest(&flows, &k, &options());
    assert!(
        matches!(&s.left_out[..], [(_, LeftOut::Unselectable { other, .. })] if other == "shop/b-0"),
        "{:#?}",
        s.left_out
    );
}

#[test]
fn pods_are_grouped_into_workloads_by_their_owners_and_tiers_named_after_them() {
    // Two Deployments whose pods share `app: shop-api`; ReplicaSet names carry the
    // pod-template-hash, stripped to the Deployment's name. A third, never seen, is a
    // CronJob's Job.
    let pod = |name: &str, labels: &str, kind: &str, owner: &str, ip: &str| {
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\n  \
             labels: {labels}\n  ownerReferences: [{{apiVersion: apps/v1, kind: {kind}, \
             name: {owner}, uid: u, controller: true}}]\n\
             spec: {{containers: [{{name: c, image: c}}]}}\nstatus: {{podIP: {ip}}}\n"
        )
    };
    let yaml = [
        pod(
            "public-6d5f-aaaaa",
            "{app: shop-api, tier: public, pod-template-hash: 6d5f}",
            "ReplicaSet",
            "public-6d5f",
            "10.0.0.1",
        ),
        pod(
            "public-6d5f-bbbbb",
            "{app: shop-api, tier: public, pod-template-hash: 6d5f}",
            "ReplicaSet",
            "public-6d5f",
            "10.0.0.2",
        ),
        pod(
            "internal-77c8-ccccc",
            "{app: shop-api, tier: internal, pod-template-hash: 77c8}",
            "ReplicaSet",
            "internal-77c8",
            "10.0.0.3",
        ),
        pod(
            "report-29412345-ddddd",
            "{app: shop-api, tier: public, job-name: report-29412345}",
            "Job",
            "report-29412345",
            "10.0.0.4",
        ),
    ]
    .concat();
    let k = known_of(&yaml);
    assert_eq!(
        k.workload(0),
        Some(Workload::Owner {
            kind: "Deployment".into(),
            name: "public".into()
        })
    );
    assert_eq!(
        k.workload(3),
        Some(Workload::Owner {
            kind: "CronJob".into(),
            name: "report".into()
        })
    );
    let flows = parse(
        Format::Csv,
        "shop,app=shop-api;tier=public,-,,203.0.113.1,443,TCP\n\
         shop,app=shop-api;tier=internal,-,,203.0.113.2,443,TCP\n",
    )
    .unwrap()
    .flows;
    let s = suggest(&flows, &k, &options());
    assert!(s.left_out.is_empty(), "{:#?}", s.left_out);
    let shop = app(&s, "shop");
    let names: Vec<&str> = shop.spec.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["internal", "public"]);
    assert_eq!(
        shop.tier_pods,
        [
            BTreeSet::from(["shop/internal-77c8-ccccc".to_string()]),
            BTreeSet::from([
                "shop/public-6d5f-aaaaa".to_string(),
                "shop/public-6d5f-bbbbb".to_string()
            ]),
        ],
        "{:#?}",
        shop.spec.tiers
    );
    for backend in BACKENDS {
        let r = replay(&inputs(&s), &group(&flows), &k, backend, &[]).unwrap();
        assert!(r.passed(), "{backend:?}: {r:#?}");
    }
}

#[test]
fn the_owner_of_a_pod_is_its_controller_with_replica_sets_and_scheduled_jobs_lifted() {
    let pod = |labels: Value, refs: Value| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": labels, "ownerReferences": refs}})
    };
    let owner = |kind: &str, name: &str| {
        Some(Workload::Owner {
            kind: kind.into(),
            name: name.into(),
        })
    };
    let r = |kind: &str, name: &str, controller: bool| serde_json::json!({"kind": kind, "name": name, "controller": controller});
    for (labels, refs, want) in [
        (
            serde_json::json!({"pod-template-hash": "6d5f"}),
            serde_json::json!([r("ReplicaSet", "web-6d5f", true)]),
            owner("Deployment", "web"),
        ),
        // A ReplicaSet of its own (no hash suffix) stays one.
        (
            serde_json::json!({}),
            serde_json::json!([r("ReplicaSet", "web", true)]),
            owner("ReplicaSet", "web"),
        ),
        (
            serde_json::json!({}),
            serde_json::json!([r("DaemonSet", "agent", true)]),
            owner("DaemonSet", "agent"),
        ),
        (
            serde_json::json!({}),
            serde_json::json!([r("Job", "report-29412345", true)]),
            owner("CronJob", "report"),
        ),
        (
            serde_json::json!({}),
            serde_json::json!([r("Job", "migrate-2", true)]),
            owner("Job", "migrate-2"),
        ),
        // The controller wins over an earlier owner that is not.
        (
            serde_json::json!({}),
            serde_json::json!([r("ConfigMap", "c", false), r("StatefulSet", "db", true)]),
            owner("StatefulSet", "db"),
        ),
        (serde_json::json!({}), serde_json::json!([]), None),
    ] {
        assert_eq!(owner_of(&pod(labels, refs.clone())), want, "{refs}");
    }
}
