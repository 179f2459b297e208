// run_training: builds the context, data, front-end, model and optimizer in one arena, then
// runs epochs of steps with validation, logging and checkpoints.
#include "host/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <future>
#include <iomanip>
#include <numeric>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "host/config/config_schema.hpp"
#include "host/core/arena.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/core/text.hpp"
#include "host/cpu/spectrogram.hpp"
#include "host/data/batch_loader.hpp"
#include "host/data/dataset.hpp"
#include "host/data/run_labels.hpp"
#include "host/data/sampler.hpp"
#include "host/data/split_record.hpp"
#include "host/dist/communicator.hpp"
#include "host/dist/gradient_reducer.hpp"
#include "host/dist/rank_agreement.hpp"
#include "host/inference/clip_evaluator.hpp"
#include "host/inference/window_pipeline.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/file_lock.hpp"
#include "host/io/json_text.hpp"
#include "host/io/jsonl.hpp"
#include "host/math/loss_math.hpp"
#include "host/math/metric_math.hpp"
#include "host/math/random_math.hpp"
#include "host/metrics/classification_metrics.hpp"
#include "host/model/model.hpp"
#include "host/report/evaluation_report.hpp"
#include "host/train/checkpoint.hpp"
#include "host/train/lr_schedule.hpp"
#include "host/train/optimizer.hpp"
#include "host/train/step_graphs.hpp"
#include "host/train/training_step.hpp"
#include "host/train/transfer.hpp"

namespace cadenza {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// Streams of train.seed, one per purpose (the sampler draws from the seed itself).
constexpr std::uint64_t kInitStream = 1, kDropoutStream = 3, kWaveformAugmentStream = 4,
                        kMaskStream = 5;

// Keeps the lines of a .jsonl file whose `key` is a number at most `limit`; returns how
// many. A line without one is dropped as a line that does not parse is.
std::size_t truncate_jsonl(const fs::path& path, const char* key, std::int64_t limit) {
  if (!fs::exists(path)) return 0;
  std::string kept;
  std::size_t lines = 0;
  for (const nlohmann::json& j : read_jsonl(path))
    if (j.contains(key) && j[key].is_number() && j[key].get<double>() <= double(limit)) {
      kept += json_text(j) + "\n";
      ++lines;
    }
  write_file_atomically(path, kept);
  return lines;
}

// The dataset, built by rank 0 first (it indexes the files and builds the decoded-audio
// cache), then by the other ranks, which find the cache. Rank 0 builds on a worker thread
// while every rank meets it once per kHeartbeat in a host all-reduce of (done, failed):
// the others wait as long as the build takes, yet a rank 0 that dies ends their wait
// within the collective timeout, as a plain barrier with that timeout could not offer for
// a build longer than it. (A rank 0 whose peers fail logs it at once, but the build under
// way cannot be interrupted by them: it exits when that ends.) A build stopped by Ctrl-C
// stops every rank with Interrupted.
Dataset load_dataset_rank0_first(const Config& config, Communicator& communicator, Logger& log,
                                 const SplitRecord* recorded, const std::function<bool()>& stop_requested) {
  constexpr auto kHeartbeat = std::chrono::seconds(1);
  auto load = [&] {
    return load_dataset(config, config.train.seed, config.train.threads, log, recorded, stop_requested);
  };
  if (communicator.world_size() == 1) return load();
  const bool first = communicator.rank() == 0;
  std::future<Dataset> built;
  if (first) built = std::async(std::launch::async, load);
  for (;;) {
    std::vector<double> flags = {0.0, 0.0, 0.0};  // rank 0 is done; rank 0 failed; rank 0 was stopped
    std::optional<Dataset> data;
    std::exception_ptr error;
    if (first && built.wait_for(kHeartbeat) == std::future_status::ready) {
      bool stopped = false;
      try {
        data = built.get();
      } catch (const Interrupted&) {
        error = std::current_exception();
        stopped = true;
      } catch (...) {
        error = std::current_exception();
      }
      flags = {1.0, error ? 1.0 : 0.0, stopped ? 1.0 : 0.0};
    }
    try {
      communicator.all_reduce_host(flags);
    } catch (const std::exception& e) {
      // The build cannot be interrupted: say why this rank stops before `built` waits for it.
      if (first && !data && !error)
        log.error(std::string(e.what()) + "; stopping once the dataset build under way ends");
      throw;
    }
    if (error) std::rethrow_exception(error);
    if (data) return std::move(*data);
    if (flags[2] > 0.0) throw Interrupted("rank 0 stopped while building the dataset's cache");
    if (flags[1] > 0.0) CADENZA_USER_ERROR("rank 0 could not load the dataset; its log says why");
    if (flags[0] > 0.0) return load();
  }
}

// Appends one line; a write refused now or at the flush (a full disk) is an error.
void append_line(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::app);
  out << json_text(j) << "\n";
  out.close();
  if (!out) CADENZA_USER_ERROR("cannot write " << path.string() << ": " << std::strerror(errno));
}

class Trainer {
 public:
  Trainer(const Config& config, const TrainRequest& request, Logger& logger)
      : config_(config), request_(request), log_(logger) {}

  TrainOutcome run();

