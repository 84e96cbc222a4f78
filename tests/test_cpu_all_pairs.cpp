// The CPU all-pairs engine against a float64 brute-force reference, plus invariants,
// bit-identity across tilings / threads / budgets, invalid and zero rows, centering, tiny tables
// and the matrix sink.
//
// Tolerances: the reference takes the same float32 normalised rows as the engine (x^ is defined
// as float32) and forms dot products in float64. A float32 dot product of two unit vectors of
// length d is then within gamma_d = (d + 1) 2^-24 / (1 - (d + 1) 2^-24) of the reference whatever
// the BLAS summation order, so two reference values further apart than 2 gamma_d cannot swap and a
// value further than gamma_d + 2^-24 from a histogram edge cannot change bin.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include "cpu/cpu_all_pairs.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/histogram_binning.hpp"
#include "engine/fixed_point.hpp"
#include "engine/tile_plan.hpp"
#include "support/identical_results.hpp"
#include "support/test_support.hpp"

namespace {

using embgeom::AllPairsOptions;
using embgeom::AllPairsResult;
using embgeom::DuplicatePair;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Table {
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::vector<float> x;
    float* row(std::int64_t r) { return x.data() + r * cols; }
    const float* row(std::int64_t r) const { return x.data() + r * cols; }
};

Table random_table(std::int64_t rows, std::int64_t cols, std::uint64_t seed, float mean = 0.0f) {
    return {rows, cols, embgeom::test::random_table(rows, cols, seed, mean)};
}

std::vector<std::uint8_t> finite_rows(const Table& t) {
    std::vector<std::uint8_t> v(static_cast<std::size_t>(t.rows), 1);
    for (std::int64_t r = 0; r < t.rows; ++r)
        for (std::int64_t c = 0; c < t.cols; ++c)
            if (!std::isfinite(t.row(r)[c])) v[r] = 0;
    return v;
}

AllPairsResult run(const Table& t, const std::vector<std::uint8_t>& valid,
                   const AllPairsOptions& opt, int threads = 2) {
    embgeom::MemoryRowSource src(embgeom::MatrixView<const float>(t.x.data(), t.rows, t.cols));
    return embgeom::cpu_all_pairs(src, valid, opt, threads);
}

double gamma_d(std::int64_t d) {
    const double u = std::ldexp(1.0, -24), nu = (d + 1) * u;
    return nu / (1.0 - nu);
}

/// Assembles the tiles handed to a MatrixSink into the full matrix, counting writes per element.
class CollectingSink final : public embgeom::MatrixSink {
  public:
    explicit CollectingSink(std::int64_t v)
        : v_(v), m_(static_cast<std::size_t>(v * v), 0.0f), writes_(m_.size(), 0) {}
    void write_tile(std::int64_t row0, std::int64_t col0,
                    embgeom::MatrixView<const float> tile) override {
        EXPECT_LE(row0, col0);
        EXPECT_LE(row0 + tile.rows, v_);
        EXPECT_LE(col0 + tile.cols, v_);
        for (std::int64_t r = 0; r < tile.rows; ++r)
            for (std::int64_t c = 0; c < tile.cols; ++c) {
                put(row0 + r, col0 + c, tile.row(r)[c]);
                if (row0 != col0) put(col0 + c, row0 + r, tile.row(r)[c]);
            }
        if (row0 == col0) {
            EXPECT_EQ(tile.rows, tile.cols);
            for (std::int64_t r = 0; r < tile.rows; ++r)
                for (std::int64_t c = 0; c < r; ++c) {
                    const float a = tile.row(r)[c], b = tile.row(c)[r];
                    EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << "asymmetric";
                }
        }
    }
    float at(std::int64_t i, std::int64_t j) const { return m_[i * v_ + j]; }
    void expect_each_written_once() const {
        std::int64_t bad = 0;
        for (int w : writes_) bad += w != 1;
        EXPECT_EQ(bad, 0) << "elements not written exactly once";
    }

  private:
    void put(std::int64_t i, std::int64_t j, float v) {
        m_[i * v_ + j] = v;
        ++writes_[i * v_ + j];
    }
    std::int64_t v_;
    std::vector<float> m_;
    std::vector<int> writes_;
};

/// The engine's normalised rows (float32, computed here independently) and float64 dots.
struct Reference {
    std::int64_t V = 0, d = 0, n = 0;
    std::vector<std::uint8_t> valid, zero;
    std::vector<float> xhat;

