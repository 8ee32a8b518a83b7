//! Response bodies: read chunk by chunk with an optional bandwidth cap, decoded
//! (`Content-Encoding`) only when they are read for links or sitemaps, into a bounded sink; a
//! body nobody needs is only counted, or drained so the connection can be reused.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::discover::links::{LinkResults, LinkScanner, PageLinks};

use super::client::describe;

/// A writer that accepts at most `left` bytes, then fails (so decoders stop
/// early on decompression bombs).
pub(super) struct Capped<W> {
    inner: W,
    left: u64,
}

impl<W> Capped<W> {
    fn new(inner: W, max: u64) -> Self {
        Capped { inner, left: max }
    }
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("size limit reached"));
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.write(&buf[..n])?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A push-style Content-Encoding decoder.
pub(super) enum Decoder<W: Write> {
    /// No encoding.
    Identity(W),
    /// gzip (also x-gzip).
    Gzip(flate2::write::MultiGzDecoder<W>),
    /// deflate (zlib-wrapped, as HTTP specifies).
    Deflate(flate2::write::ZlibDecoder<W>),
    /// deflate without the zlib wrapper (sent by some servers; browsers accept it).
    RawDeflate(flate2::write::DeflateDecoder<W>),
    /// deflate before its first byte: zlib-wrapped or raw is decided then.
    DeflatePending(W),
    /// Brotli.
    Brotli(Box<brotli::DecompressorWriter<W>>),
    /// Zstandard.
    Zstd(zstd::stream::write::Decoder<'static, W>),
    /// Decoding failed; the rest is ignored.
    Failed,
}

impl<W: Write> Decoder<W> {
    /// A decoder for the `Content-Encoding` value (lower-case).
    pub fn new(encoding: &str, inner: W) -> Self {
        match encoding {
            "gzip" | "x-gzip" => Decoder::Gzip(flate2::write::MultiGzDecoder::new(inner)),
            "deflate" => Decoder::DeflatePending(inner),
            "br" => Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(inner, 8192))),
            "zstd" => match zstd::stream::write::Decoder::new(inner) {
                Ok(d) => Decoder::Zstd(d),
                Err(_) => Decoder::Failed,
            },
            // identity, empty, or an encoding we cannot decode: scanning
            // garbage is harmless (it finds nothing).
            _ => Decoder::Identity(inner),
        }
    }

    /// Push encoded bytes; on any error the decoder turns into `Failed`.
    pub fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if matches!(self, Decoder::DeflatePending(_)) {
            let Decoder::DeflatePending(w) = std::mem::replace(self, Decoder::Failed) else {
                return;
            };
            // A zlib stream starts with CM=8 and a header checksum; anything
            // else is raw deflate.
            let zlib = data[0] & 0x0f == 8
                && data
                    .get(1)
                    .is_none_or(|f| (u16::from(data[0]) * 256 + u16::from(*f)) % 31 == 0);
            *self = if zlib {
                Decoder::Deflate(flate2::write::ZlibDecoder::new(w))
            } else {
                Decoder::RawDeflate(flate2::write::DeflateDecoder::new(w))
            };
        }
        let r = match self {
            Decoder::Identity(w) => w.write_all(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Deflate(d) => d.write_all(data),
            Decoder::RawDeflate(d) => d.write_all(data),
            Decoder::DeflatePending(_) => Ok(()),
            Decoder::Brotli(d) => d.write_all(data),
            Decoder::Zstd(d) => d.write_all(data),
            Decoder::Failed => return,
        };
        if r.is_err() {
            *self = Decoder::Failed;
        }
    }

    /// End of input: the inner writer, unless decoding failed.
    pub fn finish(self) -> Option<W> {
        match self {
            Decoder::Identity(w) => Some(w),
            Decoder::Gzip(d) => d.finish().ok(),
            Decoder::Deflate(d) => d.finish().ok(),
            Decoder::RawDeflate(d) => d.finish().ok(),
            Decoder::DeflatePending(w) => Some(w),
            Decoder::Brotli(d) => d.into_inner().ok(),
            Decoder::Zstd(mut d) => {
                d.flush().ok()?;
                Some(d.into_inner())
            }
            Decoder::Failed => None,
        }
    }
}

