//! dcmon's alerting: the store as a PromQL source (also for `/api/query`), rules, their
//! state, and notifiers.

mod store_source;

pub use store_source::{StoreSource, exposed_labels};