    Reference(const Table& t, const std::vector<std::uint8_t>& v, const double* center)
        : V(t.rows),
          d(t.cols),
          valid(v),
          zero(static_cast<std::size_t>(t.rows), 0),
          xhat(t.x.size(), 0.0f) {
        for (std::int64_t i = 0; i < V; ++i) {
            if (!valid[i]) continue;
            ++n;
            double ss = 0;
            for (std::int64_t k = 0; k < d; ++k) {
                const double y = t.row(i)[k] - (center ? center[k] : 0.0);
                ss += y * y;
            }
            const double norm = std::sqrt(ss);
            zero[i] = norm == 0.0;
            if (zero[i]) continue;
            for (std::int64_t k = 0; k < d; ++k)
                xhat[i * d + k] =
                    static_cast<float>((t.row(i)[k] - (center ? center[k] : 0.0)) / norm);
        }
    }
    double cos(std::int64_t i, std::int64_t j) const {
        double s = 0;
        for (std::int64_t k = 0; k < d; ++k)
            s += static_cast<double>(xhat[i * d + k]) * xhat[j * d + k];
        return s;
    }
};

struct Cand {
    float sim;
    std::int64_t index;
};

/// The documented neighbour order, written out here rather than taken from the engine.
bool better(const Cand& a, const Cand& b) {
    return a.sim != b.sim ? a.sim > b.sim : a.index < b.index;
}

using embgeom::test::bits;
using embgeom::test::expect_identical_results;

/// Row b becomes a near copy of row a (cosine ~ 1 - 1e-9).
void plant_duplicate(Table& t, std::int64_t a, std::int64_t b, std::mt19937_64& rng) {
    std::normal_distribution<float> nd(0.0f, 1e-5f);
    for (std::int64_t k = 0; k < t.cols; ++k) t.row(b)[k] = t.row(a)[k] * (1.0f + nd(rng));
}

// ---------------------------------------------------------------------------------------------

struct RefCase {
    std::int64_t V, d, k, block_rows;
    bool center;
};

class CpuAllPairsReference : public testing::TestWithParam<RefCase> {};

TEST_P(CpuAllPairsReference, MatchesFloat64BruteForce) {
    const RefCase pc = GetParam();
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    Table t = random_table(pc.V, pc.d, rng(), 0.2f);
    plant_duplicate(t, 3, 11, rng);
    plant_duplicate(t, 20, pc.V - 1, rng);
    plant_duplicate(t, 20, pc.V / 2, rng);
    std::vector<double> center;
    if (pc.center) {
        std::normal_distribution<float> nd(0.0f, 0.5f);
        for (std::int64_t k = 0; k < pc.d; ++k) center.push_back(nd(rng));
    }
    t.row(7)[0] = kNaN;
    t.row(pc.V - 2)[pc.d - 1] = std::numeric_limits<float>::infinity();
    for (std::int64_t k = 0; k < pc.d; ++k)  // a zero row (after centering)
        t.row(40)[k] = pc.center ? static_cast<float>(center[k]) : 0.0f;
    if (pc.center)
        for (std::int64_t k = 0; k < pc.d; ++k) center[k] = t.row(40)[k];
    const std::vector<std::uint8_t> valid = finite_rows(t);

    AllPairsOptions opt;
    opt.k = pc.k;
    opt.block_rows = pc.block_rows;
    opt.accumulate_row_sums = true;
    if (pc.center) opt.center = center;
    CollectingSink sink(pc.V);
    opt.matrix = &sink;
    const AllPairsResult res = run(t, valid, opt);

    const Reference ref(t, valid, pc.center ? center.data() : nullptr);
    const std::int64_t V = pc.V, n = ref.n, K = pc.k;
    const double g = gamma_d(pc.d), u = std::ldexp(1.0, -24);
    ASSERT_EQ(res.rows, V);
    ASSERT_EQ(res.k, K);
    ASSERT_EQ(res.valid_rows, n);
    ASSERT_EQ(res.neighbor_index.size(), static_cast<std::size_t>(V * K));
    ASSERT_EQ(res.neighbor_sim.size(), static_cast<std::size_t>(V * K));
    EXPECT_GT(res.gflop, 0.0);

    // --- the sink: every element once, NaN on invalid rows/columns, equal to the reference.
    sink.expect_each_written_once();
    double max_err = 0;
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t j = 0; j < V; ++j) {
            const float m = sink.at(i, j);
            if (!valid[i] || !valid[j]) {
                EXPECT_TRUE(std::isnan(m)) << i << "," << j;
                continue;
            }
            EXPECT_EQ(m, sink.at(j, i));
            if (i == j) {
                EXPECT_NEAR(m, ref.zero[i] ? 0.0 : 1.0, 1e-5);
                continue;
            }
            max_err = std::max(max_err, std::abs(m - ref.cos(i, j)));
        }
    EXPECT_LE(max_err, g) << "GEMM error beyond the float32 bound";
    RecordProperty("max_abs_error", testing::PrintToString(max_err));

