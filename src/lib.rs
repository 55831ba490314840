//! bakery: a native replacement for Packer's `amazon-ebs` builder and the blue-green Auto Scaling rollout
//! that follows it. The `bake` binary is a thin front-end over [`cli`].

pub mod aws_err;
pub mod builder;
pub mod cli;
pub mod journal;
pub mod pipeline;
pub mod util;
