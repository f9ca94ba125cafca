//! Fixed-width bit sets over rule positions, as plain `u64` word slices.
//!
//! Compilation represents "the rules whose address condition holds" and "the
//! rules whose protocol/port condition holds" as bit sets indexed by a rule's
//! position in evaluation order, so a walk is an AND and a bit scan.

/// Number of words for `bits` bits.
pub(super) fn words_for(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Sets bit `i`.
pub(super) fn set(words: &mut [u64], i: usize) {
    words[i / 64] |= 1 << (i % 64);
}

/// The first `i >= from` set in both `a` and `b`.
pub(super) fn next_common(a: &[u64], b: &[u64], from: usize) -> Option<usize> {
    let mut word = from / 64;
    let (Some(&x), Some(&y)) = (a.get(word), b.get(word)) else {
        return None;
    };
    // Drop the bits below `from` in its word.
    let mut bits = x & y & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return Some(word * 64 + bits.trailing_zeros() as usize);
        }
        word += 1;
        match (a.get(word), b.get(word)) {
            (Some(&x), Some(&y)) => bits = x & y,
            _ => return None,
        }
    }
}

/// The positions set in `bits`, ascending.
pub(super) fn ones(bits: &[u64]) -> impl Iterator<Item = usize> + '_ {
    bits.iter().enumerate().flat_map(|(w, &word)| {
        let mut rest = word;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                w * 64 + bit
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ones_lists_set_bits_in_order() {
        let mut bits = vec![0u64; 3];
        for i in [0, 5, 63, 64, 130] {
            set(&mut bits, i);
        }
        assert_eq!(ones(&bits).collect::<Vec<_>>(), vec![0, 5, 63, 64, 130]);
        assert_eq!(ones(&[]).count(), 0);
    }

    #[test]
    fn next_common_scans_across_words() {
        let mut a = vec![0u64; 3];
        let mut b = vec![0u64; 3];
        for i in [3, 64, 130, 191] {
            set(&mut a, i);
            set(&mut b, i);
        }
        set(&mut a, 5);
        assert_eq!(next_common(&a, &b, 0), Some(3));
        assert_eq!(next_common(&a, &b, 4), Some(64));
        assert_eq!(next_common(&a, &b, 65), Some(130));
        assert_eq!(next_common(&a, &b, 191), Some(191));
        assert_eq!(next_common(&a, &b, 192), None);
        assert_eq!(words_for(0), 0);
        assert_eq!(words_for(64), 1);
        assert_eq!(words_for(65), 2);
    }
}
