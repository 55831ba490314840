//! bakery-builder: Packer's `amazon-ebs` builder as a pipeline of steps ([`amazon_ebs`]), the run journal
//! that lets a killed run be cleaned up ([`journal`]), and small helpers ([`util`]).

pub mod amazon_ebs;
pub mod journal;
pub mod util;
