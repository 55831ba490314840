//! Ctrl-C and SIGTERM, in two stages: the first cancels the run (its cleanup or rollback follows), the
//! second cancels that cleanup too.

use crate::ui::Ui;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// What the user is told at each stage, as `ui.error(target, …)`.
#[derive(Debug, Clone, Copy)]
pub struct Messages {
    /// The program that says it (`bake`, `rollout`).
    pub target: &'static str,
    /// On the first interrupt: the run stops, cleanup follows.
    pub first: &'static str,
    /// On the second interrupt: cleanup stops too.
    pub second: &'static str,
}

/// The tokens the two stages cancel.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// Cancelled on the first interrupt.
    pub cancel: CancellationToken,
    /// Cancelled on the second interrupt.
    pub cancel_cleanup: CancellationToken,
}

/// Watches Ctrl-C (SIGINT) and SIGTERM from a task on the current runtime. When the signals cannot be
/// watched, the process keeps their default action (it ends at once).
pub fn watch(ui: Ui, messages: Messages, tokens: Tokens) {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        for stage in 1.. {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if stage == 1 {
                ui.error(messages.target, messages.first);
                tokens.cancel.cancel();
            } else {
                ui.error(messages.target, messages.second);
                tokens.cancel_cleanup.cancel();
                return;
            }
        }
    });
}
