// ClipEvaluator: multiframe evaluation with the averaging and counting on the device.
#include "host/inference/clip_evaluator.hpp"

#include <algorithm>
#include <cmath>

#include "host/core/error.hpp"
#include "host/math/metric_math.hpp"

namespace cadenza {
namespace {

// The most windows per clip data.eval_windows 0 chooses (Won et al.'s 16).
constexpr int kMaxAutoEvalWindows = 16;

std::vector<float> to_host(Backend& backend, const Tensor& device) {
  Tensor host = Tensor::zeros(device.shape());
  backend.copy(device, host);
  return std::vector<float>(host.f32(), host.f32() + host.numel());
}

}  // namespace

int choose_eval_windows(int configured, const Dataset& data, std::int64_t window, std::int64_t drop) {
  if (configured > 0) return configured;
  std::vector<std::int64_t> lengths;
  for (Split s : {Split::val, Split::test})
    for (int clip : data.indices(s)) lengths.push_back(data.lengths[clip]);
  if (lengths.empty()) return 1;
  std::nth_element(lengths.begin(), lengths.begin() + lengths.size() / 2, lengths.end());
  const std::int64_t median = lengths[lengths.size() / 2];
  return static_cast<int>(std::clamp<std::int64_t>((median - 2 * drop) / window, 1, kMaxAutoEvalWindows));
}

ClipEvaluator::ClipEvaluator(const Options& options, Backend& backend) : options_(options), backend_(backend) {
  const std::int64_t b = options.batch, k = options.labels, c = std::max<std::int64_t>(1, options.max_clips);
  ArenaPlan plan;
  const BufferId loss = plan.add(Region::activations, "eval_window_loss", Shape{b});
  const BufferId window_scores = plan.add(Region::activations, "eval_window_scores", Shape{b, k});
  const BufferId clip_scores = plan.add(Region::activations, "eval_clip_scores", Shape{c, k});
  const BufferId clip_targets = plan.add(Region::activations, "eval_clip_targets", Shape{c, k});
  const BufferId metrics =
      options.multi_label ? plan.add(Region::activations, "eval_tag_metrics", Shape{std::int64_t(kTagMetricRows), k})
                          : plan.add(Region::activations, "eval_confusion", Shape{k, k});
  const BufferId loss_sum = plan.add(Region::activations, "eval_loss_sum", Shape{1});
  BufferId embeddings;
  if (options.embedding_width > 0)
    embeddings = plan.add(Region::activations, "eval_clip_embeddings", Shape{c, options.embedding_width});
  arena_ = std::make_unique<Arena>(std::move(plan), backend);
  window_loss_ = arena_->get(loss);
  window_scores_ = arena_->get(window_scores);
  clip_scores_ = arena_->get(clip_scores);
  clip_targets_ = arena_->get(clip_targets);
  metrics_ = arena_->get(metrics);
  loss_sum_ = arena_->get(loss_sum);
  if (options.embedding_width > 0) clip_embeddings_ = arena_->get(embeddings);
}

ClipEvaluation ClipEvaluator::evaluate(const Dataset& data, const std::vector<int>& clips,
                                       const EvaluationWindows& cut, WindowPipeline& pipeline, Model& model) {
  const int clip_count = static_cast<int>(clips.size());
  const int k = options_.labels;
  CADENZA_CHECK(clip_count <= options_.max_clips && data.num_labels() == k,
                "ClipEvaluator: " << clip_count << " clips of " << data.num_labels() << " labels for buffers of "
                                  << options_.max_clips << " clips of " << k);
  // This rank's share: clips [share_begin, share_end), whose windows are numbered from the
  // share's first clip on, so they land in their own clip rows.
  Communicator* communicator = options_.communicator;
  const int rank = communicator ? communicator->rank() : 0, ranks = communicator ? communicator->world_size() : 1;
  const auto share_begin = static_cast<std::size_t>(std::int64_t(clip_count) * rank / ranks);
  const auto share_end = static_cast<std::size_t>(std::int64_t(clip_count) * (rank + 1) / ranks);
  const std::vector<int> share(clips.begin() + std::ptrdiff_t(share_begin), clips.begin() + std::ptrdiff_t(share_end));
  const std::vector<ClipWindow> windows =
      evaluation_windows(share, data.lengths, cut.window, cut.windows_per_clip, cut.drop);
  const auto window_offset = static_cast<std::int64_t>(share_begin) * cut.windows_per_clip;
  ClipEvaluation result;
  result.clips = clip_count;
  result.labels = k;
  result.windows_per_clip = cut.windows_per_clip;
  result.targets.resize(std::size_t(clip_count) * k);
  for (int c = 0; c < clip_count; ++c)
    std::copy_n(data.clip_targets(clips[c]), k, result.targets.begin() + std::size_t(c) * k);
  Tensor targets = Tensor::zeros(clip_targets_.shape());
  std::copy(result.targets.begin(), result.targets.end(), targets.f32());
  backend_.copy(targets, clip_targets_);
  backend_.fill_zero(clip_scores_);
  backend_.fill_zero(metrics_);
  backend_.fill_zero(loss_sum_);
  if (options_.embedding_width > 0) backend_.fill_zero(clip_embeddings_);

  Tensor no_gradient;
  const bool complete = pipeline.run_inference(windows, [&](const Tensor& batch_targets, std::size_t first, int count) {
    const Tensor logits = model.output();
    if (options_.sigmoid_loss)
      backend_.sigmoid_bce(logits, batch_targets, window_loss_, no_gradient, 1.0f);
    else
      backend_.softmax_cross_entropy(logits, batch_targets, 0.0f, window_loss_, no_gradient, 1.0f);
    backend_.output_scores(options_.multi_label, logits, window_scores_);
    const auto first_window = window_offset + static_cast<std::int64_t>(first);
    backend_.accumulate_window_scores(window_scores_, first_window, count, cut.windows_per_clip, clip_scores_);
    if (options_.embedding_width > 0) {
      const Tensor features = model.embedding();
      CADENZA_CHECK(features.dim(1) == options_.embedding_width,
                    "ClipEvaluator: embedding " << features.shape().str() << ", expected width "
                                                << options_.embedding_width);
      backend_.accumulate_window_scores(features, first_window, count, cut.windows_per_clip, clip_embeddings_);
    }
    backend_.accumulate_sum(window_loss_, count, loss_sum_);
  }, options_.stop_requested);
  if (options_.stop_requested) {
    // Every rank learns whether any stopped before the collectives below.
    std::vector<double> stopped = {complete ? 0.0 : 1.0};
    if (communicator) communicator->all_reduce_host(stopped);
    if (stopped[0] > 0.0) throw Interrupted("evaluation stopped");
  }

  if (communicator) {
    communicator->all_reduce(clip_scores_, Reduction::sum);
    communicator->all_reduce(loss_sum_, Reduction::sum);
    if (options_.embedding_width > 0) communicator->all_reduce(clip_embeddings_, Reduction::sum);
  }
  const std::size_t n = std::size_t(clip_count) * std::size_t(cut.windows_per_clip);
  result.loss = n ? double(to_host(backend_, loss_sum_)[0]) / double(n) : std::nan("");
  if (options_.scores_to_host) {
    result.scores = to_host(backend_, clip_scores_);
    result.scores.resize(std::size_t(clip_count) * k);
  }
  if (options_.multi_label) {
    backend_.tag_metrics(clip_scores_, clip_targets_, clip_count, options_.threshold, metrics_);
    result.tag_metrics = to_host(backend_, metrics_);
    result.threshold = options_.threshold;
  } else {
    backend_.accumulate_confusion(clip_scores_, clip_targets_, clip_count, metrics_);
    result.confusion = to_host(backend_, metrics_);
  }
  if (options_.embedding_width > 0) {
    result.embeddings = to_host(backend_, clip_embeddings_);
    result.embeddings.resize(std::size_t(clip_count) * options_.embedding_width);
  }
  return result;
}

}  // namespace cadenza
