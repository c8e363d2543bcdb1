//! dcmon's web side: the server-rendered dashboard and the HTTP API. `app(state)`
//! builds the router; handlers stay thin: one store call, a view model, a template.
//! Templates live in the top-level `templates/` folder and are built into the binary.

pub mod actions;
mod actions_page;
mod alerts_page;
mod api;
pub mod auth;
pub mod central;
mod chart;
mod error;
mod gate;
mod gpu_health;
mod handlers;
mod hardware;
mod host_page;
mod login_page;
mod logs_page;
mod metrics;
mod params;
pub mod prom_answer;
mod promql_api;
mod view;

pub use auth::AccessConfig;
pub use error::WebError;
pub use view::Thresholds;

use axum::Router;
use axum::routing::{get, post};
use dcmon_store::Store;
use std::sync::{Arc, Mutex};

/// How the dashboard is set up (from the inventory's `[web]`).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub thresholds: Thresholds,
    pub access: AccessConfig,
}

/// Longest a dashboard query may run before SQLite stops it: one slow request must not
/// hold a reader that others wait for.
pub const QUERY_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// The read connections, used by one query at a time each.
struct Readers {
    stores: Vec<Mutex<Store>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Readers {
    /// A free connection if there is one, else the next in turn (waiting for it).
    fn run<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        use std::sync::atomic::Ordering;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.stores.len();
        for i in 0..n {
            if let Ok(mut store) = self.stores[(start + i) % n].try_lock() {
                return f(&mut store);
            }
        }
        let mut store = self.stores[start % n]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&mut store)
    }
}

/// What handlers share: read connections to the store, the templates, who may do what.
#[derive(Clone)]
pub struct AppState {
    readers: Arc<Readers>,
    templates: Arc<minijinja::Environment<'static>>,
    access: Arc<auth::Access>,
    thresholds: Thresholds,
    /// Runs dashboard actions (`dcmon serve` plugs one in).
    runner: Option<Arc<dyn actions::Runner>>,
    actions: Arc<actions::Actions>,
    /// `/metrics`' series texts, kept between scrapes.
    written: Arc<Mutex<metrics::Written>>,
    /// The poller's own figures, appended to `/metrics`.
    own_metrics: Option<OwnMetrics>,
    /// The central view: pages read from a Prometheus API, not from the store.
    central: Option<central::Central>,
}

/// Writes the poller's own series (exposition text) at the end of `/metrics`.
pub type OwnMetrics = Arc<dyn Fn(&mut String) + Send + Sync>;

