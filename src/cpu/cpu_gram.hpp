#pragma once
// The CPU reference of the two heavy steps of principal_directions: the streamed float64 Gram
// matrix of shifted rows (cblas_dsyrk per block) and the symmetric eigendecomposition (LAPACK
// dsyevd). CpuBackend wraps them; principal_directions' backend-free overloads call them
// directly, so both give the same bits.
#include <cstdint>
#include <vector>

#include "embgeom/backend.hpp"

namespace embgeom {

/// See GramAccumulator. Holds S [d, d] and one block of float64 rows (grown to the largest block
/// added). Each add() packs the valid rows of the block and makes one cblas_dsyrk call on them, so
/// the result depends on the block split only through that grouping.
class CpuGramAccumulator final : public GramAccumulator {
  public:
    /// @throws ResourceError when S cannot be allocated.
    CpuGramAccumulator(std::int64_t d, const std::vector<double>& shift);
    void add(MatrixView<const float> block, const std::uint8_t* valid_rows) override;
    GramSums finish() override;

  private:
    std::int64_t d_;
    std::vector<double> shift_;
    std::vector<double> gram_;   // [d, d] row-major, upper triangle until finish()
    std::vector<double> sums_;   // [d]
    std::vector<double> block_;  // packed shifted valid rows of the current block
    std::int64_t n_ = 0;
};

/// See Backend::symmetric_eigen (LAPACK dsyevd, jobz "V", uplo "U", BLAS threads as set).
void cpu_symmetric_eigen(std::int64_t d, std::vector<double>& a, std::vector<double>& eigenvalues);

}  // namespace embgeom
