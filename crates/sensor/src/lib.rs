#[allow(unsafe_code, clippy::all, missing_docs, missing_debug_implementations)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/sensor.skel.rs"));
}
