//! The run's embedding budget in the target's run journal: the [`BudgetStore`] every worker of a
//! run (ECS task, `embed-bot` process, local rebuild) leases its slices from, so the configured
//! requests and tokens per window hold for the run as a whole.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ragshift_embed::{BudgetAsk, BudgetGrant, BudgetStore, RateLimit, SharedBudget};
use ragshift_store::budget::{BudgetLimits, LeaseAsk, Spent};
use ragshift_store::journal::Journal;
use ragshift_store::{ConnectSpec, StoreError};
use tokio::sync::Mutex;
use tokio_postgres::Client;

/// The lowest the shared rate goes after throttling: a twentieth of the configured limit.
const RATE_FLOOR: f64 = 0.05;

/// A run's budget row, reached over a connection of its own (reopened when it breaks).
pub struct JournalBudget {
    spec: ConnectSpec,
    journal: Journal,
    run_id: String,
    cooldown: Duration,
    client: Mutex<Option<Arc<Client>>>,
}

impl JournalBudget {
    /// Joins the budget of `run_id` (which must be in `journal`) with `limit`, and returns the
    /// shared budget a [`ragshift_embed::Throttled`] sends against.
    pub async fn join(
        spec: &ConnectSpec,
        journal: &Journal,
        run_id: &str,
        limit: &RateLimit,
    ) -> Result<Arc<SharedBudget>, StoreError> {
        let client = ragshift_store::connect(spec, "ragshift embedding budget").await?;
        journal.join_budget(&client, run_id, &limits(limit)).await?;
        let store = JournalBudget {
            spec: spec.clone(),
            journal: journal.clone(),
            run_id: run_id.to_owned(),
            // The throttles of one burst (requests granted before the rate went down) count once.
            cooldown: SharedBudget::hold(limit.window) - limit.window + Duration::from_secs(1),
            client: Mutex::new(Some(Arc::new(client))),
        };
        Ok(Arc::new(SharedBudget::new(Arc::new(store), limit.clone())))
    }

    async fn client(&self) -> Result<Arc<Client>, String> {
        let mut held = self.client.lock().await;
        if let Some(c) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            ragshift_store::connect(&self.spec, "ragshift embedding budget")
                .await
                .map_err(|e| e.to_string())?,
        );
        *held = Some(c.clone());
        Ok(c)
    }
}

/// The store's limits for a rate limit: its window, and how long a grant counts.
pub fn limits(limit: &RateLimit) -> BudgetLimits {
    BudgetLimits {
        window: limit.window,
        hold: SharedBudget::hold(limit.window),
        requests: limit.requests,
        tokens: limit.tokens,
    }
}

#[async_trait]
impl BudgetStore for JournalBudget {
    async fn lease(&self, ask: BudgetAsk) -> Result<BudgetGrant, String> {
        let client = self.client().await?;
        let g = self
            .journal
            .lease_budget(
                &*client,
                &self.run_id,
                &LeaseAsk {
                    requests: ask.requests,
                    tokens: ask.tokens,
                    need_tokens: ask.need_tokens,
                    succeeded: ask.succeeded,
                    increase: ask.increase,
                    spent: ask.spent.map(|u| Spent {
                        grant: u.grant,
                        requests: u.requests,
                        tokens: u.tokens,
                    }),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(BudgetGrant {
            requests: g.requests,
            tokens: g.tokens,
            wait: g.wait,
            grant: g.grant,
        })
    }

    async fn throttled(&self) -> Result<(), String> {
        let client = self.client().await?;
        let rate = self
            .journal
            .budget_throttled(&*client, &self.run_id, self.cooldown, RATE_FLOOR)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(run = %self.run_id, rate, "the provider throttled; the run's rate is now {:.0}% of the limit", rate * 100.0);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("run {} in {}", self.run_id, self.journal.budgets_table())
    }
}
