// Simplex analyses (src/geometry/simplex*.hpp, extremeness.hpp): planted simplices, float64
// brute-force references written here, bit-identity across block sizes and thread counts, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/row_source.hpp"
#include "geometry/simplex.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

using test::fresh_seed;
using Vec = std::vector<double>;

double dot(const Vec& a, const Vec& b) {
    double s = 0.0;
    for (std::size_t j = 0; j < a.size(); ++j) s += a[j] * b[j];
    return s;
}
double norm(const Vec& a) { return std::sqrt(dot(a, a)); }

/// A table with V rows and d columns plus its mask and the mean of its valid rows.
struct Table {
    std::int64_t V = 0, d = 0;
    std::vector<float> data;
    std::vector<std::uint8_t> valid;
    Vec center;
    MemoryRowSource source() const { return MemoryRowSource({data.data(), V, d}, "test-table"); }
    Vec row(std::int64_t i) const { return Vec(data.begin() + i * d, data.begin() + (i + 1) * d); }
    void set_row(std::int64_t i, const Vec& x) {
        for (std::int64_t j = 0; j < d; ++j) data[i * d + j] = static_cast<float>(x[j]);
    }
    void compute_center() {
        center.assign(d, 0.0);
        std::int64_t n = 0;
        for (std::int64_t i = 0; i < V; ++i) {
            if (!valid[i]) continue;
            ++n;
            for (std::int64_t j = 0; j < d; ++j) center[j] += data[i * d + j];
        }
        for (double& c : center) c /= static_cast<double>(n);
    }
};

/// K well-separated vertices: bias + 4 * (orthonormal u_k) + N(0, 0.3^2) jitter, in float32.
std::vector<Vec> planted_vertices(std::int64_t K, std::int64_t d, std::mt19937_64& rng) {
    std::normal_distribution<double> g(0.0, 1.0);
    Vec bias(d);
    for (double& b : bias) b = 3.0 * g(rng);
    std::vector<Vec> u;
    while (static_cast<std::int64_t>(u.size()) < K) {
        Vec w(d);
        for (double& t : w) t = g(rng);
        for (int pass = 0; pass < 2; ++pass)
            for (const Vec& q : u) {
                const double c = dot(q, w);
                for (std::int64_t j = 0; j < d; ++j) w[j] -= c * q[j];
            }
        const double n = norm(w);
        for (double& t : w) t /= n;
        u.push_back(w);
    }
    std::vector<Vec> v(K, Vec(d));
    for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t j = 0; j < d; ++j)
            v[k][j] = static_cast<float>(bias[j] + 4.0 * u[k][j] + 0.3 * g(rng));
    return v;
}

/// Dirichlet(1, ..., 1) weights.
Vec dirichlet(std::int64_t K, std::mt19937_64& rng) {
    std::exponential_distribution<double> e(1.0);
    Vec w(K);
    double s = 0.0;
    for (double& t : w) s += (t = e(rng));
    for (double& t : w) t /= s;
    return w;
}

Vec combine(const std::vector<Vec>& v, const Vec& w) {
    Vec x(v[0].size(), 0.0);
    for (std::size_t k = 0; k < v.size(); ++k)
        for (std::size_t j = 0; j < x.size(); ++j) x[j] += w[k] * v[k][j];
    return x;
}

struct Planted {
    Table t;
    std::vector<Vec> vertices;
    std::vector<std::int64_t> vertex_rows;  // row holding an exact copy of vertex k
};

/// V rows: one exact copy of each vertex, three invalid rows (NaN, a far-away point, zeros) and
/// otherwise 0.8 * Dirichlet + 0.2 / K mixtures (at least 0.2 / K on every vertex, so no
/// interior point comes near a vertex) plus N(0, 0.01^2) noise.
Planted make_planted(std::int64_t K, std::int64_t d, std::int64_t V, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    Planted p;
    p.vertices = planted_vertices(K, d, rng);
    p.t.V = V;
    p.t.d = d;
    p.t.data.assign(V * d, 0.0f);
    p.t.valid.assign(V, 1);
    std::vector<std::int64_t> perm(V);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    p.vertex_rows.assign(perm.begin(), perm.begin() + K);
    const std::int64_t nan_row = perm[K], far_row = perm[K + 1], zero_row = perm[K + 2];
    std::normal_distribution<double> noise(0.0, 0.01);
    for (std::int64_t i = 0; i < V; ++i) {
        Vec w = dirichlet(K, rng);
        for (double& t : w) t = 0.8 * t + 0.2 / static_cast<double>(K);
        Vec x = combine(p.vertices, w);
        for (double& t : x) t += noise(rng);
        p.t.set_row(i, x);
    }
    for (std::int64_t k = 0; k < K; ++k) p.t.set_row(p.vertex_rows[k], p.vertices[k]);
    p.t.set_row(nan_row, Vec(d, std::numeric_limits<double>::quiet_NaN()));
    p.t.set_row(far_row, Vec(d, 1e4));
    p.t.set_row(zero_row, Vec(d, 0.0));
    p.t.valid[nan_row] = p.t.valid[far_row] = p.t.valid[zero_row] = 0;
    p.t.compute_center();
    return p;
}

