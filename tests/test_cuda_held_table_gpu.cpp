// Backend::hold_table on CUDA: with the table held on the device, every pass that reads it (the
// per-token passes, the all-pairs engine resident and streamed, in each kind of product, CSLS,
// several engines) gives the bits it gives without the hold, since the same kernels see the same
// rows; only where the rows come from changes. Skips, with the reason, without a usable device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "geometry/csls.hpp"
#include "geometry/extremeness.hpp"
#include "pipeline/per_token_passes.hpp"
#include "support/float16_reference.hpp"
#include "support/gpu_test.hpp"
#include "support/identical_results.hpp"
#include "support/test_support.hpp"

namespace {

using namespace embgeom;

using test::bits;
using test::expect_identical_results;

class HeldTable : public test::GpuTest {};

/// A random N(mean, 1) table with a few non-finite rows, an all-zero row and near-duplicates.
std::vector<float> awkward_table(std::int64_t rows, std::int64_t cols, std::uint64_t seed,
                                 float mean = 0.0f) {
    std::vector<float> x = test::random_table(rows, cols, seed, mean);
    if (rows < 8) return x;
    const auto at = [&](std::int64_t r, std::int64_t c) -> float& { return x[r * cols + c]; };
    at(1, cols / 2) = std::numeric_limits<float>::quiet_NaN();
    at(rows - 2, 0) = std::numeric_limits<float>::infinity();
    for (std::int64_t c = 0; c < cols; ++c) {
        at(3, c) = 0.0f;
        at(rows - 1, c) = at(4, c) * (1.0f + 1e-5f * static_cast<float>(c % 3));
    }
    return x;
}

void round_to_bf16(std::vector<float>& x) {
    for (float& v : x)
        if (std::isfinite(v)) v = test::round_bf16(v);
}

/// Every tile the engine hands over, as one dense matrix.
class DenseSink final : public MatrixSink {
  public:
    explicit DenseSink(std::int64_t n) : n_(n), m_(static_cast<std::size_t>(n * n), -9.0f) {}
    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> t) override {
        for (std::int64_t r = 0; r < t.rows; ++r)
            for (std::int64_t c = 0; c < t.cols; ++c) {
                m_[(row0 + r) * n_ + col0 + c] = t.row(r)[c];
                m_[(col0 + c) * n_ + row0 + r] = t.row(r)[c];
            }
    }
    const std::vector<float>& matrix() const { return m_; }

  private:
    std::int64_t n_;
    std::vector<float> m_;
};

std::vector<std::uint8_t> valid_rows(const std::vector<float>& x, std::int64_t cols) {
    const std::int64_t rows = static_cast<std::int64_t>(x.size()) / cols;
    std::vector<std::uint8_t> valid(rows);
    for (std::int64_t r = 0; r < rows; ++r) {
        bool finite = true, nonzero = false;
        for (std::int64_t c = 0; c < cols; ++c) {
            finite &= std::isfinite(x[r * cols + c]);
            nonzero |= x[r * cols + c] != 0.0f;
        }
        valid[r] = finite && nonzero;
    }
    return valid;
}

