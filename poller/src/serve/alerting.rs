//! The alert loop of `dcmon serve`: every `evaluation_interval`, the rules over the store
//! (its own read connection), the changes to the writer thread, the alerts to each
//! matching Alertmanager. Every second, the silences in force (copied to each
//! Alertmanager) and the messages owed to receivers dcmon sends to itself (e-mail,
//! webhook, Slack), each receiver retried with backoff while it fails. Rules and
//! receivers follow inventory reloads.

use crate::ingest::Writer;
use dcmon_alerts::http::Http;
use dcmon_alerts::notify::{self, Notification};
use dcmon_alerts::silence::Silences;
use dcmon_alerts::{Engine, StoreSource, alertmanager, mail};
use dcmon_inventory::{Alerting, Receiver, Target};
use dcmon_store::Store;
use dcmon_store::alerts::AlertChanges;
use dcmon_store::silences::{Delivery, Silence};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often silences and owed messages are looked at.
const DISPATCH_EVERY: Duration = Duration::from_secs(1);

/// A failing receiver is tried again after 2 s, doubling up to this.
const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;

/// Silences that ended this long ago are no longer looked at (their copies lifted).
const SILENCE_LOOKBACK_MS: i64 = 24 * 3600 * 1000;

/// When a failing receiver is tried again.
#[derive(Default)]
struct Backoff {
    failures: u32,
    next_try: i64,
}

impl Backoff {
    fn failed(&mut self, now: i64) {
        self.failures = self.failures.saturating_add(1);
        let delay = 1000i64
            .checked_shl(self.failures.min(20))
            .unwrap_or(MAX_BACKOFF_MS)
            .min(MAX_BACKOFF_MS);
        self.next_try = now.saturating_add(delay);
    }
}

struct Loop {
    store: Arc<Mutex<Store>>,
    writer: Writer,
    http: Http,
    /// The last problem reported per rule and per receiver: said once, not every round.
    said: HashMap<String, String>,
    backoff: HashMap<String, Backoff>,
    /// Stored silences, read at each dispatch (active ones and recently ended).
    silences: Vec<Silence>,
    /// Copies made or lifted that the writer has not stored yet: (silence, receiver) →
    /// Alertmanager's id (None: lifted). Laid over each read, so a copy is never made
    /// twice (a second copy would outlive the silence's lifting).
    unstored_mirrors: HashMap<(i64, String), Option<String>>,
}

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
    let (store, stored) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => {
            return crate::log!("dcmon serve: alerting is off: cannot read the store: {e}");
        }
        Err(e) => return crate::log!("dcmon serve: alerting is off: {e}"),
    };
    let mut engine = Engine::new(&config.borrow_and_update(), stored);
    let mut state = Loop {
        store: Arc::new(Mutex::new(store)),
        writer,
        http: Http::default(),
        said: HashMap::new(),
        backoff: HashMap::new(),
        silences: Vec::new(),
        unstored_mirrors: HashMap::new(),
    };
    let mut evaluate = tokio::time::interval(period(&engine));
    let mut dispatch = tokio::time::interval(DISPATCH_EVERY);
    dispatch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = evaluate.tick() => {
                let Some(back) = state.evaluate(engine).await else { return };
                engine = back;
                state.dispatch(&mut engine, true).await;
            }
            _ = dispatch.tick() => state.dispatch(&mut engine, false).await,
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
                engine.configure(&config.borrow_and_update());
                evaluate = tokio::time::interval(period(&engine));
            }
            _ = stop.changed() => if *stop.borrow() { break },
        }
    }
}

