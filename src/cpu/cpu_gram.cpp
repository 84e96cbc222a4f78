#include "cpu/cpu_gram.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <new>
#include <string>

#include "core/checked_alloc.hpp"
#include "core/openmp_threads.hpp"
#include "embgeom/errors.hpp"

// LAPACK from libopenblas (no LAPACKE). The trailing lengths are gfortran's hidden CHARACTER
// arguments.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                        double* w, double* work, const int* lwork, int* iwork, const int* liwork,
                        int* info, std::size_t jobz_len, std::size_t uplo_len);

namespace embgeom {

namespace {

// Rows per panel of S: S is summed one panel of its rows at a time (one BLAS call each, on one
// thread), so every entry's sum is the same for any thread count. Fixed, never derived from the
// thread count or the machine; 64 gives d = 768 12 calls and d = 4096 64 to spread over the
// threads, and ran as fast as one threaded dsyrk on 2 cores (50257 x 768 in 8192-row blocks:
// 0.53-0.65 s against 0.51-0.62 s).
constexpr std::int64_t kGramPanel = 64;

}  // namespace

CpuGramAccumulator::CpuGramAccumulator(std::int64_t d, const std::vector<double>& shift,
                                       int threads)
    : d_(d), threads_(threads > 0 ? threads : omp_get_max_threads()), shift_(shift) {
    EMBGEOM_EXPECTS(d >= 1 && static_cast<std::int64_t>(shift.size()) == d,
                    "Gram accumulator needs d >= 1 and a shift of d entries");
    // BLAS takes d as a 32-bit int.
    EMBGEOM_EXPECTS(d <= INT_MAX, "Gram accumulator: d fits an int");
    gram_ = checked_vector<double>(static_cast<std::size_t>(d * d), "the d x d covariance");
    sums_.assign(static_cast<std::size_t>(d), 0.0);
    panels_ = (d + kGramPanel - 1) / kGramPanel;
}

void CpuGramAccumulator::add(MatrixView<const float> block, const std::uint8_t* valid_rows) {
    EMBGEOM_EXPECTS(block.cols == d_, "block has d columns");
    if (block.rows <= 0) return;
    EMBGEOM_EXPECTS(block.rows <= INT_MAX, "block rows fit an int");
    const std::int64_t d = d_;
    if (static_cast<std::int64_t>(block_.size()) < block.rows * d)
        block_ = checked_vector<double>(static_cast<std::size_t>(block.rows * d), "a row block");
    const double* s = shift_.data();
    double* t = sums_.data();
    std::int64_t m = 0;  // valid rows of this block, packed at the top of block_
    for (std::int64_t r = 0; r < block.rows; ++r) {
        if (!valid_rows[r]) continue;
        const float* x = block.row(r);
        double* y = block_.data() + m * d;
        for (std::int64_t j = 0; j < d; ++j) {
            y[j] = static_cast<double>(x[j]) - s[j];
            t[j] += y[j];
        }
        ++m;
    }
    if (m == 0) return;
    // Row-major Y [m, d]: S += Y^T Y, upper triangle of the row-major S, one panel of rows of S
    // at a time: S[p, p:] += Y[:, p]^T Y[:, p:] (its diagonal block whole; finish() mirrors the
    // upper triangle).
    const double* y = block_.data();
    double* S = gram_.data();
#pragma omp parallel num_threads(threads_)
    {
        OpenMpThreads one(1);
#pragma omp for schedule(dynamic)
        for (std::int64_t p = 0; p < panels_; ++p) {
            const std::int64_t c0 = p * kGramPanel, w = std::min(kGramPanel, d - c0);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(w),
                        static_cast<int>(d - c0), static_cast<int>(m), 1.0, y + c0,
                        static_cast<int>(d), y + c0, static_cast<int>(d), 1.0, S + c0 * d + c0,
                        static_cast<int>(d));
        }
    }
    n_ += m;
}

GramSums CpuGramAccumulator::finish() {
    const std::int64_t d = d_;
    double* S = gram_.data();
    for (std::int64_t i = 0; i < d; ++i)
        for (std::int64_t j = i + 1; j < d; ++j) S[j * d + i] = S[i * d + j];
    GramSums out;
    out.dims = d;
    out.n = n_;
    out.gram = std::move(gram_);
    out.column_sums = std::move(sums_);
    gram_ = {};
    sums_ = {};
    block_ = {};
    n_ = 0;
    return out;
}

void cpu_symmetric_eigen(std::int64_t d, std::vector<double>& a, std::vector<double>& eigenvalues) {
    EMBGEOM_EXPECTS(d >= 1 && static_cast<std::int64_t>(a.size()) == d * d,
                    "symmetric_eigen: a holds d x d values");
    // dsyevd's workspace of 1 + 6d + 2d^2 doubles is sized by a 32-bit int.
    if (1 + 6 * d + 2 * d * d > INT_MAX)
        throw ResourceError("eigendecomposition of a " + std::to_string(d) + " x " +
                            std::to_string(d) +
                            " matrix: LAPACK dsyevd's workspace exceeds its 32-bit size");
    // Column-major LAPACK on a symmetric matrix: the row-major input is the same matrix, and
    // eigenvector k comes back as the contiguous column k, i.e. row k of the row-major result.
    eigenvalues = checked_vector<double>(static_cast<std::size_t>(d), "the eigenvalues");
    const int n = static_cast<int>(d);
    // One BLAS thread: dsyevd's bits depend on the thread count (its blocked steps call threaded
    // dgemm), and the eigenvectors feed all-but-the-top. The cost, measured on a 2-core Xeon:
    // d = 4096 takes 14.1 s instead of 8.4 s on 2 threads, d = 2048 1.4 s instead of 0.9 s.
    OpenMpThreads one_thread(1);
    int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0.0;
    dsyevd_("V", "U", &n, a.data(), &n, eigenvalues.data(), &work_query, &lwork, &iwork_query,
            &liwork, &info, 1, 1);
    if (info != 0)
        throw ResourceError("dsyevd workspace query failed (info " + std::to_string(info) + ")");
    lwork = static_cast<int>(work_query);
    liwork = iwork_query;
    std::vector<double> work =
        checked_vector<double>(static_cast<std::size_t>(lwork), "dsyevd workspace");
    std::vector<int> iwork = checked_vector<int>(static_cast<std::size_t>(liwork), "dsyevd workspace");
    dsyevd_("V", "U", &n, a.data(), &n, eigenvalues.data(), work.data(), &lwork, iwork.data(),
            &liwork, &info, 1, 1);
    if (info != 0)
        throw ResourceError("dsyevd failed to converge on the " + std::to_string(d) + " x " +
                            std::to_string(d) + " symmetric matrix (info " + std::to_string(info) +
                            ")");
}

}  // namespace embgeom
