//! The outbox relay: claims due events, publishes them, records what happened, and keeps the
//! outbox small and the gauges true. Every replica runs one; the database arbitrates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use super::publisher::Publisher;
use super::webhook::{Delivery, WebhookSink};
use crate::clock::Clock;
use crate::config::EventsConfig;
use crate::domain::Event;
use crate::store::{DeliveryFailure, PendingEvent, Store, StoreResult};

/// How often `auth_active_sessions` is recounted and old events pruned.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// While a backlog drains, `auth_outbox_pending` is recounted this often (otherwise after
/// every round).
const BACKLOG_GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// The first retry waits about this long; each further one twice as long, up to
/// `events.max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The relay task; [`Relay::run`] until told to stop.
pub struct Relay {
    store: Arc<dyn Store>,
    publisher: Publisher,
    webhooks: Vec<Arc<WebhookSink>>,
    clock: Clock,
    config: EventsConfig,
}

/// One of the relay's lanes. Each paces itself and stops on its own, so a sink that hangs
/// until its timeout holds back no other: the broker, the fan-out into webhook deliveries,
/// and one lane per webhook endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Broker,
    FanOut,
    Webhook(usize),
}

impl Relay {
    pub fn new(
        store: Arc<dyn Store>,
        publisher: Publisher,
        webhooks: Vec<WebhookSink>,
        clock: Clock,
        config: EventsConfig,
    ) -> Self {
        // Every series at 0 from the start, so a rate or an alert has one before the first
        // event or failure (issue 16).
        for event_type in Event::ALL_KINDS {
            metrics::counter!("auth_events_published_total", "type" => *event_type).increment(0);
        }
        metrics::counter!("auth_events_failed_total").increment(0);
        for webhook in &webhooks {
            let endpoint = webhook.name().to_owned();
            metrics::counter!("auth_webhook_published_total", "endpoint" => endpoint.clone())
                .increment(0);
            metrics::counter!("auth_webhook_failed_total", "endpoint" => endpoint.clone())
                .increment(0);
            metrics::counter!("auth_webhook_given_up_total", "endpoint" => endpoint.clone())
                .increment(0);
            metrics::gauge!("auth_webhook_enabled", "endpoint" => endpoint).set(1.0);
        }
        Self {
            store,
            publisher,
            webhooks: webhooks.into_iter().map(Arc::new).collect(),
            clock,
            config,
        }
    }

    /// Relays until `stop` fires: one lane per sink (see [`Lane`]), side by side. A round in
    /// progress finishes first, so nothing it published is left unmarked; then each lane
    /// flushes what is due.
    pub async fn run(self, stop: oneshot::Receiver<()>) {
        tracing::info!(
            backend = self.publisher.name(),
            webhooks = self.webhooks.len(),
            "event relay started"
        );
        let relay = Arc::new(self);
        let (stopping, stopped) = watch::channel(false);
        // Dropping the set (the relay task aborted) aborts every lane.
        let mut lanes = JoinSet::new();
        let webhook_lanes = (0..relay.webhooks.len()).map(Lane::Webhook);
        for lane in [Lane::Broker, Lane::FanOut]
            .into_iter()
            .chain(webhook_lanes)
        {
            lanes.spawn(relay.clone().lane(lane, stopped.clone()));
        }
        let _ = stop.await;
        let _ = stopping.send(true);
        while lanes.join_next().await.is_some() {}
        tracing::info!("event relay stopped");
    }

