//! Errors of a verification: which side (and server) failed, for which bot, and why.
//!
//! A verification that *ran* and found differences is not an error: it is a
//! [`Report`](crate::Report) that did not pass. These errors mean it could not run.

use std::fmt;

use ragshift_store::compare::SideError;
use ragshift_store::{StoreError, StoreErrorKind};

pub use ragshift_store::compare::Side;

/// Why a verification could not run.
#[derive(Debug)]
pub struct VerifyError {
    side: Side,
    server: String,
    bot: Option<String>,
    error: StoreError,
}

impl VerifyError {
    pub(crate) fn new(side: Side, server: &str, bot: Option<&str>, error: StoreError) -> Self {
        Self {
            side,
            server: server.to_owned(),
            bot: bot.map(str::to_owned),
            error,
        }
    }

    /// A failure of the store's comparison ([`SideError`]), named by its side's server.
    pub(crate) fn of(
        source: &crate::Store<'_>,
        target: &crate::Store<'_>,
        bot: Option<&str>,
        e: SideError,
    ) -> Self {
        let label = match e.side {
            Side::Source => source.label,
            Side::Target => target.label,
        };
        Self::new(e.side, label, bot, e.error)
    }

    /// Which side failed.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The bot being verified when it failed, if any.
    pub fn bot(&self) -> Option<&str> {
        self.bot.as_deref()
    }

    /// The store error's kind (connection, permission, missing table...).
    pub fn kind(&self) -> StoreErrorKind {
        self.error.kind()
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "verifying the {} ({})", self.side, self.server)?;
        if let Some(bot) = &self.bot {
            write!(f, ", bot {bot}")?;
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