 private:
  void build();
  void report_skipped_files() const;
  // Enqueues one training step on the submitted batch (pcm, targets): its step values, then
  // its ops (replayed as a graph after the warm-up, StepGraphs), then the accumulation of
  // its scores into the epoch's rows. read_step_loss() waits for the step and returns its
  // mean loss; the trainer calls it only every train.log_every_steps steps, so the other
  // steps run without a host synchronisation.
  void train_step(const std::vector<Tensor>& batch, float lr);
  // The ops of a training step that are the same at every step: front-end (with the
  // training augmentation), forward, loss, scores, the loss sum, backward and update.
  void enqueue_step_ops(const std::vector<Tensor>& batch);
  float read_step_loss();
  float read_own_loss_sum();     // this rank's epoch_loss_sum_
  double read_epoch_loss_sum();  // over every rank
  std::vector<double> read_rank_loss_sums();  // each rank's own, in rank order
  // Every rank's training scores and targets of the epoch so far into gathered_scores_ and
  // gathered_targets_ (each rank wrote only its own rows of epoch_scores_ and epoch_targets_).
  void gather_epoch_rows();
  // Whether to stop now: the stop request of any rank, agreed by all (every step in a
  // single process, at logging steps across ranks).
  bool stop_agreed();
  // The epoch's training accuracy (single-label) or macro ROC-AUC (multi-label) over the
  // scores of its `steps` steps.
  double train_metric(int steps);
  struct Evaluation {
    double loss = 0.0, metric = 0.0, pr_auc = 0.0;
  };
  Evaluation evaluate(Split split);
  CheckpointContents checkpoint_contents() const;
  // The config's values and the global batch: what a checkpoint records and a resume keeps.
  std::map<std::string, std::string> run_values() const;
  void check_resumable(const std::map<std::string, std::string>& saved) const;
  void require_epochs_cover(const TrainerState& saved) const;
  // A resumed run's epochs are drawn from every training clip of its record: one gone from
  // the dataset, or no longer decodable, is named here (its checkpoint would be blamed).
  void require_training_clips(const SplitRecord& recorded) const;
  // Writes the state's checkpoint (rank 0; `best` follows state_.best_step); every rank
  // checks it is finite and waits for it.
  void checkpoint();
  // Every train.log_every_steps steps: the step's loss (stopping a diverged run), its line in
  // steps.jsonl and the progress bar; `steps_timed` steps took `seconds` this epoch.
  void log_step(const std::filesystem::path& steps_path, int epoch, float lr, int steps_timed, int step_in_epoch,
                int steps_per_epoch, double seconds);
  // Redraws the progress bar (on a terminal): `step_in_epoch` of `steps_per_epoch` done,
  // the epoch's mean loss so far, and the rate of the `steps_timed` steps in `seconds`.
  void draw_progress(int epoch, int steps_timed, int step_in_epoch, int steps_per_epoch, double seconds,
                     double mean_loss);
  bool metric_improved(double value) const;
  // The best epoch and its train.select_metric value, into a finished run's outcome.
  void record_best(TrainOutcome& outcome) const;
  // train.early_stopping_patience epochs have passed since the best epoch (or since the
  // start, when no epoch was best) — checked at each epoch's start, so a resumed run of a
  // stopped one stops again.
  bool patience_exhausted() const;
  // Enters the phase of train.phases that `epoch` (from 0) is in: its optimizer and first
  // step; at the phase's first step, also its fresh optimizer state and, with reload_best,
  // the best checkpoint's weights. Called at every epoch's start, so a resumed run is in
  // the same phase as an unbroken one.
  void enter_phase(int epoch);

  const Config& config_;
  TrainRequest request_;
  Logger& log_;
  std::unique_ptr<Context> owned_context_;
  Context* context_ = nullptr;
  std::unique_ptr<Communicator> owned_communicator_;
  Communicator* communicator_ = nullptr;
  int rank_ = 0, world_size_ = 1;
  bool writes_files_ = true;  // rank 0
  bool has_split_record_ = false;  // a resumed run's splits.csv was there (build())
  Dataset data_;
  bool multi_label_ = false;
  bool sigmoid_loss_ = false;  // sigmoid BCE (multi-label, or chosen); else softmax CE
  bool said_skipped_tags_ = false;  // the validation tags left out of the AUCs were named
  int batch_ = 0, num_labels_ = 0;
  std::int64_t window_ = 0;      // samples per example
  EvaluationWindows eval_cut_;   // how validation and test clips are cut
  TrainingSamplerOptions sampler_;
  WaveformAugment waveform_augment_;
  SpectrogramMask spectrogram_mask_;
  bool augment_waveform_ = false, mask_spectrogram_ = false;
  std::string metric_name_, select_metric_;
  std::unique_ptr<Frontend> frontend_;
  std::unique_ptr<TrainingStep> step_;
  std::unique_ptr<StepGraphs> step_graphs_;
  Model* model_ = nullptr;  // step_'s
  Optimizer* optimizer_ = nullptr;
  std::unique_ptr<LrSchedule> schedule_;
  int steps_per_epoch_ = 0;
  // train.phases: the phase of the epoch in progress (0: before the first phase) and the
  // global step at which it began (optimizer steps count from there).
  int phase_ = 0;
  std::int64_t phase_start_step_ = 0;
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<BatchUploader> uploader_;  // (pcm (B, S), targets (B, K)), double-buffered
  std::vector<ClipWindow> epoch_examples_;    // this epoch's training examples
  std::unique_ptr<BatchLoader> loader_;       // after the buffers and examples it reads
  std::unique_ptr<WindowPipeline> pipeline_;
  std::unique_ptr<ClipEvaluator> evaluator_;
  std::unique_ptr<GradientReducer> gradient_reducer_;
  BufferId augmented_pcm_id_;
  Tensor augmented_pcm_;                      // (B, S) when waveform augmentation is on
  BufferId epoch_loss_sum_id_, step_scores_id_, epoch_scores_id_, epoch_targets_id_,
      gathered_scores_id_, gathered_targets_id_, epoch_metric_id_;
  // The training metric: a step's scores (B, K), and the scores and targets of the epoch's
  // examples so far (rows, K), row = the example's position in the epoch's order (global
  // step * B * world_size + rank * B + b; as Keras reports it: on augmented crops, with
  // dropout). Each rank writes its own rows; gathered_* hold every rank's (the sum over
  // ranks), which the metric reads and a checkpoint saves. Their metric: confusion (K, K) or
  // per-tag metrics.
  Tensor step_scores_, epoch_scores_, epoch_targets_, gathered_scores_, gathered_targets_, epoch_metric_;
  Tensor epoch_loss_sum_;  // (1): per-example training losses of the epoch so far
  Tensor host_loss_;
  TrainerState state_;
  std::uint64_t model_hash_ = 0;
};

