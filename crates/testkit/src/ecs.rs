//! The platform's embedding task in moto's ECS: a cluster and a Fargate task definition.

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
