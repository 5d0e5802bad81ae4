//! Finding zeros cheaply, and a buffer of them to hash or write from.

/// Length of [`ZEROS`].
pub(crate) const ZEROS_LEN: usize = 64 << 10;

/// Zeros to compare against and to hash from, so that neither allocates.
pub(crate) static ZEROS: [u8; ZEROS_LEN] = [0; ZEROS_LEN];

/// Whether `data` is all zeros.
///
/// Compares against [`ZEROS`] slice by slice: that is `memcmp`, fast even in a debug build,
/// and it stops at the first non-zero byte.
pub(crate) fn is_zero(data: &[u8]) -> bool {
    data.chunks(ZEROS_LEN)
        .all(|piece| piece == &ZEROS[..piece.len()])
}

/// Calls `f(start, run)` for each maximal run of `granule`-sized pieces of `data` (the last
/// may be shorter) that are not all zeros, in order.
pub(crate) fn for_each_nonzero_run<E>(
    data: &[u8],
    granule: usize,
    mut f: impl FnMut(usize, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut run_start = None;
    let mut at = 0;
    while at < data.len() {
        let end = (at + granule).min(data.len());
        let zero = is_zero(&data[at..end]);
        match (zero, run_start) {
            (false, None) => run_start = Some(at),
            (true, Some(start)) => {
                f(start, &data[start..at])?;
                run_start = None;
            }
            _ => {}
        }
        at = end;
    }
    if let Some(start) = run_start {
        f(start, &data[start..])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection_sees_a_single_byte_anywhere() {
        let mut data = vec![0u8; 3 * ZEROS_LEN + 17];
        assert!(is_zero(&data));
        assert!(is_zero(&[]));
        for at in [0, 1, ZEROS_LEN - 1, ZEROS_LEN, data.len() - 1] {
            data[at] = 1;
            assert!(!is_zero(&data), "byte {at}");
            data[at] = 0;
        }
    }

    #[test]
    fn nonzero_runs_are_maximal_and_in_order() {
        let mut data = vec![0u8; 10 * 4];
        data[0] = 1; // granule 0
        data[9] = 1; // granule 2
        data[13] = 1; // granule 3
        data[39] = 1; // granule 9, the last
        let mut runs = Vec::new();
        for_each_nonzero_run::<()>(&data, 4, |start, run| {
            runs.push((start, run.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, vec![(0, 4), (8, 8), (36, 4)]);
    }

    #[test]
    fn a_short_last_granule_counts() {
        let mut runs = Vec::new();
        for_each_nonzero_run::<()>(&[0, 0, 0, 0, 0, 7], 4, |start, run| {
            runs.push((start, run.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, vec![(4, 2)]);
    }
}
