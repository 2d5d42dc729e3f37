//! Scanning the table for bot items: `TotalSegments` workers in parallel, each paging with
//! `LastEvaluatedKey`, filtered server-side to sort keys containing `#BOT#` (never aliases or
//! conversations), projected to the attributes a migration reads.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use tokio::task::JoinSet;

use super::{DynamoRegistry, Found};
use crate::decode::BOT_MARKER;
use crate::error::RegistryError;

/// A server-side filter: the expression and its values.
#[derive(Clone)]
struct Filter {
    expression: String,
    values: HashMap<String, AttributeValue>,
}

impl DynamoRegistry {
    /// Every bot item of the table.
    pub(super) async fn parallel_scan(&self, found: &mut Found) -> Result<(), RegistryError> {
        let sk = Self::name_of("SK");
        let filter = Filter {
            expression: format!("contains({sk}, :marker)"),
            values: HashMap::from([(
                ":marker".to_owned(),
                AttributeValue::S(BOT_MARKER.to_owned()),
            )]),
        };
        self.scan(filter, self.segments, found).await
    }

    /// The bot items whose id is one of `ids` (`contains(SK, '#BOT#{id}')`, checked exactly
    /// after decoding).
    pub(super) async fn filtered_scan(
        &self,
        ids: &[String],
        found: &mut Found,
    ) -> Result<(), RegistryError> {
        let sk = Self::name_of("SK");
        let mut terms = Vec::new();
        let mut values = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            terms.push(format!("contains({sk}, :b{i})"));
            values.insert(
                format!(":b{i}"),
                AttributeValue::S(format!("{BOT_MARKER}{id}")),
            );
        }
        let filter = Filter {
            expression: terms.join(" OR "),
            values,
        };
        self.scan(filter, self.segments, found).await
    }

    async fn scan(
        &self,
        filter: Filter,
        segments: u32,
        found: &mut Found,
    ) -> Result<(), RegistryError> {
        let mut tasks = JoinSet::new();
        for segment in 0..segments {
            let this = self.clone();
            let filter = filter.clone();
            tasks.spawn(async move { this.scan_segment(segment, segments, &filter).await });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok((items, pages))) => {
                    found.pages += pages;
                    items.iter().for_each(|item| found.add(item));
                }
                Ok(Err(e)) => {
                    // One failing segment fails the scan; the others are stopped.
                    first_error.get_or_insert(e);
                    tasks.abort_all();
                }
                Err(join) if join.is_cancelled() => {}
                Err(join) => {
                    first_error.get_or_insert(RegistryError::Config(format!(
                        "a scan worker of {} stopped unexpectedly: {join}",
                        self.table
                    )));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn scan_segment(
        &self,
        segment: u32,
        total: u32,
        filter: &Filter,
    ) -> Result<(Vec<HashMap<String, AttributeValue>>, u64), RegistryError> {
        let (projection, names) = Self::projection();
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut pages = 0_u64;
        loop {
            let context = format!(
                "scanning DynamoDB table {} (segment {segment} of {total})",
                self.table
            );
            let out = ragshift_aws::retry::call(&self.retry, &context, || {
                let mut req = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .projection_expression(&projection)
                    .set_expression_attribute_names(Some(names.clone()))
                    .filter_expression(&filter.expression)
                    .set_expression_attribute_values(Some(filter.values.clone()))
                    .set_exclusive_start_key(start.clone())
                    .set_limit(self.page_limit);
                if total > 1 {
                    req = req
                        .segment(i32::try_from(segment).unwrap_or(i32::MAX))
                        .total_segments(i32::try_from(total).unwrap_or(i32::MAX));
                }
                req.send()
            })
            .await
            .map_err(|e| self.aws_error(e))?;
            pages += 1;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        tracing::debug!(
            "{}: segment {segment}/{total} read {pages} page(s), {} bot item(s)",
            self.table,
            items.len()
        );
        Ok((items, pages))
    }
}
