#pragma once
// "All-but-the-top" post-processing (Mu & Viswanath 2018): remove the common mean vector and the
// top D principal directions from every row, as an in-place block transform and as a RowSource
// wrapper so every streamed analysis can run on the post-processed table.
#include <cstdint>
#include <string>
#include <vector>

#include "embgeom/matrix_view.hpp"
#include "embgeom/row_source.hpp"
#include "geometry/principal_directions.hpp"

namespace embgeom {

/// @brief In place, for every row x of block:
///        x <- y - sum_{k<D} (u_k . y) u_k,   y = x - mean
///        (Mu & Viswanath 2018, "All-but-the-Top: Simple and Effective Postprocessing for Word
///        Representations", ICLR, Algorithm 1; they suggest D ~ d/100).
///
/// Computed in float64 (two GEMMs per block: P = Y U^T, Y -= P U) and rounded back to float32,
/// so the projections of the result on u_k are ~1e-7 of the row norm, not 0. The u_k are assumed
/// orthonormal (as PrincipalDirections::eigenvectors are); with D = 0 only the mean is removed.
///
/// @param[in,out] block       rows [b, d], row-major with leading dimension block.ld.
/// @param[in]     mean        [d] the vector removed first.
/// @param[in]     directions  [D, d] row-major, row k = u_k (e.g. the first D rows of
///                            PrincipalDirections::eigenvectors).
/// @param[in]     num_directions  D >= 0; directions must hold at least D * d values.
/// @param[in]     threads     threads sharing the rows (0: the calling thread's OpenMP count);
///                            each row's bits are the same for any count.
void remove_mean_and_top_directions(MatrixView<float> block, const std::vector<double>& mean,
                                    const std::vector<double>& directions,
                                    std::int64_t num_directions, int threads = 0);

/// A RowSource that reads rows from another one and returns them post-processed by
/// remove_mean_and_top_directions. It holds a reference to `inner`, which must outlive it.
/// Not thread-safe (like the sources it wraps).
class PostProcessedRowSource final : public RowSource {
  public:
    /// @param[in] inner       the table [V, d].
    /// @param[in] mean        [d].
    /// @param[in] directions  [D, d] row-major (only the first D * d values are kept).
    /// @param[in] num_directions  D, 0 <= D <= d.
    /// @param[in] threads     threads of each read's transform (0: the reader's OpenMP count).
    PostProcessedRowSource(RowSource& inner, std::vector<double> mean,
                           std::vector<double> directions, std::int64_t num_directions,
                           int threads = 0);
    /// The mean and the top D eigenvectors of pd (0 <= D <= pd.dims).
    PostProcessedRowSource(RowSource& inner, const PrincipalDirections& pd,
                           std::int64_t num_directions, int threads = 0);

    std::int64_t rows() const override { return inner_.rows(); }
    std::int64_t cols() const override { return inner_.cols(); }
    void read_rows(std::int64_t first, std::int64_t count, float* out) override;
    /// "<inner> (all-but-the-top, D = <D>)".
    std::string describe() const override;

    std::int64_t num_directions() const { return num_directions_; }

  private:
    RowSource& inner_;
    std::vector<double> mean_;
    std::vector<double> directions_;
    std::int64_t num_directions_;
    int threads_;
};

}  // namespace embgeom
