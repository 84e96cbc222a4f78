#pragma once
// The fixture of every GPU test: it skips, with the reason, where no CUDA device is usable, and
// fails instead when EMBGEOM_REQUIRE_GPU is set (scripts/gpu-validate sets it on a GPU machine).
#include <gtest/gtest.h>

#include <cstdlib>

#include "embgeom/backend.hpp"
#include "embgeom/build_info.hpp"

namespace embgeom::test {

class GpuTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (cuda_device_count() > 0) return;
        if (std::getenv("EMBGEOM_REQUIRE_GPU"))
            FAIL() << "EMBGEOM_REQUIRE_GPU set but no usable CUDA device: "
                   << cuda_no_device_reason();
        GTEST_SKIP() << (kCudaBuilt ? "no usable CUDA device: " + cuda_no_device_reason()
                                    : std::string("built without CUDA"));
    }
};

}  // namespace embgeom::test
