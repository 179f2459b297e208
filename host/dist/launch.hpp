// Launch detection: how this process was started (mpirun, srun, torchrun-style variables
// or by hand) and which rank of the job it is, read from the launcher's environment.
//
// Launchers and the variables read. The innermost launcher wins, since a process inherits
// the variables of every launcher around it: torchrun's workers (RANK/WORLD_SIZE with
// TORCHELASTIC_RUN_ID or GROUP_RANK, which torchrun's agent sets) first, whatever else is
// set (srun torchrun: one Slurm task per node, each starting the node's workers); then
// OpenMPI, then MPICH/PMI, then Slurm, then RANK/WORLD_SIZE set by other means.
// The chosen launcher's rank and world size must equal those of every other launcher whose
// rank and world size are set, as integers (a UserError names both launchers' variables),
// except an outer
// launcher's that the chosen one is known to inherit: anyone's under torchrun's workers,
// and Slurm's under mpirun (which starts its daemons with srun, one task per node).
// - "mpirun": OpenMPI's OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE, or
//   MPICH/PMI's PMI_RANK, PMI_SIZE, MPI_LOCALRANKID, MPI_LOCALNRANKS.
// - "slurm": SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and the tasks on this node from
//   SLURM_NTASKS_PER_NODE (else SLURM_STEP_TASKS_PER_NODE; "4", "4(x2)" or "2,1", indexed
//   by SLURM_NODEID). Only inside a job step (SLURM_STEP_ID or SLURM_STEPID set): a batch
//   script outside srun is a single process. MASTER_ADDR/MASTER_PORT are copied when set.
// - "env": RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (the
//   last two required when WORLD_SIZE > 1): torchrun's workers, or those variables set by
//   hand or by another tool. TORCHELASTIC_USE_AGENT_STORE=True (torchrun's static
//   rendezvous, its default) says torchrun's agent serves its own TCP store on MASTER_PORT
//   of rank 0's node; agent_store is then set, and the TCP rendezvous uses MASTER_PORT + 1
//   (tcp_rendezvous.hpp).
// - "single": none of those; rank 0 of 1.
//
// Invariants of a returned LaunchInfo:
// - 0 <= rank < world_size and 0 <= local_rank < local_world_size. A local rank given
//   without a local size makes the local size local_rank + 1 (the fewest the node can
//   hold); neither given means local rank 0 of 1.
// - master_port is 0 (unset) or in 1..65535 (1..65534 with agent_store); an "env" launch
//   with world_size > 1 always has a non-empty master_addr and a master_port.
// - Any variable that is set but malformed or inconsistent is a UserError naming it and
//   what was expected; nothing is silently replaced by a default.
#pragma once

#include <functional>
#include <string>

namespace cadenza {

// How this process was launched and where it sits in the job.
struct LaunchInfo {
  std::string launcher = "single";  // "single" | "mpirun" | "slurm" | "env"
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr;  // "env" launch only (and slurm when MASTER_ADDR is set)
  int master_port = 0;      // 0: not set
  bool agent_store = false;  // torchrun's agent holds master_port (TORCHELASTIC_USE_AGENT_STORE=True)
};

// Reads the launcher's variables through `get` (returns nullptr when a variable is unset;
// production passes std::getenv; tests pass a map lookup).
LaunchInfo detect_launch(const std::function<const char*(const char*)>& get);

}  // namespace cadenza
