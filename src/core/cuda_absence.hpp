#pragma once
// Why the CUDA runtime lists no device, said so that a user can act on it. cudaGetDeviceCount
// answers cudaErrorInsufficientDriver both where no NVIDIA driver is installed and where the
// driver is older than the runtime this build links: CUDA 13 needs driver 580 or later, so a
// cluster node on the 535 or 550 branch has a GPU this build cannot use, and "no GPU" would send
// its user looking in the wrong place. It answers cudaErrorNoDevice where CUDA_VISIBLE_DEVICES
// hides every GPU (an empty value, or indices the node does not have), and other errors where GPUs
// exist but cannot be used now (cudaErrorSystemNotReady on an NVSwitch machine whose fabric
// manager is not running, cudaErrorDevicesUnavailable when each GPU is held in exclusive mode).
// Host-only: the CUDA backend maps its cudaError to these inputs, so the wording is tested in CI.
#include <optional>
#include <string>

namespace embgeom {

/// What cudaGetDeviceCount and its neighbours said, when it found no device.
struct CudaDeviceCountFailure {
    enum class Kind { kNoDevice, kInsufficientDriver, kOther };
    Kind kind = Kind::kNoDevice;
    std::string error_name;   ///< cudaGetErrorName of the status, e.g. "cudaErrorSystemNotReady"
    std::string error_text;   ///< cudaGetErrorString of the status
    int driver_version = 0;   ///< cudaDriverGetVersion (1000 * major + 10 * minor); 0: no driver
    int runtime_version = 0;  ///< cudaRuntimeGetVersion of this build, same encoding
    std::optional<std::string> visible_devices;  ///< CUDA_VISIBLE_DEVICES, when it is set
};

/// One clause saying why no device is usable and what to change, with no leading capital and no
/// final period (it follows "no usable CUDA device: " in messages), e.g. "the NVIDIA driver
/// supports CUDA 12.4, older than the CUDA 13.0 runtime this build uses: update the driver to 580
/// or later, or rebuild embgeom with a CUDA 12 toolkit".
std::string no_cuda_device_reason(const CudaDeviceCountFailure& failure);

/// "13.0" for the runtime's and driver's version encoding 13000 (1000 * major + 10 * minor).
std::string cuda_version(int version);

/// The oldest Linux driver branch that runs the runtimes of a CUDA major version (NVIDIA's minor
/// version compatibility table: 11.x needs 450, 12.x 525, 13.x 580); 0 when not known.
int minimum_driver_for_cuda(int cuda_major);

}  // namespace embgeom
