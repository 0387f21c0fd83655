//! The `ssz_snappy` wire format of the sync protocols, as in the consensus specs' req/resp
//! domain, as a libp2p request/response [`Codec`].
//!
//! - A *payload* is the unsigned LEB128 varint of its uncompressed length, then the payload in
//!   the snappy *frame* format. An empty payload is the single byte `0x00`.
//! - A request is one payload; the requester then closes its side of the stream.
//! - A response is a sequence of chunks until the responder closes the stream: a result byte,
//!   then a payload. Result `0` is a success chunk; any other is an [`ErrorCode`] whose payload
//!   is an error message (at most 256 bytes) and which ends the response.
//!
//! Sizes are checked before anything is decompressed: the length prefix against the cap,
//! then the compressed bytes are read through `take` bounded by the worst-case framed size of
//! the announced length, frame by frame, until the frames account for exactly that length.
//! Only then does snappy decompress them (checking the CRCs). An over-cap chunk is an error,
//! never a truncated read.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

use super::{ErrorCode, ProtocolLimits, ResponseError};

/// Longest unsigned LEB128 encoding of a `u64`.
const MAX_VARINT_LEN: usize = 10;

/// Largest error message: `ErrorMessage = List[byte, 256]`.
pub(crate) const MAX_ERROR_MESSAGE_LEN: usize = 256;

/// Uncompressed bytes per snappy frame chunk.
const MAX_BLOCK_LEN: usize = 65_536;

/// Largest body of a snappy frame chunk (CRC and compressed block of [`MAX_BLOCK_LEN`] bytes).
const MAX_FRAME_BODY_LEN: usize = 4 + 76_490;

/// Snappy frame chunk types (framing_format.txt).
const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_STREAM_IDENTIFIER: u8 = 0xff;

/// Why a stream does not decode (or a payload may not be sent).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The length prefix has more than 10 bytes.
    #[error("length prefix longer than {MAX_VARINT_LEN} bytes")]
    VarintTooLong,
    /// The length prefix does not fit in a `u64`.
    #[error("length prefix overflows 64 bits")]
    VarintOverflow,
    /// The length prefix has a redundant trailing zero byte.
    #[error("length prefix is not minimally encoded")]
    VarintNotMinimal,
    /// A request, chunk or error message is longer than the protocol allows.
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    PayloadTooLarge {
        /// The announced (or offered) uncompressed length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A response has more success chunks than the protocol allows.
    #[error("more than {max} response chunks")]
    TooManyChunks {
        /// The limit.
        max: usize,
    },
    /// A response's chunks add up to more bytes than the protocol allows.
    #[error("response chunks exceed {max} bytes in all")]
    ResponseTooLarge {
        /// The limit.
        max: usize,
    },
    /// The compressed data is longer than any encoding of the announced length.
    #[error("compressed data exceeds {max} bytes, the bound for the announced length")]
    CompressedTooLarge {
        /// The bound.
        max: u64,
    },
    /// The compressed data decompresses to another length than announced.
    #[error("the frames hold {got} bytes, the length prefix announced {expected}")]
    LengthMismatch {
        /// The announced length.
        expected: u64,
        /// The length found (at least).
        got: u64,
    },
    /// The snappy frame stream is malformed (bad chunk, CRC, header).
    #[error("invalid snappy frame stream: {0}")]
    Snappy(String),
    /// The stream ended inside a payload.
    #[error("the stream ended inside a payload")]
    Truncated,
}

impl CodecError {
    /// Whether this is a size or count limit being exceeded (rather than malformed bytes).
    pub fn is_over_cap(&self) -> bool {
        matches!(
            self,
            Self::PayloadTooLarge { .. }
                | Self::TooManyChunks { .. }
                | Self::ResponseTooLarge { .. }
                | Self::CompressedTooLarge { .. }
        )
    }

    /// The codec error carried by an I/O error from the codec, if any.
    pub(crate) fn from_io(error: &io::Error) -> Option<&Self> {
        error.get_ref().and_then(|inner| inner.downcast_ref::<Self>())
    }
}