    // --- neighbour lists.
    const std::int64_t filled = std::min(K, n - 1);
    std::int64_t tie_rows = 0;
    for (std::int64_t i = 0; i < V; ++i) {
        const std::int64_t* idx = &res.neighbor_index[i * K];
        const float* sim = &res.neighbor_sim[i * K];
        if (!valid[i]) {
            for (std::int64_t p = 0; p < K; ++p) {
                EXPECT_EQ(idx[p], -1);
                EXPECT_TRUE(std::isnan(sim[p]));
            }
            continue;
        }
        // Exact: the best K of the engine's own values (from the sink) under the total order.
        std::vector<Cand> cands;
        for (std::int64_t j = 0; j < V; ++j)
            if (valid[j] && j != i) cands.push_back({sink.at(i, j), j});
        std::sort(cands.begin(), cands.end(), better);
        for (std::int64_t p = 0; p < K; ++p) {
            if (p < filled) {
                EXPECT_EQ(idx[p], cands[p].index) << "row " << i << " slot " << p;
                EXPECT_EQ(sim[p], cands[p].sim) << "row " << i << " slot " << p;
                EXPECT_NEAR(sim[p], ref.cos(i, idx[p]), 1e-5);
            } else {
                EXPECT_EQ(idx[p], -1);
                EXPECT_TRUE(std::isnan(sim[p]));
            }
        }
        // Against the reference order: equal sets except across near ties (< 2 gamma_d apart).
        std::vector<double> rs;
        for (const Cand& c : cands) rs.push_back(ref.cos(i, c.index));
        std::sort(rs.rbegin(), rs.rend());
        const double kth = rs[filled - 1];
        std::vector<std::uint8_t> listed(static_cast<std::size_t>(V), 0);
        for (std::int64_t p = 0; p < filled; ++p) {
            listed[idx[p]] = 1;
            EXPECT_GE(ref.cos(i, idx[p]), kth - 2 * g) << "row " << i;
        }
        bool differs = false;
        for (const Cand& c : cands) {
            const double r = ref.cos(i, c.index);
            if (r > kth + 2 * g) {
                EXPECT_TRUE(listed[c.index]) << "row " << i << " misses " << c.index;
            }
            differs |= (r >= kth) != static_cast<bool>(listed[c.index]);
        }
        tie_rows += differs;
    }
    RecordProperty("rows_with_near_ties", std::to_string(tie_rows));

