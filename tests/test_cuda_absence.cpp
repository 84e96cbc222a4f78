// Why no CUDA device is usable, in words that say what to change (core/cuda_absence.hpp).
#include <gtest/gtest.h>

#include "core/cuda_absence.hpp"

namespace embgeom {
namespace {

using Kind = CudaDeviceCountFailure::Kind;

CudaDeviceCountFailure failure(Kind kind, int driver, int runtime = 13000) {
    CudaDeviceCountFailure f;
    f.kind = kind;
    f.driver_version = driver;
    f.runtime_version = runtime;
    f.error_name = kind == Kind::kNoDevice ? "cudaErrorNoDevice" : "cudaErrorInsufficientDriver";
    return f;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(CudaAbsence, ADriverOlderThanTheRuntimeNamesBothVersionsAndTheBranchToUpdateTo) {
    // A cluster node on the 550 branch (CUDA 12.4) under a CUDA 13.0 build.
    const std::string why = no_cuda_device_reason(failure(Kind::kInsufficientDriver, 12040));
    EXPECT_TRUE(has(why, "CUDA 12.4")) << why;
    EXPECT_TRUE(has(why, "CUDA 13.0 runtime")) << why;
    EXPECT_TRUE(has(why, "update the driver to 580 or later")) << why;
    EXPECT_TRUE(has(why, "rebuild embgeom with a CUDA 12 toolkit")) << why;
    EXPECT_FALSE(has(why, "no NVIDIA driver")) << why;

    // A 12.8 build on a CUDA 11.8 driver: 525 is the branch that runs every 12.x runtime.
    const std::string older =
        no_cuda_device_reason(failure(Kind::kInsufficientDriver, 11080, 12080));
    EXPECT_TRUE(has(older, "CUDA 11.8, older than the CUDA 12.8 runtime")) << older;
    EXPECT_TRUE(has(older, "525 or later")) << older;
    EXPECT_TRUE(has(older, "CUDA 11 toolkit")) << older;

    // Same major, older minor (minor-version compatibility did not apply): no toolkit to name.
    const std::string minor =
        no_cuda_device_reason(failure(Kind::kInsufficientDriver, 13000, 13020));
    EXPECT_TRUE(has(minor, "580 or later")) << minor;
    EXPECT_FALSE(has(minor, "rebuild")) << minor;
}

TEST(CudaAbsence, NoDriverAtAllIsNotCalledAnOldDriver) {
    const std::string why = no_cuda_device_reason(failure(Kind::kInsufficientDriver, 0));
    EXPECT_TRUE(has(why, "no NVIDIA driver is loaded")) << why;
    EXPECT_FALSE(has(why, "update")) << why;
}

TEST(CudaAbsence, CudaVisibleDevicesHidingTheGpusIsNamed) {
    CudaDeviceCountFailure f = failure(Kind::kNoDevice, 13000);
    EXPECT_EQ(no_cuda_device_reason(f), "the NVIDIA driver sees no GPU");
    f.visible_devices = "";
    EXPECT_TRUE(has(no_cuda_device_reason(f), "CUDA_VISIBLE_DEVICES is set and empty"));
    f.visible_devices = "3";
    EXPECT_TRUE(has(no_cuda_device_reason(f), "CUDA_VISIBLE_DEVICES=\"3\" names no GPU"));
}

TEST(CudaAbsence, OtherErrorsNameTheRuntimesErrorAndKnownRemedies) {
    CudaDeviceCountFailure f;
    f.kind = Kind::kOther;
    f.error_name = "cudaErrorSystemNotReady";
    f.error_text = "system not yet initialized";
    const std::string why = no_cuda_device_reason(f);
    EXPECT_TRUE(has(why, "cudaErrorSystemNotReady: system not yet initialized")) << why;
    EXPECT_TRUE(has(why, "nvidia-fabricmanager")) << why;
    f.error_name = f.error_text = "cudaErrorDevicesUnavailable";
    EXPECT_TRUE(has(no_cuda_device_reason(f), "(cudaErrorDevicesUnavailable); every GPU is busy"));
}

TEST(CudaAbsence, EveryReasonIsOneClause) {
    for (const Kind kind : {Kind::kNoDevice, Kind::kInsufficientDriver, Kind::kOther})
        for (const int driver : {0, 11080, 12040, 13000}) {
            CudaDeviceCountFailure f = failure(kind, driver);
            f.visible_devices = driver == 0 ? std::optional<std::string>("") : std::nullopt;
            const std::string why = no_cuda_device_reason(f);
            ASSERT_FALSE(why.empty());
            EXPECT_EQ(why.find('\n'), std::string::npos) << why;
            EXPECT_TRUE(std::islower(static_cast<unsigned char>(why.front())) || why[0] == 'C')
                << why;
            EXPECT_NE(why.back(), '.') << why;
        }
}

TEST(CudaAbsence, MinimumDriverBranches) {
    EXPECT_EQ(minimum_driver_for_cuda(11), 450);
    EXPECT_EQ(minimum_driver_for_cuda(12), 525);
    EXPECT_EQ(minimum_driver_for_cuda(13), 580);
    EXPECT_EQ(minimum_driver_for_cuda(10), 0);
}

}  // namespace
}  // namespace embgeom
