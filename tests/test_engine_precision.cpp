// --precision on the host: the policy (request x table x what the memory plan affords -> path),
// the error bounds the fast paths are held to, the block-by-block 16-bit encoding of pass 0, the
// float32 re-score and the selection of each row's top K from re-scored candidates, the CPU
// backend's answer to every request, and the option on the command line and in config files.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "engine/candidate_rescore.hpp"
#include "engine/precision_policy.hpp"
#include "engine/row_normalize.hpp"
#include "engine/topk_lists.hpp"
#include "io/half_float.hpp"
#include "pipeline/analyze_job.hpp"
#include "support/float16_reference.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

using engine::PrecisionCapacity;
using engine::Raw16Format;
using engine::Raw16Tracker;
using engine::RawExactness;

constexpr Precision kRequests[] = {Precision::kAuto, Precision::kExact, Precision::kTf32,
                                   Precision::kBf16, Precision::kFp16};
constexpr PrecisionPath kPaths[] = {PrecisionPath::kExact,   PrecisionPath::kTf32,
                                    PrecisionPath::kBf16,    PrecisionPath::kFp16,
                                    PrecisionPath::kBf16Raw, PrecisionPath::kFp16Raw};

using test::bits;
using test::from_bits;
using test::round_bf16;
using test::round_fp16;
using test::truncate_tf32;

// The device check's definitions (kernels/exact16_check.cu), restated for the host.
bool bf16_exact(float v) {
    const double a = std::fabs(static_cast<double>(v));
    return round_bf16(v) == v &&
           (a == 0.0 || (a >= engine::kRawBf16MinMagnitude && a <= engine::kRawBf16MaxMagnitude));
}
bool fp16_exact(float v) { return round_fp16(v) == v; }

const char* name(Precision p) { return to_string(p); }

// ---------------------------------------------------------------------------------------------
// Policy

struct TableKind {
    const char* label;
    RawExactness exact;
};
constexpr TableKind kTables[] = {{"float32", {false, false}},
                                 {"bf16-exact", {true, false}},
                                 {"fp16-exact", {false, true}},
                                 {"bf16-and-fp16-exact", {true, true}}};

PrecisionPath full(Precision r, RawExactness t) {
    return engine::resolve_precision(r, t, {true, true}, 10, 100000);
}

TEST(PrecisionPolicy, EveryRequestOnEveryTableWithEverythingAffordable) {
    using P = PrecisionPath;
    const RawExactness f32{false, false}, b{true, false}, h{false, true}, both{true, true};
    // exact is exact whatever the table.
    for (const TableKind& t : kTables)
        EXPECT_EQ(full(Precision::kExact, t.exact), P::kExact) << t.label;
    // auto: stored 16-bit values go in raw (bfloat16 first); float32 tables get tf32 + re-score.
    EXPECT_EQ(full(Precision::kAuto, f32), P::kTf32);
    EXPECT_EQ(full(Precision::kAuto, b), P::kBf16Raw);
    EXPECT_EQ(full(Precision::kAuto, h), P::kFp16Raw);
    EXPECT_EQ(full(Precision::kAuto, both), P::kBf16Raw);
    // tf32 is always the fast float32 product.
    for (const TableKind& t : kTables)
        EXPECT_EQ(full(Precision::kTf32, t.exact), P::kTf32) << t.label;
    // bf16/fp16: raw when the table is exact in that type, else the normalised rows + re-score.
    EXPECT_EQ(full(Precision::kBf16, f32), P::kBf16);
    EXPECT_EQ(full(Precision::kBf16, b), P::kBf16Raw);
    EXPECT_EQ(full(Precision::kBf16, h), P::kBf16);
    EXPECT_EQ(full(Precision::kBf16, both), P::kBf16Raw);
    EXPECT_EQ(full(Precision::kFp16, f32), P::kFp16);
    EXPECT_EQ(full(Precision::kFp16, b), P::kFp16);
    EXPECT_EQ(full(Precision::kFp16, h), P::kFp16Raw);
    EXPECT_EQ(full(Precision::kFp16, both), P::kFp16Raw);
}