    // --- histogram: exact against the sink values; against the reference with slack only for
    // pairs whose reference value sits within gamma_d + 2^-24 of a bin edge.
    const int bins = opt.hist_bins;
    const float scale = 0.5f * bins;
    std::vector<std::int64_t> from_sink(bins, 0), from_ref(bins, 0), slack(bins, 0);
    std::int64_t near_edge = 0, moved = 0;
    double cos_sq_ref = 0;
    std::int64_t cos_sq_fixed = 0;
    std::vector<DuplicatePair> dups_sink;
    const double edge_eps = g + u;
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid[i]) continue;
        for (std::int64_t j = i + 1; j < V; ++j) {
            if (!valid[j]) continue;
            const float m = sink.at(i, j);
            const double r = ref.cos(i, j);
            ++from_sink[embgeom::histogram_bin(m, scale, bins)];
            const int rb = embgeom::histogram_bin(static_cast<float>(r), scale, bins);
            ++from_ref[rb];
            if (rb != embgeom::histogram_bin(m, scale, bins)) {
                ++moved;
                const double e = std::round((r + 1.0) * bins / 2.0) * 2.0 / bins - 1.0;
                EXPECT_LE(std::abs(r - e), edge_eps) << "pair " << i << "," << j << " changed bin";
            }
            const double pos = (r + 1.0) * bins / 2.0;
            const double edge = std::round(pos);
            if (std::abs(pos - edge) * 2.0 / bins <= edge_eps && edge > 0 && edge < bins) {
                ++near_edge;
                ++slack[static_cast<int>(edge) - 1];
                ++slack[static_cast<int>(edge)];
            }
            cos_sq_ref += r * r;
            cos_sq_fixed += embgeom::engine::cos_sq_fixed(m);
            if (static_cast<double>(m) >= opt.dup_threshold) dups_sink.push_back({i, j, m});
        }
    }
    EXPECT_EQ(res.histogram, from_sink);
    for (int b = 0; b < bins; ++b)
        EXPECT_LE(std::abs(res.histogram[b] - from_ref[b]), slack[b]) << "bin " << b;
    RecordProperty("pairs_near_bin_edge", std::to_string(near_edge));
    RecordProperty("pairs_changing_bin", std::to_string(moved));
    std::int64_t total = 0;
    for (auto c : res.histogram) total += c;
    EXPECT_EQ(total, n * (n - 1) / 2);

    // --- the engine's phases account for its time, no more.
    ASSERT_EQ(res.phase_seconds.size(), 4u);
    double phases = 0.0;
    for (const auto& [name, seconds] : res.phase_seconds) {
        EXPECT_GE(seconds, 0.0) << name;
        phases += seconds;
    }
    EXPECT_LE(phases, res.seconds * (1 + 1e-9));

    // --- sum of cos^2: exact against the sink's fixed point, close to the reference.
    EXPECT_EQ(res.pair_cos_sq_sum, static_cast<double>(cos_sq_fixed) / (1 << 24));
    const double pairs = static_cast<double>(n) * (n - 1) / 2;
    EXPECT_NEAR(res.pair_cos_sq_sum, cos_sq_ref, pairs * (2 * g + u));

    // --- duplicates: exact against the sink; the reference's pairs clear of the threshold agree.
    ASSERT_EQ(res.duplicates.size(), dups_sink.size());
    for (std::size_t p = 0; p < dups_sink.size(); ++p) {
        EXPECT_EQ(res.duplicates[p].i, dups_sink[p].i);
        EXPECT_EQ(res.duplicates[p].j, dups_sink[p].j);
        EXPECT_EQ(res.duplicates[p].cosine, dups_sink[p].cosine);
    }
    EXPECT_FALSE(res.duplicates_truncated);
    const auto listed_dup = [&](std::int64_t i, std::int64_t j) {
        return std::binary_search(res.duplicates.begin(), res.duplicates.end(),
                                  DuplicatePair{i, j, 0.0f},
                                  [](const DuplicatePair& a, const DuplicatePair& b) {
                                      return a.i != b.i ? a.i < b.i : a.j < b.j;
                                  });
    };
    EXPECT_TRUE(listed_dup(3, 11));
    EXPECT_TRUE(listed_dup(20, V / 2));
    EXPECT_TRUE(listed_dup(20, V - 1));
    for (std::int64_t i = 0; i < V; i += 5)
        for (std::int64_t j = i + 1; j < V; j += 3) {
            if (!valid[i] || !valid[j]) continue;
            const double r = ref.cos(i, j);
            if (std::abs(r - opt.dup_threshold) > g) {
                EXPECT_EQ(listed_dup(i, j), r >= opt.dup_threshold);
            }
        }

    // --- row means (identity), tiled row sums, S.
    std::vector<double> s_ref(pc.d, 0.0);
    for (std::int64_t i = 0; i < V; ++i)
        if (valid[i])
            for (std::int64_t k = 0; k < pc.d; ++k) s_ref[k] += ref.xhat[i * pc.d + k];
    for (std::int64_t k = 0; k < pc.d; ++k) EXPECT_NEAR(res.normalized_sum[k], s_ref[k], 1e-9 * n);
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid[i]) {
            EXPECT_TRUE(std::isnan(res.row_mean[i]));
            EXPECT_TRUE(std::isnan(res.row_sum_tiled[i]));
            continue;
        }
        double s = 0;
        std::int64_t fixed = 0;
        for (std::int64_t j = 0; j < V; ++j)
            if (valid[j] && j != i) {
                s += ref.cos(i, j);
                fixed += embgeom::engine::cos_fixed(sink.at(i, j));
            }
        EXPECT_NEAR(res.row_mean[i], s / (n - 1), 1e-6) << "row " << i;
        EXPECT_EQ(res.row_sum_tiled[i], static_cast<double>(fixed) / 4294967296.0);
        EXPECT_NEAR(res.row_sum_tiled[i], s, (n - 1) * g);
    }
    EXPECT_EQ(res.row_mean[40], 0.0f);  // the zero row: cosine 0 with everything
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CpuAllPairsReference,
    testing::Values(RefCase{300, 1, 5, 0, false}, RefCase{517, 3, 10, 64, false},
                    RefCase{700, 65, 10, 7, false}, RefCase{450, 65, 1, 1000, true},
                    RefCase{333, 16, 25, 0, true}, RefCase{129, 384, 200, 33, false}),
    [](const testing::TestParamInfo<RefCase>& i) {
        return "V" + std::to_string(i.param.V) + "_d" + std::to_string(i.param.d) + "_k" +
               std::to_string(i.param.k) + "_B" + std::to_string(i.param.block_rows) +
               (i.param.center ? "_centered" : "");
    });

// ---------------------------------------------------------------------------------------------

