//! What a binary's front-end sets up before it runs a command, written once for `bake` and `rollout`: the
//! async runtime ([`runtime`]), the two-stage Ctrl-C/SIGTERM handling ([`interrupt`]) and the output's
//! mode and colours ([`terminal`]).

pub mod interrupt;
pub mod runtime;
pub mod terminal;