/// Float64 affine SPA with full projections (no residual updates): the reference.
SpaVertices reference_spa(const Table& t, std::int64_t K) {
    SpaVertices out;
    Vec anchor;
    std::vector<Vec> basis;
    std::vector<std::uint8_t> picked(t.V, 0);
    auto residual = [&](const Vec& x) {
        Vec w(t.d);
        for (std::int64_t j = 0; j < t.d; ++j) w[j] = x[j] - anchor[j];
        for (int pass = 0; pass < 2; ++pass)
            for (const Vec& q : basis) {
                const double c = dot(q, w);
                for (std::int64_t j = 0; j < t.d; ++j) w[j] -= c * q[j];
            }
        return w;
    };
    for (std::int64_t s = 0; s < K; ++s) {
        std::int64_t best = -1;
        double best_r = -1.0;
        Vec best_w;
        for (std::int64_t i = 0; i < t.V; ++i) {
            if (!t.valid[i] || picked[i]) continue;
            Vec w;
            if (s == 0) {
                w = t.row(i);
                for (std::int64_t j = 0; j < t.d; ++j) w[j] -= t.center[j];
            } else {
                w = residual(t.row(i));
            }
            const double r = norm(w);
            if (r > best_r) best_r = r, best = i, best_w = w;
        }
        picked[best] = 1;
        out.vertices.push_back(best);
        out.residual_norms.push_back(best_r);
        if (s == 0) {
            anchor = t.row(best);
        } else {
            for (double& x : best_w) x /= best_r;
            basis.push_back(best_w);
        }
    }
    return out;
}

/// Solves the small dense system A x = b (n x n, row-major) by Gaussian elimination with
/// partial pivoting.
Vec solve(std::vector<double> A, Vec b) {
    const std::size_t n = b.size();
    for (std::size_t c = 0; c < n; ++c) {
        std::size_t p = c;
        for (std::size_t r = c + 1; r < n; ++r)
            if (std::abs(A[r * n + c]) > std::abs(A[p * n + c])) p = r;
        for (std::size_t k = 0; k < n; ++k) std::swap(A[c * n + k], A[p * n + k]);
        std::swap(b[c], b[p]);
        for (std::size_t r = c + 1; r < n; ++r) {
            const double f = A[r * n + c] / A[c * n + c];
            for (std::size_t k = c; k < n; ++k) A[r * n + k] -= f * A[c * n + k];
            b[r] -= f * b[c];
        }
    }
    Vec x(n);
    for (std::size_t c = n; c-- > 0;) {
        double s = b[c];
        for (std::size_t k = c + 1; k < n; ++k) s -= A[c * n + k] * x[k];
        x[c] = s / A[c * n + c];
    }
    return x;
}

/// Barycentric weights of the least-squares projection of x onto the affine hull of v, from the
/// normal equations G mu = D^T (x - v_0) (the reference for project_onto_vertex_plane and
/// simplex_corners).
Vec reference_weights(const std::vector<Vec>& v, const Vec& x) {
    const std::size_t K = v.size(), d = x.size();
    if (K == 1) return {1.0};
    std::vector<Vec> D(K - 1, Vec(d));
    for (std::size_t k = 1; k < K; ++k)
        for (std::size_t j = 0; j < d; ++j) D[k - 1][j] = v[k][j] - v[0][j];
    std::vector<double> G((K - 1) * (K - 1));
    Vec rhs(K - 1);
    Vec y(d);
    for (std::size_t j = 0; j < d; ++j) y[j] = x[j] - v[0][j];
    for (std::size_t a = 0; a + 1 < K; ++a) {
        rhs[a] = dot(D[a], y);
        for (std::size_t b = 0; b + 1 < K; ++b) G[a * (K - 1) + b] = dot(D[a], D[b]);
    }
    const Vec mu = solve(G, rhs);
    Vec w(K);
    w[0] = 1.0;
    for (std::size_t k = 1; k < K; ++k) w[0] -= (w[k] = mu[k - 1]);
    return w;
}

/// A MemoryRowSource that records how it is read.
class CountingSource final : public RowSource {
  public:
    explicit CountingSource(const Table& t) : inner_(t.source()) {}
    std::int64_t rows() const override { return inner_.rows(); }
    std::int64_t cols() const override { return inner_.cols(); }
    void read_rows(std::int64_t first, std::int64_t count, float* out) override {
        rows_read += count;
        largest_read = std::max(largest_read, count);
        inner_.read_rows(first, count, out);
    }
    std::string describe() const override { return "counting"; }
    std::int64_t rows_read = 0, largest_read = 0;