TEST(PrecisionPolicy, WhatTheMemoryPlanCannotAffordFallsBackToExactOrRaw) {
    using P = PrecisionPath;
    const RawExactness f32{false, false}, b{true, false}, h{false, true};
    const PrecisionCapacity streamed16{true, false}, lists_only{false, true}, none{false, false};
    // Streamed (no re-scoring): raw where the table allows it, else exact.
    EXPECT_EQ(engine::resolve_precision(Precision::kAuto, f32, streamed16, 10, 1000), P::kExact);
    EXPECT_EQ(engine::resolve_precision(Precision::kAuto, b, streamed16, 10, 1000), P::kBf16Raw);
    EXPECT_EQ(engine::resolve_precision(Precision::kAuto, h, streamed16, 10, 1000), P::kFp16Raw);
    EXPECT_EQ(engine::resolve_precision(Precision::kTf32, b, streamed16, 10, 1000), P::kExact);
    EXPECT_EQ(engine::resolve_precision(Precision::kBf16, f32, streamed16, 10, 1000), P::kExact);
    EXPECT_EQ(engine::resolve_precision(Precision::kFp16, h, streamed16, 10, 1000), P::kFp16Raw);
    // Lists but no 16-bit copy: tf32 still runs; bf16/fp16 need the copy.
    EXPECT_EQ(engine::resolve_precision(Precision::kAuto, b, lists_only, 10, 1000), P::kTf32);
    EXPECT_EQ(engine::resolve_precision(Precision::kTf32, f32, lists_only, 10, 1000), P::kTf32);
    EXPECT_EQ(engine::resolve_precision(Precision::kBf16, f32, lists_only, 10, 1000), P::kExact);
    for (Precision r : kRequests)
        for (const TableKind& t : kTables)
            EXPECT_EQ(engine::resolve_precision(r, t.exact, none, 10, 1000), P::kExact)
                << name(r) << " " << t.label;
}

TEST(PrecisionPolicy, InvariantsOverEveryCombination) {
    const std::int64_t ks[] = {0, 1, 10, 256, 257, 512, 513, 1024};
    const std::int64_t valids[] = {0, 1, 2, 30, 1000, 5000};
    for (Precision r : kRequests)
        for (const TableKind& t : kTables)
            for (bool copy16 : {false, true})
                for (bool lists : {false, true})
                    for (std::int64_t k : ks)
                        for (std::int64_t n : valids) {
                            const PrecisionPath p =
                                engine::resolve_precision(r, t.exact, {copy16, lists}, k, n);
                            SCOPED_TRACE(std::string(name(r)) + " " + t.label +
                                         " copy16=" + std::to_string(copy16) + " lists=" +
                                         std::to_string(lists) + " k=" + std::to_string(k) +
                                         " n=" + std::to_string(n) + " -> " + to_string(p));
                            const bool exact_ok = p == PrecisionPath::kExact;
                            EXPECT_TRUE(r != Precision::kExact || exact_ok);
                            EXPECT_TRUE(!engine::uses_copy16(p) || copy16);
                            EXPECT_TRUE(!engine::is_rescored(p) || lists);
                            EXPECT_TRUE(p != PrecisionPath::kBf16Raw || t.exact.bf16);
                            EXPECT_TRUE(p != PrecisionPath::kFp16Raw || t.exact.fp16);
                            // An explicit fast request names the GEMM input type it may use.
                            EXPECT_TRUE(r != Precision::kTf32 || p == PrecisionPath::kTf32 ||
                                        exact_ok);
                            EXPECT_TRUE(r != Precision::kBf16 || p == PrecisionPath::kBf16 ||
                                        p == PrecisionPath::kBf16Raw || exact_ok);
                            EXPECT_TRUE(r != Precision::kFp16 || p == PrecisionPath::kFp16 ||
                                        p == PrecisionPath::kFp16Raw || exact_ok);
                            // auto keeps the guarantee: at least 2K candidates when re-scoring.
                            const std::int64_t needed =
                                std::min<std::int64_t>(2 * k, std::max<std::int64_t>(n - 1, 0));
                            EXPECT_TRUE(r != Precision::kAuto || !engine::is_rescored(p) ||
                                        engine::candidate_count(k, n) >= needed);
                        }
}

