#pragma once
// The CPU reference of the two heavy steps of principal_directions: the streamed float64 Gram
// matrix of shifted rows (BLAS per block, in fixed panels of its rows) and the symmetric
// eigendecomposition (LAPACK dsyevd). CpuBackend wraps them; principal_directions' backend-free
// overloads call them directly, so both give the same bits.
#include <cstdint>
#include <vector>

#include "embgeom/backend.hpp"

namespace embgeom {

/// See GramAccumulator. Holds S [d, d] and one block of float64 rows (grown to the largest block
/// added). Each add() packs the valid rows of the block and adds their products to S in fixed
/// panels of S's rows, one single-threaded BLAS call per panel spread over the threads, so the
/// result depends on the block split only through that grouping, and never on the threads.
class CpuGramAccumulator final : public GramAccumulator {
  public:
    /// @param threads  threads sharing the panels (0: the calling thread's OpenMP count).
    /// @throws ResourceError when S cannot be allocated.
    CpuGramAccumulator(std::int64_t d, const std::vector<double>& shift, int threads = 0);
    void add(MatrixView<const float> block, const std::uint8_t* valid_rows) override;
    GramSums finish() override;

  private:
    std::int64_t d_;
    int threads_;
    std::vector<double> shift_;
    std::int64_t panels_;        // of kGramPanel rows of S
    std::vector<double> gram_;   // [d, d] row-major, upper triangle until finish()
    std::vector<double> sums_;   // [d]
    std::vector<double> block_;  // packed shifted valid rows of the current block
    std::int64_t n_ = 0;
};

/// See Backend::symmetric_eigen (LAPACK dsyevd, jobz "V", uplo "U", on one BLAS thread so that
/// its bits never depend on the thread count).
void cpu_symmetric_eigen(std::int64_t d, std::vector<double>& a, std::vector<double>& eigenvalues);

}  // namespace embgeom