  private:
    MemoryRowSource inner_;
};

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() &&
           (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// ----- planted simplex: SPA and extremeness -------------------------------------------------

struct PlantedCase {
    std::int64_t K, d;
};

class SimplexPlanted : public ::testing::TestWithParam<PlantedCase> {};

TEST_P(SimplexPlanted, SpaFindsThePlantedVertices) {
    const auto [K, d] = GetParam();
    const Planted p = make_planted(K, d, 2000, fresh_seed());
    MemoryRowSource src = p.t.source();
    const SpaVertices got = spa_vertices(src, p.t.valid, p.t.center, K);
    ASSERT_EQ(got.vertices.size(), static_cast<std::size_t>(K));
    EXPECT_EQ(std::set<std::int64_t>(got.vertices.begin(), got.vertices.end()),
              std::set<std::int64_t>(p.vertex_rows.begin(), p.vertex_rows.end()));

    // Same picks, in the same order, as the float64 full-projection reference.
    const SpaVertices ref = reference_spa(p.t, K);
    EXPECT_EQ(got.vertices, ref.vertices);
    for (std::int64_t k = 0; k < K; ++k)
        EXPECT_NEAR(got.residual_norms[k], ref.residual_norms[k], 1e-9 * ref.residual_norms[0]);
    // Every planted vertex stands well off the hull of the earlier ones (heights ~4 here).
    for (std::int64_t k = 1; k < K; ++k) EXPECT_GT(got.residual_norms[k], 0.5);
}

TEST_P(SimplexPlanted, ExtremenessCountsPeakAtThePlantedVertices) {
    const auto [K, d] = GetParam();
    const std::uint64_t seed = fresh_seed();
    const Planted p = make_planted(K, d, 2000, seed);
    MemoryRowSource src = p.t.source();
    ExtremenessOptions opt;
    opt.directions = 1500;
    opt.seed = seed ^ 0x5eedull;
    opt.center = p.t.center;
    const Extremeness ex = random_direction_extremeness(src, p.t.valid, opt);
    const std::int64_t M = opt.directions;
    ASSERT_EQ(ex.counts.size(), static_cast<std::size_t>(p.t.V));

    // Counts agree with the per-direction winners and add up to 2M; invalid rows never win.
    std::vector<std::int32_t> recount(p.t.V, 0);
    for (std::int64_t m = 0; m < M; ++m) ++recount[ex.argmax[m]], ++recount[ex.argmin[m]];
    EXPECT_EQ(recount, ex.counts);
    for (std::int64_t i = 0; i < p.t.V; ++i)
        if (!p.t.valid[i]) {
            EXPECT_EQ(ex.counts[i], 0) << "invalid row " << i;
        }

    // Each winner is the float64 maximiser up to float32 rounding of the projections.
    const std::vector<float> dirs = random_unit_directions(M, d, opt.seed);
    for (std::int64_t m = 0; m < M; m += 7) {
        double hi = -1e300, lo = 1e300, scale = 0.0;
        std::vector<double> s(p.t.V);
        for (std::int64_t i = 0; i < p.t.V; ++i) {
            if (!p.t.valid[i]) continue;
            double v = 0.0;
            for (std::int64_t j = 0; j < d; ++j)
                v += static_cast<double>(dirs[m * d + j]) * (p.t.data[i * d + j] - p.t.center[j]);
            s[i] = v;
            hi = std::max(hi, v), lo = std::min(lo, v), scale = std::max(scale, std::abs(v));
        }
        EXPECT_GE(s[ex.argmax[m]], hi - 1e-5 * scale) << "direction " << m;
        EXPECT_LE(s[ex.argmin[m]], lo + 1e-5 * scale) << "direction " << m;
    }

    // The K largest counts belong to the planted vertices, which win almost every direction;
    // almost every interior point is never extreme. (Measured over 25 seeds: vertices >= 97.8%
    // of 2M, never-extreme >= 97.2% of the interior, the worst case K = 3, d = 32, where some
    // directions are nearly orthogonal to the 2-D hull and the noise decides.)
    std::vector<std::int64_t> order(p.t.V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return ex.counts[a] > ex.counts[b]; });
    EXPECT_EQ(std::set<std::int64_t>(order.begin(), order.begin() + K),
              std::set<std::int64_t>(p.vertex_rows.begin(), p.vertex_rows.end()));
    std::int64_t at_vertices = 0;
    for (std::int64_t v : p.vertex_rows) at_vertices += ex.counts[v];
    EXPECT_GE(at_vertices, static_cast<std::int64_t>(0.9 * 2 * M));
    std::int64_t interior = 0, never = 0;
    for (std::int64_t i = 0; i < p.t.V; ++i) {
        if (!p.t.valid[i] || std::count(p.vertex_rows.begin(), p.vertex_rows.end(), i)) continue;
        ++interior;
        never += ex.counts[i] == 0;
    }
    EXPECT_GE(never, static_cast<std::int64_t>(0.9 * interior));
}

