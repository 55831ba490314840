//! bakery-rollout's integration tests, one binary: the library against the AWS SDK's test clients. The
//! lab tests go through the `rollout` command line and are in the root package's `tests/rollout/`.

mod instance_refresh;
