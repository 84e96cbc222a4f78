// Row blocks for passes over a table: resident rows are used in place, other sources copied; the
// per-token passes give the same bits either way.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/row_block_reader.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/row_source.hpp"
#include "pipeline/per_token_passes.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

// The same rows as a MemoryRowSource, but only through read_rows (like the HDF5 reader).
class CopyingSource final : public RowSource {
  public:
    explicit CopyingSource(MemoryRowSource& inner) : inner_(inner) {}
    std::int64_t rows() const override { return inner_.rows(); }
    std::int64_t cols() const override { return inner_.cols(); }
    void read_rows(std::int64_t first, std::int64_t count, float* out) override {
        ++reads;
        inner_.read_rows(first, count, out);
    }
    std::string describe() const override { return "copying"; }
    int reads = 0;

  private:
    MemoryRowSource& inner_;
};

std::vector<float> random_table(std::int64_t V, std::int64_t d, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.3f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(V * d));
    for (float& v : x) v = g(rng);
    return x;
}

TEST(RowBlockReader, ResidentRowsAreUsedInPlaceOthersCopied) {
    const std::int64_t V = 101, d = 7;
    std::vector<float> x = random_table(V, d, test::fresh_seed());
    MemoryRowSource dense(MatrixView<const float>(x.data(), V, d));
    RowBlockReader in_place(dense, 40);
    EXPECT_EQ(in_place.read(40, 40), x.data() + 40 * d);
    EXPECT_EQ(in_place.read(80, 21), x.data() + 80 * d);

    // A strided view is not dense: its rows are copied.
    MemoryRowSource strided(MatrixView<const float>(x.data(), V / 2, d - 1, d));
    EXPECT_EQ(strided.resident_rows(0, 10), nullptr);
    RowBlockReader copied(strided, 10);
    const float* rows = copied.read(3, 10);
    EXPECT_NE(rows, x.data() + 3 * d);
    for (std::int64_t r = 0; r < 10; ++r)
        for (std::int64_t c = 0; c < d - 1; ++c)
            EXPECT_EQ(rows[r * (d - 1) + c], x[(3 + r) * d + c]);
    EXPECT_THROW(copied.read(0, 11), ResourceError);
}

TEST(RowBlockReader, PerTokenPassesGiveTheSameBitsInPlaceAndCopied) {
    const std::int64_t V = 1003, d = 33;
    std::vector<float> x = random_table(V, d, test::fresh_seed());
    x[5 * d + 2] = NAN;  // one non-finite row
    MemoryRowSource dense(MatrixView<const float>(x.data(), V, d));
    CopyingSource copying(dense);
    std::vector<double> bias(static_cast<std::size_t>(d), 0.25);
    auto backend = make_cpu_backend(2);
    const PerToken a = per_token_passes(dense, *backend, 100, &bias);
    const PerToken b = per_token_passes(copying, *backend, 100, &bias);
    EXPECT_GT(copying.reads, 0);
    EXPECT_EQ(a.centroid, b.centroid);
    EXPECT_EQ(a.finite, b.finite);
    EXPECT_EQ(a.finite_rows, V - 1);
    const auto same_bits = [](const std::vector<float>& u, const std::vector<float>& v) {
        return u.size() == v.size() && std::memcmp(u.data(), v.data(), sizeof(float) * u.size()) == 0;
    };
    EXPECT_TRUE(same_bits(a.norms, b.norms));
    EXPECT_TRUE(same_bits(a.centered_norms, b.centered_norms));
    EXPECT_TRUE(same_bits(a.bias_norms, b.bias_norms));
}

}  // namespace
}  // namespace embgeom
