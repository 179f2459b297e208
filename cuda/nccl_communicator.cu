// NcclCommunicator: the Communicator of the CUDA backend, over a non-blocking NCCL
// communicator, one rank per GPU. This path is compiled and linked, but has not yet been
// run on a GPU: treat it as untested until the [cuda][dist] tests pass on real devices.
//
// Invariants:
// - Creation is collective: rank 0 makes the ncclUniqueId, share_from_root gives it to
//   every rank, and ncclCommInitRankConfig (blocking = 0) is polled until done or until the
//   timeout, which aborts it with an Error naming the rank.
// - Ordering, never a host synchronisation: every tensor collective runs on the
//   communicator's own stream. Before it, an event recorded on the backend's compute stream
//   makes the comm stream wait for every op enqueued so far; after it, `comm_done_` is
//   recorded on the comm stream. wait_all() (and broadcast(), at once) makes the compute
//   stream wait on `comm_done_`, which, being re-recorded after each collective, covers all
//   of them. Two events serve every call: cudaStreamWaitEvent captures an event's state
//   when called, so re-recording it afterwards is safe.
// - all_reduce_host() is the one host synchronisation by contract: values go through a
//   pinned buffer and a device buffer owned by the communicator (grown only when too
//   small), are summed in double on the comm stream after the compute stream's work, and
//   the host waits for `comm_done_`.
// - No silent hang. Every host wait (init, the enqueue of a collective that NCCL reports
//   in progress, all_reduce_host, finalisation) polls ncclCommGetAsyncError and the event
//   or state it waits for, with a short sleep, until done or until `timeout_seconds`; an
//   asynchronous NCCL error or the deadline aborts the communicator (ncclCommAbort) and
//   throws an Error naming the operation, the rank, the world size and the timeout. A
//   watchdog thread also polls every 100 ms for the communicator's lifetime: an
//   asynchronous NCCL error, or a collective still unfinished `timeout_seconds` after the
//   newest one was enqueued, aborts the communicator (which ends its kernels, so streams
//   waiting on them drain) and records why; the next call of any method throws that.
//   So a hang inside device-side collectives with no host wait of ours (the host blocked
//   in a backend copy, say) ends within the timeout, and is reported by the next call;
//   a deadline counts from the enqueue, so it includes the compute work the collective
//   was ordered after: keep the timeout well above one training step.
// - `mutex_` serialises every NCCL call and every use of `comm_done_` between the caller's
//   thread and the watchdog; host waits release it between polls so the watchdog can
//   abort. After an abort `comm_` is null and `failure_` says why.
// - The destructor stops the watchdog, then ncclCommFinalize (polled until done or the
//   timeout) and ncclCommDestroy on the normal path; ncclCommAbort after any failure, and
//   when it runs while an exception thrown since construction unwinds the stack
//   (std::uncaught_exceptions() above its count at construction). That is a rank failing
//   on its own (rank 0 cannot write a checkpoint, say): its peers may sit in a collective,
//   so the communicator cannot become quiescent and Finalize would poll for the whole
//   timeout before the rank's error is printed; aborting ends the rank at once and the
//   peers see the failure. MpiSession skips MPI_Finalize on unwinding for the same
//   reason. The trainer calls abandon() (an abort) sooner, before it frees its buffers:
//   cudaFree waits for the device, and so for this rank's collective in flight. This path
//   is compiled, not yet run on a GPU. The destructor never throws.
//   The backend must outlive the communicator.
// - Not yet safe inside CUDA graph capture (the watchdog queries events).
#include "cuda/nccl_communicator.cuh"

#ifdef CADENZA_WITH_NCCL

#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "cuda/check.cuh"
#include "cuda/cuda_backend.cuh"

