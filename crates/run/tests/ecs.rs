//! The ECS executor against moto's ECS, with a real PostgreSQL target, the registry in moto's
//! DynamoDB and real workers.
//!
//! moto doesn't run containers, so the test plays the container: it watches the cluster for
//! started tasks (ListTasks/DescribeTasks), reads each task's command override, runs the real
//! [`Worker`] for the bot the command names (or, for the failure cases, dies or hangs), then
//! stops the task as ECS would when the container exits. Every RunTask request goes through a
//! recording proxy on loopback in front of moto, which can also answer with `failures` or
//! throttling, as ECS does when Fargate has no capacity, and can throttle every DescribeTasks.
//! The executor's client keeps no SDK retries, so the proxy sees exactly the attempts the retry
//! policy makes. Only the embedding model is a test
//! double (a deterministic hash), to keep the tests fast.

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::types::{DesiredStatus, Task};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ragshift_documents::DirDocuments;
use ragshift_embed::{Embedder, Embeddings, InputKind};
use ragshift_ingest::{IngestOptions, Ingestor};
use ragshift_model::{Bot, BotKey, SyncStatus};
use ragshift_registry::{BotSelector, DynamoRegistry, Registry, Selection, StatusUpdate};
use ragshift_retry::Policy;
use ragshift_run::events::Silent;
use ragshift_run::executor::{EcsExecutor, EcsOptions, Executor};
use ragshift_run::{BotJob, Rebuild, RebuildOptions, RunReport, Worker, WorkerOptions};
use ragshift_store::journal::{self, Journal, Status};
use ragshift_store::{schema, ConnectSpec, Layout};
use ragshift_testkit::sql::scalar;
use ragshift_testkit::{shared_pg, unique_name, MotoServer};
use serde_json::{json, Value};

const DIM: usize = 8;
const CONTAINER: &str = "Container";
const SECURITY_GROUP: &str = "sg-0a1b2c3d4e5f60718";
const NORMAL_EXIT: &str = "Essential container in task exited";

// ---------------------------------------------------------------------------------------------
// The embedding model's stand-in.

/// Deterministic vectors from the text's bytes.
struct HashEmbedder;

