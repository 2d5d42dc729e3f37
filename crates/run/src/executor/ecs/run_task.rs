//! `RunTask` and `StopTask`: starting one bot's worker task, with the retries ECS asks for.
//!
//! The request is the platform migration script's (FARGATE, awsvpc, a command override of the
//! worker container) with ragshift's worker command. An answer with `failures` (no capacity,
//! Fargate quotas) and errors classified as retryable (throttling, 5xx, network) are retried
//! under the executor's [`ragshift_retry::Policy`] (the ECS client has the SDK's own retries
//! off, so each attempt is one request); the same client token is kept across retries of an
//! error whose outcome is unknown, so a retry can't start a second task for the bot.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
    LaunchType, NetworkConfiguration, TaskOverride,
};
use ragshift_aws::{classify, AwsErrorKind};
use ragshift_retry::{Next, StopReason, Verdict};
use serde_json::json;

use super::EcsOptions;
use crate::worker::BotJob;

/// The container command for `job`: the prefix, `--run-id`, `--exec-id`, `--journal-schema`
/// when the journal is not in the default schema (so the task records where the run reads; the
/// default command stays what older images understand), the extra worker flags, then the
/// platform's keys JSON (`{"PK":{"S":user},"SK":{"S":"user#BOT#bot"}}`).
pub fn worker_command(options: &EcsOptions, job: &BotJob) -> Vec<String> {
    let key = &job.bot.key;
    let keys = json!({ "PK": { "S": key.pk() }, "SK": { "S": key.sk() } }).to_string();
    let mut command = options.command_prefix.clone();
    command.extend([
        "--run-id".to_owned(),
        job.run_id.clone(),
        "--exec-id".to_owned(),
        job.exec_id.clone(),
    ]);
    if !job.journal.is_default() {
        command.extend([
            "--journal-schema".to_owned(),
            job.journal.schema().to_owned(),
        ]);
    }
    command.extend(options.worker_args.iter().cloned());
    command.push(keys);
    command
}

/// Starts the task for `job`; returns its ARN, or why no task could be started.
pub(super) async fn start(
    ecs: &aws_sdk_ecs::Client,
    options: &EcsOptions,
    job: &BotJob,
) -> Result<String, String> {
    let bot = &job.bot.key.bot_id;
    let network = network(options)?;
    let strategy = strategy(options)?;
    let command = worker_command(options, job);
    let overrides = TaskOverride::builder()
        .container_overrides(
            ContainerOverride::builder()
                .name(&options.container)
                .set_command(Some(command))
                .build(),
        )
        .build();
    let mut attempts = options.retry.attempts();
    let mut token = client_token();
    loop {
        let mut request = ecs
            .run_task()
            .cluster(&options.cluster)
            .task_definition(&options.task_definition)
            .count(1)
            .started_by(started_by(&job.exec_id))
            .client_token(&token)
            .network_configuration(network.clone())
            .overrides(overrides.clone());
        request = if strategy.is_empty() {
            request.launch_type(LaunchType::Fargate)
        } else {
            request.set_capacity_provider_strategy(Some(strategy.clone()))
        };
        let last = match request.send().await {
            Ok(out) => {
                if let Some(arn) = out.tasks().iter().find_map(|t| t.task_arn()) {
                    return Ok(arn.to_owned());
                }
                // No task was started: the next attempt is a new request.
                token = client_token();
                no_task_reason(&out)
            }
            Err(e) => {
                let context = format!(
                    "RunTask of {} on cluster {} for bot {bot}",
                    options.task_definition, options.cluster
                );
                let err = classify(context, &e);
                if ragshift_aws::retry::verdict(&err) == Verdict::Fail {
                    return Err(with_hint(err.kind, err.message));
                }
                err.message
            }
        };
        match attempts.after_failure(Verdict::Retry) {
            Next::Wait(delay) => {
                tracing::warn!(
                    bot = %bot,
                    "RunTask attempt {} failed: {last}; retrying in {:.1}s",
                    attempts.made(),
                    delay.as_secs_f64()
                );
                tokio::time::sleep(delay).await;
                attempts.record_attempt();
            }
            Next::Stop(reason) => {
                let why = match reason {
                    StopReason::Budget(_) => {
                        format!(" in {}s ({reason})", attempts.elapsed().as_secs())
                    }
                    _ => String::new(),
                };
                return Err(format!(
                    "could not start an ECS task after {} attempts{why}: {last} (check the \
                     cluster's capacity and the account's Fargate quotas, or lower --concurrency)",
                    attempts.made()
                ));
            }
        }
    }
}

