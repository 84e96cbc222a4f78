#include "geometry/all_but_the_top.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <utility>

#include "core/openmp_threads.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {

void remove_mean_and_top_directions(MatrixView<float> block, const std::vector<double>& mean,
                                    const std::vector<double>& directions,
                                    std::int64_t num_directions, int threads) {
    const std::int64_t b = block.rows, d = block.cols, D = num_directions;
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(mean.size()) == d, "mean must have d entries");
    EMBGEOM_EXPECTS(D >= 0 && D <= d && static_cast<std::int64_t>(directions.size()) >= D * d,
                    "directions must hold D x d values with 0 <= D <= d");
    EMBGEOM_EXPECTS(block.ld >= d, "leading dimension");
    if (b == 0 || d == 0) return;

    // Chunks of rows (2 MiB of float64 each) keep the scratch small whatever the caller's block
    // size and spread the rows over the threads; each chunk's GEMMs run on one BLAS thread, so a
    // row's bits do not depend on the thread count.
    const std::int64_t chunk = std::max<std::int64_t>(1, std::min<std::int64_t>(b, (1 << 18) / d));
    const std::int64_t chunks = (b + chunk - 1) / chunk;
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads())
    {
        OpenMpThreads one(1);
        std::vector<double> y(static_cast<std::size_t>(chunk * d));
        std::vector<double> p(static_cast<std::size_t>(chunk * std::max<std::int64_t>(D, 1)));
#pragma omp for schedule(static)
        for (std::int64_t c = 0; c < chunks; ++c) {
            const std::int64_t r0 = c * chunk, m = std::min(chunk, b - r0);
            for (std::int64_t r = 0; r < m; ++r) {
                const float* x = block.row(r0 + r);
                for (std::int64_t j = 0; j < d; ++j)
                    y[r * d + j] = static_cast<double>(x[j]) - mean[j];
            }
            if (D > 0) {
                const int M = static_cast<int>(m), N = static_cast<int>(d), K = static_cast<int>(D);
                // P [m, D] = Y [m, d] U^T;  Y -= P U [D, d].
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1.0, y.data(), N,
                            directions.data(), N, 0.0, p.data(), K);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, -1.0, p.data(), K,
                            directions.data(), N, 1.0, y.data(), N);
            }
            for (std::int64_t r = 0; r < m; ++r) {
                float* x = block.row(r0 + r);
                for (std::int64_t j = 0; j < d; ++j) x[j] = static_cast<float>(y[r * d + j]);
            }
        }
    }
}

PostProcessedRowSource::PostProcessedRowSource(RowSource& inner, std::vector<double> mean,
                                               std::vector<double> directions,
                                               std::int64_t num_directions, int threads)
    : inner_(inner),
      mean_(std::move(mean)),
      directions_(std::move(directions)),
      num_directions_(num_directions),
      threads_(threads) {
    const std::int64_t d = inner_.cols();
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(mean_.size()) == d, "mean must have d entries");
    EMBGEOM_EXPECTS(num_directions_ >= 0 && num_directions_ <= d &&
                        static_cast<std::int64_t>(directions_.size()) >= num_directions_ * d,
                    "directions must hold D x d values with 0 <= D <= d");
    directions_.resize(static_cast<std::size_t>(num_directions_ * d));
}

PostProcessedRowSource::PostProcessedRowSource(RowSource& inner, const PrincipalDirections& pd,
                                               std::int64_t num_directions, int threads)
    : PostProcessedRowSource(
          inner, pd.mean,
          std::vector<double>(pd.eigenvectors.begin(),
                              pd.eigenvectors.begin() +
                                  std::clamp<std::int64_t>(num_directions, 0, pd.dims) * pd.dims),
          num_directions, threads) {
    EMBGEOM_EXPECTS(pd.dims == inner.cols(), "principal directions of another dimension");
}

void PostProcessedRowSource::read_rows(std::int64_t first, std::int64_t count, float* out) {
    inner_.read_rows(first, count, out);
    remove_mean_and_top_directions(MatrixView<float>(out, count, inner_.cols()), mean_, directions_,
                                   num_directions_, threads_);
}

std::string PostProcessedRowSource::describe() const {
    return inner_.describe() + " (all-but-the-top, D = " + std::to_string(num_directions_) + ")";
}

}  // namespace embgeom
