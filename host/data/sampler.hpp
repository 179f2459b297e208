// Samplers: which clip and which window of it each example of an epoch reads.
//
// Invariants:
// - Every choice is a pure function of (seed, epoch, the clip lists): a resumed run and
//   an unbroken one draw the same examples, on any number of threads.
// - Data-parallel ranks get disjoint shards of each epoch's order (no clip is seen twice
//   in an epoch across ranks) and the same number of examples: the order is cut into
//   global batches of batch * world_size examples, rank r taking the r-th run of `batch`
//   examples of each, so step s of the ranks together reads exactly step s of one process
//   with a batch world_size times larger, in the same rows (rank r's rows are that
//   batch's rows r * batch ...). The last partial global batch is dropped.
// - An example's window start depends on its position in the epoch's order only, never
//   on the rank or the world size.
// - Windows never leave the clip, except that a clip shorter than the window starts at 0
//   and is zero-padded by the reader.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cadenza {

// One example: samples [offset, offset + window) of clip `clip`.
struct ClipWindow {
  int clip = 0;
  std::int64_t offset = 0;
};

struct TrainingSamplerOptions {
  std::uint64_t seed = 0;
  // none: each training clip once per epoch; oversample: every class repeated up to the
  // largest class's count; undersample: every class cut to the smallest class's count.
  std::string balance = "none";
  int rank = 0;
  int world_size = 1;
  int batch = 1;  // examples per rank and step
};

// The epoch's examples for this rank: shuffled clips (balanced if asked), each with a
// uniformly random window start in [0, length - window].
std::vector<ClipWindow> training_epoch(const std::vector<int>& clips, const std::vector<std::int64_t>& lengths,
                                       const std::vector<int>& primary_label, std::int64_t window,
                                       const TrainingSamplerOptions& options, int epoch);

// Evaluation windows (multiframe): after dropping `drop` samples at each end of a clip,
// `windows_per_clip` windows at offsets i * ((usable - window) / windows_per_clip), as Won
// et al.'s evaluation cuts 16 windows; windows_per_clip 0 means every whole window, back
// to back. Clips come in the given order, their windows consecutive.
std::vector<ClipWindow> evaluation_windows(const std::vector<int>& clips, const std::vector<std::int64_t>& lengths,
                                           std::int64_t window, int windows_per_clip, std::int64_t drop);

}  // namespace cadenza
