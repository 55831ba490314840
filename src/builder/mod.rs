//! Builders. bakery has one: [`amazon_ebs`], Packer's EBS-backed AMI builder.
pub mod amazon_ebs;