namespace cadenza::cuda {
namespace {

using Clock = std::chrono::steady_clock;

// Sleep between two polls of a host wait: short, since all_reduce_host runs every step.
constexpr auto kPollInterval = std::chrono::microseconds(100);
// Period of the watchdog thread.
constexpr auto kWatchdogPeriod = std::chrono::milliseconds(100);

// "2.28.9": NCCL_VERSION(X, Y, Z) is X * 10000 + Y * 100 + Z since NCCL 2.9.
std::string nccl_version() {
  int code = 0;
  CADENZA_CUDA_CHECK(ncclGetVersion(&code));
  std::ostringstream os;
  if (code >= 20900)
    os << code / 10000 << "." << code % 10000 / 100 << "." << code % 100;
  else
    os << code / 1000 << "." << code % 1000 / 100 << "." << code % 100;
  return os.str();
}

// Inside NcclCommunicator's locked sections: checks a CUDA or NCCL status and, on failure,
// aborts the communicator (the other ranks would otherwise wait for this one until their
// timeout) and throws as CADENZA_CUDA_CHECK does (cuda_check::fail: the call, file, line
// and device, with the library's description of the status).
#define CADENZA_COMM_CHECK(call) check_locked((call), #call, __FILE__, __LINE__)
// An NCCL call that a non-blocking communicator may answer with ncclInProgress: then the
// caller waits (releasing `lock` between polls) until NCCL has taken the operation, or
// the deadline; any other status goes through CADENZA_COMM_CHECK's path.
#define CADENZA_NCCL_ENQUEUE(lock, operation, call) \
  settle_locked((lock), (call), #call, __FILE__, __LINE__, (operation))

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(CudaBackend& backend, int rank, int world_size, const ShareFromRoot& share_from_root,
                   double timeout_seconds)
      : ctx_(backend.context()),
        rank_(rank),
        world_size_(world_size),
        timeout_seconds_(timeout_seconds),
        uncaught_at_construction_(std::uncaught_exceptions()) {
    CADENZA_CHECK(world_size >= 1, "NCCL: world size must be at least 1, got " << world_size);
    CADENZA_CHECK(rank >= 0 && rank < world_size, "NCCL: rank " << rank << " is outside 0.." << world_size - 1);
    CADENZA_CHECK(timeout_seconds > 0.0, "NCCL: the timeout must be positive, got " << timeout_seconds << " s");
    CADENZA_CHECK(static_cast<bool>(share_from_root), "NCCL: rank " << rank << ": no share_from_root given");
    // Capped at ~115 days so that the conversion to clock ticks cannot overflow.
    timeout_ = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(std::min(timeout_seconds, 1e7)));
    try {
      create(share_from_root);
    } catch (...) {
      release(/*unwinding=*/true);
      throw;
    }
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> stop(stop_mutex_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    release(std::uncaught_exceptions() > uncaught_at_construction_);
  }

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  void abandon(const std::string& reason) override {
    const ScopedDevice device(ctx_.device, false);
    std::lock_guard<std::mutex> lock(mutex_);
    abort_locked("rank " + std::to_string(rank_) + " of " + std::to_string(world_size_) + " stopped: " + reason);
  }
  std::string describe() const override {
    return "NCCL " + version_ + ", " + std::to_string(world_size_) + (world_size_ == 1 ? " rank" : " ranks");
  }

  void start_all_reduce(Tensor& tensor, Reduction op) override {
    check_device_tensor(ctx_, tensor, "NCCL all-reduce", "tensor", tensor.numel());
    const ScopedDevice device(ctx_.device, true);
    std::unique_lock<std::mutex> lock(mutex_);
    throw_if_failed_locked();
    if (tensor.numel() == 0) return;  // every rank has the same shape, so every rank skips it
    order_after_compute_locked();
    const ncclRedOp_t nccl_op = op == Reduction::sum ? ncclSum : ncclAvg;
    CADENZA_NCCL_ENQUEUE(lock, "all-reduce",
                         ncclAllReduce(tensor.raw(), tensor.raw(), static_cast<std::size_t>(tensor.numel()),
                                       ncclFloat, nccl_op, comm_, comm_stream_));
    mark_enqueued_locked("all-reduce");
    unwaited_ = true;
  }

  void wait_all() override {
    const ScopedDevice device(ctx_.device, true);
    std::lock_guard<std::mutex> lock(mutex_);
    throw_if_failed_locked();
    if (!unwaited_) return;
    CADENZA_COMM_CHECK(cudaStreamWaitEvent(ctx_.stream, comm_done_, 0));
    unwaited_ = false;
  }

  void broadcast(Tensor& tensor, int root) override {
    check_device_tensor(ctx_, tensor, "NCCL broadcast", "tensor", tensor.numel());
    CADENZA_CHECK(root >= 0 && root < world_size_,
                  "NCCL broadcast: root " << root << " is outside 0.." << world_size_ - 1);
    const ScopedDevice device(ctx_.device, true);
    std::unique_lock<std::mutex> lock(mutex_);
    throw_if_failed_locked();
    if (tensor.numel() == 0) return;
    order_after_compute_locked();
    CADENZA_NCCL_ENQUEUE(lock, "broadcast",
                         ncclBroadcast(tensor.raw(), tensor.raw(), static_cast<std::size_t>(tensor.numel()),
                                       ncclFloat, root, comm_, comm_stream_));
    mark_enqueued_locked("broadcast");
    // The compute stream waits for the comm stream's tail: this broadcast and every
    // all-reduce started before it.
    CADENZA_COMM_CHECK(cudaStreamWaitEvent(ctx_.stream, comm_done_, 0));
    unwaited_ = false;
  }

  void all_reduce_host(std::vector<double>& values) override {
    if (values.empty()) return;
    const ScopedDevice device(ctx_.device, true);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      throw_if_failed_locked();
    }
    // Without the lock: cudaFree and cudaFreeHost may wait for the device, and if a
    // collective hangs meanwhile the watchdog must be free to abort it.
    reserve(values.size());
    const std::size_t bytes = values.size() * sizeof(double);
    std::unique_lock<std::mutex> lock(mutex_);
    throw_if_failed_locked();
    // The pinned buffer is idle: the previous call waited for its copies.
    std::memcpy(pinned_values_, values.data(), bytes);
    order_after_compute_locked();
    CADENZA_COMM_CHECK(cudaMemcpyAsync(device_values_, pinned_values_, bytes, cudaMemcpyHostToDevice, comm_stream_));
    CADENZA_NCCL_ENQUEUE(lock, "host all-reduce",
                         ncclAllReduce(device_values_, device_values_, values.size(), ncclDouble, ncclSum, comm_,
                                       comm_stream_));
    CADENZA_COMM_CHECK(cudaMemcpyAsync(pinned_values_, device_values_, bytes, cudaMemcpyDeviceToHost, comm_stream_));
    mark_enqueued_locked("host all-reduce");
    await_event_locked(lock, comm_done_, "host all-reduce");
    std::memcpy(values.data(), pinned_values_, bytes);
  }

