//! Reading one layer blob: progress counting, digest verification and
//! decompression (gzip, zstd or none, detected from the bytes).

use crate::error::{ImageError, Result};
use crate::walk::{walk_layer, Analyzer, LayerResult};
use crate::Progress;
use sha2::{Digest, Sha256, Sha512};
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

/// A running digest of one of the supported algorithms.
#[derive(Clone)]
enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher for `digest`'s algorithm (`sha256:…`, `sha512:…`), or `None`.
    fn for_digest(digest: &str) -> Option<Hasher> {
        match digest.split_once(':').map(|(a, _)| a) {
            Some("sha256") => Some(Hasher::Sha256(Sha256::new())),
            Some("sha512") => Some(Hasher::Sha512(Sha512::new())),
            _ => None,
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

struct Hashing<R> {
    inner: R,
    hasher: Hasher,
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

/// A blob reader that yields at most `left` bytes and fails if the blob has
/// more: a blob longer than its descriptor (or an endless one, such as a
/// link to `/dev/zero`) ends with an error instead of being read forever.
pub(crate) struct Bounded<R> {
    pub(crate) inner: R,
    pub(crate) left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(io::ErrorKind::InvalidData, "blob is longer than its descriptor's size")),
            };
        }
        let n = (buf.len() as u64).min(self.left) as usize;
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
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

/// Stream a layer blob through decompression into the walker, then verify its digest.
///
/// The raw digest (registry and OCI blobs) or the diff ID (docker-archive
/// layers) must be `sha256:` or `sha512:`; any other algorithm is refused
/// before anything is read. A blob with a known size is read no further than
/// that size. When the walk fails on a blob whose raw digest is known, the
/// rest of the blob is drained (bounded by its size) and a digest mismatch is
/// reported instead of the parse error, so an error never describes content
/// that is not the image's (such as a host file a blob links to).
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
    let unsupported = |d: &str| {
        let algo = d.split_once(':').map(|(a, _)| a).unwrap_or(d);
        bad(format!(
            "unsupported digest algorithm {:?} (sha256 and sha512 are verified)",
            algo.chars().take(32).collect::<String>()
        ))
    };
    let verify_raw = info.digest_is_raw;
    let expected_diff = if verify_raw {
        None
    } else if Hasher::for_digest(&info.digest).is_some() || info.digest.contains(':') {
        Some(info.digest.clone())
    } else {
        info.diff_id.clone()
    };
    let raw_hasher = if verify_raw {
        Hasher::for_digest(&info.digest).ok_or_else(|| unsupported(&info.digest))?
    } else {
        Hasher::Sha256(Sha256::new())
    };
    let tar_hasher = match &expected_diff {
        Some(d) => Hasher::for_digest(d).ok_or_else(|| unsupported(d))?,
        None => Hasher::Sha256(Sha256::new()),
    };
    let limit = match info.size {
        Some(size) if verify_raw && size != 0 => size,
        _ => u64::MAX,
    };
    let raw = Hashing {
        inner: Bounded { inner: Counting { inner: raw, progress }, left: limit },
        hasher: raw_hasher,
        count: 0,
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let head = buffered.fill_buf().map_err(|e| bad(format!("read error: {e}")))?.to_vec();
    let compression = sniff(&head);
    let what = match compression {
        Compression::None => "tar",
        Compression::Gzip => "gzip/tar",
        Compression::Zstd => "zstd/tar",
    };
    let walked = {
        let decompressed: Result<Box<dyn Read + '_>> = match compression {
            Compression::None => Ok(Box::new(&mut buffered)),
            Compression::Gzip => Ok(Box::new(flate2::read::MultiGzDecoder::new(&mut buffered))),
            Compression::Zstd => zstd::stream::read::Decoder::with_buffer(&mut buffered)
                .map(|d| Box::new(d) as Box<dyn Read + '_>)
                .map_err(|e| bad(format!("bad zstd stream: {e}"))),
        };
        decompressed.and_then(|decompressed| {
            let mut tar_stream = Hashing { inner: decompressed, hasher: tar_hasher, count: 0 };
            let result = walk_layer(&mut tar_stream, analyzer).map_err(|e| bad(format!("{what} stream: {e}")))?;
            // Read what the tar reader left (end-of-archive padding) so the digests cover the whole blob.
            io::copy(&mut tar_stream, &mut io::sink()).map_err(|e| bad(format!("{what} stream: {e}")))?;
            Ok((result, tar_stream.hasher))
        })
    };
    let mut rest = buffered;
    let drained = io::copy(&mut rest, &mut io::sink()).map_err(|e| bad(format!("read error: {e}")));
    let raw = rest.into_inner();
    if verify_raw {
        // The raw digest comes first: content that is not the blob is never described.
        drained?;
        let read = raw.count;
        if let Some(size) = info.size {
            if size != read && size != 0 {
                return Err(bad(format!("size mismatch: descriptor says {size} bytes, read {read}")));
            }
        }
        let actual = raw.hasher.finish();
        if actual != info.digest {
            return Err(ImageError::DigestMismatch {
                image: image.into(),
                layer: info.digest.clone(),
                expected: info.digest.clone(),
                actual,
            });
        }
        return walked.map(|(result, _)| result);
    }
    let (result, tar_hasher) = walked?;
    drained?;
    if let Some(expected) = expected_diff {
        let actual = tar_hasher.finish();
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

    fn sha512(b: &[u8]) -> String {
        format!("sha512:{}", hex::encode(Sha512::digest(b)))
    }

    #[test]
    fn sha512_digests_are_verified_and_unknown_algorithms_refused() {
        let t = tar_with("etc/x", b"hello");
        let info = LayerInfo { digest: sha512(&t), digest_is_raw: true, ..Default::default() };
        assert!(read_layer("img", &info, Box::new(&t[..]), &All, &crate::NoProgress).is_ok());
        // Tampered content under a sha512 descriptor.
        let tampered = tar_with("etc/x", b"evil!");
        let e = read_layer("img", &info, Box::new(&tampered[..]), &All, &crate::NoProgress);
        assert!(matches!(e, Err(ImageError::DigestMismatch { .. })), "{e:?}");
        // OCI descriptor and docker-archive diff ID with md5: refused, not accepted unverified.
        let md5 = format!("md5:{}", "0".repeat(32));
        for digest_is_raw in [true, false] {
            let info = LayerInfo { digest: md5.clone(), digest_is_raw, ..Default::default() };
            let e = read_layer("img", &info, Box::new(&t[..]), &All, &crate::NoProgress);
            let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains("unsupported digest algorithm \"md5\""), "{msg}");
        }
        let info = LayerInfo { digest: "layer.tar".into(), diff_id: Some(md5), ..Default::default() };
        assert!(read_layer("img", &info, Box::new(&t[..]), &All, &crate::NoProgress).is_err());
    }

    #[test]
    fn blobs_are_bounded_by_the_descriptor_size() {
        let t = tar_with("etc/x", b"hello");
        // An endless blob (like a link to /dev/zero) ends with an error.
        let info =
            LayerInfo { digest: digest(&t), size: Some(t.len() as u64), digest_is_raw: true, ..Default::default() };
        let endless = Box::new(io::repeat(0));
        let e = read_layer("img", &info, endless, &All, &crate::NoProgress);
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("longer than its descriptor"), "{msg}");
        // Exactly the size: fine.
        assert!(read_layer("img", &info, Box::new(&t[..]), &All, &crate::NoProgress).is_ok());
    }

    #[test]
    fn errors_do_not_quote_content_that_fails_its_digest() {
        // A "blob" that is really some host file (here: passwd-like text).
        let host = format!("root:x:0:0:SECRET-HOST-BYTES:/root:/bin/bash\n{}", "daemon:x:1:1::/:/bin/sh\n".repeat(40));
        let info = LayerInfo {
            digest: digest(b"the real layer"),
            size: Some(host.len() as u64),
            digest_is_raw: true,
            ..Default::default()
        };
        let e = read_layer("img", &info, Box::new(host.as_bytes()), &All, &crate::NoProgress);
        assert!(matches!(e, Err(ImageError::DigestMismatch { .. })), "{e:?}");
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!msg.contains("SECRET") && !msg.contains("root:x"), "{msg}");
    }
}
