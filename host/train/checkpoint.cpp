// Checkpoint writing and reading; see checkpoint.hpp for the layout and its guarantees.
#include "host/train/checkpoint.hpp"

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <xxhash.h>

#include "host/core/error.hpp"
#include "host/io/json_text.hpp"
#include "host/io/safetensors.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "cadenza-checkpoint-1";

std::string hash_text(std::uint64_t hash) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

std::string step_name(std::int64_t step) {
  char text[32];
  std::snprintf(text, sizeof text, "step-%08lld", static_cast<long long>(step));
  return text;
}

// XXH3-64 of the byte spans in order, then of `text`, as 16 hex digits.
std::string checksum_of(const std::vector<std::pair<const void*, std::size_t>>& spans, std::string_view text) {
  XXH3_state_t* state = XXH3_createState();
  CADENZA_CHECK(state != nullptr, "XXH3_createState failed");
  XXH3_64bits_reset(state);
  for (const auto& [data, bytes] : spans) XXH3_64bits_update(state, data, bytes);
  XXH3_64bits_update(state, text.data(), text.size());
  const std::uint64_t hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return hash_text(hash);
}

std::string checksum_of(const std::vector<SafetensorsEntry>& entries, std::string_view text) {
  std::vector<std::pair<const void*, std::size_t>> spans;
  for (const SafetensorsEntry& e : entries) spans.emplace_back(e.data, e.nbytes);
  return checksum_of(spans, text);
}

// UserError naming `name` when the host tensor holds NaN or infinity.
void require_finite(const std::string& name, const Tensor& host, std::int64_t step) {
  const float* values = host.f32();
  if (!std::all_of(values, values + host.numel(), [](float v) { return std::isfinite(v); }))
    CADENZA_USER_ERROR("training diverged: '" << name << "' holds NaN or infinity at step " << step
                                              << "; the last checkpoint is kept; try a lower train.lr");
}

// Host copies of the tensors (kept alive while the entries point into them). A tensor
// holding NaN or infinity stops the run here, before it can replace a good checkpoint.
std::vector<SafetensorsEntry> to_entries(const std::vector<NamedTensor>& tensors, std::vector<Tensor>& host_copies,
                                         Backend& backend, std::int64_t step) {
  std::vector<SafetensorsEntry> entries;
  for (const NamedTensor& t : tensors) {
    Tensor host = Tensor::zeros(t.tensor.shape(), t.tensor.dtype());
    backend.copy(t.tensor, host);
    require_finite(t.name, host, step);
    host_copies.push_back(host);
    std::vector<std::int64_t> shape(t.tensor.shape().data(),
                                    t.tensor.shape().data() + t.tensor.shape().rank());
    entries.push_back({t.name, "F32", shape, host.raw(), host.bytes()});
  }
  return entries;
}

// Refuses a file whose tensors (and trainer state text) do not give the checksum it records.
// A file without one (written before checkpoints carried it) is read unchecked.
void check_checksum(const SafetensorsFile& file, std::string_view text) {
  const auto recorded = file.metadata().find("checksum");
  if (recorded == file.metadata().end()) return;
  std::vector<std::pair<const void*, std::size_t>> spans;
  for (const std::string& name : file.names()) spans.emplace_back(file.tensor(name).data, file.tensor(name).nbytes);
  if (checksum_of(spans, text) != recorded->second)
    CADENZA_USER_ERROR(file.path().string() << ": damaged (its contents do not match the checksum written with "
                                               "them); use an earlier checkpoint of the run (checkpoints/step-*)");
}

void read_into(const SafetensorsFile& file, const std::vector<NamedTensor>& tensors, Backend& backend) {
  for (const NamedTensor& t : tensors) {
    if (!file.contains(t.name))
      CADENZA_USER_ERROR(file.path().string() << ": no tensor '" << t.name
                                              << "' (the checkpoint is of another model)");
    Tensor host = Tensor::zeros(t.tensor.shape(), DType::f32);
    std::vector<std::int64_t> shape(t.tensor.shape().data(),
                                    t.tensor.shape().data() + t.tensor.shape().rank());
    file.copy_f32(t.name, shape, host.f32());
    Tensor destination = t.tensor;
    backend.copy(host, destination);
  }
}

void check_hash(const SafetensorsFile& file, std::uint64_t model_hash) {
  const auto& meta = file.metadata();
  const auto format = meta.find("format");
  if (format == meta.end() || format->second != kFormat)
    CADENZA_USER_ERROR(file.path().string() << ": not a cadenza checkpoint (metadata 'format' is not '"
                                            << kFormat << "')");
  const auto hash = meta.find("model_hash");
  if (hash == meta.end() || hash->second != hash_text(model_hash))
    CADENZA_USER_ERROR(file.path().string()
                       << ": written by a model of other features, layers or labels (model hash "
                       << (hash == meta.end() ? "missing" : hash->second) << ", this config's "
                       << hash_text(model_hash) << ")");
}

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Points `link` at `target` (a sibling name) by renaming a fresh link over it.
void replace_symlink(const fs::path& link, const std::string& target) {
  const fs::path temporary = link.string() + ".tmp." + std::to_string(::getpid());
  fs::remove(temporary);
  fs::create_symlink(target, temporary);
  fs::rename(temporary, link);
}

