//! Response compression negotiated from `Accept-Encoding`: zstd, brotli or gzip at their fastest
//! levels, the finished body compressed in one call.
//!
//! Every body the server sends is built in memory, so one-shot compression fits; `tower-http`'s
//! streaming encoders cost two to three times more CPU per 50 KB page (`docs/benchmarks.md`).

use std::cell::RefCell;
use std::io::Write;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Bodies shorter than this go out as they are: the headers would eat the gain.
const MIN_LEN: usize = 1024;

/// Largest body this layer buffers; every response we make is far smaller.
const MAX_LEN: usize = 256 << 20;

/// A content coding we can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Zstd,
    Brotli,
    Gzip,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// The accepted coding with the highest quality; on ties zstd, then br, then gzip.
///
/// `*` stands only for codings the header does not name (RFC 9110 §12.5.3), so `zstd;q=0, *`
/// refuses zstd and accepts the others.
fn choose(headers: &HeaderMap) -> Option<Encoding> {
    const ALL: [Encoding; 3] = [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip];
    let mut named: [Option<f32>; 3] = [None; 3];
    let mut wildcard: Option<f32> = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| {
                    let (key, value) = p.split_once('=')?;
                    key.trim().eq_ignore_ascii_case("q").then(|| value.trim().parse::<f32>().ok()).flatten()
                })
                .next()
                .unwrap_or(1.0);
            let slot = match name.as_str() {
                "zstd" => &mut named[0],
                "br" => &mut named[1],
                "gzip" | "x-gzip" => &mut named[2],
                "*" => &mut wildcard,
                _ => continue,
            };
            *slot = Some(quality);
        }
    }
    let mut best: Option<(f32, Encoding)> = None;
    for (encoding, quality) in ALL.into_iter().zip(named) {
        let Some(quality) = quality.or(wildcard) else { continue };
        // `ALL` is in preference order, so only a strictly higher quality displaces an earlier one.
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, encoding));
        }
    }
    best.map(|(_, encoding)| encoding)
}

fn compressible(response: &Response) -> bool {
    let headers = response.headers();
    response.status().is_success()
        && !headers.contains_key(header::CONTENT_ENCODING)
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/"))
}

thread_local! {
    // A zstd context costs more to create than to compress a page with.
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

fn encode(encoding: Encoding, body: &[u8]) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Zstd => ZSTD.with(|cell| {
            let mut slot = cell.borrow_mut();
            let compressor = match slot.as_mut() {
                Some(compressor) => compressor,
                None => slot.insert(zstd::bulk::Compressor::new(1)?),
            };
            compressor.compress(body)
        }),
        Encoding::Brotli => {
            let mut writer = brotli::CompressorWriter::new(Vec::with_capacity(body.len() / 3), 4096, 1, 22);
            writer.write_all(body)?;
            Ok(writer.into_inner())
        }
        Encoding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 3), flate2::Compression::fast());
            encoder.write_all(body)?;
            encoder.finish()
        }
    }
}

pub(crate) async fn compress(request: Request, next: Next) -> Response {
    let encoding = choose(request.headers());
    let is_head = request.method() == Method::HEAD;
    let mut response = next.run(request).await;
    if !compressible(&response) {
        return response;
    }
    // Caches must key compressible responses on the header, whichever coding this one got.
    response.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Some(encoding) = encoding.filter(|_| !is_head) else { return response };
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_LEN).await {
        Ok(bytes) => bytes,
        Err(error) => return ApiError::internal(&error).into_response(),
    };
    if bytes.len() < MIN_LEN {
        return Response::from_parts(parts, Body::from(bytes));
    }
    match encode(encoding, &bytes) {
        Ok(compressed) => {
            parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding.name()));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(compressed))
        }
        Err(error) => {
            tracing::warn!(%error, encoding = encoding.name(), "compression failed; sending identity");
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(value: &str) -> Option<Encoding> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).expect("header"));
        choose(&headers)
    }

    #[test]
    fn negotiation_follows_quality_then_preference() {
        assert_eq!(pick("gzip, deflate, br, zstd"), Some(Encoding::Zstd));
        assert_eq!(pick("gzip, deflate, br"), Some(Encoding::Brotli));
        assert_eq!(pick("gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("zstd;q=0.5, gzip;q=0.9"), Some(Encoding::Gzip));
        assert_eq!(pick("zstd;q=0, gzip;q=0"), None);
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("deflate"), None);
        assert_eq!(pick("*"), Some(Encoding::Zstd));
        assert_eq!(pick("GZIP"), Some(Encoding::Gzip));
        assert_eq!(pick("zstd;q=0, *"), Some(Encoding::Brotli));
        assert_eq!(pick("zstd;q=0, br;q=0, *;q=0.5"), Some(Encoding::Gzip));
        assert_eq!(pick("gzip;Q=0"), None);
        assert_eq!(pick("br;q=0.8, gzip;q=0.9, zstd;q=0.8"), Some(Encoding::Gzip));
        assert_eq!(choose(&HeaderMap::new()), None);
    }

    #[test]
    fn every_coding_round_trips() {
        use std::io::Read;
        let body = br#"{"tokens":[" the"," cat"],"activations":[0.1,-0.17]}"#.repeat(100);
        let zstd = encode(Encoding::Zstd, &body).expect("zstd");
        assert_eq!(zstd::decode_all(&zstd[..]).expect("unzstd"), body);
        let mut out = Vec::new();
        brotli::Decompressor::new(&encode(Encoding::Brotli, &body).expect("br")[..], 4096)
            .read_to_end(&mut out)
            .expect("unbrotli");
        assert_eq!(out, body);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&encode(Encoding::Gzip, &body).expect("gzip")[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, body);
    }
}
