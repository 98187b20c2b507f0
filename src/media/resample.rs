//! Sample-rate conversion: a polyphase windowed-sinc resampler for any rational ratio.
//!
//! Written here rather than taken from a crate because the timeline needs one property above all:
//! zero latency. Output sample `n` is computed at input position exactly `n * in / out`, using
//! taps on both sides (the whole segment is in memory), so a segment starts at the same instant
//! before and after resampling. Streaming resamplers (swresample, rubato) add a filter delay that
//! would then have to be measured and removed. Quality: Blackman-windowed sinc, 12 zero crossings
//! a side, cutoff at 95% of the lower Nyquist: far beyond what 8 kHz telephone voice needs.

const ZERO_CROSSINGS: usize = 12;
const ROLLOFF: f64 = 0.95;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A resampler from `from` Hz to `to` Hz.
pub struct Resampler {
    /// Output step as a fraction of an input sample: `m / l`.
    l: usize,
    m: usize,
    /// Taps on each side of the centre.
    half: usize,
    /// `l` phases × `2 * half` taps.
    table: Vec<f32>,
    /// Exact 2× upsampling (8 → 16 kHz, the common case): a half-band filter, whose phase 0 is
    /// the input sample itself, so every other output sample is a copy.
    halfband: bool,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Resampler {
        let g = gcd(u64::from(from), u64::from(to)).max(1);
        let l = (u64::from(to) / g) as usize;
        let m = (u64::from(from) / g) as usize;
        // Downsampling lowers the cutoff (in input samples), which widens the sinc. Exact 2×
        // upsampling takes the half-band cutoff (the input's Nyquist), where the sinc is zero at
        // every other integer: voice (nothing above 3.4 kHz at 8 kHz) stays far from the edge.
        let halfband = l == 2 && m == 1;
        let cutoff = if halfband { 1.0 } else { ROLLOFF * (l as f64 / m as f64).min(1.0) };
        let half = (ZERO_CROSSINGS as f64 / cutoff).ceil() as usize;
        let taps = 2 * half;
        let mut table = vec![0f32; l * taps];
        for p in 0..l {
            let frac = p as f64 / l as f64;
            let row = &mut table[p * taps..(p + 1) * taps];
            let mut sum = 0.0;
            let mut vals = vec![0f64; taps];
            for (j, v) in vals.iter_mut().enumerate() {
                // Tap j multiplies input sample k + j - half + 1, at distance t from the position.
                let t = (j as f64 - half as f64 + 1.0) - frac;
                let x = std::f64::consts::PI * cutoff * t;
                let sinc = if x.abs() < 1e-12 { 1.0 } else { x.sin() / x };
                let w = t / half as f64;
                let window = if w.abs() >= 1.0 {
                    0.0
                } else {
                    let a = std::f64::consts::PI * (w + 1.0);
                    0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos()
                };
                *v = sinc * window;
                sum += *v;
            }
            for (dst, v) in row.iter_mut().zip(&vals) {
                *dst = (v / sum) as f32;
            }
        }
        Resampler { l, m, half, table, halfband }
    }

    /// Number of output samples for `n` input samples (the same span of time, rounded).
    pub fn output_len(&self, n: usize) -> usize {
        ((n as u128 * self.l as u128 + self.m as u128 / 2) / self.m as u128) as usize
    }

    /// Resample one channel, whole (the reference [`Streaming`] is tested against).
    #[cfg(test)]
    pub fn process(&self, input: &[f32]) -> Vec<f32> {
        if self.l == self.m {
            return input.to_vec();
        }
        let taps = 2 * self.half;
        let n_out = self.output_len(input.len());
        let mut out = Vec::with_capacity(n_out);
        for n in 0..n_out {
            let pos = n as u128 * self.m as u128;
            let k = (pos / self.l as u128) as isize;
            let p = (pos % self.l as u128) as usize;
            let row = &self.table[p * taps..(p + 1) * taps];
            let first = k - self.half as isize + 1;
            let acc = if first >= 0 && (first as usize + taps) <= input.len() {
                dot(&input[first as usize..first as usize + taps], row)
            } else {
                // Edges: samples outside the segment are silence.
                let mut acc = 0f32;
                for (j, c) in row.iter().enumerate() {
                    let idx = first + j as isize;
                    if idx >= 0 && (idx as usize) < input.len() {
                        acc += input[idx as usize] * c;
                    }
                }
                acc
            };
            out.push(acc);
        }
        out
    }
}

/// [`Resampler`] over a stream: input arrives in chunks, output comes out as soon as the taps
/// it needs are in, with exactly the samples [`Resampler::process`] gives for the whole input
/// (zero latency, the same edges). Holds about one chunk plus the filter's span per channel.
pub struct Streaming {
    r: Resampler,
    /// Per channel: input samples from index `base` on.
    buf: Vec<Vec<f32>>,
    base: u64,
    /// Input samples pushed so far.
    seen: u64,
    /// The next output sample to produce.
    next: u64,
}

