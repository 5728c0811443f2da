//! Kubernetes objects for posture, admission and inventory.
//!
//! - [`object`]: the [`Object`] type every engine consumes (pure).
//! - [`load`]: reading manifests, `kubectl get -o json` dumps and Helm output from files,
//!   directories and stdin, with file and line for every object and a warning per bad document.

pub mod inventory;
pub mod live;
pub mod load;
pub mod object;
pub mod respond;

pub use object::{containers, Object, Origin};