impl From<CodecError> for io::Error {
    fn from(error: CodecError) -> Self {
        Self::new(io::ErrorKind::InvalidData, error)
    }
}

/// A request as read from a stream: its payload, or why it does not decode (the responder
/// answers those with [`ErrorCode::InvalidRequest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RequestPayload {
    /// The decompressed payload.
    Payload(Vec<u8>),
    /// A request that is too large or malformed.
    Malformed(CodecError),
}

/// A response: its success chunks (uncompressed), then optionally the error that ended it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncResponse {
    /// The success chunks, in order.
    pub(crate) chunks: Vec<Vec<u8>>,
    /// The error chunk that ended the response.
    pub(crate) error: Option<ResponseError>,
}

impl SyncResponse {
    /// A response that is only an error chunk.
    pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { chunks: Vec::new(), error: Some(ResponseError::new(code, message)) }
    }
}

/// The [`Codec`] of one protocol, with its limits.
#[derive(Clone, Debug)]
pub(crate) struct SyncCodec {
    limits: ProtocolLimits,
}

impl SyncCodec {
    pub(crate) fn new(limits: ProtocolLimits) -> Self {
        Self { limits }
    }
}

impl Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = RequestPayload;
    type Response = SyncResponse;

    async fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<RequestPayload>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_payload(io, self.limits.max_request_bytes).await {
            Ok(payload) => Ok(RequestPayload::Payload(payload)),
            Err(e) => match CodecError::from_io(&e) {
                // Too large or malformed: answered with an error response. A truncated request
                // (or any other I/O failure) leaves nothing to answer.
                Some(codec) if *codec != CodecError::Truncated => {
                    Ok(RequestPayload::Malformed(codec.clone()))
                }
                _ => Err(e),
            },
        }
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_response(io, &self.limits).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: RequestPayload,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let RequestPayload::Payload(payload) = request else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a malformed request"));
        };
        check_len(payload.len(), self.limits.max_request_bytes)?;
        let mut buf = Vec::new();
        encode_payload(&payload, &mut buf)?;
        io.write_all(&buf).await?;
        io.flush().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_response(io, &self.limits, &response).await
    }
}

fn check_len(len: usize, max: usize) -> Result<(), CodecError> {
    if len > max { Err(CodecError::PayloadTooLarge { len: len as u64, max }) } else { Ok(()) }
}

/// Appends the unsigned LEB128 encoding of `value`.
pub(crate) fn encode_varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned LEB128 `u64`: at most 10 bytes, minimally encoded.
async fn read_varint<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<u64> {
    let mut value = 0u64;
    for i in 0..MAX_VARINT_LEN {
        let byte = read_byte(io).await?.ok_or(CodecError::Truncated)?;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte holds bit 63 only.
        if i == MAX_VARINT_LEN - 1 && bits > 1 {
            return Err(CodecError::VarintOverflow.into());
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(CodecError::VarintNotMinimal.into());
            }
            return Ok(value);
        }
    }
    Err(CodecError::VarintTooLong.into())
}

