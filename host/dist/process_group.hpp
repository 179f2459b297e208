// ProcessGroup: this process's place in a data-parallel job (launch.hpp reads it from the
// launcher's environment) and what it needs to take part: the device of its local rank,
// the backend's context on it, the communicator, and MPI's session when MPI carries it.
//
// Invariants:
// - World size 1 (no launcher) is a context on the configured device and the solo
//   communicator: the same training path, with nothing to exchange.
// - The CPU backend communicates over MPI, so it needs an MPI launcher (mpirun, or srun
//   with MPI support); the CUDA backend over NCCL, whose unique id travels over MPI under
//   mpirun (or srun without MASTER_ADDR) and over the TCP rendezvous otherwise.
// - Each rank of a node takes the GPU of its local rank (train.device cuda); naming one GPU
//   (cuda:N) with several ranks on a node is refused.
#pragma once

#include <memory>
#include <string>

#include "host/core/context.hpp"
#include "host/core/logger.hpp"
#include "host/dist/communicator.hpp"
#include "host/dist/launch.hpp"
#include "host/dist/mpi_communicator.hpp"

namespace cadenza {

struct ProcessGroup {
  LaunchInfo launch;
  std::unique_ptr<MpiSession> mpi;  // before the communicator, which may use it
  std::unique_ptr<Context> context;
  std::unique_ptr<Communicator> communicator;
};

// The device string this rank uses for train.device `configured`.
std::string device_for_rank(const std::string& configured, const LaunchInfo& launch);

// Joins the job `launch` describes, running on train.device `device`.
ProcessGroup join_process_group(const LaunchInfo& launch, const std::string& device, int cpu_threads,
                                double timeout_seconds, Logger& logger);

}  // namespace cadenza