  void barrier() override {
    barrier_value_.assign(1, 0.0);
    all_reduce_host(barrier_value_);
  }

 private:
  template <typename Status>
  void check_locked(Status status, const char* call, const char* file, int line) {
    if (cuda_check::ok(status)) return;
    const std::string text = cuda_check::describe(status);
    std::ostringstream reason;
    reason << call << " failed on rank " << rank_ << " of " << world_size_ << ": " << text;
    abort_locked(reason.str());
    cuda_check::fail(call, file, line, text);
  }

  void settle_locked(std::unique_lock<std::mutex>& lock, ncclResult_t status, const char* call, const char* file,
                     int line, const char* operation) {
    if (status == ncclInProgress) {
      await_ready_locked(lock, where(operation), no_progress(operation));
      return;
    }
    check_locked(status, call, file, line);
  }

  // "NCCL all-reduce on rank 1 of 8"
  std::string where(const char* operation) const {
    std::ostringstream os;
    os << "NCCL " << operation << " on rank " << rank_ << " of " << world_size_;
    return os.str();
  }
  std::string no_progress(const char* operation) const {
    std::ostringstream os;
    os << where(operation) << ": no progress for " << timeout_seconds_ << " s; another rank died or hung";
    return os.str();
  }

  void create(const ShareFromRoot& share_from_root) {
    const ScopedDevice device(ctx_.device, true);  // ncclCommInitRankConfig binds the current device
    version_ = nccl_version();
    CADENZA_CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
    CADENZA_CUDA_CHECK(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming));
    CADENZA_CUDA_CHECK(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming));

