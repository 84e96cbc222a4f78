// The CUDA backend against the CPU backend (the oracle), and the CUDA all-pairs engine against
// its own cosine matrix (every fold output must follow exactly from the matrix it hands to the
// sink). Tests in GpuTest fixtures skip, with the reason, where no CUDA device is usable, and fail
// instead when EMBGEOM_REQUIRE_GPU is set. The BackendSelection tests run everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/build_info.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/histogram_binning.hpp"
#include "engine/fixed_point.hpp"
#include "engine/row_normalize.hpp"
#include "support/test_support.hpp"

namespace {

using namespace embgeom;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

class GpuTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (cuda_device_count() > 0) return;
        if (std::getenv("EMBGEOM_REQUIRE_GPU"))
            FAIL() << "EMBGEOM_REQUIRE_GPU set but no usable CUDA device";
        GTEST_SKIP() << (kCudaBuilt ? "no usable CUDA device" : "built without CUDA");
    }
};

bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// ---------------------------------------------------------------------------------------------
// Tables

struct TableSpec {
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    int nonfinite = 0;      ///< rows given a NaN, +inf or -inf element
    bool zero_row = false;  ///< one all-zero (valid) row
    int near_dups = 0;      ///< rows replaced by a slightly perturbed copy of another row
    float mean = 0.0f;      ///< N(mean, 1) elements; a large mean gives large cosines
};

struct Table {
    std::vector<float> x;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    MatrixView<const float> view() const { return MatrixView<const float>(x.data(), rows, cols); }
};

Table make_table(const TableSpec& s, std::uint64_t seed) {
    Table t{test::random_table(s.rows, s.cols, seed, s.mean), s.rows, s.cols};
    if (s.rows == 0 || s.cols == 0) return t;
    std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
    std::uniform_int_distribution<std::int64_t> row(0, s.rows - 1), col(0, s.cols - 1);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    for (int q = 0; q < s.near_dups && s.rows >= 2; ++q) {
        const std::int64_t a = row(rng), b = row(rng);
        if (a == b) continue;
        for (std::int64_t c = 0; c < s.cols; ++c)
            t.x[b * s.cols + c] = t.x[a * s.cols + c] * (1.0f + 1e-4f * noise(rng));
    }
    if (s.zero_row) std::fill_n(t.x.begin() + row(rng) * s.cols, s.cols, 0.0f);
    const float bad[] = {kNaN, std::numeric_limits<float>::infinity(),
                         -std::numeric_limits<float>::infinity()};
    for (int q = 0; q < s.nonfinite; ++q) t.x[row(rng) * s.cols + col(rng)] = bad[q % 3];
    return t;
}

/// Finite flags and float64 column sums of the finite rows, from the CPU backend.
std::vector<std::uint8_t> finite_rows(const Table& t, std::vector<double>* column_sums = nullptr) {
    std::vector<float> norms(t.rows);
    std::vector<std::uint8_t> finite(t.rows);
    std::vector<double> sums(t.cols, 0.0);
    make_cpu_backend(2)->row_norms_and_sums(t.view(), norms.data(), finite.data(), sums.data());
    if (column_sums) *column_sums = sums;
    return finite;
}

// ---------------------------------------------------------------------------------------------
// Per-token passes

using PerTokenCase = std::tuple<std::int64_t, std::int64_t>;  // rows, cols

class CudaPerToken : public GpuTest, public ::testing::WithParamInterface<PerTokenCase> {};

