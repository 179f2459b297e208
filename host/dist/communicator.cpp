// The solo communicator: world size 1, where every collective is the identity (a sum or an
// average over one rank is the value itself).
#include "host/dist/communicator.hpp"

namespace cadenza {
namespace {

class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  void start_all_reduce(Tensor&, Reduction) override {}
  void wait_all() override {}
  void broadcast(Tensor&, int) override {}
  void all_reduce_host(std::vector<double>&) override {}
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_solo_communicator() { return std::make_unique<SoloCommunicator>(); }

}  // namespace cadenza
