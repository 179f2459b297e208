// Op parity: runs every Backend op on two backends with the same fresh random inputs and
// reports how far the candidate's results are from the reference's. The [cuda] tests and
// the gpu_selfcheck tool both run it with the CPU backend as the reference.
//
// For each case both backends get the same inputs and the same initial outputs (random,
// so an op that should overwrite but accumulates, or the reverse, shows). Every output,
// workspace and reserve on either side sits between guard bytes of a sentinel pattern
// that must be intact after the op (out-of-bounds writes; workspaces start as NaN bytes,
// so reading one before writing it shows too), and every value must be finite on both
// sides (or NaN on both, for the metrics where NaN is defined: NanRule). Errors are
// relative as ErrorScale says; each op family has one tolerance, with its reason in
// op_parity.cpp. A family that throws gives one failed row ("threw", with the message)
// and the others still run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/ops/backend.hpp"

namespace cadenza {

struct ParityResult {
  std::string op;          // a name of kBackendOps
  std::string output;      // which output of the op, e.g. "dx"
  std::string shape_case;  // the case's shapes, e.g. "x [2, 3, 6, 7], 3x3 same"
  double max_error = 0.0;
  double tolerance = 0.0;
  bool finite = true;
  bool guards_intact = true;
  bool passed() const { return finite && guards_intact && max_error <= tolerance; }
};

// Every case on both backends, the candidate at fp32 precision, and the cases of the
// layers whose math follows train.precision (convolution, dense, harmonic filterbank,
// recurrent) again with the candidate at tf32 and at bf16 (the reference computes fp32
// throughout); the candidate is left at fp32.
std::vector<ParityResult> run_op_parity(Backend& reference, Backend& candidate);

// What an error is relative to: max(1, |reference value|) (`element`, the fp32 cases), or
// max(1, the tensor's largest |reference value|) (`tensor`, the tf32 and bf16 cases: there
// the rounding of the inputs gives every output of a sum of n terms an error of about
// u sqrt(n) rms(term), whatever that output's own size, so small outputs of a large
// result would otherwise be judged by an error that belongs to the whole sum).
enum class ErrorScale { element, tensor };

// Whether NaN is a value an output may hold: `defined` for the evaluation metrics (the
// ROC-AUC of a tag with one class), where the candidate must be NaN exactly where the
// reference is; `never` elsewhere, where a NaN on either side (an op reading scratch it
// never wrote, say) fails even if both sides agree.
enum class NanRule { never, defined };

// How far a candidate's values are from the reference's: the largest error (relative as
// `scale` says) over the values that are finite on both sides, and whether every value is
// finite, or NaN on both sides where `nan` allows it (an infinity always fails).
struct ValueComparison {
  double max_error = 0.0;
  bool finite = true;
};
ValueComparison compare_values(const float* reference, const float* candidate, std::int64_t count,
                               ErrorScale scale = ErrorScale::element, NanRule nan = NanRule::never);

// The ops of kBackendOps that no result covers (empty when coverage is complete).
std::vector<std::string> uncovered_ops(const std::vector<ParityResult>& results);

}  // namespace cadenza
