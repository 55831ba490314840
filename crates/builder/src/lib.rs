//! bakery-builder: Packer's `amazon-ebs` builder as a pipeline of steps ([`amazon_ebs`]), the kinds of AWS
//! resource it creates and how each is removed ([`resource`]), the run journal that lets a killed run be
//! cleaned up ([`journal`]) and that cleanup ([`cleanup`]), shared EC2 helpers ([`ec2`]) and small
//! helpers ([`util`]).

pub mod amazon_ebs;
pub mod cleanup;
pub mod ec2;
pub mod journal;
pub mod resource;
pub mod util;
