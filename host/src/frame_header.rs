//! Frame headers on the wire (RFC 6455 section 5.2): read from and written
//! into byte slices, as tungstenite's `FrameHeader::parse` and `format` do,
//! without their `io::Read` and `io::Write` cursors, which showed in the
//! profile (BENCHMARKS.md, change 12). Tungstenite's types are the result,
//! and its parser and formatter are the tests' reference.

use tungstenite::protocol::frame::coding::{Control as ControlOp, Data as DataOp, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The frame header at the start of `buf`, its payload length and the
/// bytes it takes; `None` while it is not all there, an error for a
/// reserved opcode. What tungstenite's `FrameHeader::parse` does, without
/// its reader and cursor.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Option<(FrameHeader, u64, usize)>, ()> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let (len, mut used) = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(&[hi, lo]) => (u64::from(u16::from_be_bytes([hi, lo])), 4),
            _ => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(bytes) => (u64::from_be_bytes(bytes), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let mask = if second & 0x80 != 0 {
        match buf
            .get(used..used + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        {
            Some(mask) => {
                used += 4;
                Some(mask)
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    let opcode = OpCode::from(first & 0x0F);
    if let OpCode::Control(ControlOp::Reserved(_)) | OpCode::Data(DataOp::Reserved(_)) = opcode {
        return Err(());
    }
    let header = FrameHeader {
        is_final: first & 0x80 != 0,
        rsv1: first & 0x40 != 0,
        rsv2: first & 0x20 != 0,
        rsv3: first & 0x10 != 0,
        opcode,
        mask,
    };
    Ok(Some((header, len, used)))
}

/// Writes `header` for a payload of `len` bytes into `head` and returns
/// its size: what tungstenite's `FrameHeader::format` writes, without its
/// writer. RSV2 and RSV3 are never set here.
pub(crate) fn format_header(header: &FrameHeader, len: u64, head: &mut [u8; 14]) -> usize {
    head[0] =
        (u8::from(header.is_final) << 7) | (u8::from(header.rsv1) << 6) | u8::from(header.opcode);
    let masked = if header.mask.is_some() { 0x80 } else { 0 };
    let mut used = match len {
        0..=125 => {
            head[1] = masked | len as u8;
            2
        }
        126..=0xFFFF => {
            head[1] = masked | 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            head[1] = masked | 127;
            head[2..10].copy_from_slice(&len.to_be_bytes());
            10
        }
    };
    if let Some(mask) = header.mask {
        head[used..used + 4].copy_from_slice(&mask);
        used += 4;
    }
    used
}

#[cfg(test)]
mod tests {
    use super::{format_header, parse_header};
    use std::io::Cursor;
    use tungstenite::protocol::frame::coding::OpCode;
    use tungstenite::protocol::frame::FrameHeader;

    /// Every first and second byte, with each length form and a mask,
    /// whole and cut short: the same answer as tungstenite's parser.
    #[test]
    fn headers_parse_as_tungstenite_parses_them() {
        let lengths: [&[u8]; 3] = [&[], &[0x01, 0x02], &[0x80, 0, 0, 0, 0, 0x01, 0x02, 0x03]];
        for first in 0..=255u8 {
            for second in 0..=255u8 {
                let extra = match second & 0x7F {
                    126 => lengths[1],
                    127 => lengths[2],
                    _ => lengths[0],
                };
                let mut whole = vec![first, second];
                whole.extend_from_slice(extra);
                whole.extend_from_slice(&[9, 8, 7, 6, 42]);
                for cut in 0..=whole.len() {
                    let buf = &whole[..cut];
                    let ours = parse_header(buf);
                    let mut cursor = Cursor::new(buf);
                    let theirs = FrameHeader::parse(&mut cursor);
                    match (ours, theirs) {
                        (Ok(Some((h, len, used))), Ok(Some((th, tlen)))) => {
                            assert_eq!((h, len), (th, tlen), "{buf:?}");
                            assert_eq!(used as u64, cursor.position(), "{buf:?}");
                        }
                        (Ok(None), Ok(None)) | (Err(()), Err(_)) => {}
                        (ours, theirs) => panic!("{buf:?}: ours {ours:?}, tungstenite {theirs:?}"),
                    }
                }
            }
        }
    }

    /// Every opcode, FIN and RSV1, masked or not, at each length form's
    /// edges: the same bytes as tungstenite's formatter.
    #[test]
    fn headers_format_as_tungstenite_formats_them() {
        let lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 1 << 32, u64::MAX >> 1];
        for op in 0..16u8 {
            for bits in 0..8u8 {
                for len in lengths {
                    let header = FrameHeader {
                        is_final: bits & 1 != 0,
                        rsv1: bits & 2 != 0,
                        opcode: OpCode::from(op),
                        mask: (bits & 4 != 0).then_some([1, 2, 3, 4]),
                        ..FrameHeader::default()
                    };
                    let mut ours = [0u8; 14];
                    let used = format_header(&header, len, &mut ours);
                    let mut theirs = Cursor::new(Vec::new());
                    header.format(len, &mut theirs).unwrap();
                    assert_eq!(&ours[..used], &theirs.get_ref()[..], "{header:?} {len}");
                }
            }
        }
    }
}
