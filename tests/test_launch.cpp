// Tests of launch detection (every launcher's variables, their precedence, srun torchrun,
// launchers that disagree, the defaults and every error message), of the rendezvous port
// (MASTER_PORT + 1 beside torchrun's agent store) and of the TCP rendezvous (ranks as
// threads of this process on 127.0.0.1: the payload reaches every rank, beside an agent
// store too; a missing rank, a missing rank 0, a busy port, a duplicate or foreign
// greeting and a foreign answer each end in one clear error within the timeout).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "host/core/error.hpp"
#include "host/dist/launch.hpp"
#include "host/dist/tcp_rendezvous.hpp"
#include "test_support.hpp"

namespace cadenza {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using cadenza::testing::user_error_message;
using Variables = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;

LaunchInfo detect(const Variables& variables) {
  return detect_launch([&](const char* name) -> const char* {
    const auto found = variables.find(name);
    return found == variables.end() ? nullptr : found->second.c_str();
  });
}

std::string launch_error(const Variables& variables) {
  return user_error_message([&] { detect(variables); });
}

void check_ranks(const LaunchInfo& info, int rank, int world_size, int local_rank, int local_world_size) {
  CHECK(info.rank == rank);
  CHECK(info.world_size == world_size);
  CHECK(info.local_rank == local_rank);
  CHECK(info.local_world_size == local_world_size);
}

TEST_CASE("detect_launch reads each launcher's variables", "[cpu][dist]") {
  SECTION("nothing set: a single process") {
    const LaunchInfo info = detect({{"HOME", "/root"}, {"LOCAL_RANK", "0"}});
    CHECK(info.launcher == "single");
    check_ranks(info, 0, 1, 0, 1);
    CHECK(info.master_addr.empty());
    CHECK(info.master_port == 0);
  }
  SECTION("OpenMPI") {
    const LaunchInfo info = detect({{"OMPI_COMM_WORLD_RANK", "5"},
                                    {"OMPI_COMM_WORLD_SIZE", "8"},
                                    {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                    {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}});
    CHECK(info.launcher == "mpirun");
    check_ranks(info, 5, 8, 1, 4);
    CHECK(info.master_addr.empty());
  }
  SECTION("MPICH / PMI") {
    const LaunchInfo info = detect(
        {{"PMI_RANK", "2"}, {"PMI_SIZE", "3"}, {"MPI_LOCALRANKID", "0"}, {"MPI_LOCALNRANKS", "1"}});
    CHECK(info.launcher == "mpirun");
    check_ranks(info, 2, 3, 0, 1);
  }
  SECTION("Slurm step, tasks per node as a repeat count indexed by node") {
    const LaunchInfo info = detect({{"SLURM_PROCID", "6"},
                                    {"SLURM_NTASKS", "8"},
                                    {"SLURM_LOCALID", "2"},
                                    {"SLURM_NODEID", "1"},
                                    {"SLURM_NTASKS_PER_NODE", "4(x2)"},
                                    {"SLURM_STEP_ID", "0"},
                                    {"MASTER_ADDR", "node-a"},
                                    {"MASTER_PORT", "29500"}});
    CHECK(info.launcher == "slurm");
    check_ranks(info, 6, 8, 2, 4);
    CHECK(info.master_addr == "node-a");
    CHECK(info.master_port == 29500);
  }
  SECTION("Slurm tasks per node as a list: this node's count, else the first") {
    Variables variables{{"SLURM_PROCID", "2"},           {"SLURM_NTASKS", "3"},
                        {"SLURM_LOCALID", "0"},          {"SLURM_NODEID", "1"},
                        {"SLURM_NTASKS_PER_NODE", "2,1"}, {"SLURM_STEPID", "3"}};
    check_ranks(detect(variables), 2, 3, 0, 1);
    CHECK(detect(variables).master_addr.empty());
    variables.erase("SLURM_NODEID");
    check_ranks(detect(variables), 2, 3, 0, 2);
    variables["SLURM_NTASKS_PER_NODE"] = "2(x3),1";
    variables["SLURM_NODEID"] = "3";
    check_ranks(detect(variables), 2, 3, 0, 1);
  }
  SECTION("Slurm without SLURM_NTASKS_PER_NODE takes the step's tasks per node") {
    const LaunchInfo info = detect({{"SLURM_PROCID", "1"},
                                    {"SLURM_NTASKS", "2"},
                                    {"SLURM_LOCALID", "1"},
                                    {"SLURM_STEP_TASKS_PER_NODE", "2"},
                                    {"SLURM_STEP_ID", "0"}});
    check_ranks(info, 1, 2, 1, 2);
  }
  SECTION("an sbatch script outside srun is a single process") {
    const LaunchInfo info = detect(
        {{"SLURM_JOB_ID", "1234"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_NODEID", "0"}});
    CHECK(info.launcher == "single");
    check_ranks(info, 0, 1, 0, 1);
  }
  SECTION("torchrun-style variables") {
    const LaunchInfo info = detect({{"RANK", "3"},
                                    {"WORLD_SIZE", "4"},
                                    {"LOCAL_RANK", "1"},
                                    {"LOCAL_WORLD_SIZE", "2"},
                                    {"MASTER_ADDR", "10.0.0.1"},
                                    {"MASTER_PORT", "29500"}});
    CHECK(info.launcher == "env");
    check_ranks(info, 3, 4, 1, 2);
    CHECK(info.master_addr == "10.0.0.1");
    CHECK(info.master_port == 29500);
  }
  SECTION("torchrun-style defaults: local rank 0 of 1; no master needed for one process") {
    const LaunchInfo info = detect({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
    CHECK(info.launcher == "env");
    check_ranks(info, 0, 1, 0, 1);
    CHECK(info.master_addr.empty());
    CHECK(info.master_port == 0);
  }
  SECTION("a local rank without a local size makes the node at least that large") {
    const LaunchInfo info = detect({{"RANK", "2"},
                                    {"WORLD_SIZE", "4"},
                                    {"LOCAL_RANK", "2"},
                                    {"MASTER_ADDR", "h"},
                                    {"MASTER_PORT", "1"}});
    check_ranks(info, 2, 4, 2, 3);
  }
}

TEST_CASE("detect_launch precedence: torchrun's workers, then OpenMPI, then PMI, then Slurm, then env",
          "[cpu][dist]") {
  // Every launcher says rank 1 of 2; the local rank tells which one was read.
  const Variables open_mpi{{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}};
  const Variables pmi{{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}, {"MPI_LOCALRANKID", "1"}};
  const Variables slurm{
      {"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_STEP_ID", "0"}, {"SLURM_LOCALID", "2"}};
  const Variables env{
      {"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "3"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "9"}};
  const Variables torchrun_marks{{"TORCHELASTIC_RUN_ID", "none"}, {"GROUP_RANK", "0"}};
  const auto merged = [](std::initializer_list<Variables> parts) {
    Variables all;
    for (const Variables& part : parts) all.insert(part.begin(), part.end());
    return all;
  };
  const LaunchInfo torchrun_first = detect(merged({open_mpi, pmi, slurm, env, torchrun_marks}));
  CHECK(torchrun_first.launcher == "env");
  CHECK(torchrun_first.local_rank == 3);
  const LaunchInfo everything = detect(merged({open_mpi, pmi, slurm, env}));
  CHECK(everything.launcher == "mpirun");
  CHECK(everything.local_rank == 0);
  const LaunchInfo pmi_first = detect(merged({pmi, slurm, env}));
  CHECK(pmi_first.launcher == "mpirun");
  CHECK(pmi_first.local_rank == 1);
  const LaunchInfo slurm_first = detect(merged({slurm, env}));
  CHECK(slurm_first.launcher == "slurm");
  CHECK(slurm_first.local_rank == 2);
  CHECK(slurm_first.master_addr == "h");
  CHECK(detect(env).local_rank == 3);
  // A lower launcher's variables are not read once a higher one is chosen.
  CHECK(detect(merged({open_mpi, {{"RANK", "x"}}})).launcher == "mpirun");
}

TEST_CASE("detect_launch under srun torchrun takes torchrun's ranks", "[cpu][dist]") {
  // One Slurm task per node runs torchrun, whose workers inherit the task's variables.
  Variables worker{{"SLURM_PROCID", "0"},        {"SLURM_NTASKS", "1"},     {"SLURM_STEP_ID", "0"},
                   {"SLURM_LOCALID", "0"},       {"SLURM_NODEID", "0"},     {"SLURM_NTASKS_PER_NODE", "1"},
                   {"RANK", "1"},                {"WORLD_SIZE", "2"},       {"LOCAL_RANK", "1"},
                   {"LOCAL_WORLD_SIZE", "2"},    {"MASTER_ADDR", "node-a"}, {"MASTER_PORT", "29555"},
                   {"TORCHELASTIC_RUN_ID", "7"}, {"GROUP_RANK", "0"}};
  const auto check_worker = [](const LaunchInfo& info) {
    CHECK(info.launcher == "env");
    check_ranks(info, 1, 2, 1, 2);
    CHECK(info.master_addr == "node-a");
    CHECK(info.master_port == 29555);
  };
  SECTION("both of torchrun's marks") { check_worker(detect(worker)); }
  SECTION("only TORCHELASTIC_RUN_ID") {
    worker.erase("GROUP_RANK");
    check_worker(detect(worker));
  }
  SECTION("only GROUP_RANK") {
    worker.erase("TORCHELASTIC_RUN_ID");
    check_worker(detect(worker));
  }
  SECTION("torchrun under mpirun") {
    worker.insert({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "1"}});
    check_worker(detect(worker));
  }
  SECTION("without torchrun's marks the two launchers disagree") {
    worker.erase("GROUP_RANK");
    worker.erase("TORCHELASTIC_RUN_ID");
    CHECK(launch_error(worker) ==
          "SLURM_PROCID = 0, SLURM_NTASKS = 1 (Slurm) disagree with RANK = 1, WORLD_SIZE = 2 (torchrun-style, "
          "without TORCHELASTIC_RUN_ID); unset the variables of the launcher that did not start this process");
  }
}

TEST_CASE("the rendezvous port: MASTER_PORT, or MASTER_PORT + 1 beside torchrun's agent store", "[cpu][dist]") {
  Variables worker{{"RANK", "1"},        {"WORLD_SIZE", "2"},         {"MASTER_ADDR", "node-a"},
                   {"MASTER_PORT", "29500"}, {"TORCHELASTIC_RUN_ID", "7"}, {"GROUP_RANK", "0"}};
  SECTION("torchrun's static rendezvous (its default): the agent holds MASTER_PORT") {
    worker["TORCHELASTIC_USE_AGENT_STORE"] = "True";
    const LaunchInfo info = detect(worker);
    CHECK(info.agent_store);
    CHECK(info.master_port == 29500);
    const RendezvousPort port = rendezvous_port(info);
    CHECK(port.port == 29501);
    CHECK(port.origin ==
          "MASTER_PORT + 1: torchrun's agent store holds MASTER_PORT = 29500 (TORCHELASTIC_USE_AGENT_STORE=True)");
    worker["MASTER_PORT"] = "65535";
    CHECK(launch_error(worker) ==
          "MASTER_PORT is 65535; with TORCHELASTIC_USE_AGENT_STORE=True torchrun's agent store holds it and the "
          "rendezvous takes MASTER_PORT + 1, so expected a port in 1..65534");
  }
  SECTION("torchrun's other rendezvous backends, another launcher, or no torchrun: MASTER_PORT") {
    worker["TORCHELASTIC_USE_AGENT_STORE"] = "False";
    for (const LaunchInfo& info :
         {detect(worker), detect({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_STEP_ID", "0"},
                                  {"MASTER_ADDR", "node-a"}, {"MASTER_PORT", "29500"},
                                  {"TORCHELASTIC_USE_AGENT_STORE", "True"}}),
          detect({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "node-a"}, {"MASTER_PORT", "29500"}})}) {
      CHECK_FALSE(info.agent_store);
      CHECK(rendezvous_port(info).port == 29500);
      CHECK(rendezvous_port(info).origin == "MASTER_PORT");
    }
  }
}

TEST_CASE("detect_launch refuses launchers that disagree, but not mpirun inside Slurm", "[cpu][dist]") {
  const Variables env{{"RANK", "0"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "9"}};
  // mpirun under Slurm: its daemons run as a step of one task per node.
  const LaunchInfo mpirun_in_slurm = detect({{"OMPI_COMM_WORLD_RANK", "5"},
                                             {"OMPI_COMM_WORLD_SIZE", "8"},
                                             {"SLURM_PROCID", "1"},
                                             {"SLURM_NTASKS", "2"},
                                             {"SLURM_STEP_ID", "0"}});
  CHECK(mpirun_in_slurm.launcher == "mpirun");
  check_ranks(mpirun_in_slurm, 5, 8, 0, 1);

  Variables open_mpi_and_env = env;
  open_mpi_and_env.insert({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}});
  CHECK(launch_error(open_mpi_and_env) ==
        "OMPI_COMM_WORLD_RANK = 0, OMPI_COMM_WORLD_SIZE = 2 (OpenMPI) disagree with RANK = 0, WORLD_SIZE = 4 "
        "(torchrun-style, without TORCHELASTIC_RUN_ID); unset the variables of the launcher that did not start "
        "this process");
  CHECK(launch_error({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"PMI_RANK", "0"}, {"PMI_SIZE", "2"}}) ==
        "OMPI_COMM_WORLD_RANK = 1, OMPI_COMM_WORLD_SIZE = 2 (OpenMPI) disagree with PMI_RANK = 0, PMI_SIZE = 2 "
        "(MPICH/PMI); unset the variables of the launcher that did not start this process");
  Variables pmi_and_env = env;
  pmi_and_env.insert({{"PMI_RANK", "1"}, {"PMI_SIZE", "4"}});
  CHECK_THAT(launch_error(pmi_and_env), StartsWith("PMI_RANK = 1, PMI_SIZE = 4 (MPICH/PMI) disagree with RANK = 0"));
  Variables slurm_and_env = env;
  slurm_and_env.insert({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_STEPID", "0"}});
  CHECK_THAT(launch_error(slurm_and_env),
             StartsWith("SLURM_PROCID = 0, SLURM_NTASKS = 2 (Slurm) disagree with RANK = 0, WORLD_SIZE = 4"));
  // Outside a job step Slurm's variables are not a launcher's, so nothing disagrees.
  slurm_and_env.erase("SLURM_STEPID");
  CHECK(detect(slurm_and_env).launcher == "env");
}

TEST_CASE("detect_launch errors name the variable and what was expected", "[cpu][dist]") {
  const Variables two_ranks{{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "29500"}};
  const auto with = [&](const Variables& changes) {
    Variables variables = two_ranks;
    for (const auto& [name, value] : changes) variables[name] = value;
    return variables;
  };
  const auto without = [&](const std::string& name) {
    Variables variables = two_ranks;
    variables.erase(name);
    return variables;
  };

  CHECK(launch_error(with({{"RANK", "x"}})) == "RANK is 'x'; expected an integer");
  CHECK(launch_error(with({{"RANK", ""}})) == "RANK is ''; expected an integer");
  CHECK(launch_error(with({{"WORLD_SIZE", "2.0"}})) == "WORLD_SIZE is '2.0'; expected an integer");
  CHECK(launch_error(with({{"LOCAL_RANK", "1 "}})) == "LOCAL_RANK is '1 '; expected an integer");
  CHECK(launch_error(with({{"RANK", "99999999999"}})) == "RANK is '99999999999'; expected an integer");
  CHECK(launch_error(without("WORLD_SIZE")) ==
        "RANK is set but WORLD_SIZE is not; set both (or neither for a single process)");
  CHECK(launch_error(without("RANK")) ==
        "WORLD_SIZE is set but RANK is not; set both (or neither for a single process)");
  CHECK(launch_error(with({{"RANK", "2"}})) == "RANK is 2; expected a value in [0, WORLD_SIZE = 2)");
  CHECK(launch_error(with({{"RANK", "-1"}})) == "RANK is -1; expected a value in [0, WORLD_SIZE = 2)");
  CHECK(launch_error(with({{"RANK", "0"}, {"WORLD_SIZE", "0"}})) == "WORLD_SIZE is 0; expected at least 1");
  CHECK(launch_error(with({{"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}})) ==
        "LOCAL_RANK is 2; expected a value in [0, LOCAL_WORLD_SIZE = 2)");
  CHECK(launch_error(with({{"LOCAL_RANK", "-1"}})) == "LOCAL_RANK is -1; expected 0 or more");
  CHECK(launch_error(with({{"LOCAL_WORLD_SIZE", "0"}})) == "LOCAL_WORLD_SIZE is 0; expected at least 1");
  CHECK(launch_error(without("MASTER_ADDR")) ==
        "MASTER_ADDR is not set; WORLD_SIZE = 2 needs the host name or address of rank 0");
  CHECK(launch_error(with({{"MASTER_ADDR", ""}})) ==
        "MASTER_ADDR is not set; WORLD_SIZE = 2 needs the host name or address of rank 0");
  CHECK(launch_error(without("MASTER_PORT")) ==
        "MASTER_PORT is not set; WORLD_SIZE = 2 needs a free TCP port on rank 0's host");
  CHECK(launch_error(with({{"MASTER_PORT", "0"}})) == "MASTER_PORT is 0; expected a port in 1..65535");
  CHECK(launch_error(with({{"MASTER_PORT", "65536"}})) ==
        "MASTER_PORT is 65536; expected a port in 1..65535");
  CHECK(launch_error(with({{"MASTER_PORT", "http"}})) == "MASTER_PORT is 'http'; expected an integer");

  // The other launchers name their own variables.
  CHECK(launch_error({{"OMPI_COMM_WORLD_RANK", "4"}, {"OMPI_COMM_WORLD_SIZE", "4"}}) ==
        "OMPI_COMM_WORLD_RANK is 4; expected a value in [0, OMPI_COMM_WORLD_SIZE = 4)");
  CHECK(launch_error({{"OMPI_COMM_WORLD_RANK", "0"}}) ==
        "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not; set both (or neither for a "
        "single process)");
  CHECK(launch_error({{"PMI_RANK", "0"}, {"PMI_SIZE", "2"}, {"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "1"}}) ==
        "MPI_LOCALRANKID is 1; expected a value in [0, MPI_LOCALNRANKS = 1)");
  const Variables slurm{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_STEP_ID", "0"}, {"SLURM_LOCALID", "1"}};
  Variables slurm_bad_tasks = slurm;
  slurm_bad_tasks["SLURM_NTASKS_PER_NODE"] = "4(x";
  CHECK(launch_error(slurm_bad_tasks) ==
        "SLURM_NTASKS_PER_NODE is '4(x'; expected task counts per node like 4, 4(x2) or 2,1");
  Variables slurm_one_per_node = slurm;
  slurm_one_per_node["SLURM_NTASKS_PER_NODE"] = "1";
  CHECK(launch_error(slurm_one_per_node) ==
        "SLURM_LOCALID is 1; expected a value in [0, SLURM_NTASKS_PER_NODE = 1)");
  Variables slurm_bad_port = slurm;
  slurm_bad_port["MASTER_PORT"] = "-5";
  CHECK(launch_error(slurm_bad_port) == "MASTER_PORT is -5; expected a port in 1..65535");
}

// ---- share_from_root ----

// A TCP port on 127.0.0.1 that nothing listened on a moment ago (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  REQUIRE(bound);
  return ntohs(address.sin_port);
}

// Whether nothing listens on 127.0.0.1:port (binding it succeeds).
bool port_is_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return bound;
}

// A free port whose successor is free too (MASTER_PORT and the rendezvous beside an agent store).
int free_port_pair() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = free_port();
    if (port < 65535 && port_is_free(port + 1)) return port;
  }
  FAIL("no two adjacent free ports on 127.0.0.1 in 100 attempts");
  return 0;
}

// Listens on every interface's `port` until destroyed (a stand-in for another program).
class PortBlocker {
 public:
  explicit PortBlocker(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons(static_cast<uint16_t>(port));
    listening_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                 ::listen(fd_, 1) == 0;
  }
  ~PortBlocker() {
    if (fd_ >= 0) ::close(fd_);
  }
  PortBlocker(const PortBlocker&) = delete;
  PortBlocker& operator=(const PortBlocker&) = delete;
  bool listening() const { return listening_; }

 private:
  int fd_;
  bool listening_ = false;
};

LaunchInfo rank_on_localhost(int rank, int world_size, int port) {
  LaunchInfo launch;
  launch.launcher = "env";
  launch.rank = rank;
  launch.world_size = world_size;
  launch.master_addr = "127.0.0.1";
  launch.master_port = port;
  return launch;
}

// What one rank's share_from_root gave: the payload, or the UserError's message.
struct Outcome {
  std::vector<char> payload;
  std::string error;
};

std::future<Outcome> start_rank(const LaunchInfo& launch, const std::vector<char>& payload, double timeout_seconds) {
  return std::async(std::launch::async, [=] {
    try {
      return Outcome{share_from_root(launch, payload, timeout_seconds), ""};
    } catch (const UserError& error) {
      return Outcome{{}, error.what()};
    }
  });
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Connects to 127.0.0.1:port (retrying while nobody listens, up to 2 s), sends `bytes` and
// keeps the connection open; the returned descriptor is the caller's to close.
int connect_and_send(int port, const std::string& bytes) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const Clock::time_point start = Clock::now();
  while (true) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
      return fd;
    }
    ::close(fd);
    REQUIRE(seconds_since(start) < 2.0);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// A greeting as a rank would send it: "CDZ1", rank, world size (network byte order).
std::string greeting(uint32_t rank, uint32_t world_size) {
  std::string bytes = "CDZ1";
  for (const uint32_t value : {rank, world_size})
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>((value >> shift) & 0xff));
  return bytes;
}

TEST_CASE("share_from_root gives rank 0's payload to every rank", "[cpu][dist]") {
  const int port = free_port();
  std::vector<char> root_payload(300);
  for (size_t i = 0; i < root_payload.size(); ++i) root_payload[i] = static_cast<char>(i % 5 == 0 ? 0 : i * 7);

  // The other ranks start first, so they retry until rank 0 listens.
  std::future<Outcome> rank1 = start_rank(rank_on_localhost(1, 3, port), {'x'}, 5.0);
  std::future<Outcome> rank2 = start_rank(rank_on_localhost(2, 3, port), {}, 5.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::future<Outcome> rank0 = start_rank(rank_on_localhost(0, 3, port), root_payload, 5.0);
  for (std::future<Outcome>* rank : {&rank0, &rank1, &rank2}) {
    const Outcome outcome = rank->get();
    CHECK(outcome.error.empty());
    CHECK(outcome.payload == root_payload);
  }
}

TEST_CASE("share_from_root with one rank or without a master address", "[cpu][dist]") {
  const std::vector<char> payload{'a', '\0', 'b'};
  LaunchInfo single;
  CHECK(share_from_root(single, payload, 0.0) == payload);
  LaunchInfo slurm_without_master = rank_on_localhost(1, 2, 0);
  slurm_without_master.launcher = "slurm";
  slurm_without_master.master_addr.clear();
  CHECK(user_error_message([&] { share_from_root(slurm_without_master, payload, 0.5); }) ==
        "a 2-process job launched by slurm needs MASTER_ADDR and MASTER_PORT for its rendezvous; "
        "set them to rank 0's host and a free TCP port there");
}

TEST_CASE("share_from_root beside torchrun's agent store uses MASTER_PORT + 1", "[cpu][dist]") {
  const int port = free_port_pair();
  // torchrun's agent listening on MASTER_PORT with its own store.
  const PortBlocker agent_store(port);
  REQUIRE(agent_store.listening());
  const auto beside_agent = [&](int rank) {
    LaunchInfo launch = rank_on_localhost(rank, 2, port);
    launch.agent_store = true;
    return launch;
  };
  SECTION("the payload reaches every rank") {
    const std::vector<char> payload{'i', 'd'};
    std::future<Outcome> rank1 = start_rank(beside_agent(1), {}, 5.0);
    const Outcome root = start_rank(beside_agent(0), payload, 5.0).get();
    CHECK(root.error.empty());
    const Outcome other = rank1.get();
    CHECK(other.error.empty());
    CHECK(other.payload == payload);
  }
  SECTION("MASTER_PORT + 1 in use is named as such") {
    const PortBlocker next(port + 1);
    REQUIRE(next.listening());
    const std::string tried = std::to_string(port + 1);
    CHECK(start_rank(beside_agent(0), {}, 0.5).get().error ==
          "rendezvous on port " + tried + ": port " + tried + " (MASTER_PORT + 1: torchrun's agent store holds "
          "MASTER_PORT = " + std::to_string(port) + " (TORCHELASTIC_USE_AGENT_STORE=True)) is in use; choose "
          "another MASTER_PORT");
  }
}

TEST_CASE("share_from_root errors end within the timeout and say what is wrong", "[cpu][dist]") {
  const int port = free_port();
  const std::string on_port = "rendezvous on port " + std::to_string(port) + ": ";

  SECTION("a rank that never arrives") {
    const Clock::time_point start = Clock::now();
    const Outcome root = start_rank(rank_on_localhost(0, 2, port), {'p'}, 0.5).get();
    CHECK(root.error == on_port + "rank 1 of 2 did not arrive within 0.5 s");
    CHECK(seconds_since(start) < 1.5);
  }
  SECTION("several ranks that never arrive are all listed") {
    std::future<Outcome> rank0 = start_rank(rank_on_localhost(0, 4, port), {'p'}, 0.5);
    // Rank 1 would wait longer; it hears of the failure when rank 0 gives up and hangs up.
    const Outcome rank1 = start_rank(rank_on_localhost(1, 4, port), {}, 2.0).get();
    CHECK(rank1.error == "rendezvous with 127.0.0.1:" + std::to_string(port) +
                             ": rank 0 closed the connection before sending its payload (see rank 0's error)");
    CHECK(rank0.get().error == on_port + "ranks 2, 3 of 4 did not arrive within 0.5 s");
  }
  SECTION("a rank > 0 with nobody listening") {
    const Clock::time_point start = Clock::now();
    const Outcome rank1 = start_rank(rank_on_localhost(1, 2, port), {}, 0.5).get();
    CHECK_THAT(rank1.error, StartsWith("rendezvous with 127.0.0.1:" + std::to_string(port) +
                                       ": no answer from rank 0 within 0.5 s (is rank 0 running, and "
                                       "is the port open?); last attempt: "));
    CHECK(seconds_since(start) >= 0.45);
    CHECK(seconds_since(start) < 1.5);
  }
  SECTION("a port in use") {
    const PortBlocker blocker(port);
    REQUIRE(blocker.listening());
    const Outcome root = start_rank(rank_on_localhost(0, 2, port), {}, 0.5).get();
    CHECK(root.error == on_port + "port " + std::to_string(port) + " (MASTER_PORT) is in use; choose another MASTER_PORT");
  }
  SECTION("a rank announced twice") {
    std::future<Outcome> rank0 = start_rank(rank_on_localhost(0, 3, port), {'p'}, 2.0);
    std::future<Outcome> first = start_rank(rank_on_localhost(1, 3, port), {}, 2.0);
    std::future<Outcome> second = start_rank(rank_on_localhost(1, 3, port), {}, 2.0);
    CHECK_THAT(rank0.get().error, StartsWith(on_port + "rank 1 announced itself twice (from ") &&
                                      Contains("); check each process's RANK"));
    CHECK_THAT(first.get().error, Contains("rank 0 closed the connection before sending its payload"));
    CHECK_THAT(second.get().error, Contains("rank 0 closed the connection before sending its payload"));
  }
  SECTION("ranks launched with another world size") {
    std::future<Outcome> rank0 = start_rank(rank_on_localhost(0, 2, port), {'p'}, 2.0);
    const Outcome rank1 = start_rank(rank_on_localhost(1, 3, port), {}, 2.0).get();
    CHECK_THAT(rank0.get().error, StartsWith(on_port + "rank 1 at ") &&
                                      Contains(" has world size 3, rank 0 has 2; every process needs the "
                                               "same WORLD_SIZE"));
    CHECK_THAT(rank1.error, Contains("rank 0 closed the connection"));
  }
  SECTION("a greeting with a rank out of range") {
    std::future<Outcome> rank0 = start_rank(rank_on_localhost(0, 2, port), {'p'}, 2.0);
    const int fd = connect_and_send(port, greeting(7, 2));
    const std::string error = rank0.get().error;
    ::close(fd);
    CHECK_THAT(error, StartsWith(on_port) &&
                          Contains(" announced rank 7, outside 1..1 for a world of 2; check each process's RANK"));
  }
  SECTION("something other than a rank connects to rank 0") {
    std::future<Outcome> rank0 = start_rank(rank_on_localhost(0, 2, port), {'p'}, 2.0);
    const int fd = connect_and_send(port, "GET / HTTP/1.0\r\n\r\n");
    const std::string error = rank0.get().error;
    ::close(fd);
    CHECK_THAT(error, StartsWith(on_port) &&
                          Contains("sent something other than a cadenza rank's greeting (no CDZ1); is "
                                   "another program using this port?"));
  }
  SECTION("something other than rank 0 answers") {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    std::future<Outcome> rank1 = start_rank(rank_on_localhost(1, 2, port), {}, 2.0);
    pollfd entry{listener, POLLIN, 0};
    REQUIRE(::poll(&entry, 1, 2000) == 1);
    const int connection = ::accept(listener, nullptr, nullptr);
    REQUIRE(connection >= 0);
    const std::string answer = "HTTP/1.0 400 Bad Request\r\n\r\n";
    CHECK(::send(connection, answer.data(), answer.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(answer.size()));
    const std::string error = rank1.get().error;
    ::close(connection);
    ::close(listener);
    CHECK(error == "rendezvous with 127.0.0.1:" + std::to_string(port) +
                       ": the answer does not start with CDZ1; something other than cadenza's rank 0 "
                       "is listening on that port");
  }
}

}  // namespace
}  // namespace cadenza
