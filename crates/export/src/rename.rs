//! Which of an export's names an import replaces, from the configuration.

use ragshift_config::{Loaded, Origin};
use ragshift_store::Layout;

use crate::Rename;

impl Rename {
    /// Only the names the user gave (`[target] schema`, `table`, by any layer): a version 2
    /// export keeps its own names otherwise.
    pub fn from_config(loaded: &Loaded) -> Self {
        let layout = Layout::from_config(&loaded.config.target);
        let given = |key: &str| loaded.origin(key) != Origin::Default;
        Self {
            schema: given("target.schema").then(|| layout.schema.clone()),
            table: given("target.table").then(|| layout.table.clone()),
        }
    }
}
