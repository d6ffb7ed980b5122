//! What RFC 6455 says an endpoint answers to a byte stream from its peer,
//! as tungstenite (an implementation nobody here wrote) reads the stream:
//! the oracle of the property tests.

use std::io::{self, Cursor, Read, Write};
use tungstenite::error::{Error, ProtocolError};
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;

/// How an endpoint must answer what its peer sent, then a FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The stream breaks the protocol: fail the connection with one of
    /// these codes (1002, 1007 or 1009; two when one frame breaks two rules,
    /// such as a close frame with both a bad code and a bad reason).
    Fail(&'static [u16]),
    /// The peer closed properly, with this code (`None`: an empty close
    /// frame); the endpoint answers with a close frame.
    Close(Option<u16>),
    /// Nothing wrong, but TCP ended without a close frame: no close frame
    /// to answer.
    End,
}

/// The stream a peer sent, then its end; what is written back is dropped.
struct Replay(Cursor<Vec<u8>>);

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What an endpoint must answer to `bytes` from its peer. `server`: the
/// endpoint is the server (the peer's frames must be masked). `max_size`
/// is the endpoint's limit on frames and messages.
pub fn expected(bytes: &[u8], server: bool, max_size: usize) -> Expected {
    if let Some((offset, codes)) = first_frame_breaking_several_rules(bytes, server, max_size) {
        // An endpoint may check its rules in any order: any of the codes
        // is right, unless the stream failed or closed before that frame.
        return match tungstenite_reading(&bytes[..offset], server, max_size) {
            Expected::End => Expected::Fail(codes),
            earlier => earlier,
        };
    }
    tungstenite_reading(bytes, server, max_size)
}

/// Where the first frame that breaks rules with different close codes
/// starts (say, an oversized control frame: 1009 and 1002), and those
/// codes. Only frames whose header, and for a close frame its payload, is
/// complete are judged.
fn first_frame_breaking_several_rules(
    bytes: &[u8],
    server: bool,
    max_size: usize,
) -> Option<(usize, &'static [u16])> {
    use tungstenite::protocol::frame::coding::{CloseCode, Control, OpCode};
    use tungstenite::protocol::frame::FrameHeader;
    let mut offset = 0;
    loop {
        let mut cursor = Cursor::new(&bytes[offset..]);
        let (header, len) = FrameHeader::parse(&mut cursor).ok()??;
        let start = offset + cursor.position() as usize;
        let control = matches!(header.opcode, OpCode::Control(_));
        let mut protocol = header.rsv1
            || header.rsv2
            || header.rsv3
            || header.mask.is_some() != server
            || (control && (!header.is_final || len > 125));
        let too_big = len > max_size as u64;
        let mut invalid = false;
        let payload = usize::try_from(len)
            .ok()
            .and_then(|n| bytes.get(start..start.checked_add(n)?));
        if let (OpCode::Control(Control::Close), Some(payload)) = (header.opcode, payload) {
            let mut payload = payload.to_vec();
            if let Some(mask) = header.mask {
                payload
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b ^= mask[i % 4]);
            }
            match payload.as_slice() {
                [_] => protocol = true,
                [hi, lo, reason @ ..] => {
                    protocol |= !CloseCode::from(u16::from_be_bytes([*hi, *lo])).is_allowed();
                    invalid = std::str::from_utf8(reason).is_err();
                }
                [] => {}
            }
        }
        let codes: &'static [u16] = match (protocol, invalid, too_big) {
            (true, true, true) => &[1002, 1007, 1009],
            (true, true, false) => &[1002, 1007],
            (true, false, true) => &[1002, 1009],
            (false, true, true) => &[1007, 1009],
            _ => &[],
        };
        if codes.len() > 1 {
            return Some((offset, codes));
        }
        if protocol || invalid || too_big || header.opcode == OpCode::Control(Control::Close) {
            return None;
        }
        offset = start.checked_add(usize::try_from(len).ok()?)?;
        if offset >= bytes.len() {
            return None;
        }
    }
}

fn tungstenite_reading(bytes: &[u8], server: bool, max_size: usize) -> Expected {
    let role = if server { Role::Server } else { Role::Client };
    let config = WebSocketConfig::default()
        .max_frame_size(Some(max_size))
        .max_message_size(Some(max_size));
    let mut ws =
        WebSocket::from_raw_socket(Replay(Cursor::new(bytes.to_vec())), role, Some(config));
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return Expected::Close(frame.map(|f| f.code.into())),
            Ok(_) => continue,
            Err(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                return Expected::End
            }
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Expected::End,
            Err(Error::Utf8(_)) => return Expected::Fail(&[1007]),
            Err(Error::Capacity(_)) => return Expected::Fail(&[1009]),
            Err(Error::Protocol(_)) => return Expected::Fail(&[1002]),
            Err(other) => panic!("the oracle cannot judge {bytes:?}: {other}"),
        }
    }
}

/// Whether `answer` (see [`crate::raw::close_code`]) is what an endpoint
/// must give for `expected`.
pub fn answers(expected: Expected, answer: Option<Option<u16>>) -> bool {
    match (expected, answer) {
        (Expected::Fail(codes), Some(Some(sent))) => codes.contains(&sent),
        // Its own code back, or any close frame for an empty one.
        (Expected::Close(Some(code)), Some(Some(sent))) => code == sent,
        (Expected::Close(None), Some(_)) => true,
        (Expected::End, None) => true,
        _ => false,
    }
}
