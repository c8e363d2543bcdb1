//! dcmon's alerting: the store as a PromQL source (also for `/api/query`), the rules'
//! state machine, silences, and delivery to Alertmanager, e-mail, webhooks and Slack.

pub mod alertmanager;
pub mod engine;
pub mod http;
pub mod mail;
pub mod notify;
pub mod silence;
mod store_source;

pub use engine::{Engine, RuleError};
pub use store_source::{StoreSource, exposed_labels};