INSTANTIATE_TEST_SUITE_P(KD, SimplexPlanted,
                         ::testing::Values(PlantedCase{3, 8}, PlantedCase{3, 32}, PlantedCase{5, 8},
                                           PlantedCase{5, 32}, PlantedCase{8, 8},
                                           PlantedCase{8, 32}),
                         [](const auto& info) {
                             return "K" + std::to_string(info.param.K) + "_d" +
                                    std::to_string(info.param.d);
                         });

// ----- bit-identity over block sizes and thread counts ------------------------------------

TEST(SimplexDeterminism, BitIdenticalForAnyBlockSizeAndThreadCount) {
    const std::uint64_t seed = fresh_seed();
    Table t;
    t.V = 1500;  // not a multiple of the 256-row tile
    t.d = 33;    // odd
    t.data = test::random_table(t.V, t.d, seed, 2.0f);
    t.valid.assign(t.V, 1);
    std::mt19937_64 rng(seed + 1);
    for (int n = 0; n < 20; ++n) {
        const std::int64_t i = 30 + static_cast<std::int64_t>(rng() % (t.V - 60));
        t.valid[i] = 0;
        if (n % 2) t.set_row(i, Vec(t.d, std::numeric_limits<double>::infinity()));
    }
    // Rows 0..11 pushed outward win many directions; rows 0..29 get exact copies at V-1-i,
    // another position in the 256-row tile (which some SGEMM kernels round differently).
    for (std::int64_t i = 0; i < 12; ++i) {
        Vec x = t.row(i);
        for (double& v : x) v = 2.0 + 3.0 * (v - 2.0);
        t.set_row(i, x);
    }
    std::vector<std::int64_t> copies;
    for (std::int64_t i = 0; i < 30; ++i) {
        t.set_row(t.V - 1 - i, t.row(i));
        copies.push_back(i);
    }
    t.compute_center();
    MemoryRowSource src = t.source();

    struct Run {
        SpaVertices spa;
        Extremeness ex;
        VertexPlaneProjection plane;
        SimplexCorners corners;
    };
    auto run = [&](std::int64_t block_rows, int threads) {
        const SimplexStreamOptions so{block_rows, threads};
        Run r;
        r.spa = spa_vertices(src, t.valid, t.center, 5, so);
        ExtremenessOptions eo;
        eo.directions = 3000;  // two direction tiles, the last one padded
        eo.seed = seed;
        eo.stream = so;
        r.ex = random_direction_extremeness(src, t.valid, eo);
        r.plane = project_onto_vertex_plane(
            src, t.valid, {r.spa.vertices[0], r.spa.vertices[1], r.spa.vertices[2]}, so);
        CornerOptions co;
        co.top_n = 7;
        co.keep_weights = true;
        co.stream = so;
        r.corners = simplex_corners(src, t.valid, r.spa.vertices, co);
        return r;
    };
    const Run base = run(0, 2);
    for (std::int64_t block_rows : {1, 7, 1000}) {
        for (int threads : {1, 2, 3}) {
            SCOPED_TRACE("block_rows " + std::to_string(block_rows) + ", threads " +
                         std::to_string(threads));
            const Run r = run(block_rows, threads);
            EXPECT_EQ(r.spa.vertices, base.spa.vertices);
            EXPECT_TRUE(same_bits(r.spa.residual_norms, base.spa.residual_norms));
            EXPECT_EQ(r.ex.counts, base.ex.counts);
            EXPECT_EQ(r.ex.argmax, base.ex.argmax);
            EXPECT_EQ(r.ex.argmin, base.ex.argmin);
            EXPECT_TRUE(same_bits(r.plane.coords, base.plane.coords));
            EXPECT_TRUE(same_bits(r.plane.barycentric, base.plane.barycentric));
            EXPECT_TRUE(same_bits(r.plane.distance, base.plane.distance));
            EXPECT_EQ(r.corners.assignment, base.corners.assignment);
            EXPECT_TRUE(same_bits(r.corners.weights, base.corners.weights));
            EXPECT_EQ(r.corners.top_tokens, base.corners.top_tokens);
            EXPECT_TRUE(same_bits(r.corners.top_weights, base.corners.top_weights));
        }
    }
    // Winners are valid rows; exact copies tie, so the lower copy takes every count; copies get
    // the same plane coordinates and corner weights.
    for (std::int64_t m = 0; m < 3000; ++m)
        for (std::int64_t w : {base.ex.argmax[m], base.ex.argmin[m]}) {
            ASSERT_GE(w, 0);
            ASSERT_TRUE(t.valid[w]);
        }
    std::int64_t copied_counts = 0;
    for (std::int64_t i : copies) {
        const std::int64_t c = t.V - 1 - i;
        copied_counts += base.ex.counts[i];
        EXPECT_EQ(base.ex.counts[c], 0) << "copy " << c << " of " << i;
        EXPECT_EQ(std::memcmp(&base.plane.coords[2 * i], &base.plane.coords[2 * c], 16), 0);
        EXPECT_EQ(std::memcmp(&base.plane.distance[i], &base.plane.distance[c], 8), 0);
        EXPECT_EQ(std::memcmp(&base.corners.weights[5 * i], &base.corners.weights[5 * c], 40), 0);
    }
    EXPECT_GT(copied_counts, 1000);  // the copied rows are among the extreme ones
    // Streaming: reads of at most block_rows rows; SPA reads the table once per vertex plus
    // the vertex rows, the projection once plus its three vertices.
    CountingSource counting(t);
    const SpaVertices spa = spa_vertices(counting, t.valid, t.center, 5, {7, 2});
    EXPECT_EQ(spa.vertices, base.spa.vertices);
    EXPECT_EQ(counting.largest_read, 7);
    EXPECT_EQ(counting.rows_read, 5 * t.V + 5);
    counting.rows_read = 0;
    project_onto_vertex_plane(counting, t.valid,
                              {spa.vertices[0], spa.vertices[1], spa.vertices[2]}, {7, 2});
    EXPECT_EQ(counting.rows_read, t.V + 3);
    EXPECT_EQ(counting.largest_read, 7);
    // The directions depend on the seed only.
    EXPECT_TRUE(same_bits(random_unit_directions(50, 33, seed, 1),
                          random_unit_directions(50, 33, seed, 2)));
    EXPECT_FALSE(
        same_bits(random_unit_directions(50, 33, seed), random_unit_directions(50, 33, seed + 1)));
}

