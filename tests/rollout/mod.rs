//! `rollout` on the lab: setup, blue-green deploys behind a classic ELB and an ALB, spot fleets, gc, undo, and
//! the command line. These tests share a lab of their own (see `common::lab`).

mod common;
mod lab_alb;
mod lab_classic;
mod lab_diff;
mod lab_gates;
mod lab_gc;
mod lab_spot_fleet;
mod lab_undo;