TEST_F(HeldTable, PerTokenPassesGiveTheBitsOfUploadedBlocks) {
    const std::int64_t V = 1500, d = 77;
    const std::vector<float> x = awkward_table(V, d, test::fresh_seed());
    MemoryRowSource source(MatrixView<const float>(x.data(), V, d), "held");
    std::vector<double> bias(d);
    for (std::int64_t c = 0; c < d; ++c) bias[c] = 0.125 * static_cast<double>(c % 5) - 0.25;

    auto plain = make_cuda_backend();
    auto holding = make_cuda_backend();
    ASSERT_TRUE(holding->hold_table(source, AllPairsOptions{}));
    EXPECT_TRUE(holding->holds_table(source));
    EXPECT_FALSE(plain->holds_table(source));
    // Uneven blocks: the held copy is read at each block's first row.
    const PerToken a = per_token_passes(source, *plain, 611, &bias);
    const PerToken b = per_token_passes(source, *holding, 611, &bias);
    EXPECT_EQ(bits(b.norms), bits(a.norms)) << "norms";
    EXPECT_EQ(b.finite, a.finite);
    EXPECT_EQ(b.valid, a.valid);
    EXPECT_EQ(b.centroid, a.centroid);
    EXPECT_EQ(bits(b.centered_norms), bits(a.centered_norms)) << "centered_norms";
    EXPECT_EQ(bits(b.bias_norms), bits(a.bias_norms)) << "bias_norms";
    EXPECT_EQ(a.finite_rows, V - 2);
    EXPECT_EQ(a.zero_rows, 1);

    // A block that names the held table but lies outside it is refused, not read out of bounds.
    std::vector<float> norms(10);
    std::vector<std::uint8_t> finite(10);
    std::vector<double> sums(d, 0.0);
    EXPECT_THROW(holding->row_norms_and_sums(
                     TableBlock(MatrixView<const float>(nullptr, 10, d), source, V - 5),
                     norms.data(), finite.data(), sums.data()),
                 ResourceError);

    // Released: blocks must carry their rows again, and they give the same bits.
    holding->release_table();
    EXPECT_FALSE(holding->holds_table(source));
    const PerToken c = per_token_passes(source, *holding, 611, &bias);
    EXPECT_EQ(bits(c.norms), bits(a.norms)) << "norms after release";
    EXPECT_EQ(c.centroid, a.centroid);
}

// Tables whose every value is a bfloat16 (NaN and infinity included) or a float16 value are held
// in 16 bits, any other in float32; the passes read the source's float32 bits either way.
TEST_F(HeldTable, SixteenBitValuesAreHeldInSixteenBitsAndReadAsTheirFloat32Bits) {
    const std::int64_t V = 900, d = 45;
    std::vector<double> bias(d, 0.25);
    for (const std::string dtype : {"bfloat16", "float16", "float32"}) {
        SCOPED_TRACE(dtype);
        std::vector<float> x = awkward_table(V, d, test::fresh_seed(), 0.5f);
        if (dtype == "bfloat16") round_to_bf16(x);
        if (dtype == "float16")
            for (float& v : x)  // float16 keeps infinities; its NaN bits are its own
                v = std::isnan(v) ? std::numeric_limits<float>::infinity() : test::round_fp16(v);
        MemoryRowSource source(MatrixView<const float>(x.data(), V, d), "held");
        auto plain = make_cuda_backend();
        auto holding = make_cuda_backend();
        AllPairsOptions opt;
        opt.k = 6;
        opt.precision = Precision::kExact;
        opt.accumulate_row_sums = true;
        EXPECT_EQ(holding->held_table_dtype(), "");
        ASSERT_TRUE(holding->hold_table(source, opt));
        EXPECT_EQ(holding->held_table_dtype(), dtype);

        const PerToken a = per_token_passes(source, *plain, 400, &bias);
        const PerToken b = per_token_passes(source, *holding, 400, &bias);
        EXPECT_EQ(bits(b.norms), bits(a.norms)) << "norms";
        EXPECT_EQ(b.finite, a.finite);
        EXPECT_EQ(b.centroid, a.centroid);
        EXPECT_EQ(bits(b.centered_norms), bits(a.centered_norms)) << "centered_norms";
        EXPECT_EQ(bits(b.bias_norms), bits(a.bias_norms)) << "bias_norms";
        const std::vector<std::uint8_t> valid = valid_rows(x, d);
        expect_identical_results(holding->all_pairs(source, valid, opt),
                                 plain->all_pairs(source, valid, opt));
        holding->release_table();
        EXPECT_EQ(holding->held_table_dtype(), "");
    }
}