// Backend::extremeness on the CPU backend is random_direction_extremeness itself: the same
// winners and counts, with or without a centre, a read size or a thread count of its own.
TEST(SimplexDeterminism, CpuBackendGivesTheDirectFunctionsResult) {
    const std::uint64_t seed = fresh_seed();
    Table t;
    t.V = 700;
    t.d = 19;
    t.data = test::random_table(t.V, t.d, seed, 1.5f);
    t.valid.assign(t.V, 1);
    for (std::int64_t i : {3, 250, 699}) {
        t.valid[i] = 0;
        t.data[i * t.d] = std::numeric_limits<float>::quiet_NaN();
    }
    for (std::int64_t i = 0; i < 10; ++i) t.set_row(t.V - 2 - i, t.row(i));  // exact copies
    t.compute_center();
    MemoryRowSource src = t.source();
    for (const int threads : {1, 3}) {
        const std::unique_ptr<Backend> cpu = make_cpu_backend(threads);
        for (const bool centred : {false, true}) {
            for (const SimplexStreamOptions so :
                 {SimplexStreamOptions{0, 0}, SimplexStreamOptions{7, 2}}) {
                SCOPED_TRACE("threads " + std::to_string(threads) + (centred ? ", centred" : "") +
                             ", block_rows " + std::to_string(so.block_rows));
                ExtremenessOptions eo;
                eo.directions = 2100;  // two direction tiles
                eo.seed = seed;
                eo.stream = so;
                if (centred) eo.center = t.center;
                const Extremeness want = random_direction_extremeness(src, t.valid, eo);
                const Extremeness got = cpu->extremeness(src, t.valid, eo);
                EXPECT_EQ(got.counts, want.counts);
                EXPECT_EQ(got.argmax, want.argmax);
                EXPECT_EQ(got.argmin, want.argmin);
            }
        }
        ExtremenessOptions eo;
        eo.directions = 0;
        EXPECT_THROW(cpu->extremeness(src, t.valid, eo), UsageError);
        eo.directions = 10;
        EXPECT_THROW(cpu->extremeness(src, std::vector<std::uint8_t>(5, 1), eo), ResourceError);
    }
}

// ----- plane through three vertices --------------------------------------------------------

