#include "embgeom/backend.hpp"
#include "core/device_ids.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {

std::unique_ptr<Backend> make_backend(BackendKind kind, int threads, std::string* notice) {
    return make_backend(kind, threads, {}, notice);
}

std::unique_ptr<Backend> make_backend(BackendKind kind, int threads, const std::vector<int>& devices,
                                      std::string* notice) {
    switch (kind) {
        case BackendKind::kCpu:
            return make_cpu_backend(threads);
        case BackendKind::kCuda:
            check_backend_request(kind, devices);
            return make_cuda_backend(devices);
        case BackendKind::kAuto: {
            std::string why;
            if (const int count = cuda_device_count(); count > 0) {
                check_device_ids(devices, count);  // a wrong id is the user's to fix, not a cue
                why = cuda_devices_unusable_reason(devices);
                // A listed GPU may still not start (held by another process in exclusive mode,
                // cuBLAS not on the library path, no memory for a context): auto then runs on the
                // CPU and says why, as for a machine without a GPU.
                if (why.empty()) try {
                        std::unique_ptr<Backend> cuda = make_cuda_backend(devices);
                        cuda->prepare();
                        return cuda;
                    } catch (const ResourceError& e) {
                        why = std::string("the CUDA backend could not start (") + e.what() + ")";
                    }
            }
            if (notice)
                *notice = !why.empty()   ? why + ": running on the CPU backend"
                          : cuda_built() ? "no usable CUDA device: " + cuda_no_device_reason() +
                                               "; running on the CPU backend"
                                         : "built without CUDA: running on the CPU backend";
            return make_cpu_backend(threads);
        }
    }
    throw ResourceError("unknown backend kind");
}

void check_backend_request(BackendKind kind, const std::vector<int>& devices) {
    switch (kind) {
        case BackendKind::kCpu:
            return;
        case BackendKind::kCuda:
            if (!cuda_built()) throw NotBuiltWithCuda();
            if (cuda_device_count() == 0)
                throw ResourceError("--backend cuda: no usable CUDA device: " +
                                    cuda_no_device_reason());
            check_device_ids(devices, cuda_device_count());
            if (const std::string why = cuda_devices_unusable_reason(devices); !why.empty())
                throw ResourceError("--backend cuda: " + why);
            return;
        case BackendKind::kAuto:
            if (cuda_device_count() > 0) check_device_ids(devices, cuda_device_count());
            return;
    }
}

}  // namespace embgeom
