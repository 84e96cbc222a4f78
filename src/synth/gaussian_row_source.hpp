#pragma once
// Gaussian null models of an embedding table ("the geometry of the cloud"): a V x d table of
// independent Gaussian values generated on the fly, so the whole pipeline can run on "the same
// table with every structure removed" without writing it to disk.
//
//   isotropic  x[r, c] = sqrt(T / d) * z(seed, r, c)          T = total variance of the real table
//   matched    x[r, c] = mu[c] + sqrt(s2[c]) * z(seed, r, c)  mu, s2 = per-dimension mean, variance
//
// z(seed, r, c) ~ N(0, 1) is a pure function of (seed, row, column): Philox4x64-10 (Salmon et al.,
// SC'11, the generator of Random123 and numpy.random.Philox) keyed by the seed and indexed by
// (row, column / 4) gives four 64-bit words, which Box-Muller turns into the four values of the
// columns 4q .. 4q+3. Reads in any block size, order or thread count therefore give bit-identical
// tables (on any machine: the transform uses IEEE arithmetic only), and numpy reproduces any value.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "embgeom/row_source.hpp"

namespace embgeom {

/// @brief Philox4x64-10 block function (Random123 `philox4x64_10`, numpy.random.Philox's core).
/// @param[in] ctr  256-bit counter, least significant word first.
/// @param[in] key  128-bit key, least significant word first.
/// @return the four 64-bit output words. A bijection of ctr for a fixed key.
std::array<std::uint64_t, 4> philox4x64_10(std::array<std::uint64_t, 4> ctr,
                                           std::array<std::uint64_t, 2> key) noexcept;

/// @brief Box-Muller transform of two 64-bit words into two independent N(0, 1) values.
///
/// u = ((w_radius >> 11) + 1) 2^-53 in (0, 1], v = (w_angle >> 11) 2^-53 in [0, 1),
/// z_cos = sqrt(-2 ln u) cos(2 pi v), z_sin = sqrt(-2 ln u) sin(2 pi v); |z| <= sqrt(106 ln 2),
/// about 8.57.
/// ln, cos and sin are evaluated here with IEEE-754 +, -, *, / and sqrt only (series after an
/// exact argument reduction, within a few 1e-16 of the true values), not with libm, whose
/// results differ in the last bit between CPUs (glibc dispatches FMA variants): the same words give
/// the same z on every IEEE-754 machine (the file is compiled with FMA contraction off).
void box_muller(std::uint64_t w_radius, std::uint64_t w_angle, double& z_cos,
                double& z_sin) noexcept;

/// @brief The standard normal value z(seed, row, col) behind every GaussianRowSource.
///
/// (w0, w1, w2, w3) = philox4x64_10({col / 4, row, 0, 0}, {seed, 0}); box_muller(w0, w1) gives
/// the columns 4q and 4q+1 (cos, sin), box_muller(w2, w3) the columns 4q+2 and 4q+3.
/// numpy reproduces it: np.random.Philox(key=[seed, 0], counter=(col // 4 + (row << 64) - 1)
/// % 2**256).random_raw(4) are the four words (numpy increments the counter before each block).
/// @param[in] row  >= 0
/// @param[in] col  >= 0
double null_standard_normal(std::uint64_t seed, std::int64_t row, std::int64_t col) noexcept;

/// @brief A V x d table of independent Gaussian values, x[r, c] = mean[c] + stddev[c] * z(seed,
/// r, c) rounded to float32, generated on each read (nothing is stored but mean and stddev).
///
/// read_rows is thread-safe and parallel over rows (OpenMP); its output depends only on (seed,
/// row, column), never on the block size, the order of reads or the number of threads. Two
/// sources with the same seed share z, whatever their means and spreads (common random numbers:
/// the isotropic and the matched null of one seed differ only by their affine map).
class GaussianRowSource final : public RowSource {
  public:
    /// @param[in] rows    V >= 0
    /// @param[in] mean    [d] per-dimension mean, finite, d >= 1
    /// @param[in] stddev  [d] per-dimension standard deviation, finite and >= 0
    /// @param[in] seed    Philox key
    /// @param[in] model   name used by describe() ("isotropic", "matched", ...)
    /// @throws ResourceError (EMBGEOM_EXPECTS) on a broken precondition.
    GaussianRowSource(std::int64_t rows, std::vector<double> mean, std::vector<double> stddev,
                      std::uint64_t seed, std::string model);

