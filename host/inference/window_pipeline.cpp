// WindowPipeline: the shared batch path (loader → upload → front-end → model).
#include "host/inference/window_pipeline.hpp"

#include <algorithm>

namespace cadenza {

WindowPipeline::WindowPipeline(Backend& backend, BatchLoader& loader, BatchUploader& uploader, Frontend& frontend,
                               Model& model, int batch)
    : backend_(backend), loader_(loader), uploader_(uploader), frontend_(frontend), model_(model), batch_(batch) {}

void WindowPipeline::start_fill(const std::vector<ClipWindow>& windows, std::size_t first, int count) {
  const std::vector<Tensor> host = uploader_.next_host_buffers();
  loader_.start(windows, first, count, host[0], host[1]);
}

std::vector<Tensor> WindowPipeline::upload_batch() {
  loader_.wait();
  return uploader_.submit();
}

bool WindowPipeline::run_inference(
    const std::vector<ClipWindow>& windows,
    const std::function<void(const Tensor& targets, std::size_t first, int count)>& on_batch,
    const std::function<bool()>& stop_requested) {
  const std::size_t n = windows.size();
  const auto batch_size = static_cast<std::size_t>(batch_);
  if (n > 0) start_fill(windows, 0, static_cast<int>(std::min(batch_size, n)));
  for (std::size_t first = 0; first < n; first += batch_size) {
    const int count = static_cast<int>(std::min(batch_size, n - first));
    const std::vector<Tensor> batch = upload_batch();
    const std::size_t next = first + batch_size;
    if (next < n) start_fill(windows, next, static_cast<int>(std::min(batch_size, n - next)));
    Tensor features = model_.input();
    frontend_.compute(batch[0], features);
    model_.forward(backend_, StepInfo{});
    on_batch(batch[1], first, count);
    release_batch();
    if (stop_requested && next < n && stop_requested()) {
      loader_.wait();  // the next batch's fill, started above, is dropped
      return false;
    }
  }
  return true;
}

}  // namespace cadenza
