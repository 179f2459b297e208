// FNV-1a 64: the stable text hash behind cache keys, model hashes and per-clip random
// streams. Unlike std::hash, its values are the same on every platform and library
// version, so what is keyed by it (cache directories, checkpoints' model hash,
// augmentation draws) stays valid across builds.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace cadenza {

class Fnv1a64 {
 public:
  // Adds the bytes of `text`.
  void add_bytes(std::string_view text) {
    for (const char byte : text) mix(static_cast<unsigned char>(byte));
  }
  // Adds `field` and a terminating NUL byte, so that field boundaries count.
  void add_field(std::string_view field) {
    add_bytes(field);
    mix(0);
  }
  void add_field(std::int64_t number) { add_field(std::to_string(number)); }
  std::uint64_t value() const { return state_; }
  // 16 lower-case hex digits.
  std::string hex() const {
    char text[17];
    std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(state_));
    return text;
  }

 private:
  void mix(unsigned char byte) {
    state_ ^= byte;
    state_ *= 0x100000001b3ULL;
  }
  std::uint64_t state_ = 0xcbf29ce484222325ULL;
};

inline std::uint64_t fnv1a_64(std::string_view text) {
  Fnv1a64 hash;
  hash.add_bytes(text);
  return hash.value();
}

}  // namespace cadenza
