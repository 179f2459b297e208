// GradientReducer: averages the parameter gradients over the ranks of a data-parallel job,
// bucket by bucket while the backward pass is still running (as PyTorch's
// DistributedDataParallel does).
//
// Invariants:
// - Buckets are runs of adjacent parameters, taken from the last parameter backwards (the
//   order backward produces them), each about train.dist.bucket_mb large (a parameter
//   larger than that is a bucket of its own). A bucket is one contiguous range of the
//   arena's gradient region (alignment gaps included: they are zero on every rank).
// - A bucket's all-reduce starts as soon as the last of its parameters' layers has run
//   backward; finish() starts any bucket not yet started and orders what follows after
//   every reduction. Every rank starts the same buckets in the same order.
// - After finish() every rank holds the mean of the ranks' gradients, bit-identical.
#pragma once

#include <cstddef>
#include <vector>

#include "host/core/arena.hpp"
#include "host/dist/communicator.hpp"
#include "host/model/model.hpp"

namespace cadenza {

class GradientReducer final : public GradientListener {
 public:
  GradientReducer(const Arena& arena, const std::vector<NamedParameter>& parameters, std::size_t bucket_bytes,
                  Communicator& communicator);

  // Call before the step's backward pass.
  void begin_step();
  void gradients_ready(int first, int end) override;
  // Call after backward, before anything reads the gradients.
  void finish();

  struct Bucket {
    int first_parameter = 0, parameter_end = 0;
    Tensor gradients;  // the bucket's range of the gradient region (flat f32)
  };
  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  void start(std::size_t bucket);
  Communicator& communicator_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_parameter_;
  std::vector<int> waiting_;   // per bucket: parameters whose gradients are not yet final
  std::vector<bool> started_;
};

}  // namespace cadenza