// The 16-bit format is guessed from the table's first 2^18 values; a value after them that needs
// float32 is found on the device, and the table is held in float32 instead, with the same bits.
TEST_F(HeldTable, AValuePastTheGuessThatNeedsFloat32IsHeldInFloat32) {
    const std::int64_t V = 4700, d = 64;  // the guess sees the first 4096 rows
    std::vector<float> x = awkward_table(V, d, test::fresh_seed());
    round_to_bf16(x);
    x[(V - 3) * d + 5] = 1.0f + 0x1p-12f;  // one value with bits below bfloat16's
    MemoryRowSource source(MatrixView<const float>(x.data(), V, d), "held");
    auto holding = make_cuda_backend();
    ASSERT_TRUE(holding->hold_table(source, AllPairsOptions{}));
    EXPECT_EQ(holding->held_table_dtype(), "float32");
    const PerToken a = per_token_passes(source, *make_cuda_backend(), 1000, nullptr);
    const PerToken b = per_token_passes(source, *holding, 1000, nullptr);
    EXPECT_EQ(bits(b.norms), bits(a.norms)) << "norms";
    EXPECT_EQ(b.centroid, a.centroid);
}

TEST_F(HeldTable, OnlyTheHeldSourceIsReadFromTheCopy) {
    const std::int64_t V = 300, d = 16;
    const std::vector<float> x = awkward_table(V, d, test::fresh_seed());
    const std::vector<float> y = awkward_table(V, d, test::fresh_seed() + 1);  // same shape
    MemoryRowSource held(MatrixView<const float>(x.data(), V, d), "held");
    MemoryRowSource other(MatrixView<const float>(y.data(), V, d), "other");
    auto backend = make_cuda_backend();
    ASSERT_TRUE(backend->hold_table(held, AllPairsOptions{}));
    EXPECT_FALSE(backend->holds_table(other));

    AllPairsOptions opt;
    opt.k = 5;
    opt.precision = Precision::kExact;
    const std::vector<std::uint8_t> valid = valid_rows(y, d);
    const AllPairsResult from_other = backend->all_pairs(other, valid, opt);
    const AllPairsResult expected = make_cuda_backend()->all_pairs(other, valid, opt);
    expect_identical_results(from_other, expected);
}

struct HeldCase {
    const char* name;
    std::int64_t rows, cols, k;
    Precision precision;
    bool bf16_table = false;
    std::int64_t block_rows = 0;
    std::uint64_t memory_budget = 0;  ///< small: the engine streams row blocks (from the copy)
    bool center = false;
    bool matrix = false;
};

void PrintTo(const HeldCase& c, std::ostream* os) { *os << c.name; }

class HeldAllPairs : public HeldTable, public ::testing::WithParamInterface<HeldCase> {};

TEST_P(HeldAllPairs, GivesTheBitsOfReadingTheSource) {
    const HeldCase& hc = GetParam();
    std::vector<float> x = awkward_table(hc.rows, hc.cols, test::fresh_seed(), 0.5f);
    if (hc.bf16_table) round_to_bf16(x);
    MemoryRowSource source(MatrixView<const float>(x.data(), hc.rows, hc.cols), "held");
    const std::vector<std::uint8_t> valid = valid_rows(x, hc.cols);

    AllPairsOptions opt;
    opt.k = hc.k;
    opt.precision = hc.precision;
    opt.block_rows = hc.block_rows;
    opt.memory_budget = hc.memory_budget;
    opt.max_dup_pairs = 1000;
    opt.dup_threshold = 0.99;
    opt.accumulate_row_sums = true;
    if (hc.center) {
        std::vector<double> center(hc.cols, 0.0);
        for (std::int64_t c = 0; c < hc.cols; ++c) center[c] = 0.5 + 0.01 * static_cast<double>(c);
        opt.center = center;
    }
    DenseSink plain_m(hc.rows), held_m(hc.rows);

    auto plain = make_cuda_backend();
    opt.matrix = hc.matrix ? &plain_m : nullptr;
    const AllPairsResult a = plain->all_pairs(source, valid, opt);

    auto holding = make_cuda_backend();
    opt.matrix = nullptr;
    ASSERT_TRUE(holding->hold_table(source, opt));
    opt.matrix = hc.matrix ? &held_m : nullptr;
    const AllPairsResult b = holding->all_pairs(source, valid, opt);
    expect_identical_results(b, a);
    if (hc.matrix) {
        EXPECT_EQ(bits(held_m.matrix()), bits(plain_m.matrix())) << "matrix";
    }

    // The copy outlives the pass: a second one reads it again.
    const AllPairsResult again = holding->all_pairs(source, valid, opt);
    expect_identical_results(again, a);
}

