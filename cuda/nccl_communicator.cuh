// The CUDA backend's Communicator over NCCL: one process (or thread) per GPU, the
// collectives on a communication stream of its own, ordered against the backend's compute
// stream by events. Plain C++ header (no NCCL or CUDA types), so host code includes it in
// every build: without NCCL (or without CUDA) make_nccl_communicator is the inline
// fallback below, which throws a UserError saying so, and callers compile and link either
// way. The invariants are communicator.hpp's; nccl_communicator.cu says how this
// implementation keeps them.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "host/core/error.hpp"
#include "host/dist/communicator.hpp"
#include "host/ops/backend.hpp"

namespace cadenza::cuda {

// Every rank returns root's bytes (used to share the ncclUniqueId); provided by the caller
// (MPI_Bcast under mpirun, a TCP rendezvous otherwise). Rank 0 passes the payload, the
// others an empty vector.
using ShareFromRoot = std::function<std::vector<char>(const std::vector<char>& root_payload)>;

// A Communicator over NCCL for `backend` (must be a CudaBackend, else a clear Error), as
// rank `rank` of `world_size`. Creating it is collective: every rank calls this, and it
// returns when all have joined, or throws an Error after `timeout_seconds`. The same
// timeout bounds every later host wait of the communicator. `backend` must outlive it.
#ifdef CADENZA_WITH_NCCL
std::unique_ptr<Communicator> make_nccl_communicator(Backend& backend, int rank, int world_size,
                                                     const ShareFromRoot& share_from_root,
                                                     double timeout_seconds);
#else
inline std::unique_ptr<Communicator> make_nccl_communicator(Backend&, int, int, const ShareFromRoot&,
                                                            double) {
  CADENZA_USER_ERROR("this build has no NCCL (configured without it); multi-GPU training needs it");
}
#endif

}  // namespace cadenza::cuda
