#pragma once
// The CUDA side of principal_directions (Backend::gram_accumulator, Backend::symmetric_eigen):
// the float64 Gram matrix of shifted rows with cublasDsyrk, S held on the device until finish,
// and the symmetric eigendecomposition with cusolverDnDsyevd.
#include <cusolverDn.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/cuda_resources.hpp"
#include "embgeom/backend.hpp"

namespace embgeom {

/// A cuSOLVER dense handle bound to one stream (owning, move-only).
///
/// cuSOLVER is loaded with dlopen on first use (cuda_libraries.hpp): linking it would make every
/// embgeom process of a CUDA build load and relocate libcusolver, libcusparse and libnvJitLink
/// (~400 MB of files, ~43 MiB more resident memory at start-up, measured) although only the
/// principal-directions stage on a GPU needs them.
class CusolverHandle {
    struct Release {
        void operator()(cusolverDnContext* h) const noexcept;
    };
    std::unique_ptr<cusolverDnContext, Release> h_;

  public:
    /// @throws ResourceError when cuSOLVER cannot be loaded (naming the library) or fails.
    explicit CusolverHandle(cudaStream_t stream);
    cusolverDnHandle_t get() const noexcept { return h_.get(); }
};

/// @brief See Backend::gram_accumulator. Each add() uploads the block in pieces of at most
///        64 MiB of float64 rows; a kernel converts a piece to shifted float64, zeroes the
///        rows left out and adds the valid ones into t in row order (so t has the CPU's bits);
///        cublasDsyrk adds the piece into S (lower triangle of the column-major S, i.e. the upper
///        triangle of the row-major one), which stays on the device until finish().
///        Device memory: 8 d^2 + about 96 MiB (less for small tables).
/// @param[in] res    device, stream and cuBLAS handle; must outlive the accumulator.
/// @param[in] d      columns, >= 1.
/// @param[in] shift  [d].
/// @throws ResourceError naming the sizes when S and a piece do not fit in free device memory.
std::unique_ptr<GramAccumulator> make_cuda_gram_accumulator(CudaResources& res, std::int64_t d,
                                                            const std::vector<double>& shift);

/// @brief See Backend::symmetric_eigen: cusolverDnDsyevd (eigenvectors, upper triangle of the
///        column-major matrix) on solver's stream, which must be res's compute stream.
///        Synchronous.
///        Device memory: 8 d^2 + 8 d + cuSOLVER's workspace (about 16 d^2 more).
/// @throws ResourceError naming the sizes when the matrix and workspace do not fit in free
///         device memory, or when the solver does not converge.
void cuda_symmetric_eigen(CudaResources& res, CusolverHandle& solver, std::int64_t d,
                          std::vector<double>& a, std::vector<double>& eigenvalues);

}  // namespace embgeom