INSTANTIATE_TEST_SUITE_P(
    Plans, HeldAllPairs,
    ::testing::Values(
        HeldCase{"exact_tiles_of_300", 1000, 64, 10, Precision::kExact, false, 300, 0, false, true},
        HeldCase{"auto_rescored", 700, 48, 10, Precision::kAuto},
        HeldCase{"bf16_rescored", 600, 33, 7, Precision::kBf16, false, 256},
        HeldCase{"bf16_table_raw", 800, 64, 10, Precision::kAuto, true, 256},
        // ~310 kB streamed, ~500 kB resident (as CudaAllPairs' V1000_d64_streamed).
        HeldCase{"exact_streamed", 1000, 64, 10, Precision::kExact, false, 128, 450000},
        HeldCase{"bf16_table_raw_streamed", 1000, 64, 10, Precision::kAuto, true, 128, 450000},
        HeldCase{"centered_auto", 500, 24, 6, Precision::kAuto, false, 128, 0, true}),
    [](const ::testing::TestParamInfo<HeldCase>& info) { return std::string(info.param.name); });

TEST_F(HeldTable, CslsResidentAndStreamedGiveTheBitsOfReadingTheSource) {
    for (const std::uint64_t budget : {std::uint64_t{0}, std::uint64_t{3} << 20}) {
        // Device plan with a 3 MiB budget (k = 10, tiles of 256): streamed 2.35 MiB, resident
        // 4.2 MiB (as CudaCsls' V1000_d1000_streamed).
        const std::int64_t V = 1000, d = 1000, k = 10;
        const std::vector<float> x = awkward_table(V, d, test::fresh_seed());
        MemoryRowSource source(MatrixView<const float>(x.data(), V, d), "held");
        const std::vector<std::uint8_t> valid = valid_rows(x, d);
        std::vector<float> radius(V);
        for (std::int64_t i = 0; i < V; ++i) radius[i] = 0.01f * static_cast<float>(i % 17);
        AllPairsOptions opt;
        opt.k = k;
        opt.memory_budget = budget;

        const CslsNeighbors a = make_cuda_backend()->csls_neighbors(source, valid, radius, k, opt);
        auto holding = make_cuda_backend();
        ASSERT_TRUE(holding->hold_table(source, opt));
        const CslsNeighbors b = holding->csls_neighbors(source, valid, radius, k, opt);
        EXPECT_EQ(b.resident, budget == 0);
        EXPECT_EQ(b.resident, a.resident);
        EXPECT_EQ(b.index, a.index);
        EXPECT_EQ(bits(b.score), bits(a.score)) << "score";
    }
}

TEST_F(HeldTable, ExtremenessGivesTheBitsOfReadingTheSource) {
    // Two row tiles (8192 rows, then the rest): the copy is read at a row offset. Centred, so
    // the tile's in-place centring must leave the held rows as they were for the second run.
    const std::int64_t V = 8300, d = 8;
    const std::vector<float> x = awkward_table(V, d, test::fresh_seed(), 2.0f);
    MemoryRowSource source(MatrixView<const float>(x.data(), V, d), "held");
    const std::vector<std::uint8_t> valid = valid_rows(x, d);
    ExtremenessOptions eo;
    eo.directions = 64;
    eo.seed = test::fresh_seed();
    eo.center = std::vector<double>(static_cast<std::size_t>(d), 2.0);
    const Extremeness a = make_cuda_backend()->extremeness(source, valid, eo);
    auto holding = make_cuda_backend();
    ASSERT_TRUE(holding->hold_table(source, AllPairsOptions{}));
    for (int run = 0; run < 2; ++run) {
        const Extremeness b = holding->extremeness(source, valid, eo);
        EXPECT_EQ(b.argmax, a.argmax) << "run " << run;
        EXPECT_EQ(b.argmin, a.argmin) << "run " << run;
        EXPECT_EQ(b.counts, a.counts) << "run " << run;
    }
}

