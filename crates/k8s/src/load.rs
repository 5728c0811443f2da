//! Loading manifests (written next).
