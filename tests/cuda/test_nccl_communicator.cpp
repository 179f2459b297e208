// [cuda][dist] The NCCL communicator on real GPUs: world size 1 on one GPU (every
// collective leaves its values as they are), and two ranks as two threads of this process
// on two GPUs ([multigpu]; the unique id travels through a promise), checking all-reduce
// sum and average, broadcast from rank 1 and the host all-reduce against exact values,
// that a rank whose error unwinds past its communicator aborts it at once rather than
// waiting for a collective its peer never joins, and that abandon() (the trainer's call on
// an error) lets the rank free a collective's buffer at once.
// Without a GPU the binary skips as a whole (cuda_test_main.cpp); the [multigpu] cases run
// as their own CTest entry with --min-devices 2, which skips on a machine with one GPU (and
// fails there when CADENZA_REQUIRE_GPU asks for 2); run any other way with one GPU they fail
// saying why, rather than pass without running. Without NCCL in the build the factory must
// refuse with a UserError, and that is all these tests check.
#include <catch2/catch.hpp>

#ifdef CADENZA_WITH_CUDA

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cuda/cuda_backend.cuh"
#include "cuda/nccl_communicator.cuh"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/cpu/cpu_backend.hpp"

using namespace cadenza;

constexpr double kTimeoutSeconds = 60.0;

#ifdef CADENZA_WITH_NCCL

namespace {

// A device tensor owned by the test, filled from and read back to host values.
class DeviceTensor {
 public:
  DeviceTensor(Backend& backend, const std::vector<float>& values) : backend_(backend) {
    const Shape shape{static_cast<std::int64_t>(values.size())};
    tensor_ = Tensor::view(backend.allocate(values.size() * sizeof(float)), shape, DType::f32, backend.device());
    set(values);
  }
  ~DeviceTensor() { backend_.release(tensor_.raw()); }
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;

  Tensor& tensor() { return tensor_; }
  void set(const std::vector<float>& values) {
    Tensor host = Tensor::zeros(tensor_.shape());
    std::copy(values.begin(), values.end(), host.f32());
    backend_.copy(host, tensor_);
  }
  // Waits for the compute stream (the backend's copy to the host does).
  std::vector<float> values() {
    Tensor host = Tensor::zeros(tensor_.shape());
    backend_.copy(tensor_, host);
    return std::vector<float>(host.f32(), host.f32() + host.numel());
  }

 private:
  Backend& backend_;
  Tensor tensor_;
};

std::vector<float> ramp(int n, float scale, float offset) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = scale * static_cast<float>(i + 1) + offset;
  return v;
}

// What one rank of the two-rank run saw, checked on the test's thread (Catch2's
// assertions are not thread-safe).
struct RankResult {
  std::vector<float> sum, average, broadcast;
  std::vector<double> host;
  std::string describe;
};

// Rank 0's NCCL id handed to the other rank threads of one process, as the TCP rendezvous
// hands it to other processes. A rank 0 that fails before sharing it calls fail(), so that
// the others stop waiting.
class InProcessIdExchange {
 public:
  cuda::ShareFromRoot share_for(int rank) {
    return [this, rank](const std::vector<char>& payload) {
      if (rank == 0) {
        promise_.set_value(payload);
        return payload;
      }
      if (future_.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
        throw Error("rank 1: rank 0 did not share the NCCL id within 60 s");
      return future_.get();
    };
  }
  void fail(std::exception_ptr error) {
    try {
      promise_.set_exception(error);
    } catch (const std::future_error&) {
      // the id was shared already
    }
  }

 private:
  std::promise<std::vector<char>> promise_;
  std::shared_future<std::vector<char>> future_ = promise_.get_future().share();
};

// The [multigpu] cases need two GPUs. CTest runs them as cuda_multigpu, with
// --min-devices 2: on a machine with fewer the process skips as a whole (exit 77, which
// CTest lists as skipped). Run another way with fewer, they fail saying so; they never
// pass without having run.
void require_two_gpus() {
  const CudaAvailability cuda = probe_cuda();
  if (cuda.device_count < 2)
    FAIL("needs 2 CUDA devices, found " << cuda.device_count
                                        << "; run the [multigpu] cases with --min-devices 2 (CTest's cuda_multigpu), "
                                           "which skips them on a machine with fewer");
}

// Runs `rank_body(rank, rank0_ended)` for ranks 0 and 1 of one job, rank 1 on a thread of
// its own; `rank0_ended` becomes ready once rank 0's body has ended, however it ended, for a
// rank 1 that must outlast it. An exception a body lets escape is rethrown here once both
// have ended (rank 0's first also ends rank 1's wait for the NCCL id).
void run_two_ranks(InProcessIdExchange& ids,
                   const std::function<void(int, const std::shared_future<void>&)>& rank_body) {
  std::promise<void> rank0_end;
  const std::shared_future<void> rank0_ended = rank0_end.get_future().share();
  std::exception_ptr escaped[2];
  auto run_rank = [&](int rank) {
    try {
      rank_body(rank, rank0_ended);
    } catch (...) {
      escaped[rank] = std::current_exception();
      if (rank == 0) ids.fail(std::current_exception());
    }
    if (rank == 0) rank0_end.set_value();
  };
  std::thread rank1(run_rank, 1);
  run_rank(0);
  rank1.join();
  for (const std::exception_ptr& error : escaped)
    if (error) std::rethrow_exception(error);
}

}  // namespace

