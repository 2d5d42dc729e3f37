//! The signals that ask ragshift to stop: Ctrl-C at a terminal, SIGTERM from an orchestrator
//! (ECS stopping a task, systemd, Kubernetes).

/// Completes when the process is asked to stop. Until it is first polled the default handlers
/// apply (the process just ends), which is right before any work has started.
pub async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("SIGTERM can't be caught ({e}); only Ctrl-C stops cleanly");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
