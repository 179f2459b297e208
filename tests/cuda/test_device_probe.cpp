// [cuda] The device probe on a machine with a GPU: devices are listed with their
// compute capability, and the library versions the binary linked are reported.
#include <catch2/catch.hpp>

#include "host/core/context.hpp"

TEST_CASE("probe lists the usable devices and library versions", "[cuda]") {
  const cadenza::CudaAvailability cuda = cadenza::probe_cuda();
  REQUIRE(cuda.compiled);
  REQUIRE(cuda.usable);
  REQUIRE(cuda.device_count >= 1);
  CHECK_THAT(cuda.summary, Catch::Contains("cuda:0") && Catch::Contains("sm_") &&
                               Catch::Contains("cuDNN 9"));
}
