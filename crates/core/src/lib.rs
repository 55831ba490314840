//! What `bake` and `rollout` share: the AWS configuration built in one place ([`aws`]), the one poller every
//! wait on AWS goes through ([`poll`]), terminal/plain/machine-readable output ([`ui`]), the tags that mark
//! a resource as bakery's own ([`tags`]), the step pipeline both run on ([`pipeline`]), calls right after a create
//! ([`propagation`]), the Packer manifest file bake writes and rollout reads ([`packer_manifest`]), the front-ends' runtime, interrupt and
//! output set-up ([`frontend`]), and Packer's `PACKER_LOG` debug log ([`log`]).
#![deny(missing_docs)]

pub mod aws;
pub mod aws_err;
pub mod checkip;
pub mod frontend;
pub mod log;
pub mod packer_manifest;
pub mod pipeline;
pub mod poll;
pub mod propagation;
pub mod tags;
pub mod ui;
