//! HLS `METHOD=AES-128`: AES-128-CBC with PKCS#7 padding over each whole segment (RFC 8216
//! §5.2), decrypted as the segment arrives so it never has to be held whole.

use aes::cipher::{BlockDecryptMut, KeyIvInit, generic_array::GenericArray};

type Decryptor = cbc::Decryptor<aes::Aes128>;

const BLOCK: usize = 16;

pub struct Aes128Stream {
    decryptor: Decryptor,
    /// Received bytes not yet decrypted: a partial block, and always the last whole block,
    /// which holds the padding and is only known to be last at the end.
    pending: Vec<u8>,
}

impl Aes128Stream {
    pub fn new(key: &[u8; 16], iv: &[u8; 16]) -> Self {
        Self {
            decryptor: Decryptor::new(key.into(), iv.into()),
            pending: Vec::new(),
        }
    }

    /// Decrypts what can be decrypted of the bytes so far.
    pub fn update(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let ready = self.pending.len().saturating_sub(1) / BLOCK * BLOCK;
        let mut plain: Vec<u8> = self.pending.drain(..ready).collect();
        self.decrypt_in_place(&mut plain);
        plain
    }

    /// The last block, without its padding.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        if self.pending.len() != BLOCK {
            return Err(format!(
                "AES-128 segment length is not a multiple of 16 bytes ({} left over)",
                self.pending.len() % BLOCK
            ));
        }
        let mut last = std::mem::take(&mut self.pending);
        self.decrypt_in_place(&mut last);
        let pad = usize::from(last[BLOCK - 1]);
        if pad == 0 || pad > BLOCK || last[BLOCK - pad..].iter().any(|&b| usize::from(b) != pad) {
            return Err("AES-128 segment has no valid PKCS#7 padding (wrong key or IV?)".into());
        }
        last.truncate(BLOCK - pad);
        Ok(last)
    }

    fn decrypt_in_place(&mut self, data: &mut [u8]) {
        for block in data.chunks_exact_mut(BLOCK) {
            self.decryptor
                .decrypt_block_mut(GenericArray::from_mut_slice(block));
        }
    }
}

/// The IV of a segment without an explicit one: its media sequence number, big-endian.
pub fn iv_from_sequence(sequence: u64) -> [u8; 16] {
    u128::from(sequence).to_be_bytes()
}

/// `0x` followed by 32 hex digits.
pub fn iv_from_hex(text: &str) -> Option<[u8; 16]> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.len() != 32 {
        return None;
    }
    u128::from_str_radix(digits, 16).ok().map(u128::to_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{BlockEncryptMut, block_padding::Pkcs7};

    fn encrypt(plain: &[u8], key: &[u8; 16], iv: &[u8; 16]) -> Vec<u8> {
        cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plain)
    }

    #[test]
    fn decrypts_in_arbitrary_chunks() {
        let (key, iv) = ([7u8; 16], iv_from_sequence(42));
        for len in [0, 1, 15, 16, 17, 188 * 7, 4096] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let cipher = encrypt(&plain, &key, &iv);
            for chunk in [1, 5, 16, 100, 10_000] {
                let mut stream = Aes128Stream::new(&key, &iv);
                let mut out = Vec::new();
                for piece in cipher.chunks(chunk) {
                    out.extend(stream.update(piece));
                }
                out.extend(stream.finish().unwrap());
                assert_eq!(out, plain, "length {len}, chunks of {chunk}");
            }
        }
    }

    #[test]
    fn a_wrong_key_or_truncated_segment_is_an_error() {
        let (key, iv) = ([7u8; 16], [0u8; 16]);
        let cipher = encrypt(&[1u8; 100], &key, &iv);
        let mut wrong = Aes128Stream::new(&[8u8; 16], &iv);
        wrong.update(&cipher);
        assert!(wrong.finish().is_err());
        let mut truncated = Aes128Stream::new(&key, &iv);
        truncated.update(&cipher[..cipher.len() - 3]);
        assert!(truncated.finish().is_err());
    }

    #[test]
    fn iv_spellings() {
        assert_eq!(iv_from_sequence(258)[14..], [1, 2]);
        assert_eq!(
            iv_from_hex("0x000102030405060708090A0B0C0D0E0F"),
            Some(std::array::from_fn(|i| i as u8))
        );
        assert_eq!(iv_from_hex("0x0102"), None);
        assert_eq!(iv_from_hex("000102030405060708090A0B0C0D0E0F"), None);
    }
}
