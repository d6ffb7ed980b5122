//! `--cpu-budget` bounds the CPU time of a whole instance: a guest that computes in short stretches between host calls, forever, never reaches the CPU deadline, but traps at its budget.

use std::sync::Arc;
use std::time::Duration;
use wsbox::{Config, Exit, InstanceLimits, Output, Runner};
use wsbox_tests::{run_component, wat_component};

fn limits(cpu_budget: Option<Duration>) -> InstanceLimits {
    InstanceLimits {
        cpu_deadline: Duration::from_millis(200),
        cpu_budget,
        ..InstanceLimits::default()
    }
}

#[tokio::test]
async fn a_guest_that_keeps_calling_the_host_traps_at_its_cpu_budget() {
    let path = wat_component("spin_and_call");
    let out = run_component(
        &path,
        "spin_and_call",
        (Config::default(), limits(Some(Duration::from_millis(500)))),
        &[],
    )
    .await;
    match &out.exit {
        Exit::Trap(message) => assert!(message.contains("CPU budget"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn without_a_budget_the_cpu_deadline_alone_does_not_stop_it() {
    let runner = Runner::new().unwrap();
    let component = runner.load(wat_component("spin_and_call")).unwrap();
    let args = ["spin_and_call".to_string()];
    let limits = limits(None);
    let run = runner.run_limited(
        &component,
        Arc::new(Config::default()),
        &limits,
        &args,
        Output::Capture,
    );
    // Ten times the deadline: every stretch between host calls is short.
    let ended = tokio::time::timeout(Duration::from_secs(2), run).await;
    assert!(
        ended.is_err(),
        "it ended: {:?}",
        ended.map(|r| r.map(|o| o.exit))
    );
}
