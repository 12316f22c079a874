//! Layer compression: which decoder a layer's media type (or its first bytes) calls for.
//! gzip through flate2's `MultiGzDecoder` (every member, as Go reads them) on the pure-Rust
//! zlib-rs backend; zstd through libzstd with the decoder's window capped at 2^27 bytes
//! (zstd's own default limit), so a hostile frame cannot make it allocate more.

use std::io::{self, BufRead, Read};

/// The largest zstd window a layer may ask for (log2).
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a layer media type (OCI's and docker's, distributable or not);
    /// None for a media type that is not a layer tar.
    pub fn from_media_type(m: &str) -> Option<Compression> {
        match m {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// By magic number (docker-archives name no media type).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The decompressed stream of `r`.
    pub fn decoder<'a, R: BufRead + Send + 'a>(
        self,
        r: R,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(r)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(d)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn round_trip(c: Compression, data: &[u8]) -> Vec<u8> {
        let packed = match c {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                // Two members: a reader that stops after the first loses the rest.
                let mut out = Vec::new();
                for half in [&data[..data.len() / 2], &data[data.len() / 2..]] {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(half).unwrap();
                    out.extend(e.finish().unwrap());
                }
                out
            }
            Compression::Zstd => zstd::stream::encode_all(data, 3).unwrap(),
        };
        assert_eq!(Compression::sniff(&packed[..4.min(packed.len())]), c);
        let mut out = Vec::new();
        c.decoder(&packed[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_compression_round_trips() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(round_trip(c, &data), data, "{c:?}");
        }
    }

    #[test]
    fn zstd_frames_asking_for_a_huge_window_are_refused() {
        let data = vec![7u8; 1 << 20];
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(30))
            .unwrap();
        enc.set_parameter(zstd::zstd_safe::CParameter::EnableLongDistanceMatching(
            true,
        ))
        .unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(&data).unwrap();
        let packed = enc.finish().unwrap();
        let mut out = Vec::new();
        let res = Compression::Zstd
            .decoder(&packed[..])
            .unwrap()
            .read_to_end(&mut out);
        assert!(res.is_err(), "a 2^30 window was accepted");
    }

    #[test]
    fn media_types() {
        use Compression as C;
        for (m, c) in [
            ("application/vnd.oci.image.layer.v1.tar", Some(C::None)),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Some(C::Gzip)),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(C::Gzip),
            ),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Some(C::Zstd)),
            ("application/vnd.oci.image.config.v1+json", None),
            ("application/octet-stream", None),
        ] {
            assert_eq!(Compression::from_media_type(m), c, "{m}");
        }
    }
}
