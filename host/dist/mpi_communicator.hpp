// The CPU backend's communicator over MPI (OpenMPI's mpirun, or srun with MPI support).
//
// Invariants:
// - MPI is initialised once per process by MpiSession (in main), with thread support
//   MPI_THREAD_FUNNELED: only the thread that made the session calls MPI. Unless the user
//   set it, OpenMPI's mpi_yield_when_idle is turned on first: CPU ranks share the cores
//   with each other and with the data loaders, and a rank waiting in a collective must not
//   spin on a core another rank needs (2 ranks on 2 cores: 89% efficiency instead of 52%).
// - Tensors are host memory (the CPU backend's); started all-reduces are MPI_Iallreduce
//   requests, so MPI may progress them while the backward pass goes on; wait_all()
//   completes them all. Sums are MPI's (element-wise, the same on every rank), and an
//   average divides the sum by the world size afterwards.
// - Every collective is non-blocking underneath and waited for with a deadline: one that
//   makes no progress for the timeout (a rank hung or stopped) throws an Error naming the
//   operation, the rank and the timeout. A rank that exits without finalising MPI (that
//   error, or a crash) makes mpirun end the job. MPI errors are thrown, never ignored.
#pragma once

#include <memory>

#include "host/dist/communicator.hpp"

namespace cadenza {

// Whether this build has MPI (CADENZA_WITH_MPI).
bool mpi_available();

// MPI_Init_thread on construction and MPI_Finalize on destruction — unless an exception is
// unwinding (finalising would wait for the ranks the error is about; exiting without it
// makes the launcher end the job). A no-op when this build has no MPI.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

 private:
  int rank_ = 0, world_size_ = 1;
  bool initialized_ = false;
};

// A communicator over MPI_COMM_WORLD (requires a live MpiSession).
std::unique_ptr<Communicator> make_mpi_communicator(double timeout_seconds);

// Rank 0's bytes on every rank (MPI_Bcast): how NCCL shares its unique id under mpirun.
std::vector<char> mpi_share_from_root(const std::vector<char>& root_payload);

}  // namespace cadenza
