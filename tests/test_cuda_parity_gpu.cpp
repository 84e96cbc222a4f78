// The CUDA backend against the CPU backend (the oracle), and the CUDA all-pairs engine against
// its own cosine matrix (every fold output must follow exactly from the matrix it hands to the
// sink), in every precision mode, on float32 tables and on tables whose values are exactly
// bfloat16 or float16 (as stored checkpoints are). Tests in GpuTest fixtures skip, with the
// reason, where no CUDA device is usable, and fail instead when EMBGEOM_REQUIRE_GPU is set. The
// BackendSelection tests run everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/cuda_arch_support.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/build_info.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/histogram_binning.hpp"
#include "engine/candidate_rescore.hpp"
#include "engine/fixed_point.hpp"
#include "engine/precision_policy.hpp"
#include "engine/row_normalize.hpp"
#include "io/half_float.hpp"
#include "support/float16_reference.hpp"
#include "support/gpu_test.hpp"
#include "support/identical_results.hpp"
#include "support/test_support.hpp"

namespace {

using namespace embgeom;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

using test::GpuTest;

bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// ---------------------------------------------------------------------------------------------
// 16-bit values

using test::bits;
using test::from_bits;
using test::round_bf16;
using test::round_fp16;

/// The device check's definitions (kernels/exact16_check.cu), over the valid rows.
engine::RawExactness host_exactness(const std::vector<float>& x, std::int64_t cols,
                                    const std::vector<std::uint8_t>& valid) {
    engine::RawExactness e{true, true};
    for (std::size_t r = 0; r < valid.size(); ++r) {
        if (!valid[r]) continue;
        for (std::int64_t c = 0; c < cols; ++c) {
            const float v = x[r * cols + c];
            const double a = std::fabs(static_cast<double>(v));
            e.bf16 = e.bf16 && round_bf16(v) == v &&
                     (a == 0.0 ||
                      (a >= engine::kRawBf16MinMagnitude && a <= engine::kRawBf16MaxMagnitude));
            e.fp16 = e.fp16 && round_fp16(v) == v;
        }
    }
    return e;
}

enum class Stored { kFloat32, kBf16, kFp16 };

/// A precision request on a table stored as float32 or rounded through a 16-bit type.
struct Variant {
    Precision request;
    Stored stored;
};

const char* label(Stored s) {
    return s == Stored::kBf16 ? "bf16table" : s == Stored::kFp16 ? "fp16table" : "f32table";
}

/// Every request on float32 tables; on 16-bit tables the requests that can take them raw (auto,
/// and the matching type, through auto) and the other 16-bit type (raw only if the values happen
/// to fit it, else the re-scored path).
constexpr Variant kVariants[] = {
    {Precision::kExact, Stored::kFloat32}, {Precision::kAuto, Stored::kFloat32},
    {Precision::kTf32, Stored::kFloat32},  {Precision::kBf16, Stored::kFloat32},
    {Precision::kFp16, Stored::kFloat32},  {Precision::kAuto, Stored::kBf16},
    {Precision::kFp16, Stored::kBf16},     {Precision::kAuto, Stored::kFp16},
    {Precision::kBf16, Stored::kFp16}};

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

/// t's finite values rounded through bfloat16 or float16, as a 16-bit checkpoint stores them.
void store_as(Table& t, Stored s) {
    if (s == Stored::kFloat32) return;
    for (float& v : t.x)
        if (std::isfinite(v)) v = s == Stored::kBf16 ? round_bf16(v) : round_fp16(v);
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
    // Two points at once (the centroid and a bias): one upload serves both.
    std::vector<double> bias(cols);
    for (std::int64_t c = 0; c < cols; ++c) bias[c] = 0.25 * static_cast<double>(c % 7) - 0.5;
    std::vector<float> cd(rows), gd(rows), cb(rows), gb(rows);
    cpu->distances_to_points(t.view(), {point.data(), bias.data()}, {cd.data(), cb.data()});
    gpu->distances_to_points(gview, {point.data(), bias.data()}, {gd.data(), gb.data()});
    for (std::int64_t r = 0; r < rows; ++r) {
        for (const auto& [c, g, what] : {std::tuple(cd[r], gd[r], "centroid"),
                                         std::tuple(cb[r], gb[r], "bias")}) {
            if (!std::isfinite(c)) {
                EXPECT_TRUE(same_float(c, g)) << "row " << r << ", " << what << ": " << c
                                              << " vs " << g;
            } else {
                EXPECT_NEAR(g, c, 1e-6 * std::max(1.0f, std::fabs(c)))
                    << "distance of row " << r << " to the " << what;
            }
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
void PrintTo(const Variant& v, std::ostream* os) {
    *os << to_string(v.request) << " on a " << label(v.stored);
}

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
        // Budget sized for the CUDA engine to stream 128-row blocks (~310 kB needed, ~500 kB
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
    // Candidate lists of the re-scored paths: K' = min(4K, 1024, valid - 1).
    {
        AllPairsCase& c = add("V30_d16_candidates_capped_by_valid_rows", 30, 16, 10);  // K' = 29
        c.table.nonfinite = 1;
    }
    add("V1100_d32_k300_candidates_at_kernel_limit", 1100, 32, 300);  // K' = 1024 >= 2K
    add("V1100_d32_k600_auto_keeps_exact", 1100, 32, 600);  // K' = 1024 < 2K: auto runs exact
    {
        // Offset rows (cosines near 0.9) around a 0.9 threshold: many duplicate candidates on
        // both sides of it, re-scored on the fast paths, and a truncated list.
        AllPairsCase& c = add("V1000_d64_duplicates_at_threshold", 1000, 64, 10);
        c.table.mean = 3.0f;
        c.dup_threshold = 0.9;
        c.max_dup_pairs = 2000;
        c.block_rows = 300;
    }
    return v;
}

using AllPairsParam = std::tuple<AllPairsCase, Variant>;

class CudaAllPairs : public GpuTest, public ::testing::WithParamInterface<AllPairsParam> {
  protected:
    void SetUp() override {
        GpuTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        const AllPairsCase& c = std::get<0>(GetParam());
        const Variant& v = std::get<1>(GetParam());
        table_ = make_table(c.table, test::fresh_seed());
        store_as(table_, v.stored);
        std::vector<double> sums;
        valid_ = finite_rows(table_, &sums);
        opt_.precision = v.request;
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

    /// Cosine tolerance of one float32 GEMM entry of unit vectors of length d. The raw 16-bit
    /// paths are held to it too: their products are exact and only the float32 sums round.
    double cos_tol() const { return 1e-6 + 2e-7 * std::sqrt(static_cast<double>(table_.cols)); }
    /// What the fast product may add to it (0 for exact and raw paths).
    double fast_tol(PrecisionPath p) const { return engine::fast_error_bound(p, table_.cols); }

    /// The paths the policy allows for this table: the one it picks when everything fits (cases
    /// without a memory budget fit the default 1 GiB), or, for a tight budget, any plan's.
    std::vector<PrecisionPath> expected_paths() const {
        if (table_.rows == 0) return {PrecisionPath::kExact};
        const std::int64_t n_valid = std::count(valid_.begin(), valid_.end(), std::uint8_t{1});
        const engine::RawExactness e =
            opt_.center ? engine::RawExactness{} : host_exactness(table_.x, table_.cols, valid_);
        const auto pick = [&](bool copy16, bool lists) {
            return engine::resolve_precision(opt_.precision, e, {copy16, lists}, opt_.k, n_valid);
        };
        if (opt_.memory_budget == 0) return {pick(true, true)};
        return {pick(true, true), pick(true, false), pick(false, true), pick(false, false)};
    }

    void expect_path(const AllPairsResult& r) const {
        const std::vector<PrecisionPath> want = expected_paths();
        std::string names;
        for (PrecisionPath p : want) names += std::string(" ") + to_string(p);
        EXPECT_NE(std::find(want.begin(), want.end(), r.precision), want.end())
            << "ran " << to_string(r.precision) << ", expected one of" << names;
    }

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
    expect_path(r);
    const PrecisionPath path = r.precision;
    const bool rescored = engine::is_rescored(path);
    // The phases (set-up, load, tiles, finish) account for the engine's time, no more.
    if (V > 0) {
        ASSERT_EQ(r.phase_seconds.size(), 4u);
        double phases = 0.0;
        for (const auto& [name, seconds] : r.phase_seconds) {
            EXPECT_GE(seconds, 0.0) << name;
            phases += seconds;
        }
        EXPECT_LE(phases, r.seconds);
    }

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
    // the normalised rows (checked on a sample of rows), within the path's error.
    const double matrix_tol = cos_tol() + fast_tol(path);
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
                far += std::fabs(v - ref) > matrix_tol;
            }
        }
    EXPECT_EQ(mask_errors, 0) << "cells with NaN on valid pairs or a value on invalid ones";
    EXPECT_EQ(asym, 0) << "cells with M[i][j] != M[j][i]";
    EXPECT_EQ(far, 0) << "cosines off the float64 reference by more than " << matrix_tol
                      << " (worst " << worst << ", path " << to_string(path) << ")";

    // Histogram, cos^2, duplicates and row sums recomputed from the matrix. On a re-scored path
    // the matrix picks duplicate candidates (down to the margin below the threshold) and the
    // re-score, bit for bit engine::rescore_dot of the normalised rows, decides.
    const float scale = 0.5f * static_cast<float>(opt_.hist_bins);
    const float dup_min = smallest_float_at_least(opt_.dup_threshold);
    const float scan_min =
        rescored ? smallest_float_at_least(opt_.dup_threshold - engine::duplicate_margin(path, d))
                 : dup_min;
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
            if (v >= scan_min) {
                const float exact = rescored ? engine::rescore_dot(&xn[i * d], &xn[j * d], d) : v;
                if (!(exact >= dup_min)) continue;
                ++dup_total;
                if (static_cast<std::int64_t>(dups.size()) < opt_.max_dup_pairs)
                    dups.push_back({i, j, exact});
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

    // Neighbour lists: the exact top-k of each matrix row under (cosine desc, index asc). On a
    // re-scored path: the top K' of the matrix row, re-scored, and the top k of those.
    const std::int64_t k = opt_.k;
    const std::int64_t width = rescored
                                   ? std::max(std::min(k, std::max<std::int64_t>(n_valid - 1, 0)),
                                              engine::candidate_count(k, n_valid))
                                   : k;
    std::int64_t list_errors = 0;
    std::vector<std::pair<float, std::int64_t>> cand;
    const auto by_rank = [](const auto& a, const auto& b) {
        return ranks_before(a.first, a.second, b.first, b.second);
    };
    for (std::int64_t i = 0; i < V; ++i) {
        cand.clear();
        if (valid_[i])
            for (std::int64_t j = 0; j < V; ++j)
                if (valid_[j] && j != i) cand.emplace_back(m.at(i, j), j);
        if (rescored) {
            const std::size_t kc = std::min<std::size_t>(width, cand.size());
            std::partial_sort(cand.begin(), cand.begin() + kc, cand.end(), by_rank);
            cand.resize(kc);
            for (auto& c : cand) c.first = engine::rescore_dot(&xn[i * d], &xn[c.second * d], d);
        }
        const std::size_t kept = std::min<std::size_t>(k, cand.size());
        std::partial_sort(cand.begin(), cand.begin() + kept, cand.end(), by_rank);
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
    // tol: two float32 cosines (CPU SGEMM; CUDA exact, raw or re-scored). fast: what the
    // matrix, histogram, cos^2 and row sums of a re-scored path may add to it.
    const double tol = 2 * cos_tol();
    const double fast = tol + fast_tol(g.precision);
    const bool rescored = engine::is_rescored(g.precision);
    EXPECT_EQ(c.precision, PrecisionPath::kExact);
    expect_path(g);

    EXPECT_EQ(g.rows, c.rows);
    EXPECT_EQ(g.k, c.k);
    EXPECT_EQ(g.valid_rows, c.valid_rows);
    // Same normalised bits on both sides (shared definition), so S and the row means are exact.
    EXPECT_EQ(g.normalized_sum, c.normalized_sum);
    for (std::int64_t i = 0; i < V; ++i)
        EXPECT_TRUE(same_float(g.row_mean[i], c.row_mean[i]))
            << "row_mean[" << i << "] " << g.row_mean[i] << " vs " << c.row_mean[i];

    // The matrices agree to GEMM rounding (and the fast product's error), NaN in the same places.
    std::int64_t mismatched = 0;
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t j = 0; j < V; ++j) {
            const float a = cm.at(i, j), b = gm.at(i, j);
            const bool ok = std::isnan(a) ? std::isnan(b) : std::fabs(a - b) <= fast;
            if (!ok && mismatched++ < 5)
                ADD_FAILURE() << "M[" << i << "][" << j << "]: cpu " << a << " cuda " << b;
        }
    ASSERT_EQ(mismatched, 0);

    // Histogram: the same total; a pair may change bins only if its cosine sits within the GEMM
    // tolerance (plus the fast product's error) of a bin edge.
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
            moved_far_from_edge += to_edge > fast;
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

    // cos^2: each term moves by at most 2 |cos| tol (+ fast^2), plus the fixed-point rounding.
    EXPECT_NEAR(g.pair_cos_sq_sum, c.pair_cos_sq_sum,
                2 * fast * cos_abs_sum + pairs * (fast * fast + std::ldexp(1.0, -24)) + 1e-12);

    // Row sums of the tiled pass.
    ASSERT_EQ(g.row_sum_tiled.size(), c.row_sum_tiled.size());
    for (std::int64_t i = 0; i < V; ++i) {
        if (std::isnan(c.row_sum_tiled[i])) {
            EXPECT_TRUE(std::isnan(g.row_sum_tiled[i])) << "row " << i;
        } else {
            EXPECT_NEAR(g.row_sum_tiled[i], c.row_sum_tiled[i], fast * V + 1e-9) << "row " << i;
        }
    }

    // Neighbours: the same number of filled slots, the same similarities to tolerance, and where
    // the indices differ the CUDA choice is a near-tie in the CPU's own matrix. A re-scored path
    // may also miss a neighbour that its fast product ranked below K' others, which needs those
    // within 2 x its error bound (a near-tie at that width): its slot then holds a real neighbour
    // (its re-scored cosine right, per the CPU's matrix) that is no better than the CPU's slot
    // and within that width below it.
    const double fast_tie = tol + 2 * fast_tol(g.precision);
    std::int64_t list_errors = 0, fast_ties = 0;
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
                if (!ok && rescored && std::fabs(cm.at(i, gi) - gs) <= tol && gs <= cs + tol &&
                    cs - gs <= fast_tie) {
                    ok = true;
                    ++fast_ties;
                }
            }
            if (!ok && list_errors++ < 5)
                ADD_FAILURE() << "row " << i << " slot " << s << ": cpu (" << ci << ", " << cs
                              << ") cuda (" << gi << ", " << gs << ")";
        }
    EXPECT_EQ(list_errors, 0);
    if (fast_ties > 0)
        std::cout << "[ info     ] " << fast_ties << " neighbour slots differ at near-ties of the "
                  << to_string(g.precision) << " product's width " << fast_tie << "\n";

    // Duplicates: pairs on one list only must sit within tolerance of the threshold, or beyond
    // the cut of a truncated list. Re-scored paths decide on float32 re-scores, so the same
    // tolerance holds for them.
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

INSTANTIATE_TEST_SUITE_P(Cases, CudaAllPairs,
                         ::testing::Combine(::testing::ValuesIn(all_pairs_cases()),
                                            ::testing::ValuesIn(kVariants)),
                         [](const ::testing::TestParamInfo<AllPairsParam>& info) {
                             const Variant& v = std::get<1>(info.param);
                             return std::get<0>(info.param).name + "_" + to_string(v.request) +
                                    "_" + label(v.stored);
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

// analyze prepares the backend on a thread while it reads the table, then uses it on its own
// thread: the results must be those of a backend made and used on one thread.
TEST_F(CudaBackendBasics, PreparedOnAnotherThreadGivesTheSameResults) {
    TableSpec spec;
    spec.rows = 777;
    spec.cols = 33;
    const Table t = make_table(spec, test::fresh_seed());
    const std::int64_t n = t.view().rows, d = t.view().cols;
    const auto norms_of = [&](Backend& b) {
        std::vector<float> norms(n);
        std::vector<std::uint8_t> finite(n);
        std::vector<double> sums(d, 0.0);
        b.row_norms_and_sums(t.view(), norms.data(), finite.data(), sums.data());
        return std::make_pair(norms, sums);
    };
    auto here = make_cuda_backend({0, 0});
    std::unique_ptr<Backend> there;
    std::thread([&] {
        there = make_cuda_backend({0, 0});
        there->prepare();
        there->prepare();  // idempotent
    }).join();
    EXPECT_EQ(norms_of(*there), norms_of(*here));
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

// The raw paths need every value exactly representable and, for bfloat16, within the range where
// products stay normal floats; one value outside it sends auto to the re-scored tf32 path.
TEST_F(CudaBackendBasics, RawPathsNeedEveryValueExactAndInRange) {
    TableSpec spec;
    spec.rows = 200;
    spec.cols = 16;
    Table t = make_table(spec, test::fresh_seed());
    store_as(t, Stored::kBf16);
    const std::vector<std::uint8_t> valid = finite_rows(t);
    auto gpu = make_cuda_backend();
    AllPairsOptions o;
    o.k = 5;
    const auto ran = [&](const Table& table) {
        MemoryRowSource source(table.view());
        return gpu->all_pairs(source, valid, o).precision;
    };
    ASSERT_TRUE(host_exactness(t.x, t.cols, valid).bf16);
    EXPECT_EQ(ran(t), PrecisionPath::kBf16Raw);
    for (const float odd : {0x1p-70f, -0x1p55f, round_bf16(1.0f) + 0x1p-10f}) {
        Table u = t;
        u.x[137 * u.cols + 5] = odd;
        const engine::RawExactness e = host_exactness(u.x, u.cols, valid);
        ASSERT_FALSE(e.bf16) << odd;
        EXPECT_EQ(ran(u), e.fp16 ? PrecisionPath::kFp16Raw : PrecisionPath::kTf32) << odd;
    }
    // Rows that are not valid are not checked: an odd value there changes nothing.
    std::vector<std::uint8_t> fewer = valid;
    fewer[137] = 0;
    Table u = t;
    u.x[137 * u.cols + 5] = 0x1p-70f;
    MemoryRowSource source(u.view());
    EXPECT_EQ(gpu->all_pairs(source, fewer, o).precision, PrecisionPath::kBf16Raw);
    // Centred rows are not the stored rows: no raw path.
    o.center = std::vector<double>(t.cols, 0.25);
    EXPECT_EQ(ran(t), PrecisionPath::kTf32);
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
    // The device budget wins over the host one; without it the host budget bounds the GPU too.
    for (const bool device_budget : {true, false}) {
        AllPairsOptions o;
        (device_budget ? o.device_memory_budget : o.memory_budget) = 4096;
        if (device_budget) o.memory_budget = 64ull << 30;
        try {
            make_cuda_backend()->all_pairs(source, finite_rows(t), o);
            ADD_FAILURE() << "expected a ResourceError";
        } catch (const ResourceError& e) {
            EXPECT_NE(std::string(e.what()).find("MiB"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("--device-memory-budget"), std::string::npos)
                << e.what();
        }
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

// A device this build has no code for (a T4, compute capability 7.5, under the default
// 80-real;90): auto runs on the CPU and says why, --backend cuda fails naming the device. A real
// GPU is checked to be one the build runs on; the emulated device is given the capability.
TEST(BackendSelectionAnyMachine, ADeviceTheBuildHasNoCodeForIsNotUsed) {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    EXPECT_EQ(cuda_devices_unusable_reason({}), "");
    // A real device: the check above is the test (its capability cannot be set).
    if (make_cuda_backend()->name().find("embgeom emulated device") == std::string::npos) return;
    if (cuda_archs_run_on(kCudaArchitectures, 7, 5))
        GTEST_SKIP() << "this build (" << kCudaArchitectures << ") runs on 7.5";
    struct Capability {
        explicit Capability(const char* cc) {
            setenv("EMBGEOM_EMULATED_COMPUTE_CAPABILITY", cc, 1);
        }
        ~Capability() { unsetenv("EMBGEOM_EMULATED_COMPUTE_CAPABILITY"); }
    } turing("7.5");

    std::string notice;
    const auto backend = make_backend(BackendKind::kAuto, 1, &notice);
    EXPECT_EQ(backend->name().rfind("cpu (", 0), 0u) << backend->name();
    for (const std::string& part :
         {std::string("CUDA device 0 (embgeom emulated device, compute capability 7.5)"),
          std::string(kCudaArchitectures), std::string("-DCMAKE_CUDA_ARCHITECTURES=75"),
          std::string(": running on the CPU backend")})
        EXPECT_NE(notice.find(part), std::string::npos) << part << " in: " << notice;
    try {
        make_backend(BackendKind::kCuda, 1);
        FAIL() << "--backend cuda ran on a device without code";
    } catch (const ResourceError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("--backend cuda: CUDA device 0 (", 0), 0u)
            << e.what();
    }
    EXPECT_NE(cuda_devices_unusable_reason({1, 0}).find("CUDA device 1 ("), std::string::npos);
    setenv("EMBGEOM_EMULATED_COMPUTE_CAPABILITY", "8.6", 1);  // sm_80 code runs on 8.6
    EXPECT_EQ(cuda_devices_unusable_reason({0, 1}), "");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Principal directions on both backends: the CUDA Gram accumulator (cuBLAS) and symmetric
// eigensolver (cuSOLVER) against the CPU backend's (BLAS/LAPACK), and principal_directions end
// to end. Both sides are float64 and differ only in summation order.

#include "geometry/principal_directions.hpp"

namespace {

using namespace embgeom;

double dot64(const double* a, const double* b, std::int64_t d) {
    double s = 0.0;
    for (std::int64_t j = 0; j < d; ++j) s += a[j] * b[j];
    return s;
}

/// N(offset + j % 5, (1 + j % 3)^2) elements with neighbouring columns correlated, in rows of
/// leading dimension ld (the padding is NaN); about one row in ten is invalid and holds a NaN.
struct GramTable {
    std::vector<float> x;
    std::vector<std::uint8_t> valid;
    std::int64_t rows = 0, cols = 0, ld = 0;
    MatrixView<const float> view() const {
        return MatrixView<const float>(x.data(), rows, cols, ld);
    }
};

GramTable gram_table(std::int64_t V, std::int64_t d, float offset, std::uint64_t seed) {
    GramTable t;
    t.rows = V;
    t.cols = d;
    t.ld = d + 3;
    t.x.assign(static_cast<std::size_t>(V * t.ld), kNaN);
    t.valid.assign(static_cast<std::size_t>(V), 1);
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    std::bernoulli_distribution drop(0.1);
    for (std::int64_t i = 0; i < V; ++i) {
        float prev = 0.0f;
        for (std::int64_t j = 0; j < d; ++j) {
            const float z = g(rng);
            t.x[i * t.ld + j] = offset + static_cast<float>(j % 5) +
                                static_cast<float>(1 + j % 3) * z + 0.5f * prev;
            prev = z;
        }
        if (drop(rng)) {
            t.valid[i] = 0;
            t.x[i * t.ld + (i % d)] = kNaN;
        }
    }
    return t;
}

GramSums accumulate(Backend& b, const GramTable& t, const std::vector<double>& shift,
                    std::int64_t block) {
    auto acc = b.gram_accumulator(t.cols, shift);
    for (std::int64_t first = 0; first < t.rows; first += block) {
        const std::int64_t count = std::min(block, t.rows - first);
        acc->add(t.view().slice_rows(first, count), t.valid.data() + first);
    }
    return acc->finish();
}

struct GramCase {
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t block = 0;  ///< rows per add(); V is not a multiple of it
    float offset = 0.0f;
};

void PrintTo(const GramCase& c, std::ostream* os) {
    *os << "V" << c.rows << "_d" << c.cols << "_block" << c.block;
}

class CudaGram : public GpuTest, public ::testing::WithParamInterface<GramCase> {};

TEST_P(CudaGram, MatchesCpuBackend) {
    const GramCase c = GetParam();
    const GramTable t = gram_table(c.rows, c.cols, c.offset, test::fresh_seed());
    const std::int64_t d = c.cols;
    // The shift: the float64 mean of the valid rows, so y = x - s is small beside the offset.
    std::vector<double> shift(static_cast<std::size_t>(d), 0.0);
    std::int64_t n_valid = 0;
    for (std::int64_t i = 0; i < t.rows; ++i) {
        if (!t.valid[i]) continue;
        ++n_valid;
        for (std::int64_t j = 0; j < d; ++j) shift[j] += t.view().row(i)[j];
    }
    for (double& s : shift) s /= static_cast<double>(std::max<std::int64_t>(n_valid, 1));

    auto cpu = make_cpu_backend(2);
    auto gpu = make_cuda_backend();
    const GramSums cg = accumulate(*cpu, t, shift, c.block);
    const GramSums gg = accumulate(*gpu, t, shift, c.block);
    const GramSums whole = accumulate(*gpu, t, shift, t.rows);  // one add(), split in pieces
    ASSERT_EQ(cg.n, n_valid);
    for (const GramSums* g : {&gg, &whole}) {
        EXPECT_EQ(g->dims, d);
        EXPECT_EQ(g->n, cg.n);
        ASSERT_EQ(g->gram.size(), cg.gram.size());
        // t: the same float64 additions in row order on both sides.
        for (std::int64_t j = 0; j < d; ++j)
            EXPECT_EQ(g->column_sums[j], cg.column_sums[j]) << "t[" << j << "]";
        // S: |dS_ab| against sum_i |y_ia y_ib| <= sqrt(S_aa S_bb) (Cauchy-Schwarz).
        double worst = 0.0;
        std::int64_t asym = 0;
        for (std::int64_t a = 0; a < d; ++a)
            for (std::int64_t b = 0; b < d; ++b) {
                const double scale = std::sqrt(cg.gram[a * d + a] * cg.gram[b * d + b]);
                worst = std::max(worst, std::fabs(g->gram[a * d + b] - cg.gram[a * d + b]) / scale);
                asym += g->gram[a * d + b] != g->gram[b * d + a];
            }
        EXPECT_LE(worst, 1e-12) << "largest relative difference of S";
        EXPECT_EQ(asym, 0) << "S must be symmetric, both triangles filled";
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaGram,
                         ::testing::Values(GramCase{1000, 1, 333, 1000.0f},
                                           GramCase{777, 3, 100, -500.0f},
                                           GramCase{2049, 257, 500, 1000.0f},
                                           GramCase{1500, 1024, 1000, 300.0f},
                                           // 40000 rows of d = 257 are two device pieces.
                                           GramCase{40000, 257, 40000, 50.0f}),
                         [](const ::testing::TestParamInfo<GramCase>& info) {
                             return "V" + std::to_string(info.param.rows) + "_d" +
                                    std::to_string(info.param.cols) + "_block" +
                                    std::to_string(info.param.block);
                         });

class CudaSymmetricEigen : public GpuTest, public ::testing::WithParamInterface<std::int64_t> {};

TEST_P(CudaSymmetricEigen, MatchesCpuBackend) {
    const std::int64_t d = GetParam();
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<double> g;
    auto cpu = make_cpu_backend(2);
    auto gpu = make_cuda_backend();
    // A Gaussian symmetric matrix (simple, well-separated eigenvalues almost surely) and
    // I + v v^T (eigenvalue 1 repeated d - 1 times: only values and residuals are defined).
    for (int kind = 0; kind < 2; ++kind) {
        SCOPED_TRACE(kind == 0 ? "gaussian" : "identity plus rank one");
        std::vector<double> A(static_cast<std::size_t>(d * d));
        std::vector<double> v(static_cast<std::size_t>(d));
        for (double& e : v) e = g(rng);
        for (std::int64_t i = 0; i < d; ++i)
            for (std::int64_t j = 0; j <= i; ++j)
                A[i * d + j] = A[j * d + i] =
                    kind == 0 ? g(rng) : (i == j ? 1.0 : 0.0) + v[i] * v[j];
        std::vector<double> cu = A, gu = A, cw, gw;
        cpu->symmetric_eigen(d, cu, cw);
        gpu->symmetric_eigen(d, gu, gw);
        ASSERT_EQ(gw.size(), static_cast<std::size_t>(d));
        ASSERT_EQ(gu.size(), static_cast<std::size_t>(d * d));
        EXPECT_TRUE(std::is_sorted(gw.begin(), gw.end()));
        const double lmax = std::max(std::fabs(cw.front()), std::fabs(cw.back()));
        double worst_value = 0.0, worst_residual = 0.0, worst_norm = 0.0;
        std::int64_t misaligned = 0;
        for (std::int64_t k = 0; k < d; ++k) {
            worst_value = std::max(worst_value, std::fabs(gw[k] - cw[k]) / lmax);
            const double* u = gu.data() + k * d;
            worst_norm = std::max(worst_norm, std::fabs(dot64(u, u, d) - 1.0));
            double r2 = 0.0;
            for (std::int64_t i = 0; i < d; ++i) {
                const double r = dot64(A.data() + i * d, u, d) - gw[k] * u[i];
                r2 += r * r;
            }
            worst_residual = std::max(worst_residual, std::sqrt(r2) / lmax);
            const double gap =
                std::min(k > 0 ? cw[k] - cw[k - 1] : lmax, k + 1 < d ? cw[k + 1] - cw[k] : lmax);
            if (gap > 1e-3 * lmax)
                misaligned += std::fabs(dot64(u, cu.data() + k * d, d)) <= 1.0 - 1e-8;
        }
        EXPECT_LE(worst_value, 1e-10) << "eigenvalues, relative to the largest";
        EXPECT_LE(worst_residual, 1e-10) << "||A v - l v|| relative to the largest eigenvalue";
        EXPECT_LE(worst_norm, 1e-10) << "unit eigenvectors";
        EXPECT_EQ(misaligned, 0) << "isolated eigenvectors with |<u_cpu, u_cuda>| <= 1 - 1e-8";
    }
}

INSTANTIATE_TEST_SUITE_P(Orders, CudaSymmetricEigen,
                         ::testing::Values<std::int64_t>(1, 2, 3, 64, 257, 1024),
                         [](const ::testing::TestParamInfo<std::int64_t>& info) {
                             return "d" + std::to_string(info.param);
                         });

class CudaPrincipalDirections : public GpuTest,
                                public ::testing::WithParamInterface<std::int64_t> {};

TEST_P(CudaPrincipalDirections, EndToEndMatchesCpuBackend) {
    const std::int64_t V = 3001, d = GetParam();
    const std::uint64_t seed = test::fresh_seed();
    GramTable t = gram_table(V, d, 40.0f, seed);
    // Three planted directions well above the bulk, so the leading eigenvectors are isolated.
    std::mt19937_64 rng(seed ^ 0x5151ULL);
    std::normal_distribution<double> g;
    for (std::int64_t k = 0; k < std::min<std::int64_t>(3, d); ++k) {
        std::vector<double> u(static_cast<std::size_t>(d));
        for (double& e : u) e = g(rng);
        const double norm = std::sqrt(dot64(u.data(), u.data(), d));
        for (std::int64_t i = 0; i < V; ++i) {
            const double a = (8.0 - 2.0 * k) * g(rng) / norm;
            for (std::int64_t j = 0; j < d; ++j) t.x[i * t.ld + j] += static_cast<float>(a * u[j]);
        }
    }
    std::vector<float> dense(static_cast<std::size_t>(V * d));
    for (std::int64_t i = 0; i < V; ++i)
        std::copy_n(t.x.begin() + i * t.ld, d, dense.begin() + i * d);
    MemoryRowSource src(MatrixView<const float>(dense.data(), V, d), "principal parity table");

    auto cpu = make_cpu_backend(2);
    auto gpu = make_cuda_backend();
    for (std::int64_t block : {std::int64_t{0}, std::int64_t{777}}) {
        for (bool shifted : {false, true}) {
            SCOPED_TRACE("block_rows " + std::to_string(block) + (shifted ? " shifted" : ""));
            CovarianceOptions opt;
            opt.block_rows = block;
            if (shifted) opt.shift = std::vector<double>(static_cast<std::size_t>(d), 41.0);
            const PrincipalDirections c = principal_directions(*cpu, src, t.valid, opt);
            const PrincipalDirections p = principal_directions(*gpu, src, t.valid, opt);
            EXPECT_EQ(p.n, c.n);
            EXPECT_EQ(p.mean, c.mean) << "mean = s + t/n with t in row order on both";
            const double lmax = c.eigenvalues.front();
            double worst = 0.0;
            std::int64_t misaligned = 0;
            for (std::int64_t k = 0; k < d; ++k) {
                worst = std::max(worst, std::fabs(p.eigenvalues[k] - c.eigenvalues[k]) / lmax);
                const double gap =
                    std::min(k > 0 ? c.eigenvalues[k - 1] - c.eigenvalues[k] : lmax,
                             k + 1 < d ? c.eigenvalues[k] - c.eigenvalues[k + 1] : lmax);
                if (gap > 1e-3 * lmax)
                    misaligned += std::fabs(dot64(p.eigenvectors.data() + k * d,
                                                  c.eigenvectors.data() + k * d, d)) <= 1.0 - 1e-8;
            }
            EXPECT_LE(worst, 1e-10) << "eigenvalues, relative to the largest";
            EXPECT_EQ(misaligned, 0);
            EXPECT_NEAR(p.total_variance, c.total_variance, 1e-10 * c.total_variance);
            EXPECT_NEAR(p.effective_rank, c.effective_rank, 1e-9 * c.effective_rank);
            EXPECT_NEAR(p.participation_ratio, c.participation_ratio, 1e-9 * c.participation_ratio);
            EXPECT_EQ(p.above_mp_edge_margin, c.above_mp_edge_margin);
        }
    }
    // The same input errors as the CPU: a valid row with a NaN, and no valid row.
    EXPECT_THROW(principal_directions(*gpu, src, std::vector<std::uint8_t>(V, 1)), InputError);
    EXPECT_THROW(principal_directions(*gpu, src, std::vector<std::uint8_t>(V, 0)), InputError);
}

INSTANTIATE_TEST_SUITE_P(Dims, CudaPrincipalDirections,
                         ::testing::Values<std::int64_t>(1, 3, 64, 300),
                         [](const ::testing::TestParamInfo<std::int64_t>& info) {
                             return "d" + std::to_string(info.param);
                         });

TEST_F(CudaBackendBasics, GramMatrixTooLargeForTheDeviceNamesSizes) {
    const std::int64_t d = 200000;  // S alone would be 320 GB
    try {
        make_cuda_backend()->gram_accumulator(d, std::vector<double>(d, 0.0));
        ADD_FAILURE() << "expected a ResourceError";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("200000 x 200000"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("MiB"), std::string::npos) << e.what();
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CSLS lists and random-direction extremeness on the backend (Backend::csls_neighbors,
// Backend::extremeness): the CUDA backend against the CPU backend. Both rank float32 GEMM
// results, which differ by summation order, so values agree to the GEMM error bound and indices
// agree except at near-ties; where GEMM rounding plays no part (d = 1, zero radii against the
// engine's own cosines, exact copies of rows) the answers must be identical.

#include <numeric>
#include <unordered_map>

#include "geometry/csls.hpp"
#include "geometry/extremeness.hpp"

namespace {

using namespace embgeom;

/// Per-side bound on a float32 CSLS score's distance from the float64 score of the same float32
/// normalised rows and radii (derived in tests/test_geometry_csls.cpp): 2 gamma_(d+2) + 6 u.
double csls_error(std::int64_t d) {
    const double u = std::ldexp(1.0, -24), du = static_cast<double>(d + 2) * u;
    return 2.0 * du / (1.0 - du) + 6.0 * u;
}

struct CslsCase {
    std::string name;
    TableSpec table;
    std::int64_t k = 10;
    std::int64_t block_rows = 0;
    std::uint64_t memory_budget = 0;
    bool streamed = false;  ///< the budget leaves the device plan streaming row blocks
};

void PrintTo(const CslsCase& c, std::ostream* os) { *os << c.name; }

std::vector<CslsCase> csls_cases() {
    std::vector<CslsCase> v;
    const auto add = [&](const char* name, std::int64_t rows, std::int64_t cols,
                         std::int64_t k) -> CslsCase& {
        v.emplace_back();
        CslsCase& c = v.back();
        c.name = name;
        c.table.rows = rows;
        c.table.cols = cols;
        c.k = k;
        return c;
    };
    add("one_row", 1, 3, 4);
    {
        // d = 1: every cosine is exactly -1, 0 or 1 on both backends, so the lists are equal.
        CslsCase& c = add("V37_d1_exact_cosines", 37, 1, 5);
        c.table.nonfinite = 2;
    }
    {
        CslsCase& c = add("V37_d3_k_above_valid_rows", 37, 3, 50);
        c.table.nonfinite = 3;
        c.table.zero_row = true;
    }
    {
        CslsCase& c = add("V301_d64_tiles_of_100", 301, 64, 10);
        c.block_rows = 100;
        c.table.nonfinite = 2;
        c.table.near_dups = 4;
    }
    {
        // Device plan (k = 10, tiles of 256): streamed 2.35 MiB, resident 4.2 MiB.
        CslsCase& c = add("V1000_d1000_streamed", 1000, 1000, 10);
        c.memory_budget = 3u << 20;
        c.streamed = true;
        c.table.nonfinite = 3;
    }
    {
        // Device plan (k = 7, tiles of 256): streamed ~0.49 MB, resident ~0.59 MB.
        CslsCase& c = add("V2049_d16_offset_streamed", 2049, 16, 7);
        c.memory_budget = 540000;
        c.streamed = true;
        c.table.mean = 2.0f;
        c.table.nonfinite = 5;
    }
    return v;
}

class CudaCsls : public GpuTest, public ::testing::WithParamInterface<CslsCase> {};

TEST_P(CudaCsls, MatchesCpuBackend) {
    const CslsCase& cc = GetParam();
    const Table t = make_table(cc.table, test::fresh_seed());
    const std::vector<std::uint8_t> valid = finite_rows(t);
    MemoryRowSource src(t.view(), "csls parity table");
    const std::int64_t V = t.rows, d = t.cols, k = cc.k;
    auto cpu = make_cpu_backend(2);
    auto gpu = make_cuda_backend();
    AllPairsOptions first;
    first.k = k;
    const std::vector<float> radius =
        csls_radius(cpu->all_pairs(src, valid, first).neighbor_sim, k);

    AllPairsOptions opt;
    opt.block_rows = cc.block_rows;
    opt.memory_budget = cc.memory_budget;
    const CslsNeighbors c = cpu->csls_neighbors(src, valid, radius, k, opt);
    const CslsNeighbors g = gpu->csls_neighbors(src, valid, radius, k, opt);
    ASSERT_EQ(g.rows, V);
    ASSERT_EQ(g.k, k);
    ASSERT_EQ(g.index.size(), static_cast<std::size_t>(V * k));
    ASSERT_EQ(g.score.size(), static_cast<std::size_t>(V * k));
    EXPECT_EQ(g.valid_rows, c.valid_rows);
    EXPECT_EQ(g.resident, !cc.streamed);

    // Float64 scores of the float32 normalised rows both backends share (engine::normalize_row).
    std::vector<float> xn(static_cast<std::size_t>(V * d), 0.0f);
    for (std::int64_t i = 0; i < V; ++i)
        if (valid[i]) engine::normalize_row(t.view().row(i), nullptr, d, &xn[i * d]);
    const auto ref = [&](std::int64_t i, std::int64_t j) {
        double dot = 0.0;
        for (std::int64_t q = 0; q < d; ++q)
            dot += static_cast<double>(xn[i * d + q]) * xn[j * d + q];
        return 2.0 * dot - static_cast<double>(radius[i]) - static_cast<double>(radius[j]);
    };

    // Each CUDA slot holds a valid other row with its own pair's score (to the bound), in
    // (score desc, index asc) order; the same score as the CPU's slot to two bounds; a different
    // index only where the CUDA choice is a near-tie of the CPU's (its reference within three).
    const double e = csls_error(d);
    std::int64_t errors = 0, ties = 0;
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t s = 0; s < k; ++s) {
            const std::int64_t ci = c.index[i * k + s], gi = g.index[i * k + s];
            const float cs = c.score[i * k + s], gs = g.score[i * k + s];
            bool ok;
            if (ci < 0 || gi < 0) {
                ok = ci == gi && std::isnan(cs) && std::isnan(gs);
            } else {
                ok = gi < V && gi != i && valid[gi] && std::fabs(gs - ref(i, gi)) <= e &&
                     std::fabs(cs - gs) <= 2 * e &&
                     (ci == gi || std::fabs(ref(i, gi) - cs) <= 3 * e);
                if (ok && s > 0) {
                    const float ps = g.score[i * k + s - 1];
                    ok = ps > gs || (ps == gs && g.index[i * k + s - 1] < gi);
                }
                ties += ok && ci != gi;
            }
            if (!ok && errors++ < 5)
                ADD_FAILURE() << "row " << i << " slot " << s << ": cpu (" << ci << ", " << cs
                              << ") cuda (" << gi << ", " << gs << ")";
        }
    EXPECT_EQ(errors, 0);
    if (d == 1) {
        EXPECT_EQ(g.index, c.index) << "d = 1: exact cosines, the same lists";
    }
    if (ties > 0)
        std::cout << "[ info     ] " << ties << " CSLS slots differ at near-ties (bound " << 3 * e
                  << ")\n";

    // Every option but block_rows and memory_budget is ignored: the same bits.
    AllPairsOptions extras = opt;
    extras.precision = Precision::kTf32;
    extras.center = std::vector<double>(static_cast<std::size_t>(d), 0.5);
    extras.hist_bins = 3;
    extras.accumulate_row_sums = true;
    extras.max_dup_pairs = 5;
    const CslsNeighbors g2 = gpu->csls_neighbors(src, valid, radius, k, extras);
    EXPECT_EQ(g2.index, g.index);
    for (std::size_t q = 0; q < g.score.size(); ++q)
        ASSERT_TRUE(same_float(g2.score[q], g.score[q])) << "slot " << q;

    // Zero radii: the scores are 2 cos exactly, so the lists are the exact engine's own cosine
    // lists (same plan, same SGEMM tiles) with every similarity doubled, bit for bit.
    if (cc.memory_budget == 0) {
        AllPairsOptions cos_opt = opt;
        cos_opt.k = k;
        cos_opt.precision = Precision::kExact;
        const AllPairsResult cg = gpu->all_pairs(src, valid, cos_opt);
        const CslsNeighbors z = gpu->csls_neighbors(
            src, valid, std::vector<float>(static_cast<std::size_t>(V), 0.0f), k, opt);
        EXPECT_EQ(z.index, cg.neighbor_index);
        for (std::size_t q = 0; q < z.score.size(); ++q)
            ASSERT_TRUE(same_float(z.score[q], 2.0f * cg.neighbor_sim[q])) << "slot " << q;
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaCsls, ::testing::ValuesIn(csls_cases()),
                         [](const ::testing::TestParamInfo<CslsCase>& info) {
                             return info.param.name;
                         });

struct ExtremenessCase {
    std::string name;
    std::int64_t V = 0, d = 0, M = 0;
    bool centred = false;
    float mean = 0.0f;            ///< N(mean, 1) elements
    int nonfinite = 0;            ///< rows given a NaN (invalid)
    int copies = 0;               ///< rows 0..copies-1 pushed outward, copied to V-1-i
    std::int64_t block_rows = 0;  ///< read size
};

void PrintTo(const ExtremenessCase& c, std::ostream* os) { *os << c.name; }

std::vector<ExtremenessCase> extremeness_cases() {
    std::vector<ExtremenessCase> v;
    const auto add = [&](const char* name, std::int64_t V, std::int64_t d,
                         std::int64_t M) -> ExtremenessCase& {
        v.emplace_back();
        ExtremenessCase& c = v.back();
        c.name = name;
        c.V = V;
        c.d = d;
        c.M = M;
        return c;
    };
    add("one_row", 1, 3, 50);
    {
        // d = 1: the directions are +-1 and every projection is exact: identical winners.
        ExtremenessCase& c = add("V1537_d1_exact_projections", 1537, 1, 100);
        c.nonfinite = 3;
        c.copies = 2;
    }
    {
        ExtremenessCase& c = add("V1537_d3_M10000_two_direction_tiles", 1537, 3, 10000);
        c.centred = true;
        c.copies = 5;
        c.nonfinite = 2;
        c.block_rows = 100;
    }
    {
        ExtremenessCase& c = add("V2000_d64_offset_centred_copies", 2000, 64, 3000);
        c.centred = true;
        c.mean = 20.0f;
        c.copies = 10;
        c.nonfinite = 4;
        c.block_rows = 333;
    }
    {
        ExtremenessCase& c = add("V1001_d1000_centred", 1001, 1000, 700);
        c.centred = true;
        c.copies = 6;
        c.nonfinite = 2;
    }
    return v;
}

class CudaExtremeness : public GpuTest, public ::testing::WithParamInterface<ExtremenessCase> {};

TEST_P(CudaExtremeness, MatchesCpuBackend) {
    const ExtremenessCase& ec = GetParam();
    const std::uint64_t seed = test::fresh_seed();
    const std::int64_t V = ec.V, d = ec.d, M = ec.M;
    Table t{test::random_table(V, d, seed, ec.mean), V, d};
    // Rows pushed out to radius 5 sqrt(d) around the mean (the others lie near sqrt(d)).
    for (std::int64_t i = 0; i < ec.copies; ++i) {
        double n2 = 0.0;
        for (std::int64_t q = 0; q < d; ++q) n2 += std::pow(t.x[i * d + q] - ec.mean, 2);
        const double scale = 5.0 * std::sqrt(static_cast<double>(d) / std::max(n2, 1e-12));
        for (std::int64_t q = 0; q < d; ++q) {
            float& x = t.x[i * d + q];
            x = static_cast<float>(ec.mean + scale * (x - ec.mean));
        }
        std::copy_n(t.x.begin() + i * d, d, t.x.begin() + (V - 1 - i) * d);
    }
    std::mt19937_64 rng(seed ^ 0xe77e11ull);
    for (int q = 0; q < ec.nonfinite && V > 2 * ec.copies; ++q) {
        const std::int64_t i = ec.copies + static_cast<std::int64_t>(rng() % (V - 2 * ec.copies));
        t.x[i * d + static_cast<std::int64_t>(rng() % d)] = kNaN;
    }
    std::vector<double> sums;
    const std::vector<std::uint8_t> valid = finite_rows(t, &sums);
    const std::int64_t n_valid = std::count(valid.begin(), valid.end(), std::uint8_t{1});
    MemoryRowSource src(t.view(), "extremeness parity table");

    ExtremenessOptions eo;
    eo.directions = M;
    eo.seed = seed;
    eo.stream.block_rows = ec.block_rows;
    if (ec.centred) {
        eo.center = sums;
        for (double& c : *eo.center) c /= static_cast<double>(n_valid);
    }
    auto cpu = make_cpu_backend(2);
    auto gpu = make_cuda_backend();
    const Extremeness c = cpu->extremeness(src, valid, eo);
    const Extremeness g = gpu->extremeness(src, valid, eo);
    ASSERT_EQ(g.counts.size(), static_cast<std::size_t>(V));
    ASSERT_EQ(g.argmax.size(), static_cast<std::size_t>(M));
    ASSERT_EQ(g.argmin.size(), static_cast<std::size_t>(M));

    // Counts follow from the winners and add up to 2M; winners are valid rows.
    std::vector<std::int32_t> recount(static_cast<std::size_t>(V), 0);
    for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t w : {g.argmax[m], g.argmin[m]}) {
            ASSERT_TRUE(w >= 0 && w < V && valid[w]) << "direction " << m << " winner " << w;
            ++recount[w];
        }
    EXPECT_EQ(recount, g.counts);
    EXPECT_EQ(std::accumulate(g.counts.begin(), g.counts.end(), std::int64_t{0}), 2 * M);

    // The float32 rows both backends project (centred in float64, rounded to float32) and the
    // directions both use; each float32 projection is within gamma_(d+2) ||y|| ||u|| of its
    // float64 value, so two winners of one direction lie within 2 of those of the maximum.
    std::vector<float> y(static_cast<std::size_t>(V * d), 0.0f);
    double ymax = 0.0;
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid[i]) continue;
        double n2 = 0.0;
        for (std::int64_t q = 0; q < d; ++q) {
            const float x = t.x[i * d + q];
            y[i * d + q] =
                eo.center ? static_cast<float>(static_cast<double>(x) - (*eo.center)[q]) : x;
            n2 += static_cast<double>(y[i * d + q]) * y[i * d + q];
        }
        ymax = std::max(ymax, std::sqrt(n2));
    }
    const std::vector<float> dirs = random_unit_directions(M, d, seed);
    const double u = std::ldexp(1.0, -24), du = static_cast<double>(d + 2) * u;
    const double e = du / (1.0 - du) * ymax * 1.001;
    std::vector<double> s(static_cast<std::size_t>(V));
    std::int64_t far = 0, ties = 0;
    const auto check = [&](std::int64_t m, std::int64_t ci, std::int64_t gi, bool largest) {
        if (ci == gi) return;
        ++ties;
        double best = largest ? -1e300 : 1e300;
        for (std::int64_t i = 0; i < V; ++i) {
            if (!valid[i]) continue;
            double p = 0.0;
            for (std::int64_t q = 0; q < d; ++q)
                p += static_cast<double>(dirs[m * d + q]) * y[i * d + q];
            s[i] = p;
            best = largest ? std::max(best, p) : std::min(best, p);
        }
        const double gap_g = largest ? best - s[gi] : s[gi] - best;
        const double gap_c = largest ? best - s[ci] : s[ci] - best;
        if (gap_g <= 2 * e && gap_c <= 2 * e) return;
        if (far++ < 5)
            ADD_FAILURE() << "direction " << m << (largest ? " max" : " min") << ": cpu " << ci
                          << " (" << gap_c << " from the extreme) cuda " << gi << " (" << gap_g
                          << "), bound " << 2 * e;
    };
    for (std::int64_t m = 0; m < M; ++m) {
        check(m, c.argmax[m], g.argmax[m], true);
        check(m, c.argmin[m], g.argmin[m], false);
    }
    EXPECT_EQ(far, 0) << "winners that differ away from a near-tie";
    if (d == 1) {
        EXPECT_EQ(g.argmax, c.argmax) << "d = 1: exact projections, the same winners";
        EXPECT_EQ(g.argmin, c.argmin);
        EXPECT_EQ(g.counts, c.counts);
    }
    if (ties > 0)
        std::cout << "[ info     ] " << ties << " of " << 2 * M
                  << " winners differ at near-ties (bound " << 2 * e << ")\n";

    // A row never wins over a lower-index row with the same bits, and the planted copies (of
    // rows pushed outward, which win often) never win at all.
    std::unordered_map<std::string, std::int64_t> lowest_copy;
    const auto bytes = [&](std::int64_t i) {
        return std::string(reinterpret_cast<const char*>(&t.x[i * d]), sizeof(float) * d);
    };
    for (std::int64_t i = 0; i < V; ++i)
        if (valid[i]) lowest_copy.emplace(bytes(i), i);
    std::int64_t beaten_twins = 0;
    for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t w : {g.argmax[m], g.argmin[m]})
            beaten_twins += lowest_copy[bytes(w)] != w;
    EXPECT_EQ(beaten_twins, 0) << "winners with a bit-identical lower-index twin";
    std::int64_t at_originals = 0;
    for (std::int64_t i = 0; i < ec.copies; ++i) {
        EXPECT_EQ(g.counts[V - 1 - i], 0) << "copy " << V - 1 - i << " of " << i;
        at_originals += g.counts[i];
    }
    if (ec.copies > 0) {
        EXPECT_GT(at_originals, 0) << "the copied rows are among the extreme ones";
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaExtremeness, ::testing::ValuesIn(extremeness_cases()),
                         [](const ::testing::TestParamInfo<ExtremenessCase>& info) {
                             return info.param.name;
                         });

TEST_F(CudaBackendBasics, CslsAndExtremenessCheckTheCpusContracts) {
    TableSpec spec;
    spec.rows = 40;
    spec.cols = 6;
    Table t = make_table(spec, test::fresh_seed());
    MemoryRowSource src(t.view(), "contract table");
    const std::vector<std::uint8_t> valid(40, 1);
    const std::vector<float> radius(40, 0.125f);
    auto gpu = make_cuda_backend();
    const AllPairsOptions o;
    EXPECT_EQ(gpu->csls_neighbors(src, {}, radius, 5, o).index,
              gpu->csls_neighbors(src, valid, radius, 5, o).index)
        << "an empty mask means every row";
    EXPECT_THROW(gpu->csls_neighbors(src, valid, radius, 0, o), ResourceError);
    EXPECT_THROW(gpu->csls_neighbors(src, valid, std::vector<float>(39, 0.0f), 5, o),
                 ResourceError);
    EXPECT_THROW(gpu->csls_neighbors(src, std::vector<std::uint8_t>(39, 1), radius, 5, o),
                 ResourceError);
    std::vector<float> bad_radius = radius;
    bad_radius[7] = kNaN;
    EXPECT_THROW(gpu->csls_neighbors(src, valid, bad_radius, 5, o), ResourceError);

    ExtremenessOptions eo;
    eo.directions = 64;
    eo.seed = 3;
    const Extremeness all = gpu->extremeness(src, {}, eo);
    EXPECT_EQ(all.argmax, gpu->extremeness(src, valid, eo).argmax) << "empty mask";
    EXPECT_EQ(gpu->extremeness(src, std::vector<std::uint8_t>(40, 0), eo).argmax,
              std::vector<std::int64_t>(64, -1))
        << "no valid row: no winners";
    EXPECT_THROW(gpu->extremeness(src, std::vector<std::uint8_t>(39, 1), eo), ResourceError);
    eo.directions = 0;
    EXPECT_THROW(gpu->extremeness(src, valid, eo), UsageError);

    t.x[11 * 6] = std::numeric_limits<float>::infinity();  // marked valid, not finite
    EXPECT_THROW(gpu->csls_neighbors(src, valid, radius, 5, o), ResourceError);
}

TEST_F(CudaBackendBasics, ExtremenessDirectionsTooLargeForTheDeviceNamesSizes) {
    TableSpec spec;
    spec.rows = 10;
    spec.cols = 64;
    const Table t = make_table(spec, test::fresh_seed());
    MemoryRowSource src(t.view());
    ExtremenessOptions eo;
    // 256 GiB of directions: the device plan is checked before any is generated on the host.
    eo.directions = (std::int64_t{1} << 30) - 1;
    try {
        make_cuda_backend()->extremeness(src, finite_rows(t), eo);
        ADD_FAILURE() << "expected a ResourceError";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("MiB"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--simplex-directions"), std::string::npos)
            << e.what();
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Several all-pairs engines (--devices): the tile pairs are dealt between engines, and the merged
// result must be the one-device result bit for bit. "0,0" and "0,0,0" run two or three engines
// on device 0, so one GPU tests the whole multi-device path; "0,1" runs where two GPUs exist.

namespace {

using namespace embgeom;

struct MultiCase {
    std::string name;
    TableSpec table;
    std::int64_t k = 10;
    std::int64_t block_rows = 0;
    std::uint64_t device_memory_budget = 0;
    double dup_threshold = 0.999;
    std::int64_t max_dup_pairs = 1000000;
    Stored stored = Stored::kFloat32;
    Precision precision = Precision::kExact;
    bool center = false;
};

std::vector<MultiCase> multi_cases() {
    std::vector<MultiCase> v;
    const auto add = [&](const char* name, std::int64_t rows, std::int64_t cols) -> MultiCase& {
        v.emplace_back();
        v.back().name = name;
        v.back().table.rows = rows;
        v.back().table.cols = cols;
        return v.back();
    };
    // V not a multiple of the tile, many tile pairs (8 blocks: 36 pairs), awkward rows.
    MultiCase& many = add("many tile pairs", 1000, 33);
    many.block_rows = 128;
    many.table.nonfinite = 3;
    many.table.zero_row = true;
    many.table.near_dups = 12;
    many.dup_threshold = 0.9999;
    // Duplicates over the cap: large cosines everywhere, the list is cut and flagged.
    MultiCase& dups = add("duplicates over the cap", 300, 16);
    dups.block_rows = 40;
    dups.table.mean = 4.0f;
    dups.dup_threshold = 0.8;
    dups.max_dup_pairs = 37;
    // k above the valid rows: -1/NaN padding survives the merge.
    MultiCase& pad = add("k above valid rows", 40, 7);
    pad.block_rows = 16;
    pad.table.nonfinite = 5;
    pad.k = 50;
    // More engines than tile pairs: one tile pair (and three: 2 blocks).
    add("one tile pair", 90, 20).block_rows = 256;
    add("three tile pairs", 300, 20).block_rows = 256;
    // A centred table.
    MultiCase& centred = add("centred", 500, 24);
    centred.block_rows = 64;
    centred.center = true;
    // Raw 16-bit products, resident and streamed (a budget below the resident plan).
    MultiCase& raw = add("bf16 table, auto", 700, 64);
    raw.block_rows = 96;
    raw.stored = Stored::kBf16;
    raw.precision = Precision::kAuto;
    MultiCase& streamed = add("fp16 table, auto, streamed", 1000, 64);
    streamed.block_rows = 64;
    streamed.stored = Stored::kFp16;
    streamed.precision = Precision::kAuto;
    streamed.max_dup_pairs = 20;
    streamed.device_memory_budget = 300000;
    MultiCase& exact_streamed = add("exact, streamed", 1000, 64);
    exact_streamed.block_rows = 64;
    exact_streamed.max_dup_pairs = 20;
    exact_streamed.device_memory_budget = 300000;
    return v;
}

std::vector<std::vector<int>> device_lists() {
    std::vector<std::vector<int>> lists{{0, 0}, {0, 0, 0}};
    if (cuda_device_count() >= 2) {
        lists.push_back({0, 1});
        lists.push_back({1, 0, 1});
    }
    return lists;
}

std::string list_name(const std::vector<int>& devices) {
    std::string s;
    for (const int d : devices) s += (s.empty() ? "" : ",") + std::to_string(d);
    return s;
}

struct MultiRun {
    AllPairsResult result;
    std::unique_ptr<RecordingSink> sink;
    std::int64_t last_done = -1, last_total = -1;
    bool progress_off_thread = false;
};

MultiRun run_on(const std::vector<int>& devices, const Table& t,
                const std::vector<std::uint8_t>& valid, const AllPairsOptions& base) {
    MultiRun r;
    r.sink = std::make_unique<RecordingSink>(t.rows);
    const auto caller = std::this_thread::get_id();
    AllPairsOptions o = base;
    o.matrix = r.sink.get();
    o.progress = [&r, caller](std::int64_t done, std::int64_t total) {
        if (std::this_thread::get_id() != caller) r.progress_off_thread = true;
        r.last_done = done;
        r.last_total = total;
    };
    MemoryRowSource source(t.view(), "multi-device table");
    r.result = make_cuda_backend(devices)->all_pairs(source, valid, o);
    return r;
}

void expect_identical(const MultiRun& one, const MultiRun& many, std::int64_t rows,
                      const std::string& what) {
    const AllPairsResult& a = one.result;
    const AllPairsResult& b = many.result;
    SCOPED_TRACE(what);
    test::expect_identical_results(a, b);
    EXPECT_EQ(many.sink->bad_tiles(), 0);
    EXPECT_EQ(many.sink->cells_not_written_once(), 0);
    std::int64_t cell_diffs = 0;
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < rows; ++j)
            cell_diffs += !same_float(one.sink->at(i, j), many.sink->at(i, j));
    EXPECT_EQ(cell_diffs, 0);
    EXPECT_FALSE(many.progress_off_thread);
    if (rows > 0) {
        EXPECT_EQ(many.last_done, many.last_total);
        EXPECT_EQ(many.last_total, one.last_total);
    }
}

class CudaMultiDevice : public GpuTest {};

TEST_F(CudaMultiDevice, SharedTilePairsGiveTheOneDeviceResultBitForBit) {
    for (const MultiCase& c : multi_cases()) {
        Table t = make_table(c.table, test::fresh_seed());
        store_as(t, c.stored);
        std::vector<double> sums;
        const std::vector<std::uint8_t> valid = finite_rows(t, &sums);
        AllPairsOptions o;
        o.k = c.k;
        o.block_rows = c.block_rows;
        o.device_memory_budget = c.device_memory_budget;
        o.dup_threshold = c.dup_threshold;
        o.max_dup_pairs = c.max_dup_pairs;
        o.precision = c.precision;
        o.accumulate_row_sums = true;
        if (c.center) {
            const auto n = std::count(valid.begin(), valid.end(), std::uint8_t{1});
            std::vector<double> mu(t.cols, 0.0);
            for (std::int64_t j = 0; j < t.cols; ++j) mu[j] = n ? sums[j] / n : 0.0;
            o.center = mu;
        }
        const MultiRun one = run_on({0}, t, valid, o);
        if (c.stored != Stored::kFloat32) {
            EXPECT_TRUE(engine::is_raw16(one.result.precision))
                << c.name << ": " << to_string(one.result.precision);
        }
        if (c.name == "duplicates over the cap") {
            EXPECT_TRUE(one.result.duplicates_truncated) << "the case must cut the list";
        }
        for (const std::vector<int>& devices : device_lists())
            expect_identical(one, run_on(devices, t, valid, o), t.rows,
                             c.name + " on devices " + list_name(devices));
    }
}

// Each engine keeps its K' candidates by the fast product; the best K' of their union are the
// one engine's, re-scored once on the first device: the same lists, duplicates and sums.
TEST_F(CudaMultiDevice, ReScoredRequestsGiveTheOneDeviceResultBitForBit) {
    TableSpec spec;
    spec.rows = 400;
    spec.cols = 48;
    spec.near_dups = 6;
    const Table t = make_table(spec, test::fresh_seed());
    const std::vector<std::uint8_t> valid = finite_rows(t);
    AllPairsOptions o;
    o.block_rows = 64;
    o.accumulate_row_sums = true;
    for (const Precision p :
         {Precision::kAuto, Precision::kTf32, Precision::kBf16, Precision::kFp16}) {
        o.precision = p;
        const MultiRun one = run_on({0}, t, valid, o);
        EXPECT_TRUE(engine::is_rescored(one.result.precision)) << to_string(p);
        EXPECT_FALSE(one.result.duplicates.empty()) << "the case re-scores duplicate pairs";
        for (const std::vector<int>& devices : device_lists())
            expect_identical(
                one, run_on(devices, t, valid, o), t.rows,
                std::string("request ") + to_string(p) + " on devices " + list_name(devices));
    }
}

// The CSLS pass shares its tile pairs as the engine does, and its lists merge by the same total
// order: the one-device lists, resident and streamed.
TEST_F(CudaMultiDevice, CslsListsAreTheOneDeviceListsBitForBit) {
    TableSpec spec;
    spec.rows = 500;
    spec.cols = 24;
    spec.nonfinite = 5;
    spec.zero_row = true;
    const Table t = make_table(spec, test::fresh_seed());
    const std::vector<std::uint8_t> valid = finite_rows(t);
    MemoryRowSource src(t.view(), "multi-device csls table");
    const std::int64_t k = 6;
    const auto one_device = make_cuda_backend(std::vector<int>{0});
    AllPairsOptions first;
    first.k = k;
    const std::vector<float> radius =
        csls_radius(one_device->all_pairs(src, valid, first).neighbor_sim, k);
    for (const bool streamed : {false, true}) {
        AllPairsOptions o;
        o.block_rows = 64;
        o.device_memory_budget = streamed ? 90000 : 0;
        const CslsNeighbors one = one_device->csls_neighbors(src, valid, radius, k, o);
        ASSERT_EQ(one.resident, !streamed) << "the budget decides the case";
        for (const std::vector<int>& devices : device_lists()) {
            SCOPED_TRACE(list_name(devices) + (streamed ? ", streamed" : ", resident"));
            const CslsNeighbors many =
                make_cuda_backend(devices)->csls_neighbors(src, valid, radius, k, o);
            EXPECT_EQ(many.rows, one.rows);
            EXPECT_EQ(many.k, one.k);
            EXPECT_EQ(many.valid_rows, one.valid_rows);
            EXPECT_EQ(many.resident, one.resident);
            EXPECT_EQ(many.index, one.index);
            EXPECT_EQ(test::bits(many.score), test::bits(one.score));
        }
    }
}

TEST_F(CudaMultiDevice, EngineErrorsReachTheCaller) {
    TableSpec spec;
    spec.rows = 300;
    spec.cols = 8;
    Table t = make_table(spec, test::fresh_seed());
    const std::vector<std::uint8_t> valid(t.rows, 1);
    t.x[150 * 8 + 3] = kNaN;  // marked valid, not finite: every engine's pass 0 throws
    AllPairsOptions o;
    o.block_rows = 64;
    MemoryRowSource source(t.view());
    try {
        make_cuda_backend({0, 0})->all_pairs(source, valid, o);
        ADD_FAILURE() << "expected a ResourceError";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("row 150"), std::string::npos) << e.what();
    }
    t.x[150 * 8 + 3] = 0.5f;
    o.device_memory_budget = 1000;  // no plan fits: every engine throws
    try {
        make_cuda_backend({0, 0, 0})->all_pairs(source, valid, o);
        ADD_FAILURE() << "expected a ResourceError";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("--device-memory-budget"), std::string::npos)
            << e.what();
    }
}

TEST_F(CudaMultiDevice, NameListsTheEnginesAndBadIdsAreResourceErrors) {
    const std::string one = make_cuda_backend({0})->name();
    EXPECT_EQ(one, make_cuda_backend()->name());
    const std::string two = make_cuda_backend({0, 0})->name();
    EXPECT_NE(two.find("devices 0,0"), std::string::npos) << two;
    const int count = cuda_device_count();
    try {
        make_cuda_backend({0, count + 2});
        ADD_FAILURE() << "expected a ResourceError";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("device " + std::to_string(count + 2)),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find(std::to_string(count) + " usable"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(make_cuda_backend({-1}), ResourceError);
}

}  // namespace
