//! dcmon's inventory: which hosts to monitor, how to reach them, what to run on them.
//!
//! `inventory.toml` has `[defaults]`, `[groups.NAME]` and `[[hosts]]`; settings inherit
//! defaults < groups < host, and group `hosts` patterns expand ranges such as
//! `gpu[01-16].dc1`. Loading collects every problem with its `FILE:LINE:COL` instead of
//! stopping at the first, so one `dcmon inventory check` shows everything to fix.

pub mod cluster;
pub mod hostrange;
pub mod load;
pub mod location;
pub mod model;
mod raw;
pub mod selector;
pub mod ssh_config;
mod types;

pub use load::{
    InventoryError, Problem, Problems, annotation_template, expand_path, load, parse,
    parse_duration,
};
pub use model::{
    AlertRule, Alerting, Bmc, BmcProtocol, BmcTls, FanProfile, Host, Identity, Inventory,
    ProbeSchedule, Receiver, ShellMode, Smtp, SmtpTls, SshEndpoint, Target, Thresholds, Transport,
    ViewAccess, Web,
};
pub use selector::{SelectorError, select};