TEST(PrecisionPolicy, CandidateCountAndTheKernelLimit) {
    EXPECT_EQ(engine::candidate_count(10, 1000), 40);
    EXPECT_EQ(engine::candidate_count(10, 30), 29);  // valid - 1 < 4K
    EXPECT_EQ(engine::candidate_count(50, 37), 36);
    EXPECT_EQ(engine::candidate_count(256, 5000), 1024);
    EXPECT_EQ(engine::candidate_count(300, 5000), 1024);  // the top-K kernel's limit
    EXPECT_EQ(engine::candidate_count(300, 1100), 1024);
    EXPECT_EQ(engine::candidate_count(0, 100), 0);
    EXPECT_EQ(engine::candidate_count(5, 1), 0);
    EXPECT_EQ(engine::candidate_count(5, 0), 0);
    // K > 512 with more rows than the limit: fewer than 2K candidates, so auto runs exact while an
    // explicit tf32 request gets the 1024 there are.
    const PrecisionCapacity all{true, true};
    const RawExactness f32{false, false};
    EXPECT_EQ(engine::resolve_precision(Precision::kAuto, f32, all, 600, 5000),
              PrecisionPath::kExact);
    EXPECT_EQ(engine::resolve_precision(Precision::kTf32, f32, all, 600, 5000),
              PrecisionPath::kTf32);
    EXPECT_EQ(engine::resolve_precision(Precision::kAuto, f32, all, 512, 5000),
              PrecisionPath::kTf32);
    // ... unless every other row is a candidate anyway.
    EXPECT_EQ(engine::resolve_precision(Precision::kAuto, f32, all, 600, 700),
              PrecisionPath::kTf32);
}

TEST(PrecisionPolicy, NamesAndClassification) {
    EXPECT_STREQ(to_string(Precision::kAuto), "auto");
    EXPECT_STREQ(to_string(Precision::kExact), "exact");
    EXPECT_STREQ(to_string(Precision::kTf32), "tf32");
    EXPECT_STREQ(to_string(Precision::kBf16), "bf16");
    EXPECT_STREQ(to_string(Precision::kFp16), "fp16");
    const char* names[] = {"exact", "tf32", "bf16", "fp16", "bf16-raw", "fp16-raw"};
    for (int i = 0; i < 6; ++i) {
        const PrecisionPath p = kPaths[i];
        EXPECT_STREQ(to_string(p), names[i]);
        EXPECT_EQ(engine::is_rescored(p), i >= 1 && i <= 3) << names[i];
        EXPECT_EQ(engine::is_raw16(p), i >= 4) << names[i];
        EXPECT_EQ(engine::uses_copy16(p), i >= 2) << names[i];
        EXPECT_EQ(engine::fast_error_bound(p, 768) > 0.0, engine::is_rescored(p)) << names[i];
        EXPECT_EQ(engine::duplicate_margin(p, 768), 4.0 * engine::fast_error_bound(p, 768));
    }
    EXPECT_EQ(engine::raw_format(PrecisionPath::kBf16Raw), Raw16Format::kBf16);
    EXPECT_EQ(engine::raw_format(PrecisionPath::kFp16Raw), Raw16Format::kFp16);
    EXPECT_EQ(engine::raw_format(PrecisionPath::kBf16), Raw16Format::kNone);
    EXPECT_LT(engine::fast_error_bound(PrecisionPath::kFp16, 64),
              engine::fast_error_bound(PrecisionPath::kTf32, 64));
    EXPECT_LT(engine::fast_error_bound(PrecisionPath::kTf32, 64),
              engine::fast_error_bound(PrecisionPath::kBf16, 64));
}

