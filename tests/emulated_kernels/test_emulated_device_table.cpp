// DeviceTable (src/cuda/device_table.hpp) on the emulated device, where device memory can be
// counted (fake_cuda_runtime.cpp) and the request's knobs (the guess's sample, the piece size,
// whether float32 is allowed) can be turned: which format the copy takes, what it occupies, and
// that copy_rows gives back the source's float32 bits over any row range. The backend-level
// tests (tests/test_cuda_held_table_gpu.cpp) check the passes over the copy, on GPUs too.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/device_table.hpp"
#include "embgeom/errors.hpp"
#include "support/float16_reference.hpp"
#include "support/test_support.hpp"

namespace {

using namespace embgeom;

std::uint64_t used_device_bytes() {
    std::size_t free_bytes = 0, total_bytes = 0;
    EMBGEOM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    return total_bytes - free_bytes;
}

std::vector<std::uint32_t> bit_patterns(const float* v, std::size_t n) {
    std::vector<std::uint32_t> out(n);
    std::memcpy(out.data(), v, n * sizeof(float));
    return out;
}

// Rows [first, first + count) of the copy, through copy_rows, as bit patterns.
std::vector<std::uint32_t> copied(CudaResources& res, const DeviceTable& t, std::int64_t first,
                                  std::int64_t count) {
    DeviceBuffer<float> dev(static_cast<std::size_t>(count * t.cols()));
    std::vector<float> host(dev.size());
    t.copy_rows(first, count, dev.data(), res.compute_stream());
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(host.data(), dev.data(), dev.bytes(), cudaMemcpyDeviceToHost,
                                     res.compute_stream()));
    EMBGEOM_CUDA_TRY(cudaStreamSynchronize(res.compute_stream()));
    return bit_patterns(host.data(), host.size());
}

void expect_rows_of(CudaResources& res, const DeviceTable& t, const std::vector<float>& x,
                    std::uint64_t seed) {
    const std::int64_t V = t.rows(), d = t.cols();
    std::mt19937_64 rng(seed);
    for (int trial = 0; trial < 6; ++trial) {
        const std::int64_t first = trial == 0 ? 0 : static_cast<std::int64_t>(rng() % V);
        const std::int64_t count =
            trial == 0 ? V : 1 + static_cast<std::int64_t>(rng() % (V - first));
        SCOPED_TRACE("rows " + std::to_string(first) + " + " + std::to_string(count));
        EXPECT_EQ(copied(res, t, first, count),
                  bit_patterns(x.data() + first * d, static_cast<std::size_t>(count * d)));
    }
}

/// A source that counts the rows read.
class CountingSource final : public RowSource {
  public:
    CountingSource(const std::vector<float>& x, std::int64_t cols)
        : x_(x), rows_(static_cast<std::int64_t>(x.size()) / cols), cols_(cols) {}
    std::int64_t rows() const override { return rows_; }
    std::int64_t cols() const override { return cols_; }
    void read_rows(std::int64_t first, std::int64_t count, float* out) override {
        std::memcpy(out, x_.data() + first * cols_, sizeof(float) * count * cols_);
        rows_read += count;
    }
    std::string describe() const override { return "counting"; }
    std::int64_t rows_read = 0;

  private:
    const std::vector<float>& x_;
    std::int64_t rows_, cols_;
};

std::vector<float> table_of(const std::string& dtype, std::int64_t V, std::int64_t d,
                            std::uint64_t seed) {
    std::vector<float> x = test::random_table(V, d, seed, 0.25f);
    for (float& v : x) {
        if (dtype == "bfloat16") v = test::round_bf16(v);
        if (dtype == "float16") v = test::round_fp16(v);
    }
    if (dtype != "float16") x[7] = std::numeric_limits<float>::quiet_NaN();  // bfloat16 bits
    x[11] = -std::numeric_limits<float>::infinity();
    x[13] = -0.0f;
    return x;
}

TEST(EmulatedDeviceTable, TakesTheNarrowestFormatItsValuesAllowAndOccupiesIt) {
    const std::int64_t V = 1234, d = 37;
    for (const std::string dtype : {"bfloat16", "float16", "float32"}) {
        SCOPED_TRACE(dtype);
        const std::vector<float> x = table_of(dtype, V, d, test::fresh_seed());
        CountingSource source(x, d);
        CudaResources res(0);
        (void)res.compute_stream();
        const std::uint64_t before = used_device_bytes();
        HoldRequest request;
        request.piece_bytes = 100 * d * sizeof(float);  // 13 pieces
        const auto t = hold_on_device(res, source, request);
        ASSERT_TRUE(t);
        EXPECT_STREQ(to_string(t->format()), dtype.c_str());
        EXPECT_EQ(source.rows_read, V) << "every row read once";
        // Only the copy stays (the emulated cudaMalloc rounds to 256 bytes).
        EXPECT_EQ(t->bytes(), static_cast<std::uint64_t>(V * d) * (dtype == "float32" ? 4 : 2));
        EXPECT_GE(used_device_bytes() - before, t->bytes());
        EXPECT_LT(used_device_bytes() - before, t->bytes() + 256);
        EXPECT_EQ(t->float_row(3) != nullptr, dtype == "float32");
        expect_rows_of(res, *t, x, test::fresh_seed());
    }
}

// The guess sees only the sample; the device sees every value. A table the guess was wrong for
// is copied again in float32 (never beside its 16-bit copy), or not at all when float32 is not
// allowed; either way no device memory is left behind.
TEST(EmulatedDeviceTable, AValuePastTheSampleThatNeedsFloat32IsFoundOnTheDevice) {
    const std::int64_t V = 500, d = 16;
    std::vector<float> x = table_of("bfloat16", V, d, test::fresh_seed());
    x[(V - 1) * d + 3] = 1.0f + 0x1p-20f;
    for (const bool allow_float32 : {true, false}) {
        SCOPED_TRACE(allow_float32 ? "float32 allowed" : "16 bits only");
        CountingSource source(x, d);
        CudaResources res(0);
        (void)res.compute_stream();
        const std::uint64_t before = used_device_bytes();
        HoldRequest request;
        request.allow_float32 = allow_float32;
        request.sample_values = 64;
        request.piece_bytes = 64 * d * sizeof(float);
        const auto t = hold_on_device(res, source, request);
        if (!allow_float32) {
            EXPECT_FALSE(t);
            EXPECT_EQ(used_device_bytes(), before);
            continue;
        }
        ASSERT_TRUE(t);
        EXPECT_EQ(t->format(), HeldFormat::kFloat32);
        EXPECT_EQ(source.rows_read, 2 * V) << "read as 16-bit values, then again as float32";
        EXPECT_LT(used_device_bytes() - before, t->bytes() + 256);
        expect_rows_of(res, *t, x, test::fresh_seed());
    }
}

// A first piece that needs float32 decides at once: nothing more is read when float32 is not
// allowed.
TEST(EmulatedDeviceTable, AFirstPieceThatNeedsFloat32StopsA16BitOnlyHold) {
    const std::int64_t V = 400, d = 8;
    const std::vector<float> x = table_of("float32", V, d, test::fresh_seed());
    CountingSource source(x, d);
    CudaResources res(0);
    HoldRequest request;
    request.allow_float32 = false;
    request.piece_bytes = 100 * d * sizeof(float);
    const std::uint64_t before = used_device_bytes();
    EXPECT_FALSE(hold_on_device(res, source, request));
    EXPECT_EQ(source.rows_read, 100);
    EXPECT_EQ(used_device_bytes(), before);
}

}  // namespace
