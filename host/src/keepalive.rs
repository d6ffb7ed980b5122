//! When to ping a silent peer and when to give up on it (`--keepalive`, `--keepalive-timeout`), as pure state.
//!
//! The connection's driver tells the state when the peer was last heard
//! from ([`Keepalive::heard`]: any byte read, or the reader held back by a
//! full inbound buffer, which means the peer sent more than was read) and
//! asks it what to do at the instant it returns ([`Keepalive::poll`]): wait
//! until then, send one ping, or abort. A connection silent for the
//! interval gets one ping; with nothing from the peer within the timeout
//! after it, it is aborted, exactly as a TCP reset. Only what the peer
//! sends counts: a guest that keeps sending to a vanished peer does not
//! keep it alive. Guests never see these pings, nor the pongs (the host
//! gives no pong to guests).

use std::time::{Duration, Instant};

/// The payload of the host's keepalive pings, so that they can be told
/// apart on the wire.
pub(crate) const PING_PAYLOAD: &[u8] = b"wsbox-keepalive";

/// When the host pings a silent peer, and when it gives up on it
/// (`--keepalive`, `--keepalive-timeout`); as WinHTTP's
/// `WINHTTP_OPTION_WEB_SOCKET_KEEPALIVE_INTERVAL`, or uWebSockets'
/// `idleTimeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// How long the peer may be silent before the host pings it.
    pub interval: Duration,
    /// How long the host waits for any frame after its ping.
    pub timeout: Duration,
}

impl KeepaliveConfig {
    /// The interval that turns keepalive off (`wsbox run`'s default):
    /// [`new`](Self::new) gives `None` for it.
    pub const OFF: Duration = Duration::ZERO;

    /// The default of `wsbox serve`: a ping after 30 s of silence, abort 10
    /// s later.
    pub const SERVE_DEFAULT: KeepaliveConfig = KeepaliveConfig {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
    };

    /// The settings for `--keepalive INTERVAL` and `--keepalive-timeout
    /// TIMEOUT`: `None` (keepalive off) for an interval of zero.
    pub fn new(interval: Duration, timeout: Duration) -> Result<Option<KeepaliveConfig>, String> {
        if interval.is_zero() {
            return Ok(None);
        }
        if timeout.is_zero() {
            return Err("--keepalive-timeout must be more than 0s: write e.g. 10s, or turn keepalive off with --keepalive 0s".into());
        }
        Ok(Some(KeepaliveConfig { interval, timeout }))
    }
}

/// What the driver should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing until this instant (or until a frame arrives); then poll
    /// again.
    WaitUntil(Instant),
    /// Send one ping with [`PING_PAYLOAD`] now, then poll again.
    Ping,
    /// The peer is gone: abort the connection.
    Abort,
}

/// The keepalive state of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Keepalive {
    config: KeepaliveConfig,
    last_heard: Instant,
    pinged: Option<Instant>,
}

impl Keepalive {
    /// A connection that opened (or was last heard from) at `now`.
    pub(crate) fn new(config: KeepaliveConfig, now: Instant) -> Keepalive {
        Keepalive {
            config,
            last_heard: now,
            pinged: None,
        }
    }

    /// The peer was heard from at `at` (an instant already reported may
    /// come again: it changes nothing). Heard at or after the ping, it
    /// answers it.
    pub(crate) fn heard(&mut self, at: Instant) {
        if at <= self.last_heard {
            return;
        }
        self.last_heard = at;
        if self.pinged.is_some_and(|pinged| at >= pinged) {
            self.pinged = None;
        }
    }