/// A growable buffer that stays reachable after its decoder is dropped.
#[derive(Clone, Default)]
pub(super) struct SharedBuf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where a body's bytes go: nowhere, a link scanner, or a bounded buffer, each behind the
/// Content-Encoding decoder.
pub(super) enum Sink {
    Discard,
    Links(Box<Decoder<Capped<LinkScanner>>>, LinkResults),
    Collect(Box<Decoder<Capped<SharedBuf>>>, SharedBuf),
}

impl Sink {
    fn write(&mut self, data: &[u8]) {
        match self {
            Sink::Discard => {}
            Sink::Links(d, _) => d.write(data),
            Sink::Collect(d, _) => d.write(data),
        }
    }

    /// Decodes `encoding` into `scanner`, scanning at most `max` decoded bytes.
    pub(super) fn links(encoding: &str, scanner: LinkScanner, max: u64) -> Self {
        let results = scanner.results();
        Sink::Links(
            Box::new(Decoder::new(encoding, Capped::new(scanner, max))),
            results,
        )
    }

    /// Decodes `encoding` into a buffer of at most `max` bytes.
    pub(super) fn collect(encoding: &str, max: u64) -> Self {
        let buf = SharedBuf::default();
        Sink::Collect(
            Box::new(Decoder::new(encoding, Capped::new(buf.clone(), max))),
            buf,
        )
    }

    /// End of the body: the links found (marked truncated if decoding failed part way) or the
    /// collected bytes.
    pub(super) fn finish(self) -> (Option<PageLinks>, Option<Vec<u8>>) {
        match self {
            Sink::Discard => (None, None),
            Sink::Links(d, results) => (
                Some(match (*d).finish() {
                    Some(c) => c.inner.finish(),
                    None => results.take_truncated(),
                }),
                None,
            ),
            Sink::Collect(d, buf) => {
                drop((*d).finish());
                (None, Some(buf.0.take()))
            }
        }
    }
}

/// Reads the body into `sink`, at most `limit_rate` bytes per second; returns the bytes received
/// on the wire, the sink, and the error that cut the body short, if one did.
pub(super) async fn read(
    mut resp: reqwest::Response,
    mut sink: Sink,
    limit_rate: Option<u64>,
) -> (u64, Sink, Option<String>) {
    let started = Instant::now();
    let mut bytes = 0u64;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                bytes += chunk.len() as u64;
                sink.write(&chunk);
                if let Some(rate) = limit_rate.filter(|r| *r > 0) {
                    let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                    let spent = started.elapsed();
                    if due > spent {
                        tokio::time::sleep(due - spent).await;
                    }
                }
            }
            Ok(None) => return (bytes, sink, None),
            Err(e) => return (bytes, sink, Some(describe(&e))),
        }
    }
}

/// Read and drop a body we do not need, so the connection can be reused;
/// give up (and let the connection close) after 1 MiB.
pub(super) async fn drain(mut resp: reqwest::Response) {
    let mut n = 0usize;
    while let Ok(Some(c)) = resp.chunk().await {
        n += c.len();
        if n > 1 << 20 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_roundtrip_and_cap() {
        let data = b"<a href=\"/x/\">x</a>".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut d = Decoder::new("gzip", Capped::new(Vec::new(), 1 << 20));
        d.write(&gz);
        assert_eq!(d.finish().unwrap().inner, data);
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&data).unwrap();
        }
        let mut d = Decoder::new("br", Capped::new(Vec::new(), 1 << 20));
        d.write(&br);
        assert_eq!(d.finish().unwrap().inner, data);
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        let mut d = Decoder::new("zstd", Capped::new(Vec::new(), 1 << 20));
        d.write(&zs);
        assert_eq!(d.finish().unwrap().inner, data);
        for raw in [false, true] {
            let packed = if raw {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&data).unwrap();
                e.finish().unwrap()
            } else {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&data).unwrap();
                e.finish().unwrap()
            };
            let mut d = Decoder::new("deflate", Capped::new(Vec::new(), 1 << 20));
            for c in packed.chunks(7) {
                d.write(c);
            }
            assert_eq!(d.finish().unwrap().inner, data, "raw={raw}");
        }
        let mut d = Decoder::new("gzip", Capped::new(Vec::new(), 10));
        d.write(&gz);
        assert!(d.finish().is_none());
        let mut d = Decoder::new("gzip", Capped::new(Vec::new(), 1 << 20));
        d.write(b"not gzip at all");
        assert!(d.finish().is_none());
    }
}