TEST(SimplexPlane, MatchesFloat64Reference) {
    const std::uint64_t seed = fresh_seed();
    std::mt19937_64 rng(seed);
    Table t;
    t.V = 600;
    t.d = 16;
    t.data = test::random_table(t.V, t.d, seed, 1.5f);
    t.valid.assign(t.V, 1);
    const std::int64_t a = 11, b = 222, c = 433, invalid_row = 500;
    t.valid[invalid_row] = 0;
    const std::vector<Vec> abc = {t.row(a), t.row(b), t.row(c)};
    // Rows 0..49 (but a): points of the plane, inside and outside the triangle.
    std::uniform_real_distribution<double> unif(-1.0, 2.0);
    std::vector<Vec> planted(50);
    for (std::int64_t i = 0; i < 50; ++i) {
        if (i == a) continue;
        const double l1 = unif(rng), l2 = unif(rng);
        planted[i] = {1.0 - l1 - l2, l1, l2};
        t.set_row(i, combine(abc, planted[i]));
    }
    MemoryRowSource src = t.source();
    const VertexPlaneProjection pr = project_onto_vertex_plane(src, t.valid, {a, b, c});

    const double scale = std::max({norm(abc[0]), norm(abc[1]), norm(abc[2])});
    const Vec e1(pr.axes.begin(), pr.axes.begin() + t.d), e2(pr.axes.begin() + t.d, pr.axes.end());
    EXPECT_NEAR(norm(e1), 1.0, 1e-12);
    EXPECT_NEAR(norm(e2), 1.0, 1e-12);
    EXPECT_NEAR(dot(e1, e2), 0.0, 1e-12);
    EXPECT_EQ(pr.origin, abc[0]);
    EXPECT_GT(pr.triangle[5], 0.0);

    for (std::int64_t i = 0; i < t.V; ++i) {
        SCOPED_TRACE("row " + std::to_string(i));
        if (i == invalid_row) {
            EXPECT_TRUE(std::isnan(pr.distance[i]) && std::isnan(pr.coords[2 * i]) &&
                        std::isnan(pr.barycentric[3 * i]));
            continue;
        }
        const Vec x = t.row(i);
        const Vec ref = reference_weights(abc, x);
        const Vec lam(pr.barycentric.begin() + 3 * i, pr.barycentric.begin() + 3 * i + 3);
        EXPECT_NEAR(lam[0] + lam[1] + lam[2], 1.0, 1e-12);
        for (int k = 0; k < 3; ++k) EXPECT_NEAR(lam[k], ref[k], 1e-9);
        // The projection from the weights, from the 2-D coordinates and from the reference agree.
        const Vec p_ref = combine(abc, ref), p_lam = combine(abc, lam);
        Vec p_uv(t.d), diff(t.d);
        for (std::int64_t j = 0; j < t.d; ++j) {
            p_uv[j] = pr.origin[j] + pr.coords[2 * i] * e1[j] + pr.coords[2 * i + 1] * e2[j];
            diff[j] = x[j] - p_ref[j];
            EXPECT_NEAR(p_lam[j], p_ref[j], 1e-9 * scale);
            EXPECT_NEAR(p_uv[j], p_ref[j], 1e-9 * scale);
        }
        EXPECT_NEAR(pr.distance[i], norm(diff), 1e-9 * scale);
        if (i < 50 && i != a) {  // in the plane up to float32 rounding of the row
            EXPECT_LT(pr.distance[i], 1e-6 * scale);
            for (int k = 0; k < 3; ++k) EXPECT_NEAR(lam[k], planted[i][k], 1e-5);
        }
    }
    // The vertices map to the unit barycentric vectors, at distance 0.
    const std::int64_t ids[3] = {a, b, c};
    for (int v = 0; v < 3; ++v) {
        const std::int64_t i = ids[v];
        for (int k = 0; k < 3; ++k)
            EXPECT_NEAR(pr.barycentric[3 * i + k], k == v ? 1.0 : 0.0, 1e-12) << "vertex " << v;
        EXPECT_LE(pr.distance[i], 1e-12 * scale);
        EXPECT_NEAR(pr.coords[2 * i], pr.triangle[2 * v], 1e-12 * scale);
        EXPECT_NEAR(pr.coords[2 * i + 1], pr.triangle[2 * v + 1], 1e-12 * scale);
    }
    EXPECT_EQ(pr.distance[a], 0.0);
}

