//! `topics-client`: a client guest that uses topics through a subscription
//! of its own, for the tests.
//!
//! - `topics-client relay TOPIC N`: opens a subscription to TOPIC, publishes
//!   `ready` to `TOPIC/ready`, then waits (with `poll`) for N messages and
//!   prints each as `got: TEXT` or `got: binary LEN bytes`, and publishes
//!   `done` to `TOPIC/ready`.
//! - `topics-client checks`: prints what the host answers to invalid topic
//!   names, a publication to its own subscription, a queue past its budget
//!   (run it with a `--topic-buffer` under 1500 bytes) and the
//!   `--max-topics` limit, one line each.
//! - `topics-client join URL TOPIC`: connects to URL, joins TOPIC (so the
//!   host writes the topic's messages to the server, masked as a client's
//!   frames), publishes `ready` to `TOPIC/ready`, then prints each message
//!   the server sends as `got: TEXT` until the server's close, which it
//!   answers.
//! - `topics-client join-then trap|drop URL TOPIC`: connects to URL (an
//!   echo server), joins TOPIC, publishes `ready` to `TOPIC/ready` and
//!   waits for one message from the server (`got: TEXT`). Then `trap`
//!   traps; `drop` drops the websocket, publishes `dropped` to
//!   `TOPIC/ready` and waits for a message on `TOPIC/exit` before it exits.
//! - `topics-client limit URL`: opens a subscription, connects to URL (an
//!   echo server) and joins `limit/0`, `limit/1`, ... until an error, then
//!   prints what joining again, leaving, an invalid name and a closed
//!   websocket give, one line each (run it with `--max-topics 5`).
//! - `topics-client both URL TOPIC N`: connects to URL, opens a
//!   subscription to TOPIC and publishes `ready` to `TOPIC/ready`. Then one
//!   `poll_any` over the websocket and the subscription together takes N
//!   messages from whichever is ready, printing each as `socket: TEXT` or
//!   `topic: TEXT`. Then it reads the subscription with `messages()`,
//!   printing `messages: TEXT`; after a message `pause` it waits for one
//!   message from the server first. The error that ends `messages()` is
//!   printed as `messages: ERROR`, its end as `messages ended`. Every line
//!   is also sent to the server, which can wait for it; at the end the
//!   guest closes with 1000.

use std::process::ExitCode;

use wsbox_guest::{
    poll_any, publish, CloseCode, Incoming, Message, Subscription, Waitable, WebSocket,
};
use wsbox_guest_common::{exit_with, Describe};

fn main() -> ExitCode {
    exit_with(run())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["relay", topic, count] => {
            let count: usize = count.parse().map_err(|_| "N must be a number")?;
            relay(topic, count)
        }
        ["checks"] => {
            checks();
            Ok(())
        }
        ["join", url, topic] => join(url, topic),
        ["join-then", then, url, topic] => join_then(then, url, topic),
        ["limit", url] => limit(url),
        ["both", url, topic, count] => {
            let count: usize = count.parse().map_err(|_| "N must be a number")?;
            both(url, topic, count)
        }
        _ => Err(
            "usage: topics-client relay TOPIC N | checks | join URL TOPIC \
                  | join-then trap|drop URL TOPIC | limit URL | both URL TOPIC N"
                .into(),
        ),
    }
}

fn describe(result: Result<(), wsbox_guest::Error>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) => e.code().describe(),
    }
}

fn show(received: Result<Message, wsbox_guest::Error>) -> String {
    match received {
        Ok(Message::Text(text)) => format!("text {text}"),
        Ok(Message::Binary(data)) => format!("binary {} bytes", data.len()),
        Err(e) => e.code().describe(),
    }
}

fn relay(topic: &str, count: usize) -> Result<(), String> {
    let subscription = Subscription::open(topic).map_err(|e| format!("open: {e}"))?;
    let ready = format!("{topic}/ready");
    publish(&ready, &Message::Text("ready".into())).map_err(|e| format!("publish: {e}"))?;
    let mut received = 0;
    while received < count {
        for _ in poll_any(&[&subscription as &dyn Waitable]) {
            match subscription
                .receive()
                .map_err(|e| format!("receive: {e}"))?
            {
                Message::Text(text) => println!("got: {text}"),
                Message::Binary(data) => println!("got: binary {} bytes", data.len()),
            }
            received += 1;
        }
    }
    publish(&ready, &Message::Text("done".into())).map_err(|e| format!("publish: {e}"))?;
    Ok(())
}

