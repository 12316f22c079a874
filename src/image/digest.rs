//! Content digests: `sha256:` + 64 lowercase hex, nothing else. A parsed [`Digest`] is safe
//! to use as a file name. Streams are hashed as they pass ([`HashingReader`]); layer chain
//! IDs per the OCI image spec ([`chain_ids`]).

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

const PREFIX: &str = "sha256:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("unsupported digest algorithm: {0:?} (only sha256)")]
    Algorithm(String),
    #[error("invalid digest {0:?}: want sha256: and 64 lowercase hex characters")]
    Invalid(String),
}

/// A sha256 digest, kept as its `sha256:<hex>` string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Digest {
    /// `sha256:` and exactly 64 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        match s.split_once(':') {
            Some(("sha256", hex)) if hex.len() == 64 && is_lower_hex(hex) => Ok(Digest(s.into())),
            Some((alg, _))
                if alg != "sha256"
                    && !alg.is_empty()
                    && alg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b)) =>
            {
                Err(DigestError::Algorithm(alg.into()))
            }
            _ => Err(DigestError::Invalid(s.into())),
        }
    }

    /// From the 64 hex characters alone (a file name in the store).
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        Digest::parse(&format!("{PREFIX}{hex}"))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(h: Sha256) -> Digest {
        let mut s = String::with_capacity(71);
        s.push_str(PREFIX);
        for b in h.finalize() {
            s.push_str(&format!("{b:02x}"));
        }
        Digest(s)
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// The `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Hashes and counts what is read through it. With a limit, reading past `limit` bytes is
/// an error (at most one byte past it is read from the inner reader).
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: Option<u64>,
    over: bool,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, limit: Option<u64>) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit,
            over: false,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True once the stream went on past the limit.
    pub fn over_limit(&self) -> bool {
        self.over
    }

    /// The digest and the length of what was read.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = match self.limit {
            Some(limit) if self.count >= limit => {
                let mut probe = [0u8; 1];
                if self.inner.read(&mut probe)? == 0 {
                    return Ok(0);
                }
                self.over = true;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("stream longer than {limit} bytes"),
                ));
            }
            Some(limit) => buf
                .len()
                .min(usize::try_from(limit - self.count).unwrap_or(usize::MAX)),
            None => buf.len(),
        };
        let n = self.inner.read(&mut buf[..want])?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The chain IDs of layers with these diff IDs, bottom first: ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parse_accepts_only_sha256_lower_hex() {
        let d = Digest::parse(ABC).unwrap();
        assert_eq!(d.hex(), &ABC[7..]);
        assert_eq!(d.to_string(), ABC);
        assert_eq!(Digest::from_hex(&ABC[7..]).unwrap(), d);
        for bad in [
            "",
            "sha256:",
            &ABC[7..],
            &ABC[..70],
            &format!("{ABC}0"),
            &ABC.to_uppercase(),
            &format!("sha256:{}", ABC[7..].to_uppercase()),
            "sha256:../../x",
            &format!("sha256:../{}", &ABC[10..]),
            &format!("sha256:{}/", &ABC[8..]),
            &format!(" {ABC}"),
            &format!("SHA256:{}", &ABC[7..]),
            &format!("sha256:{}g", &ABC[8..]),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} accepted");
        }
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(
            Digest::parse(&sha512),
            Err(DigestError::Algorithm("sha512".into()))
        );
    }

    #[test]
    fn of_known_vectors() {
        assert_eq!(Digest::of(b"").as_str(), EMPTY);
        assert_eq!(Digest::of(b"abc").as_str(), ABC);
    }

    #[test]
    fn serde_is_the_string_and_validates() {
        let d = Digest::parse(ABC).unwrap();
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(j, format!("\"{ABC}\""));
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:../../etc\"").is_err());
        assert!(serde_json::from_str::<Digest>(&j.to_uppercase()).is_err());
    }

    #[test]
    fn hashing_reader_counts_hashes_and_limits() {
        let mut r = HashingReader::new(&b"abc"[..], None);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(r.count(), 3);
        assert_eq!(r.finish(), (Digest::parse(ABC).unwrap(), 3));

        // Exactly at the limit: fine.
        let mut r = HashingReader::new(&b"abc"[..], Some(3));
        r.read_to_end(&mut Vec::new()).unwrap();
        assert!(!r.over_limit());
        assert_eq!(r.finish().1, 3);

        // Past it: an error, and no more than the limit hashed.
        let mut r = HashingReader::new(&b"abcd"[..], Some(3));
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(r.over_limit());
        assert_eq!(r.finish(), (Digest::parse(ABC).unwrap(), 3));

        // Shorter: read to the end, the caller compares the count.
        let mut r = HashingReader::new(&b"ab"[..], Some(3));
        r.read_to_end(&mut Vec::new()).unwrap();
        assert_eq!(r.finish().1, 2);
    }

    #[test]
    fn chain_ids_known_vectors() {
        // python3: hashlib.sha256(b"layer0") etc., chained as the spec says.
        let l: Vec<Digest> = [
            "4fbec69b941195fd56f8212a5000e304129451d82efca94ff0e0fb2d5355472e",
            "77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2",
            "95cf1a2e1698fe3ca1fcc3f653119146b271d0b62e487ec264441e886a11bd06",
        ]
        .iter()
        .map(|h| Digest::from_hex(h).unwrap())
        .collect();
        assert_eq!(l[0], Digest::of(b"layer0"));
        let c = chain_ids(&l);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], l[0]);
        assert_eq!(
            c[1].hex(),
            "ef232af0eb422cdfd7917631657cd8ed2bfd5b9461b37c427aa0d3e0a19adf79"
        );
        assert_eq!(
            c[2].hex(),
            "7ad3896338947cc04ee0b35b50d400ff32538d63f42f85ec87feac78bf71a54d"
        );
        assert!(chain_ids(&[]).is_empty());
    }
}
