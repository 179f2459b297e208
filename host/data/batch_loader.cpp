// BatchLoader: a small pool of threads that wait for a fill, each write the rows
// b = worker, worker + threads, ..., and report back. See batch_loader.hpp.
#include "host/data/batch_loader.hpp"

#include <algorithm>
#include <utility>

#include "host/core/error.hpp"

namespace cadenza {

int default_loader_threads() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::clamp(cores / 4, 1, 4);
}

BatchLoader::BatchLoader(const Dataset& data, std::int64_t window, int threads) : data_(data), window_(window) {
  CADENZA_CHECK(threads >= 1 && window > 0, "loader threads " << threads << ", window " << window);
  for (int w = 0; w < threads; ++w) threads_.emplace_back([this, w] { work(w); });
}

BatchLoader::~BatchLoader() {
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return pending_ == 0; });
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

void BatchLoader::start(const std::vector<ClipWindow>& examples, std::size_t first, int count, Tensor pcm,
                        Tensor targets) {
  const std::int64_t rows = pcm.dim(0);
  CADENZA_CHECK(count >= 1 && count <= rows && first + std::size_t(count) <= examples.size(),
                "fill of " << count << " examples from " << first << " of " << examples.size() << " into "
                           << rows << " rows");
  CADENZA_CHECK(pcm.shape() == (Shape{rows, window_}) && targets.shape() == (Shape{rows, data_.num_labels()}),
                "batch buffers " << pcm.shape().str() << ", " << targets.shape().str());
  {
    std::lock_guard lock(mutex_);
    CADENZA_CHECK(!in_flight_, "BatchLoader::start before the previous fill was waited for");
    examples_ = &examples;
    first_ = first;
    count_ = count;
    pcm_ = std::move(pcm);
    targets_ = std::move(targets);
    pending_ = static_cast<int>(threads_.size());
    in_flight_ = true;
    ++generation_;
  }
  changed_.notify_all();
}

void BatchLoader::wait() {
  std::unique_lock lock(mutex_);
  if (!in_flight_) return;
  changed_.wait(lock, [this] { return pending_ == 0; });
  in_flight_ = false;
  pcm_ = Tensor();
  targets_ = Tensor();
  if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
}

void BatchLoader::work(int worker) {
  std::uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    std::exception_ptr failure;
    try {
      fill_rows(worker);
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      if (failure && !failure_) failure_ = failure;
      --pending_;
    }
    changed_.notify_all();
  }
}

// Reads only members start() set before it bumped the generation, under the mutex.
void BatchLoader::fill_rows(int worker) {
  const std::int64_t rows = pcm_.dim(0);
  const int labels = data_.num_labels();
  for (std::int64_t b = worker; b < rows; b += std::int64_t(threads_.size())) {
    const ClipWindow& example = (*examples_)[first_ + std::size_t(b < count_ ? b : 0)];
    data_.audio->read(example.clip, example.offset, window_, pcm_.f32() + b * window_);
    std::copy_n(data_.clip_targets(example.clip), labels, targets_.f32() + b * labels);
  }
}

}  // namespace cadenza
