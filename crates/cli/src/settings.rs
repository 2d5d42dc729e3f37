//! Resolving the effective configuration for one command.

use ragshift_config::{Layers, Loaded};

use crate::args::{GlobalArgs, Overrides};

/// Loads defaults < file < environment < the command's flags.
pub fn load(global: &GlobalArgs, overrides: &[&dyn Overrides]) -> anyhow::Result<Loaded> {
    let mut layers = Layers::new().file(global.config.as_deref()).process_env();
    for o in overrides {
        layers = o.apply(layers);
    }
    Ok(layers.load()?)
}