TEST(SimplexPlane, DegenerateVerticesAreInputErrors) {
    const std::uint64_t seed = fresh_seed();
    Table t;
    t.V = 40;
    t.d = 8;
    t.data = test::random_table(t.V, t.d, seed, 3.0f);
    t.valid.assign(t.V, 1);
    t.set_row(5, t.row(3));  // a copy of row 3
    Vec mid(t.d);            // the midpoint of rows 3 and 4, rounded to float32
    for (std::int64_t j = 0; j < t.d; ++j) mid[j] = 0.5 * (t.row(3)[j] + t.row(4)[j]);
    t.set_row(6, mid);
    Vec beyond(t.d);  // on the line through 3 and 4, beyond 4
    for (std::int64_t j = 0; j < t.d; ++j)
        beyond[j] = t.row(4)[j] + 2.0 * (t.row(4)[j] - t.row(3)[j]);
    t.set_row(7, beyond);
    t.valid[9] = 0;
    MemoryRowSource src = t.source();

    auto expect_input_error = [&](std::array<std::int64_t, 3> v, bool names_ids) {
        SCOPED_TRACE(std::to_string(v[0]) + " " + std::to_string(v[1]) + " " +
                     std::to_string(v[2]));
        try {
            project_onto_vertex_plane(src, t.valid, v);
            ADD_FAILURE() << "no InputError";
        } catch (const InputError& e) {
            const std::string msg = e.what();
            if (names_ids) {
                EXPECT_NE(msg.find(std::to_string(v[0]) + ", " + std::to_string(v[1]) + " and " +
                                   std::to_string(v[2])),
                          std::string::npos)
                    << msg;
            }
        }
    };
    expect_input_error({3, 3, 4}, true);    // repeated id
    expect_input_error({3, 4, 5}, true);    // two equal rows
    expect_input_error({3, 4, 6}, true);    // midpoint
    expect_input_error({6, 3, 4}, true);    // midpoint first
    expect_input_error({3, 7, 4}, true);    // collinear, outside the segment
    expect_input_error({3, 4, 9}, false);   // invalid row
    expect_input_error({3, 4, 40}, false);  // out of range
    EXPECT_NO_THROW(project_onto_vertex_plane(src, t.valid, {3, 4, 8}));
    EXPECT_NO_THROW(project_onto_vertex_plane(src, {}, {3, 4, 9}));  // empty mask: all valid
}

// ----- corners -----------------------------------------------------------------------------

TEST(SimplexCornersTest, PointsNearAVertexJoinItsCorner) {
    const std::uint64_t seed = fresh_seed();
    for (std::int64_t K : {3, 5}) {
        SCOPED_TRACE("K " + std::to_string(K));
        std::mt19937_64 rng(seed + K);
        const std::int64_t d = 16, near_per_vertex = 30, V = 700;
        const std::vector<Vec> v = planted_vertices(K, d, rng);
        Table t;
        t.V = V;
        t.d = d;
        t.data.assign(V * d, 0.0f);
        t.valid.assign(V, 1);
        // Near points: >= 0.85 on vertex i % K. Others: 0.8 * Dirichlet + 0.2 / K. Every weight
        // stays <= 0.97, so the vertex rows (weight 1) head their corners.
        std::normal_distribution<double> noise(0.0, 0.01);
        std::vector<std::int64_t> planted_corner(V, -1);
        for (std::int64_t i = 0; i < V; ++i) {
            Vec w = dirichlet(K, rng);
            if (i < K * near_per_vertex) {
                for (double& x : w) x = 0.1 * x + 0.05 / static_cast<double>(K);
                w[i % K] += 0.85;
                planted_corner[i] = i % K;
            } else {
                for (double& x : w) x = 0.8 * x + 0.2 / static_cast<double>(K);
            }
            Vec x = combine(v, w);
            for (double& s : x) s += noise(rng);
            t.set_row(i, x);
        }
        std::vector<std::int64_t> vertex_rows;
        for (std::int64_t k = 0; k < K; ++k) {
            vertex_rows.push_back(V - 1 - 3 * k);
            t.set_row(vertex_rows.back(), v[k]);
        }
        t.valid[V - 2] = 0;
        MemoryRowSource src = t.source();
        CornerOptions opt;
        opt.top_n = 12;
        opt.keep_weights = true;
        const SimplexCorners sc = simplex_corners(src, t.valid, vertex_rows, opt);

        std::vector<std::int64_t> size(K, 0);
        for (std::int64_t i = 0; i < V; ++i) {
            if (!t.valid[i]) {
                EXPECT_EQ(sc.assignment[i], -1);
                EXPECT_TRUE(std::isnan(sc.weight[i]));
                continue;
            }
            const Vec ref = reference_weights(v, t.row(i));
            double sum = 0.0;
            for (std::int64_t k = 0; k < K; ++k) {
                sum += sc.weights[i * K + k];
                EXPECT_NEAR(sc.weights[i * K + k], ref[k], 1e-8) << "row " << i;
            }
            EXPECT_NEAR(sum, 1.0, 1e-12);
            const auto best = std::max_element(ref.begin(), ref.end()) - ref.begin();
            EXPECT_EQ(sc.assignment[i], best) << "row " << i;
            EXPECT_EQ(sc.weight[i], sc.weights[i * K + sc.assignment[i]]);
            if (planted_corner[i] >= 0) {
                EXPECT_EQ(sc.assignment[i], planted_corner[i]) << "row " << i;
            }
            ++size[sc.assignment[i]];
        }
        EXPECT_EQ(sc.corner_size, size);
        for (std::int64_t k = 0; k < K; ++k) {
            // The vertex itself heads its corner with weight 1.
            EXPECT_EQ(sc.top_tokens[k * opt.top_n], vertex_rows[k]);
            EXPECT_NEAR(sc.top_weights[k * opt.top_n], 1.0, 1e-9);
            // The list is the brute-force top-N of the tokens assigned to k.
            std::vector<std::int64_t> members;
            for (std::int64_t i = 0; i < V; ++i)
                if (sc.assignment[i] == k) members.push_back(i);
            std::stable_sort(members.begin(), members.end(), [&](std::int64_t x, std::int64_t y) {
                return sc.weight[x] > sc.weight[y];
            });
            for (std::int64_t n = 0; n < opt.top_n; ++n) {
                const std::int64_t want =
                    n < static_cast<std::int64_t>(members.size()) ? members[n] : -1;
                EXPECT_EQ(sc.top_tokens[k * opt.top_n + n], want)
                    << "vertex " << k << " rank " << n;
            }
        }
        // Degenerate vertex sets.
        std::vector<std::int64_t> repeated = vertex_rows;
        repeated.back() = repeated.front();
        EXPECT_THROW(simplex_corners(src, t.valid, repeated, opt), InputError);
        EXPECT_THROW(simplex_corners(src, t.valid, {vertex_rows[0], V - 2}, opt), InputError);
    }
}