    /// What to do at `now`. [`Action::Ping`] is returned once per silence:
    /// the state counts the ping as sent at `now`.
    pub(crate) fn poll(&mut self, now: Instant) -> Action {
        match self.pinged {
            Some(pinged) => {
                let give_up = pinged + self.config.timeout;
                if now >= give_up {
                    Action::Abort
                } else {
                    Action::WaitUntil(give_up)
                }
            }
            None => {
                let ping_at = self.last_heard + self.config.interval;
                if now >= ping_at {
                    self.pinged = Some(now);
                    Action::Ping
                } else {
                    Action::WaitUntil(ping_at)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn config() -> KeepaliveConfig {
        KeepaliveConfig {
            interval: 30 * SECOND,
            timeout: 10 * SECOND,
        }
    }

    #[test]
    fn a_silent_peer_is_pinged_then_aborted() {
        let start = Instant::now();
        let mut k = Keepalive::new(config(), start);
        assert_eq!(k.poll(start), Action::WaitUntil(start + 30 * SECOND));
        assert_eq!(
            k.poll(start + 29 * SECOND),
            Action::WaitUntil(start + 30 * SECOND)
        );
        assert_eq!(k.poll(start + 30 * SECOND), Action::Ping);
        // One ping per silence.
        assert_eq!(
            k.poll(start + 30 * SECOND),
            Action::WaitUntil(start + 40 * SECOND)
        );
        assert_eq!(
            k.poll(start + 39 * SECOND),
            Action::WaitUntil(start + 40 * SECOND)
        );
        assert_eq!(k.poll(start + 40 * SECOND), Action::Abort);
        assert_eq!(k.poll(start + 41 * SECOND), Action::Abort);
    }

    /// A late wake-up pings at once, and the timeout runs from the ping.
    #[test]
    fn the_timeout_runs_from_the_ping() {
        let start = Instant::now();
        let mut k = Keepalive::new(config(), start);
        assert_eq!(k.poll(start + 35 * SECOND), Action::Ping);
        assert_eq!(
            k.poll(start + 44 * SECOND),
            Action::WaitUntil(start + 45 * SECOND)
        );
        assert_eq!(k.poll(start + 45 * SECOND), Action::Abort);
    }

    #[test]
    fn any_frame_keeps_a_live_peer() {
        let start = Instant::now();
        let mut k = Keepalive::new(config(), start);
        // A peer that talks now and then is never pinged.
        k.heard(start + 20 * SECOND);
        assert_eq!(
            k.poll(start + 30 * SECOND),
            Action::WaitUntil(start + 50 * SECOND)
        );
        // An idle peer answers the ping: the silence starts over.
        assert_eq!(k.poll(start + 50 * SECOND), Action::Ping);
        k.heard(start + 51 * SECOND);
        assert_eq!(
            k.poll(start + 60 * SECOND),
            Action::WaitUntil(start + 81 * SECOND)
        );
        // Forever, for a peer that answers every ping.
        for round in 0..100u32 {
            let ping_at = start + 81 * SECOND + round * 31 * SECOND;
            assert_eq!(k.poll(ping_at), Action::Ping, "round {round}");
            k.heard(ping_at + SECOND);
        }
    }

    /// The driver reports the last instant heard on every turn: the same
    /// one again does not answer the ping, nor does one from before it.
    #[test]
    fn only_what_is_heard_after_the_ping_answers_it() {
        let start = Instant::now();
        let mut k = Keepalive::new(config(), start);
        k.heard(start + 5 * SECOND);
        assert_eq!(k.poll(start + 35 * SECOND), Action::Ping);
        k.heard(start + 5 * SECOND);
        assert_eq!(
            k.poll(start + 36 * SECOND),
            Action::WaitUntil(start + 45 * SECOND)
        );
        // Read before the ping, reported after it.
        k.heard(start + 34 * SECOND);
        assert_eq!(
            k.poll(start + 40 * SECOND),
            Action::WaitUntil(start + 45 * SECOND)
        );
        assert_eq!(k.poll(start + 45 * SECOND), Action::Abort);
    }

    #[test]
    fn an_old_instant_does_not_move_the_silence_back() {
        let start = Instant::now();
        let mut k = Keepalive::new(config(), start + 10 * SECOND);
        k.heard(start);
        assert_eq!(
            k.poll(start + 39 * SECOND),
            Action::WaitUntil(start + 40 * SECOND)
        );
    }

    #[test]
    fn settings() {
        assert_eq!(KeepaliveConfig::new(Duration::ZERO, 10 * SECOND), Ok(None));
        assert_eq!(
            KeepaliveConfig::new(30 * SECOND, 10 * SECOND),
            Ok(Some(KeepaliveConfig::SERVE_DEFAULT))
        );
        let err = KeepaliveConfig::new(30 * SECOND, Duration::ZERO).unwrap_err();
        assert!(
            err.contains("--keepalive-timeout") && err.contains("--keepalive 0s"),
            "{err}"
        );
    }
}
