//! Compresses the messages of one direction (RFC 7692 section 7.2.1), whole or piece by piece.

use super::negotiate::StreamParams;
use flate2::{Compress, Compression, FlushCompress};

/// The last 4 bytes of a sync flush (the LEN and NLEN of an empty stored
/// block). RFC 7692 removes them from the end of each compressed message;
/// the receiver appends them back.
pub(super) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib's default level, which Node `ws` and Python `websockets` use too.
const LEVEL: u32 = 6;

/// The compressor of the messages we send. It holds zlib's state only while
/// it needs it: with context takeover from the first message on, without it
/// only between a message's first and last piece.
#[derive(Debug)]
pub struct Compressor {
    params: StreamParams,
    stream: Option<Compress>,
}

/// zlib refused to compress: a bug, not a peer's doing (the connection
/// fails with 1011).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permessage-deflate compression failed: {0}")]
pub struct CompressError(String);

impl Compressor {
    /// A compressor for what `params` allow our side (`Params::send`).
    /// It allocates nothing until the first message.
    pub fn new(params: StreamParams) -> Self {
        Compressor {
            params,
            stream: None,
        }
    }

    /// Compresses one piece of a message and appends it to `out`: the
    /// payload of one frame (RSV1 goes on the message's first frame only).
    /// `fin` marks the message's last piece. Each piece is sync-flushed, so
    /// its frame can go out at once and the peer can inflate it; the last
    /// piece's output loses the `00 00 ff ff` tail.
    pub fn compress(
        &mut self,
        piece: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        // zlib cannot compress with 8 bits; at 9 its matches reach back at
        // most 512 - 262 = 250 bytes, within the peer's 256-byte window.
        let bits = self.params.window_bits.clamp(9, 15);
        let stream = self.stream.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(LEVEL), false, bits)
        });
        let start = out.len();
        let mut consumed = 0;
        loop {
            let want = (piece.len() - consumed) / 4 + 64;
            if out.capacity() - out.len() < want {
                out.reserve(want);
            }
            let before = stream.total_in();
            stream
                .compress_vec(&piece[consumed..], out, FlushCompress::Sync)
                .map_err(|e| CompressError(e.to_string()))?;
            consumed += (stream.total_in() - before) as usize;
            // zlib stops short of a full buffer only once the flush is done.
            if consumed == piece.len() && out.len() < out.capacity() {
                break;
            }
        }
        if fin {
            if out[start..].ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else if out.len() == start {
                // zlib writes nothing for a flush right after a flush (an
                // empty last piece, or an empty message with takeover). An
                // empty stored block's header, whose tail the peer appends,
                // ends the message (RFC 7692 section 7.2.3.6).
                out.push(0x00);
            } else {
                return Err(CompressError(
                    "the sync flush did not end in 00 00 ff ff".into(),
                ));
            }
            if self.params.no_context_takeover {
                self.stream = None;
            }
        }
        Ok(())
    }

    /// Compresses a whole message: the payload of its one frame, or of its
    /// frames once cut.
    #[cfg(test)]
    pub fn compress_message(&mut self, message: &[u8]) -> Result<Vec<u8>, CompressError> {
        let mut out = Vec::new();
        self.compress(message, true, &mut out)?;
        Ok(out)
    }

    /// Whether it holds zlib state now. Without context takeover it holds
    /// none between messages.
    #[cfg(test)]
    pub fn holds_state(&self) -> bool {
        self.stream.is_some()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::reference::Reference;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    pub(in crate::deflate) fn params(window_bits: u8, no_context_takeover: bool) -> StreamParams {
        StreamParams {
            window_bits,
            no_context_takeover,
        }
    }

    /// Text-like data: random words, repeated at random distances up to
    /// `reach` bytes back, so that matches span every window size.
    pub(in crate::deflate) fn sample(seed: u64, len: usize, reach: usize) -> Vec<u8> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            if data.len() > 64 && rng.random_bool(0.5) {
                let back = rng.random_range(1..=reach.min(data.len()));
                let n = rng.random_range(3..=40).min(back);
                let at = data.len() - back;
                data.extend_from_within(at..at + n);
            } else {
                for _ in 0..rng.random_range(1..12) {
                    data.push(rng.random_range(b'a'..=b'z'));
                }
                data.push(b' ');
            }
        }
        data.truncate(len);
        data
    }

    /// Decodes the messages as a peer would, with a decoder independent of
    /// zlib; checks that no match reaches back farther than `bits` allow.
    pub(in crate::deflate) fn peer_inflate(
        bits: u8,
        takeover: bool,
        messages: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut peer = Reference::default();
        let out = messages
            .iter()
            .map(|payload| peer.message(payload, takeover))
            .collect::<Result<Vec<_>, _>>()?;
        if peer.max_distance > 1 << bits {
            return Err(format!(
                "a match reaches {} bytes back, past the {bits}-bit window",
                peer.max_distance
            ));
        }
        Ok(out)
    }

    #[test]
    fn rfc_7692_hello() {
        // Section 7.2.3.1: "Hello" in one compressed block.
        let mut c = Compressor::new(params(15, true));
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(c.compress_message(b"Hello").unwrap(), hello);
        // Without takeover the next "Hello" starts afresh.
        assert_eq!(c.compress_message(b"Hello").unwrap(), hello);
        // Section 7.2.3.2: with takeover the second refers to the first.
        let mut c = Compressor::new(params(15, false));
        assert_eq!(c.compress_message(b"Hello").unwrap(), hello);
        assert_eq!(
            c.compress_message(b"Hello").unwrap(),
            [0xf2, 0x00, 0x11, 0x00, 0x00]
        );
    }

    #[test]
    fn empty_messages_and_pieces_are_one_zero_byte() {
        // Section 7.2.3.6: an empty fragment is 0x00, whatever zlib writes.
        for takeover in [false, true] {
            let mut c = Compressor::new(params(15, !takeover));
            assert_eq!(c.compress_message(b"").unwrap(), [0x00]);
            assert_eq!(c.compress_message(b"").unwrap(), [0x00]);
            let mut first = Vec::new();
            c.compress(b"Hello", false, &mut first).unwrap();
            assert!(first.ends_with(&TAIL), "{first:02x?}");
            let mut last = Vec::new();
            c.compress(b"", true, &mut last).unwrap();
            assert_eq!(last, [0x00]);
            let whole = [first, last].concat();
            let messages = [vec![0x00], vec![0x00], whole];
            let got = peer_inflate(15, takeover, &messages).unwrap();
            assert_eq!(got, [b"".to_vec(), b"".to_vec(), b"Hello".to_vec()]);
        }
    }

    /// Every window size, with and without takeover, through an inflater
    /// with exactly the negotiated window: 8 included, which zlib compresses
    /// with 9 bits.
    #[test]
    fn round_trips_at_every_window_size() {
        for bits in 8..=15 {
            for no_takeover in [false, true] {
                let mut c = Compressor::new(params(bits, no_takeover));
                let messages: Vec<Vec<u8>> = (0..6)
                    .map(|i| {
                        sample(
                            i * 31 + u64::from(bits),
                            [0, 1, 100, 5000, 70_000, 100_000][i as usize],
                            40_000,
                        )
                    })
                    .collect();
                let compressed: Vec<Vec<u8>> = messages
                    .iter()
                    .map(|m| c.compress_message(m).unwrap())
                    .collect();
                let got = peer_inflate(bits, !no_takeover, &compressed)
                    .unwrap_or_else(|e| panic!("{bits} bits, no takeover {no_takeover}: {e}"));
                assert!(got == messages, "{bits} bits, no takeover {no_takeover}");
                let (raw, packed): (usize, usize) = (
                    messages.iter().map(Vec::len).sum(),
                    compressed.iter().map(Vec::len).sum(),
                );
                assert!(packed < raw * 3 / 4, "{bits} bits: {packed} of {raw}");
            }
        }
    }

    /// The window check above is real: the same data reaches far back with
    /// 15 bits, and stays within 250 bytes at 8 bits (zlib's 9).
    #[test]
    fn eight_bits_stay_within_256_bytes() {
        let data = sample(7, 50_000, 600);
        let wide = Compressor::new(params(15, true))
            .compress_message(&data)
            .unwrap();
        let err = peer_inflate(8, false, std::slice::from_ref(&wide)).unwrap_err();
        assert!(err.contains("past the 8-bit window"), "{err}");
        let narrow = Compressor::new(params(8, true))
            .compress_message(&data)
            .unwrap();
        let mut peer = Reference::default();
        assert_eq!(peer.message(&narrow, false).unwrap(), data);
        assert!(
            peer.max_distance > 200 && peer.max_distance <= 250,
            "{}",
            peer.max_distance
        );
    }

    #[test]
    fn context_takeover_is_kept_or_reset() {
        let message = sample(3, 4000, 4000);
        let mut reset = Compressor::new(params(15, true));
        let mut kept = Compressor::new(params(15, false));
        let first = reset.compress_message(&message).unwrap();
        assert_eq!(reset.compress_message(&message).unwrap(), first);
        assert_eq!(kept.compress_message(&message).unwrap(), first);
        let again = kept.compress_message(&message).unwrap();
        assert!(
            again.len() < first.len() / 10,
            "{} vs {}",
            again.len(),
            first.len()
        );
        // The peer needs the first message's context for the second.
        assert_eq!(
            peer_inflate(15, true, &[first.clone(), again.clone()]).unwrap(),
            [message.clone(), message]
        );
        assert!(peer_inflate(15, false, &[first, again]).is_err());
    }

    #[test]
    fn no_state_between_messages_without_takeover() {
        let mut c = Compressor::new(params(15, true));
        assert!(!c.holds_state());
        let mut out = Vec::new();
        c.compress(b"part one ", false, &mut out).unwrap();
        assert!(c.holds_state());
        c.compress(b"part two", true, &mut out).unwrap();
        assert!(!c.holds_state());
        let mut kept = Compressor::new(params(15, false));
        assert!(!kept.holds_state());
        kept.compress_message(b"x").unwrap();
        assert!(kept.holds_state());
    }

    /// Piece by piece, each piece's output is complete by itself (a peer
    /// inflates it as it comes), and the pieces make one valid message.
    #[test]
    fn pieces_stream_and_make_a_valid_message() {
        let mut rng = StdRng::seed_from_u64(11);
        for bits in [9, 12, 15] {
            for no_takeover in [false, true] {
                let mut c = Compressor::new(params(bits, no_takeover));
                let mut messages = Vec::new();
                let mut compressed = Vec::new();
                for m in 0..4 {
                    let message = sample(m + 100, rng.random_range(0..200_000), 30_000);
                    let mut payload = Vec::new();
                    let mut at = 0;
                    loop {
                        let n = rng.random_range(0..=20_000).min(message.len() - at);
                        let fin = at + n == message.len() && rng.random_bool(0.7);
                        let before = payload.len();
                        c.compress(&message[at..at + n], fin, &mut payload).unwrap();
                        at += n;
                        if fin {
                            break;
                        }
                        // A non-final piece ends in a flush, unless it added
                        // nothing to the one before.
                        assert!(
                            payload[before..].ends_with(&TAIL)
                                || (payload.len() == before && n == 0),
                            "piece of {n} bytes: {:02x?}",
                            &payload[before..]
                        );
                        // Everything given so far can be inflated now.
                        let partial = payload[..payload.len().saturating_sub(TAIL.len())].to_vec();
                        if no_takeover && !payload.is_empty() {
                            assert_eq!(
                                peer_inflate(bits, false, &[partial]).unwrap(),
                                [message[..at].to_vec()]
                            );
                        }
                    }
                    messages.push(message);
                    compressed.push(payload);
                }
                let got = peer_inflate(bits, !no_takeover, &compressed).unwrap();
                assert!(got == messages, "{bits} bits, no takeover {no_takeover}");
            }
        }
    }
}
