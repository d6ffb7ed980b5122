//! UTF-8 validation of a message that arrives or leaves in pieces.

/// Checks a byte stream piece by piece. A multi-byte sequence may be split
/// between pieces; anything that can no longer become valid UTF-8 fails at
/// once (Autobahn's "fail fast" cases rely on this).
#[derive(Debug, Clone, Default)]
pub(crate) struct Utf8Stream {
    /// The start of a sequence that the last piece left unfinished.
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Feeds the next piece. `Err` means the text is invalid.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), ()> {
        if !self.pending.is_empty() {
            let want = sequence_len(self.pending[0]).ok_or(())?;
            let take = (want - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            match std::str::from_utf8(&self.pending) {
                Ok(_) => self.pending.clear(),
                Err(e) if e.error_len().is_none() && self.pending.len() < want => return Ok(()),
                Err(_) => return Err(()),
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                self.pending = data[e.valid_up_to()..].to_vec();
                Ok(())
            }
            Err(_) => Err(()),
        }
    }

    /// Whether the text so far ends on a character boundary.
    pub(crate) fn is_complete(&self) -> bool {
        self.pending.is_empty()
    }
}

fn sequence_len(first: u8) -> Option<usize> {
    match first {
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pieces: &[&[u8]]) -> Result<bool, ()> {
        let mut s = Utf8Stream::default();
        for p in pieces {
            s.feed(p)?;
        }
        Ok(s.is_complete())
    }

    #[test]
    fn split_sequences_are_accepted_and_bad_ones_fail_fast() {
        let euro = "€".as_bytes();
        assert_eq!(check(&[&euro[..1], &euro[1..2], &euro[2..]]), Ok(true));
        assert_eq!(check(&[b"ab", &euro[..2]]), Ok(false));
        assert_eq!(check(&[&[0xED], &[0xA0]]), Err(()));
        assert_eq!(check(&[&[0xFF]]), Err(()));
        assert_eq!(check(&[&[0xF4, 0x90]]), Err(()));
        let smile = "😀".as_bytes();
        for cut in 1..4 {
            assert_eq!(check(&[&smile[..cut], &smile[cut..]]), Ok(true));
        }
    }
}
