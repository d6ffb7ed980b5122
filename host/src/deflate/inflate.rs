//! Inflates the messages of one direction (RFC 7692 section 7.2.2) in bounded steps, so that a bomb costs one step of memory.
//!
//! A stream that does not inflate is invalid data within a message, so the
//! connection fails with 1007 (invalid frame payload data), as Node `ws` and
//! uWebSockets do; 1002 stays for frame-level violations (RSV1 without the
//! extension, on a control frame or on a continuation frame). RFC 7692 names
//! no code, and Autobahn sections 12 and 13 send no corrupt streams.

use super::compress::TAIL;
use super::negotiate::StreamParams;
use flate2::{Decompress, FlushDecompress, Status};

/// An empty stored block. Fed after a message's tail, it inflates to nothing
/// only if the message ended on a block boundary, as RFC 7692 section 7.2.1
/// has senders end it; a truncated message fails here.
const EMPTY_BLOCK: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

/// The inflater of the messages we receive. It holds zlib's state only while
/// it needs it: with context takeover from the first compressed message on,
/// without it only within a message.
#[derive(Debug)]
pub struct Inflater {
    params: StreamParams,
    stream: Option<Decompress>,
    /// How much of [`TAIL`] this message has fed.
    tail: usize,
    /// The stream ended in a block with BFINAL set (RFC 7692 section
    /// 7.2.3.4); more data starts a new stream, without the old window.
    ended: bool,
    /// Inflated bytes of the current (or just finished) message.
    message_len: u64,
    /// The last call finished a message; the next one starts another.
    between: bool,
}

/// Why [`Inflater::inflate`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `out` is full: call again with the rest of the input.
    OutputFull,
    /// All the input is used and the message goes on: call again with the
    /// next frame's payload.
    NeedsInput,
    /// The message is complete.
    MessageEnd,
}

/// What one [`Inflater::inflate`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of `input` used.
    pub consumed: usize,
    /// Bytes written at the start of `out`.
    pub written: usize,
    /// Why it returned.
    pub step: Step,
}

/// A compressed message that does not inflate: the connection fails with
/// 1007. The inflater is of no further use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid permessage-deflate data: {0}")]
pub struct InflateError(String);

impl Inflater {
    /// An inflater for what `params` allow the peer (`Params::receive`).
    /// It allocates nothing until the first compressed message.
    pub fn new(params: StreamParams) -> Self {
        Inflater {
            params,
            stream: None,
            tail: 0,
            ended: false,
            message_len: 0,
            between: true,
        }
    }

    /// Inflates a compressed message's payload as its frames arrive. `input`
    /// is (the rest of) a frame's payload; `fin` says it is the message's
    /// last frame. Writes at most `out.len()` bytes, so the caller bounds
    /// memory and can stop at its size limit (see [`Self::message_len`])
    /// before inflating more. Call again while the step is `OutputFull`,
    /// with `input[consumed..]`. `out` must not be empty.
    // Long: one loop over zlib's steps whose exits (output full, message
    // end, stream error) share its state; split, they would pass it around.
    pub fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut [u8],
    ) -> Result<Progress, InflateError> {
        if self.between {
            self.between = false;
            self.message_len = 0;
        }
        let (mut consumed, mut written) = (0, 0);
        let progress = |consumed, written, step| {
            Ok(Progress {
                consumed,
                written,
                step,
            })
        };
        loop {
            if written == out.len() {
                return progress(consumed, written, Step::OutputFull);
            }
            let rest = &input[consumed..];
            if self.ended {
                if !rest.is_empty() {
                    self.stream = None;
                    self.ended = false;
                } else if fin {
                    // A final block ended the message; its tail is not needed.
                    self.finish();
                    return progress(consumed, written, Step::MessageEnd);
                } else {
                    return progress(consumed, written, Step::NeedsInput);
                }
            }
            let feeding_tail = rest.is_empty() && fin;
            let source = if feeding_tail {
                &TAIL[self.tail..]
            } else {
                rest
            };
            let bits = self.params.window_bits.clamp(9, 15);
            let stream = self
                .stream
                .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
            let (used, made, status) = run(stream, source, &mut out[written..])?;
            if feeding_tail {
                self.tail += used;
            } else {
                consumed += used;
            }
            written += made;
            self.message_len += made as u64;
            if status == Status::StreamEnd {
                self.ended = true;
                continue;
            }
            if used > 0 || made > 0 {
                continue;
            }
            // No progress with room left in `out`: zlib wants more input.
            if !rest.is_empty() || (feeding_tail && self.tail < TAIL.len()) {
                return Err(InflateError("the stream stopped making progress".into()));
            }
            if !fin {
                return progress(consumed, written, Step::NeedsInput);
            }
            let mut scratch = [0u8; 1];
            match run(stream, &EMPTY_BLOCK, &mut scratch) {
                Ok((5, 0, Status::Ok | Status::BufError)) => {}
                _ => {
                    return Err(InflateError(
                        "the message does not end on a deflate block boundary (is it truncated?)"
                            .into(),
                    ))
                }
            }
            self.finish();
            return progress(consumed, written, Step::MessageEnd);
        }
    }

    /// Inflated bytes of the message in progress, or of the one just
    /// finished, to check against the size limit (1009).
    pub fn message_len(&self) -> u64 {
        self.message_len
    }

    /// Whether it holds zlib state now. Without context takeover it holds
    /// none between messages.
    pub fn holds_state(&self) -> bool {
        self.stream.is_some()
    }

    fn finish(&mut self) {
        self.tail = 0;
        self.between = true;
        if self.params.no_context_takeover || self.ended {
            self.stream = None;
            self.ended = false;
        }
    }
}