// ---------------------------------------------------------------------------------------------
// The error bounds hold for the input roundings the device applies

double dot64(const std::vector<float>& x, const std::vector<float>& y) {
    double s = 0.0;
    for (std::size_t c = 0; c < x.size(); ++c) s += static_cast<double>(x[c]) * y[c];
    return s;
}

void expect_within_bound(const std::vector<float>& x, const std::vector<float>& y,
                         const char* what) {
    const std::int64_t d = static_cast<std::int64_t>(x.size());
    const double scale = std::sqrt(dot64(x, x) * dot64(y, y));
    const struct {
        PrecisionPath path;
        float (*round)(float);
    } modes[] = {{PrecisionPath::kTf32, truncate_tf32},
                 {PrecisionPath::kBf16, round_bf16},
                 {PrecisionPath::kFp16, round_fp16}};
    for (const auto& m : modes) {
        std::vector<float> xr(x), yr(y);
        for (float& v : xr) v = m.round(v);
        for (float& v : yr) v = m.round(v);
        const double err = std::fabs(dot64(xr, yr) - dot64(x, y)) / scale;
        EXPECT_LE(err, engine::fast_error_bound(m.path, d))
            << what << ", " << to_string(m.path) << ", d=" << d;
    }
}

TEST(PrecisionBounds, HoldForRandomNearDuplicateAndWorstCaseRows) {
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (std::int64_t d : {1, 3, 64, 768, 4096}) {
        for (int trial = 0; trial < 20; ++trial) {
            std::vector<float> a(d), b(d), xa(d), xb(d), xc(d);
            for (std::int64_t c = 0; c < d; ++c) {
                a[c] = g(rng);
                b[c] = trial % 2 ? a[c] * (1.0f + 1e-3f * g(rng)) : g(rng);
            }
            engine::normalize_row(a.data(), nullptr, d, xa.data());
            engine::normalize_row(b.data(), nullptr, d, xb.data());
            expect_within_bound(xa, xb, trial % 2 ? "near-duplicate rows" : "random rows");
        }
        // Worst case for truncation and rounding alike: every element just below a rounding edge,
        // the same in both rows, so every product loses in the same direction.
        std::vector<float> w(d);
        for (std::int64_t c = 0; c < d; ++c)
            w[c] =
                from_bits((bits(1.0f + 0.25f * static_cast<float>(c % 4)) & 0xffff0000u) | 0x7fffu);
        expect_within_bound(w, w, "rows at the rounding edge");
    }
}

// ---------------------------------------------------------------------------------------------
// Pass 0's block-by-block 16-bit encoding

TEST(Raw16Tracker, BfloatWhileExactThenFloat16WithThePrefixReencoded) {
    Raw16Tracker t(true, true);
    EXPECT_EQ(t.next_block(0, 100, {true, true}), Raw16Format::kBf16);
    EXPECT_EQ(t.next_block(100, 100, {true, true}), Raw16Format::kBf16);
    EXPECT_EQ(t.next_block(200, 50, {false, true}), Raw16Format::kFp16);
    EXPECT_EQ(t.next_block(250, 10, {false, true}), Raw16Format::kFp16);
    EXPECT_EQ(t.final_format(), Raw16Format::kFp16);
    EXPECT_EQ(t.bf16_prefix_to_reencode(), 200);
}

TEST(Raw16Tracker, StaysBfloatWhenOnlyFloat16Fails) {
    Raw16Tracker t(true, true);
    EXPECT_EQ(t.next_block(0, 10, {true, true}), Raw16Format::kBf16);
    EXPECT_EQ(t.next_block(10, 10, {true, false}), Raw16Format::kBf16);
    EXPECT_EQ(t.final_format(), Raw16Format::kBf16);
    EXPECT_EQ(t.bf16_prefix_to_reencode(), 0);
}