/// One byte, or `None` at the end of the stream.
async fn read_byte<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<Option<u8>> {
    let mut byte = [0u8; 1];
    loop {
        match io.read(&mut byte).await {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(byte[0])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The most bytes any conforming snappy frame encoding of `len` bytes takes: the stream
/// identifier, then per block of up to 64 KiB a chunk header, CRC and at most
/// `32 + n + n / 6` compressed bytes.
fn max_framed_len(len: usize) -> u64 {
    let len = len as u64;
    let blocks = len.div_ceil(MAX_BLOCK_LEN as u64).max(1);
    10 + blocks * (8 + 32) + len + len / 6
}

/// Reads a length prefix, checks it against `max`, then the payload it announces.
async fn read_payload<R: AsyncRead + Unpin>(io: &mut R, max: usize) -> io::Result<Vec<u8>> {
    let len = read_varint(io).await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= max)
        .ok_or(CodecError::PayloadTooLarge { len, max })?;
    read_body(io, len).await
}

/// Reads the snappy frames of a payload of `len` (already checked) uncompressed bytes and
/// decompresses them.
async fn read_body<R: AsyncRead + Unpin>(io: &mut R, len: usize) -> io::Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let bound = max_framed_len(len);
    let mut limited = (&mut *io).take(bound);
    let mut framed = Vec::new();
    let mut decompressed = 0usize;
    while decompressed < len {
        let start = framed.len();
        framed.resize(start + 4, 0);
        read_exact_bounded(&mut limited, &mut framed[start..], bound).await?;
        let kind = framed[start];
        let body_len = usize::from(framed[start + 1])
            | usize::from(framed[start + 2]) << 8
            | usize::from(framed[start + 3]) << 16;
        if start == 0 && kind != CHUNK_STREAM_IDENTIFIER {
            return Err(snappy_error("missing stream identifier"));
        }
        if body_len > MAX_FRAME_BODY_LEN {
            return Err(snappy_error("frame chunk too long"));
        }
        framed.resize(start + 4 + body_len, 0);
        read_exact_bounded(&mut limited, &mut framed[start + 4..], bound).await?;
        let body = &framed[start + 4..];
        let block_len = match kind {
            CHUNK_COMPRESSED => {
                let data = body.get(4..).ok_or_else(|| snappy_error("short compressed chunk"))?;
                snap::raw::decompress_len(data).map_err(|e| snappy_error(&e.to_string()))?
            }
            CHUNK_UNCOMPRESSED => {
                body.len().checked_sub(4).ok_or_else(|| snappy_error("short uncompressed chunk"))?
            }
            0x02..=0x7f => return Err(snappy_error("reserved unskippable chunk type")),
            // Stream identifier (checked by the decoder below), padding, skippable chunks.
            _ => 0,
        };
        if block_len > MAX_BLOCK_LEN {
            return Err(snappy_error("frame block too long"));
        }
        decompressed = decompressed.saturating_add(block_len);
    }
    if decompressed > len {
        return Err(
            CodecError::LengthMismatch { expected: len as u64, got: decompressed as u64 }.into()
        );
    }
    decompress_frames(&framed, len)
}

/// `read_exact` through the `take` bound: an early end is [`CodecError::Truncated`], reaching
/// the bound [`CodecError::CompressedTooLarge`].
async fn read_exact_bounded<R: AsyncRead + Unpin>(
    limited: &mut futures::io::Take<&mut R>,
    buf: &mut [u8],
    bound: u64,
) -> io::Result<()> {
    match limited.read_exact(buf).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(if limited.limit() == 0 {
            CodecError::CompressedTooLarge { max: bound }
        } else {
            CodecError::Truncated
        }
        .into()),
        Err(e) => Err(e),
    }
}

fn snappy_error(reason: &str) -> io::Error {
    CodecError::Snappy(reason.to_owned()).into()
}

/// Decompresses complete snappy frames known to hold `len` bytes.
fn decompress_frames(framed: &[u8], len: usize) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::with_capacity(len);
    snap::read::FrameDecoder::new(framed)
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| snappy_error(&e.to_string()))?;
    if out.len() != len {
        return Err(
            CodecError::LengthMismatch { expected: len as u64, got: out.len() as u64 }.into()
        );
    }
    Ok(out)
}

/// Appends a payload: its length prefix and its snappy frames (none for an empty payload).
pub(crate) fn encode_payload(data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    use std::io::Write as _;
    encode_varint(data.len() as u64, out);
    if !data.is_empty() {
        let mut encoder = snap::write::FrameEncoder::new(out);
        encoder.write_all(data)?;
        encoder.flush()?;
    }
    Ok(())
}

