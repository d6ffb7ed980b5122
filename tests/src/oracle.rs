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
    /// The stream breaks the protocol: fail the connection with this code
    /// (1002, 1007 or 1009).
    Fail(u16),
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
            Err(Error::Utf8(_)) => return Expected::Fail(1007),
            Err(Error::Capacity(_)) => return Expected::Fail(1009),
            Err(Error::Protocol(_)) => return Expected::Fail(1002),
            Err(other) => panic!("the oracle cannot judge {bytes:?}: {other}"),
        }
    }
}

/// Whether `answer` (see [`crate::raw::close_code`]) is what an endpoint
/// must give for `expected`.
pub fn answers(expected: Expected, answer: Option<Option<u16>>) -> bool {
    match (expected, answer) {
        (Expected::Fail(code), Some(Some(sent))) => code == sent,
        // Its own code back, or any close frame for an empty one.
        (Expected::Close(Some(code)), Some(Some(sent))) => code == sent,
        (Expected::Close(None), Some(_)) => true,
        (Expected::End, None) => true,
        _ => false,
    }
}
