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
    let statuses: HashSet<StatusLabel> = (0..=u16::MAX).map(StatusLabel::from).collect();
    assert_eq!(statuses.len(), 500 + 1);
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
