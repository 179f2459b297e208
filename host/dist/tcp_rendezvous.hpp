// TCP rendezvous: rank 0 hands a few bytes (NCCL's unique id) to every other rank of a job
// launched without MPI (torchrun-style variables, or srun with MASTER_ADDR/MASTER_PORT).
//
// Protocol (all integers 4 bytes, network byte order, over one TCP connection per rank):
//   rank r > 0 -> rank 0:  "CDZ1", r, world_size
//   rank 0 -> rank r > 0:  "CDZ1", payload length, payload bytes
// Rank 0 answers only once all world_size - 1 ranks have announced themselves, then
// closes every connection.
//
// Invariants:
// - Every wait has a deadline: each phase (arrival or connecting, then the answer) ends
//   within timeout_seconds with a one-line error naming the port or MASTER_ADDR:MASTER_PORT,
//   never a hang. (Host name resolution, getaddrinfo, is the one call without a deadline.)
// - Every socket is closed on every path, errors included.
// - A wrong magic, a rank announced twice or outside [1, world_size), or a world size
//   other than rank 0's is an error: the ranks were launched inconsistently, or something
//   other than cadenza is on the port.
// - World size 1 touches no network.
// - The port is MASTER_PORT, or MASTER_PORT + 1 under torchrun's static rendezvous
//   (TORCHELASTIC_USE_AGENT_STORE=True), where torchrun's agent already listens on
//   MASTER_PORT with its own store; every message about the port names the one tried and
//   why.
#pragma once

#include <string>
#include <vector>

#include "host/dist/launch.hpp"

namespace cadenza {

// The TCP port of the rendezvous and where it comes from, for messages ("MASTER_PORT", or
// "MASTER_PORT + 1, ..." when torchrun's agent store holds MASTER_PORT).
struct RendezvousPort {
  int port = 0;
  std::string origin;
};
RendezvousPort rendezvous_port(const LaunchInfo& launch);

// Rank 0 listens on the rendezvous port (all interfaces); every other rank connects to
// master_addr on it, retrying until the deadline. Each rank sends its rank; rank 0
// waits for all world_size - 1 ranks, then sends each the root's `payload`. Returns rank 0's
// payload on every rank (rank 0 returns its own; other ranks' `payload` is not used).
std::vector<char> share_from_root(const LaunchInfo& launch, const std::vector<char>& payload,
                                  double timeout_seconds);

}  // namespace cadenza