void Trainer::build() {
  if (request_.context) {
    context_ = request_.context;
  } else {
    owned_context_ = make_context(config_.train.device, config_.train.threads, log_);
    context_ = owned_context_.get();
  }
  if (request_.communicator) {
    communicator_ = request_.communicator;
  } else {
    owned_communicator_ = make_solo_communicator();
    communicator_ = owned_communicator_.get();
  }
  apply_precision(*context_, config_.train.precision);
  rank_ = communicator_->rank();
  world_size_ = communicator_->world_size();
  writes_files_ = rank_ == 0;
  Backend& backend = context_->backend();
  // A resumed run keeps the splits and labels it started with (split_record.hpp,
  // run_labels.hpp); a fresh one records them.
  const std::optional<SplitRecord> recorded =
      request_.resume ? read_run_split_record(request_.run_dir) : std::nullopt;
  data_ = load_dataset_rank0_first(config_, *communicator_, log_, recorded ? &*recorded : nullptr,
                                   request_.stop_requested);
  has_split_record_ = recorded.has_value();
  if (request_.resume) require_run_labels(read_run_labels(request_.run_dir), data_, request_.run_dir);
  if (recorded) require_training_clips(*recorded);
  if (writes_files_ && !request_.resume) {  // a resume writes once its checkpoint is accepted (run())
    report_skipped_files();
    write_run_labels(request_.run_dir, data_);
    write_run_split_record(request_.run_dir, data_);
  }
  multi_label_ = data_.multi_label;
  num_labels_ = data_.num_labels();
  batch_ = config_.train.batch_size;
  window_ = window_samples(config_.data);
  eval_cut_.window = window_;
  eval_cut_.drop = std::llround(config_.data.eval_drop_seconds * config_.data.sample_rate);
  eval_cut_.windows_per_clip = choose_eval_windows(config_.data.eval_windows, data_, window_, eval_cut_.drop);
  sampler_.seed = config_.train.seed;
  sampler_.balance = config_.data.balance;
  // The epoch's whole order (every rank's examples): the rows of the training metric.
  const std::size_t epoch_order =
      training_epoch(data_.indices(Split::train), data_.lengths, data_.primary_label, window_, sampler_, 0).size();
  sampler_.rank = rank_;
  sampler_.world_size = world_size_;
  sampler_.batch = batch_;
  require_some_training_clip(data_, "listed in skipped_files.txt");
  const std::size_t train_examples =
      training_epoch(data_.indices(Split::train), data_.lengths, data_.primary_label, window_, sampler_, 0).size();
  if (train_examples < static_cast<std::size_t>(batch_))
    CADENZA_USER_ERROR("train.batch_size: " << batch_ << (world_size_ > 1 ? " per rank × " + std::to_string(world_size_) + " ranks" : "")
                                            << " is more than the " << epoch_order
                                            << " training examples of an epoch; use a smaller batch");
  steps_per_epoch_ = static_cast<int>(train_examples / batch_);
  schedule_ = std::make_unique<LrSchedule>(config_.train, steps_per_epoch_);
  if (data_.indices(Split::val).empty()) {
    if (schedule_->uses_validation())
      CADENZA_USER_ERROR("train.schedule.type: plateau watches train.select_metric, but the validation split "
                         "is empty; give data.split_fractions a validation share or choose another schedule");
    if (config_.train.early_stopping_patience > 0)
      CADENZA_USER_ERROR("train.early_stopping_patience: needs a validation split, but it is empty; give "
                         "data.split_fractions a validation share or set it to 0");
  }
  const std::string loss = config_.loss.type == "auto"
                               ? (multi_label_ ? "sigmoid_bce" : "softmax_cross_entropy")
                               : config_.loss.type;
  if (multi_label_ && loss == "softmax_cross_entropy")
    CADENZA_USER_ERROR("loss.type: softmax_cross_entropy needs single-label data, but the dataset is "
                       "multi-label; use sigmoid_bce or auto");
  sigmoid_loss_ = loss == "sigmoid_bce";
  metric_name_ = multi_label_ ? "val_roc_auc" : "val_accuracy";
  select_metric_ = config_.train.select_metric == "auto" ? metric_name_ : config_.train.select_metric;
  const bool computed = select_metric_ == "val_loss" || select_metric_ == metric_name_ ||
                        (multi_label_ && select_metric_ == "val_pr_auc");
  if (!computed)
    CADENZA_USER_ERROR("train.select_metric: " << select_metric_ << " is not computed for "
                                               << (multi_label_ ? "multi" : "single") << "-label data; use val_loss or "
                                               << metric_name_ << (multi_label_ ? " or val_pr_auc" : ""));

  const AugmentConfig& augment = config_.augment;
  waveform_augment_.shift_probability = static_cast<float>(augment.shift_probability);
  waveform_augment_.max_shift = static_cast<int>(std::llround(augment.shift_seconds * config_.data.sample_rate));
  waveform_augment_.gain_probability = static_cast<float>(augment.gain_probability);
  waveform_augment_.gain_db_min = static_cast<float>(augment.gain_db[0]);
  waveform_augment_.gain_db_max = static_cast<float>(augment.gain_db[1]);
  waveform_augment_.noise_probability = static_cast<float>(augment.noise_probability);
  waveform_augment_.snr_db_min = static_cast<float>(augment.noise_snr_db[0]);
  waveform_augment_.snr_db_max = static_cast<float>(augment.noise_snr_db[1]);
  augment_waveform_ = augment.shift_probability > 0 || augment.gain_probability > 0 || augment.noise_probability > 0;
  spectrogram_mask_ = {augment.time_masks, augment.time_mask_frames, augment.freq_masks, augment.freq_mask_bins};
  // Each rank's rows draw as their rows of the step's global batch.
  waveform_augment_.first_row = spectrogram_mask_.first_row = std::int64_t(rank_) * batch_;
  mask_spectrogram_ = augment.time_masks > 0 || augment.freq_masks > 0;

  frontend_ = backend.make_frontend(config_.features, config_.data.sample_rate, static_cast<int>(window_), batch_);
  if (writes_files_ && (config_.features.type == "mel" || config_.features.type == "mfcc")) {
    if (const int empty = empty_mel_filters(config_.features, config_.data.sample_rate); empty > 0)
      log_.warn("features.n_mels: " + std::to_string(empty) + " of the " + std::to_string(config_.features.n_mels) +
                " mel filters hold no FFT bin of n_fft " + std::to_string(config_.features.n_fft) +
                " and are silent whatever the audio; lower n_mels or raise n_fft");
  }
  ArenaPlan plan;
  epoch_loss_sum_id_ = plan.add(Region::activations, "epoch_loss_sum", Shape{1});
  const auto epoch_rows = static_cast<std::int64_t>(epoch_order);
  step_scores_id_ = plan.add(Region::activations, "step_scores", Shape{batch_, num_labels_});
  gathered_scores_id_ = plan.add(Region::activations, "gathered_scores", Shape{epoch_rows, num_labels_});
  gathered_targets_id_ = plan.add(Region::activations, "gathered_targets", Shape{epoch_rows, num_labels_});
  epoch_metric_id_ = multi_label_ ? plan.add(Region::activations, "epoch_tag_metrics",
                                             Shape{std::int64_t(kTagMetricRows), num_labels_})
                                  : plan.add(Region::activations, "epoch_confusion", Shape{num_labels_, num_labels_});
  epoch_scores_id_ = plan.add(Region::activations, "epoch_scores", Shape{epoch_rows, num_labels_});
  epoch_targets_id_ = plan.add(Region::activations, "epoch_targets", Shape{epoch_rows, num_labels_});
  if (augment_waveform_) augmented_pcm_id_ = plan.add(Region::activations, "augmented_pcm", Shape{batch_, window_});
  const Shape input = frontend_->features_shape(batch_);
  step_ = std::make_unique<TrainingStep>(config_, input, num_labels_, sigmoid_loss_, plan, backend);
  model_ = &step_->model();
  optimizer_ = &step_->optimizer();
  arena_ = std::make_unique<Arena>(std::move(plan), backend);
  step_->bind(*arena_);
  const std::vector<bool>& frozen = step_->frozen();
  if (!config_.train.freeze.empty()) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < frozen.size(); ++i)
      if (frozen[i]) names.push_back(model_->parameters()[i].name);
    log_.info("train.freeze: " + std::to_string(names.size()) + " of " + std::to_string(frozen.size()) +
              " parameters fixed (" + joined(names) + ")");
  }
  uploader_ = backend.make_uploader({Shape{batch_, window_}, Shape{batch_, num_labels_}});
  loader_ = std::make_unique<BatchLoader>(data_, window_, default_loader_threads());
  pipeline_ = std::make_unique<WindowPipeline>(backend, *loader_, *uploader_, *frontend_, *model_, batch_);
  ClipEvaluator::Options evaluation;
  evaluation.batch = batch_;
  evaluation.labels = num_labels_;
  evaluation.max_clips = static_cast<std::int64_t>(data_.indices(Split::val).size());
  evaluation.multi_label = multi_label_;
  evaluation.sigmoid_loss = sigmoid_loss_;
  evaluation.scores_to_host = false;
  evaluation.stop_requested = request_.stop_requested;
  evaluation.communicator = communicator_;
  evaluator_ = std::make_unique<ClipEvaluator>(evaluation, backend);
  epoch_loss_sum_ = arena_->get(epoch_loss_sum_id_);
  if (augment_waveform_) augmented_pcm_ = arena_->get(augmented_pcm_id_);
  step_scores_ = arena_->get(step_scores_id_);
  epoch_scores_ = arena_->get(epoch_scores_id_);
  epoch_targets_ = arena_->get(epoch_targets_id_);
  epoch_metric_ = arena_->get(epoch_metric_id_);
  gathered_scores_ = arena_->get(gathered_scores_id_);
  gathered_targets_ = arena_->get(gathered_targets_id_);
  gradient_reducer_ = std::make_unique<GradientReducer>(
      *arena_, model_->parameters(), static_cast<std::size_t>(config_.train.dist.bucket_mb * 1048576.0),
      *communicator_);
  host_loss_ = Tensor::zeros(step_->loss().shape());
  // Data-parallel steps run op by op: their collectives are not captured yet.
  step_graphs_ = std::make_unique<StepGraphs>(backend, config_.train.capture_graph && world_size_ == 1, log_);
  model_hash_ = model_hash(config_);

  std::ostringstream os;
  const std::size_t in_splits = data_.clips_in_splits();
  os << "data: " << config_.data.dataset << ", " << in_splits << " clips";
  if (in_splits < std::size_t(data_.num_clips()))
    os << " (of " << data_.num_clips() << "; the others cannot be decoded or are not in the run's splits)";
  // The labels named, so that a data.root one level off (labels 'gtzan', 'mtat', ...) shows.
  os << " at " << data_.sample_rate << " Hz, " << num_labels_ << (multi_label_ ? " tags (" : " classes (")
     << name_list(data_.label_names, false, 8) << "); split "
     << data_.indices(Split::train).size() << " / " << data_.indices(Split::val).size() << " / "
     << data_.indices(Split::test).size() << "; examples of " << config_.data.clip_seconds << " s, "
     << count_of(eval_cut_.windows_per_clip, "evaluation window") << " per clip";
  log_.info(os.str());
  if (world_size_ > 1) {
    os.str("");
    os << "data-parallel: " << communicator_->describe() << ", batch " << batch_ << " per rank ("
       << batch_ * world_size_ << " per step), gradients averaged in "
       << count_of(gradient_reducer_->buckets().size(), "bucket")
       << (config_.train.capture_graph ? "; the step runs op by op (graph capture is for single-process runs)" : "");
    log_.info(os.str());
  }
  os.str("");
  os << "model: " << config_.model.name << ", " << model_->parameter_count() << " parameters, input "
     << input.str() << ", arena " << std::fixed << std::setprecision(1)
     << arena_->total_bytes() / 1048576.0 << " MiB";
  log_.info(os.str());
}

