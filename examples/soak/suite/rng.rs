//! A small deterministic PRNG (SplitMix64) and the payload pattern.
//!
//! The pattern is random-access: byte `i` of the message with seed `s` is
//! byte `i % 8` of `word(s, i / 8)`, so a receiver can check any chunk at
//! any offset without replaying the stream before it.

/// SplitMix64's increment (the golden ratio in 64 bits).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a bijective 64-bit mixer.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: one `u64` per step, the same sequence for the same seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// A message size in `1..=max`, log-uniform (as many sizes of 1-2 bytes
    /// as of 512 KiB-1 MiB), with both ends drawn now and then.
    pub fn size(&mut self, max: usize) -> usize {
        match self.below(50) {
            0 => return 1,
            1 => return max,
            _ => {}
        }
        let top = usize::BITS - max.leading_zeros(); // bits of max
        let bits = self.below(u64::from(top)) as u32; // 0..top
        let lo = 1usize << bits;
        let hi = ((lo << 1) - 1).min(max);
        self.range(lo as u64, hi as u64) as usize
    }

    /// An independent generator seeded from this one.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// Word `w` of the pattern of message `seed`.
fn word(seed: u64, w: u64) -> [u8; 8] {
    mix(seed ^ w.wrapping_mul(GOLDEN)).to_le_bytes()
}

/// Fills `buf` with the pattern of message `seed` from byte `pos` on.
pub fn fill(seed: u64, mut pos: u64, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let w = word(seed, pos / 8);
        let b = (pos % 8) as usize;
        let n = (8 - b).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&w[b..b + n]);
        i += n;
        pos += n as u64;
    }
}

/// Checks that `buf` is the pattern of message `seed` from byte `pos` on;
/// on a mismatch, returns the index in `buf` of the first wrong byte.
pub fn check(seed: u64, mut pos: u64, buf: &[u8]) -> Result<(), usize> {
    let mut i = 0;
    while i < buf.len() {
        let w = word(seed, pos / 8);
        let b = (pos % 8) as usize;
        let n = (8 - b).min(buf.len() - i);
        if buf[i..i + n] != w[b..b + n] {
            let off = (0..n).find(|&k| buf[i + k] != w[b + k]).unwrap_or(0);
            return Err(i + off);
        }
        i += n;
        pos += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_at_any_offset_agree_with_the_whole() {
        let mut whole = vec![0u8; 1000];
        fill(42, 0, &mut whole);
        let mut part = vec![0u8; 77];
        fill(42, 333, &mut part);
        assert_eq!(&whole[333..410], &part[..]);
        assert_eq!(check(42, 333, &part), Ok(()));
        part[5] ^= 1;
        assert_eq!(check(42, 333, &part), Err(5));
        assert!(check(43, 333, &whole[333..410]).is_err());
    }

    #[test]
    fn sizes_stay_in_range_and_reach_both_ends() {
        let mut r = Rng::new(7);
        let sizes: Vec<_> = (0..10_000).map(|_| r.size(1 << 20)).collect();
        assert!(sizes.iter().all(|&s| (1..=1 << 20).contains(&s)));
        assert!(sizes.contains(&1) && sizes.contains(&(1 << 20)));
        assert!(sizes.iter().any(|&s| s > 512 << 10 && s < 1 << 20));
    }
}