/// Why a RunTask answer started no task (its `failures`: no capacity, Fargate quotas).
fn no_task_reason(out: &aws_sdk_ecs::operation::run_task::RunTaskOutput) -> String {
    let reasons: Vec<String> = out
        .failures()
        .iter()
        .map(|f| match (f.reason(), f.detail()) {
            (Some(r), Some(d)) => format!("{r} ({d})"),
            (Some(r), None) => r.to_owned(),
            (None, Some(d)) => d.to_owned(),
            (None, None) => "no reason given".to_owned(),
        })
        .collect();
    if reasons.is_empty() {
        "RunTask answered with neither a task nor a failure".to_owned()
    } else {
        reasons.join("; ")
    }
}

/// Stops a task, saying why (ECS keeps the reason, shown by `describe-tasks` and the console).
pub(super) async fn stop(
    ecs: &aws_sdk_ecs::Client,
    options: &EcsOptions,
    arn: &str,
    reason: &str,
) -> Result<(), String> {
    let reason: String = reason.chars().take(255).collect();
    ecs.stop_task()
        .cluster(&options.cluster)
        .task(arn)
        .reason(reason)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            let err = classify(format!("StopTask {arn}"), &e);
            with_hint(err.kind, err.message)
        })
}

fn network(options: &EcsOptions) -> Result<NetworkConfiguration, String> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(options.subnets.clone()))
        .set_security_groups(
            (!options.security_groups.is_empty()).then(|| options.security_groups.clone()),
        )
        .assign_public_ip(if options.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| format!("invalid awsvpc settings: {e}"))?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

fn strategy(options: &EcsOptions) -> Result<Vec<CapacityProviderStrategyItem>, String> {
    options
        .capacity_providers
        .iter()
        .map(|p| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(&p.name)
                .weight(p.weight)
                .base(p.base)
                .build()
                .map_err(|e| format!("invalid capacity provider {}: {e}", p.name))
        })
        .collect()
}

/// `startedBy` lets operators find a run's tasks (`aws ecs list-tasks --started-by`): at most
/// 128 letters, digits, hyphens and underscores.
fn started_by(exec_id: &str) -> String {
    exec_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

fn client_token() -> String {
    ulid::Ulid::new().to_string()
}

/// Adds what to do for the kinds an operator can fix.
fn with_hint(kind: AwsErrorKind, message: String) -> String {
    match kind {
        AwsErrorKind::AccessDenied => format!(
            "{message} (the caller needs ecs:RunTask, ecs:DescribeTasks, ecs:StopTask and \
             iam:PassRole on the task's task role and execution role; see docs/ecs.md)"
        ),
        AwsErrorKind::NotFound => format!(
            "{message} (check [executor] cluster and task_definition, or --stack for discovery)"
        ),
        AwsErrorKind::Credentials => {
            format!("{message} (no valid AWS credentials: set AWS_PROFILE or [aws] profile)")
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_by_keeps_only_what_ecs_accepts() {
        assert_eq!(started_by("ragshift-01ABC"), "ragshift-01ABC");
        assert_eq!(started_by("a b/c"), "a-b-c");
        assert_eq!(started_by(&"x".repeat(300)).len(), 128);
    }
}
