//! Running async code from the testkit's blocking API, whether or not the caller is already
//! inside a tokio runtime (a `#[tokio::test]` is; a plain `#[test]` or `main` is not).

use std::future::Future;

/// Runs `future` to completion on a fresh current-thread runtime in a helper thread, so it
/// works from sync code and from inside an async test alike (blocking the caller meanwhile).
pub(crate) fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the testkit could not build a tokio runtime");
            runtime.block_on(future)
        });
        match handle.join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