TEST(SimplexCornersTest, OneVertexAndShortLists) {
    const std::uint64_t seed = fresh_seed();
    Table t;
    t.V = 9;
    t.d = 4;
    t.data = test::random_table(t.V, t.d, seed);
    t.valid.assign(t.V, 1);
    MemoryRowSource src = t.source();
    CornerOptions opt;
    opt.top_n = 12;  // more than the rows
    const SimplexCorners sc = simplex_corners(src, t.valid, {4}, opt);
    EXPECT_EQ(sc.corner_size, std::vector<std::int64_t>{9});
    for (std::int64_t i = 0; i < t.V; ++i) EXPECT_EQ(sc.weight[i], 1.0);
    for (std::int64_t n = 0; n < 12; ++n)
        EXPECT_EQ(sc.top_tokens[n], n < 9 ? n : -1);  // all weights tie: by token id
    opt.top_n = -1;
    EXPECT_THROW(simplex_corners(src, t.valid, {4}, opt), UsageError);
    EXPECT_THROW(simplex_corners(src, t.valid, {}, CornerOptions{}), UsageError);
}

// ----- errors ------------------------------------------------------------------------------

TEST(SimplexErrors, SpaRejectsImpossibleRequests) {
    const std::uint64_t seed = fresh_seed();
    // Rows that are exact mixtures of 3 points: only 3 affinely independent vertices exist.
    std::mt19937_64 rng(seed);
    const std::vector<Vec> v = planted_vertices(3, 10, rng);
    Table t;
    t.V = 200;
    t.d = 10;
    t.data.assign(t.V * t.d, 0.0f);
    t.valid.assign(t.V, 1);
    for (std::int64_t i = 0; i < t.V; ++i) t.set_row(i, combine(v, dirichlet(3, rng)));
    t.compute_center();
    MemoryRowSource src = t.source();
    EXPECT_NO_THROW(spa_vertices(src, t.valid, t.center, 3));
    EXPECT_THROW(spa_vertices(src, t.valid, t.center, 4), InputError);
    EXPECT_THROW(spa_vertices(src, t.valid, t.center, 0), UsageError);
    std::vector<std::uint8_t> few(t.V, 0);
    few[3] = few[7] = 1;
    EXPECT_THROW(spa_vertices(src, few, t.center, 3), InputError);
    EXPECT_EQ(spa_vertices(src, few, t.center, 2).vertices.size(), 2u);
    ExtremenessOptions eo;
    eo.directions = 0;
    EXPECT_THROW(random_direction_extremeness(src, t.valid, eo), UsageError);
    // No valid row: nobody is extreme.
    eo.directions = 10;
    const Extremeness none =
        random_direction_extremeness(src, std::vector<std::uint8_t>(t.V, 0), eo);
    EXPECT_EQ(none.counts, std::vector<std::int32_t>(t.V, 0));
    EXPECT_EQ(none.argmax, std::vector<std::int64_t>(10, -1));
    EXPECT_EQ(none.argmin, std::vector<std::int64_t>(10, -1));
    // A valid-marked row with a NaN is reported, not silently ranked.
    t.data[17 * t.d + 2] = std::numeric_limits<float>::quiet_NaN();
    MemoryRowSource bad = t.source();
    EXPECT_THROW(spa_vertices(bad, t.valid, t.center, 2), InputError);
}

}  // namespace
}  // namespace embgeom