TEST(Raw16Tracker, NeitherFormatMeansNoRawPath) {
    Raw16Tracker t(true, true);
    EXPECT_EQ(t.next_block(0, 10, {true, true}), Raw16Format::kBf16);
    EXPECT_EQ(t.next_block(10, 10, {false, false}), Raw16Format::kNone);
    EXPECT_EQ(t.next_block(20, 10, {true, true}), Raw16Format::kNone);  // flags only turn false
    EXPECT_EQ(t.final_format(), Raw16Format::kNone);
    EXPECT_EQ(t.bf16_prefix_to_reencode(), 0);
}

TEST(Raw16Tracker, ExplicitRequestsUseOnlyTheirFormat) {
    Raw16Tracker b(true, false), h(false, true);
    EXPECT_EQ(b.next_block(0, 5, {false, true}), Raw16Format::kNone);
    EXPECT_EQ(b.final_format(), Raw16Format::kNone);
    EXPECT_EQ(h.next_block(0, 5, {true, true}), Raw16Format::kFp16);
    EXPECT_EQ(h.final_format(), Raw16Format::kFp16);
    EXPECT_EQ(h.bf16_prefix_to_reencode(), 0);
}

TEST(Raw16Tracker, BlocksMustComeInRowOrder) {
    Raw16Tracker t(true, true);
    t.next_block(0, 10, {true, true});
    EXPECT_THROW(t.next_block(20, 10, {true, true}), ResourceError);
}

// Simulates pass 0 on real values: blocks of rows encoded as the tracker says, the prefix
// re-encoded at the end; whenever a raw path results (the policy's choice, same format), every
// decoded value must be the original.
TEST(Raw16Tracker, EncodedTableDecodesToTheOriginalWheneverARawPathRuns) {
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::uniform_int_distribution<int> flavour(0, 9);
    int raw_runs = 0, reencodes = 0;
    for (int trial = 0; trial < 400; ++trial) {
        const int blocks = 1 + trial % 5;
        const std::int64_t rows_per_block = 3, d = 4;
        std::vector<float> x;
        for (int b = 0; b < blocks; ++b) {
            // Values exact in both types, except the first of a block, which is exact in both
            // (most blocks), in float16 only, in bfloat16 only (tiny), or in neither.
            const int k = flavour(rng);
            for (std::int64_t e = 0; e < rows_per_block * d; ++e) {
                const float v = g(rng);
                const float both = round_bf16(round_fp16(v));
                x.push_back(e > 0 || k < 5 ? both
                            : k < 7        ? round_fp16(1.0f + 0x1p-10f * (1 + (trial % 7)))
                            : k < 9        ? round_bf16(v) * 0x1p-20f
                                           : 1.0f + 0x1p-20f);
            }
        }
        for (Precision r : {Precision::kAuto, Precision::kBf16, Precision::kFp16}) {
            Raw16Tracker t(r != Precision::kFp16, r != Precision::kBf16);
            RawExactness so_far{true, true};
            std::vector<float> stored(x.size());
            std::vector<Raw16Format> fmt(x.size());
            for (int b = 0; b < blocks; ++b) {
                const std::size_t e0 = static_cast<std::size_t>(b * rows_per_block * d);
                const std::size_t e1 = e0 + static_cast<std::size_t>(rows_per_block * d);
                for (std::size_t e = e0; e < e1; ++e) {
                    so_far.bf16 = so_far.bf16 && bf16_exact(x[e]);
                    so_far.fp16 = so_far.fp16 && fp16_exact(x[e]);
                }
                const Raw16Format f = t.next_block(b * rows_per_block, rows_per_block, so_far);
                for (std::size_t e = e0; e < e1; ++e) {
                    fmt[e] = f;
                    stored[e] = f == Raw16Format::kBf16   ? round_bf16(x[e])
                                : f == Raw16Format::kFp16 ? round_fp16(x[e])
                                                          : 0.0f;
                }
            }
            const PrecisionPath p = engine::resolve_precision(r, so_far, {true, true}, 2, 15);
            ASSERT_EQ(engine::raw_format(p), t.final_format()) << name(r) << " trial " << trial;
            if (!engine::is_raw16(p)) continue;
            ++raw_runs;
            const std::int64_t prefix = t.bf16_prefix_to_reencode() * d;
            reencodes += prefix > 0;
            for (std::int64_t e = 0; e < prefix; ++e) {
                ASSERT_EQ(fmt[e], Raw16Format::kBf16);
                stored[e] = round_fp16(stored[e]);
                fmt[e] = Raw16Format::kFp16;
            }
            for (std::size_t e = 0; e < x.size(); ++e) {
                ASSERT_EQ(fmt[e], t.final_format()) << "element " << e;
                ASSERT_EQ(stored[e], x[e]) << name(r) << " trial " << trial << " element " << e;
            }
        }
    }
    EXPECT_GT(raw_runs, 50);
    EXPECT_GT(reencodes, 0);
}

