#include "core/cuda_absence.hpp"

namespace embgeom {

std::string cuda_version(int v) {
    return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

int minimum_driver_for_cuda(int cuda_major) {
    switch (cuda_major) {
        case 11:
            return 450;
        case 12:
            return 525;
        case 13:
            return 580;
        default:
            return 0;
    }
}

std::string no_cuda_device_reason(const CudaDeviceCountFailure& f) {
    using Kind = CudaDeviceCountFailure::Kind;
    const std::string runtime = f.runtime_version > 0 ? cuda_version(f.runtime_version) : "";
    switch (f.kind) {
        case Kind::kInsufficientDriver: {
            if (f.driver_version <= 0)
                return "no NVIDIA driver is loaded (no GPU here, or its driver is not installed)";
            std::string why = "the NVIDIA driver supports CUDA " + cuda_version(f.driver_version) +
                              ", older than the CUDA " +
                              (runtime.empty() ? std::string("runtime") : runtime + " runtime") +
                              " this build uses: update the driver";
            const int major = f.runtime_version / 1000;
            if (const int branch = minimum_driver_for_cuda(major); branch > 0)
                why += " to " + std::to_string(branch) + " or later";
            const int driver_major = f.driver_version / 1000;
            if (driver_major >= 11 && driver_major < major)
                why +=
                    ", or rebuild embgeom with a CUDA " + std::to_string(driver_major) + " toolkit";
            return why;
        }
        case Kind::kNoDevice:
            if (f.visible_devices) {
                if (f.visible_devices->empty())
                    return "CUDA_VISIBLE_DEVICES is set and empty, which hides every GPU";
                return "CUDA_VISIBLE_DEVICES=\"" + *f.visible_devices +
                       "\" names no GPU that the driver can see";
            }
            return "the NVIDIA driver sees no GPU";
        case Kind::kOther:
            break;
    }
    std::string why = "the CUDA runtime could not list the GPUs (" + f.error_name;
    if (!f.error_text.empty() && f.error_text != f.error_name) why += ": " + f.error_text;
    why += ")";
    if (f.error_name == "cudaErrorSystemNotReady")
        why += "; on an NVSwitch machine, start nvidia-fabricmanager";
    else if (f.error_name == "cudaErrorDevicesUnavailable")
        why += "; every GPU is busy or in exclusive-process mode";
    return why;
}

}  // namespace embgeom
