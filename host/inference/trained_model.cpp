// TrainedModel: opening a run's config, labels and checkpoint, and building its model for
// inference.
#include "host/inference/trained_model.hpp"

#include <cmath>

#include "host/core/error.hpp"
#include "host/data/batch_loader.hpp"
#include "host/data/run_labels.hpp"
#include "host/train/checkpoint.hpp"

namespace cadenza {
namespace fs = std::filesystem;

TrainedRun open_trained_run(const fs::path& run_dir, const std::string& checkpoint,
                            const std::vector<std::string>& overrides) {
  TrainedRun run;
  run.run_dir = run_dir;
  const fs::path config_file = run_dir / "config.yaml";
  if (!fs::is_regular_file(config_file))
    CADENZA_USER_ERROR(run_dir.string() << ": not a run directory (no config.yaml; give the directory gpu_train "
                                           "wrote)");
  if (const auto changing = model_changing_override(config_file.string(), overrides))
    CADENZA_USER_ERROR("--set " << *changing << ": changes the model, features or labels the run was trained "
                                  "with; its checkpoints hold that model");
  run.config = load_config(config_file.string(), overrides);
  const RunLabels labels = read_run_labels(run_dir);
  run.labels = labels.names;
  run.multi_label = labels.multi_label;
  run.splits = read_run_split_record(run_dir);

  if (checkpoint == "best" || checkpoint == "last") {
    const fs::path dir = run_dir / "checkpoints" / checkpoint;
    if (!fs::is_directory(run_dir / "checkpoints"))
      CADENZA_USER_ERROR(run_dir.string() << ": no checkpoints folder (the run has not finished a step, or it "
                                             "was moved or deleted); give a checkpoint with --checkpoint PATH");
    if (!fs::exists(dir))
      CADENZA_USER_ERROR(dir.string() << ": no " << checkpoint << " checkpoint"
                                      << (checkpoint == "best" ? " (it is written when an epoch with a validation "
                                                                 "split ends; use --checkpoint last)"
                                                               : ""));
    run.weights = dir / "model.safetensors";
  } else if (fs::is_directory(checkpoint)) {
    run.weights = fs::path(checkpoint) / "model.safetensors";
  } else if (const fs::path of_run = run_dir / "checkpoints" / checkpoint; fs::is_directory(of_run)) {
    run.weights = of_run / "model.safetensors";  // one of the run's own, by name: step-00000006
  } else {
    run.weights = checkpoint;
  }
  if (!fs::is_regular_file(run.weights))
    CADENZA_USER_ERROR("--checkpoint " << checkpoint << ": " << run.weights.string()
                                       << " is missing (expected best, last, a checkpoint of the run such as "
                                          "step-00000006, a checkpoint directory or a model.safetensors file)");
  return run;
}

Dataset load_run_dataset(const TrainedRun& run, Logger& log) {
  if (!run.splits)
    log.warn(run.run_dir.string() + " has no splits.csv: the splits are made again from the dataset, which gives "
             "the run's own only if its files are unchanged");
  // The dataset's own clips: evaluating or embedding the offline augmentation's stretched
  // copies would count training clips again (and build their cache if it was removed).
  Config config = run.config;
  config.augment.offline_copies = 0;
  return load_dataset(config, config.train.seed, config.train.threads, log, run.splits ? &*run.splits : nullptr);
}

TrainedModel::TrainedModel(const TrainedRun& run, const Dataset& data, Logger& log)
    : run_(run), data_(data) {
  const Config& config = run_.config;
  require_run_labels({run_.labels, run_.multi_label}, data, run_.run_dir);
  context_ = make_context(config.train.device, config.train.threads, log);
  apply_precision(*context_, config.train.precision);
  Backend& backend = context_->backend();
  batch_ = config.train.batch_size;
  window_ = window_samples(config.data);
  const int labels = static_cast<int>(run_.labels.size());
  frontend_ = backend.make_frontend(config.features, config.data.sample_rate, static_cast<int>(window_), batch_);
  ArenaPlan plan;
  const Shape input = frontend_->features_shape(batch_);
  model_ = std::make_unique<Model>(config.model, input, labels, plan, backend,
                                   describe_model_input(config.features, config.data.sample_rate, window_, input));
  arena_ = std::make_unique<Arena>(std::move(plan), backend);
  model_->bind(*arena_);
  std::vector<NamedTensor> weights;
  for (const NamedParameter& p : model_->parameters()) weights.push_back({p.name, arena_->value(p.id)});
  for (const NamedState& s : model_->state()) weights.push_back({s.name, arena_->get(s.id)});
  if (!load_weights(run_.weights, weights, model_hash(config), backend))
    log.info(run_.weights.string() + ": not a cadenza checkpoint; its weights were matched to the run's model by "
             "name and shape");
  uploader_ = backend.make_uploader({Shape{batch_, window_}, Shape{batch_, labels}});
  loader_ = std::make_unique<BatchLoader>(data, window_, default_loader_threads());
  pipeline_ = std::make_unique<WindowPipeline>(backend, *loader_, *uploader_, *frontend_, *model_, batch_);
}

TrainedModel::~TrainedModel() = default;

ClipEvaluation TrainedModel::evaluate(const std::vector<int>& clips, bool with_embeddings, float threshold) {
  const Config& config = run_.config;
  EvaluationWindows cut;
  cut.window = window_;
  cut.drop = std::llround(config.data.eval_drop_seconds * config.data.sample_rate);
  cut.windows_per_clip = choose_eval_windows(config.data.eval_windows, data_, cut.window, cut.drop);
  ClipEvaluator::Options options;
  options.batch = batch_;
  options.labels = data_.num_labels();
  options.max_clips = static_cast<std::int64_t>(clips.size());
  options.multi_label = run_.multi_label;
  options.sigmoid_loss = sigmoid_loss();
  options.embedding_width = with_embeddings ? model_->embedding().dim(1) : 0;
  options.threshold = threshold;
  ClipEvaluator evaluator(options, backend());
  return evaluator.evaluate(data_, clips, cut, *pipeline_, *model_);
}

bool TrainedModel::sigmoid_loss() const {
  const std::string& type = run_.config.loss.type;
  return type == "auto" ? run_.multi_label : type == "sigmoid_bce";
}

}  // namespace cadenza
