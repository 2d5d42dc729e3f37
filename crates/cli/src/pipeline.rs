//! The components the configuration describes, built by [`ragshift_run::components`] (kept
//! under this name for the commands that use it).

pub use ragshift_run::components::*;
