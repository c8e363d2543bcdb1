//! `[web]`: checked with the rest of the inventory, so a typo in a token path or a
//! threshold is reported with its line before the dashboard starts.

use super::{Checker, expand_path};
use crate::model::{Thresholds, ViewAccess, Web};
use crate::path;
use crate::raw::RawWeb;

pub(super) const WEB_KEYS: &[&str] = &[
    "listen",
    "view",
    "admin_token_file",
    "viewer_token_file",
    "tls_cert",
    "tls_key",
    "trusted_proxies",
    "thresholds",
    "backend",
];

pub(super) const BACKEND_KEYS: &[&str] = &["prometheus"];

pub(super) const THRESHOLD_KEYS: &[&str] = &["cpu", "memory", "gpu_temp", "bmc_temp", "nvme_wear"];

fn thresholds_of(raw: &RawWeb) -> [(&'static str, Option<[f64; 2]>); 5] {
    let t = &raw.thresholds;
    [
        ("cpu", t.cpu),
        ("memory", t.memory),
        ("gpu_temp", t.gpu_temp),
        ("bmc_temp", t.bmc_temp),
        ("nvme_wear", t.nvme_wear),
    ]
}

impl Checker<'_> {
    pub(super) fn check_web(&mut self, raw: &RawWeb) {
        if let Some(view) = &raw.view
            && view != "open"
            && view != "login"
        {
            self.problem(
                &path!["web", "view"],
                false,
                format!("view `{view}` is not `open` or `login`"),
            );
        }
        if raw.view.as_deref() == Some("login")
            && raw.admin_token_file.is_none()
            && raw.viewer_token_file.is_none()
        {
            self.problem(
                &path!["web", "view"],
                false,
                "view = \"login\" needs a token to log in with: set admin_token_file or viewer_token_file"
                    .to_string(),
            );
        }
        if let Some(listen) = &raw.listen
            && listen != "off"
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            self.problem(
                &path!["web", "listen"],
                false,
                format!("listen `{listen}` is not an address and port like \"127.0.0.1:8000\" (or \"off\")"),
            );
        }
        match (&raw.tls_cert, &raw.tls_key) {
            (Some(_), None) => self.problem(
                &path!["web", "tls_cert"],
                true,
                "tls_cert is set without tls_key: HTTPS needs both".to_string(),
            ),
            (None, Some(_)) => self.problem(
                &path!["web", "tls_key"],
                true,
                "tls_key is set without tls_cert: HTTPS needs both".to_string(),
            ),
            _ => {}
        }
        for address in raw.trusted_proxies.iter().flatten() {
            if address.parse::<std::net::IpAddr>().is_err() {
                self.problem(
                    &path!["web", "trusted_proxies"],
                    false,
                    format!(
                        "trusted_proxies: `{address}` is not an IP address like \"127.0.0.1\" (one address each, no ranges)"
                    ),
                );
            }
        }
        if let Some(backend) = &raw.backend {
            match &backend.prometheus {
                None => self.problem(
                    &path!["web", "backend"],
                    true,
                    "backend needs prometheus = \"http://HOST:PORT\" (the Prometheus HTTP API of VictoriaMetrics or Prometheus)".to_string(),
                ),
                Some(url) => {
                    if let Err(why) = super::remote::check_url(url) {
                        self.problem(&path!["web", "backend", "prometheus"], false, why);
                    }
                }
            }
        }
        for (key, levels) in thresholds_of(raw) {
            if let Some([warn, crit]) = levels
                && !(warn.is_finite() && crit.is_finite() && warn <= crit)
            {
                self.problem(
                    &path!["web", "thresholds", key],
                    false,
                    format!(
                        "thresholds {key} = [{warn}, {crit}]: write [warning, critical] with warning ≤ critical"
                    ),
                );
            }
        }
    }

    /// The checked `[web]` (problems were reported by `check_web`).
    pub(super) fn resolve_web(&self, raw: &RawWeb) -> Web {
        let path = |p: &Option<String>| p.as_deref().map(|p| expand_path(p, &self.base_dir));
        let defaults = Thresholds::default();
        let level =
            |set: Option<[f64; 2]>, default: (f64, f64)| set.map_or(default, |[w, c]| (w, c));
        let t = &raw.thresholds;
        Web {
            listen: raw.listen.clone(),
            view: if raw.view.as_deref() == Some("login") {
                ViewAccess::Login
            } else {
                ViewAccess::Open
            },
            admin_token_file: path(&raw.admin_token_file),
            viewer_token_file: path(&raw.viewer_token_file),
            tls: path(&raw.tls_cert).zip(path(&raw.tls_key)),
            trusted_proxies: raw
                .trusted_proxies
                .iter()
                .flatten()
                .filter_map(|a| a.parse().ok())
                .collect(),
            backend: raw
                .backend
                .as_ref()
                .and_then(|b| b.prometheus.clone())
                .map(|url| url.trim_end_matches('/').to_string()),
            thresholds: Thresholds {
                cpu: level(t.cpu, defaults.cpu),
                memory: level(t.memory, defaults.memory),
                gpu_temp: level(t.gpu_temp, defaults.gpu_temp),
                bmc_temp: level(t.bmc_temp, defaults.bmc_temp),
                nvme_wear: level(t.nvme_wear, defaults.nvme_wear),
            },
        }
    }
}
