//! One provider budget per run, kept in the run journal's `budgets` table so that every worker of
//! the run (ECS tasks, `embed-bot` processes, local runs on one target) spends the one configured
//! limit instead of each spending all of it.
//!
//! The budget is one row per run. A worker leases a slice (a few requests and tokens, good for a
//! short lease) with one statement that locks the row, drops the grants that no longer count,
//! and grants what still fits; it spends the slice locally and leases again. A grant counts
//! against the limit for `hold` = the window plus the lease and a margin, so the requests of any
//! set of grants that can reach the provider within one window sum to at most the limit, however
//! the workers interleave. A worker that dies wastes at most its last slice: its grants leave
//! the count like any other after `hold`, and nobody holds a share of the budget.
//!
//! The rate is shared as well (additive increase, multiplicative decrease): a worker that sees a
//! throttling answer halves the run's rate ([`Journal::budget_throttled`]; throttles reported
//! within a cool-down count once), and each successful call reported with a lease raises it a
//! little, back to the configured limit.

use std::time::Duration;

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::journal::Journal;
use crate::StoreError;

/// The limits a run's budget enforces.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetLimits {
    /// The window the limits apply to (a minute for providers' quotas).
    pub window: Duration,
    /// How long a grant counts against the limit: the window plus a lease plus a margin for the
    /// time a request takes to reach the provider.
    pub hold: Duration,
    /// Most requests per window (`None`: unlimited).
    pub requests: Option<u64>,
    /// Most tokens per window (`None`: unlimited).
    pub tokens: Option<u64>,
}

/// What a worker asks for when it leases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LeaseAsk {
    /// Requests wanted (the slice); fewer may be granted, at least one or none.
    pub requests: u64,
    /// Tokens wanted; fewer may be granted, at least `need_tokens` or none.
    pub tokens: u64,
    /// Tokens of the request in hand: a grant smaller than this is useless.
    pub need_tokens: u64,
    /// Calls that succeeded since the worker's last lease (counted in the report).
    pub succeeded: u64,
    /// How much those successes raise the shared rate (additive increase; the rate never
    /// exceeds 1, the configured limit).
    pub increase: f64,
    /// The worker's last grant, done with: what it spent of it. The rest was never sent and
    /// never will be, so it stops counting now instead of after `hold`.
    pub spent: Option<Spent>,
}

/// All a worker spent of a grant it is done with (see [`LeaseAsk::spent`]). Without it, a worker
/// whose demand is below its slice size holds budget it never spends, and the run as a whole
/// stays under the limit while its workers wait. Saying what was spent, not what is left, makes
/// it safe to say twice (a lease retried after its answer was lost): the grant only shrinks to
/// it, never below.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// The grant ([`LeaseGrant::grant`]).
    pub grant: i64,
    /// Requests sent under it.
    pub requests: u64,
    /// Tokens spent under it.
    pub tokens: u64,
}

/// What a lease granted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeaseGrant {
    /// Requests granted (0: nothing fits now).
    pub requests: u64,
    /// Tokens granted.
    pub tokens: u64,
    /// When nothing was granted: how long until the oldest grant stops counting.
    pub wait: Duration,
    /// The run's rate after this lease, as a fraction of the configured limits.
    pub rate: f64,
    /// Which grant this is, to say what was spent of it ([`Spent`]); 0 when nothing was
    /// granted.
    pub grant: i64,
}