// skipped_files.txt lists every file left out; one warning line counts them and names the
// first few.
void Trainer::report_skipped_files() const {
  const fs::path list = request_.run_dir / "skipped_files.txt";
  write_skipped_files(data_, list);
  warn_skipped_files(data_, log_, list);
}

void Trainer::train_step(const std::vector<Tensor>& batch, float lr) {
  Backend& backend = context_->backend();
  const auto global_step = static_cast<std::uint64_t>(state_.global_step);
  StepValues values;
  values.dropout_seed = random_bits(config_.train.seed, kDropoutStream, global_step);
  values.waveform_augment_key = random_bits(config_.train.seed, kWaveformAugmentStream, global_step);
  values.spectrogram_mask_key = random_bits(config_.train.seed, kMaskStream, global_step);
  step_->set_step_values(backend, values, state_.global_step + 1 - phase_start_step_, lr);
  step_graphs_->run(batch[0].raw(), [&] { enqueue_step_ops(batch); });
  // The epoch's row offset changes every step, so these two stay outside the graph.
  const std::int64_t first_row = (std::int64_t(state_.step_in_epoch) * world_size_ + rank_) * batch_;
  backend.accumulate_window_scores(step_scores_, first_row, batch_, 1, epoch_scores_);
  backend.accumulate_window_scores(batch[1], first_row, batch_, 1, epoch_targets_);
  pipeline_->release_batch();  // the batch's last reader is enqueued
  ++state_.global_step;
}

void Trainer::enqueue_step_ops(const std::vector<Tensor>& batch) {
  Backend& backend = context_->backend();
  const Tensor& step_values = step_->step_values();
  Tensor features = model_->input();
  if (augment_waveform_) {
    backend.augment_waveform(waveform_augment_, step_values, batch[0], augmented_pcm_);
    frontend_->compute(augmented_pcm_, features);
  } else {
    frontend_->compute(batch[0], features);
  }
  if (mask_spectrogram_) backend.mask_spectrogram(spectrogram_mask_, step_values, features);
  StepInfo step{true, step_values, std::int64_t(rank_) * batch_,
                config_.train.dist.sync_batchnorm ? communicator_ : nullptr};
  step_->forward_and_loss(backend, step, batch[1]);
  backend.output_scores(multi_label_, model_->output(), step_scores_);
  backend.accumulate_sum(step_->loss(), batch_, epoch_loss_sum_);
  step_->backward_and_update(backend, step, gradient_reducer_.get());
}

float Trainer::read_own_loss_sum() {
  Tensor sum = Tensor::zeros(Shape{1});
  context_->backend().copy(epoch_loss_sum_, sum);
  return sum.f32()[0];
}

double Trainer::read_epoch_loss_sum() {
  std::vector<double> total = {read_own_loss_sum()};
  communicator_->all_reduce_host(total);
  return total[0];
}

std::vector<double> Trainer::read_rank_loss_sums() {
  std::vector<double> sums(std::size_t(world_size_), 0.0);
  sums[std::size_t(rank_)] = read_own_loss_sum();
  communicator_->all_reduce_host(sums);
  return sums;
}

void Trainer::gather_epoch_rows() {
  Backend& backend = context_->backend();
  backend.copy(epoch_scores_, gathered_scores_);
  backend.copy(epoch_targets_, gathered_targets_);
  communicator_->all_reduce(gathered_scores_, Reduction::sum);
  communicator_->all_reduce(gathered_targets_, Reduction::sum);
}

bool Trainer::stop_agreed() {
  const bool local = request_.stop_requested && request_.stop_requested();
  if (world_size_ == 1) return local;
  if (state_.global_step % config_.train.log_every_steps != 0) return false;
  std::vector<double> flag = {local ? 1.0 : 0.0};
  communicator_->all_reduce_host(flag);
  return flag[0] > 0.0;
}