impl AppState {
    /// `store` is a connection of its own (WAL lets it read while the poller writes).
    pub fn new(store: Store, config: Config) -> AppState {
        let mut env = minijinja::Environment::new();
        env.add_filter("segment", path_segment);
        // .html templates are auto-escaped: host names, labels and log lines stay text.
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("built-in templates parse"); // checked by tests
        }
        AppState {
            readers: Arc::new(Readers {
                stores: vec![Mutex::new(store)],
                next: Default::default(),
            }),
            templates: Arc::new(env),
            access: Arc::new(auth::Access::new(config.access)),
            thresholds: config.thresholds,
            runner: None,
            actions: Arc::default(),
            written: Arc::default(),
            own_metrics: None,
            central: None,
        }
    }

    /// Serves the central view: overview and host pages read from `central`'s
    /// Prometheus API; what only pollers keep links to them.
    pub fn with_central(mut self, central: central::Central) -> AppState {
        self.central = Some(central);
        self
    }

    /// Every host's overview row, from the store or the central view's backend.
    async fn host_summaries(
        &self,
        now: i64,
    ) -> Result<Vec<dcmon_store::overview::HostSummary>, WebError> {
        match &self.central {
            Some(central) => central::overview::hosts(central, now).await,
            None => {
                self.query(move |s| crate::gpu_health::overview(s, now))
                    .await
            }
        }
    }

    /// Adds the poller's own series to `/metrics`.
    pub fn with_own_metrics(mut self, own: OwnMetrics) -> AppState {
        self.own_metrics = Some(own);
        self
    }

    /// More read connections to the same database, so a slow query holds only one of
    /// them (call before the state is cloned).
    pub fn with_readers(mut self, more: Vec<Store>) -> AppState {
        if let Some(readers) = Arc::get_mut(&mut self.readers) {
            readers.stores.extend(more.into_iter().map(Mutex::new));
        }
        self
    }

    /// Lets admins run actions on hosts through `runner`.
    pub fn with_runner(mut self, runner: Arc<dyn actions::Runner>) -> AppState {
        self.runner = Some(runner);
        self
    }

    /// Checks what can be checked before serving (token files).
    pub fn check(&self) -> Result<(), String> {
        self.access.check_files()
    }

    /// Runs a store query off the async runtime (SQLite blocks). `f` may run more than
    /// once: a read the sealer moved past is read again (`Store::snapshot`).
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnMut(&Store) -> Result<T, dcmon_store::StoreError> + Send + 'static,
    ) -> Result<T, WebError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.run(|store| store.within(QUERY_BUDGET, f)))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
            .map_err(WebError::from)
    }

    /// Runs a store change (silences) off the async runtime; SQLite's busy timeout, not
    /// the query budget, bounds its wait for the writer.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, dcmon_store::StoreError> + Send + 'static,
    ) -> Result<T, WebError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.run(f))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
            .map_err(WebError::from)
    }

    /// A page in the layout, with the navigation's firing-alert count.
    async fn page(
        &self,
        name: &str,
        context: minijinja::Value,
    ) -> Result<axum::response::Html<String>, WebError> {
        // A count that cannot be read leaves the link plain rather than the page broken.
        let firing = self.query(|s| s.firing_count()).await.unwrap_or(0);
        let context = minijinja::context! { nav_firing => firing, ..context };
        Ok(axum::response::Html(self.render(name, context)?))
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

const TEMPLATES: [(&str, &str); 11] = [
    ("alerts.html", include_str!("../../templates/alerts.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("layout.html", include_str!("../../templates/layout.html")),
    (
        "overview.html",
        include_str!("../../templates/overview.html"),
    ),
    ("host.html", include_str!("../../templates/host.html")),
    ("probes.html", include_str!("../../templates/probes.html")),
    ("logs.html", include_str!("../../templates/logs.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("action.html", include_str!("../../templates/action.html")),
    ("audit.html", include_str!("../../templates/audit.html")),
    ("pollers.html", include_str!("../../templates/pollers.html")),
];

/// A value as one URL path segment: everything but unreserved characters
/// percent-encoded (`urlencode` leaves `/`, which would split a host name in two).
fn path_segment(value: String) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Writes one line to the server's log; a closed stderr must not take the server down.
pub(crate) fn log_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn app(state: AppState) -> Router {
    let shared = Router::new()
        .route("/", get(handlers::overview))
        .route("/health", get(handlers::health))
        .route("/hosts/{host}", get(host_page::page))
        .route("/api/hosts", get(handlers::api_hosts))
        .route("/metrics", get(handlers::metrics))
        .route("/login", get(login_page::page).post(login_page::login))
        .route("/logout", post(login_page::logout))
        .route("/static/live.js", get(handlers::live_script));
    let router = if state.central.is_some() {
        // The central view: what only pollers keep is a page linking to them.
        use central::pollers_page;
        shared
            .route("/hosts/{host}/logs", get(pollers_page::host))
            .route("/probes", get(pollers_page::all))
            .route("/alerts", get(pollers_page::all))
            .route("/audit", get(pollers_page::all))
    } else {
        local_routes(shared)
    };
    router
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ))
        .with_state(state)
}

/// The pages and API of a poller's own store.
fn local_routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/hosts/{host}/logs", get(logs_page::page))
        .route("/probes", get(handlers::probes))
        .route("/alerts", get(alerts_page::page))
        .route("/alerts/silences", post(alerts_page::add_silence))
        .route(
            "/alerts/silences/{id}/expire",
            post(alerts_page::expire_silence),
        )
        .route("/api/alerts", get(alerts_page::api))
        .route("/api/alerts/history", get(alerts_page::api_history))
        .route("/api/hosts/{host}", get(api::host))
        .route("/api/series", get(api::series))
        .route("/api/timeseries/{metric}", get(api::timeseries))
        .route("/api/timeseries/{metric}/rate", get(api::rate))
        .route("/api/logs/{host}", get(api::logs))
        .route(
            "/api/query",
            get(promql_api::instant).post(promql_api::instant),
        )
        .route(
            "/api/v1/query",
            get(promql_api::instant).post(promql_api::instant),
        )
        .route(
            "/api/v1/query_range",
            get(promql_api::range).post(promql_api::range),
        )
        .route("/api/openapi.json", get(handlers::openapi))
        .route("/static/action.js", get(handlers::action_script))
        .route("/hosts/{host}/actions", post(actions_page::start))
        .route("/actions/{id}", get(actions_page::page))
        .route("/actions/{id}/events", get(actions_page::events))
        .route("/audit", get(handlers::audit))
}

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod crawl_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod openapi_tests;
#[cfg(test)]
mod tests;
