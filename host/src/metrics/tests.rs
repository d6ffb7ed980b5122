//! Unit tests of the metrics: bounded labels, guards, trap kinds.

use super::labels::{CloseLabel, StatusLabel};
use super::*;
use crate::cpu::CpuLimitExceeded;
use std::collections::HashSet;

/// However many codes peers and guests choose, the label takes a bounded
/// set of values: the codes a frame may carry, the three reported ones,
/// and `invalid`.
#[test]
fn close_code_labels_are_bounded() {
    let labels: HashSet<CloseLabel> = (0..=u16::MAX)
        .map(|code| CloseLabel::from(CloseCode::from(code)))
        .collect();
    let allowed = 4 + 7 + 2000; // 1000-1003, 1007-1013, 3000-4999
    assert_eq!(labels.len(), allowed + 3 + 1);
    for (code, want) in [
        (1000, CloseLabel::Code(1000)),
        (1005, CloseLabel::Code(1005)),
        (1006, CloseLabel::Code(1006)),
        (1015, CloseLabel::Code(1015)),
        (4999, CloseLabel::Code(4999)),
        (1004, CloseLabel::Invalid),
        (1014, CloseLabel::Invalid),
        (2999, CloseLabel::Invalid),
        (5000, CloseLabel::Invalid),
        (0, CloseLabel::Invalid),
        (u16::MAX, CloseLabel::Invalid),
    ] {
        assert_eq!(CloseLabel::from(CloseCode::from(code)), want, "{code}");
    }
}

/// Whatever status a handler's `reject` chooses, the status label takes
/// one of eleven numbers or `other`.
#[test]
fn status_labels_are_bounded() {
    let statuses: HashSet<StatusLabel> = (0..=u16::MAX).map(StatusLabel::from).collect();
    assert_eq!(statuses.len(), 11 + 1);
    for status in [101, 400, 401, 403, 404, 409, 426, 429, 431, 500, 503] {
        assert_eq!(StatusLabel::from(status), StatusLabel::Code(status));
    }
    for status in [
        0,
        100,
        200,
        402,
        418,
        451,
        499,
        501,
        502,
        599,
        600,
        u16::MAX,
    ] {
        assert_eq!(StatusLabel::from(status), StatusLabel::Other, "{status}");
    }
    // What /metrics shows: a handler rejecting with 418, 451 and 599 adds
    // one series, `other`, beside its named neighbours.
    let metrics = Metrics::new();
    for status in [101, 429, 418, 451, 599] {
        metrics.upgrade_answered(status);
    }
    let text = metrics.encode();
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("wsbox_upgrades_total{"))
        .collect();
    assert_eq!(series.len(), 3, "{text}");
    assert!(
        text.contains("wsbox_upgrades_total{status=\"other\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("wsbox_upgrades_total{status=\"429\"} 1"),
        "{text}"
    );
}

#[test]
fn guards_count_while_they_live() {
    let metrics = Metrics::new();
    let chat: Arc<str> = "/chat".into();
    let first = metrics.connection_opened(&chat);
    let second = metrics.connection_opened(&chat);
    let instance = metrics.instance_alive();
    drop(first);
    let text = metrics.encode();
    assert!(
        text.contains("wsbox_connections_open{route=\"/chat\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("wsbox_connections_total{route=\"/chat\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("wsbox_instances_alive 1\n"), "{text}");
    drop((second, instance));
    let text = metrics.encode();
    assert!(
        text.contains("wsbox_connections_open{route=\"/chat\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("wsbox_instances_alive 0\n"), "{text}");
}

#[test]
fn trap_kinds_come_from_the_errors_types() {
    use crate::limiter::LimitExceeded;
    let second = Duration::from_secs(1);
    let deadline = wasmtime::Error::from(CpuLimitExceeded::Deadline(second));
    assert_eq!(TrapKind::of(&deadline), TrapKind::CpuDeadline);
    // Found under the context wasmtime adds (the wasm backtrace).
    let budget = wasmtime::Error::from(CpuLimitExceeded::Budget(second))
        .context("error while executing at wasm backtrace");
    assert_eq!(TrapKind::of(&budget), TrapKind::CpuBudget);
    let memory = wasmtime::Error::from(LimitExceeded::Sum {
        what: "linear memory",
        wanted: 300 << 20,
    });
    assert_eq!(TrapKind::of(&memory), TrapKind::Memory);
    // Not by its words: a message that reads like the limit is other.
    let lookalike = wasmtime::Error::msg("forcing trap when growing memory to 300 pages");
    assert_eq!(TrapKind::of(&lookalike), TrapKind::Other);
    let other = wasmtime::Error::from(wasmtime::Trap::UnreachableCodeReached);
    assert_eq!(TrapKind::of(&other), TrapKind::Other);
}
