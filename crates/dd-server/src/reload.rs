//! The application over a database that grows while it is served: [`ReloadableApp`] answers each
//! request with the router of the current state, and [`ReloadHandle`] replaces that state.
//!
//! A state never changes once served (`state.rs`): a reload builds a new state (the catalog read
//! again, new model contexts, a new ETag) and a router over it, and swaps both in at once. Each
//! request takes the router that is current when it arrives and keeps it to the end, so it sees one
//! state throughout; the swap waits for no request. Per request this costs one uncontended read
//! lock and one reference-count increment (the router is an `Arc` inside), next to the clone per
//! request `axum::serve` makes anyway.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use dd_store::StoreError;
use tower::Service;
use tower::util::{Oneshot, ServiceExt};

use crate::state::AppState;

/// The router over one state, as `app` builds it.
pub(crate) type Routes = tower_http::normalize_path::NormalizePath<axum::Router>;

/// The application as a `tower` service whose state a [`ReloadHandle`] can replace while it
/// serves; made by [`reloadable_app`](crate::reloadable_app), served by [`serve`](crate::serve).
#[derive(Clone)]
pub struct ReloadableApp {
    shared: Arc<Shared>,
}

/// Replaces the state of a [`ReloadableApp`] while it serves: after the database grew
/// ([`reload`](Self::reload)), or to tell visitors what is still being added
/// ([`set_notice`](Self::set_notice)). Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct ReloadHandle {
    shared: Arc<Shared>,
}

struct Shared {
    current: RwLock<Current>,
    /// Builds the router over a state (`app`), so that this module needs nothing above it.
    build: fn(Arc<AppState>) -> Routes,
    /// Held through a whole update, so a slow reload cannot swap in a state made before a newer
    /// notice and lose it. A `std` mutex: it is taken on blocking threads, never by a request.
    updating: Mutex<()>,
}

/// A state and the router built over it, swapped together.
struct Current {
    state: Arc<AppState>,
    routes: Routes,
}

impl ReloadableApp {
    /// The application over `state`, with `build` making the router over each state.
    pub(crate) fn new(state: Arc<AppState>, build: fn(Arc<AppState>) -> Routes) -> (Self, ReloadHandle) {
        let routes = build(state.clone());
        let shared =
            Arc::new(Shared { current: RwLock::new(Current { state, routes }), build, updating: Mutex::new(()) });
        (ReloadableApp { shared: shared.clone() }, ReloadHandle { shared })
    }

    /// The router of the current state.
    fn routes(&self) -> Routes {
        self.shared.current.read().unwrap_or_else(PoisonError::into_inner).routes.clone()
    }
}

impl Service<Request> for ReloadableApp {
    type Response = Response;
    type Error = Infallible;
    type Future = Oneshot<Routes, Request>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is the router's, checked by `oneshot` on the router the request gets.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.routes().oneshot(request)
    }
}

impl ReloadHandle {
    /// Reads the store's catalog again and serves what it now holds: new models, sources and kinds
    /// get their routes and pages, and the ETag changes with the content. Model contexts are built
    /// again (search indices on first use, or [`warm_search_indexes`](Self::warm_search_indexes));
    /// the limits, live models and notice are kept. When nothing was written since the last load,
    /// the state stays as it is. Requests already running finish on the state they started with.
    /// Blocking (SQLite reads): call it from a plain thread or `spawn_blocking`. On error the
    /// current state keeps serving.
    ///
    /// The store must have been opened to see writes (`dd_store::ReadConfig::serving_while_written`);
    /// one opened `immutable` fails with `StoreError::OpenedImmutable`.
    pub fn reload(&self) -> Result<(), StoreError> {
        self.update(AppState::reloaded)
    }