TEST(CpuAllPairs, ExactTiesBreakByLowerIndex) {
    // Rows with entries in {-1/2, 1/2} (d = 4) are unit vectors whose cosines {-1, -1/2, 0, 1/2, 1}
    // are exact in any summation order: the lists are fully determined by the tie rule, and
    // every histogram value sits exactly on an edge.
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const std::int64_t V = 150, d = 4;
    Table t{V, d, std::vector<float>(V * d)};
    std::bernoulli_distribution coin(0.5);
    std::uniform_int_distribution<int> pow2(-3, 3);
    for (std::int64_t i = 0; i < V; ++i) {
        const float s = std::ldexp(1.0f, pow2(rng));  // exact scaling keeps x^ exact
        for (std::int64_t k = 0; k < d; ++k) t.row(i)[k] = (coin(rng) ? 0.5f : -0.5f) * s;
    }
    AllPairsOptions opt;
    opt.k = 7;
    opt.block_rows = 32;
    const AllPairsResult res = run(t, finite_rows(t), opt);
    std::vector<std::int64_t> hist(opt.hist_bins, 0);
    for (std::int64_t i = 0; i < V; ++i) {
        std::vector<Cand> cands;
        for (std::int64_t j = 0; j < V; ++j) {
            if (j == i) continue;
            double c = 0;
            for (std::int64_t k = 0; k < d; ++k)
                c += (t.row(i)[k] > 0 ? 0.5 : -0.5) * (t.row(j)[k] > 0 ? 0.5 : -0.5);
            cands.push_back({static_cast<float>(c), j});
            if (j > i)
                ++hist[embgeom::histogram_bin(static_cast<float>(c), 0.5f * opt.hist_bins,
                                              opt.hist_bins)];
        }
        std::sort(cands.begin(), cands.end(), better);
        for (std::int64_t p = 0; p < opt.k; ++p) {
            EXPECT_EQ(res.neighbor_index[i * opt.k + p], cands[p].index) << i << " " << p;
            EXPECT_EQ(res.neighbor_sim[i * opt.k + p], cands[p].sim);
        }
    }
    EXPECT_EQ(res.histogram, hist);
}

TEST(CpuAllPairs, InvariantsAndBitIdenticalAcrossTilingsThreadsAndBudgets) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const std::int64_t V = 600, d = 65;
    Table t = random_table(V, d, rng(), 0.5f);  // anisotropic: ||S||^2 >> n
    plant_duplicate(t, 0, 599, rng);
    plant_duplicate(t, 100, 101, rng);
    t.row(13)[5] = kNaN;
    t.row(300)[0] = -std::numeric_limits<float>::infinity();
    std::fill(t.row(77), t.row(77) + d, 0.0f);
    const auto valid = finite_rows(t);
    const std::int64_t n = V - 2;

    AllPairsOptions opt;
    opt.k = 12;
    opt.accumulate_row_sums = true;
    const AllPairsResult base = run(t, valid, opt, 2);

    // Invariants.
    std::int64_t total = 0;
    for (auto c : base.histogram) total += c;
    EXPECT_EQ(total, n * (n - 1) / 2);
    double s2 = 0, lhs = 0, lhs_bound = 0;
    for (double s : base.normalized_sum) s2 += s * s;
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid[i]) continue;
        lhs += static_cast<double>(base.row_mean[i]) * (n - 1);
        lhs_bound += std::abs(base.row_mean[i]) * (n - 1);
    }
    const double rhs = s2 - (n - 1);  // n - 1 non-zero rows
    // rel 1e-9 of the double arithmetic, plus the float32 rounding of each stored row mean.
    EXPECT_NEAR(lhs, rhs, 1e-9 * std::abs(rhs) + lhs_bound * std::ldexp(1.0, -24));
    EXPECT_GT(s2, 10.0 * n);
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid[i]) continue;
        const double expect = static_cast<double>(base.row_mean[i]) * (n - 1);
        EXPECT_NEAR(base.row_sum_tiled[i], expect,
                    (n - 1) * (gamma_d(d) + std::abs(base.row_mean[i]) * std::ldexp(1.0, -23)));
    }

    // Plans actually differ: the tiny budget streams, the default holds the table.
    const auto plan_for = [&](std::int64_t block_rows, std::uint64_t budget, int threads) {
        embgeom::engine::TilePlanRequest r;
        r.rows = n;
        r.dim = d;
        r.k = opt.k;
        r.threads = threads;
        r.block_rows = block_rows;
        r.memory_budget = budget;
        return embgeom::engine::make_tile_plan(r);
    };
    EXPECT_TRUE(plan_for(0, 0, 2).resident);
    EXPECT_FALSE(plan_for(0, 1, 2).resident);
    EXPECT_GT(plan_for(0, 1, 2).blocks, 5);
    EXPECT_GT(plan_for(7, 0, 2).blocks, 5);

    struct Config {
        std::int64_t block_rows;
        std::uint64_t budget;
        int threads;
    };
    std::vector<Config> configs;
    for (std::int64_t b : {std::int64_t{7}, std::int64_t{64}, std::int64_t{1000}, V})
        for (int th : {1, 2}) configs.push_back({b, 0, th});
    for (int th : {1, 2}) configs.push_back({0, 1, th});  // streaming, one grid tile per block
    configs.push_back({7, 1, 2});
    configs.push_back({1000, 1, 2});  // streaming, one block
    configs.push_back({0, 300000, 2});
    configs.push_back({0, 400000, 1});
    for (const Config& c : configs) {
        SCOPED_TRACE(testing::Message() << "block_rows " << c.block_rows << " budget " << c.budget
                                        << " threads " << c.threads);
        AllPairsOptions o = opt;
        o.block_rows = c.block_rows;
        o.memory_budget = c.budget;
        expect_identical_results(run(t, valid, o, c.threads), base);
    }
    // The sink does not change the results.
    CollectingSink sink(V);
    AllPairsOptions o = opt;
    o.matrix = &sink;
    o.memory_budget = 1;
    expect_identical_results(run(t, valid, o, 2), base);
    sink.expect_each_written_once();
}

