//! The `dcmon` binary: glue over the library crates. `main` calls `run`, which turns
//! parsed arguments into a command and returns the exit code: 0 all good, 1 the
//! command ran and found problems (a bad inventory, a failed host), 2 it could not run.

mod actions_runner;
mod alerts_cmd;
mod args;
mod audit_cmd;
mod audited;
mod control;
mod db_cmd;
mod exec_cmd;
mod fan_cmd;
mod inventory_cmd;
mod parse_cmd;
mod poll_cmd;
mod probes_cmd;
mod series_cmd;
mod serve_cmd;
mod table;
mod web_cmd;
mod web_limits;

use args::{Cli, Command, InventoryCommand};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dcmon: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inventory { command } => match command {
            InventoryCommand::Check { file } => inventory_cmd::check(&file),
            InventoryCommand::List {
                file,
                selector,
                json,
                resolved,
            } => inventory_cmd::list(&file, selector.as_deref(), json, resolved),
        },
        Command::Alerts(args) => alerts_cmd::alerts(args),
        Command::Poll(args) => poll_cmd::poll(args),
        Command::Series(args) => series_cmd::series(args),
        Command::Serve(args) => serve_cmd::serve(args),
        Command::Exec(args) => exec_cmd::exec(args),
        Command::Audit(args) => audit_cmd::audit(args),
        Command::Fan(args) => fan_cmd::fan(args),
        Command::Parse(args) => parse_cmd::parse(args),
        Command::Db { command } => db_cmd::db(command),
        Command::Probes {
            command: args::ProbesCommand::List { json },
        } => probes_cmd::list(json),
        Command::Probe {
            command: args::ProbeCommand::Run(args),
        } => probes_cmd::run(args),
    }
}