TEST_CASE("NCCL communicator of world size 1 leaves values as they are", "[cuda][dist]") {
  cuda::CudaBackend gpu(0);
  const cuda::ShareFromRoot identity = [](const std::vector<char>& payload) { return payload; };
  std::unique_ptr<Communicator> comm = cuda::make_nccl_communicator(gpu, 0, 1, identity, kTimeoutSeconds);
  REQUIRE(comm->rank() == 0);
  REQUIRE(comm->world_size() == 1);
  CHECK_THAT(comm->describe(), Catch::StartsWith("NCCL 2.") && Catch::EndsWith(", 1 rank"));

  const std::vector<float> expected = ramp(1000, 0.25f, -3.0f);
  DeviceTensor t(gpu, expected);

  SECTION("all-reduce average of [1000]") {
    comm->all_reduce(t.tensor(), Reduction::average);
    CHECK(t.values() == expected);
  }
  SECTION("two started all-reduces of [1000], one wait") {
    DeviceTensor u(gpu, expected);
    comm->start_all_reduce(t.tensor(), Reduction::sum);
    comm->start_all_reduce(u.tensor(), Reduction::average);
    comm->wait_all();
    CHECK(t.values() == expected);
    CHECK(u.values() == expected);
  }
  SECTION("broadcast from root 0 of [1000]") {
    comm->broadcast(t.tensor(), 0);
    CHECK(t.values() == expected);
  }
  SECTION("host all-reduce of 3 values, then a barrier") {
    std::vector<double> values{1.5, -2.0, 1e300};
    comm->all_reduce_host(values);
    CHECK(values == std::vector<double>{1.5, -2.0, 1e300});
    comm->barrier();
  }
}

TEST_CASE("NCCL communicator refuses a backend that is not CUDA", "[cuda][dist]") {
  CpuBackend cpu(1);
  const cuda::ShareFromRoot identity = [](const std::vector<char>& payload) { return payload; };
  CHECK_THROWS_WITH(cuda::make_nccl_communicator(cpu, 0, 1, identity, kTimeoutSeconds),
                    Catch::Contains("not the CUDA backend"));
}

TEST_CASE("NCCL communicator over two GPUs, one thread per rank", "[cuda][dist][multigpu]") {
  require_two_gpus();
  constexpr int kWorld = 2;
  constexpr int n = 4099;  // not a multiple of NCCL's chunk sizes
  InProcessIdExchange ids;
  std::vector<RankResult> results(kWorld);

  run_two_ranks(ids, [&](int rank, const std::shared_future<void>&) {
    RankResult& result = results[static_cast<std::size_t>(rank)];
    cuda::CudaBackend gpu(rank);
    std::unique_ptr<Communicator> comm =
        cuda::make_nccl_communicator(gpu, rank, kWorld, ids.share_for(rank), kTimeoutSeconds);
    result.describe = comm->describe();
    const float r = static_cast<float>(rank + 1);
    // Rank r holds (r + 1) * (i + 1): sums 3 (i + 1) and averages 1.5 (i + 1), exact in f32.
    DeviceTensor sum(gpu, ramp(n, r, 0.0f));
    DeviceTensor average(gpu, ramp(n, r, 0.0f));
    comm->start_all_reduce(sum.tensor(), Reduction::sum);
    comm->start_all_reduce(average.tensor(), Reduction::average);
    comm->wait_all();
    result.sum = sum.values();
    result.average = average.values();
    // Rank 1 holds 7 + (i + 1); rank 0 holds -(i + 1), which must be overwritten.
    DeviceTensor broadcast(gpu, rank == 1 ? ramp(n, 1.0f, 7.0f) : ramp(n, -1.0f, 0.0f));
    comm->broadcast(broadcast.tensor(), 1);
    result.broadcast = broadcast.values();
    result.host = {double(rank + 1), 10.0 * (rank + 1), 0.25};
    comm->all_reduce_host(result.host);
    comm->barrier();
  });

  for (int rank = 0; rank < kWorld; ++rank) {
    const RankResult& result = results[static_cast<std::size_t>(rank)];
    INFO("rank " << rank);
    CHECK_THAT(result.describe, Catch::EndsWith(", 2 ranks"));
    CHECK(result.sum == ramp(n, 3.0f, 0.0f));
    CHECK(result.average == ramp(n, 1.5f, 0.0f));
    CHECK(result.broadcast == ramp(n, 1.0f, 7.0f));
    CHECK(result.host == std::vector<double>{3.0, 30.0, 0.5});
  }
}