TEST(CpuAllPairs, NonFiniteRowsAreExcludedEverywhere) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const std::int64_t V = 260, d = 9;
    Table t = random_table(V, d, rng(), 0.3f);
    plant_duplicate(t, 1, 2, rng);
    const std::vector<std::int64_t> bad = {0, 2, 64, 65, 130, 259};
    t.row(0)[0] = kNaN;
    t.row(2)[3] = std::numeric_limits<float>::infinity();
    t.row(64)[8] = -std::numeric_limits<float>::infinity();
    for (std::int64_t k = 0; k < d; ++k) t.row(65)[k] = kNaN;
    t.row(130)[4] = kNaN;
    t.row(259)[1] = std::numeric_limits<float>::infinity();
    const auto valid = finite_rows(t);

    // The same table without those rows.
    Table c{0, d, {}};
    std::vector<std::int64_t> orig;
    for (std::int64_t i = 0; i < V; ++i)
        if (valid[i]) {
            c.x.insert(c.x.end(), t.row(i), t.row(i) + d);
            orig.push_back(i);
            ++c.rows;
        }
    ASSERT_EQ(c.rows, V - static_cast<std::int64_t>(bad.size()));

    AllPairsOptions opt;
    opt.k = 6;
    opt.dup_threshold = 0.9;
    opt.accumulate_row_sums = true;
    opt.block_rows = 40;
    const AllPairsResult a = run(t, valid, opt);
    opt.block_rows = 0;
    const AllPairsResult b = run(c, finite_rows(c), opt);

    EXPECT_EQ(a.valid_rows, c.rows);
    EXPECT_EQ(a.histogram, b.histogram);
    EXPECT_EQ(bits(a.pair_cos_sq_sum), bits(b.pair_cos_sq_sum));
    EXPECT_EQ(bits(a.normalized_sum), bits(b.normalized_sum));
    for (std::int64_t i : bad) {
        EXPECT_TRUE(std::isnan(a.row_mean[i]));
        EXPECT_TRUE(std::isnan(a.row_sum_tiled[i]));
        for (std::int64_t p = 0; p < opt.k; ++p) {
            EXPECT_EQ(a.neighbor_index[i * opt.k + p], -1);
            EXPECT_TRUE(std::isnan(a.neighbor_sim[i * opt.k + p]));
        }
    }
    for (std::int64_t ci = 0; ci < c.rows; ++ci) {
        const std::int64_t i = orig[ci];
        EXPECT_EQ(bits(a.row_mean[i]), bits(b.row_mean[ci]));
        EXPECT_EQ(bits(a.row_sum_tiled[i]), bits(b.row_sum_tiled[ci]));
        for (std::int64_t p = 0; p < opt.k; ++p) {
            EXPECT_EQ(a.neighbor_index[i * opt.k + p], orig[b.neighbor_index[ci * opt.k + p]]);
            EXPECT_EQ(bits(a.neighbor_sim[i * opt.k + p]), bits(b.neighbor_sim[ci * opt.k + p]));
        }
    }
    ASSERT_EQ(a.duplicates.size(), b.duplicates.size());
    EXPECT_FALSE(a.duplicates.empty());
    for (std::size_t p = 0; p < a.duplicates.size(); ++p) {
        EXPECT_EQ(a.duplicates[p].i, orig[b.duplicates[p].i]);
        EXPECT_EQ(a.duplicates[p].j, orig[b.duplicates[p].j]);
        EXPECT_EQ(a.duplicates[p].cosine, b.duplicates[p].cosine);
    }

    // A row marked valid that is not finite breaks the contract.
    std::vector<std::uint8_t> lying = valid;
    lying[64] = 1;
    EXPECT_THROW(run(t, lying, opt), embgeom::ResourceError);
}

