// Communicator: the collective operations of data-parallel training, over the ranks of one
// job (one process per device). Implementations: the solo communicator (world size 1, the
// same code path with nothing to exchange), MPI for the CPU backend
// (mpi_communicator.hpp) and NCCL for the CUDA backend (cuda/nccl_communicator.cuh).
//
// Invariants:
// - Every rank calls the same collectives in the same order, on tensors of the same shape
//   and dtype (f32), and every rank ends with the same values (bit-identical: each
//   element's sum is formed the same way on every rank).
// - Tensor collectives are ordered like backend ops: one sees every op enqueued before it,
//   and ops enqueued after it (after wait_all() for a started one) see its result. The
//   CUDA implementation orders them with events on a communication stream, never a host
//   synchronisation; the CPU one completes them on the host.
// - A rank that fails or stops answering ends every collective of the others with an
//   Error within the communicator's timeout, never a silent hang.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "host/core/tensor.hpp"

namespace cadenza {

enum class Reduction { sum, average };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // One line for the log: "MPI, 2 ranks", "NCCL 2.28.3, 8 ranks on 2 nodes".
  virtual std::string describe() const = 0;

  // Starts reducing `tensor` in place over the ranks; work enqueued after the call may run
  // while it proceeds. The tensor must not be touched until wait_all() returns.
  virtual void start_all_reduce(Tensor& tensor, Reduction op) = 0;
  // Orders everything enqueued after this call after every started all-reduce.
  virtual void wait_all() = 0;
  void all_reduce(Tensor& tensor, Reduction op) {
    start_all_reduce(tensor, op);
    wait_all();
  }
  // Every rank's `tensor` takes the values of rank `root`'s.
  virtual void broadcast(Tensor& tensor, int root) = 0;

  // Host values summed over the ranks, in place (loss sums, counts, flags): a
  // synchronisation point of all ranks.
  virtual void all_reduce_host(std::vector<double>& values) = 0;
  // Returns when every rank has called it.
  virtual void barrier() = 0;

  // This rank is stopping on an error: collectives it has started end now instead of
  // waiting for its peers, and every later call throws. Called before the failing run's
  // buffers are freed, since on the GPU freeing waits for the device, and so for a
  // collective whose peers may never join it. NCCL aborts its communicator; the solo and
  // MPI communicators have nothing to end (MPI's collectives progress only inside its
  // calls, and mpirun ends the job when a rank exits with an error).
  virtual void abandon(const std::string& /*reason*/) {}
};

// World size 1: collectives leave their tensors as they are (an average over one rank).
std::unique_ptr<Communicator> make_solo_communicator();

}  // namespace cadenza
