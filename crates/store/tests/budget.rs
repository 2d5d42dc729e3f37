//! The run's embedding budget in the journal, against a real PostgreSQL: concurrent leases never
//! grant more than the limit within a hold, a dead worker's slice comes back when its grant stops
//! counting, and throttles lower the shared rate once per burst while successes raise it again.

// Fixture helpers unwrap: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ragshift_store::budget::{BudgetLimits, LeaseAsk, Spent};
use ragshift_store::journal::Journal;
use ragshift_store::{connect, ConnectSpec};
use ragshift_testkit::shared_pg;

/// A fresh database with a journal (in a schema that needs quoting) and a run in it.
async fn run_with_budget(prefix: &str, limits: &BudgetLimits) -> (ConnectSpec, Journal) {
    let url = shared_pg().fresh_database(prefix);
    let spec = ConnectSpec::from_url(&url, None, None).unwrap();
    let client = connect(&spec, "ragshift-test").await.unwrap();
    let journal = Journal::new("Rag Journal");
    journal.ensure_schema(&client).await.unwrap();
    journal
        .start_run(&client, "run-1", "rebuild", "test", &serde_json::json!({}))
        .await
        .unwrap();
    journal.join_budget(&client, "run-1", limits).await.unwrap();
    (spec, journal)
}

