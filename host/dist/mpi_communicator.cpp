// MpiSession and the MPI communicator (see mpi_communicator.hpp).
#include "host/dist/mpi_communicator.hpp"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <thread>

#include "host/core/error.hpp"

#ifdef CADENZA_WITH_MPI
#include <mpi.h>
#endif

namespace cadenza {

#ifdef CADENZA_WITH_MPI
namespace {

// Every MPI call returns its code (MPI_ERRORS_RETURN is set on the world communicator).
void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  CADENZA_CHECK(false, "MPI: " << call << " failed: " << std::string(text, std::size_t(length)));
}

#define CADENZA_MPI_CHECK(call) check_mpi((call), #call)

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_seconds) : timeout_seconds_(timeout_seconds) {
    CADENZA_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    CADENZA_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  std::string describe() const override { return "MPI, " + std::to_string(world_size_) + " ranks"; }

  void start_all_reduce(Tensor& tensor, Reduction op) override {
    check_host_f32(tensor, "all-reduce");
    MPI_Request request;
    CADENZA_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, tensor.raw(), count_of(tensor), MPI_FLOAT, MPI_SUM,
                                     MPI_COMM_WORLD, &request));
    pending_.push_back({request, tensor, op});
  }

  void wait_all() override {
    std::vector<MPI_Request> requests;
    for (const Pending& p : pending_) requests.push_back(p.request);
    std::vector<Pending> done;
    done.swap(pending_);
    if (requests.empty()) return;
    wait(requests, "all-reduce");
    for (Pending& p : done) {
      if (p.op != Reduction::average) continue;
      const float ranks = static_cast<float>(world_size_);
      float* values = p.tensor.f32();
      for (std::int64_t i = 0; i < p.tensor.numel(); ++i) values[i] /= ranks;
    }
  }

  void broadcast(Tensor& tensor, int root) override {
    check_host_f32(tensor, "broadcast");
    std::vector<MPI_Request> request(1);
    CADENZA_MPI_CHECK(MPI_Ibcast(tensor.raw(), count_of(tensor), MPI_FLOAT, root, MPI_COMM_WORLD, &request[0]));
    wait(request, "broadcast");
  }

  void all_reduce_host(std::vector<double>& values) override {
    if (values.empty()) return;
    std::vector<MPI_Request> request(1);
    CADENZA_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                                     MPI_SUM, MPI_COMM_WORLD, &request[0]));
    wait(request, "all-reduce");
  }

  void barrier() override {
    std::vector<MPI_Request> request(1);
    CADENZA_MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &request[0]));
    wait(request, "barrier");
  }

 private:
  struct Pending {
    MPI_Request request;
    Tensor tensor;
    Reduction op;
  };

  static void check_host_f32(const Tensor& tensor, const char* what) {
    CADENZA_CHECK(tensor.device().is_cpu() && tensor.dtype() == DType::f32,
                  "MPI " << what << ": expected an f32 tensor in host memory, got " << tensor.shape().str());
  }
  static int count_of(const Tensor& tensor) {
    CADENZA_CHECK(tensor.numel() <= std::int64_t(INT32_MAX), "MPI: tensor of " << tensor.numel() << " elements");
    return static_cast<int>(tensor.numel());
  }

  // Polls the requests until all complete (MPI progresses them inside MPI_Testall), sleeping
  // briefly between polls so that a waiting rank leaves the core to the others.
  void wait(std::vector<MPI_Request>& requests, const char* operation) const {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_seconds_);
    for (int polls = 0;; ++polls) {
      int done = 0;
      CADENZA_MPI_CHECK(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE));
      if (done) return;
      if (Clock::now() > deadline) {
        std::ostringstream message;
        message << "MPI " << operation << " on rank " << rank_ << " of " << world_size_ << ": no progress for "
                << timeout_seconds_ << " s (train.dist.timeout_seconds); another rank died or hung";
        throw JobError(message.str());
      }
      if (polls > 100) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  double timeout_seconds_;
  int rank_ = 0, world_size_ = 1;
  std::vector<Pending> pending_;
};

}  // namespace

bool mpi_available() { return true; }

MpiSession::MpiSession(int* argc, char*** argv) {
  ::setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
  int provided = 0;
  CADENZA_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  initialized_ = true;
  CADENZA_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  CADENZA_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  CADENZA_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
}

MpiSession::~MpiSession() {
  if (initialized_ && std::uncaught_exceptions() == 0) MPI_Finalize();
}

std::unique_ptr<Communicator> make_mpi_communicator(double timeout_seconds) {
  return std::make_unique<MpiCommunicator>(timeout_seconds);
}

std::vector<char> mpi_share_from_root(const std::vector<char>& root_payload) {
  int rank = 0;
  CADENZA_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  int size = static_cast<int>(root_payload.size());
  CADENZA_MPI_CHECK(MPI_Bcast(&size, 1, MPI_INT, 0, MPI_COMM_WORLD));
  std::vector<char> payload = rank == 0 ? root_payload : std::vector<char>(std::size_t(size));
  CADENZA_MPI_CHECK(MPI_Bcast(payload.data(), size, MPI_CHAR, 0, MPI_COMM_WORLD));
  return payload;
}

#else  // no MPI in this build

bool mpi_available() { return false; }
MpiSession::MpiSession(int*, char***) {}
MpiSession::~MpiSession() = default;

std::unique_ptr<Communicator> make_mpi_communicator(double) {
  CADENZA_USER_ERROR("this build has no MPI (configured with -DCADENZA_MPI=OFF or without OpenMPI); "
                     "multi-process training on the CPU needs it");
}

std::vector<char> mpi_share_from_root(const std::vector<char>&) {
  CADENZA_USER_ERROR("this build has no MPI; launch with torchrun-style variables (MASTER_ADDR, MASTER_PORT)");
}

#endif

}  // namespace cadenza