double Trainer::train_metric(int steps) {
  Backend& backend = context_->backend();
  const int n = steps * batch_ * world_size_;
  gather_epoch_rows();
  Tensor metric = Tensor::zeros(epoch_metric_.shape());
  if (multi_label_) {
    backend.tag_metrics(gathered_scores_, gathered_targets_, n, 0.5f, epoch_metric_);
    backend.copy(epoch_metric_, metric);
    return macro_auc_from_tag_metrics(metric.f32(), n, num_labels_).roc_auc;
  }
  backend.fill_zero(epoch_metric_);
  backend.accumulate_confusion(gathered_scores_, gathered_targets_, n, epoch_metric_);
  backend.copy(epoch_metric_, metric);
  return classification_report(metric.f32(), num_labels_).accuracy;
}

float Trainer::read_step_loss() {
  context_->backend().copy(step_->loss(), host_loss_);
  std::vector<double> sum = {0.0};
  for (int b = 0; b < batch_; ++b) sum[0] += host_loss_.f32()[b];
  communicator_->all_reduce_host(sum);
  return static_cast<float>(sum[0] / (double(batch_) * world_size_));
}

// Multiframe evaluation of the split (host/inference/clip_evaluator.hpp), reduced to the
// epoch's figures.
Trainer::Evaluation Trainer::evaluate(Split split) {
  // Without synchronised batchnorm each rank's running statistics follow its own batches;
  // rank 0's are the ones a checkpoint saves, so every rank scores its share of the clips
  // with those (as DistributedDataParallel's broadcast_buffers does before each forward).
  // A resumed run, whose ranks all start from rank 0's, then reports the same figures.
  if (world_size_ > 1) {
    Tensor state = arena_->region(Region::state);
    communicator_->broadcast(state, 0);
  }
  const ClipEvaluation clips = evaluator_->evaluate(data_, data_.indices(split), eval_cut_, *pipeline_, *model_);
  Evaluation e;
  e.loss = clips.loss;
  if (multi_label_) {
    const MacroAuc auc = macro_auc_from_tag_metrics(clips.tag_metrics.data(), clips.clips, num_labels_);
    e.metric = auc.roc_auc;
    e.pr_auc = auc.pr_auc;
    // The split is fixed, so the tags it cannot score are said once, as gpu_eval says them.
    if (auc.skipped_tags > 0 && !said_skipped_tags_) {
      log_.warn("validation: " + std::to_string(auc.skipped_tags) + " of " + std::to_string(num_labels_) +
                " tags have only positive or only negative validation clips and are left out of val_roc_auc "
                "and val_pr_auc");
      said_skipped_tags_ = true;
    }
  } else {
    e.metric = classification_report(clips.confusion.data(), num_labels_).accuracy;
  }
  return e;
}

// Keys a resumed run may change: they decide how long it runs, where and how it reports,
// not which steps it takes. (train.threads may change the last bits of sums.) The dataset's
// paths may change too (a dataset moved to another disk): its clips are known by ids
// relative to them, the run keeps its splits.csv and labels.json (a resume checks the
// labels), and the moved files are decoded into a cache of their own; model.init_from acts
// only on a fresh run.
const std::set<std::string> kKeysAResumeMayChange = [] {
  std::set<std::string> keys = {"train.epochs",         "train.max_steps",
                                "train.device",         "train.threads",
                                "train.log_every_steps", "train.capture_graph",
                                "train.checkpoint_every_steps", "train.keep_checkpoints",
                                "train.early_stopping_patience", "train.dist.bucket_mb",
                                "train.dist.timeout_seconds",
                                "model.name"};  // names the default run directory only
  keys.insert(path_keys().begin(), path_keys().end());
  return keys;
}();

// The per-rank batch may change on resume with the world size, as long as the global batch
// (the examples of one step, which decide the steps) stays.
constexpr const char* kGlobalBatch = "the global batch (train.batch_size × ranks)";

std::map<std::string, std::string> Trainer::run_values() const {
  std::map<std::string, std::string> values = config_values(config_);
  values[kGlobalBatch] = std::to_string(batch_ * world_size_);
  return values;
}

void Trainer::check_resumable(const std::map<std::string, std::string>& saved) const {
  const std::map<std::string, std::string> now = run_values();
  // Synchronised batchnorm is the same function as plain batchnorm in one process, so a
  // run of one process may resume on several ranks with it (as the one large batch it was)
  // or without it, and the reverse.
  const auto saved_batch = saved.find("train.batch_size");
  const auto saved_global = saved.find(kGlobalBatch);
  const bool one_process = world_size_ == 1 || (saved_batch != saved.end() && saved_global != saved.end() &&
                                                saved_batch->second == saved_global->second);
  for (const auto& [key, value] : now) {
    if (kKeysAResumeMayChange.count(key) || key == "train.batch_size") continue;
    if (key == "train.dist.sync_batchnorm" && one_process) continue;
    const auto found = saved.find(key);
    const std::string before = found == saved.end() ? "(absent)" : found->second;
    if (before != valid_utf8(value))  // saved as JSON: a Latin-1 path byte became U+FFFD
      CADENZA_USER_ERROR("--resume " << request_.run_dir.string() << ": " << key << " is " << value
                                     << " now but the run was trained with " << before
                                     << "; a resumed run keeps every setting that decides its steps "
                                        "(train.epochs, train.max_steps and the logging keys may change)");
  }
}

bool Trainer::patience_exhausted() const {
  const int patience = config_.train.early_stopping_patience;
  if (patience <= 0) return false;
  return state_.epoch - std::max(state_.best_epoch, 0) >= patience;
}

void Trainer::enter_phase(int epoch) {
  const PhasesConfig& phases = config_.train.phases;
  const int previous = phase_;
  phase_ = static_cast<int>(std::upper_bound(phases.epochs.begin(), phases.epochs.end(), epoch) - phases.epochs.begin());
  if (phase_ != previous) step_graphs_->clear();  // the phase's optimizer may differ
  if (phase_ == 0) return;
  const int start_epoch = phases.epochs[phase_ - 1];
  phase_start_step_ = std::int64_t(start_epoch) * steps_per_epoch_;
  optimizer_->switch_to(phases.optimizer.empty() ? config_.train.optimizer : phases.optimizer);
  if (epoch != start_epoch || state_.step_in_epoch != 0) return;  // resumed inside the phase
  Backend& backend = context_->backend();
  std::ostringstream os;
  os << "phase " << phase_ << " from epoch " << epoch + 1 << ": "
     << (phases.optimizer.empty() ? config_.train.optimizer : phases.optimizer) << ", lr " << phases.lr[phase_ - 1];
  if (phases.reload_best && state_.best_epoch >= 0) {
    load_weights(best_checkpoint_dir(request_.run_dir / "checkpoints", state_) / "model.safetensors",
                 checkpoint_contents().weights,
                 model_hash_, backend);
    os << ", weights of the best epoch (" << state_.best_epoch << ") reloaded";
  }
  optimizer_->reset(backend);
  log_.info(os.str());
}

