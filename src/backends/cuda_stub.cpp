// CPU-only builds: the CUDA entry points exist and say clearly that CUDA was not built in.
#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {

int cuda_device_count() { return 0; }
bool cuda_built() { return false; }
std::string cuda_no_device_reason() { return "built without CUDA"; }
std::string cuda_devices_unusable_reason(const std::vector<int>&) { return ""; }
std::vector<int> cuda_all_devices(std::string* left_out) {
    if (left_out) left_out->clear();
    return {};
}
CudaMachineReport cuda_machine_report() {
    CudaMachineReport report;
    report.no_device_reason = cuda_no_device_reason();
    return report;
}
std::unique_ptr<Backend> make_cuda_backend() { throw NotBuiltWithCuda(); }
std::unique_ptr<Backend> make_cuda_backend(const std::vector<int>&) { throw NotBuiltWithCuda(); }

}  // namespace embgeom
