// BatchLoader: fills a batch's host buffers (PCM windows and targets) on background
// threads, so that the next batch is read while the device computes on this one.
//
// Invariants:
// - At most one fill is in flight: start() requires that the previous fill was waited for.
// - A fill's result depends only on the examples, never on the thread count or timing:
//   every row is written by exactly one thread, from ClipAudio::read (thread-safe).
// - An exception thrown by a fill is rethrown by the wait() that follows it.
// - The destructor waits for a fill in flight and joins the threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "host/core/tensor.hpp"
#include "host/data/dataset.hpp"
#include "host/data/sampler.hpp"

namespace cadenza {

// The loader threads training uses: a quarter of the cores, 1 to 4 — enough to read a
// batch well within a GPU step (docs/PERFORMANCE.md), few enough to leave the cores to the
// CPU backend's compute.
int default_loader_threads();

class BatchLoader {
 public:
  // Reads windows of `window` samples of `data`'s clips on `threads` threads (>= 1).
  BatchLoader(const Dataset& data, std::int64_t window, int threads);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Starts filling pcm (B, window) and targets (B, labels), host tensors, with examples
  // [first, first + count) of `examples` (count <= B); rows past count repeat the first
  // example (evaluation pads its last batch so). Returns at once; `examples` and the
  // tensors' memory must stay valid until wait() returns.
  void start(const std::vector<ClipWindow>& examples, std::size_t first, int count, Tensor pcm, Tensor targets);
  // Waits for the fill start() began.
  void wait();
  // Fills at once on the calling thread's behalf: start() then wait().
  void fill(const std::vector<ClipWindow>& examples, std::size_t first, int count, Tensor pcm, Tensor targets) {
    start(examples, first, count, std::move(pcm), std::move(targets));
    wait();
  }

 private:
  void work(int worker);
  void fill_rows(int worker);

  const Dataset& data_;
  std::int64_t window_;
  std::vector<std::thread> threads_;

  std::mutex mutex_;
  std::condition_variable changed_;
  // The fill in flight; `generation` counts fills, `pending` the workers still on it.
  const std::vector<ClipWindow>* examples_ = nullptr;
  std::size_t first_ = 0;
  int count_ = 0;
  Tensor pcm_, targets_;
  std::uint64_t generation_ = 0;
  int pending_ = 0;
  bool in_flight_ = false;
  bool stopping_ = false;
  std::exception_ptr failure_;
};

}  // namespace cadenza