// ---------------------------------------------------------------------------------------------
// Re-score and selection

TEST(CandidateRescore, DotIsFloat32AccurateAndExactOnIntegers) {
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<float> g(0.0f, 1.0f);
    EXPECT_EQ(engine::rescore_dot(nullptr, nullptr, 0), 0.0f);
    for (std::int64_t d : {1, 5, 31, 32, 33, 64, 100, 768, 4095}) {
        std::vector<float> x(d), y(d);
        for (std::int64_t c = 0; c < d; ++c) {
            x[c] = g(rng);
            y[c] = g(rng);
        }
        double abs_sum = 0.0;
        for (std::int64_t c = 0; c < d; ++c) abs_sum += std::fabs(static_cast<double>(x[c]) * y[c]);
        // Each lane adds at most ceil(d / 32) terms, then 5 butterfly levels: a (ceil(d/32) + 5)
        // u bound, u = 2^-24.
        const double bound = (static_cast<double>((d + 31) / 32) + 5) * 0x1p-24 * abs_sum;
        const float s = engine::rescore_dot(x.data(), y.data(), d);
        EXPECT_LE(std::fabs(s - dot64(x, y)), bound) << "d=" << d;
        EXPECT_EQ(engine::rescore_dot(y.data(), x.data(), d), s) << "symmetric, d=" << d;
        // Small integers: every partial sum is exact, so the result is the exact dot product.
        for (std::int64_t c = 0; c < d; ++c) {
            x[c] = std::round(4.0f * g(rng));
            y[c] = std::round(4.0f * g(rng));
        }
        EXPECT_EQ(engine::rescore_dot(x.data(), y.data(), d), static_cast<float>(dot64(x, y)));
    }
}

struct Cand {
    float sim;
    std::int64_t index;
};

