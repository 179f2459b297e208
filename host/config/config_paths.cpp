// with_absolute_paths: the config's path keys made absolute (config.hpp). Apart from
// config.cpp, whose messages quote with a quoted() of their own that <filesystem> would
// make ambiguous.
#include <filesystem>

#include "host/config/config.hpp"

namespace cadenza {

Config with_absolute_paths(const Config& config) {
  Config out = config;
  for (std::string* path : {&out.data.root, &out.data.split_lists, &out.data.metadata, &out.data.audio_dir,
                            &out.data.manifest, &out.data.cache_dir, &out.model.init_from, &out.train.run_dir})
    if (!path->empty()) *path = std::filesystem::absolute(*path).lexically_normal().string();
  return out;
}

}  // namespace cadenza
