// `embgeom devices`: what a job on this machine would find before it is submitted: the driver, the
// runtime and cuBLAS, every GPU with its capability and free memory, whether this build runs on it
// and starts there, and what `--devices all` would take. Exit 4 where no GPU is ready, so a batch
// script can check with `embgeom devices >/dev/null` before it queues a GPU job.
#include <iomanip>

#include "cli/commands.hpp"
#include "core/all_devices.hpp"
#include "core/cuda_absence.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/build_info.hpp"
#include "embgeom/errors.hpp"
#include "pipeline/memory_plan.hpp"

namespace embgeom {
namespace {

bool ready(const CudaDeviceReport& d) { return d.runs_build && d.start_error.empty(); }

std::string readiness(const CudaDeviceReport& d) {
    if (!d.runs_build)
        return "no: this build has no code for it (rebuild with -DCMAKE_CUDA_ARCHITECTURES=" +
               std::to_string(d.major) + std::to_string(d.minor) + ")";
    if (!d.start_error.empty()) return "no: it does not start (" + d.start_error + ")";
    return "yes";
}

}  // namespace

int run_devices_command(const CliState&, std::ostream& out) {
    if (!cuda_built()) throw NotBuiltWithCuda();
    const CudaMachineReport r = cuda_machine_report();
    if (r.devices.empty()) throw ResourceError("no usable CUDA device: " + r.no_device_reason);

    out << "embgeom devices: CUDA runtime " << cuda_version(r.runtime_version)
        << ", driver for CUDA " << cuda_version(r.driver_version) << ", "
        << (r.cublas_error.empty() ? r.cublas : "cuBLAS not loaded: " + r.cublas_error) << "\n"
        << "  this build runs on CUDA architectures " << kCudaArchitectures << "\n"
        << std::left << "  " << std::setw(4) << "id" << std::setw(32) << "device" << std::setw(12)
        << "capability" << std::setw(26) << "memory free / total" << "ready\n";
    std::size_t ready_count = 0;
    for (const CudaDeviceReport& d : r.devices) {
        const std::string memory =
            (d.free_bytes > 0 ? format_bytes(double(d.free_bytes)) : std::string("-")) + " / " +
            format_bytes(double(d.total_bytes));
        ready_count += ready(d);
        out << "  " << std::setw(4) << d.id << std::setw(32) << d.name << std::setw(12)
            << (std::to_string(d.major) + "." + std::to_string(d.minor)) << std::setw(26) << memory
            << readiness(d) << "\n";
    }
    if (!r.all_devices.empty())
        out << "  --devices all runs on " << device_ids_text(r.all_devices)
            << (r.all_devices_left_out.empty() ? "" : "; it leaves out " + r.all_devices_left_out)
            << "\n";
    out.flush();
    if (ready_count == 0)
        throw ResourceError("none of the " + std::to_string(r.devices.size()) +
                            " CUDA devices can run embgeom (see the list above)");
    return 0;
}

}  // namespace embgeom
