//! What a transfer moved.

/// What a transfer moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Regular files transferred.
    pub files: u64,
    /// Directories created below the destination.
    pub dirs: u64,
    /// Bytes of file content transferred.
    pub bytes: u64,
}
