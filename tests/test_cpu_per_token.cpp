// The CPU backend's per-token calls (the reference the CUDA backend is compared with) against a
// float64 computation on fresh random rows: norms and finite flags, column sums in row order, and
// the distances to several points from one call.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "embgeom/backend.hpp"
#include "support/test_support.hpp"

namespace {

using namespace embgeom;

TEST(CpuPerToken, NormsSumsAndDistancesToEveryPointMatchFloat64) {
    const std::int64_t V = 517, d = 43;
    std::vector<float> x = test::random_table(V, d, test::fresh_seed(), 0.7f);
    x[5 * d + 3] = std::numeric_limits<float>::quiet_NaN();
    x[9 * d] = std::numeric_limits<float>::infinity();
    const auto backend = make_backend(BackendKind::kCpu, 2);
    const MatrixView<const float> view(x.data(), V, d);

    std::vector<float> norms(V);
    std::vector<std::uint8_t> finite(V);
    std::vector<double> sums(d, 0.0);
    const std::int64_t split = 200;  // two blocks: the sums continue in row order
    backend->row_norms_and_sums(view.slice_rows(0, split), norms.data(), finite.data(),
                                sums.data());
    backend->row_norms_and_sums(view.slice_rows(split, V - split), norms.data() + split,
                                finite.data() + split, sums.data());
    std::vector<double> ref_sums(d, 0.0);
    for (std::int64_t r = 0; r < V; ++r) {
        const bool ok = r != 5 && r != 9;
        ASSERT_EQ(finite[r], ok ? 1 : 0) << "row " << r;
        if (!ok) {
            EXPECT_TRUE(std::isnan(norms[r])) << "row " << r;
            continue;
        }
        double s = 0.0;
        for (std::int64_t c = 0; c < d; ++c) {
            s += double(x[r * d + c]) * x[r * d + c];
            ref_sums[c] += x[r * d + c];
        }
        EXPECT_EQ(norms[r], static_cast<float>(std::sqrt(s))) << "row " << r;
    }
    for (std::int64_t c = 0; c < d; ++c) EXPECT_EQ(sums[c], ref_sums[c]) << "column " << c;

    std::vector<double> a(d), b(d);
    for (std::int64_t c = 0; c < d; ++c) {
        a[c] = ref_sums[c] / (V - 2);
        b[c] = 0.1 * c - 2.0;
    }
    std::vector<float> da(V), db(V), alone(V);
    backend->distances_to_points(view, {a.data(), b.data()}, {da.data(), db.data()});
    backend->distances_to_points(view, {b.data()}, {alone.data()});
    for (std::int64_t r = 0; r < V; ++r) {
        double sa = 0.0, sb = 0.0;
        for (std::int64_t c = 0; c < d; ++c) {
            sa += (x[r * d + c] - a[c]) * (x[r * d + c] - a[c]);
            sb += (x[r * d + c] - b[c]) * (x[r * d + c] - b[c]);
        }
        if (r == 5 || r == 9) {
            EXPECT_FALSE(std::isfinite(da[r])) << "row " << r;
            continue;
        }
        EXPECT_EQ(da[r], static_cast<float>(std::sqrt(sa))) << "row " << r;
        EXPECT_EQ(db[r], static_cast<float>(std::sqrt(sb))) << "row " << r;
        EXPECT_EQ(alone[r], db[r]) << "row " << r << ": the same with or without another point";
    }
}

}  // namespace
