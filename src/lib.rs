//! bakery's two binaries, `bake` and `rollout`, are thin front-ends over [`cli`]; the work is in the
//! workspace's crates (see docs/architecture.md).

pub mod cli;
