//! A small, slow DEFLATE decoder (RFC 1951) independent of zlib, that reports how far back matches reach (tests only).
//!
//! zlib-rs cannot judge window sizes: its inflater always keeps 32 KiB of
//! history, so a stream that breaks a 256-byte window inflates there. This
//! decoder records the farthest match distance instead.

use super::compress::TAIL;

/// Decodes the messages of one direction, as a peer would.
#[derive(Debug, Default)]
pub(super) struct Reference {
    /// Everything decoded since the last reset: the matches' history.
    history: Vec<u8>,
    /// The farthest back any match reached.
    pub max_distance: usize,
}

impl Reference {
    /// Decodes one message's payload, with the tail appended. With
    /// `takeover` off, earlier messages are not history.
    pub fn message(&mut self, payload: &[u8], takeover: bool) -> Result<Vec<u8>, String> {
        if !takeover {
            self.history.clear();
        }
        let start = self.history.len();
        let input = [payload, &TAIL[..]].concat();
        let mut bits = Bits {
            data: &input,
            pos: 0,
        };
        while bits.pos < input.len() * 8 {
            let last = bits.take(1)?;
            match bits.take(2)? {
                0 => self.stored(&mut bits)?,
                1 => self.codes(&mut bits, &fixed_lengths(), &fixed_distances())?,
                2 => {
                    let (lengths, distances) = dynamic(&mut bits)?;
                    self.codes(&mut bits, &lengths, &distances)?
                }
                _ => return Err("reserved block type".into()),
            }
            if last == 1 {
                break;
            }
        }
        Ok(self.history[start..].to_vec())
    }

    fn stored(&mut self, bits: &mut Bits) -> Result<(), String> {
        bits.pos = bits.pos.next_multiple_of(8);
        let len = bits.take(16)?;
        if bits.take(16)? != !len & 0xffff {
            return Err("stored block lengths disagree".into());
        }
        for _ in 0..len {
            let byte = bits.take(8)? as u8;
            self.history.push(byte);
        }
        Ok(())
    }

    fn codes(
        &mut self,
        bits: &mut Bits,
        lengths: &Huffman,
        distances: &Huffman,
    ) -> Result<(), String> {
        const LEN_BASE: [usize; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
            115, 131, 163, 195, 227, 258,
        ];
        const LEN_EXTRA: [usize; 29] = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ];
        const DIST_BASE: [usize; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
            1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ];
        const DIST_EXTRA: [usize; 30] = [
            0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
            12, 13, 13,
        ];
        loop {
            let symbol = lengths.decode(bits)?;
            match symbol {
                0..=255 => self.history.push(symbol as u8),
                256 => return Ok(()),
                257..=285 => {
                    let i = symbol - 257;
                    let len = LEN_BASE[i] + bits.take(LEN_EXTRA[i])?;
                    let d = distances.decode(bits)?;
                    if d >= 30 {
                        return Err("bad distance code".into());
                    }
                    let dist = DIST_BASE[d] + bits.take(DIST_EXTRA[d])?;
                    if dist > self.history.len() {
                        return Err(format!("distance {dist} reaches before the start"));
                    }
                    self.max_distance = self.max_distance.max(dist);
                    for _ in 0..len {
                        let byte = self.history[self.history.len() - dist];
                        self.history.push(byte);
                    }
                }
                _ => return Err("bad length code".into()),
            }
        }
    }
}

/// Reads bits least significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Result<usize, String> {
        let mut value = 0;
        for i in 0..n {
            let byte = *self
                .data
                .get(self.pos / 8)
                .ok_or("the stream ends inside a block")?;
            value |= usize::from((byte >> (self.pos % 8)) & 1) << i;
            self.pos += 1;
        }
        Ok(value)
    }
}

/// A canonical Huffman code: how many codes of each length, and the
/// symbols in code order.
struct Huffman {
    count: [usize; 16],
    symbols: Vec<usize>,
}

impl Huffman {
    fn new(lengths: &[usize]) -> Self {
        let mut count = [0; 16];
        for &len in lengths {
            count[len] += 1;
        }
        count[0] = 0;
        let mut symbols = Vec::new();
        for len in 1..16 {
            symbols.extend((0..lengths.len()).filter(|&s| lengths[s] == len));
        }
        Huffman { count, symbols }
    }

    fn decode(&self, bits: &mut Bits) -> Result<usize, String> {
        let (mut code, mut first, mut index) = (0, 0, 0);
        for len in 1..16 {
            code |= bits.take(1)?;
            let count = self.count[len];
            if code < first + count {
                return Ok(self.symbols[index + code - first]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("no such Huffman code".into())
    }
}

fn fixed_lengths() -> Huffman {
    let lengths: Vec<usize> = (0..288)
        .map(|s| match s {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        })
        .collect();
    Huffman::new(&lengths)
}

fn fixed_distances() -> Huffman {
    Huffman::new(&[5; 30])
}

fn dynamic(bits: &mut Bits) -> Result<(Huffman, Huffman), String> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let lengths = bits.take(5)? + 257;
    let distances = bits.take(5)? + 1;
    let code_lengths = bits.take(4)? + 4;
    let mut cl = [0; 19];
    for &i in &ORDER[..code_lengths] {
        cl[i] = bits.take(3)?;
    }
    let cl = Huffman::new(&cl);
    let mut all = Vec::new();
    while all.len() < lengths + distances {
        match cl.decode(bits)? {
            len @ 0..=15 => all.push(len),
            16 => {
                let prev = *all.last().ok_or("repeat with no previous length")?;
                let n = 3 + bits.take(2)?;
                all.extend(std::iter::repeat_n(prev, n));
            }
            17 => {
                let n = 3 + bits.take(3)?;
                all.extend(std::iter::repeat_n(0, n));
            }
            _ => {
                let n = 11 + bits.take(7)?;
                all.extend(std::iter::repeat_n(0, n));
            }
        }
    }
    if all.len() != lengths + distances {
        return Err("code lengths overrun".into());
    }
    Ok((Huffman::new(&all[..lengths]), Huffman::new(&all[lengths..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_rfc_7692_examples() {
        let mut r = Reference::default();
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(r.message(&hello, true).unwrap(), b"Hello");
        assert_eq!(
            r.message(&[0xf2, 0x00, 0x11, 0x00, 0x00], true).unwrap(),
            b"Hello"
        );
        assert_eq!(r.max_distance, 5);
        assert!(r.message(&[0xf2, 0x00, 0x11, 0x00, 0x00], false).is_err());
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(r.message(&stored, false).unwrap(), b"Hello");
        assert!(r.message(&[0xf2, 0x48, 0xcd], false).is_err());
    }
}