TEST_P(CudaPerToken, NormsSumsAndDistancesMatchCpu) {
    const auto [rows, cols] = GetParam();
    TableSpec spec;
    spec.rows = rows;
    spec.cols = cols;
    spec.nonfinite = rows >= 3 ? 3 : 0;
    spec.zero_row = rows >= 5;
    const Table t = make_table(spec, test::fresh_seed());
    // The CUDA backend reads a padded copy (leading dimension > cols).
    const std::int64_t ld = cols + 5;
    std::vector<float> padded(static_cast<std::size_t>(rows * ld), -7.0f);
    for (std::int64_t r = 0; r < rows; ++r)
        std::copy_n(t.x.begin() + r * cols, cols, padded.begin() + r * ld);
    const MatrixView<const float> gview(padded.data(), rows, cols, ld);

    auto cpu = make_cpu_backend(2);
    auto gpu = make_cuda_backend();
    std::vector<float> cn(rows), gn(rows);
    std::vector<std::uint8_t> cf(rows), gf(rows);
    std::vector<double> cs(cols, 0.0), gs(cols, 0.0);
    // Two uneven blocks: the column sums must carry across calls in row order.
    const std::int64_t split = rows / 3;
    cpu->row_norms_and_sums(t.view().slice_rows(0, split), cn.data(), cf.data(), cs.data());
    cpu->row_norms_and_sums(t.view().slice_rows(split, rows - split), cn.data() + split,
                            cf.data() + split, cs.data());
    gpu->row_norms_and_sums(gview.slice_rows(0, split), gn.data(), gf.data(), gs.data());
    gpu->row_norms_and_sums(gview.slice_rows(split, rows - split), gn.data() + split,
                            gf.data() + split, gs.data());

    for (std::int64_t r = 0; r < rows; ++r) {
        ASSERT_EQ(cf[r], gf[r]) << "finite flag of row " << r;
        if (std::isnan(cn[r])) {
            EXPECT_TRUE(std::isnan(gn[r])) << "row " << r;
        } else {
            EXPECT_NEAR(gn[r], cn[r], 1e-6 * std::max(1.0f, std::fabs(cn[r])))
                << "norm of row " << r;
        }
    }
    // Both add the same float64 values in row order: bitwise equal.
    for (std::int64_t c = 0; c < cols; ++c) EXPECT_EQ(gs[c], cs[c]) << "column sum " << c;

    std::vector<double> point(cols);
    const auto n_finite = std::count(cf.begin(), cf.end(), std::uint8_t{1});
    for (std::int64_t c = 0; c < cols; ++c) point[c] = n_finite ? cs[c] / n_finite : 0.0;
    std::vector<float> cd(rows), gd(rows);
    cpu->distances_to_point(t.view(), point.data(), cd.data());
    gpu->distances_to_point(gview, point.data(), gd.data());
    for (std::int64_t r = 0; r < rows; ++r) {
        if (!std::isfinite(cd[r])) {
            EXPECT_TRUE(same_float(cd[r], gd[r]))
                << "row " << r << ": " << cd[r] << " vs " << gd[r];
        } else {
            EXPECT_NEAR(gd[r], cd[r], 1e-6 * std::max(1.0f, std::fabs(cd[r])))
                << "distance of row " << r;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaPerToken,
                         ::testing::Combine(::testing::Values<std::int64_t>(0, 1, 2, 37, 1000,
                                                                            4097),
                                            ::testing::Values<std::int64_t>(1, 3, 64, 4095)),
                         [](const ::testing::TestParamInfo<PerTokenCase>& info) {
                             return "V" + std::to_string(std::get<0>(info.param)) + "_d" +
                                    std::to_string(std::get<1>(info.param));
                         });

// ---------------------------------------------------------------------------------------------
// All pairs

/// Receives tiles into a dense V x V matrix and counts how often each cell was written.
class RecordingSink final : public MatrixSink {
  public:
    explicit RecordingSink(std::int64_t v)
        : v_(v), m_(static_cast<std::size_t>(v * v), kNaN), writes_(m_.size(), 0) {}

    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) override {
        if (row0 > col0 || row0 < 0 || row0 + tile.rows > v_ || col0 + tile.cols > v_) {
            ++bad_tiles_;
            return;
        }
        for (std::int64_t r = 0; r < tile.rows; ++r)
            for (std::int64_t c = 0; c < tile.cols; ++c) {
                put(row0 + r, col0 + c, tile.row(r)[c]);
                if (row0 != col0) put(col0 + c, row0 + r, tile.row(r)[c]);
            }
    }
    float at(std::int64_t i, std::int64_t j) const { return m_[i * v_ + j]; }
    int bad_tiles() const { return bad_tiles_; }
    std::int64_t cells_not_written_once() const {
        return std::count_if(writes_.begin(), writes_.end(), [](std::uint8_t w) { return w != 1; });
    }

  private:
    void put(std::int64_t i, std::int64_t j, float v) {
        m_[i * v_ + j] = v;
        std::uint8_t& w = writes_[i * v_ + j];
        if (w < 255) ++w;
    }
    std::int64_t v_;
    std::vector<float> m_;
    std::vector<std::uint8_t> writes_;
    int bad_tiles_ = 0;
};

struct AllPairsCase {
    std::string name;
    TableSpec table;
    std::int64_t k = 10;
    std::int64_t block_rows = 0;
    std::uint64_t memory_budget = 0;
    bool center = false;
    double dup_threshold = 0.999;
    std::int64_t max_dup_pairs = 1000000;
    int hist_bins = 2000;
};

void PrintTo(const AllPairsCase& c, std::ostream* os) { *os << c.name; }

std::vector<AllPairsCase> all_pairs_cases() {
    std::vector<AllPairsCase> v;
    const auto add = [&](const char* name, std::int64_t rows, std::int64_t cols,
                         std::int64_t k) -> AllPairsCase& {
        v.emplace_back();
        AllPairsCase& c = v.back();
        c.name = name;
        c.table.rows = rows;
        c.table.cols = cols;
        c.k = k;
        return c;
    };
    add("empty_table", 0, 3, 5);
    add("one_row", 1, 3, 5);
    add("two_rows_d1", 2, 1, 3);
    {
        AllPairsCase& c = add("all_rows_invalid", 5, 4, 3);
        c.table.nonfinite = 40;
    }
    {
        AllPairsCase& c = add("V37_d3_k_above_valid_rows_centered", 37, 3, 50);
        c.table.nonfinite = 3;
        c.table.zero_row = true;
        c.center = true;
    }
    {
        AllPairsCase& c = add("V37_d64_tiles_of_8", 37, 64, 10);
        c.block_rows = 8;
        c.table.nonfinite = 2;
        c.table.near_dups = 4;
    }
    {
        // d = 1: every cosine is exactly -1, 0 or 1, so ties everywhere and a truncated list.
        AllPairsCase& c = add("V1000_d1_ties_truncated_duplicates", 1000, 1, 5);
        c.block_rows = 300;
        c.max_dup_pairs = 1000;
        c.table.zero_row = true;
    }
    {
        AllPairsCase& c = add("V1000_d64_tiles_of_300", 1000, 64, 10);
        c.block_rows = 300;
        c.table.nonfinite = 5;
        c.table.near_dups = 20;
        c.table.zero_row = true;
    }
    {
        // Budget sized for the CUDA engine to stream 128-row blocks (~370 kB needed, ~560 kB
        // resident) instead of holding the table.
        AllPairsCase& c = add("V1000_d64_streamed", 1000, 64, 10);
        c.block_rows = 128;
        c.memory_budget = 450000;
        c.max_dup_pairs = 1000;
        c.table.near_dups = 20;
        c.table.nonfinite = 2;
    }
    {
        AllPairsCase& c = add("V1000_d4095_offset_mean_centered", 1000, 4095, 7);
        c.table.mean = 3.0f;
        c.table.near_dups = 10;
        c.center = true;
    }
    {
        AllPairsCase& c = add("V300_d4095_many_bins", 300, 4095, 10);
        c.hist_bins = 20000;  // beyond the shared-memory histogram
        c.table.nonfinite = 1;
    }
    {
        AllPairsCase& c = add("V4097_d64_default_tiles", 4097, 64, 20);
        c.table.nonfinite = 7;
        c.table.near_dups = 50;
    }
    {
        AllPairsCase& c = add("V4097_d3_k1_tiles_of_1000", 4097, 3, 1);
        c.block_rows = 1000;
        c.hist_bins = 7;
    }
    return v;
}

class CudaAllPairs : public GpuTest, public ::testing::WithParamInterface<AllPairsCase> {
  protected:
    void SetUp() override {
        GpuTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        const AllPairsCase& c = GetParam();
        table_ = make_table(c.table, test::fresh_seed());
        std::vector<double> sums;
        valid_ = finite_rows(table_, &sums);
        opt_.k = c.k;
        opt_.hist_bins = c.hist_bins;
        opt_.dup_threshold = c.dup_threshold;
        opt_.max_dup_pairs = c.max_dup_pairs;
        opt_.block_rows = c.block_rows;
        opt_.memory_budget = c.memory_budget;
        opt_.accumulate_row_sums = true;
        if (c.center) {
            const auto n = std::count(valid_.begin(), valid_.end(), std::uint8_t{1});
            std::vector<double> mu(table_.cols, 0.0);
            for (std::int64_t j = 0; j < table_.cols; ++j) mu[j] = n ? sums[j] / n : 0.0;
            opt_.center = mu;
        }
    }

    AllPairsResult run(Backend& b, MatrixSink* sink) {
        MemoryRowSource source(table_.view(), "parity table");
        AllPairsOptions o = opt_;
        o.matrix = sink;
        return b.all_pairs(source, valid_, o);
    }

    /// Cosine tolerance of one float32 GEMM entry of unit vectors of length d.
    double cos_tol() const { return 1e-6 + 2e-7 * std::sqrt(static_cast<double>(table_.cols)); }

    Table table_;
    std::vector<std::uint8_t> valid_;
    AllPairsOptions opt_;
};

float smallest_float_at_least(double t) {
    float f = static_cast<float>(t);
    if (static_cast<double>(f) < t) f = std::nextafter(f, std::numeric_limits<float>::infinity());
    return f;
}

bool ranks_before(float sa, std::int64_t ia, float sb, std::int64_t ib) {
    return sa > sb || (sa == sb && ia < ib);
}

TEST_P(CudaAllPairs, EveryOutputFollowsFromItsOwnMatrix) {
    auto gpu = make_cuda_backend();
    const std::int64_t V = table_.rows, d = table_.cols;
    RecordingSink m(V);
    const AllPairsResult r = run(*gpu, &m);
    const std::int64_t n_valid = std::count(valid_.begin(), valid_.end(), std::uint8_t{1});
    ASSERT_EQ(r.rows, V);
    ASSERT_EQ(r.k, opt_.k);
    ASSERT_EQ(r.valid_rows, n_valid);
    ASSERT_EQ(m.bad_tiles(), 0);
    ASSERT_EQ(m.cells_not_written_once(), 0) << "the sink must see every cell exactly once";

    // Normalised rows, S and the row means, bit for bit as the shared host definitions give them.
    std::vector<float> xn(static_cast<std::size_t>(V * d), 0.0f);
    std::vector<double> S(d, 0.0);
    std::vector<std::uint8_t> zero(V, 0);
    const double* center = opt_.center ? opt_.center->data() : nullptr;
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid_[i]) continue;
        const double norm = engine::normalize_row(table_.view().row(i), center, d, &xn[i * d]);
        zero[i] = norm > 0.0 ? 0 : 1;
        for (std::int64_t c = 0; c < d; ++c) S[c] += xn[i * d + c];
    }
    ASSERT_EQ(r.normalized_sum.size(), static_cast<std::size_t>(d));
    for (std::int64_t c = 0; c < d; ++c) EXPECT_EQ(r.normalized_sum[c], S[c]) << "S[" << c << "]";
    for (std::int64_t i = 0; i < V; ++i) {
        const float want =
            valid_[i] ? static_cast<float>(engine::row_mean_identity(
                            engine::dot_with_sum(&xn[i * d], S.data(), d), zero[i], n_valid))
                      : kNaN;
        EXPECT_TRUE(same_float(r.row_mean[i], want))
            << "row_mean[" << i << "] " << r.row_mean[i] << " vs " << want;
    }

    // The matrix: NaN exactly on invalid rows and columns, symmetric, close to float64 cosines of
    // the normalised rows (checked on a sample of rows).
    std::int64_t mask_errors = 0, asym = 0, far = 0;
    double worst = 0.0;
    const std::int64_t sample_step = std::max<std::int64_t>(1, V / 64);
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t j = 0; j < V; ++j) {
            const float v = m.at(i, j);
            if (!valid_[i] || !valid_[j]) {
                mask_errors += !std::isnan(v);
                continue;
            }
            mask_errors += !std::isfinite(v);
            asym += i != j && !same_float(v, m.at(j, i));
            if (i % sample_step == 0 && i != j) {
                double ref = 0.0;
                for (std::int64_t c = 0; c < d; ++c)
                    ref += static_cast<double>(xn[i * d + c]) * xn[j * d + c];
                worst = std::max(worst, std::fabs(v - ref));
                far += std::fabs(v - ref) > cos_tol();
            }
        }
    EXPECT_EQ(mask_errors, 0) << "cells with NaN on valid pairs or a value on invalid ones";
    EXPECT_EQ(asym, 0) << "cells with M[i][j] != M[j][i]";
    EXPECT_EQ(far, 0) << "cosines off the float64 reference by more than " << cos_tol()
                      << " (worst " << worst << ")";

    // Histogram, cos^2, duplicates and row sums recomputed from the matrix.
    const float scale = 0.5f * static_cast<float>(opt_.hist_bins);
    const float dup_min = smallest_float_at_least(opt_.dup_threshold);
    std::vector<std::int64_t> hist(opt_.hist_bins, 0);
    unsigned __int128 cos_sq = 0;
    std::vector<DuplicatePair> dups;
    std::int64_t dup_total = 0;
    std::vector<std::int64_t> row_fixed(V, 0);
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid_[i]) continue;
        for (std::int64_t j = 0; j < V; ++j) {
            if (!valid_[j] || j == i) continue;
            const float v = m.at(i, j);
            row_fixed[i] += engine::cos_fixed(v);
            if (j < i) continue;
            ++hist[histogram_bin(v, scale, opt_.hist_bins)];
            cos_sq += static_cast<unsigned>(engine::cos_sq_fixed(v));
            if (v >= dup_min) {
                ++dup_total;
                if (static_cast<std::int64_t>(dups.size()) < opt_.max_dup_pairs)
                    dups.push_back({i, j, v});
            }
        }
    }
    EXPECT_EQ(r.histogram, hist);
    EXPECT_EQ(r.pair_cos_sq_sum,
              static_cast<double>(cos_sq) / static_cast<double>(engine::kCosSqScale));
    EXPECT_EQ(r.duplicates_truncated, dup_total > opt_.max_dup_pairs);
    ASSERT_EQ(r.duplicates.size(), dups.size());
    for (std::size_t q = 0; q < dups.size(); ++q) {
        EXPECT_EQ(r.duplicates[q].i, dups[q].i) << "duplicate " << q;
        EXPECT_EQ(r.duplicates[q].j, dups[q].j) << "duplicate " << q;
        EXPECT_EQ(r.duplicates[q].cosine, dups[q].cosine) << "duplicate " << q;
    }
    ASSERT_EQ(r.row_sum_tiled.size(), static_cast<std::size_t>(V));
    for (std::int64_t i = 0; i < V; ++i) {
        const double want = valid_[i] ? static_cast<double>(row_fixed[i]) / engine::kCosScale
                                      : std::numeric_limits<double>::quiet_NaN();
        EXPECT_TRUE((std::isnan(want) && std::isnan(r.row_sum_tiled[i])) ||
                    want == r.row_sum_tiled[i])
            << "row_sum_tiled[" << i << "] " << r.row_sum_tiled[i] << " vs " << want;
    }

    // Neighbour lists: the exact top-k of each matrix row under (cosine desc, index asc).
    const std::int64_t k = opt_.k;
    std::int64_t list_errors = 0;
    std::vector<std::pair<float, std::int64_t>> cand;
    for (std::int64_t i = 0; i < V; ++i) {
        cand.clear();
        if (valid_[i])
            for (std::int64_t j = 0; j < V; ++j)
                if (valid_[j] && j != i) cand.emplace_back(m.at(i, j), j);
        const std::size_t kept = std::min<std::size_t>(k, cand.size());
        std::partial_sort(cand.begin(), cand.begin() + kept, cand.end(),
                          [](const auto& a, const auto& b) {
                              return ranks_before(a.first, a.second, b.first, b.second);
                          });
        for (std::int64_t s = 0; s < k; ++s) {
            const std::int64_t gi = r.neighbor_index[i * k + s];
            const float gs = r.neighbor_sim[i * k + s];
            const bool ok = static_cast<std::size_t>(s) < kept
                                ? gi == cand[s].second && gs == cand[s].first
                                : gi == -1 && std::isnan(gs);
            if (!ok && list_errors++ < 5)
                ADD_FAILURE() << "row " << i << " slot " << s << ": got (" << gi << ", " << gs
                              << ")";
        }
    }
    EXPECT_EQ(list_errors, 0);

    // Without a sink, and run again: bit-identical results (the sink must not change the fold,
    // and nothing may depend on scheduling).
    const AllPairsResult again = run(*gpu, nullptr);
    EXPECT_EQ(again.neighbor_index, r.neighbor_index);
    for (std::size_t q = 0; q < r.neighbor_sim.size(); ++q)
        ASSERT_TRUE(same_float(again.neighbor_sim[q], r.neighbor_sim[q])) << "slot " << q;
    EXPECT_EQ(again.histogram, r.histogram);
    EXPECT_EQ(again.pair_cos_sq_sum, r.pair_cos_sq_sum);
    EXPECT_EQ(again.duplicates.size(), r.duplicates.size());
    EXPECT_EQ(again.normalized_sum, r.normalized_sum);
}

