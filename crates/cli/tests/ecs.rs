//! `ragshift rebuild --executor ecs` end to end, against moto's ECS: the binary starts one task
//! per bot, and the test plays each task's container by running the very command the task was
//! given (`ragshift embed-bot --run-id … --exec-id … KEYS`, as the worker image's ENTRYPOINT
//! would) with the local model into a real PostgreSQL target, then stops the task as ECS does
//! when the container exits. The run's result must come from what those workers recorded.

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ragshift_testkit::sql::scalar;
use ragshift_testkit::{model_dir, shared_pg, MotoServer};
use serde_json::Value;

mod common;

const USER: &str = "5b1f0e3c-aaaa-4bbb-8ccc-0000000000e1";

fn bot_id(n: u32) -> String {
    format!("01JECS{n:02}AAAAAAAAAAAAAAAAAA")
}

/// ragshift in `dir` with the local model and only the variables `env` (which may override it).
fn command(dir: &Path, args: &[String], env: &[(String, String)]) -> Command {
    let mut cmd = ragshift_testkit::env::isolated_command(env!("CARGO_BIN_EXE_ragshift"), dir);
    cmd.args(args)
        .env("RAGSHIFT_EMBEDDING_MODEL_DIR", model_dir())
        .envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    ragshift_testkit::sdk_config(endpoint).await
}

/// A file registry of `USER`'s `bots` (bot id, document names) and their documents.
fn write_registry(dir: &Path, bots: &[(String, Vec<&str>)]) {
    let bots: Vec<_> = bots
        .iter()
        .map(|(bot, files)| (bot.clone(), files.clone(), vec![]))
        .collect();
    common::write_file_registry(dir, USER, &bots);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_on_ecs_runs_embed_bot_per_task_and_reports_what_the_workers_recorded() {
    rebuild_on_ecs(None).await;
}

/// With the journal in a schema of its own (`--journal-schema`, a name that needs quoting), the
/// tasks are told it and record there; the run reads their results from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_on_ecs_tells_the_tasks_the_journal_schema() {
    rebuild_on_ecs(Some("Journal-1")).await;
}