std::string link_target(const fs::path& link) {
  std::error_code ec;
  const fs::path target = fs::read_symlink(link, ec);
  return ec ? std::string() : target.filename().string();
}

bool is_link_leftover(const std::string& name) {
  return name.rfind("last.tmp.", 0) == 0 || name.rfind("best.tmp.", 0) == 0;
}

}  // namespace

std::vector<std::string> step_directory_names(const fs::path& checkpoints_dir) {
  constexpr std::size_t prefix = 5;  // "step-"
  std::vector<std::string> steps;
  if (!fs::is_directory(checkpoints_dir)) return steps;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    const std::string n = entry.path().filename().string();
    if (n.rfind("step-", 0) == 0 && n.size() >= prefix + 8 &&
        std::all_of(n.begin() + prefix, n.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        entry.is_directory() && !entry.is_symlink())
      steps.push_back(n);
  }
  // By step, not by text: step-100000000 is newer than step-99999999.
  std::sort(steps.begin(), steps.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return steps;
}

void align_best_link(const fs::path& checkpoints_dir, const TrainerState& state) {
  if (state.best_step < 0) return;
  const std::string name = step_name(state.best_step);
  if (link_target(checkpoints_dir / "best") != name && fs::is_directory(checkpoints_dir / name))
    replace_symlink(checkpoints_dir / "best", name);
}

fs::path best_checkpoint_dir(const fs::path& checkpoints_dir, const TrainerState& state) {
  return checkpoints_dir / (state.best_step >= 0 ? step_name(state.best_step) : std::string("best"));
}

void save_checkpoint(const fs::path& checkpoints_dir, const CheckpointContents& contents,
                     const TrainerState& state, std::uint64_t model_hash, int keep, Backend& backend) {
  fs::create_directories(checkpoints_dir);
  // Leftovers of a save that was killed part-way (any process) are incomplete: drop them.
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    const std::string n = entry.path().filename().string();
    if (n.rfind(".staging-", 0) == 0 || (is_link_leftover(n) && entry.is_symlink())) fs::remove_all(entry.path());
  }
  const std::string name = step_name(state.global_step);
  const fs::path staging = checkpoints_dir / (".staging-" + name + "-" + std::to_string(::getpid()));
  fs::create_directories(staging);
  // Removes the staging directory if anything below throws (disk full, ...).
  struct StagingGuard {
    const fs::path& path;
    ~StagingGuard() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } guard{staging};

  nlohmann::json trainer = {{"epoch", state.epoch},
                            {"step_in_epoch", state.step_in_epoch},
                            {"global_step", state.global_step},
                            {"epoch_loss_sum", state.epoch_loss_sum},
                            {"rank_loss_sums", state.rank_loss_sums},
                            {"best_epoch", state.best_epoch},
                            {"best_step", state.best_step},
                            {"config", state.config_values}};
  // NaN is not JSON; "no best yet" is best_epoch -1.
  trainer["best_metric"] = state.best_epoch >= 0 ? state.best_metric : 0.0;
  trainer["plateau"] = {{"best", std::isnan(state.plateau.best) ? nlohmann::json(nullptr)
                                                                : nlohmann::json(state.plateau.best)},
                        {"bad_epochs", state.plateau.bad_epochs},
                        {"scale", state.plateau.scale}};
  const std::map<std::string, std::string> meta = {
      {"format", kFormat}, {"model_hash", hash_text(model_hash)},
      {"global_step", std::to_string(state.global_step)}};
  std::map<std::string, std::string> trainer_meta = meta;
  trainer_meta["trainer_state"] = json_text(trainer);

  std::vector<Tensor> host_copies;
  const std::vector<SafetensorsEntry> weights = to_entries(contents.weights, host_copies, backend, state.global_step);
  const std::vector<SafetensorsEntry> trainer_tensors =
      to_entries(contents.trainer_state, host_copies, backend, state.global_step);
  std::map<std::string, std::string> model_meta = meta;
  model_meta["checksum"] = checksum_of(weights, "");
  trainer_meta["checksum"] = checksum_of(trainer_tensors, trainer_meta["trainer_state"]);
  write_safetensors(staging / "model.safetensors", weights, model_meta);
  write_safetensors(staging / "trainer.safetensors", trainer_tensors, trainer_meta);
  fsync_directory(staging);

  const fs::path final_dir = checkpoints_dir / name;
  if (fs::exists(final_dir)) {
    // The same step saved again (after validation, or by a resumed run): exchange the two
    // directories in one step, so step-N exists at every instant; the guard removes the
    // old copy, now under the staging name.
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0)
      CADENZA_USER_ERROR("cannot replace checkpoint " << final_dir.string() << ": "
                                                      << std::strerror(errno));
  } else {
    fs::rename(staging, final_dir);
  }
  // `best` first: killed between the two, `last` is the previous checkpoint, whose
  // best_step puts `best` back on resume, and until then `best` is the best one written.
  align_best_link(checkpoints_dir, state);
  replace_symlink(checkpoints_dir / "last", name);
  fsync_directory(checkpoints_dir);

  // Keep the `keep` newest step directories, plus whatever `best` and `last` point to.
  const std::vector<std::string> steps = step_directory_names(checkpoints_dir);
  const std::string best = link_target(checkpoints_dir / "best");
  const std::size_t keep_count = static_cast<std::size_t>(std::max(keep, 1));
  // Each is renamed out of the step-* names first, so a kill part-way through the removal
  // leaves a .staging-* directory (removed by the next save), never a partial step-N.
  for (std::size_t i = 0; i + keep_count < steps.size(); ++i) {
    if (steps[i] == best || steps[i] == name) continue;
    const fs::path doomed = checkpoints_dir / (".staging-pruned-" + steps[i] + "-" + std::to_string(::getpid()));
    fs::rename(checkpoints_dir / steps[i], doomed);
    fs::remove_all(doomed);
  }
}

