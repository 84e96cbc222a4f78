#pragma once
// Whether the kernels of a build can run on a device, from the CUDA architectures it was built for
// (CMake's CUDA_ARCHITECTURES, recorded in build_info.hpp) and the device's compute capability.
// Without this check a GPU the build has no code for (a T4, compute capability 7.5, under the
// default 80-real;90) would be picked by --backend auto and fail at the first kernel launch with
// "no kernel image is available"; with it, auto runs on the CPU with a notice naming the device and
// --backend cuda fails with that line. Host-only.
#include <string>

namespace embgeom {

/// True when code built for archs (CMake CUDA_ARCHITECTURES entries, separated by ';' or ',')
/// runs on a device of compute capability major.minor:
/// - "XY-real" (SASS) runs on X.Z for Z >= Y (same major); "XYa" (arch-specific) only on X.Y
///   itself, "XYf" (family) on X.Z for Z >= Y;
/// - "XY-virtual" (PTX) is compiled by the driver for any device of capability >= X.Y;
/// - "XY" is both; "all", "all-major" and "native" run anywhere the toolkit supports.
/// Entries that do not parse are ignored.
bool cuda_archs_run_on(const std::string& archs, int major, int minor);

}  // namespace embgeom
