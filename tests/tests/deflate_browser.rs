//! Headless Chromium against `wsbox serve --deflate`: the page's `ws.extensions` names permessage-deflate, a 1 MiB compressible text round-trips, closes with codes in both directions behave as without compression; without `--deflate` the same browser gets no extension.

use wsbox::{DeflateConfig, ServeConfig};
use wsbox_tests::browser::run_browser;
use wsbox_tests::serve;

fn deflate_serve() -> ServeConfig {
    let mut config = ServeConfig::default();
    config.websocket.deflate = DeflateConfig::enabled();
    config
}

fn assert_deflate(report: &serde_json::Value) {
    let extensions = report["extensions"].as_str().unwrap_or_default();
    assert!(
        extensions.starts_with("permessage-deflate"),
        "ws.extensions is {extensions:?}: {report:#}"
    );
}

#[tokio::test]
async fn a_megabyte_of_text_round_trips_compressed() {
    let served = serve("echo", deflate_serve()).await;
    let report = run_browser(&served.url("/"), "big-text", &[]).await.json;
    assert_deflate(&report);
    let messages = report["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{report:#}");
    assert_eq!(messages[0]["type"], "text");
    assert_eq!(messages[0]["len"], 1 << 20, "{report:#}");
    assert_eq!(messages[0]["text_pattern_ok"], true);
    // echo answers the browser's close with its code.
    assert_eq!(report["close"]["code"], 3001, "{report:#}");
    assert_eq!(report["close"]["wasClean"], true);
}

#[tokio::test]
async fn the_browser_closes_and_each_side_sees_what_the_other_sent() {
    let mut served = serve("close-reporter", deflate_serve()).await;
    let report = run_browser(&served.url("/browser"), "echo", &[]).await.json;
    assert_deflate(&report);
    let messages = report["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{report:#}");
    assert_eq!(messages[0]["data"], "hello from the browser");
    assert_eq!(messages[1]["len"], 1000, "{report:#}");
    assert_eq!(messages[1]["pattern_ok"], true);
    let close = &report["close"];
    assert_eq!(close["code"], 4001, "{report:#}");
    assert_eq!(close["reason"], "seen:3001:from browser");
    assert_eq!(close["wasClean"], true);
    let line = served.log_line("query-close-status").await;
    assert!(
        line.ends_with(r#"query-close-status = ok(3001 "from browser")"#),
        "{line}"
    );
}

#[tokio::test]
async fn the_guest_closes_and_the_browser_sees_its_code_and_reason() {
    let mut served = serve("close-reporter", deflate_serve()).await;
    let report = run_browser(
        &served.url("/"),
        "wait-close",
        &[("text", "close-me 4000 bye")],
    )
    .await
    .json;
    assert_deflate(&report);
    let close = &report["close"];
    assert_eq!(close["code"], 4000, "{report:#}");
    assert_eq!(close["reason"], "bye");
    assert_eq!(close["wasClean"], true);
    assert!(served.log_line("close ->").await.ends_with("close -> ok"));
}

#[tokio::test]
async fn without_deflate_the_browser_gets_no_extension() {
    let served = serve("echo", ServeConfig::default()).await;
    let report = run_browser(&served.url("/"), "big-text", &[]).await.json;
    assert_eq!(report["extensions"], "", "{report:#}");
    assert_eq!(report["messages"][0]["text_pattern_ok"], true, "{report:#}");
    assert_eq!(report["close"]["code"], 3001, "{report:#}");
}