impl Loop {
    /// One evaluation of every rule; its changes go to the writer. `None`: the loop
    /// cannot go on.
    async fn evaluate(&mut self, mut engine: Engine) -> Option<Engine> {
        // No rules and nothing left to resolve or forget: nothing to do.
        if engine.rules.is_empty() && engine.states().next().is_none() {
            return Some(engine);
        }
        let now = crate::host_round::now_ms();
        let store = self.store.clone();
        let evaluated = tokio::task::spawn_blocking(move || {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            // One state of the database for every rule of the evaluation.
            let result = store.snapshot(|s| Ok(engine.evaluate(&StoreSource(s), now)));
            (engine, result)
        })
        .await;
        let (engine, (changes, errors)) = match evaluated {
            Ok((engine, Ok(done))) => (engine, done),
            Ok((engine, Err(e))) => {
                crate::log!(
                    "dcmon serve: alert rules not evaluated, the store could not be read: {e}"
                );
                return Some(engine);
            }
            Err(e) => {
                crate::log!("dcmon serve: alerting stopped: {e}");
                return None;
            }
        };
        for rule in &engine.rules {
            let error = errors.iter().find(|e| e.rule == rule.config.name);
            self.report(
                format!("rule {}", rule.config.name),
                error.map(|e| e.error.clone()),
            );
        }
        if !changes.is_empty() {
            self.writer.alerts(changes);
        }
        Some(engine)
    }

    /// Silences copied to or lifted from each Alertmanager; after an evaluation, the
    /// alerts posted to each; the messages owed to direct receivers.
    async fn dispatch(&mut self, engine: &mut Engine, evaluated: bool) {
        let now = crate::host_round::now_ms();
        let store = self.store.clone();
        let read = tokio::task::spawn_blocking(move || {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            store.silences(now.saturating_sub(SILENCE_LOOKBACK_MS))
        })
        .await;
        match read {
            Ok(Ok(mut list)) => {
                self.unstored_mirrors.retain(|(id, receiver), copy| {
                    let Some(silence) = list.iter_mut().find(|s| s.id == *id) else {
                        return false;
                    };
                    if silence.mirrored.get(receiver) == copy.as_ref() {
                        return false; // stored now
                    }
                    match copy {
                        Some(am) => silence.mirrored.insert(receiver.clone(), am.clone()),
                        None => silence.mirrored.remove(receiver),
                    };
                    true
                });
                self.silences = list;
                self.report("silences".into(), None);
            }
            Ok(Err(e)) => self.report("silences".into(), Some(e.to_string())),
            Err(e) => self.report("silences".into(), Some(e.to_string())),
        }
        let mut changes = AlertChanges::default();
        for receiver in engine.receivers.clone() {
            if let Target::Alertmanager(url) = &receiver.target {
                self.mirror_silences(&receiver.name, url, now, &mut changes)
                    .await;
            }
        }
        let silences = Silences::active(self.silences.clone(), now);
        for receiver in engine.receivers.clone() {
            let due = self
                .backoff
                .get(&receiver.name)
                .is_none_or(|b| b.next_try <= now);
            let result = match &receiver.target {
                Target::Alertmanager(url) if evaluated => {
                    // Firing alerts stay valid for four intervals (at least four minutes).
                    let valid = 4 * engine.interval_ms.max(60_000);
                    let list = engine.to_send(&receiver, &silences);
                    if list.is_empty() {
                        continue;
                    }
                    let body = alertmanager::body(&list, now, valid, None);
                    alertmanager::post(&self.http, url, body)
                        .await
                        .map(|()| 1)
                        .map_err(|e| (0, e))
                }
                Target::Alertmanager(_) => continue,
                _ if !due => continue,
                _ => {
                    self.send_direct(engine, &receiver, &silences, now, &mut changes)
                        .await
                }
            };
            let (sent, error) = match result {
                Ok(0) => continue,
                Ok(n) => (n, None),
                Err((n, e)) => (n, Some(e)),
            };
            match &error {
                Some(_) => self
                    .backoff
                    .entry(receiver.name.clone())
                    .or_default()
                    .failed(now),
                None => {
                    self.backoff.remove(&receiver.name);
                }
            }
            self.report(format!("receiver {}", receiver.name), error.clone());
            changes.deliveries.push(Delivery {
                receiver: receiver.name.clone(),
                at: now,
                sent,
                dropped: 0,
                error,
            });
        }
        // Who was told what, stored at once: a restart must not tell them again.
        if !changes.is_empty() {
            self.writer.alerts(changes);
        }
    }