    async fn lane(self: Arc<Self>, lane: Lane, mut stopped: watch::Receiver<bool>) {
        let mut housekeeping_due = Instant::now();
        let mut gauge_due = Instant::now();
        loop {
            // A full batch means a backlog: drain it without pausing. Anything less waits for
            // the next poll, so a steady stream of events goes out in batches rather than a
            // few claim, publish and mark statements per event.
            let backlog = match self.round(lane).await {
                Ok(published) => published >= self.config.batch_size as usize,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), ?lane, "event relay round failed");
                    false
                }
            };
            if let Lane::Webhook(index) = lane {
                if !self.webhooks[index].enabled() {
                    return; // gone (410) until the service restarts
                }
            }
            if lane == Lane::Broker {
                if !backlog || Instant::now() >= gauge_due {
                    self.refresh_pending().await;
                    gauge_due = Instant::now() + BACKLOG_GAUGE_INTERVAL;
                }
                if Instant::now() >= housekeeping_due {
                    self.housekeeping().await;
                    housekeeping_due = Instant::now() + HOUSEKEEPING_INTERVAL;
                }
            }
            let pause = if backlog {
                Duration::ZERO
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.flush(lane).await;
    }

    /// SPEC §1: on shutdown, publishes what is due while rounds make progress, for at most
    /// about `events.publish_timeout`; what is left goes out from the next replica to run.
    /// A webhook lane first fans out what the fan-out lane may not have reached.
    async fn flush(&self, lane: Lane) {
        let started = Instant::now();
        if let Lane::Webhook(_) = lane {
            if let Err(error) = self.round(Lane::FanOut).await {
                tracing::warn!(error = %format!("{error:#}"), "fanning out at shutdown failed");
            }
        }
        while started.elapsed() < self.config.publish_timeout {
            match self.round(lane).await {
                Ok(0) => break,
                Ok(published) => tracing::debug!(published, ?lane, "flushed events at shutdown"),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), ?lane, "flushing the outbox failed");
                    break;
                }
            }
        }
    }

    async fn round(&self, lane: Lane) -> StoreResult<usize> {
        match lane {
            Lane::Broker => self.broker_round().await,
            Lane::FanOut => {
                let route = |event_type: &str| {
                    self.webhooks
                        .iter()
                        .filter(|webhook| webhook.enabled() && webhook.wants(event_type))
                        .map(|webhook| webhook.name().to_owned())
                        .collect()
                };
                self.store
                    .fan_out_events(self.config.batch_size, &route)
                    .await
            }
            Lane::Webhook(index) => self.webhook_round(&self.webhooks[index]).await,
        }
    }

    /// Claims due events for `events.claim_lease` and publishes them in waves (see
    /// [`waves`]): each wave goes to the broker at once and is acknowledged as a whole, and a
    /// user's event is in a later wave than their event before it, so it is sent only once that
    /// one was acknowledged.
    ///
    /// A wave with a failure ends the round: the broker is most likely away, and the next wave
    /// would wait out the timeout too. What that wave published is marked; the rest of the
    /// claim (the failed events, and every later wave, which holds the failed users' later
    /// events) is scheduled for a retry. A round also ends while one more wave could outlast
    /// the lease (a slow broker), so no other replica re-claims an event this one is still
    /// publishing; what is left goes out once the lease ends. A relay that dies mid-round
    /// leaves its claims to expire the same way, and its events go out again (SPEC §6: at
    /// least once). Returns how many were published.
    async fn broker_round(&self) -> StoreResult<usize> {
        let now = self.clock.now();
        let lease = self.config.claim_lease;
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let started = Instant::now();
        let claimed = self
            .store
            .claim_events(now, lease_until, self.config.batch_size)
            .await?;
        let in_time = || started.elapsed() + self.config.publish_timeout < lease;
        let round =
            publish_in_waves(&claimed, in_time, |wave| self.publisher.publish_all(wave)).await;
        let mut published = Vec::with_capacity(round.published.len());
        for &index in &round.published {
            let event = &claimed[index];
            metrics::counter!("auth_events_published_total", "type" => event.event_type.clone())
                .increment(1);
            published.push(event.seq);
        }
        if !published.is_empty() {
            self.store
                .mark_published(&published, self.clock.now())
                .await?;
        }
        if let Some(error) = &round.failure {
            self.record_failures(&round.unpublished(&claimed), error)
                .await?;
        }
        Ok(published.len())
    }

    /// [`Relay::broker_round`] for one webhook endpoint, on its own deliveries: the same
    /// claim, order and lease rules, in waves like the broker's (see [`waves`]): the events of
    /// a wave (one per user) are POSTed at once, each its own request, and a user's next event
    /// goes only after the one before it was answered 2xx. A wave with a failure ends the round;
    /// what was delivered is marked, the rest waits for a retry. A 410 disables the endpoint
    /// and leaves its undelivered events waiting, unmarked, until the service restarts.
    async fn webhook_round(&self, webhook: &Arc<WebhookSink>) -> StoreResult<usize> {
        if !webhook.enabled() {
            return Ok(0);
        }
        let endpoint = webhook.name();
        let now = self.clock.now();
        let lease = self.config.claim_lease;
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let started = Instant::now();
        let claimed = self
            .store
            .claim_deliveries(endpoint, now, lease_until, self.config.batch_size)
            .await?;
        let gone = std::sync::atomic::AtomicBool::new(false);
        let in_time = || started.elapsed() + self.config.publish_timeout < lease;
        let send = |wave: Vec<&PendingEvent>| {
            let mut posts = JoinSet::new();
            for (position, event) in wave.iter().enumerate() {
                let (webhook, event) = (Arc::clone(webhook), (*event).clone());
                let at = self.clock.now();
                posts.spawn(async move { (position, webhook.deliver(&event, at).await) });
            }
            let size = wave.len();
            let gone = &gone;
            async move {
                let mut outcomes = vec![Err("webhook: the delivery task ended".to_owned()); size];
                while let Some(joined) = posts.join_next().await {
                    let Ok((position, delivery)) = joined else {
                        continue;
                    };
                    outcomes[position] = match delivery {
                        Delivery::Delivered => Ok(()),
                        Delivery::Retry(error) => Err(error),
                        Delivery::Gone => {
                            gone.store(true, std::sync::atomic::Ordering::SeqCst);
                            Err("webhook: answered 410 Gone".to_owned())
                        }
                    };
                }
                outcomes
            }
        };
        let round = publish_in_waves(&claimed, in_time, send).await;
        let delivered: Vec<i64> = round.published.iter().map(|&i| claimed[i].seq).collect();
        if !delivered.is_empty() {
            metrics::counter!("auth_webhook_published_total", "endpoint" => endpoint.to_owned())
                .increment(delivered.len() as u64);
            self.store
                .mark_delivered(endpoint, &delivered, self.clock.now())
                .await?;
        }
        if gone.load(std::sync::atomic::Ordering::SeqCst) {
            webhook.disable();
            metrics::gauge!("auth_webhook_enabled", "endpoint" => endpoint.to_owned()).set(0.0);
            tracing::error!(
                webhook.endpoint = endpoint,
                "the webhook endpoint answered 410 Gone: it gets no more events until \
                 the service restarts (its undelivered events wait until then)"
            );
        } else if let Some(error) = &round.failure {
            self.record_webhook_failures(endpoint, &round.unpublished(&claimed), error)
                .await?;
        }
        Ok(delivered.len())
    }

    async fn record_webhook_failures(
        &self,
        endpoint: &str,
        events: &[PendingEvent],
        error: &str,
    ) -> StoreResult<()> {
        tracing::warn!(
            webhook.endpoint = endpoint,
            events = events.len(),
            error,
            "delivering events to a webhook failed; they wait for a retry"
        );
        metrics::counter!("auth_webhook_failed_total", "endpoint" => endpoint.to_owned())
            .increment(events.len() as u64);
        let now = self.clock.now();
        let retention =
            chrono::Duration::from_std(self.config.webhook_retention).unwrap_or_default();
        for event in events {
            let wait = backoff(event.attempts, self.config.max_backoff, jitter());
            let failure = DeliveryFailure {
                error,
                now,
                retry_at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                give_up_before: now - retention,
            };
            let given_up = self
                .store
                .record_delivery_failure(endpoint, event.seq, failure)
                .await?;
            if given_up {
                metrics::counter!("auth_webhook_given_up_total", "endpoint" => endpoint.to_owned())
                    .increment(1);
                tracing::warn!(
                    webhook.endpoint = endpoint,
                    event.id = %event.id,
                    event.r#type = %event.event_type,
                    attempts = event.attempts + 1,
                    error,
                    "gave up delivering an event to a webhook: older than events.webhook_retention"
                );
            }
        }
        Ok(())
    }

    async fn record_failures(&self, events: &[PendingEvent], error: &str) -> StoreResult<()> {
        tracing::warn!(
            backend = self.publisher.name(),
            events = events.len(),
            error,
            "publishing events failed; they stay in the outbox for a retry"
        );
        metrics::counter!("auth_events_failed_total").increment(events.len() as u64);
        let now = self.clock.now();
        for event in events {
            let wait = backoff(event.attempts, self.config.max_backoff, jitter());
            let retry_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
            self.store
                .record_publish_failure(event.seq, error, retry_at)
                .await?;
        }
        Ok(())
    }

    /// `auth_outbox_pending`: what is still owed to the broker and to every configured
    /// webhook endpoint; `auth_webhook_pending` per endpoint.
    async fn refresh_pending(&self) {
        let events = match self.store.pending_event_count().await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(error = %error, "counting pending events failed");
                return;
            }
        };
        let deliveries = if self.webhooks.is_empty() {
            Vec::new()
        } else {
            match self.store.pending_delivery_counts().await {
                Ok(counts) => counts,
                Err(error) => {
                    tracing::warn!(error = %error, "counting pending webhook deliveries failed");
                    return;
                }
            }
        };
        let mut total = events;
        for webhook in &self.webhooks {
            let pending = deliveries
                .iter()
                .find(|(endpoint, _)| endpoint == webhook.name())
                .map_or(0, |(_, count)| *count);
            total += pending;
            metrics::gauge!("auth_webhook_pending", "endpoint" => webhook.name().to_owned())
                .set(pending as f64);
        }
        metrics::gauge!("auth_outbox_pending").set(total as f64);
    }

    /// Recounts active sessions and prunes events published longer ago than the retention.
    async fn housekeeping(&self) {
        let now = self.clock.now();
        match self.store.active_session_count(now).await {
            Ok(count) => metrics::gauge!("auth_active_sessions").set(count as f64),
            Err(error) => tracing::warn!(error = %error, "counting active sessions failed"),
        }
        let before = now - chrono::Duration::from_std(self.config.retention).unwrap_or_default();
        match self.store.prune_published(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned published events"),
            Err(error) => tracing::warn!(error = %error, "pruning published events failed"),
        }
    }
}