/// The budget's side of the run report: what was spent against what was allowed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BudgetReport {
    /// The window the limits apply to, seconds.
    pub window_secs: f64,
    /// Requests allowed per window (`None`: unlimited).
    pub requests_per_window: Option<u64>,
    /// Tokens allowed per window (`None`: unlimited).
    pub tokens_per_window: Option<u64>,
    /// Successful provider calls, all workers together.
    pub calls: u64,
    /// Throttling answers seen by any worker.
    pub throttles: u64,
    /// How often those throttles lowered the shared rate.
    pub rate_decreases: u64,
    /// Slices leased.
    pub leases: u64,
    /// Requests granted in those slices, less what workers left unspent.
    pub requests_granted: u64,
    /// Tokens granted in those slices, less what workers left unspent.
    pub tokens_granted: u64,
    /// The shared rate at the end (1: the configured limit).
    pub rate: f64,
    /// Seconds from the first worker joining to the last lease.
    pub seconds: f64,
    /// Requests the limit allowed over those seconds: the limit once per window started.
    pub requests_allowed: Option<f64>,
    /// `calls / requests_allowed`.
    pub utilisation: Option<f64>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Journal {
    /// Joins (creating it if needed) the budget of `run_id` with `limits`: the run must be in
    /// the journal. Later joiners' limits replace earlier ones (every worker of a run is
    /// configured alike); grants and the shared rate are kept.
    pub async fn join_budget(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        limits: &BudgetLimits,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {t} (run_id, window_ms, hold_ms, requests_limit, tokens_limit)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (run_id) DO UPDATE SET window_ms = EXCLUDED.window_ms,
                 hold_ms = EXCLUDED.hold_ms, requests_limit = EXCLUDED.requests_limit,
                 tokens_limit = EXCLUDED.tokens_limit",
            t = self.budgets_table()
        );
        let requests = limits.requests.map(count);
        let tokens = limits.tokens.map(count);
        client
            .execute(
                &sql,
                &[
                    &run_id,
                    &ms(limits.window),
                    &ms(limits.hold),
                    &requests,
                    &tokens,
                ],
            )
            .await
            .map_err(|e| StoreError::query(format!("joining the budget of run {run_id}"), e))?;
        Ok(())
    }

    /// Leases a slice of `run_id`'s budget in one statement: grants that stopped counting are
    /// dropped, the worker's last grant shrinks to what it spent, the rate is raised
    /// by `ask.increase`, and what fits under the rate is granted.
    pub async fn lease_budget(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        ask: &LeaseAsk,
    ) -> Result<LeaseGrant, StoreError> {
        // `cur` locks the row (and reads its latest version); the UPDATE then writes it.
        let sql = format!(
            "WITH cur AS (
                 SELECT b.*, clock_timestamp() AS now FROM {t} b WHERE b.run_id = $1 FOR UPDATE
             ), returned AS (
                 SELECT min(x.n) AS n
                   FROM cur, unnest(cur.grant_at) WITH ORDINALITY AS x(at, n)
                  WHERE round(extract(epoch FROM x.at) * 1000000)::bigint = $7::bigint
             ), live AS (
                 SELECT g.at,
                        CASE WHEN g.n = returned.n THEN LEAST(g.r, $8::bigint) ELSE g.r END AS r,
                        CASE WHEN g.n = returned.n THEN LEAST(g.k, $9::bigint) ELSE g.k END AS k,
                        CASE WHEN g.n = returned.n THEN GREATEST(0, g.r - $8::bigint) ELSE 0 END AS back_r,
                        CASE WHEN g.n = returned.n THEN GREATEST(0, g.k - $9::bigint) ELSE 0 END AS back_k
                   FROM cur, returned,
                        unnest(cur.grant_at, cur.grant_requests, cur.grant_tokens)
                            WITH ORDINALITY AS g(at, r, k, n)
                  WHERE g.at > cur.now - cur.hold_ms * interval '1 millisecond'
             ), used AS (
                 SELECT coalesce(sum(r), 0)::bigint AS r, coalesce(sum(k), 0)::bigint AS k,
                        min(at) AS oldest,
                        coalesce(array_agg(at ORDER BY at), '{{}}') AS ats,
                        coalesce(array_agg(r ORDER BY at), '{{}}') AS rs,
                        coalesce(array_agg(k ORDER BY at), '{{}}') AS ks,
                        coalesce(sum(back_r), 0)::bigint AS back_r,
                        coalesce(sum(back_k), 0)::bigint AS back_k
                   FROM live
             ), offer AS (
                 SELECT cur.run_id, cur.now, cur.hold_ms, used.*,
                        LEAST(1.0, cur.rate + $6::float8) AS rate,
                        CASE WHEN cur.requests_limit IS NULL THEN $2::bigint
                             ELSE LEAST($2::bigint, GREATEST(1, floor(cur.requests_limit
                                  * LEAST(1.0, cur.rate + $6::float8)))::bigint - used.r)
                        END AS gr,
                        CASE WHEN cur.tokens_limit IS NULL THEN $3::bigint
                             WHEN used.k = 0 THEN GREATEST($4::bigint, LEAST($3::bigint,
                                  GREATEST(1, floor(cur.tokens_limit
                                  * LEAST(1.0, cur.rate + $6::float8)))::bigint))
                             ELSE LEAST($3::bigint, GREATEST(1, floor(cur.tokens_limit
                                  * LEAST(1.0, cur.rate + $6::float8)))::bigint - used.k)
                        END AS gk
                   FROM cur, used
             ), g AS (
                 SELECT offer.*, (gr >= 1 AND gk >= $4::bigint) AS ok FROM offer
             )
             UPDATE {t} b SET
                 rate = g.rate,
                 grant_at = CASE WHEN g.ok THEN g.ats || g.now ELSE g.ats END,
                 grant_requests = CASE WHEN g.ok THEN g.rs || g.gr ELSE g.rs END,
                 grant_tokens = CASE WHEN g.ok THEN g.ks || g.gk ELSE g.ks END,
                 last_requests = CASE WHEN g.ok THEN g.gr ELSE 0 END,
                 last_tokens = CASE WHEN g.ok THEN g.gk ELSE 0 END,
                 wait_ms = CASE WHEN g.ok THEN 0
                     ELSE coalesce(ceil(extract(epoch FROM g.oldest - g.now) * 1000)::bigint
                                   + g.hold_ms, g.hold_ms) END,
                 calls = b.calls + $5::bigint,
                 leases = b.leases + CASE WHEN g.ok THEN 1 ELSE 0 END,
                 requests_granted = b.requests_granted - g.back_r
                     + CASE WHEN g.ok THEN g.gr ELSE 0 END,
                 tokens_granted = b.tokens_granted - g.back_k
                     + CASE WHEN g.ok THEN g.gk ELSE 0 END,
                 updated_at = g.now
               FROM g
              WHERE b.run_id = g.run_id
             RETURNING b.last_requests, b.last_tokens, b.wait_ms, b.rate,
                       CASE WHEN g.ok THEN round(extract(epoch FROM g.now) * 1000000)::bigint
                            ELSE 0 END",
            t = self.budgets_table()
        );
        let row = client
            .query_opt(
                &sql,
                &[
                    &run_id,
                    &count(ask.requests),
                    &count(ask.tokens),
                    &count(ask.need_tokens),
                    &count(ask.succeeded),
                    &ask.increase,
                    &ask.spent.map(|u| u.grant),
                    &count(ask.spent.map_or(0, |u| u.requests)),
                    &count(ask.spent.map_or(0, |u| u.tokens)),
                ],
            )
            .await
            .map_err(|e| StoreError::query(format!("leasing from the budget of run {run_id}"), e))?
            .ok_or_else(|| {
                StoreError::new(
                    crate::StoreErrorKind::Query,
                    format!(
                        "run {run_id} has no budget in {} (it was deleted?)",
                        self.budgets_table()
                    ),
                )
            })?;
        Ok(LeaseGrant {
            requests: unsigned(row.get(0)),
            tokens: unsigned(row.get(1)),
            wait: Duration::from_millis(unsigned(row.get(2))),
            rate: row.get(3),
            grant: row.get(4),
        })
    }

    /// Records a throttling answer: the run's rate is halved (down to `floor`) unless it was
    /// already lowered within `cooldown` (the throttles of one burst count once). Returns the
    /// rate now in force.
    pub async fn budget_throttled(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        cooldown: Duration,
        floor: f64,
    ) -> Result<f64, StoreError> {
        let sql = format!(
            "UPDATE {t} SET
                 throttles = throttles + 1,
                 rate = CASE WHEN {fresh} THEN GREATEST($3::float8, rate * 0.5) ELSE rate END,
                 decreases = decreases + CASE WHEN {fresh} THEN 1 ELSE 0 END,
                 decreased_at = CASE WHEN {fresh} THEN clock_timestamp() ELSE decreased_at END
             WHERE run_id = $1
             RETURNING rate",
            t = self.budgets_table(),
            fresh = "(decreased_at IS NULL \
                      OR decreased_at < clock_timestamp() - $2::bigint * interval '1 millisecond')"
        );
        let row = client
            .query_opt(&sql, &[&run_id, &ms(cooldown), &floor])
            .await
            .map_err(|e| {
                StoreError::query(format!("slowing down the budget of run {run_id}"), e)
            })?;
        Ok(row.map(|r| r.get(0)).unwrap_or(floor))
    }

    /// The budget's report for `run_id`, if the run had one.
    pub async fn budget_report(
        &self,
        client: &impl GenericClient,
        run_id: &str,
    ) -> Result<Option<BudgetReport>, StoreError> {
        let sql = format!(
            "SELECT window_ms, requests_limit, tokens_limit, calls, throttles, decreases, leases,
                    requests_granted, tokens_granted, rate,
                    extract(epoch FROM updated_at - created_at)::float8
               FROM {t} WHERE run_id = $1",
            t = self.budgets_table()
        );
        let Some(row) = client
            .query_opt(&sql, &[&run_id])
            .await
            .map_err(|e| StoreError::query(format!("reading the budget of run {run_id}"), e))?
        else {
            return Ok(None);
        };
        let window_secs = unsigned(row.get(0)) as f64 / 1000.0;
        let requests: Option<i64> = row.get(1);
        let tokens: Option<i64> = row.get(2);
        let calls = unsigned(row.get(3));
        let seconds: f64 = row.get(10);
        // A provider's sliding window lets the limit through once per started window.
        let requests_allowed = requests.map(|limit| {
            let windows = if window_secs > 0.0 {
                (seconds / window_secs).floor() + 1.0
            } else {
                1.0
            };
            unsigned(limit) as f64 * windows
        });
        Ok(Some(BudgetReport {
            window_secs,
            requests_per_window: requests.map(unsigned),
            tokens_per_window: tokens.map(unsigned),
            calls,
            throttles: unsigned(row.get(4)),
            rate_decreases: unsigned(row.get(5)),
            leases: unsigned(row.get(6)),
            requests_granted: unsigned(row.get(7)),
            tokens_granted: unsigned(row.get(8)),
            rate: row.get(9),
            seconds,
            utilisation: requests_allowed
                .filter(|a| *a > 0.0)
                .map(|a| calls as f64 / a),
            requests_allowed,
        }))
    }
}
