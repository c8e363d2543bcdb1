//! dcmon's alerting: the store as a PromQL source (also for `/api/query`), the rules'
//! state machine, and delivery to Alertmanager.

pub mod alertmanager;
pub mod engine;
pub mod mail;
mod store_source;

pub use engine::{Engine, RuleError};
pub use store_source::{StoreSource, exposed_labels};