/// Reads response chunks until the stream ends or an error chunk.
async fn read_response<R: AsyncRead + Unpin>(
    io: &mut R,
    limits: &ProtocolLimits,
) -> io::Result<SyncResponse> {
    let mut response = SyncResponse::default();
    let mut total = 0usize;
    while let Some(result) = read_byte(io).await? {
        if let Some(code) = ErrorCode::from_byte(result) {
            let message = read_payload(io, MAX_ERROR_MESSAGE_LEN).await?;
            let message = String::from_utf8_lossy(&message).into_owned();
            response.error = Some(ResponseError { code, message });
            return Ok(response);
        }
        if response.chunks.len() >= limits.max_response_chunks {
            return Err(CodecError::TooManyChunks { max: limits.max_response_chunks }.into());
        }
        let len = read_varint(io).await?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= limits.max_chunk_bytes)
            .ok_or(CodecError::PayloadTooLarge { len, max: limits.max_chunk_bytes })?;
        total = total.saturating_add(len);
        if total > limits.max_response_bytes {
            return Err(CodecError::ResponseTooLarge { max: limits.max_response_bytes }.into());
        }
        response.chunks.push(read_body(io, len).await?);
    }
    Ok(response)
}

/// Writes response chunks, then the error chunk if any. Chunks over the limit are refused
/// (the network bounds responses before they get here).
async fn write_response<W: AsyncWrite + Unpin>(
    io: &mut W,
    limits: &ProtocolLimits,
    response: &SyncResponse,
) -> io::Result<()> {
    if response.chunks.len() > limits.max_response_chunks {
        return Err(CodecError::TooManyChunks { max: limits.max_response_chunks }.into());
    }
    let mut buf = Vec::new();
    for chunk in &response.chunks {
        check_len(chunk.len(), limits.max_chunk_bytes)?;
        buf.clear();
        buf.push(0);
        encode_payload(chunk, &mut buf)?;
        io.write_all(&buf).await?;
    }
    if let Some(error) = &response.error {
        buf.clear();
        buf.push(error.code.to_byte());
        encode_payload(truncate_message(&error.message).as_bytes(), &mut buf)?;
        io.write_all(&buf).await?;
    }
    io.flush().await
}

/// The codec error behind an I/O error of the in-memory entry points below (a cursor fails
/// in no other way than the bytes it holds).
fn in_memory(error: io::Error) -> CodecError {
    CodecError::from_io(&error).cloned().unwrap_or(CodecError::Truncated)
}

/// Decodes a whole request stream held in memory, as a responder reads it: the payload, or
/// why it does not decode. The in-memory entry point of the wire format, for the fuzz targets
/// (`fuzz/`) and tools.
///
/// # Errors
/// The [`CodecError`] the responder answers (or, for [`CodecError::Truncated`], drops).
pub fn decode_request_bytes(bytes: &[u8], limits: &ProtocolLimits) -> Result<Vec<u8>, CodecError> {
    futures::executor::block_on(read_payload(
        &mut futures::io::Cursor::new(bytes),
        limits.max_request_bytes,
    ))
    .map_err(in_memory)
}

/// Encodes a request as a requester writes it (see [`decode_request_bytes`]).
///
/// # Errors
/// [`CodecError::PayloadTooLarge`] for a payload over `limits.max_request_bytes`.
pub fn encode_request_bytes(
    payload: &[u8],
    limits: &ProtocolLimits,
) -> Result<Vec<u8>, CodecError> {
    check_len(payload.len(), limits.max_request_bytes)?;
    let mut out = Vec::new();
    encode_payload(payload, &mut out).map_err(in_memory)?;
    Ok(out)
}

/// Decodes a whole response stream held in memory, as a requester reads it: the success
/// chunks, then the error chunk that ended it, if any (see [`decode_request_bytes`]).
///
/// # Errors
/// The first [`CodecError`] in the stream.
pub fn decode_response_bytes(
    bytes: &[u8],
    limits: &ProtocolLimits,
) -> Result<(Vec<Vec<u8>>, Option<ResponseError>), CodecError> {
    futures::executor::block_on(read_response(&mut futures::io::Cursor::new(bytes), limits))
        .map(|response| (response.chunks, response.error))
        .map_err(in_memory)
}

