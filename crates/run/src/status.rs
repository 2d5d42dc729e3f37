//! Run status (next step).