/// A round's claimed events (in `seq` order) as waves of indices: wave `n` holds the `n`-th
/// event of every user in the claim, in `seq` order. No wave holds two events of one user, so
/// a wave may go out all at once in any order; and a user's event is always in a later wave
/// than the one before it. Events about no user have no order to keep (the claim holds none
/// back for them) and go in the first wave.
fn waves(events: &[PendingEvent]) -> Vec<Vec<usize>> {
    let mut waves: Vec<Vec<usize>> = Vec::new();
    let mut sent_before: HashMap<Uuid, usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        let wave = match event.user_id {
            Some(user) => {
                let earlier = sent_before.entry(user).or_insert(0);
                *earlier += 1;
                *earlier - 1
            }
            None => 0,
        };
        if waves.len() <= wave {
            waves.resize_with(wave + 1, Vec::new);
        }
        waves[wave].push(index);
    }
    waves
}

/// What a round's publishing came to.
#[derive(Debug, Default)]
struct Published {
    /// Indices (into the claim) of the events the broker took.
    published: Vec<usize>,
    /// Why the round ended early, when a publish failed.
    failure: Option<String>,
}

impl Published {
    /// The claimed events the broker did not take (failed, or never sent).
    fn unpublished(&self, claimed: &[PendingEvent]) -> Vec<PendingEvent> {
        claimed
            .iter()
            .enumerate()
            .filter(|(index, _)| !self.published.contains(index))
            .map(|(_, event)| event.clone())
            .collect()
    }
}