/// Encodes a response as a responder writes it: the chunks, then the error chunk (its message
/// cut to 256 bytes) if any (see [`decode_response_bytes`]).
///
/// # Errors
/// [`CodecError::TooManyChunks`] or [`CodecError::PayloadTooLarge`] past `limits`.
pub fn encode_response_bytes(
    chunks: Vec<Vec<u8>>,
    error: Option<ResponseError>,
    limits: &ProtocolLimits,
) -> Result<Vec<u8>, CodecError> {
    let mut wire = futures::io::Cursor::new(Vec::new());
    let response = SyncResponse { chunks, error };
    futures::executor::block_on(write_response(&mut wire, limits, &response)).map_err(in_memory)?;
    Ok(wire.into_inner())
}

/// `message` cut to at most [`MAX_ERROR_MESSAGE_LEN`] bytes, at a character boundary.
fn truncate_message(message: &str) -> &str {
    let mut end = message.len().min(MAX_ERROR_MESSAGE_LEN);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use proptest::prelude::*;

    const LIMITS: ProtocolLimits = ProtocolLimits {
        max_request_bytes: 1024,
        max_response_chunks: 4,
        max_chunk_bytes: 200_000,
        max_response_bytes: 300_000,
    };

    fn protocol() -> StreamProtocol {
        StreamProtocol::new("/p/req/messages_by_id/1/ssz_snappy")
    }

    fn varint(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_varint(value, &mut out);
        out
    }

    fn decode_varint(bytes: &[u8]) -> Result<u64, CodecError> {
        block_on(read_varint(&mut Cursor::new(bytes)))
            .map_err(|e| CodecError::from_io(&e).cloned().unwrap_or(CodecError::Truncated))
    }

    fn codec_error(e: io::Error) -> CodecError {
        CodecError::from_io(&e).cloned().unwrap_or_else(|| panic!("not a codec error: {e}"))
    }

    fn encode_response(response: &SyncResponse) -> Vec<u8> {
        let mut wire = Cursor::new(Vec::new());
        block_on(SyncCodec::new(LIMITS).write_response(&protocol(), &mut wire, response.clone()))
            .unwrap();
        wire.into_inner()
    }

    fn decode_response(wire: &[u8]) -> io::Result<SyncResponse> {
        block_on(SyncCodec::new(LIMITS).read_response(&protocol(), &mut Cursor::new(wire)))
    }

    fn decode_request(wire: &[u8]) -> io::Result<RequestPayload> {
        block_on(SyncCodec::new(LIMITS).read_request(&protocol(), &mut Cursor::new(wire)))
    }

    /// A success chunk of `data`.
    fn chunk(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        encode_payload(data, &mut out).unwrap();
        out
    }

    #[test]
    fn varint_edge_cases() {
        for (value, bytes) in [
            (0, vec![0x00]),
            (1, vec![0x01]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
        ] {
            assert_eq!(varint(value), bytes, "{value}");
            assert_eq!(decode_varint(&bytes), Ok(value));
        }
        let max = varint(u64::MAX);
        assert_eq!(max.len(), 10);
        assert_eq!(max[9], 0x01);
        assert_eq!(decode_varint(&max), Ok(u64::MAX));

        // Eleven bytes, a tenth byte beyond bit 63, a redundant zero, and a cut-off prefix.
        assert_eq!(decode_varint(&[0x80; 11]), Err(CodecError::VarintTooLong));
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert_eq!(decode_varint(&overflow), Err(CodecError::VarintOverflow));
        assert_eq!(decode_varint(&[0x80, 0x00]), Err(CodecError::VarintNotMinimal));
        assert_eq!(decode_varint(&[0x80]), Err(CodecError::Truncated));
        assert_eq!(decode_varint(&[]), Err(CodecError::Truncated));
    }

    #[test]
    fn requests_round_trip() {
        for payload in [vec![], vec![7], vec![0xab; 1024], (0..=255).collect::<Vec<u8>>()] {
            let mut wire = Cursor::new(Vec::new());
            let request = RequestPayload::Payload(payload.clone());
            block_on(SyncCodec::new(LIMITS).write_request(&protocol(), &mut wire, request))
                .unwrap();
            let wire = wire.into_inner();
            assert_eq!(wire[..varint(payload.len() as u64).len()], varint(payload.len() as u64));
            assert_eq!(decode_request(&wire).unwrap(), RequestPayload::Payload(payload));
        }
        // The requester refuses to send an over-cap request.
        let mut wire = Cursor::new(Vec::new());
        let big = RequestPayload::Payload(vec![0; LIMITS.max_request_bytes + 1]);
        let err = block_on(SyncCodec::new(LIMITS).write_request(&protocol(), &mut wire, big));
        assert!(codec_error(err.unwrap_err()).is_over_cap());
        assert!(wire.into_inner().is_empty());
    }

    #[test]
    fn responses_round_trip() {
        let response = SyncResponse {
            chunks: vec![vec![], vec![1, 2, 3], vec![9; 150_000], (0..200).collect()],
            error: None,
        };
        assert_eq!(decode_response(&encode_response(&response)).unwrap(), response);

        let response = SyncResponse {
            chunks: vec![vec![5; 10]],
            error: Some(ResponseError::new(ErrorCode::ResourceUnavailable, "pruned")),
        };
        assert_eq!(decode_response(&encode_response(&response)).unwrap(), response);

        // An empty stream is an empty response.
        assert_eq!(decode_response(&[]).unwrap(), SyncResponse::default());
    }

    #[test]
    fn error_messages_are_cut_to_256_bytes_at_a_char_boundary() {
        let response = SyncResponse {
            chunks: vec![],
            error: Some(ResponseError::new(ErrorCode::ServerError, "é".repeat(200))),
        };
        let back = decode_response(&encode_response(&response)).unwrap().error.unwrap();
        assert_eq!(back.message, "é".repeat(128));
    }

    #[test]
    fn over_cap_prefix_is_rejected_before_the_body_is_read() {
        // A request announcing one byte more than the cap, followed by a valid body.
        let len = LIMITS.max_request_bytes + 1;
        let mut wire = Vec::new();
        encode_payload(&vec![0; len], &mut wire).unwrap();
        let prefix_len = varint(len as u64).len();
        let mut cursor = Cursor::new(&wire[..]);
        let err = block_on(read_payload(&mut cursor, LIMITS.max_request_bytes)).unwrap_err();
        assert_eq!(
            codec_error(err),
            CodecError::PayloadTooLarge { len: len as u64, max: LIMITS.max_request_bytes }
        );
        assert_eq!(cursor.position(), prefix_len as u64, "nothing past the prefix was read");
        // The responder answers it as a malformed request.
        assert!(matches!(
            decode_request(&wire).unwrap(),
            RequestPayload::Malformed(CodecError::PayloadTooLarge { .. })
        ));

        // A response chunk announcing more than the chunk cap, and a huge prefix.
        let mut wire = vec![0];
        encode_varint(LIMITS.max_chunk_bytes as u64 + 1, &mut wire);
        let err = codec_error(decode_response(&wire).unwrap_err());
        assert!(matches!(err, CodecError::PayloadTooLarge { .. }), "{err}");
        let mut wire = vec![0];
        encode_varint(u64::MAX, &mut wire);
        assert!(codec_error(decode_response(&wire).unwrap_err()).is_over_cap());
    }

    #[test]
    fn too_many_chunks_and_too_many_bytes_are_over_cap() {
        let wire: Vec<u8> = (0..5).flat_map(|_| chunk(b"x")).collect();
        let err = codec_error(decode_response(&wire).unwrap_err());
        assert_eq!(err, CodecError::TooManyChunks { max: 4 });

        let wire: Vec<u8> = (0..2).flat_map(|_| chunk(&[1; 160_000])).collect();
        let err = codec_error(decode_response(&wire).unwrap_err());
        assert_eq!(err, CodecError::ResponseTooLarge { max: 300_000 });
    }

    #[test]
    fn truncated_streams_are_errors() {
        let full = chunk(&[3; 5000]);
        for cut in [2, full.len() / 2, full.len() - 1] {
            let err = codec_error(decode_response(&full[..cut]).unwrap_err());
            assert_eq!(err, CodecError::Truncated, "cut at {cut}");
        }
        // A result byte and nothing else.
        assert_eq!(codec_error(decode_response(&[0]).unwrap_err()), CodecError::Truncated);
        // A truncated request is an I/O error (there is nobody left to answer).
        let mut wire = Vec::new();
        encode_payload(&[1; 100], &mut wire).unwrap();
        let err = decode_request(&wire[..wire.len() - 3]).unwrap_err();
        assert_eq!(codec_error(err), CodecError::Truncated);
    }

    #[test]
    fn unknown_result_codes_are_errors_not_chunks() {
        for code in [4u8, 128, 200, 255] {
            let mut wire = chunk(b"ok");
            wire.push(code);
            encode_payload(b"why", &mut wire).unwrap();
            let response = decode_response(&wire).unwrap();
            assert_eq!(response.chunks, vec![b"ok".to_vec()]);
            assert_eq!(
                response.error,
                Some(ResponseError::new(ErrorCode::Other(code), "why")),
                "{code}"
            );
        }
        // An error message over 256 bytes is refused.
        let mut wire = vec![2];
        encode_payload(&[b'a'; MAX_ERROR_MESSAGE_LEN + 1], &mut wire).unwrap();
        assert!(codec_error(decode_response(&wire).unwrap_err()).is_over_cap());
    }

    #[test]
    fn bad_snappy_is_rejected() {
        // Garbage instead of frames.
        let mut wire = vec![0];
        encode_varint(10, &mut wire);
        wire.extend_from_slice(&[0x42; 20]);
        assert!(matches!(codec_error(decode_response(&wire).unwrap_err()), CodecError::Snappy(_)));

        // A frame stream holding more bytes than the prefix announces.
        let mut frames = Vec::new();
        encode_payload(&[7; 100], &mut frames).unwrap();
        let mut wire = vec![0];
        encode_varint(50, &mut wire);
        wire.extend_from_slice(&frames[1..]);
        assert!(matches!(
            codec_error(decode_response(&wire).unwrap_err()),
            CodecError::LengthMismatch { expected: 50, .. }
        ));

        // A corrupted CRC.
        let mut wire = chunk(&[7; 100]);
        let crc = 2 + 10 + 4;
        wire[crc] ^= 0xff;
        assert!(matches!(codec_error(decode_response(&wire).unwrap_err()), CodecError::Snappy(_)));

        // Endless padding after the stream identifier hits the compressed bound.
        let mut wire = vec![0];
        encode_varint(10, &mut wire);
        wire.extend_from_slice(b"\xff\x06\x00\x00sNaPpY");
        for _ in 0..100 {
            wire.extend_from_slice(&[0xfe, 0x04, 0x00, 0x00, 0, 0, 0, 0]);
        }
        assert!(matches!(
            codec_error(decode_response(&wire).unwrap_err()),
            CodecError::CompressedTooLarge { .. }
        ));
    }

    proptest! {
        #[test]
        fn any_response_round_trips(
            chunks in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..3000),
                0..4,
            ),
            error in proptest::option::of((1u8.., ".{0,40}")),
        ) {
            let error = error.map(|(code, message)| ResponseError {
                code: ErrorCode::from_byte(code).unwrap(),
                message: truncate_message(&message).to_owned(),
            });
            let response = SyncResponse { chunks, error };
            prop_assert_eq!(decode_response(&encode_response(&response)).unwrap(), response);
        }

        #[test]
        fn any_varint_round_trips(value in any::<u64>()) {
            prop_assert_eq!(decode_varint(&varint(value)), Ok(value));
        }

        #[test]
        fn arbitrary_bytes_never_panic(wire in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_response(&wire);
            let _ = decode_request(&wire);
        }
    }
}