bool Trainer::metric_improved(double value) const {
  if (std::isnan(value)) return false;  // e.g. ROC-AUC of a validation set with one class
  if (state_.best_epoch < 0) return true;
  return select_metric_ == "val_loss" ? value < state_.best_metric : value > state_.best_metric;
}

CheckpointContents Trainer::checkpoint_contents() const {
  CheckpointContents contents;
  for (const NamedParameter& p : model_->parameters())
    contents.weights.push_back({p.name, arena_->value(p.id)});
  for (const NamedState& s : model_->state()) contents.weights.push_back({s.name, arena_->get(s.id)});
  for (const auto& b : optimizer_->buffers()) contents.trainer_state.push_back({b.name, b.tensor});
  // The epoch's training scores so far, so that a run resumed mid-epoch reports the same
  // training metric as an unbroken one.
  contents.trainer_state.push_back({"train_metric.scores", gathered_scores_});
  contents.trainer_state.push_back({"train_metric.targets", gathered_targets_});
  return contents;
}

void Trainer::log_step(const fs::path& steps_path, int epoch, float lr, int steps_timed, int step_in_epoch,
                       int steps_per_epoch, double seconds) {
  const float loss = read_step_loss();
  if (!std::isfinite(loss))
    CADENZA_USER_ERROR("training diverged: loss is " << loss << " at step " << state_.global_step << " (epoch "
                                                     << epoch + 1 << "); try a lower train.lr");
  if (writes_files_)
    append_line(steps_path, {{"step", state_.global_step},
                             {"epoch", epoch + 1},
                             {"loss", shortest_double(loss)},
                             {"lr", shortest_double(lr)}});
  const double mean_loss = read_epoch_loss_sum() / (double(step_in_epoch) * batch_ * world_size_);
  draw_progress(epoch, steps_timed, step_in_epoch, steps_per_epoch, seconds, mean_loss);
}

void Trainer::draw_progress(int epoch, int steps_timed, int step_in_epoch, int steps_per_epoch, double seconds,
                            double mean_loss) {
  const int global_batch = batch_ * world_size_;
  const double rate = seconds > 0 ? steps_timed * global_batch / seconds : 0.0;
  const double eta = rate > 0 ? (steps_per_epoch - step_in_epoch) * global_batch / rate : 0.0;
  std::ostringstream bar;
  const int width = 24, filled = width * step_in_epoch / steps_per_epoch;
  bar << "epoch " << epoch + 1 << "/" << config_.train.epochs << " [" << std::string(filled, '#')
      << std::string(width - filled, '.') << "] " << step_in_epoch << "/" << steps_per_epoch << "  loss "
      << std::fixed << std::setprecision(4) << mean_loss << "  " << std::setprecision(1) << rate
      << " samples/s  ETA " << format_duration(eta);
  log_.progress_line(bar.str());
}

void Trainer::checkpoint() {
  // Inside an epoch, its loss sum and training-metric rows so far (over every rank) go
  // with the checkpoint; at an epoch's start both are empty, and a resume starts them
  // afresh, so the collectives are skipped (gathered_* may then hold the last epoch's rows).
  const bool inside_epoch = state_.step_in_epoch > 0;
  state_.rank_loss_sums = inside_epoch ? read_rank_loss_sums() : std::vector<double>{};
  state_.epoch_loss_sum = std::accumulate(state_.rank_loss_sums.begin(), state_.rank_loss_sums.end(), 0.0);
  state_.config_values = run_values();
  if (inside_epoch) gather_epoch_rows();
  if (writes_files_)
    save_checkpoint(request_.run_dir / "checkpoints", checkpoint_contents(), state_, model_hash_,
                    config_.train.keep_checkpoints, context_->backend());
  else  // the same weights as rank 0's: stop with it rather than wait for it at the barrier
    require_finite_checkpoint(checkpoint_contents(), state_.global_step, context_->backend());
  communicator_->barrier();  // the checkpoint is complete before any rank reads it
}

void Trainer::require_training_clips(const SplitRecord& recorded) const {
  std::set<std::string> present;
  for (int clip : data_.indices(Split::train))
    if (clip < data_.original_clips) present.insert(data_.clip_ids[std::size_t(clip)]);
  std::vector<std::string> missing;
  for (const auto& [clip, split] : recorded.split_of_clip)
    if (split == Split::train && !present.count(clip)) missing.push_back(clip);
  if (missing.empty()) return;
  CADENZA_USER_ERROR("--resume " << request_.run_dir.string() << ": " << missing.size() << " training clip"
                                 << (missing.size() == 1 ? " of the run is" : "s of the run are")
                                 << " gone from the dataset or no longer decode (" << name_list(missing)
                                 << "); its epochs are drawn from every one of them: restore "
                                 << (missing.size() == 1 ? "it" : "them") << ", or start a new run");
}

// A resume asked for fewer epochs than the checkpoint has begun would train nothing and
// record a config its checkpoints contradict: refused before anything is written.
void Trainer::require_epochs_cover(const TrainerState& saved) const {
  const int epochs = config_.train.epochs;
  if (saved.step_in_epoch > 0 && epochs <= saved.epoch)
    CADENZA_USER_ERROR("train.epochs " << epochs << ": this run is inside epoch " << saved.epoch + 1
                                       << "; resume it with train.epochs " << saved.epoch + 1
                                       << " or more, or evaluate it as it is with gpu_eval");
  if (epochs < saved.epoch)
    CADENZA_USER_ERROR("train.epochs " << epochs << ": this run has trained " << saved.epoch
                                       << " epochs; resume it with train.epochs " << saved.epoch
                                       << " or more, or evaluate it as it is with gpu_eval");
}

