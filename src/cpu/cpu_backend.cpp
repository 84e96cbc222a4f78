// The CPU backend: per-token passes with OpenMP, the all-pairs engine with BLAS (cpu_all_pairs),
// the covariance and its eigendecomposition with BLAS/LAPACK (cpu_gram), CSLS lists and
// random-direction extremeness (src/geometry, the reference definitions, called as they are).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "cpu/blas_runtime.hpp"
#include "cpu/cpu_all_pairs.hpp"
#include "cpu/cpu_gram.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "geometry/csls.hpp"
#include "geometry/extremeness.hpp"

namespace embgeom {
namespace {

class CpuBackend final : public Backend {
  public:
    explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {}

    std::string name() const override {
        return "cpu (" + blas_description() + ", " + std::to_string(threads_) + " threads)";
    }

    void row_norms_and_sums(const TableBlock& in, float* norms, std::uint8_t* finite,
                            double* column_sums) override {
        const MatrixView<const float>& block = in.rows;  // the CPU holds no table: rows are given
        const std::int64_t n = block.rows, d = block.cols;
#pragma omp parallel for num_threads(threads_) schedule(static)
        for (std::int64_t r = 0; r < n; ++r) {
            const float* x = block.row(r);
            double s = 0.0;
            bool ok = true;
            for (std::int64_t c = 0; c < d; ++c) {
                ok &= std::isfinite(x[c]);
                s += static_cast<double>(x[c]) * x[c];
            }
            finite[r] = ok ? 1 : 0;
            norms[r] = ok ? static_cast<float>(std::sqrt(s)) : std::nanf("");
        }
        // Each thread owns a slice of columns and adds rows in order, so the float64 sums do not
        // depend on the block size or the thread count.
#pragma omp parallel num_threads(threads_)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            const std::int64_t c0 = d * t / nt, c1 = d * (t + 1) / nt;
            for (std::int64_t r = 0; r < n; ++r) {
                if (!finite[r]) continue;
                const float* x = block.row(r);
                for (std::int64_t c = c0; c < c1; ++c) column_sums[c] += x[c];
            }
        }
    }

    void distances_to_points(const TableBlock& in, const std::vector<const double*>& points,
                             const std::vector<float*>& out) override {
        EMBGEOM_EXPECTS(points.size() == out.size(), "one output per point");
        const MatrixView<const float>& block = in.rows;
        // Row by row, every point: the row is read from memory once and stays in L1.
#pragma omp parallel for num_threads(threads_) schedule(static)
        for (std::int64_t r = 0; r < block.rows; ++r) {
            const float* x = block.row(r);
            for (std::size_t p = 0; p < points.size(); ++p) {
                const double* point = points[p];
                double s = 0.0;
                for (std::int64_t c = 0; c < block.cols; ++c) {
                    const double diff = x[c] - point[c];
                    s += diff * diff;
                }
                out[p][r] = static_cast<float>(std::sqrt(s));
            }
        }
    }

    AllPairsResult all_pairs(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const AllPairsOptions& opt) override {
        // Exact float32 meets every precision request's guarantee, so every request runs it.
        AllPairsResult r = cpu_all_pairs(source, valid, opt, threads_);
        r.precision = PrecisionPath::kExact;
        return r;
    }

    AllPairsResult all_pairs_share(RowSource& source, const std::vector<std::uint8_t>& valid,
                                   const AllPairsOptions& opt, const WorkShare& share,
                                   AllPairsPartial& partial) override {
        partial = AllPairsPartial{};
        AllPairsResult r =
            cpu_all_pairs(source, valid, opt, threads_, grid_share(share), &partial);
        r.precision = PrecisionPath::kExact;
        return r;
    }

    std::unique_ptr<GramAccumulator> gram_accumulator(std::int64_t d,
                                                      const std::vector<double>& shift) override {
        return std::make_unique<CpuGramAccumulator>(d, shift, threads_);
    }

    void symmetric_eigen(std::int64_t d, std::vector<double>& a,
                         std::vector<double>& eigenvalues) override {
        cpu_symmetric_eigen(d, a, eigenvalues);
    }

    CslsNeighbors csls_neighbors(RowSource& source, const std::vector<std::uint8_t>& valid,
                                 const std::vector<float>& radius, std::int64_t k,
                                 const AllPairsOptions& opt) override {
        return embgeom::csls_neighbors(source, valid, radius, k, opt.block_rows, opt.memory_budget,
                                       threads_);
    }

    CslsNeighbors csls_neighbors_share(RowSource& source, const std::vector<std::uint8_t>& valid,
                                       const std::vector<float>& radius, std::int64_t k,
                                       const AllPairsOptions& opt,
                                       const WorkShare& share) override {
        return embgeom::csls_neighbors(source, valid, radius, k, opt.block_rows, opt.memory_budget,
                                       threads_, grid_share(share));
    }

    // The caller's thread count stands when it sets one (the result does not depend on it).
    Extremeness extremeness(RowSource& source, const std::vector<std::uint8_t>& valid,
                            const ExtremenessOptions& opt) override {
        if (opt.stream.threads > 0) return random_direction_extremeness(source, valid, opt);
        ExtremenessOptions o = opt;
        o.stream.threads = threads_;
        return random_direction_extremeness(source, valid, o);
    }

  private:
    static engine::GridShare grid_share(const WorkShare& s) {
        return engine::GridShare{s.index, s.count};
    }

    int threads_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
    return std::make_unique<CpuBackend>(threads);
}

}  // namespace embgeom