void require_finite_checkpoint(const CheckpointContents& contents, std::int64_t step, Backend& backend) {
  for (const auto* tensors : {&contents.weights, &contents.trainer_state})
    for (const NamedTensor& t : *tensors) {
      Tensor host = Tensor::zeros(t.tensor.shape(), t.tensor.dtype());
      backend.copy(t.tensor, host);
      require_finite(t.name, host, step);
    }
}

TrainerState load_checkpoint(const fs::path& checkpoint_dir, const CheckpointContents& contents,
                             std::uint64_t model_hash, Backend& backend,
                             const std::function<void(const TrainerState&)>& check_state) {
  if (!fs::exists(checkpoint_dir / "trainer.safetensors"))
    CADENZA_USER_ERROR(checkpoint_dir.string() << ": no checkpoint here (expected model.safetensors "
                                                  "and trainer.safetensors)");
  const SafetensorsFile model(checkpoint_dir / "model.safetensors");
  const SafetensorsFile trainer(checkpoint_dir / "trainer.safetensors");
  check_hash(model, model_hash);
  check_hash(trainer, model_hash);
  check_checksum(model, "");
  const auto found = trainer.metadata().find("trainer_state");
  if (found == trainer.metadata().end())
    CADENZA_USER_ERROR(trainer.path().string() << ": metadata has no trainer_state");
  check_checksum(trainer, found->second);
  const auto model_step = model.metadata().find("global_step");
  const auto trainer_step = trainer.metadata().find("global_step");
  if (model_step == model.metadata().end() || trainer_step == trainer.metadata().end() ||
      model_step->second != trainer_step->second)
    CADENZA_USER_ERROR(checkpoint_dir.string() << ": model and trainer files are not of the same step");
  const nlohmann::json j = nlohmann::json::parse(found->second);
  TrainerState state;
  state.epoch = j.at("epoch");
  state.step_in_epoch = j.at("step_in_epoch");
  state.global_step = j.at("global_step");
  state.epoch_loss_sum = j.at("epoch_loss_sum");
  state.rank_loss_sums = j.value("rank_loss_sums", std::vector<double>{});
  state.best_epoch = j.at("best_epoch");
  state.best_step = j.value("best_step", std::int64_t{-1});
  if (state.best_epoch >= 0 && j.at("best_metric").is_number()) state.best_metric = j.at("best_metric");
  state.config_values = j.at("config").get<std::map<std::string, std::string>>();
  if (j.contains("plateau")) {
    const nlohmann::json& plateau = j.at("plateau");
    if (plateau.at("best").is_number()) state.plateau.best = plateau.at("best");
    state.plateau.bad_epochs = plateau.at("bad_epochs");
    state.plateau.scale = plateau.at("scale");
  }
  if (check_state) check_state(state);
  read_into(model, contents.weights, backend);
  read_into(trainer, contents.trainer_state, backend);
  return state;
}

void check_weights_checksum(const SafetensorsFile& file) { check_checksum(file, ""); }

bool load_weights(const fs::path& model_file, const std::vector<NamedTensor>& weights,
                  std::uint64_t model_hash, Backend& backend) {
  const SafetensorsFile model(model_file);
  const auto format = model.metadata().find("format");
  const bool ours = format != model.metadata().end() && format->second == kFormat;
  if (ours) {
    check_hash(model, model_hash);
    check_weights_checksum(model);
  }
  read_into(model, weights, backend);
  return ours;
}

}  // namespace cadenza
