//! The `dcmon` binary: glue over the library crates. `main` calls `run`, which turns
//! parsed arguments into a command and returns the exit code: 0 all good, 1 the
//! command ran and found problems (a bad inventory, a failed host), 2 it could not run.

mod actions_runner;
mod alerts_cmd;
mod args;
mod audit_cmd;
mod audited;
mod central_cmd;
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
            eprintln!("dcmon: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each cause said once: library errors already
/// carry their source in their own message (`cannot open database x: file is not a
/// database`), and anyhow's chain would repeat it after them.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        // Said already, or said already behind a prefix (`Error code 26: ...`).
        let said = text.contains(&part)
            || part
                .split_once(": ")
                .is_some_and(|(_, rest)| !rest.is_empty() && text.contains(rest));
        if !said {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
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
                shard,
            } => inventory_cmd::list(&file, selector.as_deref(), json, resolved, shard.as_deref()),
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

#[cfg(test)]
mod tests {
    /// Each cause once: a library error that quotes its source, and a source that
    /// repeats the words behind a code, read as one plain line.
    #[test]
    fn error_text_says_each_cause_once() {
        #[derive(Debug)]
        struct Coded;
        impl std::fmt::Display for Coded {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Error code 26: file is not a database")
            }
        }
        impl std::error::Error for Coded {}
        #[derive(Debug)]
        struct Quoting(Coded);
        impl std::fmt::Display for Quoting {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("cannot open database x.db: file is not a database")
            }
        }
        impl std::error::Error for Quoting {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Quoting(Coded)).context("opening x.db");
        assert_eq!(
            super::error_text(&e),
            "opening x.db: cannot open database x.db: file is not a database"
        );
        let plain = anyhow::anyhow!("no such host").context("polling gpu01");
        assert_eq!(super::error_text(&plain), "polling gpu01: no such host");
    }
}
