//! dcmon's web side: the server-rendered dashboard and the HTTP API. `app(state)`
//! builds the router; handlers stay thin: one store call, a view model, a template.
//! Templates live in the top-level `templates/` folder and are built into the binary.

mod api;
mod chart;
mod error;
mod handlers;
mod host_page;
mod logs_page;
mod metrics;
mod params;
mod view;

pub use error::WebError;

use axum::Router;
use axum::routing::get;
use dcmon_store::Store;
use std::sync::{Arc, Mutex};

/// What handlers share: a read connection to the store and the templates.
#[derive(Clone)]
pub struct AppState {
    store: Arc<Mutex<Store>>,
    templates: Arc<minijinja::Environment<'static>>,
}

impl AppState {
    /// `store` is a connection of its own (WAL lets it read while the poller writes).
    pub fn new(store: Store) -> AppState {
        let mut env = minijinja::Environment::new();
        // .html templates are auto-escaped: host names, labels and log lines stay text.
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("built-in templates parse"); // checked by tests
        }
        AppState {
            store: Arc::new(Mutex::new(store)),
            templates: Arc::new(env),
        }
    }

    /// Runs a store query off the async runtime (SQLite blocks).
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, dcmon_store::StoreError> + Send + 'static,
    ) -> Result<T, WebError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            f(&store)
        })
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(WebError::from)
    }

    fn render(&self, name: &str, context: minijinja::Value) -> Result<String, WebError> {
        let template = self
            .templates
            .get_template(name)
            .map_err(|e| WebError::Internal(e.to_string()))?;
        template
            .render(context)
            .map_err(|e| WebError::Internal(e.to_string()))
    }
}

const TEMPLATES: [(&str, &str); 5] = [
    ("layout.html", include_str!("../../templates/layout.html")),
    (
        "overview.html",
        include_str!("../../templates/overview.html"),
    ),
    ("host.html", include_str!("../../templates/host.html")),
    ("probes.html", include_str!("../../templates/probes.html")),
    ("logs.html", include_str!("../../templates/logs.html")),
];

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(handlers::overview))
        .route("/health", get(handlers::health))
        .route("/hosts/{host}", get(host_page::page))
        .route("/hosts/{host}/logs", get(logs_page::page))
        .route("/probes", get(handlers::probes))
        .route("/api/hosts", get(handlers::api_hosts))
        .route("/api/hosts/{host}", get(api::host))
        .route("/api/series", get(api::series))
        .route("/api/timeseries/{metric}", get(api::timeseries))
        .route("/api/timeseries/{metric}/rate", get(api::rate))
        .route("/api/logs/{host}", get(api::logs))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .with_state(state)
}

#[cfg(test)]
mod tests;