TEST_CASE("a rank that fails on its own aborts its NCCL communicator at once", "[cuda][dist][multigpu]") {
  // Rank 0 enqueues an all-reduce that rank 1 never joins, then throws: its communicator is
  // destroyed while the error unwinds. Finalising would wait for the all-reduce until the
  // timeout; aborting returns at once. Rank 1 then leaves the same way.
  require_two_gpus();
  constexpr double kShortTimeout = 30.0;
  using Clock = std::chrono::steady_clock;
  InProcessIdExchange ids;
  double unwind_seconds[2] = {-1.0, -1.0};

  run_two_ranks(
      ids,
      [&](int rank, const std::shared_future<void>& rank0_ended) {
        Clock::time_point thrown{};
        try {
          cuda::CudaBackend gpu(rank);
          // Before the communicator, so that it outlives it: freeing memory waits for the
          // device, where the all-reduce runs until the communicator is aborted.
          DeviceTensor pending(gpu, ramp(4099, 1.0f, 0.0f));
          std::unique_ptr<Communicator> comm =
              cuda::make_nccl_communicator(gpu, rank, 2, ids.share_for(rank), kShortTimeout);
          if (rank == 0) {
            comm->start_all_reduce(pending.tensor(), Reduction::sum);
            thrown = Clock::now();
            throw std::runtime_error("rank 0 failed on its own");
          }
          rank0_ended.wait_for(std::chrono::seconds(120));
          thrown = Clock::now();
          throw std::runtime_error("rank 1 leaves too");
        } catch (const std::runtime_error&) {
          unwind_seconds[rank] = std::chrono::duration<double>(Clock::now() - thrown).count();
        }
      });
  for (int rank = 0; rank < 2; ++rank) {
    INFO("rank " << rank);
    CHECK(unwind_seconds[rank] >= 0.0);
    CHECK(unwind_seconds[rank] < kShortTimeout / 3);
  }
}

TEST_CASE("abandon() ends a rank's collective before its buffers are freed", "[cuda][dist][multigpu]") {
  // As the trainer does on an error: rank 0 enqueues an all-reduce that rank 1 never joins,
  // abandons the communicator, then frees the all-reduce's buffer (cudaFree waits for the
  // device). Without the abort the free would wait for the watchdog's timeout. Later calls
  // throw, naming the rank and the reason. Rank 1 leaves the same way once rank 0 has.
  require_two_gpus();
  constexpr double kShortTimeout = 30.0;
  using Clock = std::chrono::steady_clock;
  InProcessIdExchange ids;
  double free_seconds = -1.0;
  std::string later_call_error;

  run_two_ranks(
      ids,
      [&](int rank, const std::shared_future<void>& rank0_ended) {
        cuda::CudaBackend gpu(rank);
        std::unique_ptr<Communicator> comm =
            cuda::make_nccl_communicator(gpu, rank, 2, ids.share_for(rank), kShortTimeout);
        if (rank == 1) {
          rank0_ended.wait_for(std::chrono::seconds(120));
          comm->abandon("rank 1 leaves too");
          return;
        }
        Clock::time_point abandoned;
        {
          DeviceTensor pending(gpu, ramp(4099, 1.0f, 0.0f));  // after the communicator: freed first
          comm->start_all_reduce(pending.tensor(), Reduction::sum);
          abandoned = Clock::now();
          comm->abandon("rank 0 failed on its own");
        }
        free_seconds = std::chrono::duration<double>(Clock::now() - abandoned).count();
        try {
          comm->barrier();
        } catch (const JobError& e) {
          later_call_error = e.what();
        }
      });
  CHECK(free_seconds >= 0.0);
  CHECK(free_seconds < kShortTimeout / 3);
  CHECK_THAT(later_call_error, Catch::Contains("rank 0 of 2 stopped: rank 0 failed on its own"));
}

#else  // CUDA without NCCL

TEST_CASE("without NCCL the communicator factory says the build lacks it", "[cuda][dist]") {
  CpuBackend cpu(1);
  const cuda::ShareFromRoot identity = [](const std::vector<char>& payload) { return payload; };
  CHECK_THROWS_AS(cuda::make_nccl_communicator(cpu, 0, 1, identity, kTimeoutSeconds), UserError);
}

#endif  // CADENZA_WITH_NCCL
#endif  // CADENZA_WITH_CUDA
