#include <gtest/gtest.h>

#include "embgeom/histogram_binning.hpp"

TEST(HistogramBinning, EdgesAndClamping) {
    const int bins = 2000;
    const float scale = 0.5f * bins;
    EXPECT_EQ(embgeom::histogram_bin(-1.0f, scale, bins), 0);
    EXPECT_EQ(embgeom::histogram_bin(1.0f, scale, bins), bins - 1);
    EXPECT_EQ(embgeom::histogram_bin(1.5f, scale, bins), bins - 1);
    EXPECT_EQ(embgeom::histogram_bin(-3.0f, scale, bins), 0);
    EXPECT_EQ(embgeom::histogram_bin(0.0f, scale, bins), bins / 2);
    EXPECT_EQ(embgeom::histogram_bin(-0.0005f, scale, bins), bins / 2 - 1);
}
