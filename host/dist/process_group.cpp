// join_process_group and device_for_rank (see process_group.hpp).
#include "host/dist/process_group.hpp"

#include <cstdlib>

#include "host/core/error.hpp"
#include "host/dist/tcp_rendezvous.hpp"
#ifdef CADENZA_WITH_CUDA
#include "cuda/nccl_communicator.cuh"
#endif

namespace cadenza {

RankDevice device_for_rank(const std::string& configured, const LaunchInfo& launch, int visible_devices,
                           const char* cuda_visible_devices) {
  if (launch.world_size == 1 || configured == "cpu" || configured == "auto") return {configured, ""};
  if (configured == "cuda") {
    std::string visible = "unset";
    if (cuda_visible_devices != nullptr) visible = std::string("'").append(cuda_visible_devices).append("'");
    if (visible_devices == 1)
      return {"cuda:0", "local rank " + std::to_string(launch.local_rank) +
                            " sees one CUDA device (CUDA_VISIBLE_DEVICES " + visible + "): using cuda:0"};
    if (visible_devices > 1 && launch.local_rank >= visible_devices)
      CADENZA_USER_ERROR("train.device cuda: local rank "
                         << launch.local_rank << " would take cuda:" << launch.local_rank << ", but this process sees "
                         << visible_devices << " CUDA devices (CUDA_VISIBLE_DEVICES " << visible
                         << "); make one GPU visible to each rank, or as many as there are ranks on the node");
    return {"cuda:" + std::to_string(launch.local_rank), ""};
  }
  if (launch.local_world_size > 1)
    CADENZA_USER_ERROR("train.device: " << configured << " names one GPU, but " << launch.local_world_size
                                        << " ranks run on this node; use cuda (each rank takes the GPU of its "
                                           "local rank)");
  return {configured, ""};
}

ProcessGroup join_process_group(const LaunchInfo& launch, const std::string& device, int cpu_threads,
                                double timeout_seconds, Logger& logger) {
  ProcessGroup group;
  group.launch = launch;
  const bool per_rank_gpu = launch.world_size > 1 && device == "cuda";
  const RankDevice rank_device = device_for_rank(device, launch, per_rank_gpu ? probe_cuda().device_count : 0,
                                                 std::getenv("CUDA_VISIBLE_DEVICES"));
  if (!rank_device.note.empty()) logger.info(rank_device.note);
  group.context = make_context(rank_device.device, cpu_threads, logger);
  if (launch.world_size == 1) {
    group.communicator = make_solo_communicator();
    return group;
  }
  const bool on_cpu = group.context->device().is_cpu();
  const bool mpi_launch = launch.launcher == "mpirun" || (launch.launcher == "slurm" && (on_cpu || launch.master_addr.empty()));
  if (on_cpu && !mpi_launch)
    CADENZA_USER_ERROR("rank " << launch.rank << " of " << launch.world_size << " was launched by "
                               << launch.launcher << " variables (RANK, WORLD_SIZE), but the CPU backend's "
                               << "data-parallel training runs over MPI; launch it with mpirun -np "
                               << launch.world_size << " (or srun) instead");
  if (mpi_launch) {
    group.mpi = std::make_unique<MpiSession>(nullptr, nullptr);
    if (group.mpi->world_size() != launch.world_size || group.mpi->rank() != launch.rank)
      CADENZA_USER_ERROR("MPI sees rank " << group.mpi->rank() << " of " << group.mpi->world_size()
                                          << " but the launcher's variables say rank " << launch.rank << " of "
                                          << launch.world_size
                                          << "; was this binary built against the MPI that launched it?");
  }
  if (on_cpu) {
    group.communicator = make_mpi_communicator(timeout_seconds);
  } else {
#ifdef CADENZA_WITH_CUDA
    const cuda::ShareFromRoot share = [&](const std::vector<char>& root_payload) {
      return mpi_launch ? mpi_share_from_root(root_payload) : share_from_root(launch, root_payload, timeout_seconds);
    };
    group.communicator = cuda::make_nccl_communicator(group.context->backend(), launch.rank, launch.world_size,
                                                      share, timeout_seconds);
#else
    CADENZA_USER_ERROR("this build has no CUDA backend");
#endif
  }
  logger.info("data-parallel: rank " + std::to_string(launch.rank) + " of " + std::to_string(launch.world_size) +
              " (" + launch.launcher + "), local rank " + std::to_string(launch.local_rank) + ", " +
              group.communicator->describe());
  return group;
}

}  // namespace cadenza