    /// Shows `notice` (short plain text, such as "Neuron2Graph graphs are being built for the 20
    /// most interesting neurons: 7 of 20 done") on every page and as `notice` in `GET /api`, or
    /// removes it (`None`). The ETag changes with it, so no cache keeps the old one.
    pub fn set_notice(&self, notice: Option<&str>) {
        self.update(|state| Ok::<_, Infallible>(Some(state.with_notice(notice))))
            .unwrap_or_else(|never| match never {});
    }

    /// Builds every model's search indices of the current state (token search, and explanations by
    /// meaning when the server has a query encoder) on a background thread (see
    /// [`AppState::warm_search_indexes`]); a reload drops them, since the data they index may have
    /// changed.
    pub fn warm_search_indexes(&self) {
        self.state().warm_search_indexes();
    }

    /// The state requests now get.
    pub fn state(&self) -> Arc<AppState> {
        self.shared.current.read().unwrap_or_else(PoisonError::into_inner).state.clone()
    }

    /// Swaps in the state `next` makes from the current one, if it makes one.
    fn update<E>(&self, next: impl FnOnce(&AppState) -> Result<Option<AppState>, E>) -> Result<(), E> {
        let _updating = self.shared.updating.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = next(&self.state())? else { return Ok(()) };
        let state = Arc::new(state);
        let routes = (self.shared.build)(state.clone());
        let replaced = std::mem::replace(
            &mut *self.shared.current.write().unwrap_or_else(PoisonError::into_inner),
            Current { state, routes },
        );
        // Dropped after the lock is released: the last reference to an old state may free its
        // model contexts and search indices, which is no work to do while requests wait.
        drop(replaced);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use dd_data::{Explanation, Explanations, ModelMetadata, ModelRecord, NeuronRecord, Provenance, Vocabulary};
    use dd_store::{EncodeOptions, ReadConfig, SqliteStore, StoreLocation};

    use super::*;
    use crate::ServerConfig;

    fn metadata() -> ModelMetadata {
        ModelMetadata {
            name: "m".into(),
            architecture: "synthetic".into(),
            n_layers: 2,
            d_mlp: 4,
            d_model: 8,
            activation_function: "gelu".into(),
            dataset: "test".into(),
            training_dataset: None,
            n_parameters: 1000,
            context_length: 16,
            provenance: Provenance {
                data_source: "unit test".into(),
                model_source: None,
                weights: None,
                tokens_recorded: 100,
                tool_version: "0".into(),
                recorded_at: "2026-01-01T00:00:00Z".into(),
            },
        }
    }

    fn explanations(text: &str) -> NeuronRecord {
        let explanation = Explanation { text: text.into(), origin: "test".into(), ..Explanation::default() };
        NeuronRecord::Explanations(Explanations { explanations: vec![explanation] })
    }

    /// A finished database of one model with a vocabulary and nothing else.
    fn database(dir: &tempfile::TempDir) -> StoreLocation {
        let location = StoreLocation::SqliteFile(dir.path().join("served.db"));
        let mut writer = location.open_writer(EncodeOptions::STANDARD).expect("open writer");
        let (model, _) = writer.add_model(&metadata()).expect("add model");
        let mut batch = writer.batch().expect("batch");
        let tokens = (0..8).map(|i| format!("t{i}")).collect();
        batch.put_model(model, &ModelRecord::Vocabulary(Vocabulary { tokens })).expect("put vocabulary");
        batch.commit().expect("commit");
        writer.finish().expect("finish");
        location
    }

    fn serve(location: &StoreLocation, read_config: &ReadConfig) -> (ReloadableApp, ReloadHandle) {
        let StoreLocation::SqliteFile(path) = location else { unreachable!("only SQLite files exist") };
        let store = SqliteStore::open(path, read_config).expect("open store");
        let state = AppState::load(Arc::new(store), ServerConfig::standard()).expect("state");
        crate::reloadable_app(Arc::new(state))
    }

    struct Answer {
        status: StatusCode,
        etag: String,
        body: String,
    }

    fn get(
        runtime: &tokio::runtime::Runtime,
        app: &ReloadableApp,
        target: &str,
        if_none_match: Option<&str>,
    ) -> Answer {
        let mut request = Request::get(target);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let request = request.body(Body::empty()).expect("request");
        let response = runtime.block_on(app.clone().oneshot(request)).expect("infallible");
        answer(runtime, response)
    }

    fn answer(runtime: &tokio::runtime::Runtime, response: Response) -> Answer {
        let status = response.status();
        let etag = response.headers().get(header::ETAG).map(|tag| tag.to_str().expect("ascii").to_owned());
        let body = runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("body");
        Answer { status, etag: etag.unwrap_or_default(), body: String::from_utf8_lossy(&body).into_owned() }
    }

    fn notice_of(index: &Answer) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&index.body).expect("json")["notice"].clone()
    }

    /// A served database gains a data kind from a writer: the route answers 404 until `reload`, then
    /// 200 with the new data under a new ETag (an old tag no longer earns a 304); a request that
    /// started before the reload finishes on the old state; a notice shows on pages (escaped) and in
    /// `GET /api` with its own ETag, and clearing it restores the page and the tag; the writer
    /// finishes while the server still reads.
    #[test]
    fn a_reload_serves_what_was_written_while_serving() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = database(&dir);
        let (app, handle) = serve(&location, &ReadConfig::serving_while_written());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let route = "/api/m/explanations/1/2";
        assert_eq!(get(&runtime, &app, route, None).status, StatusCode::NOT_FOUND);
        let before = get(&runtime, &app, "/api", None);
        assert_eq!(before.status, StatusCode::OK);
        assert_eq!(notice_of(&before), serde_json::Value::Null, "{}", before.body);
        assert!(!before.body.contains("\"explanations\""));

        let mut writer = location.open_writer(EncodeOptions::STANDARD).expect("a writer opens under the server");
        let source = writer.catalog().expect("catalog").models()[0].sources[0].id;
        let mut batch = writer.batch().expect("batch");
        batch.put_neuron(source, 1, 2, &explanations("commas in lists")).expect("put");
        batch.commit().expect("commit");
        assert_eq!(get(&runtime, &app, route, None).status, StatusCode::NOT_FOUND, "the catalog is read on reload");

        let started_before = Service::call(&mut app.clone(), Request::get(route).body(Body::empty()).expect("request"));
        handle.reload().expect("reload");
        let in_flight = answer(&runtime, runtime.block_on(started_before).expect("infallible"));
        assert_eq!(in_flight.status, StatusCode::NOT_FOUND, "a request keeps the state it started with");
        let added = get(&runtime, &app, route, None);
        assert_eq!(added.status, StatusCode::OK);
        assert!(added.body.contains("commas in lists"), "{}", added.body);
        let after = get(&runtime, &app, "/api", None);
        assert!(after.body.contains("\"explanations\""), "available_services lists the new kind");
        assert_ne!(after.etag, before.etag);
        assert_eq!(get(&runtime, &app, "/api", Some(&before.etag)).status, StatusCode::OK);
        assert_eq!(get(&runtime, &app, "/api", Some(&after.etag)).status, StatusCode::NOT_MODIFIED);
        writer.finish().expect("the writer finishes while the server reads");
        assert_eq!(get(&runtime, &app, route, None).status, StatusCode::OK);

        let text = "Neuron2Graph graphs are being built for the 20 most interesting neurons: 7 of 20 <done>";
        handle.set_notice(Some(text));
        let escaped = "7 of 20 &lt;done&gt;</p></div>";
        for page in ["/", "/viz/m", "/viz/m/1/2", "/viz/no-such-model"] {
            let answer = get(&runtime, &app, page, None);
            assert!(answer.body.contains(escaped), "{page} ({}) shows the notice: {}", answer.status, answer.body);
        }
        let noticed = get(&runtime, &app, "/api", None);
        assert_eq!(notice_of(&noticed), serde_json::Value::from(text));
        assert_ne!(noticed.etag, after.etag);
        assert_eq!(get(&runtime, &app, "/api", Some(&after.etag)).status, StatusCode::OK);
        handle.reload().expect("reload");
        assert_eq!(notice_of(&get(&runtime, &app, "/api", None)), serde_json::Value::from(text), "reloads keep it");
        let kept = handle.state();
        handle.reload().expect("reload without writes");
        assert!(Arc::ptr_eq(&kept, &handle.state()), "nothing written: the state, and its indices, stay");

        handle.set_notice(None);
        assert!(!get(&runtime, &app, "/", None).body.contains("server-notice"));
        let cleared = get(&runtime, &app, "/api", None);
        assert_eq!(notice_of(&cleared), serde_json::Value::Null);
        assert_eq!(cleared.etag, after.etag, "the tag is derived from what the answers hold");
    }

    /// A reload keeps the query encoder, and the explanation index is built again over what was
    /// written: search by meaning finds each newly written explanation after the reload that serves it.
    #[test]
    fn a_reload_keeps_the_query_encoder_and_indexes_new_explanations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = database(&dir);
        let StoreLocation::SqliteFile(path) = &location else { unreachable!("only SQLite files exist") };
        let store = SqliteStore::open(path, &ReadConfig::serving_while_written()).expect("open store");
        let state = AppState::load(Arc::new(store), ServerConfig::standard())
            .expect("state")
            .with_query_encoder(Arc::new(crate::testing::BagOfWords));
        let (app, handle) = crate::reloadable_app(Arc::new(state));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let search = |query: &str| {
            let answer = get(&runtime, &app, &format!("/api/m/explanation-search?q={query}"), None);
            let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
            (answer.status, body)
        };
        assert_eq!(search("commas").0, StatusCode::NOT_FOUND, "no explanations yet");

        let embedded = |text: &str| {
            let embedding = dd_data::TextEmbedding::quantize(
                crate::testing::TEST_EMBEDDING_MODEL,
                &crate::testing::bag_of_words(text),
            );
            let explanation = Explanation {
                text: text.into(),
                origin: "test".into(),
                embedding: Some(embedding),
                ..Explanation::default()
            };
            NeuronRecord::Explanations(Explanations { explanations: vec![explanation] })
        };
        for (layer, neuron, text) in [(1, 2, "commas in lists"), (0, 1, "semicolons between clauses")] {
            let mut writer = location.open_writer(EncodeOptions::STANDARD).expect("writer");
            let source = writer.catalog().expect("catalog").models()[0].sources[0].id;
            let mut batch = writer.batch().expect("batch");
            batch.put_neuron(source, layer, neuron, &embedded(text)).expect("put");
            batch.commit().expect("commit");
            writer.finish().expect("finish");
            handle.reload().expect("reload");
            let word = text.split(' ').next().expect("a word");
            let (status, body) = search(word);
            assert_eq!(status, StatusCode::OK, "{body}");
            let first = &body["data"]["explanations"][0];
            assert_eq!(
                (&first["layer"], &first["neuron"], &first["text"]),
                (&layer.into(), &neuron.into(), &text.into())
            );
        }
        let index = get(&runtime, &app, "/api", None);
        assert!(index.body.contains("\"explanation-search\""), "still listed: {}", index.body);
        assert!(index.etag.contains("-q"), "the tag names the encoder: {}", index.etag);
    }

    /// A database opened `immutable` cannot be reloaded: the reload fails and the server keeps
    /// serving its state.
    #[test]
    fn an_immutable_store_refuses_to_reload_and_keeps_serving() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = database(&dir);
        let (app, handle) = serve(&location, &ReadConfig::serving());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        assert!(matches!(handle.reload(), Err(StoreError::OpenedImmutable { .. })));
        assert_eq!(get(&runtime, &app, "/api/m/metadata", None).status, StatusCode::OK);
    }
}