TEST_F(HeldTable, SeveralEnginesReadTheCopyOnItsDevice) {
    const std::int64_t V = 700, d = 40;
    const std::vector<float> x = awkward_table(V, d, test::fresh_seed());
    MemoryRowSource source(MatrixView<const float>(x.data(), V, d), "held");
    const std::vector<std::uint8_t> valid = valid_rows(x, d);
    std::vector<int> devices{0, 0, 0};
    if (cuda_device_count() >= 2) devices = {1, 0, 1};  // the copy lies on device 1
    // tf32: the merged candidates are re-scored on the first device, from the copy there.
    for (const Precision p : {Precision::kExact, Precision::kTf32}) {
        AllPairsOptions opt;
        opt.k = 8;
        opt.block_rows = 128;
        opt.precision = p;
        opt.accumulate_row_sums = true;
        const AllPairsResult one = make_cuda_backend()->all_pairs(source, valid, opt);
        auto engines = make_cuda_backend(devices);
        ASSERT_TRUE(engines->hold_table(source, opt));
        const AllPairsResult many = engines->all_pairs(source, valid, opt);
        EXPECT_EQ(many.precision,
                  p == Precision::kTf32 ? PrecisionPath::kTf32 : PrecisionPath::kExact);
        expect_identical_results(many, one);
    }
}

/// A table too large for any device, never read.
class HugeSource final : public RowSource {
  public:
    std::int64_t rows() const override { return std::int64_t{1} << 34; }
    std::int64_t cols() const override { return 4096; }
    void read_rows(std::int64_t, std::int64_t, float*) override {
        throw InputError("huge: a table too large to hold was read");
    }
    std::string describe() const override { return "huge"; }
};

TEST_F(HeldTable, ATableThatDoesNotFitIsNotHeld) {
    HugeSource huge;
    auto backend = make_cuda_backend();
    EXPECT_FALSE(backend->hold_table(huge, AllPairsOptions{}));
    EXPECT_FALSE(backend->holds_table(huge));
    // A table held before is dropped by a new request, held or not.
    const std::vector<float> x = awkward_table(50, 8, test::fresh_seed());
    MemoryRowSource small(MatrixView<const float>(x.data(), 50, 8), "small");
    ASSERT_TRUE(backend->hold_table(small, AllPairsOptions{}));
    EXPECT_FALSE(backend->hold_table(huge, AllPairsOptions{}));
    EXPECT_FALSE(backend->holds_table(small));
}

/// 12000 x 4096 rows (3 pieces of the copy to the device) whose reads fail past row 5000.
class FailingSource final : public RowSource {
  public:
    std::int64_t rows() const override { return 12000; }
    std::int64_t cols() const override { return 4096; }
    void read_rows(std::int64_t first, std::int64_t count, float* out) override {
        if (first + count > 5000) throw InputError("failing.h5:/emb: read error at row 5000");
        std::fill(out, out + count * cols(), 0.5f);
    }
    std::string describe() const override { return "failing.h5:/emb"; }
};

TEST_F(HeldTable, AReadThatFailsWhileCopyingIsAnInputErrorAndHoldsNothing) {
    FailingSource failing;
    auto backend = make_cuda_backend();
    try {
        backend->hold_table(failing, AllPairsOptions{});
        FAIL() << "the failed read was not reported";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("failing.h5:/emb"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(backend->holds_table(failing));
    // The backend is still usable.
    const std::vector<float> x = awkward_table(60, 8, test::fresh_seed());
    MemoryRowSource small(MatrixView<const float>(x.data(), 60, 8), "small");
    EXPECT_TRUE(backend->hold_table(small, AllPairsOptions{}));
}

TEST(HeldTableAnyMachine, TheCpuBackendHoldsNothing) {
    const std::vector<float> x = test::random_table(40, 6, test::fresh_seed());
    MemoryRowSource source(MatrixView<const float>(x.data(), 40, 6), "t");
    auto cpu = make_cpu_backend(2);
    EXPECT_FALSE(cpu->hold_table(source, AllPairsOptions{}));
    EXPECT_FALSE(cpu->holds_table(source));
    // Blocks that name their table still carry their rows to the CPU.
    const PerToken p = per_token_passes(source, *cpu, 7, nullptr);
    EXPECT_EQ(p.finite_rows, 40);
}

}  // namespace
