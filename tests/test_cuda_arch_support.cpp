// Which devices a build's CUDA architectures can run on (core/cuda_arch_support.hpp).
#include <gtest/gtest.h>

#include "core/cuda_arch_support.hpp"

namespace embgeom {
namespace {

TEST(CudaArchSupport, TheDefaultBuildRunsOnAmpereAndLaterButNotTuring) {
    const std::string defaults = "80-real;90";       // CMakeLists.txt
    EXPECT_TRUE(cuda_archs_run_on(defaults, 8, 0));  // A100: its SASS
    EXPECT_TRUE(cuda_archs_run_on(defaults, 8, 6));  // A10, RTX 30xx: sm_80 SASS runs on 8.x
    EXPECT_TRUE(cuda_archs_run_on(defaults, 8, 9));  // L4, L40S
    EXPECT_TRUE(cuda_archs_run_on(defaults, 9, 0));  // H100, H200
    EXPECT_TRUE(
        cuda_archs_run_on(defaults, 10, 0));  // B200: compute_90 PTX, compiled by the driver
    EXPECT_TRUE(cuda_archs_run_on(defaults, 12, 0));
    EXPECT_FALSE(cuda_archs_run_on(defaults, 7, 5));  // T4
    EXPECT_FALSE(cuda_archs_run_on(defaults, 7, 0));  // V100
}

TEST(CudaArchSupport, RealVirtualAndVariantEntries) {
    EXPECT_FALSE(cuda_archs_run_on("80-real;90-real", 10, 0));  // no PTX to compile
    EXPECT_TRUE(cuda_archs_run_on("90-virtual", 9, 0));
    EXPECT_TRUE(cuda_archs_run_on("90-virtual", 10, 3));
    EXPECT_FALSE(cuda_archs_run_on("90-virtual", 8, 9));
    EXPECT_FALSE(cuda_archs_run_on("86-real", 8, 0));  // SASS for a later minor
    EXPECT_TRUE(cuda_archs_run_on("75", 8, 0));        // compute_75 PTX
    EXPECT_TRUE(cuda_archs_run_on("90a-real", 9, 0));
    EXPECT_FALSE(cuda_archs_run_on("90a", 10, 0));  // arch-specific: 9.0 only
    EXPECT_TRUE(cuda_archs_run_on("100f", 10, 3));
    EXPECT_FALSE(cuda_archs_run_on("100f", 12, 0));
    EXPECT_TRUE(cuda_archs_run_on("70,75 ; 80", 7, 5));  // commas, spaces
}

TEST(CudaArchSupport, CmakeKeywordsRunAnywhereAndJunkNowhere) {
    for (const char* k : {"all", "all-major", "native"}) EXPECT_TRUE(cuda_archs_run_on(k, 7, 5));
    EXPECT_FALSE(cuda_archs_run_on("", 9, 0));
    EXPECT_FALSE(cuda_archs_run_on("sm_90;9;90-fast;x0", 9, 0));
}

}  // namespace
}  // namespace embgeom
