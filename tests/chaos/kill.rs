//! The operator SIGKILLed at random moments during a large reconcile and restarted, many times:
//! it converges every time; nothing is orphaned, duplicated or half-written; and, replaying the
//! recorded watch history in revision order, no tier that had its policy was ever without it and
//! no baseline came before the allows.

use std::time::Duration;

use crate::harness::{self, stats, Operator, OperatorOptions, Rng};
use crate::recorder::Recorder;
use crate::workload::{Workload, APP};

/// How long convergence may take after a restart.
const CONVERGE: Duration = Duration::from_secs(90);

async fn kill_loop(name: &str, namespaces: usize, kills: usize) {
    let Some(sc) = harness::setup(name).await else {
        return;
    };
    let client = sc.cluster.client.clone();
    let mut rng = Rng::from_env(name);
    let wl = Workload::create(&client, name, namespaces, true).await;
    let prefix = format!("{}-", wl.run);
    let rec = Recorder::start(&client, move |ns| ns.starts_with(&prefix)).await;
    let tiers: Vec<String> = ["frontend", "api", "database"]
        .iter()
        .map(|t| format!("tierflow-{APP}-{t}"))
        .collect();

    let opts = OperatorOptions::default();
    let mut op = Operator::start(&sc, "tierflow", &opts);
    let mut version = 0u32;
    let mut cb_variant = 0u32;
    wl.apply_apps(version).await;
    let initial = wl.converge(CONVERGE).await;
    // How long the reconcile of a new intent takes here, measured once without a kill: kills
    // land inside such a window, counted from the operator's first write for the new intent.
    version += 1;
    let writes = |m: Option<harness::Metrics>| m.map(|m| m.object_writes()).unwrap_or(0.0);
    let before = writes(op.metrics().await);
    let started = std::time::Instant::now();
    wl.apply_apps(version).await;
    wl.converge(CONVERGE).await;
    let window = started.elapsed().max(Duration::from_millis(100));
    assert!(
        writes(op.metrics().await) > before,
        "the operator wrote nothing"
    );

    let (mut mid_reconcile, mut after_convergence) = (0, 0);
    let (mut during_startup, mut updates_while_down) = (0, 0);
    let mut converge_times = Vec::new();
    for i in 0..kills {
        // New intent everywhere (every third time also a new ClusterBaseline, which changes every
        // covered namespace's baseline), and the kill somewhere inside the reconcile it starts.
        version += 1;
        let delay = Duration::from_millis(rng.below(window.as_millis() as u64 / 2 + 1));
        let before = writes(op.metrics().await);
        let change = async {
            wl.apply_apps(version).await;
            if i % 3 == 0 {
                wl.set_cb(cb_variant + 1).await;
            }
        };
        let kill = async {
            // Once the operator has started writing the new intent (or after 2 s), somewhere
            // within the first half of the window (the rest of it is the test's own polling).
            harness::poll(Duration::from_secs(2), || async {
                (writes(op.metrics().await) > before).then_some(())
            })
            .await;
            tokio::time::sleep(delay).await;
            assert!(
                op.exited().is_none(),
                "the operator exited on its own: {:?}; log {}",
                op.exited(),
                op.log.display()
            );
            op.sigkill();
        };
        futures::join!(change, kill);
        if i % 3 == 0 {
            cb_variant += 1;
        }
        // Where the kill landed: some objects already at the new intent and some not yet is a
        // reconcile cut in the middle.
        if let Ok(state) = wl.inspect().await {
            if state.current > 0 && state.current < state.desired {
                mid_reconcile += 1;
            } else if state.current == state.desired && state.problems.is_empty() {
                after_convergence += 1;
            }
        }
        // Sometimes the intent changes again while no operator runs (a lost update would show).
        if rng.one_in(3) {
            version += 1;
            updates_while_down += 1;
            wl.apply_apps(version).await;
        }
        op = Operator::start(&sc, "tierflow", &opts);
        // Sometimes it is killed again while it starts up and catches up.
        if rng.one_in(4) {
            tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
            op.sigkill();
            during_startup += 1;
            op = Operator::start(&sc, "tierflow", &opts);
        }
        let t = wl.converge(CONVERGE).await;
        converge_times.push(t);
    }
    rec.stop();
    let deletions = rec.deletions();
    let uncovered: Vec<String> = wl
        .namespaces
        .iter()
        .filter(|ns| !wl.covered.contains(*ns))
        .cloned()
        .collect();
    let order = rec.baseline_before_allows(&uncovered, &tiers);
    let objects = wl.check().await.unwrap_or_default();
    eprintln!(
        "CHAOS-REPORT {name}: {namespaces} namespaces ({} covered by the ClusterBaseline), \
         {objects} managed objects; initial convergence {initial:.2?}, reconcile of a new \
         intent {window:.2?}; {} SIGKILLs during \
         reconciles ({mid_reconcile} with the objects partly at the new intent, \
         {after_convergence} after convergence), {during_startup} more during start-up, {updates_while_down} intent changes while no operator ran; \
         convergence after restart: {}; {} recorded changes, recorder relists {}; deletions: \
         {}; baseline-before-allows violations: {}",
        wl.covered.len(),
        kills,
        stats(&converge_times),
        rec.changes().len(),
        rec.relists(),
        deletions.len(),
        order.len()
    );
    op.sigkill();
    wl.teardown().await;
    assert!(
        deletions.is_empty(),
        "a policy tierflow wanted was deleted: {deletions:#?}"
    );
    assert!(
        order.is_empty(),
        "a baseline came before the allows: {order:#?}"
    );
}

/// Fast variant (part of `make test`): 10 namespaces, 5 kills.
#[tokio::test]
async fn sigkill_during_reconcile_converges_every_time() {
    kill_loop("kill-fast", 10, 5).await;
}

/// Slow variant (`make chaos`): 30 namespaces, 60 kills.
#[tokio::test]
#[ignore = "slow: run with make chaos"]
async fn sigkill_during_reconcile_converges_every_time_60_kills_30_namespaces() {
    kill_loop("kill-slow", 30, 60).await;
}
