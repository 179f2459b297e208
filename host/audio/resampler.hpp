// Sample-rate conversion of a mono clip with libsoxr, the resampler behind librosa's
// default res_type "soxr_hq".
//
// Invariants:
// - Quality is soxr_quality_spec(SOXR_HQ, 0) (20-bit precision, linear phase, passband to
//   about 91.4 % of the lower Nyquist frequency), as python-soxr sets it for librosa, on one
//   thread, so the output matches librosa.resample(res_type="soxr_hq") to float32 rounding
//   and does not depend on the machine's core count.
// - The whole clip is converted at once (start and end are treated as silence) and the
//   output has exactly resampled_length() samples: soxr's own rule, floor(n * out / in + 0.5)
//   (n / (in / out) in double precision, rounded half up). librosa then pads its result
//   with zeros to ceil(n * out / in); that padding is not reproduced here, so where the two
//   rules differ librosa's last sample is a 0 this output does not have.
// - Equal rates return the input unchanged. Safe to call from many threads at once: every
//   call owns its soxr instance.
#pragma once

#include <cstddef>
#include <vector>

namespace cadenza {

// Number of samples resample() returns for `num_samples` input samples.
std::size_t resampled_length(std::size_t num_samples, int in_rate, int out_rate);

// Converts `samples` from `in_rate` to `out_rate` (both positive, in Hz). Throws Error with
// soxr's message if libsoxr fails.
std::vector<float> resample(const std::vector<float>& samples, int in_rate, int out_rate);

}  // namespace cadenza