    /// Sends what `receiver` is owed now, group by group, until one fails. Returns how
    /// many messages went out, and the error that stopped it.
    async fn send_direct(
        &self,
        engine: &mut Engine,
        receiver: &Receiver,
        silences: &Silences,
        now: i64,
        changes: &mut AlertChanges,
    ) -> Result<i64, (i64, String)> {
        // The messages built first, so the engine is free to record what went out.
        let messages: Vec<(Message, Vec<(String, &'static str)>)> = engine
            .due(receiver, silences, now)
            .iter()
            .map(|n| (Message::of(receiver, n, now), sent_keys(n)))
            .collect();
        let mut sent = 0;
        for (message, keys) in messages {
            if let Err(e) = self.deliver(&receiver.target, message).await {
                return Err((sent, e));
            }
            sent += 1;
            for (key, state) in keys {
                changes
                    .upserts
                    .extend(engine.mark_sent(&receiver.name, &key, state, now));
            }
        }
        Ok(sent)
    }

    async fn deliver(&self, target: &Target, message: Message) -> Result<(), String> {
        match (target, message) {
            (Target::Smtp(smtp), Message::Mail { subject, body }) => {
                mail::send(smtp, subject, body).await
            }
            (Target::Webhook(url) | Target::Slack(url), Message::Json(body)) => {
                self.http.post_json(url, body).await
            }
            _ => Err("message and receiver kinds differ".into()),
        }
    }

    /// Copies each silence in force to the Alertmanager at `url` (once), and lifts the
    /// copies of silences that ended.
    async fn mirror_silences(
        &mut self,
        receiver: &str,
        url: &str,
        now: i64,
        changes: &mut AlertChanges,
    ) {
        let mut problem = None;
        for silence in &mut self.silences {
            let copy = silence.mirrored.get(receiver).cloned();
            let active = silence.starts_at <= now && now < silence.ends_at;
            match (active, copy) {
                (true, None) => {
                    match alertmanager::create_silence(&self.http, url, silence).await {
                        Ok(id) => {
                            silence.mirrored.insert(receiver.to_string(), id.clone());
                            self.unstored_mirrors
                                .insert((silence.id, receiver.to_string()), Some(id.clone()));
                            changes
                                .mirrors
                                .push((silence.id, receiver.to_string(), Some(id)));
                        }
                        Err(e) => {
                            problem = Some(format!("copying silence {}: {e}", silence.id));
                            break;
                        }
                    }
                }
                (false, Some(id)) => {
                    match alertmanager::delete_silence(&self.http, url, &id).await {
                        // Gone or already expired there: nothing left to lift.
                        Err(e) if !(e.contains("answered 404") || e.contains("expired")) => {
                            problem = Some(format!("lifting silence {}: {e}", silence.id));
                            break;
                        }
                        _ => {
                            silence.mirrored.remove(receiver);
                            self.unstored_mirrors
                                .insert((silence.id, receiver.to_string()), None);
                            changes
                                .mirrors
                                .push((silence.id, receiver.to_string(), None));
                        }
                    }
                }
                _ => {}
            }
        }
        self.report(format!("receiver {receiver} silences"), problem);
    }

    /// Logs a problem when it starts or changes, and its end.
    fn report(&mut self, what: String, problem: Option<String>) {
        match (problem, self.said.get(&what)) {
            (Some(p), Some(before)) if *before == p => {}
            (Some(p), _) => {
                crate::log!("dcmon serve: alerting: {what}: {p}");
                self.said.insert(what, p);
            }
            (None, Some(_)) => {
                crate::log!("dcmon serve: alerting: {what}: working again");
                self.said.remove(&what);
            }
            (None, None) => {}
        }
    }
}

/// One message, in the receiver's form.
enum Message {
    Mail { subject: String, body: String },
    Json(String),
}

impl Message {
    fn of(receiver: &Receiver, n: &Notification<'_>, now: i64) -> Message {
        match receiver.target {
            Target::Smtp(_) => Message::Mail {
                subject: notify::title(n),
                body: notify::text_body(n),
            },
            Target::Slack(_) => Message::Json(notify::slack_body(n)),
            _ => Message::Json(notify::webhook_body(&receiver.name, n, "", now)),
        }
    }
}

fn sent_keys(n: &Notification<'_>) -> Vec<(String, &'static str)> {
    n.alerts
        .iter()
        .map(|(a, state)| (a.key.clone(), *state))
        .collect()
}

fn period(engine: &Engine) -> Duration {
    Duration::from_millis(engine.interval_ms.max(1000) as u64)
}