TEST(CpuAllPairs, ZeroRowsHaveCosineZeroWithEverything) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const std::int64_t V = 90, d = 8;
    Table t = random_table(V, d, rng(), 1.0f);  // mostly positive cosines
    std::fill(t.row(3), t.row(3) + d, 0.0f);
    std::fill(t.row(50), t.row(50) + d, 0.0f);
    AllPairsOptions opt;
    opt.k = 5;
    opt.accumulate_row_sums = true;
    const AllPairsResult r = run(t, finite_rows(t), opt);
    for (std::int64_t z : {3, 50}) {
        EXPECT_EQ(r.row_mean[z], 0.0f);
        EXPECT_EQ(r.row_sum_tiled[z], 0.0);
        // Every candidate ties at 0: the lowest other indices win.
        std::int64_t want = 0;
        for (std::int64_t p = 0; p < opt.k; ++p, ++want) {
            if (want == z) ++want;
            EXPECT_EQ(r.neighbor_index[z * opt.k + p], want);
            EXPECT_EQ(r.neighbor_sim[z * opt.k + p], 0.0f);
        }
    }
    EXPECT_EQ(r.valid_rows, V);
}

TEST(CpuAllPairs, CenterOptionEqualsPreCenteredData) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const std::int64_t V = 210, d = 17;
    // y on a 2^-10 grid and an integer center: x = y + c and x - c are exact in float32, so both
    // runs normalise exactly the same vectors.
    std::normal_distribution<double> nd(0.0, 1.0);
    std::uniform_int_distribution<int> ci(-3, 3);
    Table y{V, d, std::vector<float>(V * d)}, x = y;
    std::vector<double> center(d);
    for (auto& c : center) c = ci(rng);
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t k = 0; k < d; ++k) {
            y.row(i)[k] =
                static_cast<float>(std::clamp(std::round(nd(rng) * 1024) / 1024, -3.9, 3.9));
            x.row(i)[k] = static_cast<float>(y.row(i)[k] + center[k]);
        }
    AllPairsOptions opt;
    opt.k = 4;
    opt.accumulate_row_sums = true;
    opt.dup_threshold = 0.7;
    const AllPairsResult plain = run(y, finite_rows(y), opt);
    opt.center = center;
    opt.block_rows = 50;
    const AllPairsResult centered = run(x, finite_rows(x), opt, 1);
    expect_identical_results(centered, plain);
}

