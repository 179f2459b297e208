// The dataset a config names (data.dataset), loaded into memory and split.
//
// Invariants: splits are made by clip before any cropping or framing, so no audio of a
// validation or test clip is ever seen in training; each clip index is in exactly one
// split; the split depends only on the labels, the fractions and the split seed.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "host/config/config.hpp"
#include "host/data/dataset_index.hpp"
#include "host/data/synthetic_audio.hpp"

namespace cadenza {

// Decoded clips at the configured sample rate with their targets.
using ClipSet = SyntheticClipSet;

struct Dataset {
  ClipSet clips;
  std::array<std::vector<int>, 3> splits;  // clip indices of train, val, test (sorted)
  const std::vector<int>& indices(Split s) const { return splits[int(s)]; }
};

// The number of labels (classes or tags) data.dataset defines, without loading audio.
int dataset_label_count(const DataConfig& config);

// Loads data.dataset and splits it; `train_seed` seeds the split when data.split_seed is 0.
Dataset load_dataset(const DataConfig& config, std::uint64_t train_seed);

}  // namespace cadenza
