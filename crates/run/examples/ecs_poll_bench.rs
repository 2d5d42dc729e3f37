//! Benchmark for `bench/ecs/run.sh`: watching many ECS tasks at once.
//!
//! ragshift's ECS executor watches every task in flight with ONE poller that asks about up to
//! 100 tasks per `DescribeTasks` call. The baseline is the straightforward way: each job polls
//! its own task (`DescribeTasks` with one ARN) every interval. Both run against moto with TASKS
//! tasks in flight; once all are RUNNING they are stopped at once, and the bench measures how
//! long it takes until every job has noticed, and how many DescribeTasks calls were made (the
//! number that meets ECS's API rate limit in production).
//!
//!   cargo run -p ragshift-run --example ecs_poll_bench -- TASKS POLL_MS

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DesiredStatus, LaunchType, NetworkConfiguration,
};
use axum::extract::{Request, State};
use axum::response::Response;
use ragshift_model::{Bot, BotKey};
use ragshift_run::events::Silent;
use ragshift_run::executor::{EcsExecutor, EcsOptions, Executor};
use ragshift_run::BotJob;
use ragshift_store::journal::Journal;
use ragshift_store::{ConnectSpec, Layout};
use ragshift_testkit::{shared_pg, unique_name, MotoServer};

struct Counter {
    upstream: String,
    http: reqwest::Client,
    describe_calls: AtomicU64,
}

/// Forwards to moto, counting DescribeTasks calls.
async fn forward(State(c): State<Arc<Counter>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    if parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.ends_with(".DescribeTasks"))
    {
        c.describe_calls.fetch_add(1, Ordering::SeqCst);
    }
    ragshift_testkit::pass_on(&c.http, &c.upstream, &parts, bytes).await
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    ragshift_testkit::sdk_config(endpoint).await
}

struct Setup {
    ecs: aws_sdk_ecs::Client,
    cluster: String,
    family: String,
    subnet: String,
}

async fn setup(moto: &MotoServer) -> Setup {
    ragshift_testkit::ecs::hold_tasks(moto.endpoint_url()).await;
    let subnet = ragshift_testkit::ecs::default_subnet(moto.endpoint_url()).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk(moto.endpoint_url()).await);
    let (cluster, family) =
        ragshift_testkit::ecs::create_embedding_task(&ecs, "bench", "bench-task", "Container")
            .await;
    Setup {
        ecs,
        cluster,
        family,
        subnet,
    }
}