    std::int64_t rows() const override { return rows_; }
    std::int64_t cols() const override { return static_cast<std::int64_t>(mean_.size()); }
    /// Writes rows [first, first + count) as float32 into out (row-major [count, d]).
    /// @throws ResourceError when the range is outside [0, V).
    void read_rows(std::int64_t first, std::int64_t count, float* out) override;
    /// "<model> Gaussian null (seed <seed>)", e.g. "isotropic Gaussian null (seed 7)".
    std::string describe() const override;

    const std::vector<double>& mean() const { return mean_; }      ///< [d]
    const std::vector<double>& stddev() const { return stddev_; }  ///< [d]
    std::uint64_t seed() const { return seed_; }

  private:
    std::int64_t rows_;
    std::vector<double> mean_, stddev_;
    std::uint64_t seed_;
    std::string model_;
};

/// @brief Isotropic null: mean 0 and variance T / d in every dimension, so that its total
/// variance (trace of the covariance = mean squared distance to the centroid) equals T. It keeps
/// only the scale of the real table: no offset, no anisotropy, no structure.
/// @param[in] V               rows, >= 0
/// @param[in] d               dimensions, >= 1
/// @param[in] total_variance  T >= 0, finite (ColumnMoments::total_variance of the real table)
/// @param[in] seed            Philox key
/// @throws ResourceError on a broken precondition.
GaussianRowSource isotropic_null(std::int64_t V, std::int64_t d, double total_variance,
                                 std::uint64_t seed);

/// @brief Matched null: each dimension c is N(mean[c], variance[c]) independently, so the table
/// keeps the real table's offset (the common direction that dominates raw cosines) and its
/// per-dimension spread (rogue dimensions included) but has no correlation and no cluster.
/// @param[in] V         rows, >= 0
/// @param[in] mean      [d] per-dimension mean (ColumnMoments::mean), finite, d >= 1
/// @param[in] variance  [d] per-dimension variance (ColumnMoments::variance), finite, >= 0
/// @param[in] seed      Philox key
/// @throws ResourceError on a broken precondition (sizes differ, d = 0, non-finite or negative).
GaussianRowSource matched_null(std::int64_t V, const std::vector<double>& mean,
                               const std::vector<double>& variance, std::uint64_t seed);

/// Per-dimension moments of the valid rows of a table: what the null models are fitted to.
struct ColumnMoments {
    std::vector<double> mean;      ///< [d]
    std::vector<double> variance;  ///< [d] population variance (ddof = 0)
    std::int64_t n = 0;            ///< valid rows
    double total_variance = 0.0;   ///< sum of variance = trace of the covariance
};

/// @brief Float64 per-dimension mean and variance (ddof = 0) of the rows i with valid[i] != 0
/// (every row when valid is empty), streamed in row blocks in one pass.
///
/// Welford's update in row order (mean += (x - mean) / k, m2 += (x - mean_old)(x - mean_new)),
/// so the result is the same to the bit for every block_rows, and free of the cancellation of the
/// one-pass sum-of-squares formula (the table may sit far from the origin).
/// Memory: 2d doubles plus one block of block_rows x d floats.
/// @param[in] src         the table, [V, d]
/// @param[in] valid       [V] row mask, or empty for all rows
/// @param[in] block_rows  rows per read_rows call (0 = about 32 MiB of float32 per block)
/// @throws ResourceError when valid has neither 0 nor V entries;
///         InputError when no row is valid or a valid row holds a NaN or an infinity.
ColumnMoments column_moments(RowSource& src, const std::vector<std::uint8_t>& valid,
                             std::int64_t block_rows = 0);

}  // namespace embgeom
