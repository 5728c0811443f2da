//! Reading one layer blob: progress counting, digest verification and
//! decompression (gzip, zstd or none, detected from the bytes).

use crate::error::{ImageError, Result};
use crate::walk::{walk_layer, Analyzer, LayerResult};
use crate::Progress;
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, BufReader, Read};

/// A layer as the image describes it.
#[derive(Debug, Clone, Default)]
pub struct LayerInfo {
    /// Descriptor digest (compressed blob) where known, else the diff ID.
    pub digest: String,
    /// Uncompressed digest from the config, where known.
    pub diff_id: Option<String>,
    /// Media type (empty for docker-archive layers).
    pub media_type: String,
    /// Blob size, where known.
    pub size: Option<u64>,
    /// Whether `digest` is the digest of the raw blob (true) or of the uncompressed tar (false).
    pub digest_is_raw: bool,
}

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

struct Counting<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Detect compression from the first bytes.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn hex_digest(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Stream a layer blob through decompression into the walker, then verify its digest.
pub fn read_layer<A: Analyzer>(
    image: &str,
    info: &LayerInfo,
    raw: Box<dyn Read + Send + '_>,
    analyzer: &A,
    progress: &dyn Progress,
) -> Result<LayerResult<A::Output>> {
    let bad = |reason: String| ImageError::BadLayer { image: image.to_string(), layer: info.digest.clone(), reason };
    if !crate::spec::layer_media_type_supported(&info.media_type) {
        return Err(ImageError::UnsupportedMediaType { image: image.into(), media_type: info.media_type.clone() });
    }
    let verify_raw = info.digest_is_raw && info.digest.starts_with("sha256:");
    let expected_diff = if verify_raw {
        None
    } else if info.digest.starts_with("sha256:") {
        Some(info.digest.clone())
    } else {
        info.diff_id.clone().filter(|d| d.starts_with("sha256:"))
    };
    let raw = Hashing { inner: Counting { inner: raw, progress }, hasher: Sha256::new(), count: 0 };
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let head = buffered.fill_buf().map_err(|e| bad(format!("read error: {e}")))?.to_vec();
    let compression = sniff(&head);
    let what = match compression {
        Compression::None => "tar",
        Compression::Gzip => "gzip/tar",
        Compression::Zstd => "zstd/tar",
    };
    let (result, tar_hasher) = {
        let decompressed: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut buffered),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut buffered)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(&mut buffered)
                    .map_err(|e| bad(format!("bad zstd stream: {e}")))?,
            ),
        };
        let mut tar_stream = Hashing { inner: decompressed, hasher: Sha256::new(), count: 0 };
        let result = walk_layer(&mut tar_stream, analyzer).map_err(|e| bad(format!("{what} stream: {e}")))?;
        // Read what the tar reader left (end-of-archive padding) so the digests cover the whole blob.
        io::copy(&mut tar_stream, &mut io::sink()).map_err(|e| bad(format!("{what} stream: {e}")))?;
        (result, tar_stream.hasher)
    };
    let mut rest = buffered;
    io::copy(&mut rest, &mut io::sink()).map_err(|e| bad(format!("read error: {e}")))?;
    let raw = rest.into_inner();
    if verify_raw {
        if let Some(size) = info.size {
            if size != raw.count && size != 0 {
                return Err(bad(format!("size mismatch: descriptor says {size} bytes, read {}", raw.count)));
            }
        }
        let actual = hex_digest(raw.hasher);
        if actual != info.digest {
            return Err(ImageError::DigestMismatch {
                image: image.into(),
                layer: info.digest.clone(),
                expected: info.digest.clone(),
                actual,
            });
        }
    } else if let Some(expected) = expected_diff {
        let actual = hex_digest(tar_hasher);
        if actual != expected {
            return Err(ImageError::DigestMismatch {
                image: image.into(),
                layer: info.digest.clone(),
                expected,
                actual,
            });
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::FileMeta;
    use std::io::Write;

    struct All;
    impl Analyzer for All {
        type Output = usize;
        fn wants(&self, _m: &FileMeta<'_>) -> bool {
            true
        }
        fn analyze(&self, _m: &FileMeta<'_>, r: &mut dyn Read) -> io::Result<Option<usize>> {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            Ok(Some(v.len()))
        }
    }

    fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap_or_else(|e| panic!("{e}"));
        b.into_inner().unwrap_or_else(|e| panic!("{e}"))
    }

    fn digest(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    #[test]
    fn gzip_zstd_and_plain_layers_verify() {
        let t = tar_with("etc/x", b"hello");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap_or_else(|e| panic!("{e}"));
        let gz = gz.finish().unwrap_or_else(|e| panic!("{e}"));
        let zs = zstd::encode_all(&t[..], 3).unwrap_or_else(|e| panic!("{e}"));
        for blob in [t.clone(), gz, zs] {
            let info = LayerInfo { digest: digest(&blob), digest_is_raw: true, ..Default::default() };
            let r = read_layer("img", &info, Box::new(&blob[..]), &All, &crate::NoProgress)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.files, vec![("/etc/x".to_string(), 5)]);
            // A wrong digest is refused.
            let info = LayerInfo { digest: digest(b"other"), digest_is_raw: true, ..Default::default() };
            let e = read_layer("img", &info, Box::new(&blob[..]), &All, &crate::NoProgress);
            assert!(matches!(e, Err(ImageError::DigestMismatch { .. })));
        }
        // docker-archive style: the digest is the uncompressed diff ID.
        let info = LayerInfo { digest: digest(&t), digest_is_raw: false, ..Default::default() };
        assert!(read_layer("img", &info, Box::new(&t[..]), &All, &crate::NoProgress).is_ok());
    }

    #[test]
    fn corrupt_gzip_is_a_named_error() {
        let mut blob = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        blob.extend_from_slice(&[0xaa; 100]);
        let info = LayerInfo { digest: "sha256:abc".into(), ..Default::default() };
        let e = read_layer("img", &info, Box::new(&blob[..]), &All, &crate::NoProgress);
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("img: layer sha256:abc: gzip/tar stream"), "{msg}");
    }

    #[test]
    fn unknown_media_type_is_refused() {
        let info = LayerInfo { media_type: "application/x-weird".into(), ..Default::default() };
        let e = read_layer("img", &info, Box::new(&b""[..]), &All, &crate::NoProgress);
        assert!(matches!(e, Err(ImageError::UnsupportedMediaType { .. })));
    }
}
