//! The platform's embedding task in moto's ECS: a cluster and a Fargate task definition, tasks
//! that stay as they are until the test moves them, and the default VPC's subnet they run in.

use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};

use crate::unique_name;

/// Creates a cluster and registers a Fargate task definition (awsvpc, one essential
/// container named `container`) under fresh names starting with the prefixes; returns
/// `(cluster, family)`. The container has `memory` set: moto's RunTask answers 500 without it.
pub async fn create_embedding_task(
    ecs: &aws_sdk_ecs::Client,
    cluster_prefix: &str,
    family_prefix: &str,
    container: &str,
) -> (String, String) {
    let cluster = unique_name(cluster_prefix);
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("creating the ECS cluster in moto");
    let family = unique_name(family_prefix);
    ecs.register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("1024")
        .memory("2048")
        .container_definitions(
            ContainerDefinition::builder()
                .name(container)
                .image("ragshift:test")
                .memory(2048)
                .essential(true)
                .build(),
        )
        .send()
        .await
        .expect("registering the task definition in moto");
    (cluster, family)
}

/// Makes the moto server at `endpoint_url` keep every ECS task in its state until the test
/// stops it (moto's default moves a task one state on at each `DescribeTasks`).
pub async fn hold_tasks(endpoint_url: &str) {
    let answer = reqwest::Client::new()
        .post(format!(
            "{endpoint_url}/moto-api/state-manager/set-transition"
        ))
        .json(&serde_json::json!({"model_name": "ecs::task",
                      "transition": {"progression": "manual", "times": 1_000_000_000}}))
        .send()
        .await
        .expect("moto's state manager answers");
    assert!(answer.status().is_success(), "{answer:?}");
}

/// An EC2 query API call (`Action` and its parameters) to the moto server at `endpoint_url`
/// — no EC2 SDK needed for a few look-ups; returns the XML answer.
pub async fn ec2_query(endpoint_url: &str, params: &[(&str, &str)]) -> String {
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let answer = reqwest::Client::new()
        .post(format!("{endpoint_url}/"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("moto's EC2 answers");
    answer.text().await.expect("moto's EC2 answer")
}

/// The text of every `<tag>` element in `xml`, in order.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next())
        .map(str::to_owned)
        .collect()
}

/// A default subnet of moto's default VPC (DNS hostnames on, as awsvpc tasks need there).
pub async fn default_subnet(endpoint_url: &str) -> String {
    let xml = ec2_query(
        endpoint_url,
        &[
            ("Action", "DescribeSubnets"),
            ("Filter.1.Name", "default-for-az"),
            ("Filter.1.Value.1", "true"),
        ],
    )
    .await;
    match xml_values(&xml, "subnetId").into_iter().next() {
        Some(subnet) => subnet,
        None => panic!("moto has no default subnet: {xml}"),
    }
}

/// The ARNs of `cluster`'s tasks meant to be running (the first page: up to 100).
pub async fn running_task_arns(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Vec<String> {
    match ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await
    {
        Ok(page) => page.task_arns().to_vec(),
        Err(e) => panic!("listing the tasks of {cluster}: {e:?}"),
    }
}
