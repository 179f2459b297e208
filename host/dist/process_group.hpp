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
// - train.device cuda: a rank that sees exactly one CUDA device (CUDA_VISIBLE_DEVICES set
//   per rank, srun --gpus-per-task=1) takes cuda:0, and the log says so; a rank that sees
//   several takes the GPU of its local rank, and a local rank with no GPU of that number is
//   refused naming the local rank, the device count and CUDA_VISIBLE_DEVICES. Naming one
//   GPU (cuda:N) with several ranks on a node is refused.
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

// The device this rank uses for train.device `configured`, and a line for the log saying
// why when that is not plain (empty otherwise).
struct RankDevice {
  std::string device;
  std::string note;
};

// Decides for a rank that sees `visible_devices` CUDA devices, under `cuda_visible_devices`
// (CUDA_VISIBLE_DEVICES's value, nullptr when unset; for messages). `visible_devices` is
// read only for train.device cuda with world size > 1, and 0 there leaves the refusal to
// make_context, which says what CUDA reported.
RankDevice device_for_rank(const std::string& configured, const LaunchInfo& launch, int visible_devices,
                           const char* cuda_visible_devices);

// Joins the job `launch` describes, running on train.device `device`.
ProcessGroup join_process_group(const LaunchInfo& launch, const std::string& device, int cpu_threads,
                                double timeout_seconds, Logger& logger);

}  // namespace cadenza
