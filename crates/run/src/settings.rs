//! The effective configuration of one command, as every command and a library user resolve it.
//!
//! Precedence: defaults < file < `RAGSHIFT_*` environment < the command's flags (the layers the
//! caller builds). Then a named layout (`[target] layout`, `[source] layout`) fills the table
//! and column names nobody set, and when `[aws] stack` is set the stack's CloudFormation outputs
//! fill the names nobody set (table, bucket, ECS cluster, …), each recorded with its origin
//! (`layout L`, `stack S output K`) so `config show` says where it came from.

use anyhow::Context;
use ragshift_config::{AwsConfig, Layers, LayoutPreset, Loaded, Origin};
use ragshift_registry::stack::{self, Discovered, DiscoveredValue};
use ragshift_retry::Policy;

use crate::components::retry_policy;

/// Loads `layers` (built afresh by the closure each time they are read), then fills what the
/// layouts and the stack provide.
///
/// Kept synchronous for every command's sake; stack discovery, the only network call, runs on
/// the caller's runtime (or a private one when there is none).
pub fn load(layers: impl Fn() -> Layers) -> anyhow::Result<Loaded> {
    let loaded = layers().load()?;
    let mut filled = layers();
    let mut fills = 0;
    // A named layout fills the table and column names nobody set.
    for (side, preset) in [
        ("target", loaded.config.target.layout),
        ("source", loaded.config.source.layout),
    ] {
        for (key, value) in preset.keys() {
            let origin = format!(
                "layout {}",
                serde_json::to_value(preset).unwrap_or_default()
            );
            filled = filled.fill(&origin, &format!("{side}.{key}"), *value);
            fills += 1;
        }
    }
    for (side, preset) in [
        ("target", loaded.config.target.layout),
        ("source", loaded.config.source.layout),
    ] {
        if preset.needs_table() && loaded.origin(&format!("{side}.table")) == Origin::Default {
            anyhow::bail!(
                "the {} layout has no fixed table name: give it with --table NAME (or \
                 --{side}-table, [{side}] table){}",
                serde_json::to_value(preset).unwrap_or_default(),
                if preset == LayoutPreset::Llamaindex {
                    " — the table_name given to LlamaIndex's PGVectorStore, which keeps it in data_<name>"
                } else {
                    ""
                }
            );
        }
    }
    let Some(stack_name) = loaded.config.aws.stack.clone().filter(|s| !s.is_empty()) else {
        return Ok(if fills == 0 { loaded } else { filled.load()? });
    };
    let retry = retry_policy(&loaded.config.retry);
    let found = discover_blocking(&loaded.config.aws, &stack_name, &retry)
        .with_context(|| format!("reading names from stack {stack_name} ([aws] stack, --stack)"))?;
    for d in found {
        tracing::debug!("stack {stack_name}: output {} → {}", d.output_key, d.path);
        let origin = format!("stack {stack_name} output {}", d.output_key);
        filled = match d.value {
            DiscoveredValue::One(v) => filled.fill(&origin, &d.path, v),
            DiscoveredValue::Many(v) => filled.fill(&origin, &d.path, v),
        };
    }
    Ok(filled.load()?)
}

fn discover_blocking(
    aws: &AwsConfig,
    stack_name: &str,
    retry: &Policy,
) -> anyhow::Result<Vec<Discovered>> {
    let work = async {
        let sdk = ragshift_aws::sdk_config(aws).await;
        stack::discover(&sdk, stack_name, retry).await
    };
    let result = match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(work))
        }
        _ => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(anyhow::Error::from)
                        .map(|rt| rt.block_on(work))
                })
                .join()
                .map_err(|_| anyhow::anyhow!("stack discovery stopped unexpectedly"))
        })??,
    };
    Ok(result?)
}
