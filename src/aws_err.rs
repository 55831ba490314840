//! AWS SDK errors as bakery reports and classifies them: see [`bakery_core::aws_err`] (shared with rollout).

pub use bakery_core::aws_err::{AwsError, AwsResultExt};
