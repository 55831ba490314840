//! What an interrupt does to a running refresh ([`OnInterrupt`]): an option of
//! [`InstanceRefresh`](super::InstanceRefresh), followed by the refresh step
//! ([`RunRefresh`](super::run_refresh::RunRefresh)).

/// What an interrupt (first Ctrl-C, SIGTERM, the session's cancellation token) does to a running refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnInterrupt {
    /// Ask on the terminal (`y/N`); when stdin or stderr is not a terminal, cancel.
    #[default]
    Ask,
    /// Cancel the refresh.
    Cancel,
    /// Leave the refresh running and report it.
    Leave,
}