fn ask(requests: u64) -> LeaseAsk {
    LeaseAsk {
        requests,
        ..LeaseAsk::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_leases_never_grant_more_than_the_limit_within_a_hold() {
    let limits = BudgetLimits {
        window: Duration::from_millis(1000),
        hold: Duration::from_millis(1200),
        requests: Some(10),
        tokens: None,
    };
    let (spec, journal) = run_with_budget("budget_race", &limits).await;
    let start = Instant::now();
    // (asked, answered, requests granted): the grant happened on the server in between.
    let grants: Arc<Mutex<Vec<(Duration, Duration, u64)>>> = Arc::default();
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let (spec, journal, grants) = (spec.clone(), journal.clone(), grants.clone());
        tasks.push(tokio::spawn(async move {
            let client = connect(&spec, "ragshift-test worker").await.unwrap();
            while start.elapsed() < Duration::from_secs(4) {
                let asked = start.elapsed();
                let g = journal
                    .lease_budget(&client, "run-1", &ask(1 + worker % 3))
                    .await
                    .unwrap();
                if g.requests > 0 {
                    grants
                        .lock()
                        .unwrap()
                        .push((asked, start.elapsed(), g.requests));
                } else {
                    assert!(g.wait > Duration::ZERO && g.wait <= limits.hold);
                    // Ask again sooner than told, to press on the row as hard as possible.
                    tokio::time::sleep(g.wait / 4).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut grants = grants.lock().unwrap().clone();
    grants.sort_by_key(|g| g.0);
    let total: u64 = grants.iter().map(|g| g.2).sum();
    assert!(
        total >= 30,
        "four seconds of a 1.2 s hold allow at least three full rounds; got {total}"
    );
    // Grants certainly made within one hold of each other (asked no earlier than the first was
    // asked, answered before a hold after that) never add up to more than the limit.
    for (asked, _, _) in &grants {
        let within: u64 = grants
            .iter()
            .filter(|(a, answered, _)| a >= asked && *answered < *asked + limits.hold)
            .map(|g| g.2)
            .sum();
        assert!(
            within <= 10,
            "{within} requests granted within {:?} from {asked:?}: {grants:?}",
            limits.hold
        );
    }
}

#[tokio::test]
async fn a_dead_workers_slice_comes_back_when_its_grant_stops_counting() {
    let limits = BudgetLimits {
        window: Duration::from_millis(1500),
        hold: Duration::from_millis(2000),
        requests: Some(5),
        tokens: Some(1000),
    };
    let (spec, journal) = run_with_budget("budget_dead", &limits).await;
    {
        // A worker leases the whole budget and dies with it unspent (its connection closes).
        let dying = connect(&spec, "ragshift-test dying worker").await.unwrap();
        let g = journal
            .lease_budget(
                &dying,
                "run-1",
                &LeaseAsk {
                    requests: 5,
                    tokens: 1000,
                    need_tokens: 10,
                    ..LeaseAsk::default()
                },
            )
            .await
            .unwrap();
        assert_eq!((g.requests, g.tokens), (5, 1000));
    }
    let granted_at = Instant::now();
    let other = connect(&spec, "ragshift-test other worker").await.unwrap();
    let want = LeaseAsk {
        requests: 2,
        tokens: 100,
        need_tokens: 10,
        ..LeaseAsk::default()
    };
    let first = journal.lease_budget(&other, "run-1", &want).await.unwrap();
    assert_eq!(first.requests, 0, "the dead worker's slice still counts");
    assert!(
        first.wait > Duration::from_millis(1000) && first.wait <= limits.hold,
        "told to come back when the slice stops counting: {:?}",
        first.wait
    );
    // Poll (with a deadline) until the slice is back.
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let g = journal.lease_budget(&other, "run-1", &want).await.unwrap();
        if g.requests > 0 {
            break g;
        }
        assert!(
            Instant::now() < deadline,
            "the dead worker's slice never came back"
        );
        tokio::time::sleep(g.wait.min(Duration::from_millis(100))).await;
    };
    assert_eq!((got.requests, got.tokens), (2, 100));
    assert!(
        granted_at.elapsed() >= limits.hold - Duration::from_millis(100),
        "came back only after the hold: {:?}",
        granted_at.elapsed()
    );
}

#[tokio::test]
async fn what_a_worker_did_not_spend_of_its_slice_stops_counting_at_once() {
    let limits = BudgetLimits {
        window: Duration::from_secs(60),
        hold: Duration::from_secs(62),
        requests: Some(10),
        tokens: Some(1000),
    };
    let (spec, journal) = run_with_budget("budget_spent", &limits).await;
    let client = connect(&spec, "ragshift-test worker").await.unwrap();
    let whole = LeaseAsk {
        requests: 10,
        tokens: 1000,
        need_tokens: 10,
        ..LeaseAsk::default()
    };
    let first = journal
        .lease_budget(&client, "run-1", &whole)
        .await
        .unwrap();
    assert_eq!((first.requests, first.tokens), (10, 1000));
    assert_ne!(first.grant, 0, "a grant is named");
    // The worker sent 3 requests (300 tokens) under it and is done with it: the other 7
    // requests and 700 tokens count no more (nothing else is freed: the hold is a minute).
    let done_with_first = LeaseAsk {
        spent: Some(Spent {
            grant: first.grant,
            requests: 3,
            tokens: 300,
        }),
        ..whole
    };
    let second = journal
        .lease_budget(&client, "run-1", &done_with_first)
        .await
        .unwrap();
    assert_eq!((second.requests, second.tokens), (7, 700));
    assert_ne!(second.grant, first.grant);
    // Said again (a lease retried after its answer was lost), it frees nothing more.
    let third = journal
        .lease_budget(&client, "run-1", &done_with_first)
        .await
        .unwrap();
    assert_eq!(third.requests, 0, "3 sent + 7 outstanding fill the limit");
    let report = journal
        .budget_report(&client, "run-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.requests_granted, 10, "3 sent + 7 outstanding");
    assert_eq!(report.tokens_granted, 1000);
}

#[tokio::test]
async fn throttles_halve_the_shared_rate_once_per_burst_and_successes_raise_it() {
    let limits = BudgetLimits {
        window: Duration::from_secs(60),
        hold: Duration::from_secs(62),
        requests: Some(100),
        tokens: None,
    };
    let (spec, journal) = run_with_budget("budget_aimd", &limits).await;
    let a = connect(&spec, "ragshift-test a").await.unwrap();
    let b = connect(&spec, "ragshift-test b").await.unwrap();
    let cooldown = Duration::from_secs(30);
    // Two workers see throttling in the same burst: the rate is halved once.
    assert_eq!(
        journal
            .budget_throttled(&a, "run-1", cooldown, 0.05)
            .await
            .unwrap(),
        0.5
    );
    assert_eq!(
        journal
            .budget_throttled(&b, "run-1", cooldown, 0.05)
            .await
            .unwrap(),
        0.5
    );
    // Everyone leases against the lower rate.
    let g = journal.lease_budget(&a, "run-1", &ask(100)).await.unwrap();
    assert_eq!(g.requests, 50);
    assert_eq!(
        journal
            .lease_budget(&b, "run-1", &ask(1))
            .await
            .unwrap()
            .requests,
        0
    );
    // 25 successes raise it by a quarter: 25 more requests fit.
    let g = journal
        .lease_budget(
            &b,
            "run-1",
            &LeaseAsk {
                requests: 100,
                succeeded: 25,
                increase: 0.25,
                ..LeaseAsk::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((g.requests, g.rate), (25, 0.75));
    // A later burst (past the cool-down) halves it again.
    assert_eq!(
        journal
            .budget_throttled(&a, "run-1", Duration::ZERO, 0.05)
            .await
            .unwrap(),
        0.375
    );
    let report = journal.budget_report(&a, "run-1").await.unwrap().unwrap();
    assert_eq!(
        (
            report.calls,
            report.throttles,
            report.rate_decreases,
            report.leases,
            report.requests_granted
        ),
        (25, 3, 2, 2, 75)
    );
    assert_eq!(report.requests_per_window, Some(100));
    assert!(journal
        .budget_report(&a, "no-such-run")
        .await
        .unwrap()
        .is_none());
}