/// Waits until `n` tasks run, then stops them all; returns when the stops were sent.
async fn stop_all_when_running(s: &Setup, n: usize) -> Instant {
    loop {
        let mut arns = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = s
                .ecs
                .list_tasks()
                .cluster(&s.cluster)
                .desired_status(DesiredStatus::Running)
                .set_next_token(next.clone())
                .send()
                .await
                .unwrap();
            arns.extend(page.task_arns().iter().cloned());
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        if arns.len() >= n {
            let started = Instant::now();
            for arn in arns {
                s.ecs
                    .stop_task()
                    .cluster(&s.cluster)
                    .task(arn)
                    .reason("Essential container in task exited")
                    .send()
                    .await
                    .unwrap();
            }
            return started;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tasks: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let poll = Duration::from_millis(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000));

    // --- ragshift: the executor's shared poller ---
    let moto = MotoServer::start();
    let s = setup(&moto).await;
    let counter = Arc::new(Counter {
        upstream: moto.endpoint_url().to_owned(),
        http: reqwest::Client::new(),
        describe_calls: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(counter.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = shared_pg().fresh_database("ecs_bench");
    let c = shared_pg().connect(&url).await;
    Journal::default().ensure_schema(&c).await.unwrap();
    let options = EcsOptions {
        cluster: s.cluster.clone(),
        task_definition: s.family.clone(),
        container: "Container".into(),
        subnets: vec![s.subnet.clone()],
        security_groups: vec!["sg-0bench".into()],
        assign_public_ip: false,
        command_prefix: vec!["embed-bot".into()],
        worker_args: Vec::new(),
        capacity_providers: Vec::new(),
        max_in_flight: tasks,
        timeout: Duration::from_secs(3600),
        poll_interval: poll,
        retry: ragshift_retry::Policy {
            initial: Duration::from_millis(100),
            max_attempts: Some(3),
            ..ragshift_retry::Policy::default()
        },
        stop_wait: Duration::from_secs(60),
    };
    let executor = Arc::new(EcsExecutor::new(
        &sdk(&proxy).await,
        options,
        ConnectSpec::from_url(&url, None, None).unwrap(),
        ragshift_store::BotRows::bot_column(Layout::default()),
    ));
    let run_id = unique_name("run");
    let mut jobs = Vec::new();
    for i in 0..tasks {
        let ex = executor.clone();
        let job = BotJob {
            run_id: run_id.clone(),
            journal: Journal::default(),
            exec_id: format!("ragshift-{run_id}"),
            bot: Bot::new(
                BotKey {
                    user_id: "bench".into(),
                    bot_id: format!("01BENCH{i:019}"),
                },
                "bench",
            ),
        };
        jobs.push(tokio::spawn(async move { ex.run(job, &Silent).await }));
    }
    let stopped_at = stop_all_when_running(&s, tasks).await;
    let calls_before = counter.describe_calls.load(Ordering::SeqCst);
    let mut last = stopped_at;
    for j in jobs {
        j.await.unwrap();
        last = last.max(Instant::now());
    }
    let ragshift_notice = last.duration_since(stopped_at);
    let ragshift_calls = counter.describe_calls.load(Ordering::SeqCst);
    let ragshift_rounds_calls = ragshift_calls - calls_before;
    drop(moto);

    // --- baseline: one DescribeTasks per task per interval ---
    let moto = MotoServer::start();
    let s = setup(&moto).await;
    let calls = Arc::new(AtomicU64::new(0));
    let network = NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets(&s.subnet)
                .security_groups("sg-0bench")
                .assign_public_ip(AssignPublicIp::Disabled)
                .build()
                .unwrap(),
        )
        .build();
    let mut jobs = Vec::new();
    for _ in 0..tasks {
        let (ecs, cluster, family, network, calls) = (
            s.ecs.clone(),
            s.cluster.clone(),
            s.family.clone(),
            network.clone(),
            calls.clone(),
        );
        jobs.push(tokio::spawn(async move {
            let out = ecs
                .run_task()
                .cluster(&cluster)
                .task_definition(&family)
                .launch_type(LaunchType::Fargate)
                .network_configuration(network)
                .send()
                .await
                .unwrap();
            let arn = out.tasks()[0].task_arn().unwrap().to_owned();
            loop {
                calls.fetch_add(1, Ordering::SeqCst);
                let d = ecs
                    .describe_tasks()
                    .cluster(&cluster)
                    .tasks(&arn)
                    .send()
                    .await
                    .unwrap();
                if d.tasks()[0].last_status() == Some("STOPPED") {
                    return;
                }
                tokio::time::sleep(poll).await;
            }
        }));
    }
    let stopped_at = stop_all_when_running(&s, tasks).await;
    let calls_before = calls.load(Ordering::SeqCst);
    let mut last = stopped_at;
    for j in jobs {
        j.await.unwrap();
        last = last.max(Instant::now());
    }
    let baseline_notice = last.duration_since(stopped_at);
    let baseline_calls = calls.load(Ordering::SeqCst);
    let baseline_rounds_calls = baseline_calls - calls_before;

    println!(
        "tasks in flight: {tasks}, poll interval {} ms",
        poll.as_millis()
    );
    println!(
        "ragshift (one poller, 100 tasks per call): {ragshift_calls} DescribeTasks calls in all, \
         {ragshift_rounds_calls} after the last StopTask; all {tasks} stops noticed in {:.2}s",
        ragshift_notice.as_secs_f64()
    );
    println!(
        "baseline (each job polls its own task):    {baseline_calls} DescribeTasks calls in all, \
         {baseline_rounds_calls} after the last StopTask; all {tasks} stops noticed in {:.2}s",
        baseline_notice.as_secs_f64()
    );
    println!(
        "ratio: baseline/ragshift DescribeTasks calls = {:.1}x; time to notice ragshift/baseline = {:.2}",
        baseline_calls as f64 / ragshift_calls.max(1) as f64,
        ragshift_notice.as_secs_f64() / baseline_notice.as_secs_f64().max(1e-9)
    );
}