/// Publishes `claimed` wave by wave (see [`waves`]) through `send`, which hands a wave to the
/// broker and answers per event, in order. Stops before a wave when `in_time` says no, and
/// after a wave in which any event failed: a failed user's later events are never sent
/// (they are in later waves), and the other users' events of that wave count as published.
async fn publish_in_waves<'e, Send, Sent>(
    claimed: &'e [PendingEvent],
    in_time: impl Fn() -> bool,
    mut send: Send,
) -> Published
where
    Send: FnMut(Vec<&'e PendingEvent>) -> Sent,
    Sent: std::future::Future<Output = Vec<Result<(), String>>>,
{
    let mut round = Published::default();
    for wave in waves(claimed) {
        if !in_time() {
            break;
        }
        let events: Vec<&PendingEvent> = wave.iter().map(|&index| &claimed[index]).collect();
        let outcomes = send(events).await;
        if outcomes.len() != wave.len() {
            round.failure = Some(format!(
                "the publisher answered for {} of {} events",
                outcomes.len(),
                wave.len()
            ));
            break;
        }
        for (index, outcome) in wave.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => round.published.push(index),
                Err(error) => {
                    round.failure.get_or_insert(error);
                }
            }
        }
        if round.failure.is_some() {
            break;
        }
    }
    round
}

/// The wait before retry number `attempts + 1`: doubling from [`FIRST_BACKOFF`], capped at
/// `max`, scaled by `jitter` (0.5..=1.0) so replicas do not retry in step.
fn backoff(attempts: i32, max: Duration, jitter: f64) -> Duration {
    let doublings = u32::try_from(attempts.clamp(0, 30)).unwrap_or(0);
    let base = FIRST_BACKOFF.saturating_mul(1u32 << doublings).min(max);
    base.mul_f64(jitter.clamp(0.5, 1.0))
}