/// One zlib call: bytes used, bytes made, status.
fn run(
    stream: &mut Decompress,
    input: &[u8],
    out: &mut [u8],
) -> Result<(usize, usize, Status), InflateError> {
    let (in0, out0) = (stream.total_in(), stream.total_out());
    let status = stream
        .decompress(input, out, FlushDecompress::None)
        .map_err(|e| InflateError(e.message().unwrap_or("corrupt deflate stream").to_string()))?;
    Ok((
        (stream.total_in() - in0) as usize,
        (stream.total_out() - out0) as usize,
        status,
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::compress::tests::{params, sample};
    use super::super::compress::Compressor;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Inflates one message given as frames, `step` bytes at a time.
    pub(in crate::deflate) fn inflate_frames(
        inflater: &mut Inflater,
        frames: &[&[u8]],
        step: usize,
    ) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        for (i, frame) in frames.iter().enumerate() {
            let fin = i + 1 == frames.len();
            let mut at = 0;
            loop {
                let p = inflater.inflate(&frame[at..], fin, &mut buf)?;
                assert!(p.written <= step);
                at += p.consumed;
                out.extend_from_slice(&buf[..p.written]);
                match p.step {
                    Step::OutputFull => continue,
                    Step::NeedsInput => {
                        assert!(!fin && at == frame.len());
                        break;
                    }
                    Step::MessageEnd => {
                        assert!(fin && at == frame.len());
                        assert_eq!(inflater.message_len(), out.len() as u64);
                        return Ok(out);
                    }
                }
            }
        }
        unreachable!("the last frame ends the message")
    }

    fn inflate1(inflater: &mut Inflater, payload: &[u8]) -> Result<Vec<u8>, InflateError> {
        inflate_frames(inflater, &[payload], 7)
    }

    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    #[test]
    fn rfc_7692_examples() {
        let mut i = Inflater::new(params(15, true));
        // 7.2.3.1: one compressed block, in one frame and in two.
        assert_eq!(inflate1(&mut i, &HELLO).unwrap(), b"Hello");
        assert_eq!(
            inflate_frames(&mut i, &[&HELLO[..3], &HELLO[3..]], 2).unwrap(),
            b"Hello"
        );
        // 7.2.3.3: a block with no compression.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate1(&mut i, &stored).unwrap(), b"Hello");
        // 7.2.3.4: a block with BFINAL set, then the empty block.
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(inflate1(&mut i, &bfinal).unwrap(), b"Hello");
        // ... or without it, as some senders do.
        assert_eq!(inflate1(&mut i, &bfinal[..7]).unwrap(), b"Hello");
        // An empty final fixed block (PHP's empty message).
        assert_eq!(inflate1(&mut i, &[0x03, 0x00]).unwrap(), b"");
        // 7.2.3.5: two blocks in one message.
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(inflate1(&mut i, &two).unwrap(), b"Hello");
        // 7.2.3.6: an empty fragment ends a message.
        assert_eq!(
            inflate_frames(&mut i, &[&two[..8], &[0x00]], 3).unwrap(),
            b"He"
        );
        assert_eq!(inflate1(&mut i, &[0x00]).unwrap(), b"");
        assert!(!i.holds_state());
    }

    #[test]
    fn rfc_7692_shared_window() {
        // 7.2.3.2: the second "Hello" refers to the first.
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let mut kept = Inflater::new(params(15, false));
        assert_eq!(inflate1(&mut kept, &HELLO).unwrap(), b"Hello");
        assert_eq!(inflate1(&mut kept, &second).unwrap(), b"Hello");
        assert!(kept.holds_state());
        // Without takeover the window is empty: the reference is invalid.
        let mut reset = Inflater::new(params(15, true));
        assert_eq!(inflate1(&mut reset, &HELLO).unwrap(), b"Hello");
        let err = inflate1(&mut reset, &second).unwrap_err();
        assert!(
            err.to_string().contains("invalid distance too far back"),
            "{err}"
        );
    }

    /// Round trips through our compressor, every window size, takeover or
    /// not, random frame cuts and random step sizes.
    #[test]
    fn round_trips() {
        let mut rng = StdRng::seed_from_u64(5);
        for bits in 8..=15 {
            for no_takeover in [false, true] {
                let mut c = Compressor::new(params(bits, no_takeover));
                let mut i = Inflater::new(params(bits, no_takeover));
                for m in 0..5u64 {
                    let message = sample(
                        m + u64::from(bits) * 10,
                        rng.random_range(0..100_000),
                        40_000,
                    );
                    let payload = c.compress_message(&message).unwrap();
                    let mut frames = Vec::new();
                    let mut at = 0;
                    while at < payload.len() {
                        let n = rng
                            .random_range(1..=payload.len() - at)
                            .min(rng.random_range(1..5000));
                        frames.push(&payload[at..at + n]);
                        at += n;
                    }
                    if frames.is_empty() || rng.random_bool(0.2) {
                        frames.push(&[]);
                    }
                    let step = rng.random_range(1..20_000);
                    let got = inflate_frames(&mut i, &frames, step).unwrap();
                    assert!(
                        got == message,
                        "{bits} bits, no takeover {no_takeover}, message {m}"
                    );
                    assert_eq!(i.holds_state(), !no_takeover);
                }
            }
        }
    }

    #[test]
    fn corrupt_and_truncated_streams_fail() {
        let message = sample(1, 50_000, 20_000);
        let payload = Compressor::new(params(15, true))
            .compress_message(&message)
            .unwrap();
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("reserved block type", vec![0x07, 0x00]),
            (
                "stored lengths that disagree",
                vec![0x00, 0x05, 0x00, 0x00, 0x00, b'H'],
            ),
            (
                "garbage",
                (0..200u8).map(|b| b.wrapping_mul(77) | 0x06).collect(),
            ),
            (
                "truncated in a block",
                payload[..payload.len() / 2].to_vec(),
            ),
            (
                "truncated by one byte",
                payload[..payload.len() - 1].to_vec(),
            ),
            ("truncated Hello", HELLO[..3].to_vec()),
            ("an empty payload", vec![]),
            ("the tail left in", [&payload[..], &TAIL[..]].concat()),
            ("a stored block cut in its header", vec![0x00, 0x05, 0x00]),
        ];
        for (what, data) in bad {
            for no_takeover in [false, true] {
                let mut i = Inflater::new(params(15, no_takeover));
                let got = inflate1(&mut i, &data);
                assert!(
                    got.is_err(),
                    "{what}: inflated to {} bytes",
                    got.map(|v| v.len()).unwrap_or(0)
                );
            }
        }
        assert_eq!(
            inflate1(&mut Inflater::new(params(15, true)), &payload).unwrap(),
            message
        );
    }

    #[test]
    fn no_state_between_messages_without_takeover() {
        let mut i = Inflater::new(params(15, true));
        assert!(!i.holds_state());
        let p = i.inflate(&HELLO[..3], false, &mut [0u8; 64]).unwrap();
        assert_eq!(p.step, Step::NeedsInput);
        assert!(i.holds_state());
        let p = i.inflate(&HELLO[3..], true, &mut [0u8; 64]).unwrap();
        assert_eq!((p.step, i.message_len()), (Step::MessageEnd, 5));
        assert!(!i.holds_state());
        let mut kept = Inflater::new(params(15, false));
        assert!(!kept.holds_state());
        inflate1(&mut kept, &HELLO).unwrap();
        assert!(kept.holds_state());
    }

    /// Output comes in steps of at most `out.len()`, the input is held back
    /// while the output is full, and the count is the inflated size.
    #[test]
    fn steps_are_bounded() {
        let zeros = vec![0u8; 1 << 20];
        let payload = Compressor::new(params(15, true))
            .compress_message(&zeros)
            .unwrap();
        assert!(payload.len() < 2000, "{}", payload.len());
        let mut i = Inflater::new(params(15, true));
        let mut buf = [0u8; 1000];
        let mut at = 0;
        let mut calls = 0;
        loop {
            let p = i.inflate(&payload[at..], true, &mut buf).unwrap();
            at += p.consumed;
            calls += 1;
            assert!(buf[..p.written].iter().all(|&b| b == 0));
            assert_eq!(i.message_len(), (calls * 1000).min(1 << 20) as u64);
            if p.step == Step::MessageEnd {
                break;
            }
            assert_eq!((p.step, p.written), (Step::OutputFull, 1000));
        }
        assert_eq!(at, payload.len());
        assert_eq!(calls, (1 << 20) / 1000 + 1);
        assert_eq!(i.message_len(), 1 << 20);
        // The count holds after the end, and restarts with the next message.
        let p = i.inflate(&HELLO, true, &mut buf).unwrap();
        assert_eq!(
            (p.written, p.step, i.message_len()),
            (5, Step::MessageEnd, 5)
        );
    }
}
