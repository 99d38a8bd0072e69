//! The subcommands and what they share: `run` (with live reload), `scan`, `bench`, and the
//! sharding of a stream list across instances.

pub mod bench;
pub mod reload;
pub mod run;
pub mod scan;
pub mod services;
pub mod shard;
pub mod shed;