/// Runs a rebuild of four bots (one failing) on moto's ECS, playing each task's container.
async fn rebuild_on_ecs(journal_schema: Option<&str>) {
    let moto = MotoServer::start();
    ragshift_testkit::ecs::hold_tasks(moto.endpoint_url()).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk(moto.endpoint_url()).await);
    let subnet = ragshift_testkit::ecs::default_subnet(moto.endpoint_url()).await;
    let (cluster, family) = ragshift_testkit::ecs::create_embedding_task(
        &ecs,
        "BedrockChatStack-EmbeddingCluster",
        "EmbeddingTaskDefinition",
        "Container",
    )
    .await;

    let (a, b, c, gone) = (bot_id(1), bot_id(2), bot_id(3), bot_id(4));
    let dir = tempfile::tempdir().unwrap();
    write_registry(
        dir.path(),
        &[
            (a.clone(), vec!["handbook.md"]),
            (b.clone(), vec!["faq.txt"]),
            (c.clone(), vec!["handbook.md", "faq.txt"]),
            (gone.clone(), vec!["gone.docx"]),
        ],
    );
    let url = shared_pg().fresh_database("ecs_cli");
    // What the task definition's environment gives the worker.
    let task_env: Vec<(String, String)> = vec![
        ("RAGSHIFT_REGISTRY_KIND".into(), "file".into()),
        ("RAGSHIFT_REGISTRY_PATH".into(), "bots.json".into()),
        ("RAGSHIFT_DOCUMENTS_KIND".into(), "dir".into()),
        ("RAGSHIFT_DOCUMENTS_PATH".into(), "docs".into()),
        ("RAGSHIFT_TARGET_URL".into(), url.clone()),
        // A rate limit: the tasks spend the run's one budget in the journal.
        (
            "RAGSHIFT_EMBEDDING_REQUESTS_PER_MINUTE".into(),
            "6000".into(),
        ),
    ];
    let mut env = task_env.clone();
    env.extend(
        moto.aws_env()
            .into_iter()
            .filter(|(k, _)| *k != "AWS_ENDPOINT_URL")
            .map(|(k, v)| (k.to_owned(), v)),
    );
    env.extend([
        (
            "RAGSHIFT_AWS_ENDPOINT_URL".into(),
            moto.endpoint_url().to_owned(),
        ),
        ("RAGSHIFT_EXECUTOR_CLUSTER".into(), cluster.clone()),
        ("RAGSHIFT_EXECUTOR_TASK_DEFINITION".into(), family.clone()),
        ("RAGSHIFT_EXECUTOR_SUBNETS".into(), subnet.clone()),
        (
            "RAGSHIFT_EXECUTOR_SECURITY_GROUPS".into(),
            "sg-0feedbeef0000001".into(),
        ),
        ("RAGSHIFT_EXECUTOR_CONCURRENCY".into(), "2".into()),
        ("RAGSHIFT_EXECUTOR_POLL_INTERVAL_MS".into(), "200".into()),
    ]);

    let mut args: Vec<String> = ["rebuild", "--executor", "ecs", "--yes", "--json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(schema) = journal_schema {
        args.extend(["--journal-schema".to_owned(), schema.to_owned()]);
    }
    let rebuild = command(dir.path(), &args, &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rebuild = tokio::task::spawn_blocking(move || rebuild.wait_with_output().unwrap());

    // Play the containers until the run is over.
    let mut handled: HashSet<String> = HashSet::new();
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut max_running = 0;
    let mut workers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !rebuild.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the rebuild did not finish in 5 minutes"
        );
        let arns = ragshift_testkit::ecs::running_task_arns(&ecs, &cluster).await;
        max_running = max_running.max(arns.len());
        if !arns.is_empty() {
            let tasks = ecs
                .describe_tasks()
                .cluster(&cluster)
                .set_tasks(Some(arns))
                .send()
                .await
                .unwrap();
            for t in tasks.tasks() {
                let arn = t.task_arn().unwrap().to_owned();
                if t.last_status() != Some("RUNNING") || !handled.insert(arn.clone()) {
                    continue;
                }
                let o = &t.overrides().unwrap().container_overrides()[0];
                assert_eq!(o.name(), Some("Container"));
                let cmd = o.command().to_vec();
                commands.push(cmd.clone());
                let (dir, task_env, ecs, cluster) = (
                    dir.path().to_owned(),
                    task_env.clone(),
                    ecs.clone(),
                    cluster.clone(),
                );
                workers.push(tokio::spawn(async move {
                    // ENTRYPOINT ["ragshift"] + the task's command.
                    let out: Output = tokio::task::spawn_blocking(move || {
                        command(&dir, &cmd, &task_env).output().unwrap()
                    })
                    .await
                    .unwrap();
                    ecs.stop_task()
                        .cluster(&cluster)
                        .task(&arn)
                        .reason("Essential container in task exited")
                        .send()
                        .await
                        .unwrap();
                    out
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = rebuild.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut worker_codes = Vec::new();
    for w in workers {
        worker_codes.push(w.await.unwrap().status.code());
    }

    // One task per bot, never more than 2 at once, each running embed-bot for its bot.
    assert_eq!(commands.len(), 4, "{stderr}");
    assert!(max_running <= 2, "{max_running} tasks ran at once");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let run_id = events.iter().find(|e| e["event"] == "run_started").unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for cmd in &commands {
        assert_eq!(
            cmd[..5],
            [
                "embed-bot",
                "--run-id",
                &run_id,
                "--exec-id",
                &format!("ragshift-{run_id}")
            ]
        );
        match journal_schema {
            None => assert_eq!(cmd.len(), 6, "{cmd:?}"),
            Some(schema) => {
                assert_eq!(cmd.len(), 8, "{cmd:?}");
                assert_eq!(cmd[5..7], ["--journal-schema", schema], "{cmd:?}");
            }
        }
    }
    let mut codes = worker_codes.clone();
    codes.sort();
    assert_eq!(
        codes,
        vec![Some(0), Some(0), Some(0), Some(1)],
        "the workers' exit codes"
    );

    // The run's verdicts are the workers' own: three written, one failed with its reason.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let finished: HashMap<String, &Value> = events
        .iter()
        .filter(|e| e["event"] == "bot_finished")
        .map(|e| (e["bot_id"].as_str().unwrap().to_owned(), e))
        .collect();
    let pg = shared_pg();
    let client = pg.connect(&url).await;
    for bot in [&a, &b, &c] {
        let f = finished[bot];
        assert_eq!(f["status"], "succeeded", "{f}");
        let rows: i64 = client
            .query_one("SELECT count(*) FROM public.items WHERE botid = $1", &[bot])
            .await
            .unwrap()
            .get(0);
        assert!(rows > 0);
        assert_eq!(f["chunks"].as_i64(), Some(rows), "{f}");
    }
    assert_eq!(finished[&c]["sources"].as_array().unwrap().len(), 2);
    let f = finished[&gone];
    assert_eq!(f["status"], "failed");
    assert!(f["error"].as_str().unwrap().contains("gone.docx"), "{f}");
    let done = events
        .iter()
        .find(|e| e["event"] == "run_finished")
        .unwrap();
    assert_eq!(
        (done["succeeded"].as_u64(), done["failed"].as_u64()),
        (Some(3), Some(1))
    );
    let journal = ragshift_store::journal::Journal::new(journal_schema.unwrap_or("ragshift"));
    let units = client
        .query(
            &format!(
                "SELECT unit_id, status, attempts FROM {} WHERE run_id = $1",
                journal.units_table()
            ),
            &[&run_id],
        )
        .await
        .unwrap();
    assert_eq!(units.len(), 4);
    for u in units {
        let (id, status, attempts): (String, String, i32) = (u.get(0), u.get(1), u.get(2));
        let want = if id == gone { "failed" } else { "succeeded" };
        assert_eq!((status.as_str(), attempts), (want, 1), "{id}");
    }
    // Every task spent the run's budget, and the run reports it.
    let budgets: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE run_id = $1",
                journal.budgets_table()
            ),
            &[&run_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(budgets, 1);
    let report = &events.iter().find(|e| e["event"] == "report").unwrap()["report"];
    let calls = report["budget"]["calls"].as_u64().unwrap_or(0);
    // a and b each call the model; c's chunks may all come from the embedding cache.
    assert!(calls >= 2, "the succeeded bots' calls: {report}");
    assert_eq!(report["budget"]["requests_per_window"], 6000);
    let default_schema: bool =
        scalar(&client, "SELECT to_regnamespace('ragshift') IS NOT NULL").await;
    assert_eq!(
        default_schema,
        journal_schema.is_none(),
        "the default journal schema exists only when it is the one in use"
    );
}
