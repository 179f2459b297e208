// WindowPipeline: batches of audio windows from the loader's threads through the upload to
// the device, the front-end and the model — the one path that training, evaluation,
// prediction and embedding share.
//
// Invariants:
// - At most one fill is in flight; while the device computes on batch i, the loader reads
//   batch i + 1 into the uploader's other host buffers.
// - A batch is always full (B rows): a short last batch repeats its first window in the
//   rows past `count`, and callers ignore those rows.
// - Inference runs the model with StepInfo{training = false}: batch normalisation uses its
//   running statistics and dropout passes values through.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "host/core/tensor.hpp"
#include "host/data/batch_loader.hpp"
#include "host/model/model.hpp"
#include "host/ops/backend.hpp"

namespace cadenza {

class WindowPipeline {
 public:
  // `uploader` moves (pcm (B, S), targets (B, K)) batches; `frontend` turns pcm into the
  // model's input.
  WindowPipeline(Backend& backend, BatchLoader& loader, BatchUploader& uploader, Frontend& frontend, Model& model,
                 int batch);

  int batch() const { return batch_; }
  // Starts reading windows[first, first + count) on the loader's threads.
  void start_fill(const std::vector<ClipWindow>& windows, std::size_t first, int count);
  // Waits for the fill and uploads it; returns the device tensors (pcm, targets).
  std::vector<Tensor> upload_batch();
  // Lets the uploader reuse the batch's host buffers once the work enqueued so far is done.
  void release_batch() { uploader_.release_after_compute(); }

  // Runs the model in inference mode over every window, a batch at a time. After each
  // batch's forward pass, calls on_batch(targets, first, count): the model's output (and
  // every layer's) holds the batch's rows, of which the first `count` are windows[first...].
  // Returns false when it ended early because `stop_requested` answered true (asked after
  // each batch but the last; no fill is left in flight), true when every window ran.
  bool run_inference(const std::vector<ClipWindow>& windows,
                     const std::function<void(const Tensor& targets, std::size_t first, int count)>& on_batch,
                     const std::function<bool()>& stop_requested = {});

 private:
  Backend& backend_;
  BatchLoader& loader_;
  BatchUploader& uploader_;
  Frontend& frontend_;
  Model& model_;
  int batch_;
};

}  // namespace cadenza