TEST(CandidateRescore, SelectionEqualsBruteForceWithTiesPaddingAndShortLists) {
    std::mt19937_64 rng(test::fresh_seed());
    const float kNaN = std::numeric_limits<float>::quiet_NaN();
    for (int trial = 0; trial < 300; ++trial) {
        const std::int64_t rows = 1 + trial % 7;
        const std::int64_t kc = trial % 11;  // includes 0 and kc < k
        const std::int64_t k = 1 + (trial / 3) % 9;
        std::uniform_int_distribution<int> level(-3, 3), slot_kind(0, 9);
        std::vector<std::int64_t> idx(static_cast<std::size_t>(rows * kc));
        std::vector<float> sim(idx.size());
        std::vector<std::vector<Cand>> want(rows);
        for (std::int64_t r = 0; r < rows; ++r) {
            // Distinct indices per row, from a shuffled range; similarities from a few levels
            // (exact ties) or continuous.
            std::vector<std::int64_t> pool(40);
            for (std::int64_t q = 0; q < 40; ++q) pool[q] = q * 7 + r;
            std::shuffle(pool.begin(), pool.end(), rng);
            for (std::int64_t s = 0; s < kc; ++s) {
                const std::size_t e = static_cast<std::size_t>(r * kc + s);
                const int kind = slot_kind(rng);
                if (kind == 0) {
                    idx[e] = engine::kEmptyIndex;  // the device's empty slot
                    sim[e] = engine::kEmptySim;
                } else if (kind == 1) {
                    idx[e] = -1;  // result padding
                    sim[e] = kNaN;
                } else if (kind == 2) {
                    idx[e] = pool[s];  // a NaN score is not a candidate
                    sim[e] = kNaN;
                } else {
                    idx[e] = pool[s];
                    sim[e] = trial % 2 ? 0.25f * level(rng)
                                       : std::uniform_real_distribution<float>(-1, 1)(rng);
                    want[r].push_back({sim[e], idx[e]});
                }
            }
            std::sort(want[r].begin(), want[r].end(), [](const Cand& a, const Cand& b) {
                return engine::ranks_before(a.sim, a.index, b.sim, b.index);
            });
        }
        std::vector<std::int64_t> out_idx(static_cast<std::size_t>(rows * k), 12345);
        std::vector<float> out_sim(out_idx.size(), 9.0f);
        engine::select_rescored_topk(idx.data(), sim.data(), rows, kc, k, out_idx.data(),
                                     out_sim.data());
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t s = 0; s < k; ++s) {
                const std::size_t o = static_cast<std::size_t>(r * k + s);
                if (static_cast<std::size_t>(s) < want[r].size()) {
                    EXPECT_EQ(out_idx[o], want[r][s].index) << "trial " << trial << " row " << r;
                    EXPECT_EQ(out_sim[o], want[r][s].sim) << "trial " << trial << " row " << r;
                } else {
                    EXPECT_EQ(out_idx[o], -1) << "trial " << trial << " row " << r << " slot " << s;
                    EXPECT_TRUE(std::isnan(out_sim[o])) << "trial " << trial << " row " << r;
                }
            }
    }
}

// ---------------------------------------------------------------------------------------------
// The CPU backend answers every request with exact float32

TEST(CpuPrecision, EveryRequestRunsExactWithIdenticalResults) {
    const std::int64_t V = 300, d = 24;
    const std::vector<float> x = test::random_table(V, d, test::fresh_seed(), 0.5f);
    MemoryRowSource source(MatrixView<const float>(x.data(), V, d));
    const std::vector<std::uint8_t> valid(V, 1);
    auto cpu = make_cpu_backend(2);
    AllPairsOptions o;
    o.k = 7;
    o.dup_threshold = 0.8;
    o.precision = Precision::kExact;
    const AllPairsResult ref = cpu->all_pairs(source, valid, o);
    EXPECT_EQ(ref.precision, PrecisionPath::kExact);
    for (Precision r : kRequests) {
        o.precision = r;
        const AllPairsResult got = cpu->all_pairs(source, valid, o);
        EXPECT_EQ(got.precision, PrecisionPath::kExact) << name(r);
        EXPECT_EQ(got.neighbor_index, ref.neighbor_index) << name(r);
        EXPECT_EQ(got.neighbor_sim, ref.neighbor_sim) << name(r);
        EXPECT_EQ(got.histogram, ref.histogram) << name(r);
        EXPECT_EQ(got.pair_cos_sq_sum, ref.pair_cos_sq_sum) << name(r);
        EXPECT_EQ(got.duplicates.size(), ref.duplicates.size()) << name(r);
    }
}

// ---------------------------------------------------------------------------------------------
// --precision on the command line and in config files

using test::parse;

TEST(PrecisionCli, DefaultIsAutoAndEveryValueParses) {
    EXPECT_EQ(parse({"analyze"}).analyze.precision, Precision::kAuto);
    for (Precision r : kRequests) {
        EXPECT_EQ(parse({"analyze", "--precision", name(r)}).analyze.precision, r) << name(r);
        EXPECT_EQ(parse({"analyze", std::string("--precision=") + name(r)}).analyze.precision, r);
    }
    EXPECT_EQ(parse({"analyze", "--precision", "BF16"}).analyze.precision, Precision::kBf16);
    EXPECT_THROW(parse({"analyze", "--precision", "fp8"}), CLI::ParseError);
    EXPECT_THROW(parse({"analyze", "--precision"}), CLI::ParseError);
}

