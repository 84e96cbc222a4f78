#include "geometry/simplex_corners.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/openmp_threads.hpp"
#include "embgeom/errors.hpp"
#include "geometry/simplex_row_math.hpp"

namespace embgeom {

using namespace simplex_detail;

namespace {

struct Member {
    double weight;
    std::int64_t token;
};

/// The total order of the top-N lists: larger weight first, then lower token id.
inline bool better(const Member& a, const Member& b) {
    return a.weight > b.weight || (a.weight == b.weight && a.token < b.token);
}

/// Keeps the N best members; the heap's top is the worst kept.
struct TopN {
    std::vector<Member> heap;
    void offer(const Member& m, std::int64_t n) {
        if (n <= 0) return;
        if (static_cast<std::int64_t>(heap.size()) < n) {
            heap.push_back(m);
            std::push_heap(heap.begin(), heap.end(), better);
        } else if (better(m, heap.front())) {
            std::pop_heap(heap.begin(), heap.end(), better);
            heap.back() = m;
            std::push_heap(heap.begin(), heap.end(), better);
        }
    }
};

struct ThreadState {
    std::vector<double> y;   // [tile, d]   rows minus v_0
    std::vector<double> mu;  // [tile, K-1] affine coordinates
    std::vector<TopN> top;   // [K]
};

std::string id_list(const std::vector<std::int64_t>& ids) {
    std::string s;
    for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
    return s;
}

}  // namespace

SimplexCorners simplex_corners(RowSource& source, const std::vector<std::uint8_t>& valid,
                               const std::vector<std::int64_t>& vertices,
                               const CornerOptions& opt) {
    check_table(source, valid);
    const std::int64_t V = source.rows(), d = source.cols();
    const std::int64_t K = static_cast<std::int64_t>(vertices.size()), Km = K - 1;
    if (K < 1) throw UsageError("simplex corners: no vertices given");
    if (opt.top_n < 0)
        throw UsageError("simplex corners: top_n must be >= 0, got " + std::to_string(opt.top_n));
    const int threads = resolve_threads(opt.stream.threads);
    const std::int64_t T = kSimplexTileRows, N = opt.top_n;

    // Thin QR of the difference vectors: Q rows q_0..q_{K-2} [Km, d], R upper [Km, Km].
    std::vector<std::vector<double>> rows_v;
    double scale = 0.0;
    for (std::int64_t k = 0; k < K; ++k) {
        rows_v.push_back(read_row_f64(source, valid, vertices[k], "simplex corner vertex"));
        scale = std::max(scale, std::sqrt(dot(rows_v[k].data(), rows_v[k].data(), d)));
    }
    const std::vector<double>& v0 = rows_v[0];
    std::vector<std::vector<double>> basis;
    std::vector<double> R(static_cast<std::size_t>(Km * Km), 0.0);
    std::vector<std::vector<double>> diffs;
    for (std::int64_t k = 1; k < K; ++k) {
        std::vector<double> w(static_cast<std::size_t>(d));
        for (std::int64_t j = 0; j < d; ++j) w[j] = rows_v[k][j] - v0[j];
        scale = std::max(scale, std::sqrt(dot(w.data(), w.data(), d)));
        diffs.push_back(std::move(w));
    }
    for (std::int64_t k = 0; k < Km; ++k) {
        std::vector<double> w = diffs[k];
        std::vector<double> coeff(static_cast<std::size_t>(k));
        const double h = orthogonalize_twice(w, basis, coeff.data());
        if (!(h > kDegenerateTolerance * scale))
            throw InputError(
                source.describe() + ": simplex corners: vertex tokens " + id_list(vertices) +
                " are repeated or not affinely independent (token " +
                std::to_string(vertices[k + 1]) + " lies within " + format_g(h) +
                " of the hull of the earlier ones, coordinate scale " + format_g(scale) + ")");
        for (std::int64_t i = 0; i < k; ++i) R[i * Km + k] = coeff[i];
        R[k * Km + k] = h;
        for (double& t : w) t /= h;
        basis.push_back(std::move(w));
    }
    std::vector<double> Q(static_cast<std::size_t>(Km * d));
    for (std::int64_t k = 0; k < Km; ++k)
        std::copy(basis[k].begin(), basis[k].end(), Q.begin() + k * d);

    const double nan = std::numeric_limits<double>::quiet_NaN();
    SimplexCorners out;
    out.vertices = vertices;
    out.top_n = N;
    out.assignment.assign(static_cast<std::size_t>(V), -1);
    out.weight.assign(static_cast<std::size_t>(V), nan);
    if (opt.keep_weights) out.weights.assign(static_cast<std::size_t>(V * K), nan);

    std::vector<ThreadState> states(static_cast<std::size_t>(threads));
    for (ThreadState& s : states) {
        s.y.resize(static_cast<std::size_t>(T * d));
        s.mu.resize(static_cast<std::size_t>(T * std::max<std::int64_t>(Km, 1)));
        s.top.resize(static_cast<std::size_t>(K));
    }

    const auto assign_chunk = [&](std::int64_t first, std::int64_t count, const float* rows) {
        const std::int64_t n_tiles = (count + T - 1) / T;
#pragma omp parallel num_threads(threads)
        {
            OpenMpThreads one(1);  // one BLAS thread per same-shape call (see extremeness.cpp)
            ThreadState& st = states[static_cast<std::size_t>(omp_get_thread_num())];
            std::vector<double> lambda(static_cast<std::size_t>(K));
#pragma omp for schedule(static)
            for (std::int64_t t = 0; t < n_tiles; ++t) {
                const std::int64_t row0 = t * T, n_rows = std::min(T, count - row0);
                if (Km > 0) {
                    for (std::int64_t r = 0; r < T; ++r) {
                        const bool keep = r < n_rows && row_is_valid(valid, first + row0 + r);
                        const float* x = rows + (row0 + r) * d;
                        double* y = st.y.data() + r * d;
                        for (std::int64_t j = 0; j < d; ++j)
                            y[j] = keep ? static_cast<double>(x[j]) - v0[j] : 0.0;
                    }
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T),
                                static_cast<int>(Km), static_cast<int>(d), 1.0, st.y.data(),
                                static_cast<int>(d), Q.data(), static_cast<int>(d), 0.0,
                                st.mu.data(), static_cast<int>(Km));
                    // mu R^T = P  <=>  R mu^T = Q^T y for every row.
                    cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasTrans, CblasNonUnit,
                                static_cast<int>(T), static_cast<int>(Km), 1.0, R.data(),
                                static_cast<int>(Km), st.mu.data(), static_cast<int>(Km));
                }
                for (std::int64_t r = 0; r < n_rows; ++r) {
                    const std::int64_t i = first + row0 + r;
                    if (!row_is_valid(valid, i)) continue;
                    const double* mu = st.mu.data() + r * Km;
                    double sum = 0.0;
                    for (std::int64_t k = 0; k < Km; ++k) sum += mu[k];
                    lambda[0] = 1.0 - sum;
                    for (std::int64_t k = 0; k < Km; ++k) lambda[k + 1] = mu[k];
                    std::int64_t best = 0;
                    for (std::int64_t k = 1; k < K; ++k)
                        if (lambda[k] > lambda[best]) best = k;
                    out.assignment[i] = static_cast<std::int32_t>(best);
                    out.weight[i] = lambda[best];
                    if (opt.keep_weights)
                        std::copy(lambda.begin(), lambda.end(), out.weights.begin() + i * K);
                    st.top[best].offer({lambda[best], i}, N);
                }
            }
        }
    };
    for_each_tile_chunk(source, valid, opt.stream.block_rows, assign_chunk);

    out.corner_size.assign(static_cast<std::size_t>(K), 0);
    for (std::int32_t a : out.assignment)
        if (a >= 0) ++out.corner_size[static_cast<std::size_t>(a)];
    out.top_tokens.assign(static_cast<std::size_t>(K * N), -1);
    out.top_weights.assign(static_cast<std::size_t>(K * N), nan);
    for (std::int64_t k = 0; k < K; ++k) {
        std::vector<Member> all;
        for (const ThreadState& s : states)
            all.insert(all.end(), s.top[k].heap.begin(), s.top[k].heap.end());
        std::sort(all.begin(), all.end(), better);
        for (std::int64_t n = 0; n < std::min<std::int64_t>(N, all.size()); ++n) {
            out.top_tokens[k * N + n] = all[n].token;
            out.top_weights[k * N + n] = all[n].weight;
        }
    }
    return out;
}

}  // namespace embgeom