TrainOutcome Trainer::run() {
  build();
  const fs::path metrics_path = request_.run_dir / "metrics.jsonl";
  const fs::path steps_path = request_.run_dir / "steps.jsonl";
  if (request_.resume) {
    state_ = load_checkpoint(request_.run_dir / "checkpoints" / "last", checkpoint_contents(), model_hash_,
                             context_->backend(),
                             [&](const TrainerState& saved) {
                               check_resumable(saved.config_values);
                               require_epochs_cover(saved);
                             });
    // Only now, with the checkpoint accepted, does the run directory change.
    if (writes_files_) {
      write_file_atomically(request_.run_dir / "config.yaml", to_yaml(with_absolute_paths(config_)));
      align_best_link(request_.run_dir / "checkpoints", state_);  // killed between the links of a save
      report_skipped_files();
      if (!has_split_record_) {
        log_.warn(request_.run_dir.string() + " has no splits.csv: the splits were made again from the dataset, "
                  "which gives the run's own only if its files are unchanged; they are recorded from now on");
        write_run_split_record(request_.run_dir, data_);
      }
    }
    // Each rank takes back its own loss sum at the world size that saved it; at another,
    // the epoch's sums so far go to rank 0 and zeros to the others, so that the sums over
    // ranks continue from them.
    Backend& backend = context_->backend();
    Tensor restored = Tensor::zeros(Shape{1});
    const bool same_ranks = state_.rank_loss_sums.size() == std::size_t(world_size_);
    restored.f32()[0] = same_ranks     ? static_cast<float>(state_.rank_loss_sums[std::size_t(rank_)])
                        : writes_files_ ? static_cast<float>(state_.epoch_loss_sum)
                                        : 0.0f;  // saved from these floats
    backend.copy(restored, epoch_loss_sum_);
    if (writes_files_) {
      backend.copy(gathered_scores_, epoch_scores_);
      backend.copy(gathered_targets_, epoch_targets_);
    } else {
      backend.fill_zero(epoch_scores_);
      backend.fill_zero(epoch_targets_);
    }
    if (writes_files_) {
      const std::size_t kept = truncate_jsonl(metrics_path, "epoch", state_.epoch);
      truncate_jsonl(steps_path, "step", state_.global_step);
      if (kept < std::size_t(state_.epoch))
        log_.warn(metrics_path.string() + " holds " + std::to_string(kept) + " of the " +
                  std::to_string(state_.epoch) + " epochs finished; the run goes on, and its curves lack the others");
    }
    log_.info("resuming " + request_.run_dir.string() + " at epoch " + std::to_string(state_.epoch + 1) +
              ", step " + std::to_string(state_.global_step));
  } else {
    model_->initialize(hash64(config_.train.seed, kInitStream), context_->backend());
    if (!config_.model.init_from.empty()) {
      // The head: the layer of the last parameter, which gives the scores.
      const InitReport report = load_matching_weights(
          resolve_init_file(config_.model.init_from), checkpoint_contents().weights, data_.label_names,
          data_.multi_label, owning_layer(model_->parameters().back().name), context_->backend());
      log_.info(report.describe());
      if (report.loaded.empty())
        CADENZA_USER_ERROR("model.init_from: " << report.file.string()
                                               << " has no tensor of this model's names and shapes");
    }
    // Every rank starts from rank 0's weights (the same seed gives the same ones; this
    // makes it so whatever the initialisation).
    Tensor parameters = arena_->region(Region::parameters), state = arena_->region(Region::state);
    communicator_->broadcast(parameters, 0);
    communicator_->broadcast(state, 0);
    if (writes_files_) {
      fs::remove(metrics_path);
      fs::remove(steps_path);
    }
  }

  TrainOutcome outcome;
  outcome.metric_name = metric_name_;
  const int epochs = config_.train.epochs;
  const std::vector<int>& train_indices = data_.indices(Split::train);
  const bool has_validation = !data_.indices(Split::val).empty();
  // The learning rate of a step (the phase's, else the schedule's).
  const auto lr_at = [&](std::int64_t step) {
    return phase_ > 0 ? static_cast<float>(config_.train.phases.lr[phase_ - 1])
                      : static_cast<float>(schedule_->lr(step, state_.plateau));
  };
  float lr = 0.0f;
  if (request_.resume && state_.epoch >= epochs) {
    log_.info("the run has trained all its " + std::to_string(epochs) + " epochs; train it longer with --resume " +
              request_.run_dir.string() + " --set train.epochs=N");
    for (const nlohmann::json& j : read_jsonl(metrics_path))
      if (j.contains(metric_name_) && j[metric_name_].is_number()) outcome.last_val_metric = j[metric_name_].get<double>();
  }

  for (int epoch = state_.epoch; epoch < epochs; ++epoch) {
    if (patience_exhausted()) {
      log_.info("early stopping: no better " + select_metric_ + " in the " +
                std::to_string(state_.epoch - std::max(state_.best_epoch, 0)) + " epochs since epoch " +
                std::to_string(std::max(state_.best_epoch, 0)) + " (train.early_stopping_patience " +
                std::to_string(config_.train.early_stopping_patience) + ")");
      outcome.status = TrainOutcome::Status::stopped_early;
      outcome.global_step = state_.global_step;
      outcome.epochs_completed = epoch;
      record_best(outcome);
      return outcome;
    }
    enter_phase(epoch);
    epoch_examples_ = training_epoch(train_indices, data_.lengths, data_.primary_label, window_, sampler_, epoch);
    const int steps_per_epoch = static_cast<int>(epoch_examples_.size() / batch_);
    const auto epoch_start = Clock::now();
    const int first_step = state_.step_in_epoch;
    if (first_step == 0) {  // a resumed epoch keeps the rows its checkpoint restored
      context_->backend().fill_zero(epoch_scores_);
      context_->backend().fill_zero(epoch_targets_);
    }
    if (first_step < steps_per_epoch) pipeline_->start_fill(epoch_examples_, std::size_t(first_step) * batch_, batch_);
    for (int s = first_step; s < steps_per_epoch; ++s) {
      if (stop_agreed()) {
        log_.end_progress();
        checkpoint();  // the tool's last line says where the run stopped and how to go on
        outcome.status = TrainOutcome::Status::interrupted;
        outcome.global_step = state_.global_step;
        outcome.epochs_completed = epoch;
        return outcome;
      }
      if (config_.train.max_steps > 0 && state_.global_step >= config_.train.max_steps) {
        log_.end_progress();
        checkpoint();  // as above
        outcome.status = TrainOutcome::Status::reached_max_steps;
        outcome.global_step = state_.global_step;
        outcome.epochs_completed = epoch;
        return outcome;
      }
      const std::vector<Tensor> batch = pipeline_->upload_batch();
      // The next batch is read on the loader's threads while the device computes this step.
      if (s + 1 < steps_per_epoch) pipeline_->start_fill(epoch_examples_, std::size_t(s + 1) * batch_, batch_);
      lr = lr_at(state_.global_step);
      train_step(batch, lr);
      state_.step_in_epoch = s + 1;
      if (state_.global_step % config_.train.log_every_steps == 0) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - epoch_start).count();
        log_step(steps_path, epoch, lr, s + 1 - first_step, s + 1, steps_per_epoch, elapsed);
      }
      // After the step's line in steps.jsonl: a resume keeps the lines up to its checkpoint's
      // step and logs from the next one, so the line must exist before the checkpoint does.
      if (config_.train.checkpoint_every_steps > 0 &&
          state_.global_step % config_.train.checkpoint_every_steps == 0 && s + 1 < steps_per_epoch)
        checkpoint();
    }
    const double train_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const double train_loss = read_epoch_loss_sum() / (double(steps_per_epoch) * batch_ * world_size_);
    // The bar left complete, as Keras leaves it, above the epoch's line.
    if (steps_per_epoch > first_step)
      draw_progress(epoch, steps_per_epoch - first_step, steps_per_epoch, steps_per_epoch, train_seconds, train_loss);
    log_.end_progress();
    if (!std::isfinite(train_loss))
      CADENZA_USER_ERROR("training diverged: the mean loss of epoch " << epoch + 1 << " is " << train_loss
                                                                       << "; try a lower train.lr");
    const std::string train_metric_name = multi_label_ ? "train_roc_auc" : "train_accuracy";
    const double train_metric_value = train_metric(steps_per_epoch);
    nlohmann::json line = {{"epoch", epoch + 1}, {"global_step", state_.global_step},
                           {"train_loss", train_loss}, {train_metric_name, train_metric_value}};
    std::ostringstream summary;
    summary << "epoch " << epoch + 1 << "/" << epochs << "  train_loss " << std::fixed
            << std::setprecision(4) << train_loss << "  " << train_metric_name << " " << train_metric_value;
    bool is_best = !has_validation;
    bool lr_reduced = false;
    if (has_validation) {
      std::optional<Evaluation> evaluated;
      try {
        evaluated = evaluate(Split::val);
      } catch (const Interrupted&) {
        // The epoch's steps are kept: its checkpoint holds the sums so far, and a resume
        // starts with this validation.
        checkpoint();
        log_.info("stopped during validation: checkpoint at step " + std::to_string(state_.global_step) +
                  " written; a resume validates epoch " + std::to_string(epoch + 1) + " first");
        outcome.status = TrainOutcome::Status::interrupted;
        outcome.global_step = state_.global_step;
        outcome.epochs_completed = epoch;
        return outcome;
      }
      const Evaluation& e = *evaluated;
      line["val_loss"] = e.loss;
      line[metric_name_] = e.metric;
      if (multi_label_) line["val_pr_auc"] = e.pr_auc;
      summary << "  val_loss " << e.loss << "  " << metric_name_ << " " << e.metric;
      if (multi_label_) summary << "  val_pr_auc " << e.pr_auc;
      const double selected = select_metric_ == "val_loss"     ? e.loss
                              : select_metric_ == "val_pr_auc" ? e.pr_auc
                                                               : e.metric;
      is_best = metric_improved(selected);
      lr_reduced = schedule_->observe(selected, select_metric_ == "val_loss", state_.plateau);
      if (is_best) {
        state_.best_metric = selected;
        state_.best_epoch = epoch + 1;
      }
      outcome.last_val_metric = e.metric;
    }
    // A run resumed after its epoch's last step (stopped during validation) ran no step to time.
    const bool stepped = first_step < steps_per_epoch;
    if (!stepped) lr = lr_at(state_.global_step - 1);  // the epoch's last step's, for its line
    const double rate =
        train_seconds > 0 ? double(steps_per_epoch - first_step) * batch_ * world_size_ / train_seconds : 0.0;
    if (stepped) line["samples_per_s"] = rate;
    line["lr"] = shortest_double(lr);
    if (stepped) line["seconds"] = train_seconds;
    if (writes_files_) append_line(metrics_path, line);
    if (stepped) summary << "  " << std::setprecision(1) << rate << " samples/s, " << format_duration(train_seconds);
    summary << (is_best && has_validation ? "  (best)" : "");
    log_.info(summary.str());
    if (lr_reduced) {
      std::ostringstream reduced;
      reduced << "plateau: no better " << select_metric_ << " for more than " << config_.train.schedule.patience
              << " epochs; lr " << lr << " -> " << schedule_->lr(state_.global_step, state_.plateau);
      log_.info(reduced.str());
    }

    state_.epoch = epoch + 1;
    state_.step_in_epoch = 0;
    if (is_best) state_.best_step = state_.global_step;  // this epoch's checkpoint becomes `best`
    context_->backend().fill_zero(epoch_loss_sum_);
    checkpoint();
  }
  outcome.global_step = state_.global_step;
  outcome.epochs_completed = epochs;
  record_best(outcome);
  return outcome;
}