/// A factor between 0.5 and 1.0 from the system random source (0.75 should it fail).
fn jitter() -> f64 {
    use ring::rand::SecureRandom;
    let mut byte = [0u8; 1];
    match ring::rand::SystemRandom::new().fill(&mut byte) {
        Ok(()) => 0.5 + f64::from(byte[0]) / 510.0,
        Err(_) => 0.75,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(user, n)` events in `seq` order, as a claim returns them; the payload is the label.
    fn claim(events: &[(u8, u8)]) -> Vec<PendingEvent> {
        events
            .iter()
            .enumerate()
            .map(|(seq, &(user, n))| PendingEvent {
                seq: i64::try_from(seq).unwrap() + 1,
                id: Uuid::now_v7(),
                event_type: "auth:token.refreshed".to_owned(),
                user_id: Some(Uuid::from_u128(u128::from(user))),
                payload: format!("{}{n}", char::from(b'a' + user)),
                attempts: 0,
            })
            .collect()
    }

    fn labels<'e>(events: impl IntoIterator<Item = &'e PendingEvent>) -> Vec<&'e str> {
        events
            .into_iter()
            .map(|event| event.payload.as_str())
            .collect()
    }

    #[test]
    fn a_wave_holds_one_event_per_user_and_each_user_s_next_goes_in_the_next_wave() {
        let claimed = claim(&[(0, 1), (0, 2), (1, 1), (0, 3), (2, 1), (1, 2)]);

        let waves: Vec<Vec<&str>> = waves(&claimed)
            .into_iter()
            .map(|wave| labels(wave.iter().map(|&index| &claimed[index])))
            .collect();

        assert_eq!(
            waves,
            [vec!["a1", "b1", "c1"], vec!["a2", "b2"], vec!["a3"]]
        );
    }

    #[tokio::test]
    async fn a_failed_event_keeps_its_users_later_events_unsent_and_unpublished() {
        let claimed = claim(&[(0, 1), (1, 1), (0, 2), (1, 2), (2, 1)]);
        let mut sent: Vec<Vec<String>> = Vec::new();

        let round = publish_in_waves(
            &claimed,
            || true,
            |wave: Vec<&PendingEvent>| {
                sent.push(wave.iter().map(|event| event.payload.clone()).collect());
                let outcomes = wave
                    .iter()
                    .map(|event| match event.payload.as_str() {
                        "b1" => Err("refused".to_owned()),
                        _ => Ok(()),
                    })
                    .collect();
                std::future::ready(outcomes)
            },
        )
        .await;

        // b1 fails in the first wave: a1 and c1 (other users, same wave) are published; the
        // round ends, so b2 is never sent ahead of b1, and a2 waits with it.
        assert_eq!(sent, [vec!["a1", "b1", "c1"]]);
        assert_eq!(
            labels(round.published.iter().map(|&index| &claimed[index])),
            ["a1", "c1"]
        );
        assert_eq!(round.failure.as_deref(), Some("refused"));
        assert_eq!(labels(&round.unpublished(&claimed)), ["b1", "a2", "b2"]);
    }

    #[tokio::test]
    async fn a_round_publishes_every_wave_while_the_broker_takes_them() {
        let claimed = claim(&[(0, 1), (0, 2), (1, 1), (0, 3)]);
        let mut sent: Vec<Vec<String>> = Vec::new();

        let round = publish_in_waves(
            &claimed,
            || true,
            |wave: Vec<&PendingEvent>| {
                sent.push(wave.iter().map(|event| event.payload.clone()).collect());
                std::future::ready(vec![Ok(()); wave.len()])
            },
        )
        .await;

        assert_eq!(sent, [vec!["a1", "b1"], vec!["a2"], vec!["a3"]]);
        assert_eq!(round.published.len(), 4);
        assert!(round.failure.is_none());
        assert!(round.unpublished(&claimed).is_empty());
    }

    #[tokio::test]
    async fn a_round_out_of_lease_time_sends_no_further_wave_and_marks_no_failure() {
        let claimed = claim(&[(0, 1), (0, 2)]);
        let waves_left = std::cell::Cell::new(1_u32);

        let round = publish_in_waves(
            &claimed,
            || {
                let left = waves_left.get();
                waves_left.set(left.saturating_sub(1));
                left > 0
            },
            |wave: Vec<&PendingEvent>| std::future::ready(vec![Ok(()); wave.len()]),
        )
        .await;

        // a2 stays leased (not failed): it goes out once the lease ends.
        assert_eq!(
            labels(round.published.iter().map(|&index| &claimed[index])),
            ["a1"]
        );
        assert!(round.failure.is_none());
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let max = Duration::from_secs(60);

        let waits: Vec<u64> = (0..8)
            .map(|attempts| backoff(attempts, max, 1.0).as_secs())
            .collect();

        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(0, max, 0.5), Duration::from_millis(500));
        assert_eq!(backoff(i32::MAX, max, 1.0), max);
    }
}
