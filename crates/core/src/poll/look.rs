//! What one look at a resource returns: its state, or why the look failed. Below the poller and the
//! batchers, which both speak it.

/// One look at the resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll<T> {
    /// Done; the value is what the caller wanted (an id, a description...).
    Ready(T),
    /// Not yet; the text is the state seen (`pending`, `stopping`...), shown in progress output.
    Pending(String),
    /// A terminal state that is not the wanted one (`failed`, `terminated` while waiting for `running`).
    Failed(String),
}

/// Why a single look failed.
#[derive(Debug)]
pub enum PollError {
    /// The service throttled us: back off.
    Throttled,
    /// The resource is not visible yet (right after its create call).
    NotFound,
    /// Anything else: the wait ends with this error.
    Fatal(Box<dyn std::error::Error + Send + Sync>),
}