void Trainer::record_best(TrainOutcome& outcome) const {
  outcome.select_metric = select_metric_;
  if (state_.best_epoch < 1 || !std::isfinite(state_.best_metric)) return;
  outcome.best_metric = state_.best_metric;
  outcome.best_epoch = state_.best_epoch;
}

// What every rank of a job must agree on: the config but for what may be each rank's own
// (its device and threads; dataset, cache and init_from paths, which may be mounted at other
// places on other nodes and are read or broadcast by rank 0 first), the run directory
// every rank reads checkpoints from, and whether the run resumes.
std::vector<std::pair<std::string, std::string>> settings_ranks_share(const Config& config,
                                                                      const TrainRequest& request) {
  static const std::set<std::string> kPerRank = [] {
    std::set<std::string> keys = {"train.device", "train.threads"};
    keys.insert(path_keys().begin(), path_keys().end());
    return keys;
  }();
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [key, value] : config_values(config))
    if (!kPerRank.count(key)) entries.emplace_back(key, value);
  entries.emplace_back("the run directory", fs::absolute(request.run_dir).lexically_normal().string());
  entries.emplace_back("--resume", request.resume ? "given" : "not given");
  return entries;
}

}  // namespace

TrainOutcome run_training(const Config& config, const TrainRequest& request, Logger& logger) {
  if (request.communicator)
    require_same_on_every_rank(settings_ranks_share(config, request), *request.communicator,
                               "give every rank the same config and --set options, and the same --run-dir on "
                               "storage every rank reaches");
  // Rank 0 holds the run directory's lock for the whole run: a second gpu_train on the
  // same directory (a fresh run or a --resume) would interleave its files with this one's.
  std::optional<FileLock> lock;
  if (!request.communicator || request.communicator->rank() == 0) {
    make_output_folder(request.run_dir, "run directory");
    lock = FileLock::try_acquire(request.run_dir / ".lock");
    if (!lock)
      CADENZA_USER_ERROR("run directory " << request.run_dir.string()
                                          << " is in use by another gpu_train; wait for it to end or choose "
                                             "another --run-dir");
    if (!request.resume) write_file_atomically(request.run_dir / "config.yaml", to_yaml(with_absolute_paths(config)));
  }
  Trainer trainer(config, request, logger);
  TrainOutcome outcome;
  try {
    outcome = trainer.run();
  } catch (const std::exception& e) {
    // Before the trainer's buffers are freed: on the GPU that waits for the device, and
    // so for a collective of this rank's that its peers will never join.
    if (request.communicator) request.communicator->abandon(e.what());
    throw;
  }
  // The curves are a view of metrics.jsonl, drawn while the lock is held; a failure to
  // draw them costs the run nothing.
  if (lock && outcome.status != TrainOutcome::Status::interrupted) {
    try {
      write_training_curves(request.run_dir / "metrics.jsonl", request.run_dir);
    } catch (const std::exception& e) {
      logger.warn(std::string("training curves not drawn: ") + e.what());
    }
  }
  return outcome;
}

}  // namespace cadenza
