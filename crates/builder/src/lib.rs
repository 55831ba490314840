//! bakery-builder: Packer's `amazon-ebs` builder as a pipeline of steps ([`amazon_ebs`]), a whole `bake
//! build` run from its checked configuration to the artifact summary, post-processors included ([`run`]),
//! the kinds of AWS resource it creates and how each is removed ([`resource`]), the run journal that lets a
//! killed run be cleaned up ([`journal`]) and that cleanup ([`cleanup`]), shared EC2 helpers ([`ec2`]) and
//! small helpers ([`util`]).

#![deny(missing_docs)]

pub mod amazon_ebs;
pub mod cleanup;
pub mod ec2;
pub mod journal;
pub mod resource;
pub mod run;
pub mod util;
