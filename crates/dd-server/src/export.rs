//! `GET /api/{model}/export`: one model's records as a Parquet or jsonl.gz file (`dd-export`,
//! `docs/export.md`), streamed. The export runs on the blocking pool and writes into a bounded
//! channel that the response body drains, so memory stays at a few chunks (plus one Parquet row
//! group) whatever the model's size, and a client that goes away stops the export at its next
//! chunk.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use dd_export::{ExportFormat, ExportOptions, export_model, parse_kinds};
use tokio::sync::{Semaphore, mpsc};

use crate::contract::Route;
use crate::error::ApiError;
use crate::params::{ApiPath, check_name, declared_query};
use crate::state::AppState;

/// Exports running at once: each reads the whole model, so a few are enough and the API's read
/// permits stay free for pages.
const MAX_CONCURRENT_EXPORTS: usize = 2;

/// Bytes per chunk sent to the body.
const CHUNK_BYTES: usize = 256 * 1024;

/// Chunks waiting for the client at most.
const CHANNEL_CHUNKS: usize = 8;

/// The export route.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/{model}/export", get(export))
}

fn exports() -> &'static Arc<Semaphore> {
    static EXPORTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    EXPORTS.get_or_init(|| Arc::new(Semaphore::new(MAX_CONCURRENT_EXPORTS)))
}

async fn export(
    State(state): State<Arc<AppState>>,
    ApiPath(model): ApiPath<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    check_name("model", &model)?;
    let query = declared_query(&uri, Route::Export.query_parameters())?;
    let format = ExportFormat::parse(query.text("format").unwrap_or("parquet"))
        .map_err(|error| ApiError::bad_parameter(error.to_string()))?;
    let kinds = match query.text("kinds") {
        // Any text is a well-formed list (the document allows it); a name that is no kind is
        // something the request names that does not exist, so a 404 as for an unknown model.
        Some(text) => Some(parse_kinds(text).map_err(|error| ApiError::not_found("unknown_kind", error.to_string()))?),
        None => None,
    };
    if state.store.catalog().model(&model).is_none() {
        return Err(ApiError::not_found("unknown_model", format!("no model named {model:?}; GET /api lists them")));
    }
    let permit = exports().clone().try_acquire_owned().map_err(|_| {
        ApiError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{MAX_CONCURRENT_EXPORTS} exports are running; try again when one has finished"),
        )
    })?;
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    let store = Arc::clone(&state.store);
    let options = ExportOptions { format, kinds, layers: None };
    let exported_model = model.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let writer = ChannelWriter { sender: sender.clone(), buffer: Vec::with_capacity(CHUNK_BYTES) };
        let outcome = export_model(store.as_ref(), &exported_model, &options, writer, &mut |_, _| {})
            .map_err(std::io::Error::other)
            .and_then(|(_, mut writer)| writer.flush());
        if let Err(error) = outcome {
            // The status is sent; breaking the body is how the client learns the file is not whole.
            tracing::warn!(model = %exported_model, %error, "export stopped");
            let _ = sender.blocking_send(Err(error));
        }
    });
    let mut response = Response::new(Body::new(ChannelBody { receiver }));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let disposition = format!("attachment; filename=\"{model}.{}\"", format.name());
    // Model names are URL-safe ASCII (`check_name`, `validate_name`), so the header is valid.
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The blocking side: bytes gathered into chunks and sent, waiting while the channel is full.
struct ChannelWriter {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES)));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}

/// The async side: the response body, one frame per chunk received.
struct ChannelBody {
    receiver: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.receiver.poll_recv(context).map(|chunk| chunk.map(|chunk| chunk.map(http_body::Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use dd_export::{ExportRow, RowLevel, read_bytes};
    use tower::ServiceExt;

    use super::*;
    use crate::state::ServerConfig;

    /// The application over a synthetic 2 × 3 model, and a runtime to ask it.
    fn app() -> (tempfile::TempDir, tower_http::normalize_path::NormalizePath<Router>, tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.db");
        let config = dd_synth::SynthConfig {
            model_name: "m".into(),
            n_layers: 2,
            d_mlp: 3,
            n_examples: 2,
            n_bottom_examples: 0,
            n_tokens: 6,
            vocab_size: 40,
            seed: 1,
            replace: false,
            n_threads: 1,
        };
        dd_synth::synthesize(&path, &config, &mut |_, _| {}).expect("synth");
        let store = dd_store::SqliteStore::open(&path, &dd_store::ReadConfig::serving()).expect("open");
        let state = AppState::load(Arc::new(store), ServerConfig::standard()).expect("state");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        (dir, crate::app(Arc::new(state)), runtime)
    }

    fn get(
        app: &tower_http::normalize_path::NormalizePath<Router>,
        runtime: &tokio::runtime::Runtime,
        target: &str,
    ) -> (u16, axum::http::HeaderMap, Bytes) {
        let request = Request::get(target).body(Body::empty()).expect("request");
        let response = runtime.block_on(app.clone().oneshot(request)).expect("response");
        let (parts, body) = response.into_parts();
        let body = runtime.block_on(axum::body::to_bytes(body, usize::MAX)).expect("body");
        (parts.status.as_u16(), parts.headers, body)
    }

    fn rows(body: Bytes) -> Vec<ExportRow> {
        let mut rows = Vec::new();
        read_bytes(body, &mut |row| {
            rows.push(row);
            Ok(())
        })
        .expect("an export");
        rows
    }

    /// Both formats stream the model's rows with the file's headers; `kinds` narrows them.
    #[test]
    fn exports_stream_as_attachments() {
        let (_dir, app, runtime) = app();
        let (status, headers, body) = get(&app, &runtime, "/api/m/export");
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.apache.parquet");
        assert_eq!(headers[header::CONTENT_DISPOSITION], "attachment; filename=\"m.parquet\"");
        let all = rows(body);
        assert_eq!((all[0].level, all[0].kind.as_str()), (RowLevel::Model, "metadata"));
        assert!(all.iter().any(|row| row.kind == "examples" && row.layer == Some(1) && row.index == Some(2)));

        let (status, headers, body) = get(&app, &runtime, "/api/m/export?format=jsonl.gz&kinds=stats,summary");
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], "application/gzip");
        assert_eq!(headers[header::CONTENT_DISPOSITION], "attachment; filename=\"m.jsonl.gz\"");
        let kinds: Vec<String> = rows(body).into_iter().map(|row| row.kind).collect();
        let mut expected = vec!["metadata".to_owned()];
        for _layer in 0..2 {
            expected.push("summary".to_owned());
            expected.extend(std::iter::repeat_n("stats".to_owned(), 3));
        }
        assert_eq!(kinds, expected);
    }

    /// Bad formats and parameters are 400s, an unknown model or kind a 404, in the API's shape.
    #[test]
    fn bad_requests_get_the_api_error_shape() {
        let (_dir, app, runtime) = app();
        for (target, status, code) in [
            ("/api/m/export?format=csv", 400, "bad_parameter"),
            ("/api/m/export?kinds=examples,bogus", 404, "unknown_kind"),
            ("/api/m/export?kinds=", 400, "bad_parameter"),
            ("/api/m/export?layer=1", 400, "unknown_parameter"),
            ("/api/nope/export", 404, "unknown_model"),
        ] {
            let (got, headers, body) = get(&app, &runtime, target);
            assert_eq!(got, status, "{target}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{target}");
            let error: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(error["error"]["code"], code, "{target}: {error}");
        }
    }
}
