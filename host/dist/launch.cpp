// Launch detection (see launch.hpp for the launchers, their precedence and the invariants
// of LaunchInfo). Every variable is read through the caller's getter, parsed strictly
// (a whole decimal integer) and checked before it lands in the LaunchInfo.
#include "host/dist/launch.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>
#include <vector>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

using Getter = std::function<const char*(const char*)>;

// The variable names one launcher uses for the four rank numbers.
struct RankVariables {
  const char* rank;
  const char* world_size;
  const char* local_rank;
  const char* local_world_size;
};

constexpr RankVariables kOpenMpi{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                 "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"};
constexpr RankVariables kPmi{"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"};
constexpr RankVariables kTorchrun{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"};

bool is_set(const Getter& get, const char* name) { return get(name) != nullptr; }

// `text` as a whole decimal integer, or nullopt when it is anything else.
std::optional<int> parse_integer(std::string_view text) {
  int value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

// The integer value of variable `name`, or nullopt when it is unset.
std::optional<int> read_integer(const Getter& get, const char* name) {
  const char* text = get(name);
  if (text == nullptr) return std::nullopt;
  const std::optional<int> value = parse_integer(text);
  if (!value) CADENZA_USER_ERROR(name << " is '" << text << "'; expected an integer");
  return value;
}

// Sets rank and world size from two variables that must be set together.
void read_world(const Getter& get, const char* rank_name, const char* size_name, LaunchInfo& info) {
  const std::optional<int> rank = read_integer(get, rank_name);
  const std::optional<int> size = read_integer(get, size_name);
  if (!rank || !size) {
    const char* set_name = rank ? rank_name : size_name;
    const char* unset_name = rank ? size_name : rank_name;
    CADENZA_USER_ERROR(set_name << " is set but " << unset_name
                                << " is not; set both (or neither for a single process)");
  }
  if (*size < 1) CADENZA_USER_ERROR(size_name << " is " << *size << "; expected at least 1");
  if (*rank < 0 || *rank >= *size)
    CADENZA_USER_ERROR(rank_name << " is " << *rank << "; expected a value in [0, " << size_name
                                 << " = " << *size << ")");
  info.rank = *rank;
  info.world_size = *size;
}

// Sets local rank and local size. `local_size_name` names where the size came from.
void set_local(std::optional<int> local_rank, const char* local_rank_name,
               std::optional<int> local_size, const char* local_size_name, LaunchInfo& info) {
  if (local_size && *local_size < 1)
    CADENZA_USER_ERROR(local_size_name << " is " << *local_size << "; expected at least 1");
  if (local_rank && *local_rank < 0)
    CADENZA_USER_ERROR(local_rank_name << " is " << *local_rank << "; expected 0 or more");
  if (local_rank && local_size && *local_rank >= *local_size)
    CADENZA_USER_ERROR(local_rank_name << " is " << *local_rank << "; expected a value in [0, "
                                       << local_size_name << " = " << *local_size << ")");
  info.local_rank = local_rank.value_or(0);
  info.local_world_size = local_size.value_or(std::max(1, info.local_rank + 1));
}

void read_ranks(const Getter& get, const RankVariables& names, LaunchInfo& info) {
  read_world(get, names.rank, names.world_size, info);
  set_local(read_integer(get, names.local_rank), names.local_rank,
            read_integer(get, names.local_world_size), names.local_world_size, info);
}

// Per-node task counts in Slurm's compressed form ("4", "4(x2)", "2,1", "2(x3),1"), one
// entry per node; nullopt when `text` is not in that form.
std::optional<std::vector<int>> parse_tasks_per_node(std::string_view text) {
  std::vector<int> counts;
  while (true) {
    const size_t comma = text.find(',');
    std::string_view group = text.substr(0, comma);
    int repeat = 1;
    if (const size_t paren = group.find("(x"); paren != std::string_view::npos) {
      if (group.back() != ')') return std::nullopt;
      const std::optional<int> parsed = parse_integer(group.substr(paren + 2, group.size() - paren - 3));
      if (!parsed || *parsed < 1) return std::nullopt;
      repeat = *parsed;
      group = group.substr(0, paren);
    }
    const std::optional<int> count = parse_integer(group);
    if (!count) return std::nullopt;
    counts.insert(counts.end(), static_cast<size_t>(repeat), *count);
    if (comma == std::string_view::npos) return counts;
    text.remove_prefix(comma + 1);
  }
}

// The number of tasks on this node and the variable it came from; no value when Slurm
// does not say.
struct SlurmLocalSize {
  std::optional<int> value;
  const char* name;
};

SlurmLocalSize slurm_local_size(const Getter& get) {
  const char* name = is_set(get, "SLURM_NTASKS_PER_NODE") ? "SLURM_NTASKS_PER_NODE"
                                                          : "SLURM_STEP_TASKS_PER_NODE";
  const char* text = get(name);
  if (text == nullptr) return {std::nullopt, name};
  const std::optional<std::vector<int>> counts = parse_tasks_per_node(text);
  if (!counts)
    CADENZA_USER_ERROR(name << " is '" << text
                            << "'; expected task counts per node like 4, 4(x2) or 2,1");
  const std::optional<int> node = read_integer(get, "SLURM_NODEID");
  const bool node_listed = node && *node >= 0 && static_cast<size_t>(*node) < counts->size();
  return {(*counts)[node_listed ? static_cast<size_t>(*node) : 0], name};
}

// Copies MASTER_ADDR and MASTER_PORT when set, checking the port.
void read_master(const Getter& get, LaunchInfo& info) {
  if (const char* address = get("MASTER_ADDR")) info.master_addr = address;
  if (const std::optional<int> port = read_integer(get, "MASTER_PORT")) {
    if (*port < 1 || *port > 65535)
      CADENZA_USER_ERROR("MASTER_PORT is " << *port << "; expected a port in 1..65535");
    info.master_port = *port;
  }
}

// One launcher's rank and world size as its variables give them, for comparing launchers;
// nothing when either is unset or not an integer (the chosen launcher's own reading reports
// those).
struct WorldView {
  const char* launcher;  // for messages: "OpenMPI", "torchrun-style", ...
  const char* rank_name;
  const char* size_name;
  std::optional<int> rank, size;
};

WorldView view_world(const Getter& get, const char* launcher, const char* rank_name, const char* size_name) {
  WorldView view{launcher, rank_name, size_name, std::nullopt, std::nullopt};
  const char* rank = get(rank_name);
  const char* size = get(size_name);
  if (rank == nullptr || size == nullptr) return view;
  view.rank = parse_integer(rank);
  view.size = parse_integer(size);
  if (!view.rank || !view.size) view.rank = view.size = std::nullopt;
  return view;
}

bool in_slurm_step(const Getter& get) {
  return is_set(get, "SLURM_PROCID") && is_set(get, "SLURM_NTASKS") &&
         (is_set(get, "SLURM_STEP_ID") || is_set(get, "SLURM_STEPID"));
}

// torchrun's agent sets these for the workers it starts, and no other launcher does.
bool started_by_torchrun(const Getter& get) {
  return (is_set(get, kTorchrun.rank) || is_set(get, kTorchrun.world_size)) &&
         (is_set(get, "TORCHELASTIC_RUN_ID") || is_set(get, "GROUP_RANK"));
}

// Refuses when `other`'s rank or world size differs from the chosen launcher's (`chosen`).
void check_agreement(const WorldView& chosen, const WorldView& other) {
  if (!chosen.rank || !other.rank) return;
  if (*chosen.rank == *other.rank && *chosen.size == *other.size) return;
  CADENZA_USER_ERROR(chosen.rank_name << " = " << *chosen.rank << ", " << chosen.size_name << " = " << *chosen.size
                                      << " (" << chosen.launcher << ") disagree with " << other.rank_name << " = "
                                      << *other.rank << ", " << other.size_name << " = " << *other.size << " ("
                                      << other.launcher
                                      << "); unset the variables of the launcher that did not start this process");
}

void read_torchrun(const Getter& get, LaunchInfo& info) {
  info.launcher = "env";
  read_ranks(get, kTorchrun, info);
  read_master(get, info);
  if (info.world_size > 1 && info.master_addr.empty())
    CADENZA_USER_ERROR("MASTER_ADDR is not set; WORLD_SIZE = "
                       << info.world_size << " needs the host name or address of rank 0");
  if (info.world_size > 1 && info.master_port == 0)
    CADENZA_USER_ERROR("MASTER_PORT is not set; WORLD_SIZE = "
                       << info.world_size << " needs a free TCP port on rank 0's host");
  // torchrun compares with str(True) too (torch.distributed.rendezvous).
  const char* agent_store = get("TORCHELASTIC_USE_AGENT_STORE");
  info.agent_store = agent_store != nullptr && std::string_view(agent_store) == "True";
  if (info.agent_store && info.master_port == 65535)
    CADENZA_USER_ERROR("MASTER_PORT is 65535; with TORCHELASTIC_USE_AGENT_STORE=True torchrun's agent store "
                       "holds it and the rendezvous takes MASTER_PORT + 1, so expected a port in 1..65534");
}

}  // namespace

LaunchInfo detect_launch(const Getter& get) {
  LaunchInfo info;
  // torchrun starts its workers itself, so it is the innermost launcher even where they
  // inherit an outer one's variables (srun torchrun, one Slurm task per node).
  if (started_by_torchrun(get)) {
    read_torchrun(get, info);
    return info;
  }
  const WorldView open_mpi = view_world(get, "OpenMPI", kOpenMpi.rank, kOpenMpi.world_size);
  const WorldView pmi = view_world(get, "MPICH/PMI", kPmi.rank, kPmi.world_size);
  const WorldView slurm = in_slurm_step(get) ? view_world(get, "Slurm", "SLURM_PROCID", "SLURM_NTASKS")
                                             : WorldView{"Slurm", "SLURM_PROCID", "SLURM_NTASKS", {}, {}};
  const WorldView env = view_world(get, "torchrun-style, without TORCHELASTIC_RUN_ID", kTorchrun.rank,
                                   kTorchrun.world_size);
  if (is_set(get, kOpenMpi.rank) || is_set(get, kOpenMpi.world_size)) {
    info.launcher = "mpirun";
    read_ranks(get, kOpenMpi, info);
    // Not Slurm's: under Slurm, mpirun starts its daemons with srun, whose step variables
    // (one task per node) its ranks inherit.
    for (const WorldView* other : {&pmi, &env}) check_agreement(open_mpi, *other);
  } else if (is_set(get, kPmi.rank) || is_set(get, kPmi.world_size)) {
    info.launcher = "mpirun";
    read_ranks(get, kPmi, info);
    check_agreement(pmi, env);
  } else if (in_slurm_step(get)) {
    info.launcher = "slurm";
    read_world(get, "SLURM_PROCID", "SLURM_NTASKS", info);
    const SlurmLocalSize local_size = slurm_local_size(get);
    set_local(read_integer(get, "SLURM_LOCALID"), "SLURM_LOCALID", local_size.value,
              local_size.name, info);
    read_master(get, info);
    check_agreement(slurm, env);
  } else if (is_set(get, kTorchrun.rank) || is_set(get, kTorchrun.world_size)) {
    read_torchrun(get, info);
  }
  return info;
}

}  // namespace cadenza