TEST_P(CudaAllPairs, MatchesCpuBackend) {
    auto cpu = make_cpu_backend(2);
    auto gpu = make_cuda_backend();
    const std::int64_t V = table_.rows, k = opt_.k;
    RecordingSink cm(V), gm(V);
    const AllPairsResult c = run(*cpu, &cm);
    const AllPairsResult g = run(*gpu, &gm);
    const double tol = 2 * cos_tol();

    EXPECT_EQ(g.rows, c.rows);
    EXPECT_EQ(g.k, c.k);
    EXPECT_EQ(g.valid_rows, c.valid_rows);
    // Same normalised bits on both sides (shared definition), so S and the row means are exact.
    EXPECT_EQ(g.normalized_sum, c.normalized_sum);
    for (std::int64_t i = 0; i < V; ++i)
        EXPECT_TRUE(same_float(g.row_mean[i], c.row_mean[i]))
            << "row_mean[" << i << "] " << g.row_mean[i] << " vs " << c.row_mean[i];

    // The matrices agree to GEMM rounding, NaN in the same places.
    std::int64_t mismatched = 0;
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t j = 0; j < V; ++j) {
            const float a = cm.at(i, j), b = gm.at(i, j);
            const bool ok = std::isnan(a) ? std::isnan(b) : std::fabs(a - b) <= tol;
            if (!ok && mismatched++ < 5)
                ADD_FAILURE() << "M[" << i << "][" << j << "]: cpu " << a << " cuda " << b;
        }
    ASSERT_EQ(mismatched, 0);

    // Histogram: the same total; a pair may change bins only if its cosine sits within the GEMM
    // tolerance of a bin edge.
    const float scale = 0.5f * static_cast<float>(opt_.hist_bins);
    std::int64_t moved = 0, moved_far_from_edge = 0, pairs = 0;
    double cos_abs_sum = 0.0;
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t j = i + 1; j < V; ++j) {
            if (!valid_[i] || !valid_[j]) continue;
            ++pairs;
            const float a = cm.at(i, j), b = gm.at(i, j);
            cos_abs_sum += std::fabs(a);
            if (histogram_bin(a, scale, opt_.hist_bins) == histogram_bin(b, scale, opt_.hist_bins))
                continue;
            ++moved;
            const double t = (static_cast<double>(a) + 1.0) * scale;
            const double to_edge = std::fabs(t - std::round(t)) / scale;
            moved_far_from_edge += to_edge > tol;
        }
    std::int64_t ctotal = 0, gtotal = 0, l1 = 0;
    for (int b = 0; b < opt_.hist_bins; ++b) {
        ctotal += c.histogram[b];
        gtotal += g.histogram[b];
        l1 += std::llabs(c.histogram[b] - g.histogram[b]);
    }
    EXPECT_EQ(ctotal, pairs);
    EXPECT_EQ(gtotal, pairs);
    EXPECT_LE(l1, 2 * moved);
    EXPECT_EQ(moved_far_from_edge, 0);

    // cos^2: each term moves by at most 2 |cos| tol, plus the fixed-point rounding.
    EXPECT_NEAR(g.pair_cos_sq_sum, c.pair_cos_sq_sum,
                2 * tol * cos_abs_sum + pairs * std::ldexp(1.0, -24) + 1e-12);

    // Row sums of the tiled pass.
    ASSERT_EQ(g.row_sum_tiled.size(), c.row_sum_tiled.size());
    for (std::int64_t i = 0; i < V; ++i) {
        if (std::isnan(c.row_sum_tiled[i])) {
            EXPECT_TRUE(std::isnan(g.row_sum_tiled[i])) << "row " << i;
        } else {
            EXPECT_NEAR(g.row_sum_tiled[i], c.row_sum_tiled[i], tol * V + 1e-9) << "row " << i;
        }
    }

    // Neighbours: the same number of filled slots, the same similarities to tolerance, and where
    // the indices differ the CUDA choice is a near-tie in the CPU's own matrix.
    std::int64_t list_errors = 0;
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t s = 0; s < k; ++s) {
            const std::int64_t ci = c.neighbor_index[i * k + s], gi = g.neighbor_index[i * k + s];
            const float cs = c.neighbor_sim[i * k + s], gs = g.neighbor_sim[i * k + s];
            bool ok;
            if (ci < 0 || gi < 0) {
                ok = ci == gi && std::isnan(cs) && std::isnan(gs);
            } else {
                ok = std::fabs(cs - gs) <= tol &&
                     (ci == gi || std::fabs(cm.at(i, gi) - cs) <= 2 * tol);
            }
            if (!ok && list_errors++ < 5)
                ADD_FAILURE() << "row " << i << " slot " << s << ": cpu (" << ci << ", " << cs
                              << ") cuda (" << gi << ", " << gs << ")";
        }
    EXPECT_EQ(list_errors, 0);

    // Duplicates: pairs on one list only must sit within tolerance of the threshold, or beyond
    // the cut of a truncated list.
    const auto key = [](const DuplicatePair& p) { return std::make_pair(p.i, p.j); };
    std::pair<std::int64_t, std::int64_t> cut{std::numeric_limits<std::int64_t>::max(), 0};
    if (c.duplicates_truncated && !c.duplicates.empty())
        cut = std::min(cut, key(c.duplicates.back()));
    if (g.duplicates_truncated && !g.duplicates.empty())
        cut = std::min(cut, key(g.duplicates.back()));
    std::size_t a = 0, b = 0;
    std::int64_t dup_errors = 0;
    const auto unexplained = [&](const DuplicatePair& p) {
        return key(p) < cut && std::fabs(cm.at(p.i, p.j) - opt_.dup_threshold) > tol;
    };
    while (a < c.duplicates.size() || b < g.duplicates.size()) {
        if (b == g.duplicates.size() ||
            (a < c.duplicates.size() && key(c.duplicates[a]) < key(g.duplicates[b]))) {
            dup_errors += unexplained(c.duplicates[a++]);
        } else if (a == c.duplicates.size() || key(g.duplicates[b]) < key(c.duplicates[a])) {
            dup_errors += unexplained(g.duplicates[b++]);
        } else {
            dup_errors += std::fabs(c.duplicates[a].cosine - g.duplicates[b].cosine) > tol;
            ++a;
            ++b;
        }
    }
    EXPECT_EQ(dup_errors, 0) << "cpu " << c.duplicates.size() << " pairs, cuda "
                             << g.duplicates.size();
    if (dup_errors == 0 && c.duplicates.size() == g.duplicates.size()) {
        EXPECT_EQ(g.duplicates_truncated, c.duplicates_truncated);
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaAllPairs, ::testing::ValuesIn(all_pairs_cases()),
                         [](const ::testing::TestParamInfo<AllPairsCase>& info) {
                             return info.param.name;
                         });

