//! `embed` and `embed-bot`: vectors and a bot's result as text.

use std::fmt::Display;

use ragshift_embed::l2_norm;
use ragshift_run::task::BotTaskReport;

use crate::Text;

/// The model and its dimension, then per text its start, its norm and its first `show` values.
pub fn vectors(
    provider: &str,
    model: &str,
    dimension: usize,
    texts: &[String],
    vectors: &[Vec<f32>],
    show: usize,
) -> String {
    let mut t = Text::default();
    t.line(format!("{provider} {model}: {dimension} dimensions"));
    for (text, v) in texts.iter().zip(vectors) {
        let head: Vec<String> = v.iter().take(show).map(|x| format!("{x:.5}")).collect();
        let preview: String = text.chars().take(60).collect();
        t.line(format!(
            "{preview:?}: norm {:.4}  [{}{}]",
            l2_norm(v),
            head.join(", "),
            if v.len() > show { ", …" } else { "" }
        ));
    }
    t.into_string()
}

/// One line: the bot succeeded (chunks, time) or failed (why), and the run that records it.
pub fn bot_task(key: &impl Display, report: &BotTaskReport) -> String {
    let (run_id, finished) = (&report.run_id, &report.finished);
    if finished.succeeded() {
        format!(
            "bot {key}: succeeded, {} chunks in {:.1}s (run {run_id})\n",
            finished.chunks, finished.seconds
        )
    } else {
        format!(
            "bot {key}: FAILED: {} (run {run_id})\n",
            finished.error.as_deref().unwrap_or("")
        )
    }
}