#[async_trait::async_trait]
impl Embedder for HashEmbedder {
    fn provider(&self) -> &'static str {
        "test"
    }
    fn model_id(&self) -> &str {
        "hash-8"
    }
    fn dimension(&self) -> usize {
        DIM
    }
    fn max_batch_size(&self) -> usize {
        1000
    }
    fn max_input_chars(&self) -> usize {
        100_000
    }
    async fn embed(
        &self,
        texts: &[String],
        _kind: InputKind,
    ) -> ragshift_embed::Result<Embeddings> {
        let vectors = texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0_f32; DIM];
                for (i, b) in t.bytes().enumerate() {
                    v[i % DIM] += f32::from(b) / 255.0;
                }
                v
            })
            .collect();
        Ok(Embeddings {
            vectors,
            tokens: None,
            truncated: 0,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A recording proxy in front of moto, able to answer RunTask like ECS under pressure.

#[derive(Debug, Clone)]
enum Injected {
    /// `{"tasks": [], "failures": [{"reason": ...}]}`, as when Fargate has no capacity.
    Failure(&'static str),
    /// HTTP 400 ThrottlingException.
    Throttle,
}

#[derive(Default)]
struct ProxyLog {
    /// Every RunTask request body, with what the proxy answered (`None`: forwarded).
    run_tasks: Vec<(Value, Option<String>)>,
    /// Answers to inject, per bot id, in order; `always` repeats forever.
    inject: HashMap<String, Vec<Injected>>,
    always: HashMap<String, Injected>,
    /// Throttle every DescribeTasks call.
    throttle_describe: bool,
    /// DescribeTasks calls seen.
    describe_calls: usize,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    log: Mutex<ProxyLog>,
}

struct Proxy {
    url: String,
    state: Arc<ProxyState>,
}

impl Proxy {
    async fn start(upstream: &str) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            http: reqwest::Client::new(),
            log: Mutex::new(ProxyLog::default()),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    fn inject(&self, bot: &str, answers: Vec<Injected>) {
        self.state
            .log
            .lock()
            .unwrap()
            .inject
            .insert(bot.to_owned(), answers);
    }

    fn always(&self, bot: &str, answer: Injected) {
        self.state
            .log
            .lock()
            .unwrap()
            .always
            .insert(bot.to_owned(), answer);
    }

    /// RunTask requests for `bot`, with what the proxy answered instead of moto.
    fn run_tasks_for(&self, bot: &str) -> Vec<(Value, Option<String>)> {
        let log = self.state.log.lock().unwrap();
        log.run_tasks
            .iter()
            .filter(|(body, _)| bot_of_request(body).as_deref() == Some(bot))
            .cloned()
            .collect()
    }

    fn run_tasks(&self) -> Vec<(Value, Option<String>)> {
        self.state.log.lock().unwrap().run_tasks.clone()
    }

    fn throttle_describe(&self) {
        self.state.log.lock().unwrap().throttle_describe = true;
    }

    fn describe_calls(&self) -> usize {
        self.state.log.lock().unwrap().describe_calls
    }
}

/// The bot id in a RunTask request's command override (the keys JSON is the last argument).
fn bot_of_request(body: &Value) -> Option<String> {
    let command = body["overrides"]["containerOverrides"][0]["command"].as_array()?;
    let keys: Value = serde_json::from_str(command.last()?.as_str()?).ok()?;
    let sk = keys["SK"]["S"].as_str()?;
    Some(sk.rsplit('#').next()?.to_owned())
}

/// An answer in ECS's JSON protocol.
fn ecs_answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// ECS's throttling answer.
fn throttled() -> Response {
    ecs_answer(
        StatusCode::BAD_REQUEST,
        &json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
    )
}

/// Records ECS requests and answers them as injected, else passes them on to moto (a moto
/// that is gone is answered 502, see [`ragshift_testkit::pass_on`]).
async fn forward(State(p): State<Arc<ProxyState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("reading the request: {e}")).into_response()
        }
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if target.ends_with(".DescribeTasks") {
        let mut log = p.log.lock().unwrap();
        log.describe_calls += 1;
        if log.throttle_describe {
            return throttled();
        }
    }
    // A RunTask that is not JSON is passed on, for moto to refuse.
    let run_task = target.ends_with(".RunTask");
    if let Some(request) = run_task
        .then(|| serde_json::from_slice::<Value>(&bytes).ok())
        .flatten()
    {
        let bot = bot_of_request(&request).unwrap_or_default();
        let mut log = p.log.lock().unwrap();
        let injected = match log.inject.get_mut(&bot) {
            Some(q) if !q.is_empty() => Some(q.remove(0)),
            _ => log.always.get(&bot).cloned(),
        };
        log.run_tasks
            .push((request, injected.as_ref().map(|i| format!("{i:?}"))));
        drop(log);
        match injected {
            Some(Injected::Failure(reason)) => {
                return ecs_answer(
                    StatusCode::OK,
                    &json!({"tasks": [], "failures": [{"reason": reason, "detail": "injected by the test"}]}),
                );
            }
            Some(Injected::Throttle) => return throttled(),
            None => {}
        }
    }
    ragshift_testkit::pass_on(&p.http, &p.upstream, &parts, bytes).await
}

// ---------------------------------------------------------------------------------------------
// The world: moto (ECS, EC2, DynamoDB), the proxy, a target database, documents, a registry.

struct World {
    _moto: MotoServer,
    proxy: Proxy,
    /// Talks to moto directly (the test's own view, and the "container").
    ecs: aws_sdk_ecs::Client,
    dynamo: aws_sdk_dynamodb::Client,
    /// SDK configuration pointing at the proxy (what the executor uses).
    proxied: aws_config::SdkConfig,
    cluster: String,
    task_definition: String,
    subnet: String,
    table: String,
    registry: Arc<dyn Registry>,
    target: ConnectSpec,
    target_url: String,
    layout: Layout,
    /// Where the run and the "containers" keep the journal.
    journal: Journal,
    worker: Arc<Worker>,
    _docs: tempfile::TempDir,
}

async fn sdk_for(endpoint: &str) -> aws_config::SdkConfig {
    ragshift_testkit::sdk_config(endpoint).await
}

use ragshift_testkit::ecs::{ec2_query as ec2, xml_values};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

impl World {
    async fn new(bots: &[&BotKey]) -> Self {
        Self::with_journal(bots, Journal::default()).await
    }

    /// A world whose run keeps its journal in `journal`.
    async fn with_journal(bots: &[&BotKey], journal: Journal) -> Self {
        let moto = MotoServer::start();
        // Tasks stay RUNNING until stopped (moto's default moves them one state per describe).
        ragshift_testkit::ecs::hold_tasks(moto.endpoint_url()).await;
        let direct = sdk_for(moto.endpoint_url()).await;
        let ecs = aws_sdk_ecs::Client::new(&direct);
        let dynamo = aws_sdk_dynamodb::Client::new(&direct);
        let proxy = Proxy::start(moto.endpoint_url()).await;
        let proxied = sdk_for(&proxy.url).await;

        let subnet = ragshift_testkit::ecs::default_subnet(moto.endpoint_url()).await;

        let (cluster, family) = ragshift_testkit::ecs::create_embedding_task(
            &ecs,
            "embedding",
            "EmbeddingTask",
            CONTAINER,
        )
        .await;

        let table =
            ragshift_testkit::dynamo::create_conversation_table(&dynamo, "conversations").await;
        let docs = tempfile::tempdir().unwrap();
        for k in bots {
            let dir: PathBuf = docs
                .path()
                .join(&k.user_id)
                .join(&k.bot_id)
                .join("documents");
            std::fs::create_dir_all(&dir).unwrap();
            let text: String = (0..40)
                .map(|i| format!("Bot {} knows fact number {i} about its topic. ", k.bot_id))
                .collect();
            std::fs::write(dir.join("notes.txt"), text).unwrap();
            dynamo
                .put_item()
                .table_name(&table)
                .item("PK", s(&k.user_id))
                .item("SK", s(&k.sk()))
                .item("Title", s(&format!("bot {}", k.bot_id)))
                .item(
                    "Knowledge",
                    AttributeValue::M(HashMap::from([
                        ("source_urls".to_owned(), AttributeValue::L(vec![])),
                        ("sitemap_urls".to_owned(), AttributeValue::L(vec![])),
                        (
                            "filenames".to_owned(),
                            AttributeValue::L(vec![s("notes.txt")]),
                        ),
                    ])),
                )
                .item("SyncStatus", s("SUCCEEDED"))
                .item("SyncStatusReason", s("old"))
                .item("LastExecId", s("platform-task-1"))
                .send()
                .await
                .unwrap();
        }
        let registry: Arc<dyn Registry> = Arc::new(DynamoRegistry::new(&direct, &table));

        let pg = shared_pg();
        let target_url = pg.fresh_database("ecs");
        let target = ConnectSpec::from_url(&target_url, None, None).unwrap();
        let layout = Layout::default();
        let mut c = pg.connect(&target_url).await;
        schema::init_target(&mut c, &layout, DIM).await.unwrap();

        let worker = Arc::new(Worker {
            ingestor: Ingestor::new(IngestOptions::default()).unwrap(),
            embedder: Arc::new(HashEmbedder),
            documents: Arc::new(DirDocuments::new(docs.path())),
            registry: registry.clone(),
            target: target.clone(),
            rows: ragshift_store::BotRows::bot_column(layout.clone()),
            options: WorkerOptions::default(),
        });
        Self {
            _moto: moto,
            proxy,
            ecs,
            dynamo,
            proxied,
            cluster,
            task_definition: family,
            subnet,
            table,
            registry,
            target,
            target_url,
            layout,
            journal,
            worker,
            _docs: docs,
        }
    }

    fn options(&self, max_in_flight: usize) -> EcsOptions {
        EcsOptions {
            cluster: self.cluster.clone(),
            task_definition: self.task_definition.clone(),
            container: CONTAINER.to_owned(),
            subnets: vec![self.subnet.clone()],
            security_groups: vec![SECURITY_GROUP.to_owned()],
            assign_public_ip: false,
            command_prefix: vec!["embed-bot".to_owned()],
            worker_args: Vec::new(),
            capacity_providers: Vec::new(),
            max_in_flight,
            timeout: Duration::from_secs(120),
            poll_interval: Duration::from_millis(100),
            retry: Policy {
                initial: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
                max_attempts: Some(3),
                ..Policy::default()
            },
            stop_wait: Duration::from_secs(30),
        }
    }

    fn executor(&self, options: EcsOptions) -> Arc<EcsExecutor> {
        Arc::new(
            EcsExecutor::new(
                &self.proxied,
                options,
                self.target.clone(),
                ragshift_store::BotRows::bot_column(self.layout.clone()),
            )
            .with_status_updates(self.registry.clone()),
        )
    }

    /// Runs a whole rebuild of `bots` through `executor`, `jobs` at once, while `containers`
    /// plays the tasks' containers.
    async fn rebuild(
        &self,
        executor: Arc<EcsExecutor>,
        bots: &[&BotKey],
        jobs: usize,
        containers: &Containers,
    ) -> RunReport {
        let mut list = Vec::new();
        for k in bots {
            list.push(self.bot(k).await);
        }
        let rebuild = Rebuild::new(self.target.clone(), self.layout.clone(), executor);
        let options = RebuildOptions {
            resume: None,
            fresh: false,
            resume_window: std::time::Duration::from_secs(86400),
            settings: json!({"registry": "test"}),
            concurrency: jobs,
            dry_run: false,
            selection: json!({"test": unique_name("sel")}),
            index: None,
            index_build: Default::default(),
            journal: self.journal.clone(),
            embedder: None,
        };
        let report = rebuild.run(list, 0, &options, &Silent).await.unwrap();
        containers.stop();
        report
    }

    async fn bot(&self, k: &BotKey) -> Bot {
        let selector: BotSelector = format!("{}/{}", k.user_id, k.bot_id).parse().unwrap();
        let scan = self
            .registry
            .bots(&Selection {
                users: Vec::new(),
                bots: vec![selector],
            })
            .await
            .unwrap();
        scan.bots.into_iter().next().unwrap()
    }

    async fn registry_status(&self, k: &BotKey) -> (String, String, String) {
        ragshift_testkit::dynamo::sync_status(&self.dynamo, &self.table, &k.user_id, &k.bot_id)
            .await
    }

    async fn units(&self, run_id: &str) -> HashMap<String, journal::UnitRow> {
        let c = shared_pg().connect(&self.target_url).await;
        self.journal
            .units(&c, run_id)
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.unit_id.clone(), u))
            .collect()
    }

    async fn rows_of(&self, bot: &str) -> i64 {
        let c = shared_pg().connect(&self.target_url).await;
        c.query_one(
            "SELECT count(*) FROM public.items WHERE botid = $1",
            &[&bot],
        )
        .await
        .unwrap()
        .get(0)
    }

    async fn describe(&self, arns: Vec<String>) -> Vec<Task> {
        let mut out = Vec::new();
        for chunk in arns.chunks(100) {
            let d = self
                .ecs
                .describe_tasks()
                .cluster(&self.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            out.extend(d.tasks().iter().cloned());
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The containers: what runs "inside" each task moto pretends to run.

#[derive(Debug, Clone)]
enum Behaviour {
    /// Run the real worker with the task's command, then exit normally.
    Work,
    /// Start like the worker (journal RUNNING, registry RUNNING with the exec id), then get
    /// killed with this stop reason before writing anything.
    Die(&'static str),
    /// Never finish.
    Hang,
}

/// What the containers saw.
#[derive(Debug, Default)]
struct Seen {
    /// Tasks seen RUNNING, with their description.
    tasks: HashMap<String, Task>,
    /// Most tasks seen RUNNING at once.
    max_running: usize,
}

struct Containers {
    seen: Arc<Mutex<Seen>>,
    done: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Containers {
    /// Watches the cluster and plays each new task's container. Tasks are only let go once
    /// `hold` of them run at once (or all `total` bots have a task), so that running more tasks
    /// than allowed would be seen.
    fn start(
        world: &Arc<World>,
        behaviour: HashMap<String, Behaviour>,
        hold: usize,
        total: usize,
    ) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let done = Arc::new(AtomicBool::new(false));
        let (w, s, d) = (world.clone(), seen.clone(), done.clone());
        let handle = tokio::spawn(async move {
            let mut handled: HashSet<String> = HashSet::new();
            let mut waiting: Vec<Task> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !d.load(Ordering::SeqCst) {
                assert!(
                    Instant::now() < deadline,
                    "the rebuild did not finish in 5 minutes"
                );
                let arns = ragshift_testkit::ecs::running_task_arns(&w.ecs, &w.cluster).await;
                let running: Vec<Task> = if arns.is_empty() {
                    Vec::new()
                } else {
                    w.describe(arns).await
                };
                let running: Vec<Task> = running
                    .into_iter()
                    .filter(|t| t.last_status() == Some("RUNNING"))
                    .collect();
                {
                    let mut seen = s.lock().unwrap();
                    seen.max_running = seen.max_running.max(running.len());
                    for t in &running {
                        let arn = t.task_arn().unwrap().to_owned();
                        seen.tasks.entry(arn).or_insert_with(|| t.clone());
                    }
                }
                for t in running {
                    let arn = t.task_arn().unwrap().to_owned();
                    if handled.insert(arn) {
                        waiting.push(t);
                    }
                }
                let let_go =
                    !waiting.is_empty() && (waiting.len() >= hold || handled.len() >= total);
                if let_go {
                    for t in waiting.drain(..) {
                        let bot = bot_of_task(&t);
                        let b = behaviour.get(&bot).cloned().unwrap_or(Behaviour::Work);
                        tokio::spawn(play(w.clone(), t, b));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { seen, done, handle }
    }

    fn stop(&self) {
        self.done.store(true, Ordering::SeqCst);
    }

    async fn finish(self) -> Seen {
        self.stop();
        self.handle.await.unwrap();
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

fn command_of(t: &Task) -> Vec<String> {
    let o = t.overrides().expect("the task has overrides");
    let c = o
        .container_overrides()
        .iter()
        .find(|c| c.name() == Some(CONTAINER))
        .expect("an override of the worker container");
    c.command().to_vec()
}

/// The journal a worker given `command` writes to, as `embed-bot` reads its flags.
fn journal_of_command(command: &[String]) -> Journal {
    match command.iter().position(|a| a == "--journal-schema") {
        Some(i) => Journal::new(&command[i + 1]),
        None => Journal::default(),
    }
}

fn arg_after(command: &[String], flag: &str) -> String {
    let i = command.iter().position(|a| a == flag).unwrap();
    command[i + 1].clone()
}

fn key_of_command(command: &[String]) -> BotKey {
    let keys: Value = serde_json::from_str(command.last().unwrap()).unwrap();
    BotKey::from_registry_keys(
        keys["PK"]["S"].as_str().unwrap(),
        keys["SK"]["S"].as_str().unwrap(),
    )
    .unwrap()
}

fn bot_of_task(t: &Task) -> String {
    key_of_command(&command_of(t)).bot_id
}

/// Plays one container: reads the command as `ragshift embed-bot` would, acts, and exits.
async fn play(w: Arc<World>, task: Task, behaviour: Behaviour) {
    let arn = task.task_arn().unwrap().to_owned();
    let command = command_of(&task);
    let run_id = arg_after(&command, "--run-id");
    let exec_id = arg_after(&command, "--exec-id");
    let key = key_of_command(&command);
    let journal = journal_of_command(&command);
    let reason = match behaviour {
        Behaviour::Hang => return,
        Behaviour::Work => {
            let job = BotJob {
                run_id,
                journal,
                exec_id,
                bot: w.bot(&key).await,
            };
            w.worker.run(&job, &Silent).await;
            NORMAL_EXIT
        }
        Behaviour::Die(reason) => {
            let c = shared_pg().connect(&w.target_url).await;
            journal
                .mark_running(&c, &run_id, &key.bot_id, Some(&exec_id))
                .await
                .unwrap();
            let update = StatusUpdate {
                status: SyncStatus::Running,
                reason: String::new(),
                exec_id,
                expected_exec_id: None,
            };
            w.registry.set_status(&key, &update).await.unwrap();
            reason
        }
    };
    w.ecs
        .stop_task()
        .cluster(&w.cluster)
        .task(&arn)
        .reason(reason)
        .send()
        .await
        .unwrap();
}

fn key(user: &str, n: usize) -> BotKey {
    BotKey {
        user_id: user.to_owned(),
        bot_id: format!("01JECSBOT{n:02}000000000000000"),
    }
}

fn by_bot(report: &RunReport) -> HashMap<String, ragshift_run::BotFinished> {
    report
        .bots
        .iter()
        .map(|b| (b.bot_id.clone(), b.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bot_runs_as_its_own_task_with_the_right_request_and_never_more_than_n_at_once() {
    let keys: Vec<BotKey> = (0..5).map(|n| key("user-a", n)).collect();
    let refs: Vec<&BotKey> = keys.iter().collect();
    let world = Arc::new(World::new(&refs).await);
    const CAP: usize = 2;
    let executor = world.executor(world.options(CAP));
    assert!(executor.describe().contains(&world.cluster));
    let containers = Containers::start(&world, HashMap::new(), CAP, keys.len());
    // The run asks for 5 jobs at once: the executor's own cap must hold the line at 2.
    let report = world.rebuild(executor.clone(), &refs, 5, &containers).await;
    let seen = containers.finish().await;

    assert_eq!((report.succeeded, report.failed), (5, 0), "{report:#?}");
    assert_eq!(seen.max_running, CAP, "tasks running at once");
    assert!(executor.tasks_in_flight().is_empty());

    // The RunTask requests, as sent.
    let exec_id = format!("ragshift-{}", report.run_id);
    let requests = world.proxy.run_tasks();
    assert_eq!(requests.len(), 5);
    let mut bots_started = HashSet::new();
    for (body, injected) in &requests {
        assert!(injected.is_none());
        let bot = bot_of_request(body).unwrap();
        let k = keys.iter().find(|k| k.bot_id == bot).unwrap();
        assert_eq!(body["cluster"], json!(world.cluster));
        assert_eq!(body["taskDefinition"], json!(world.task_definition));
        assert_eq!(body["launchType"], json!("FARGATE"));
        assert_eq!(body["count"], json!(1));
        assert_eq!(body["startedBy"], json!(exec_id));
        assert!(body.get("capacityProviderStrategy").is_none());
        assert_eq!(
            body["networkConfiguration"],
            json!({"awsvpcConfiguration": {"subnets": [world.subnet], "securityGroups": [SECURITY_GROUP],
                                           "assignPublicIp": "DISABLED"}})
        );
        let keys_json = json!({"PK": {"S": k.user_id}, "SK": {"S": k.sk()}}).to_string();
        assert_eq!(
            body["overrides"],
            json!({"containerOverrides": [{"name": CONTAINER, "command": [
                "embed-bot", "--run-id", report.run_id, "--exec-id", exec_id, keys_json]}]})
        );
        bots_started.insert(bot);
    }
    assert_eq!(bots_started.len(), 5, "one task per bot");

    // What moto made of them: the same command on the task, on our cluster, in our subnet.
    assert_eq!(seen.tasks.len(), 5);
    for t in seen.tasks.values() {
        assert!(t
            .cluster_arn()
            .unwrap()
            .ends_with(&format!("/{}", world.cluster)));
        assert!(t
            .task_definition_arn()
            .unwrap()
            .contains(&world.task_definition));
        let command = command_of(t);
        assert_eq!(
            command[..5],
            [
                "embed-bot",
                "--run-id",
                &report.run_id,
                "--exec-id",
                &exec_id
            ]
        );
        let eni = t.attachments()[0]
            .details()
            .iter()
            .map(|d| (d.name().unwrap(), d.value().unwrap()))
            .collect::<HashMap<_, _>>();
        assert_eq!(eni["subnetId"], world.subnet);
        let xml = ec2(
            world._moto.endpoint_url(),
            &[
                ("Action", "DescribeNetworkInterfaces"),
                ("NetworkInterfaceId.1", eni["networkInterfaceId"]),
            ],
        )
        .await;
        assert!(
            xml_values(&xml, "groupId").contains(&SECURITY_GROUP.to_owned()),
            "{xml}"
        );
    }

    // The workers' journal rows and rows, and the registry as the platform's worker leaves it.
    let units = world.units(&report.run_id).await;
    let finished = by_bot(&report);
    for k in &keys {
        let u = &units[&k.bot_id];
        assert_eq!((u.status, u.attempts), (Status::Succeeded, 1), "{u:?}");
        let rows = world.rows_of(&k.bot_id).await;
        assert!(rows > 1);
        assert_eq!(u.row_count, Some(rows));
        let f = &finished[&k.bot_id];
        assert_eq!(f.chunks as i64, rows);
        assert!(f.chars > 0);
        assert_eq!(f.sources.len(), 1);
        assert_eq!(f.sources[0].status, "loaded");
        let (status, reason, last) = world.registry_status(k).await;
        assert_eq!(status, "SUCCEEDED");
        assert_eq!(reason, ragshift_run::REASON_INSERTED);
        assert_eq!(last, exec_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_tasks_and_refused_run_tasks_fail_their_bot_with_the_reason_and_others_go_on() {
    let ok = key("user-b", 0);
    let dies = key("user-b", 1);
    let retried = key("user-b", 2);
    let refused = key("user-b", 3);
    let throttled = key("user-b", 4);
    let refs = [&ok, &dies, &retried, &refused, &throttled];
    // In a journal schema of its own: the tasks are told it, and the executor records the
    // bots whose task died there too.
    let world = Arc::new(World::with_journal(&refs, Journal::new("Journal-1")).await);
    world.proxy.inject(&ok.bot_id, vec![Injected::Throttle]);
    world.proxy.always(&throttled.bot_id, Injected::Throttle);
    world.proxy.inject(
        &retried.bot_id,
        vec![
            Injected::Failure("RESOURCE:MEMORY"),
            Injected::Failure("RESOURCE:MEMORY"),
        ],
    );
    world
        .proxy
        .always(&refused.bot_id, Injected::Failure("RESOURCE:MEMORY"));
    const OOM: &str = "OutOfMemoryError: Container killed due to memory usage";
    let behaviour = HashMap::from([(dies.bot_id.clone(), Behaviour::Die(OOM))]);
    let containers = Containers::start(&world, behaviour, 1, 3);
    let report = world
        .rebuild(world.executor(world.options(2)), &refs, 2, &containers)
        .await;
    let containers_seen = containers.finish().await;
    let finished = by_bot(&report);
    let units = world.units(&report.run_id).await;
    assert_eq!((report.succeeded, report.failed), (2, 3), "{report:#?}");

    // Throttled once (the retry policy retries it, with the same client token), then started:
    // two requests, the SDK adding none.
    assert!(finished[&ok.bot_id].succeeded());
    let tries = world.proxy.run_tasks_for(&ok.bot_id);
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0].1.as_deref(), Some("Throttle"), "{tries:?}");
    assert_eq!(tries[0].0["clientToken"], tries[1].0["clientToken"]);

    // Throttled for ever: exactly the policy's 3 attempts (not 3 × the SDK's 3), then failed.
    let reason = finished[&throttled.bot_id].error.clone().unwrap();
    assert!(
        reason.contains("after 3 attempts") && reason.contains("ThrottlingException"),
        "{reason}"
    );
    assert_eq!(world.proxy.run_tasks_for(&throttled.bot_id).len(), 3);

    // Killed after it began: failed with ECS's reason, in the report, the journal and the
    // registry (which its worker had left RUNNING).
    let f = &finished[&dies.bot_id];
    assert_eq!(f.status, "failed");
    let reason = f.error.clone().unwrap();
    assert!(
        reason.contains(OOM) && reason.contains("before the worker recorded a result"),
        "{reason}"
    );
    let u = &units[&dies.bot_id];
    assert_eq!((u.status, u.attempts), (Status::Failed, 1));
    assert_eq!(u.error.as_deref(), Some(reason.as_str()));
    let task = &u.detail.as_ref().unwrap()["ecs_task"];
    assert!(task["arn"].as_str().unwrap().contains(":task/"), "{task}");
    assert_eq!(task["stopped_reason"], json!(OOM));
    let (status, why, last) = world.registry_status(&dies).await;
    assert_eq!(
        (status.as_str(), last),
        ("FAILED", format!("ragshift-{}", report.run_id))
    );
    assert_eq!(why, reason);
    assert_eq!(world.rows_of(&dies.bot_id).await, 0);

    // No capacity twice, then a task: succeeded after three RunTask calls.
    assert!(
        finished[&retried.bot_id].succeeded(),
        "{:?}",
        finished[&retried.bot_id]
    );
    assert_eq!(world.proxy.run_tasks_for(&retried.bot_id).len(), 3);
    assert_eq!(units[&retried.bot_id].status, Status::Succeeded);

    // Never any capacity: failed after the configured attempts with ECS's reason; the journal
    // counts the attempt; the registry item, never touched by this run, keeps its status.
    let f = &finished[&refused.bot_id];
    let reason = f.error.clone().unwrap();
    assert!(
        reason.contains("after 3 attempts") && reason.contains("RESOURCE:MEMORY"),
        "{reason}"
    );
    assert_eq!(world.proxy.run_tasks_for(&refused.bot_id).len(), 3);
    let u = &units[&refused.bot_id];
    assert_eq!((u.status, u.attempts), (Status::Failed, 1));
    assert_eq!(
        world.registry_status(&refused).await,
        (
            "SUCCEEDED".to_owned(),
            "old".to_owned(),
            "platform-task-1".to_owned()
        )
    );

    // Every task was told the journal's schema; nothing went to the default one.
    for t in containers_seen.tasks.values() {
        let command = command_of(t);
        assert_eq!(arg_after(&command, "--journal-schema"), "Journal-1");
    }
    assert!(!containers_seen.tasks.is_empty());
    let c = shared_pg().connect(&world.target_url).await;
    assert!(
        !scalar::<bool>(&c, "SELECT to_regnamespace('ragshift') IS NOT NULL").await,
        "the default journal schema was created"
    );
    let runs: i64 = c
        .query_one(
            "SELECT count(*) FROM \"Journal-1\".runs WHERE run_id = $1 AND status = 'failed'",
            &[&report.run_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bot_past_its_time_out_has_its_task_stopped_and_fails() {
    let slow = key("user-c", 0);
    let quick = key("user-c", 1);
    let refs = [&slow, &quick];
    let world = Arc::new(World::new(&refs).await);
    let behaviour = HashMap::from([(slow.bot_id.clone(), Behaviour::Hang)]);
    let containers = Containers::start(&world, behaviour, 1, 2);
    let mut options = world.options(2);
    options.timeout = Duration::from_secs(3);
    let report = world
        .rebuild(world.executor(options), &refs, 2, &containers)
        .await;
    let seen = containers.finish().await;
    let finished = by_bot(&report);

    assert!(finished[&quick.bot_id].succeeded());
    let f = &finished[&slow.bot_id];
    let reason = f.error.clone().unwrap();
    assert!(
        reason.starts_with("timed out after 3s") && reason.contains("was stopped"),
        "{reason}"
    );
    let units = world.units(&report.run_id).await;
    assert_eq!(units[&slow.bot_id].status, Status::Failed);
    assert_eq!(units[&slow.bot_id].error.as_deref(), Some(reason.as_str()));
    // The task itself was stopped, saying why.
    let arn = seen
        .tasks
        .values()
        .find(|t| bot_of_task(t) == slow.bot_id)
        .and_then(|t| t.task_arn())
        .unwrap()
        .to_owned();
    let task = world.describe(vec![arn]).await.remove(0);
    assert_eq!(task.last_status(), Some("STOPPED"));
    assert!(task
        .stopped_reason()
        .unwrap()
        .contains("timed out after 3s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn describe_tasks_failing_past_the_retry_budget_stops_the_task_and_fails_the_bot() {
    let k = key("user-e", 0);
    let world = Arc::new(World::new(&[&k]).await);
    world.proxy.throttle_describe();
    let behaviour = HashMap::from([(k.bot_id.clone(), Behaviour::Hang)]);
    let containers = Containers::start(&world, behaviour, 1, 1);
    let mut options = world.options(1);
    options.retry = Policy {
        initial: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
        budget: Duration::from_secs(1),
        max_attempts: None,
        ..Policy::default()
    };
    let report = world
        .rebuild(world.executor(options), &[&k], 1, &containers)
        .await;
    containers.finish().await;
    let f = &by_bot(&report)[&k.bot_id];
    let reason = f.error.clone().unwrap();
    assert_eq!(f.status, "failed");
    assert!(
        reason.contains("cannot watch the task") && reason.contains("retry budget of 1s"),
        "{reason}"
    );
    // Every failed round was one DescribeTasks request, paced by the policy.
    let calls = world.proxy.describe_calls();
    assert!(calls >= 3, "{calls} DescribeTasks calls: {reason}");
    assert!(
        reason.contains(&format!("failed {calls} times in a row")),
        "{calls} calls: {reason}"
    );
    // Unwatched, the task was stopped rather than left running outside the limit.
    let stopped = world
        .ecs
        .list_tasks()
        .cluster(&world.cluster)
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await
        .unwrap()
        .task_arns()
        .to_vec();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    let task = world.describe(stopped).await.remove(0);
    assert!(
        task.stopped_reason()
            .unwrap_or_default()
            .contains("cannot watch the task"),
        "{task:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_run_stops_its_tasks() {
    let k = key("user-d", 0);
    let world = Arc::new(World::new(&[&k]).await);
    let behaviour = HashMap::from([(k.bot_id.clone(), Behaviour::Hang)]);
    let containers = Containers::start(&world, behaviour, 1, 1);
    let executor = world.executor(world.options(1));
    let c = shared_pg().connect(&world.target_url).await;
    world.journal.ensure_schema(&c).await.unwrap();
    let job = BotJob {
        run_id: unique_name("run"),
        journal: world.journal.clone(),
        exec_id: "ragshift-test".to_owned(),
        bot: world.bot(&k).await,
    };
    // The job waits for its (hanging) task; once the task runs, the run is interrupted.
    let ex = executor.clone();
    let running = tokio::spawn(async move { ex.run(job, &Silent).await });
    let deadline = Instant::now() + Duration::from_secs(60);
    while executor.tasks_in_flight().is_empty() || containers.seen.lock().unwrap().tasks.is_empty()
    {
        assert!(Instant::now() < deadline, "the task never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arns = executor.tasks_in_flight();
    executor.abort("ragshift: run interrupted").await;
    running.abort();
    containers.finish().await;
    let task = world.describe(arns).await.remove(0);
    assert_eq!(task.last_status(), Some("STOPPED"));
    assert_eq!(task.stopped_reason(), Some("ragshift: run interrupted"));
}