// ---------------------------------------------------------------------------------------------
// Errors and names

class CudaBackendBasics : public GpuTest {};

TEST_F(CudaBackendBasics, NameNamesTheDevice) {
    const std::string name = make_cuda_backend()->name();
    EXPECT_EQ(name.rfind("cuda (", 0), 0u) << name;
    EXPECT_NE(name.find("sm_"), std::string::npos) << name;
    EXPECT_NE(name.find("cuBLAS"), std::string::npos) << name;
}

TEST_F(CudaBackendBasics, TooManyNeighboursIsAResourceError) {
    TableSpec spec;
    spec.rows = 1100;
    spec.cols = 4;
    const Table t = make_table(spec, test::fresh_seed());
    MemoryRowSource source(t.view());
    AllPairsOptions o;
    o.k = 1100;
    EXPECT_THROW(make_cuda_backend()->all_pairs(source, finite_rows(t), o), ResourceError);
}

TEST_F(CudaBackendBasics, NonFiniteRowMarkedValidIsAResourceError) {
    TableSpec spec;
    spec.rows = 50;
    spec.cols = 8;
    spec.nonfinite = 1;
    const Table t = make_table(spec, test::fresh_seed());
    MemoryRowSource source(t.view());
    const std::vector<std::uint8_t> all(t.rows, 1);
    try {
        make_cuda_backend()->all_pairs(source, all, AllPairsOptions{});
        ADD_FAILURE() << "expected a ResourceError";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
    }
}