fn checks() {
    let long = "x".repeat(256);
    println!("open empty: {}", describe(Subscription::open("").map(drop)));
    println!(
        "open 256 bytes: {}",
        describe(Subscription::open(&long).map(drop))
    );
    println!(
        "publish control: {}",
        describe(publish("a\nb", &Message::Text("x".into())))
    );

    // If names were patterns, `*` would get `>`'s message first.
    let own = Subscription::open(">").expect("open >");
    let star = Subscription::open("*").expect("open *");
    println!(
        "publish >: {}",
        describe(publish(">", &Message::Text("to >".into())))
    );
    println!(
        "publish *: {}",
        describe(publish("*", &Message::Text("to *".into())))
    );
    println!("> got: {}", show(own.receive()));
    println!("* got: {}", show(star.receive()));
    drop(star);

    let flood = Subscription::open("flood").expect("open flood");
    for _ in 0..3 {
        let big = Message::Binary(vec![0; 600]);
        println!("publish 600 bytes: {}", describe(publish("flood", &big)));
    }
    for _ in 0..3 {
        println!("flood: {}", describe(flood.receive().map(drop)));
    }
    drop(flood);
    drop(own);

    let mut held = Vec::new();
    loop {
        match Subscription::open(&format!("limit/{}", held.len())) {
            Ok(subscription) => held.push(subscription),
            Err(e) => {
                println!("opened {}, then: {}", held.len(), e.code().describe());
                break;
            }
        }
    }
    held.pop();
    println!(
        "after dropping one: {}",
        describe(Subscription::open("limit/again").map(drop))
    );
}

/// Connects to `url` and joins `topic`, then says `ready` on `TOPIC/ready`.
fn connect_and_join(url: &str, topic: &str) -> Result<WebSocket, String> {
    let ws = WebSocket::connect(url).map_err(|e| format!("connect: {e}"))?;
    ws.join(topic).map_err(|e| format!("join: {e}"))?;
    publish(&format!("{topic}/ready"), &Message::Text("ready".into()))
        .map_err(|e| format!("publish: {e}"))?;
    Ok(ws)
}

fn join(url: &str, topic: &str) -> Result<(), String> {
    let ws = connect_and_join(url, topic)?;
    for message in ws.messages() {
        println!("got: {}", show(message));
    }
    if let Ok(status) = ws.close_status() {
        ws.answer_close(&status)
            .map_err(|e| format!("answer: {e}"))?;
    }
    Ok(())
}

fn join_then(then: &str, url: &str, topic: &str) -> Result<(), String> {
    let ws = connect_and_join(url, topic)?;
    match ws.receive() {
        Ok(Incoming::Message(message)) => println!("got: {}", show(Ok(message))),
        other => return Err(format!("expected a message, got {other:?}")),
    }
    match then {
        "trap" => panic!("trapping on purpose, joined to {topic}"),
        "drop" => {
            let exit = Subscription::open(&format!("{topic}/exit")).map_err(|e| e.to_string())?;
            drop(ws);
            publish(&format!("{topic}/ready"), &Message::Text("dropped".into()))
                .map_err(|e| format!("publish: {e}"))?;
            exit.receive().map_err(|e| format!("receive: {e}"))?;
            Ok(())
        }
        other => Err(format!("join-then {other}: use trap or drop")),
    }
}

fn limit(url: &str) -> Result<(), String> {
    let _subscription = Subscription::open("limit/own").map_err(|e| format!("open: {e}"))?;
    let ws = WebSocket::connect(url).map_err(|e| format!("connect: {e}"))?;
    let mut joined = 0;
    let error = loop {
        match ws.join(&format!("limit/{joined}")) {
            Ok(()) => joined += 1,
            Err(e) => break e,
        }
    };
    println!("joined {joined}, then: {}", error.code().describe());
    println!("join limit/0 again: {}", describe(ws.join("limit/0")));
    println!("leave never-joined: {}", describe(ws.leave("never")));
    println!("leave limit/0: {}", describe(ws.leave("limit/0")));
    println!("join limit/again: {}", describe(ws.join("limit/again")));
    println!("join control: {}", describe(ws.join("a\u{7}b")));
    ws.close(CloseCode::Normal, "")
        .map_err(|e| format!("close: {e}"))?;
    println!("join after close: {}", describe(ws.join("limit/late")));
    Ok(())
}

fn both(url: &str, topic: &str, count: usize) -> Result<(), String> {
    let ws = WebSocket::connect(url).map_err(|e| format!("connect: {e}"))?;
    let subscription = Subscription::open(topic).map_err(|e| format!("open: {e}"))?;
    publish(&format!("{topic}/ready"), &Message::Text("ready".into()))
        .map_err(|e| format!("publish: {e}"))?;
    let report = |line: String| {
        println!("{line}");
        ws.send_text(&line).map_err(|e| format!("send: {e}"))
    };
    let mut received = 0;
    while received < count {
        for ready in poll_any(&[&ws as &dyn Waitable, &subscription]) {
            let line = match ready {
                0 => match ws.receive() {
                    Ok(Incoming::Message(message)) => format!("socket: {}", show(Ok(message))),
                    other => return Err(format!("expected a message, got {other:?}")),
                },
                _ => format!("topic: {}", show(subscription.receive())),
            };
            report(line)?;
            received += 1;
        }
    }
    for message in subscription.messages() {
        let pause = matches!(&message, Ok(Message::Text(text)) if text == "pause");
        report(format!("messages: {}", show(message)))?;
        if pause {
            match ws.receive() {
                Ok(Incoming::Message(_)) => {}
                other => return Err(format!("expected a message, got {other:?}")),
            }
        }
    }
    report("messages ended".into())?;
    ws.close(CloseCode::Normal, "")
        .map_err(|e| format!("close: {e}"))
}
