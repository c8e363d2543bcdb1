//! The alert loop of `dcmon serve`: every `evaluation_interval`, the rules over the store
//! (its own read connection), the changes to the writer thread, the alerts to each
//! matching Alertmanager. Rules and receivers follow inventory reloads.

use crate::ingest::Writer;
use dcmon_alerts::alertmanager::{Sender, body};
use dcmon_alerts::{Engine, StoreSource, mail};
use dcmon_inventory::{Alerting, Target};
use dcmon_store::Store;
use dcmon_store::alerts::AlertRow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Runs until `stop` turns true.
pub(super) async fn run(
    db: PathBuf,
    mut config: watch::Receiver<Alerting>,
    writer: Writer,
    mut stop: watch::Receiver<bool>,
) {
    let opened = tokio::task::spawn_blocking(move || {
        let store = Store::open(&db)?;
        let stored = store.alerts()?;
        Ok::<_, dcmon_store::StoreError>((store, stored))
    })
    .await;
    let (mut store, stored) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => {
            return crate::log!("dcmon serve: alerting is off: cannot read the store: {e}");
        }
        Err(e) => return crate::log!("dcmon serve: alerting is off: {e}"),
    };
    let mut engine = Engine::new(&config.borrow_and_update(), stored);
    let sender = Sender::default();
    // The last problem reported per rule and per receiver: said once, not every round.
    let mut said: HashMap<String, String> = HashMap::new();
    let mut tick = tokio::time::interval(period(&engine));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
                engine.configure(&config.borrow_and_update());
                tick = tokio::time::interval(period(&engine));
                continue;
            }
            _ = stop.changed() => if *stop.borrow() { break },
        }
        // No rules and nothing left to resolve or forget: nothing to do.
        if engine.rules.is_empty() && engine.states().next().is_none() {
            continue;
        }
        let now = crate::host_round::now_ms();
        let evaluated = tokio::task::spawn_blocking(move || {
            let result = engine.evaluate(&StoreSource(&store), now);
            (engine, store, result)
        })
        .await;
        let (changes, errors);
        (engine, store, (changes, errors)) = match evaluated {
            Ok(done) => done,
            Err(e) => return crate::log!("dcmon serve: alerting stopped: {e}"),
        };
        for rule in &engine.rules {
            let error = errors.iter().find(|e| e.rule == rule.config.name);
            report(
                &mut said,
                format!("rule {}", rule.config.name),
                error.map(|e| e.error.clone()),
            );
        }
        if !(changes.upserts.is_empty()
            && changes.removed.is_empty()
            && changes.transitions.is_empty())
        {
            writer.alerts(changes);
        }
        // Firing alerts stay valid for four intervals (at least four minutes) without news.
        let valid = 4 * engine.interval_ms.max(60_000);
        let mut sent = Vec::new();
        for receiver in engine.receivers.clone() {
            let result = match &receiver.target {
                Target::Alertmanager(url) => {
                    let list = engine.to_send(&receiver);
                    if list.is_empty() {
                        continue;
                    }
                    sender.post(url, body(&list, now, valid, None)).await
                }
                Target::Smtp(smtp) => {
                    let due: Vec<(AlertRow, &'static str)> = engine
                        .due(&receiver, now)
                        .into_iter()
                        .map(|(a, state)| (a.clone(), state))
                        .collect();
                    let mut result = Ok(());
                    for (alert, state) in due {
                        let message = (mail::subject(&alert, state), mail::body(&alert, state));
                        match mail::send(smtp, message.0, message.1).await {
                            Ok(()) => sent.extend(engine.mark_sent(
                                &receiver.name,
                                &alert.key,
                                state,
                                now,
                            )),
                            Err(e) => {
                                // Tried again at the next evaluation.
                                result = Err(e);
                                break;
                            }
                        }
                    }
                    result
                }
            };
            report(
                &mut said,
                format!("receiver {}", receiver.name),
                result.err(),
            );
        }
        // Who was told what, stored at once: a restart must not tell them again.
        if !sent.is_empty() {
            writer.alerts(dcmon_store::alerts::AlertChanges {
                upserts: sent,
                ..Default::default()
            });
        }
    }
}

fn period(engine: &Engine) -> Duration {
    Duration::from_millis(engine.interval_ms.max(1000) as u64)
}

/// Logs a problem when it starts or changes, and its end.
fn report(said: &mut HashMap<String, String>, what: String, problem: Option<String>) {
    match (problem, said.get(&what)) {
        (Some(p), Some(before)) if *before == p => {}
        (Some(p), _) => {
            crate::log!("dcmon serve: alerting: {what}: {p}");
            said.insert(what, p);
        }
        (None, Some(_)) => {
            crate::log!("dcmon serve: alerting: {what}: working again");
            said.remove(&what);
        }
        (None, None) => {}
    }
}
