//! The audio timeline: voice segments (already at the output rate) placed by their metadata
//! offsets into one PCM track; silence in the gaps; overlapping segments mixed.
//!
//! Speech is never dropped. Where segments overlap (two legs of a call talking over each other,
//! a recorder restarting a segment), they are **mixed**: their samples are added. So that the
//! sum never clips, each stretch where two or more segments sound together gets one constant
//! gain: 1 if the sum stays within ±1 there, else 1/peak (the loudest sample of the sum over
//! that stretch, over every channel). A constant gain per stretch keeps the waveform undistorted;
//! outside overlaps, every sample is exactly the segment's own.
//!
//! GIR's `max_overlap_allowed` decides when the *silence or black fill* of an earlier mux is
//! truncated because a newly arrived recording overlaps it (001_b1ce2e73cba9b3f4.txt,
//! `### max_overlap_allowed`). reclife never keeps fill from an earlier mux: a late segment
//! re-muxes the pair from every recording, so fill never covers a recording, whatever the
//! overlap. The option is accepted (config and `--gir-config`) and has nothing left to decide
//! here; it never truncates speech.
//!
//! Every segment starts exactly at its metadata offset.

/// Where one segment goes: `start` and `len` in output samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Index of the segment in the caller's list.
    pub index: usize,
    pub start: u64,
    pub len: u64,
}

/// The placement of segments given as `(start, len)` in output samples, in order of start.
pub fn plan(segments: &[(u64, u64)]) -> Vec<Placement> {
    let mut order: Vec<usize> = (0..segments.len()).collect();
    order.sort_by_key(|&i| (segments[i].0, i));
    order.into_iter().map(|i| Placement { index: i, start: segments[i].0, len: segments[i].1 }).collect()
}

/// The stretches `[from, to)` where two or more placements sound together, merged.
pub fn overlaps(plan: &[Placement]) -> Vec<(u64, u64)> {
    let mut events: Vec<(u64, i32)> = Vec::with_capacity(plan.len() * 2);
    for p in plan.iter().filter(|p| p.len > 0) {
        events.push((p.start, 1));
        events.push((p.start + p.len, -1));
    }
    // Ends before starts at one instant: touching segments do not overlap.
    events.sort_by_key(|&(t, d)| (t, d));
    let mut out: Vec<(u64, u64)> = Vec::new();
    let (mut active, mut from) = (0i32, 0u64);
    for (t, d) in events {
        let before = active;
        active += d;
        if before < 2 && active >= 2 {
            from = t;
        } else if before >= 2 && active < 2 && t > from {
            match out.last_mut() {
                Some(last) if last.1 == from => last.1 = t,
                _ => out.push((from, t)),
            }
        }
    }
    out
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
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
    }
    headroom(&overlaps(plan), &mut out);
    out
}

/// Scales each overlap stretch whose sum leaves ±1 by 1/peak.
fn headroom(stretches: &[(u64, u64)], out: &mut [Vec<f32>]) {
    for &(from, to) in stretches {
        let range = |p: &Vec<f32>| (from as usize).min(p.len())..(to as usize).min(p.len());
        let peak = out.iter().flat_map(|p| p[range(p)].iter()).fold(0f32, |m, s| m.max(s.abs()));
        if peak > 1.0 {
            let g = 1.0 / peak;
            for p in out.iter_mut() {
                let r = range(p);
                p[r].iter_mut().for_each(|s| *s *= g);
            }
        }
    }
    // Outside overlaps a sample is one segment's own; a decoder's overshoot past full scale is
    // clamped as before.
    for p in out.iter_mut() {
        p.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_silence_and_offsets_exact() {
        let plan = plan(&[(10, 5), (0, 3)]);
        assert_eq!(plan.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1, 0]);
        let out = render(&plan, &[vec![vec![1.0; 5]], vec![vec![0.5; 3]]], 1, 20);
        assert_eq!(&out[0][..3], &[0.5; 3]);
        assert_eq!(&out[0][3..10], &[0.0; 7]);
        assert_eq!(&out[0][10..15], &[1.0; 5]);
        assert_eq!(&out[0][15..], &[0.0; 5]);
    }

    #[test]
    fn overlaps_mix_and_both_stay_audible() {
        // Segment 1 overlaps segment 0 by 4 samples; the sum stays below full scale.
        let out = render(&plan(&[(0, 10), (6, 10)]), &[vec![vec![0.25; 10]], vec![vec![0.5; 10]]], 1, 16);
        assert_eq!(&out[0][..6], &[0.25; 6]);
        assert_eq!(&out[0][6..10], &[0.75; 4]);
        assert_eq!(&out[0][10..16], &[0.5; 6]);
    }

    #[test]
    fn a_loud_overlap_gets_headroom_not_clipping() {
        let a: Vec<f32> = (0..20).map(|i| if i % 2 == 0 { 0.8 } else { -0.8 }).collect();
        let b: Vec<f32> = (0..10).map(|j| if (j + 5) % 2 == 0 { 0.6 } else { -0.6 }).collect();
        let out = render(&plan(&[(0, 20), (5, 10)]), &[vec![a.clone()], vec![b.clone()]], 1, 20);
        // Outside the overlap: a, untouched.
        assert_eq!(&out[0][..5], &a[..5]);
        assert_eq!(&out[0][15..], &a[15..]);
        // Inside: (a + b) / 1.4, the same shape, never at ±1 by clamping.
        for i in 5..15 {
            let want = (a[i] + b[i - 5]) / 1.4;
            assert!((out[0][i] - want).abs() < 1e-6, "sample {i}: {} vs {want}", out[0][i]);
        }
        assert!(out[0][5..15].iter().all(|s| s.abs() <= 1.0));
    }

    #[test]
    fn overlap_stretches_are_merged_and_touching_is_not_overlap() {
        let p = plan(&[(0, 10), (10, 5), (12, 10), (14, 2), (30, 5)]);
        assert_eq!(overlaps(&p), vec![(12, 16)]);
        assert_eq!(overlaps(&plan(&[(0, 10), (10, 5)])), vec![]);
    }

    #[test]
    fn mono_feeds_both_channels_of_stereo() {
        let p = plan(&[(0, 2), (2, 2)]);
        let out = render(&p, &[vec![vec![0.1; 2]], vec![vec![0.2; 2], vec![0.3; 2]]], 2, 4);
        assert_eq!(out[0], vec![0.1, 0.1, 0.2, 0.2]);
        assert_eq!(out[1], vec![0.1, 0.1, 0.3, 0.3]);
    }
}
