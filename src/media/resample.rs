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
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Resampler {
        let g = gcd(u64::from(from), u64::from(to)).max(1);
        let l = (u64::from(to) / g) as usize;
        let m = (u64::from(from) / g) as usize;
        // Downsampling lowers the cutoff (in input samples), which widens the sinc.
        let cutoff = ROLLOFF * (l as f64 / m as f64).min(1.0);
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
        Resampler { l, m, half, table }
    }

    /// Number of output samples for `n` input samples (the same span of time, rounded).
    pub fn output_len(&self, n: usize) -> usize {
        ((n as u128 * self.l as u128 + self.m as u128 / 2) / self.m as u128) as usize
    }

    /// Resample one channel.
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

/// Dot product in eight independent lanes: a plain iterator sum is one serial dependency chain
/// (float addition is not associative, so the compiler may not reorder it); lanes let it
/// vectorise. This loop is most of the resampler's time.
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
}
