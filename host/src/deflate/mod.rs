//! permessage-deflate (RFC 7692) without I/O: settings, negotiation, compression and bounded inflation.
//!
//! How a connection uses it, once negotiated ([`offer`] and [`check_answer`]
//! as a client, [`accept`] as a server, giving [`Params`]):
//! - sending: a [`Compressor`] from `Params::send` compresses a message
//!   whole or piece by piece; RSV1 goes on the message's first frame only;
//!   messages shorter than [`DeflateConfig::threshold`] may go uncompressed
//!   (RSV1 clear), and control frames always do;
//! - receiving: an [`Inflater`] from `Params::receive` takes the payloads of
//!   a message whose first frame has RSV1, in steps of at most the caller's
//!   buffer; the caller counts [`Inflater::message_len`] against its size
//!   limit (1009) as it goes. An [`InflateError`] fails the connection with
//!   1007; RSV1 on a control or continuation frame, or without the
//!   extension, is a protocol error (1002).

mod compress;
mod config;
mod header;
mod inflate;
#[cfg(test)]
mod memory;
mod negotiate;
#[cfg(test)]
mod reference;

pub use compress::Compressor;
pub use config::DeflateConfig;
pub use inflate::{Inflater, Step};
pub use negotiate::{accept, check_answer, offer, Accepted, Params, StreamParams};
