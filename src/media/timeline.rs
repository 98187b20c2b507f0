//! The audio timeline: voice segments (already at the output rate) placed by their metadata
//! offsets into one PCM track; silence in the gaps; overlaps resolved by `max_overlap_allowed`.
//!
//! Overlap rule (GIR's `max_overlap_allowed`, in milliseconds; default 0). Segments are taken in
//! order of start time. When a segment starts before an earlier one has ended, the overlap is the
//! time both would sound: `min(earlier end, later end) - later start`.
//! - Overlap ≤ `max_overlap_allowed` with every earlier segment: the later segment is **mixed**
//!   in (samples added, clamped to ±1). Two call legs that briefly talk over each other both
//!   stay audible.
//! - Overlap > `max_overlap_allowed` with any earlier segment: the later segment **replaces** the
//!   audio beneath it for its whole span. The earlier segment is truncated over exactly the
//!   overlapping duration (and resumes afterwards if it lasts longer). GIR recorders restart a
//!   segment that repeats the tail of the previous one; the newer file wins.
//!
//! Either way every segment starts exactly at its metadata offset: truncation never shifts audio.

/// How a segment enters the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Mix,
    Replace,
}

/// Where one segment goes: `start` and `len` in output samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Index of the segment in the caller's list.
    pub index: usize,
    pub start: u64,
    pub len: u64,
    pub mode: Mode,
}

/// Decide the placement of segments given as `(start, len)` in output samples.
/// `max_overlap` is `max_overlap_allowed` converted to samples.
pub fn plan(segments: &[(u64, u64)], max_overlap: u64) -> Vec<Placement> {
    let mut order: Vec<usize> = (0..segments.len()).collect();
    order.sort_by_key(|&i| (segments[i].0, i));
    let mut placed: Vec<Placement> = Vec::with_capacity(segments.len());
    for i in order {
        let (start, len) = segments[i];
        let end = start + len;
        let worst = placed
            .iter()
            .filter(|p| p.start + p.len > start)
            .map(|p| (p.start + p.len).min(end) - start)
            .max()
            .unwrap_or(0);
        let mode = if worst > max_overlap { Mode::Replace } else { Mode::Mix };
        placed.push(Placement { index: i, start, len, mode });
    }
    placed
}

/// Render the planned segments into `channels` planes of `total` samples. `voices[i]` holds the
/// planes of segment `i` (one or two; a mono segment feeds every output channel).
pub fn render(plan: &[Placement], voices: &[Vec<Vec<f32>>], channels: usize, total: u64) -> Vec<Vec<f32>> {
    let total = total as usize;
    let mut out = vec![vec![0f32; total]; channels];
    for p in plan {
        let Some(planes) = voices.get(p.index) else { continue };
        let start = (p.start as usize).min(total);
        let len = (p.len as usize).min(total - start);
        for (c, dst) in out.iter_mut().enumerate() {
            let Some(src) = planes.get(c.min(planes.len().saturating_sub(1))) else { continue };
            let src = &src[..len.min(src.len())];
            let dst = &mut dst[start..start + src.len()];
            match p.mode {
                Mode::Replace => dst.copy_from_slice(src),
                Mode::Mix => {
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = (*d + s).clamp(-1.0, 1.0);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_silence_and_offsets_exact() {
        let plan = plan(&[(10, 5), (0, 3)], 0);
        assert_eq!(plan.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1, 0]);
        let out = render(&plan, &[vec![vec![1.0; 5]], vec![vec![0.5; 3]]], 1, 20);
        assert_eq!(&out[0][..3], &[0.5; 3]);
        assert_eq!(&out[0][3..10], &[0.0; 7]);
        assert_eq!(&out[0][10..15], &[1.0; 5]);
        assert_eq!(&out[0][15..], &[0.0; 5]);
    }

    #[test]
    fn small_overlap_mixes_large_overlap_truncates_earlier() {
        // Segment 1 overlaps segment 0 by 4 samples.
        let segs = [(0, 10), (6, 10)];
        let a = vec![vec![0.25; 10]];
        let b = vec![vec![0.5; 10]];
        let mixed = plan(&segs, 4);
        assert_eq!(mixed[1].mode, Mode::Mix);
        let out = render(&mixed, &[a.clone(), b.clone()], 1, 16);
        assert_eq!(&out[0][6..10], &[0.75; 4]);
        let cut = plan(&segs, 3);
        assert_eq!(cut[1].mode, Mode::Replace);
        let out = render(&cut, &[a, b], 1, 16);
        assert_eq!(&out[0][..6], &[0.25; 6]);
        assert_eq!(&out[0][6..16], &[0.5; 10]);
    }

    #[test]
    fn contained_segment_cuts_only_the_overlap() {
        let segs = [(0, 20), (5, 5)];
        let out = render(&plan(&segs, 0), &[vec![vec![0.25; 20]], vec![vec![0.5; 5]]], 1, 20);
        assert_eq!(&out[0][..5], &[0.25; 5]);
        assert_eq!(&out[0][5..10], &[0.5; 5]);
        assert_eq!(&out[0][10..], &[0.25; 10]);
    }

    #[test]
    fn mono_feeds_both_channels_of_stereo() {
        let p = plan(&[(0, 2), (2, 2)], 0);
        let out = render(&p, &[vec![vec![0.1; 2]], vec![vec![0.2; 2], vec![0.3; 2]]], 2, 4);
        assert_eq!(out[0], vec![0.1, 0.1, 0.2, 0.2]);
        assert_eq!(out[1], vec![0.1, 0.1, 0.3, 0.3]);
    }
}