TEST_F(CudaBackendBasics, DeviceMemoryBudgetTooSmallNamesSizes) {
    TableSpec spec;
    spec.rows = 5000;
    spec.cols = 64;
    const Table t = make_table(spec, test::fresh_seed());
    MemoryRowSource source(t.view());
    AllPairsOptions o;
    o.memory_budget = 4096;
    try {
        make_cuda_backend()->all_pairs(source, finite_rows(t), o);
        ADD_FAILURE() << "expected a ResourceError";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("MiB"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--memory-budget"), std::string::npos) << e.what();
    }
}

// ---------------------------------------------------------------------------------------------
// Backend selection: runs on every machine, with or without CUDA or a GPU.

TEST(BackendSelectionAnyMachine, AutoPicksCudaOnlyWithADeviceElseCpuWithNotice) {
    EXPECT_EQ(cuda_built(), kCudaBuilt);
    std::string notice;
    const auto backend = make_backend(BackendKind::kAuto, 1, &notice);
    ASSERT_NE(backend, nullptr);
    if (cuda_device_count() > 0) {
        EXPECT_EQ(backend->name().rfind("cuda (", 0), 0u) << backend->name();
        EXPECT_TRUE(notice.empty()) << notice;
    } else {
        EXPECT_EQ(backend->name().rfind("cpu (", 0), 0u) << backend->name();
        EXPECT_NE(notice.find("CPU backend"), std::string::npos) << notice;
        EXPECT_NE(notice.find(kCudaBuilt ? "no usable CUDA device" : "built without CUDA"),
                  std::string::npos)
            << notice;
    }
}

TEST(BackendSelectionAnyMachine, CudaWithoutADeviceIsAResourceError) {
    if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
    EXPECT_THROW(make_cuda_backend(), ResourceError);
    EXPECT_THROW(make_backend(BackendKind::kCuda, 1), ResourceError);
}

}  // namespace
