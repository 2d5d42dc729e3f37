//! The effective configuration for one command: the file (`--config`), the environment and the
//! command's flags as layers, resolved by [`ragshift_run::settings::load`] (which also fills
//! what a layout preset or `[aws] stack` provides).

use ragshift_config::{Layers, Loaded};

use crate::args::{GlobalArgs, Overrides};

/// Loads the layers `global` and `overrides` describe, then what a layout or a stack fills.
pub fn load(global: &GlobalArgs, overrides: &[&dyn Overrides]) -> anyhow::Result<Loaded> {
    ragshift_run::settings::load(|| {
        let mut layers = Layers::new().file(global.config.as_deref()).process_env();
        for o in overrides {
            layers = o.apply(layers);
        }
        layers
    })
}
