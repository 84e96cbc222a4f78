#pragma once
// `--devices all`: which GPUs of the machine share the all-pairs work. A config file that says
// devices = "all" then runs on whatever a batch scheduler hands the job (CUDA_VISIBLE_DEVICES),
// one GPU or eight, with no edit. The engines' merged result is bit for bit the one-device
// result only on GPUs of one model (cuBLAS may round another model's tiles differently), so
// "all" takes the model most of the usable GPUs share and says which it leaves out. Host-only:
// the CUDA backend fills the DeviceModel list from cudaGetDeviceProperties.
#include <string>
#include <vector>

namespace embgeom {

/// What the runtime says of one device.
struct DeviceModel {
    int id = 0;
    std::string name;           ///< cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3"
    int major = 0, minor = 0;   ///< compute capability
    bool runs_build = true;     ///< the build has code for it (core/cuda_arch_support.hpp)
};

/// The devices `--devices all` runs on, and the ones it leaves out.
struct AllDevicesChoice {
    std::vector<int> ids;  ///< ascending; empty when no device runs the build
    /// "" when every device is used; else one clause naming each device left out and why, e.g.
    /// "device 2 (NVIDIA A100-SXM4-80GB) is another model than devices 0,1 (NVIDIA H100 80GB
    /// HBM3), whose results it would not match bit for bit".
    std::string left_out;
};

/// Every device that runs the build, of the model (name and compute capability) that most of
/// them are; a tie goes to the model of the lowest id.
AllDevicesChoice choose_all_devices(const std::vector<DeviceModel>& devices);

/// "device 2" or "devices 0,1,3", as messages name a set of ids.
std::string device_ids_text(const std::vector<int>& ids);

}  // namespace embgeom