TEST(PrecisionCli, ConfigKeyAndCommandLineOverride) {
    test::TempDir dir;
    test::write_text_file(dir.file("p.toml"), "precision = \"tf32\"\n");
    EXPECT_EQ(parse({"analyze", "--config", dir.file("p.toml")}).analyze.precision,
              Precision::kTf32);
    EXPECT_EQ(parse({"analyze", "--config", dir.file("p.toml"), "--precision", "exact"})
                  .analyze.precision,
              Precision::kExact);
}

TEST(PrecisionCli, ResolvedConfigRoundTripsEveryValue) {
    test::TempDir dir;
    for (Precision r : kRequests) {
        AnalyzeConfig c;
        c.input = "in.h5";
        c.dataset = "/e";
        c.output = "out.h5";
        c.precision = r;
        const std::string toml = config_to_toml(c);
        EXPECT_NE(toml.find(std::string("precision = \"") + name(r) + "\""), std::string::npos)
            << toml;
        test::write_text_file(dir.file("c.toml"), toml);
        const AnalyzeConfig back = parse({"analyze", "--config", dir.file("c.toml")}).analyze;
        EXPECT_EQ(back.precision, r) << name(r);
        EXPECT_EQ(config_to_toml(back), toml) << name(r);
    }
}

TEST(PrecisionCliBinary, BadValuesExitTwoWithOneLineNamingTheOption) {
    test::TempDir dir;
    test::write_text_file(dir.file("bad.toml"), "precision = \"int8\"\n");
    for (const std::string& args :
         {std::string("analyze --precision fp8 --input x.h5 --dataset /e --output o.h5"),
          std::string("analyze --precision --input x.h5"),
          "analyze --config " + test::shell_quote(dir.file("bad.toml")) +
              " --input x.h5 --dataset /e --output o.h5"}) {
        const auto r = test::run_embgeom(args);
        EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
        EXPECT_NE(r.err.find("--precision"), std::string::npos) << args << "\n" << r.err;
    }
    const auto help = test::run_embgeom("analyze --help");
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("--precision"), std::string::npos);
}

TEST(PrecisionCliBinary, OutputRecordsTheRequestAndWhatRan) {
    test::TempDir dir;
    const std::string table = dir.file("t.h5"), out = dir.file("o.h5");
    ASSERT_EQ(
        test::run_embgeom("synth --rows 60 --dim 8 --output " + test::shell_quote(table)).exit_code,
        0);
    auto r = test::run_embgeom("analyze --input " + test::shell_quote(table) +
                               " --dataset /embeddings --backend cpu --precision bf16 --output " +
                               test::shell_quote(out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    test::run_python(
        "import sys, h5py\n"
        "f = h5py.File(sys.argv[1])\n"
        "p = f.attrs['precision']\n"
        "p = p.decode() if isinstance(p, bytes) else p\n"
        "assert p == 'exact', p\n"
        "c = f.attrs['config']\n"
        "c = c.decode() if isinstance(c, bytes) else c\n"
        "assert 'precision = \"bf16\"' in c, c\n",
        test::shell_quote(out));
    r = test::run_embgeom("analyze --input " + test::shell_quote(table) +
                          " --dataset /embeddings --backend cpu --no-all-pairs --output " +
                          test::shell_quote(out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    test::run_python(
        "import sys, h5py\n"
        "p = h5py.File(sys.argv[1]).attrs['precision']\n"
        "p = p.decode() if isinstance(p, bytes) else p\n"
        "assert p == 'none', p\n",
        test::shell_quote(out));
}

}  // namespace
}  // namespace embgeom