impl Streaming {
    pub fn new(from: u32, to: u32, channels: usize) -> Streaming {
        Streaming { r: Resampler::new(from, to), buf: vec![Vec::new(); channels.max(1)], base: 0, seen: 0, next: 0 }
    }

    /// Adds input (one plane per channel, equal lengths); returns the output now complete.
    pub fn push(&mut self, planes: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let n = planes.first().map_or(0, Vec::len);
        for (c, b) in self.buf.iter_mut().enumerate() {
            let src = &planes[c.min(planes.len().saturating_sub(1))];
            b.extend_from_slice(&src[..n.min(src.len())]);
        }
        self.seen += n as u64;
        self.drain(false)
    }

    /// The input has ended: the rest of the output (silence stands in beyond the end).
    pub fn finish(&mut self) -> Vec<Vec<f32>> {
        self.drain(true)
    }

    fn drain(&mut self, end: bool) -> Vec<Vec<f32>> {
        let r = &self.r;
        let mut out = vec![Vec::new(); self.buf.len()];
        if r.l == r.m {
            for (o, b) in out.iter_mut().zip(&mut self.buf) {
                std::mem::swap(o, b);
            }
            self.base = self.seen;
            self.next = self.seen;
            return out;
        }
        let (l, m, half) = (r.l as u128, r.m as u128, r.half as u128);
        // Outputs that can be made now: all of them at the end; before it, those whose last tap
        // (input `floor(n * m / l) + half`) has arrived, i.e. `n * m < (seen - half) * l`.
        let stop = if end {
            r.output_len(self.seen as usize) as u64
        } else {
            let seen = u128::from(self.seen);
            if seen > half {
                ((seen - half) * l).div_ceil(m) as u64
            } else {
                0
            }
        };
        if stop > self.next {
            let pos = u128::from(self.next) * m;
            let (k, p) = ((pos / l) as i64, (pos % l) as usize);
            let count = (stop - self.next) as usize;
            for (o, b) in out.iter_mut().zip(&self.buf) {
                o.reserve(count);
                r.run(b, k - self.base as i64, p, count, o);
            }
            self.next = stop;
        }
        // Input the next output no longer needs.
        let pos = u128::from(self.next) * m;
        let need = ((pos / l) as i64 - r.half as i64 + 1).max(0) as u64;
        if need > self.base {
            let drop = ((need - self.base) as usize).min(self.buf[0].len());
            for b in &mut self.buf {
                b.drain(..drop);
            }
            self.base += drop as u64;
        }
        out
    }
}

impl Resampler {
    /// Appends `count` outputs of one channel to `out`: the first at input position `k` (an
    /// index into `b`, which may be negative or past its end: silence there) and phase `p`.
    fn run(&self, b: &[f32], mut k: i64, mut p: usize, count: usize, out: &mut Vec<f32>) {
        let taps = 2 * self.half;
        let mut left = count;
        while left > 0 {
            let lo = k - self.half as i64 + 1;
            let inside = lo >= 0 && (lo as usize + taps) <= b.len();
            if inside && self.halfband {
                // The bulk of 8 → 16 kHz: input sample, then the half-way tap sum, in turn,
                // for as long as the taps stay inside the buffer.
                let odd = &self.table[taps..2 * taps];
                let mut i = lo as usize;
                let mut n = 0usize;
                if p == 1 {
                    out.push(dot(&b[i..i + taps], odd));
                    n += 1;
                    i += 1;
                    k += 1;
                    p = 0;
                }
                // Pairs whose taps start at i, i + 1, … and stay inside the buffer.
                let pairs = ((left - n) / 2).min((b.len() + 1).saturating_sub(i + taps));
                let at = out.len();
                out.resize(at + 2 * pairs, 0.0);
                for (o, x) in out[at..].chunks_exact_mut(2).zip(b[i..].windows(taps)) {
                    o[0] = x[self.half - 1];
                    o[1] = dot(x, odd);
                }
                n += 2 * pairs;
                k += pairs as i64;
                left -= n;
                if n == 0 {
                    // Not even one pair fits: fall through to the one-at-a-time path below.
                    self.one(b, &mut k, &mut p, out);
                    left -= 1;
                }
                continue;
            }
            self.one(b, &mut k, &mut p, out);
            left -= 1;
        }
    }

