#pragma once
// Bit-for-bit equality of all-pairs results, NaN payloads included, for the invariants that
// promise the same bits: block size, thread count, budget (tests/test_cpu_all_pairs.cpp), and on
// CUDA where the rows come from (tests/test_cuda_held_table_gpu.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "embgeom/backend.hpp"

namespace embgeom::test {

inline std::vector<std::uint32_t> bits(const std::vector<float>& v) {
    std::vector<std::uint32_t> b(v.size());
    std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
    return b;
}
inline std::vector<std::uint64_t> bits(const std::vector<double>& v) {
    std::vector<std::uint64_t> b(v.size());
    std::memcpy(b.data(), v.data(), v.size() * sizeof(double));
    return b;
}
inline std::uint64_t bits(double v) {
    std::uint64_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
}

/// Every field of a and b, bit for bit (timings aside).
inline void expect_identical_results(const AllPairsResult& a, const AllPairsResult& b) {
    EXPECT_EQ(a.rows, b.rows);
    EXPECT_EQ(a.k, b.k);
    EXPECT_EQ(a.valid_rows, b.valid_rows);
    EXPECT_EQ(a.precision, b.precision);
    EXPECT_EQ(a.neighbor_index, b.neighbor_index);
    EXPECT_EQ(bits(a.neighbor_sim), bits(b.neighbor_sim));
    EXPECT_EQ(bits(a.row_mean), bits(b.row_mean));
    EXPECT_EQ(bits(a.row_sum_tiled), bits(b.row_sum_tiled));
    EXPECT_EQ(a.histogram, b.histogram);
    EXPECT_EQ(bits(a.pair_cos_sq_sum), bits(b.pair_cos_sq_sum));
    EXPECT_EQ(bits(a.normalized_sum), bits(b.normalized_sum));
    EXPECT_EQ(a.duplicates_truncated, b.duplicates_truncated);
    ASSERT_EQ(a.duplicates.size(), b.duplicates.size());
    for (std::size_t p = 0; p < a.duplicates.size(); ++p) {
        EXPECT_EQ(a.duplicates[p].i, b.duplicates[p].i);
        EXPECT_EQ(a.duplicates[p].j, b.duplicates[p].j);
        EXPECT_EQ(a.duplicates[p].cosine, b.duplicates[p].cosine);
    }
}

}  // namespace embgeom::test
