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

use std::process::ExitCode;

use wsbox_guest::{poll_any, publish, Message, Subscription, Waitable};
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
        _ => Err("usage: topics-client relay TOPIC N | topics-client checks".into()),
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