TEST(CpuAllPairs, TinyTablesAndListsLongerThanTheValidRows) {
    AllPairsOptions opt;
    opt.k = 3;
    opt.accumulate_row_sums = true;
    {  // V = 0
        const AllPairsResult r = run(Table{0, 5, {}}, {}, opt);
        EXPECT_EQ(r.rows, 0);
        EXPECT_TRUE(r.neighbor_index.empty());
        EXPECT_EQ(r.normalized_sum, std::vector<double>(5, 0.0));
        EXPECT_EQ(r.valid_rows, 0);
    }
    {  // V = 1
        const Table t{1, 5, {1, 2, 3, 4, 5}};
        const AllPairsResult r = run(t, {1}, opt);
        EXPECT_EQ(r.valid_rows, 1);
        EXPECT_EQ(r.neighbor_index, std::vector<std::int64_t>(3, -1));
        EXPECT_TRUE(std::isnan(r.row_mean[0]));
        for (auto c : r.histogram) EXPECT_EQ(c, 0);
        EXPECT_NEAR(r.normalized_sum[4], 5 / std::sqrt(55.0), 1e-7);
    }
    {  // V = 2: each is the other's only neighbour
        const Table t{2, 2, {1, 0, 1, 1}};
        CollectingSink sink(2);
        AllPairsOptions o = opt;
        o.matrix = &sink;
        const AllPairsResult r = run(t, {1, 1}, o, 1);
        EXPECT_EQ(r.neighbor_index, (std::vector<std::int64_t>{1, -1, -1, 0, -1, -1}));
        EXPECT_NEAR(r.neighbor_sim[0], std::sqrt(0.5), 1e-7);
        EXPECT_EQ(r.neighbor_sim[0], r.neighbor_sim[3]);
        EXPECT_NEAR(r.row_mean[0], std::sqrt(0.5), 1e-7);
        EXPECT_EQ(r.duplicates.size(), 0u);
        sink.expect_each_written_once();
        EXPECT_EQ(sink.at(0, 1), r.neighbor_sim[0]);
    }
    {  // k >= n_valid with invalid rows in between
        std::mt19937_64 rng(embgeom::test::fresh_seed());
        Table t = random_table(6, 3, rng());
        t.row(1)[0] = kNaN;
        t.row(4)[2] = kNaN;
        AllPairsOptions o = opt;
        o.k = 10;
        const AllPairsResult r = run(t, finite_rows(t), o);
        for (std::int64_t i : {0, 2, 3, 5}) {
            std::vector<std::int64_t> got(r.neighbor_index.begin() + i * 10,
                                          r.neighbor_index.begin() + i * 10 + 3);
            std::sort(got.begin(), got.end());
            std::vector<std::int64_t> want;
            for (std::int64_t j : {0, 2, 3, 5})
                if (j != i) want.push_back(j);
            EXPECT_EQ(got, want);
            for (std::int64_t p = 3; p < 10; ++p) {
                EXPECT_EQ(r.neighbor_index[i * 10 + p], -1);
                EXPECT_TRUE(std::isnan(r.neighbor_sim[i * 10 + p]));
            }
        }
    }
    {  // every row invalid: the sink still receives the whole (NaN) matrix
        Table t{4, 2, std::vector<float>(8, kNaN)};
        CollectingSink sink(4);
        AllPairsOptions o = opt;
        o.matrix = &sink;
        const AllPairsResult r = run(t, finite_rows(t), o);
        EXPECT_EQ(r.valid_rows, 0);
        sink.expect_each_written_once();
        for (std::int64_t i = 0; i < 4; ++i) EXPECT_TRUE(std::isnan(sink.at(i, 3 - i)));
    }
    opt.k = 0;
    EXPECT_THROW(run(Table{1, 1, {1}}, {1}, opt), embgeom::ResourceError);
}

TEST(CpuAllPairs, DuplicateListIsCutDeterministically) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const Table t = random_table(300, 3, rng());  // d = 3: thousands of pairs above 0.99
    AllPairsOptions opt;
    opt.dup_threshold = 0.99;
    const AllPairsResult full = run(t, finite_rows(t), opt);
    ASSERT_GT(full.duplicates.size(), 20u);
    EXPECT_FALSE(full.duplicates_truncated);
    opt.max_dup_pairs = 7;
    for (int threads : {1, 2})
        for (std::int64_t b : {0, 7}) {
            opt.block_rows = b;
            const AllPairsResult cut = run(t, finite_rows(t), opt, threads);
            EXPECT_TRUE(cut.duplicates_truncated);
            ASSERT_EQ(cut.duplicates.size(), 7u);
            for (std::size_t p = 0; p < 7; ++p) {
                EXPECT_EQ(cut.duplicates[p].i, full.duplicates[p].i);
                EXPECT_EQ(cut.duplicates[p].j, full.duplicates[p].j);
            }
        }
}

class ThrowingSink final : public embgeom::MatrixSink {
  public:
    void write_tile(std::int64_t, std::int64_t, embgeom::MatrixView<const float>) override {
        if (++calls_ == 3) throw embgeom::ResourceError("disk full");
    }

  private:
    int calls_ = 0;
};

TEST(CpuAllPairs, SinkFailureIsRethrown) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const Table t = random_table(400, 5, rng());
    ThrowingSink sink;
    AllPairsOptions opt;
    opt.matrix = &sink;
    EXPECT_THROW(run(t, finite_rows(t), opt), embgeom::ResourceError);
    // The engine is usable afterwards (no lock left held).
    opt.matrix = nullptr;
    EXPECT_EQ(run(t, finite_rows(t), opt).valid_rows, 400);
}

// Throughput of the engine (not run by default):
//   embgeom_tests --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'
TEST(CpuAllPairs, DISABLED_Throughput) {
    const std::int64_t V = 30522, d = 384;
    const Table t = random_table(V, d, 12345);
    AllPairsOptions opt;
    opt.k = 10;
    const AllPairsResult r = run(t, finite_rows(t), opt, 0);
    const double useful = static_cast<double>(V) * (V - 1) * d / 1e9;  // the upper triangle
    std::cout << "[ engine ] V=" << V << " d=" << d << ": " << r.seconds << " s, "
              << r.gflop / r.seconds << " GFLOP/s done (" << r.gflop << " GFLOP), "
              << useful / r.seconds << " GFLOP/s useful (" << useful << " GFLOP)\n";
}

}  // namespace
