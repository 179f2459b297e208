// load_dataset: dispatch on data.dataset, then the split.
#include "host/data/dataset.hpp"

#include "host/core/error.hpp"
#include "host/data/dataset_index.hpp"
#include "host/data/split.hpp"

namespace cadenza {

int dataset_label_count(const DataConfig& config) {
  if (config.dataset == "synthetic") return static_cast<int>(synthetic_label_names(config.synthetic.num_classes).size());
  return static_cast<int>(index_dataset(config).label_names.size());
}

Dataset load_dataset(const DataConfig& config, std::uint64_t train_seed) {
  Dataset d;
  if (config.dataset == "synthetic")
    d.clips = generate_synthetic(config.synthetic, config.sample_rate, config.clip_seconds);
  else {
    const DatasetIndex index = index_dataset(config);
    CADENZA_USER_ERROR("data.dataset " << config.dataset << ": indexed " << index.clips.size() << " clips with "
                                       << index.label_names.size()
                                       << " labels, but training reads only data.dataset synthetic so far");
  }
  const std::uint64_t seed = config.split_seed ? config.split_seed : train_seed;
  d.splits = stratified_split(d.clips.primary_label, config.split_fractions, seed);
  return d;
}

}  // namespace cadenza
