//! Numbered claims (places, seats) and the order to try them in.

/// The order in which to try numbered claims `1..=places` (an offer's
/// places, a session's seats, a call's training places): those `taken` (as
/// far as a read model knows) last, and each group rotated to start at a
/// point chosen by `seed` (the claimant's id), so concurrent claimants
/// spread over the free ones instead of all racing for the lowest. The
/// claims decide; this only spares collisions.
pub fn slot_order(places: u32, taken: &[u32], seed: u128) -> Vec<u32> {
    let taken: std::collections::HashSet<u32> = taken.iter().copied().collect();
    let (mut free, mut used): (Vec<u32>, Vec<u32>) = (1..=places).partition(|s| !taken.contains(s));
    for group in [&mut free, &mut used] {
        if !group.is_empty() {
            let len = u128::try_from(group.len()).unwrap_or(1);
            group.rotate_left(usize::try_from(seed % len).unwrap_or(0));
        }
    }
    free.extend(used);
    free
}