    /// One output at input position `k`, phase `p` (edges: samples outside `b` are silence);
    /// steps the position.
    fn one(&self, b: &[f32], k: &mut i64, p: &mut usize, out: &mut Vec<f32>) {
        let taps = 2 * self.half;
        let lo = *k - self.half as i64 + 1;
        let row = &self.table[*p * taps..(*p + 1) * taps];
        let v = if self.halfband && *p == 0 {
            usize::try_from(*k).ok().and_then(|i| b.get(i)).copied().unwrap_or(0.0)
        } else if lo >= 0 && (lo as usize + taps) <= b.len() {
            dot(&b[lo as usize..lo as usize + taps], row)
        } else {
            let mut acc = 0f32;
            for (j, c) in row.iter().enumerate() {
                let idx = lo + j as i64;
                if idx >= 0 && (idx as usize) < b.len() {
                    acc += b[idx as usize] * c;
                }
            }
            acc
        };
        out.push(v);
        *k += (self.m / self.l) as i64;
        *p += self.m % self.l;
        if *p >= self.l {
            *p -= self.l;
            *k += 1;
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((l, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *l += x * y;
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32 * 0.5).collect()
    }

    #[test]
    fn upsampling_keeps_phase_and_amplitude() {
        let r = Resampler::new(8000, 16000);
        let out = r.process(&tone(440.0, 8000, 8000));
        assert_eq!(out.len(), 16000);
        let want = tone(440.0, 16000, 16000);
        // Away from the edges the output is the same tone at the same phase: no delay.
        let err = out[200..15800].iter().zip(&want[200..15800]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 0.01, "max error {err}");
    }

    #[test]
    fn downsampling_rejects_alias() {
        let r = Resampler::new(44100, 16000);
        // 10 kHz is above the 8 kHz Nyquist of the output: it must nearly vanish.
        let out = r.process(&tone(10_000.0, 44100, 44100));
        let rms = (out[500..15500].iter().map(|x| x * x).sum::<f32>() / 15000.0).sqrt();
        assert!(rms < 0.01, "alias rms {rms}");
        let out = r.process(&tone(1000.0, 44100, 44100));
        let want = tone(1000.0, 16000, 16000);
        let err = out[500..15500].iter().zip(&want[500..15500]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 0.01, "max error {err}");
    }

    #[test]
    fn streaming_in_any_chunking_equals_whole_exactly() {
        // Chunks shorter than the filter, of odd and even lengths, tiny inputs, two channels.
        for (from, to) in [(8000, 16000), (11025, 22050), (44100, 16000)] {
            for len in [0usize, 1, 5, 23, 24, 25, 49, 1000, 4097] {
                let left = tone(440.0, from, len);
                let right: Vec<f32> = left.iter().map(|x| -0.5 * x).collect();
                let run = |chunk: usize| {
                    let mut s = Streaming::new(from, to, 2);
                    let (mut gl, mut gr) = (Vec::new(), Vec::new());
                    for (a, b) in left.chunks(chunk.max(1)).zip(right.chunks(chunk.max(1))) {
                        let mut o = s.push(&[a.to_vec(), b.to_vec()]);
                        gr.extend(o.pop().unwrap());
                        gl.extend(o.pop().unwrap());
                    }
                    let mut o = s.finish();
                    gr.extend(o.pop().unwrap());
                    gl.extend(o.pop().unwrap());
                    (gl, gr)
                };
                // One push: the samples of the whole resampler (the half-band filter's even
                // outputs are copies there, filtered with a delta in `process`).
                let (wl, wr) = run(usize::MAX);
                let whole = Resampler::new(from, to).process(&left);
                assert_eq!(wl.len(), whole.len());
                assert!(wl.iter().zip(&whole).all(|(a, b)| (a - b).abs() < 1e-6), "{from} -> {to}, {len}");
                for chunk in [1usize, 2, 3, 7, 24, 25, 577, 4096] {
                    let (gl, gr) = run(chunk);
                    assert_eq!(gl, wl, "{from} -> {to}, {len} samples in chunks of {chunk}");
                    assert_eq!(gr, wr, "{from} -> {to}, {len} samples in chunks of {chunk} (right)");
                }
            }
        }
    }

    #[test]
    fn streaming_gives_the_same_samples_as_whole() {
        for (from, to) in [(8000, 16000), (44100, 16000), (11025, 22050), (16000, 16000)] {
            let input = tone(440.0, from, 5000);
            let whole = Resampler::new(from, to).process(&input);
            let mut s = Streaming::new(from, to, 1);
            let mut got = Vec::new();
            for chunk in input.chunks(577) {
                got.extend(s.push(&[chunk.to_vec()]).remove(0));
            }
            got.extend(s.finish().remove(0));
            assert_eq!(got.len(), whole.len(), "{from} -> {to}");
            let err = got.iter().zip(&whole).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-6, "{from} -> {to}: max difference {err}");
        }
    }

    #[test]
    fn doubling_keeps_every_input_sample_exactly() {
        let input = tone(440.0, 8000, 3000);
        let mut s = Streaming::new(8000, 16000, 1);
        let mut out = s.push(std::slice::from_ref(&input)).remove(0);
        out.extend(s.finish().remove(0));
        assert_eq!(out.len(), 6000);
        for (i, x) in input.iter().enumerate() {
            assert_eq!(out[2 * i], *x, "sample {i}");
        }
    }
}
