//! The write half of a connection: one frame at a time, header and payload
//! in one vectored write, masked in place when we are the client.

use crate::connection::Role;
use crate::frame_header::format_header;
use std::io::{self, Cursor, IoSlice};
use std::pin::Pin;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tungstenite::protocol::frame::coding::OpCode;
use tungstenite::protocol::frame::FrameHeader;

/// The write half of a connection. Its owner (a mutex in the connection's
/// link) keeps frames whole and in order.
pub(crate) struct Sink {
    /// `None` once the connection has let go of the socket.
    io: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    role: Role,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("open", &self.io.is_some())
            .field("role", &self.role)
            .finish()
    }
}

impl Sink {
    pub(crate) fn new(io: impl AsyncWrite + Send + 'static, role: Role) -> Self {
        Sink {
            io: Some(Box::pin(io)),
            role,
        }
    }

    /// Writes one frame and flushes; the payload is masked in place when we
    /// are the client. `rsv1` marks the first frame of a compressed message.
    pub(crate) async fn frame(
        &mut self,
        opcode: OpCode,
        payload: &mut [u8],
        fin: bool,
        rsv1: bool,
    ) -> io::Result<()> {
        let Some(io) = self.io.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let header = FrameHeader {
            is_final: fin,
            rsv1,
            opcode,
            mask: (self.role == Role::Client).then(rand::random::<[u8; 4]>),
            ..FrameHeader::default()
        };
        let mut head = [0u8; 14];
        let head_len = format_header(&header, payload.len() as u64, &mut head);
        if let Some(mask) = header.mask {
            apply_mask(payload, mask, 0);
        }
        write_all_vectored(io, &head[..head_len], payload).await?;
        io.flush().await
    }

    /// Takes the socket's write half; later frames fail with `NotConnected`.
    pub(crate) fn take(&mut self) -> Option<Pin<Box<dyn AsyncWrite + Send>>> {
        self.io.take()
    }
}

/// Writes `head` then `body`, as few writes as the stream allows.
async fn write_all_vectored(
    io: &mut Pin<Box<dyn AsyncWrite + Send>>,
    mut head: &[u8],
    mut body: &[u8],
) -> io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        let n = if head.is_empty() {
            io.write(body).await?
        } else {
            io.write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                .await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    Ok(())
}

/// XORs `buf` with `mask` as it applies `offset` bytes into a payload,
/// with 32-byte vector instructions where the CPU has AVX2.
pub(crate) fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { apply_mask_avx2(buf, mask, offset) };
    }
    apply_mask_words(buf, mask, offset);
}

/// `apply_mask_words` compiled for AVX2: the compiler turns its loop into
/// 32-byte instructions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply_mask_avx2(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    apply_mask_words(buf, mask, offset);
}

/// XORs `buf` with `mask` as it applies `offset` bytes into a payload,
/// eight bytes at a time.
#[inline(always)]
fn apply_mask_words(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let m = [
        mask[offset & 3],
        mask[(offset + 1) & 3],
        mask[(offset + 2) & 3],
        mask[(offset + 3) & 3],
    ];
    let word = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= m[i & 3];
    }
}

impl Sink {
    /// Writes whole data frames encoded once for every receiver of a topic
    /// (`topics::Publication::frame`: unmasked, FIN set), then flushes. A
    /// server writes them as they are, in as few writes as the stream
    /// allows; a client gives each a header of its own with a fresh mask
    /// and masks a copy of the payload.
    pub(crate) async fn write_encoded(&mut self, frames: &[&[u8]]) -> io::Result<()> {
        let Some(io) = self.io.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        match self.role {
            Role::Server => write_all_slices(io, frames).await?,
            Role::Client => {
                for frame in frames {
                    write_masked(io, frame).await?;
                }
            }
        }
        io.flush().await
    }
}

/// Writes every byte of `frames`, in order, with vectored writes.
async fn write_all_slices(
    io: &mut Pin<Box<dyn AsyncWrite + Send>>,
    frames: &[&[u8]],
) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = io.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// Writes the unmasked frame `frame` as a client must: its header with a
/// fresh mask, and a masked copy of its payload.
async fn write_masked(io: &mut Pin<Box<dyn AsyncWrite + Send>>, frame: &[u8]) -> io::Result<()> {
    let mut cursor = Cursor::new(frame);
    let (mut header, len) = FrameHeader::parse(&mut cursor)
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::other("an encoded frame without a whole header"))?;
    let mut payload = frame[cursor.position() as usize..].to_vec();
    if payload.len() as u64 != len {
        return Err(io::Error::other(
            "an encoded frame whose length is not its header's",
        ));
    }
    let mask = rand::random::<[u8; 4]>();
    header.mask = Some(mask);
    let mut head = [0u8; 14];
    let mut cursor = Cursor::new(&mut head[..]);
    header.format(len, &mut cursor).map_err(io::Error::other)?;
    let head_len = cursor.position() as usize;
    apply_mask(&mut payload, mask, 0);
    write_all_vectored(io, &head[..head_len], &payload).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn masking_in_words_matches_masking_bytewise() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..100 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = data.clone();
                super::apply_mask(&mut fast, mask, offset);
                let mut words = data.clone();
                super::apply_mask_words(&mut words, mask, offset);
                let slow: Vec<u8> = data
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[(offset + i) & 3])
                    .collect();
                assert_eq!(fast, slow, "len {len} offset {offset}");
                assert_eq!(words, slow, "words: len {len} offset {offset}");
            }
        }
    }
}