    ncclUniqueId id{};
    std::vector<char> payload;
    if (rank_ == 0) {
      CADENZA_CUDA_CHECK(ncclGetUniqueId(&id));
      payload.assign(id.internal, id.internal + sizeof(id.internal));
    }
    const std::vector<char> shared = share_from_root(payload);
    if (shared.size() != sizeof(id.internal)) {
      std::ostringstream os;
      os << "NCCL: rank " << rank_ << " of " << world_size_ << ": the shared communicator id has "
         << shared.size() << " bytes, expected " << sizeof(id.internal);
      throw Error(os.str());
    }
    std::memcpy(id.internal, shared.data(), sizeof(id.internal));

    std::ostringstream prefix, late;
    prefix << "NCCL: rank " << rank_ << " of " << world_size_ << ": communicator init";
    late << prefix.str() << " did not complete within " << timeout_seconds_
         << " s (a rank missing or unreachable?)";
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // init and collectives return at once and can be aborted
    std::unique_lock<std::mutex> lock(mutex_);
    const ncclResult_t status = ncclCommInitRankConfig(&comm_, world_size_, id, rank_, &config);
    if (status == ncclInProgress)
      await_ready_locked(lock, prefix.str(), late.str());
    else
      CADENZA_COMM_CHECK(status);
    lock.unlock();
    watchdog_ = std::thread([this] { watch(); });
  }

  // Grows the pinned and device buffers of all_reduce_host to at least `count` doubles.
  void reserve(std::size_t count) {
    if (count <= capacity_) return;
    const std::size_t capacity = std::max<std::size_t>(count, 64);
    if (device_values_ != nullptr) CADENZA_CUDA_CHECK(cudaFree(device_values_));
    device_values_ = nullptr;
    if (pinned_values_ != nullptr) CADENZA_CUDA_CHECK(cudaFreeHost(pinned_values_));
    pinned_values_ = nullptr;
    capacity_ = 0;
    CADENZA_CUDA_CHECK(cudaMalloc(&device_values_, capacity * sizeof(double)));
    CADENZA_CUDA_CHECK(cudaMallocHost(&pinned_values_, capacity * sizeof(double)));
    capacity_ = capacity;
  }

  // The comm stream waits for everything enqueued on the compute stream so far.
  void order_after_compute_locked() {
    CADENZA_COMM_CHECK(cudaEventRecord(compute_ready_, ctx_.stream));
    CADENZA_COMM_CHECK(cudaStreamWaitEvent(comm_stream_, compute_ready_, 0));
  }

  // Records the comm stream's new tail, for wait_all, host waits and the watchdog.
  void mark_enqueued_locked(const char* operation) {
    CADENZA_COMM_CHECK(cudaEventRecord(comm_done_, comm_stream_));
    last_enqueue_ = Clock::now();
    last_operation_ = operation;
    comm_done_pending_ = true;
  }

  void throw_if_failed_locked() const {
    if (!failure_.empty()) throw JobError("the NCCL communicator was aborted: " + failure_);
  }

  // Aborts the communicator if it still exists and records why (the first reason wins).
  void abort_locked(const std::string& reason) {
    if (failure_.empty()) failure_ = reason;
    if (comm_ == nullptr) return;
    // Not through CADENZA_CUDA_CHECK: a failed abort must not hide the reason for it.
    const ncclResult_t status = ncclCommAbort(comm_);
    comm_ = nullptr;
    if (status != ncclSuccess) failure_ += " (ncclCommAbort failed too: " + cuda_check::describe(status) + ")";
  }

  [[noreturn]] void fail_locked(const std::string& reason) {
    abort_locked(reason);
    throw JobError(failure_);
  }

  // Throws (after aborting) when NCCL reports an asynchronous error, the message starting
  // with `context` (or where(operation) when none is given: built only on failure, so a
  // poll allocates nothing); returns NCCL's state, ncclSuccess or ncclInProgress.
  ncclResult_t async_state_locked(const char* operation, const std::string* context = nullptr) {
    throw_if_failed_locked();
    ncclResult_t state = ncclSuccess;
    CADENZA_COMM_CHECK(ncclCommGetAsyncError(comm_, &state));
    if (state != ncclSuccess && state != ncclInProgress)
      fail_locked((context != nullptr ? *context : where(operation)) + ": NCCL reported " +
                  cuda_check::describe(state) + "; another rank may have failed");
    return state;
  }

  // Polls until NCCL has finished the pending non-blocking call, or the deadline.
  void await_ready_locked(std::unique_lock<std::mutex>& lock, const std::string& context,
                          const std::string& timeout_message) {
    const Clock::time_point deadline = Clock::now() + timeout_;
    while (async_state_locked("", &context) == ncclInProgress) {
      if (Clock::now() >= deadline) fail_locked(timeout_message);
      lock.unlock();
      std::this_thread::sleep_for(kPollInterval);
      lock.lock();
    }
  }

  // Polls until `event` has completed on the device, or an NCCL error, or the deadline.
  void await_event_locked(std::unique_lock<std::mutex>& lock, cudaEvent_t event, const char* operation) {
    const Clock::time_point deadline = Clock::now() + timeout_;
    for (;;) {
      async_state_locked(operation);
      const cudaError_t status = cudaEventQuery(event);
      if (status == cudaSuccess) break;
      if (status != cudaErrorNotReady) CADENZA_COMM_CHECK(status);
      if (Clock::now() >= deadline) fail_locked(no_progress(operation));
      lock.unlock();
      std::this_thread::sleep_for(kPollInterval);
      lock.lock();
    }
    if (event == comm_done_) comm_done_pending_ = false;
  }

  // The watchdog thread: every kWatchdogPeriod, an asynchronous NCCL error or a comm
  // stream tail unfinished `timeout_` after its enqueue aborts the communicator.
  void watch() {
    const bool device_set = cudaSetDevice(ctx_.device) == cudaSuccess;
    std::unique_lock<std::mutex> stop(stop_mutex_);
    while (!stop_cv_.wait_for(stop, kWatchdogPeriod, [this] { return stop_; })) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (comm_ == nullptr) continue;  // aborted already; the next call throws
      if (!device_set) {
        abort_locked(where("watchdog") + ": cannot make cuda:" + std::to_string(ctx_.device) + " current");
        continue;
      }
      ncclResult_t state = ncclSuccess;
      const ncclResult_t status = ncclCommGetAsyncError(comm_, &state);
      if (status != ncclSuccess) {
        abort_locked(where(last_operation_) + ": ncclCommGetAsyncError failed: " + cuda_check::describe(status));
        continue;
      }
      if (state != ncclSuccess && state != ncclInProgress) {
        abort_locked(where(last_operation_) + ": NCCL reported " + cuda_check::describe(state) +
                     "; another rank may have failed (found by the watchdog)");
        continue;
      }
      if (!comm_done_pending_) continue;
      const cudaError_t done = cudaEventQuery(comm_done_);
      if (done == cudaSuccess) {
        comm_done_pending_ = false;
      } else if (done != cudaErrorNotReady) {
        abort_locked(where(last_operation_) + ": " + cuda_check::describe(done));
      } else if (Clock::now() - last_enqueue_ > timeout_) {
        abort_locked(no_progress(last_operation_) + " (found by the watchdog)");
      }
    }
  }

  // Frees everything; never throws. The watchdog has stopped (or never started).
  // `unwinding`: an error is leaving this rank, so abort rather than finalise (Finalize
  // waits for every peer to be quiescent, which a peer inside a collective never is).
  void release(bool unwinding) noexcept {
    const ScopedDevice device(ctx_.device, false);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (comm_ != nullptr) {
        if (failure_.empty() && !unwinding && finalize_locked())
          ncclCommDestroy(comm_);
        else
          ncclCommAbort(comm_);
        comm_ = nullptr;
      }
    }
    if (device_values_ != nullptr) cudaFree(device_values_);
    if (pinned_values_ != nullptr) cudaFreeHost(pinned_values_);
    if (comm_done_ != nullptr) cudaEventDestroy(comm_done_);
    if (compute_ready_ != nullptr) cudaEventDestroy(compute_ready_);
    if (comm_stream_ != nullptr) cudaStreamDestroy(comm_stream_);
    device_values_ = nullptr;
    pinned_values_ = nullptr;
    comm_done_ = compute_ready_ = nullptr;
    comm_stream_ = nullptr;
  }

  // ncclCommFinalize, polled until it has flushed every operation; false on an error or
  // the deadline (the caller then aborts).
  bool finalize_locked() noexcept {
    ncclResult_t status = ncclCommFinalize(comm_);
    if (status != ncclSuccess && status != ncclInProgress) return false;
    const Clock::time_point deadline = Clock::now() + timeout_;
    for (;;) {
      ncclResult_t state = ncclSuccess;
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) return false;
      if (state == ncclSuccess) return true;
      if (state != ncclInProgress || Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  CudaContext& ctx_;
  int rank_ = 0;
  int world_size_ = 1;
  double timeout_seconds_ = 0.0;
  int uncaught_at_construction_ = 0;  // std::uncaught_exceptions() when constructed
  Clock::duration timeout_{};
  std::string version_;

  cudaStream_t comm_stream_ = nullptr;
  cudaEvent_t compute_ready_ = nullptr;  // recorded on the compute stream before each collective
  cudaEvent_t comm_done_ = nullptr;      // recorded on the comm stream after each collective
  bool unwaited_ = false;                // a collective was started since the compute stream last waited

  // all_reduce_host's staging: `capacity_` doubles each, pinned on the host and on the device.
  double* pinned_values_ = nullptr;
  double* device_values_ = nullptr;
  std::size_t capacity_ = 0;
  std::vector<double> barrier_value_;

  std::mutex mutex_;            // guards what follows: the NCCL calls, comm_done_'s records
  ncclComm_t comm_ = nullptr;   // null once aborted or destroyed
  std::string failure_;         // why the communicator was aborted; every later call throws it
  Clock::time_point last_enqueue_{};
  const char* last_operation_ = "collective";
  bool comm_done_pending_ = false;  // comm_done_ not yet seen complete

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread watchdog_;
};

#undef CADENZA_COMM_CHECK
#undef CADENZA_NCCL_ENQUEUE

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Backend& backend, int rank, int world_size,
                                                     const ShareFromRoot& share_from_root,
                                                     double timeout_seconds) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (cuda == nullptr)
    throw Error("NCCL communicator: the backend on " + backend.device().str() +
                " is not the CUDA backend; NCCL reduces tensors in GPU memory");
  return std::make_unique<NcclCommunicator>(*cuda, rank, world_size, share_from_root, timeout_seconds);
}

}  // namespace cadenza::cuda

#endif  // CADENZA_WITH_NCCL
