//! wsbox serve with headless Chromium as the client: text and binary echo, and each side's view of the close (CloseEvent code, reason, wasClean versus the guest's query-close-status) in both directions.

use wsbox::ServeConfig;
use wsbox_tests::browser::run_browser;
use wsbox_tests::serve;

#[tokio::test]
async fn the_browser_closes_and_each_side_sees_what_the_other_sent() {
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    let report = run_browser(&served.url("/browser"), "echo", &[]).await.json;
    assert_eq!(report["opened"], true, "{report:#}");
    let messages = report["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{report:#}");
    assert_eq!(messages[0]["type"], "text");
    assert_eq!(messages[0]["data"], "hello from the browser");
    assert_eq!(messages[1]["type"], "binary");
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
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    let report = run_browser(
        &served.url("/"),
        "wait-close",
        &[("text", "close-me 4000 bye")],
    )
    .await
    .json;
    let close = &report["close"];
    assert_eq!(close["code"], 4000, "{report:#}");
    assert_eq!(close["reason"], "bye");
    assert_eq!(close["wasClean"], true);
    assert!(served.log_line("close ->").await.ends_with("close -> ok"));
}

#[tokio::test]
async fn the_browser_negotiates_a_subprotocol_with_router() {
    let served = serve("router", ServeConfig::default()).await;
    let report = run_browser(&served.url("/chat"), "echo", &[("protocols", "chat.v1")])
        .await
        .json;
    assert_eq!(report["protocol"], "chat.v1", "{report:#}");
    assert_eq!(
        report["messages"][0]["data"], "chat: hello from the browser",
        "{report:#}"
    );
    // router answers the browser's close like echo: with the browser's code.
    assert_eq!(report["close"]["code"], 3001, "{report:#}");
    assert_eq!(report["close"]["wasClean"], true);
}
