// with_absolute_paths: the config's path keys made absolute (config.hpp). Apart from
// config.cpp, whose messages quote with a quoted() of their own that <filesystem> would
// make ambiguous.
#include <filesystem>
#include <variant>

#include "host/config/config.hpp"
#include "host/config/config_schema.hpp"

namespace cadenza {

const std::vector<std::string>& path_keys() {
  static const std::vector<std::string> keys = {"data.root",     "data.split_lists", "data.metadata",
                                                "data.audio_dir", "data.manifest",   "data.cache_dir",
                                                "model.init_from", "train.run_dir"};
  return keys;
}

Config with_absolute_paths(const Config& config) {
  Config out = config;
  for (const std::string& key : path_keys()) {
    std::string& path = *std::get<std::string*>(find_config_key(key)->field(out));
    if (!path.empty()) path = std::filesystem::absolute(path).lexically_normal().string();
  }
  return out;
}

}  // namespace cadenza
