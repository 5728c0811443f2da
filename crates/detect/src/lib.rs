//! Palisade run-time detection engine.
pub mod attack;
pub mod audit;
pub mod event;
pub mod yaml;
pub mod bind;
pub mod pod;
pub mod alert;
pub mod engine;
pub mod fields;
pub mod rules;
pub mod state;
pub mod simulate;
pub mod pipeline;
pub mod sinks;
pub mod spool;
pub mod follow;
pub mod serve;
