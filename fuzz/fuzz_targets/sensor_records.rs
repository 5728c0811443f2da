//! Kernel ring-buffer records and the start-up snapshot stream: the sensor's decoders must
//! reject anything malformed without panicking (the kernel side is trusted, but a layout
//! mismatch between BPF object and decoder must not take the node agent down).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = palisade_sensor::decode(data);
    let _ = palisade_sensor::event::decode_snapshot(data);
    let _ = palisade_sensor::prevent::fuzz_parse_events(data);
});
