// io::ChunkAssembler: tiles of any shape, handed over from several threads in any order, become
// each chunk of the dataset once, encoded as HDF5's shuffle + deflate filters store it (decoded
// here by zlib, the library HDF5's filter reads with); cut chunks wait within their budget and
// go to HDF5's own path beyond it. The HDF5 round trip is in test_io_writer.cpp.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "io/matrix_chunks.hpp"
#include "support/test_support.hpp"

namespace {

using embgeom::io::ChunkAssembler;
using embgeom::io::ChunkLayout;

struct Rect {
    std::int64_t r0, c0, rows, cols;
};

ChunkLayout make_layout(std::int64_t rows, std::int64_t cols, std::int64_t chunk_rows,
                        std::int64_t chunk_cols, int esize, int gzip_level) {
    ChunkLayout l;
    l.rows = rows;
    l.cols = cols;
    l.chunk_rows = chunk_rows;
    l.chunk_cols = chunk_cols;
    l.esize = esize;
    l.gzip_level = gzip_level;
    return l;
}

// Cuts of [0, n): the ends, a few random cells and a few chunk-aligned ones.
std::vector<std::int64_t> random_cuts(std::int64_t n, std::int64_t chunk, std::mt19937_64& rng) {
    std::vector<std::int64_t> cuts{0, n};
    std::uniform_int_distribution<std::int64_t> cell(1, std::max<std::int64_t>(1, n - 1));
    for (int i = 0; i < 4; ++i) cuts.push_back(cell(rng));
    for (int i = 0; i < 2; ++i) cuts.push_back(std::min(n, cell(rng) / chunk * chunk));
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    return cuts;
}

// A partition of [rows, cols] into rectangles: row bands, each cut into columns its own way.
std::vector<Rect> random_tiling(const ChunkLayout& l, std::mt19937_64& rng) {
    std::vector<Rect> tiles;
    const std::vector<std::int64_t> bands = random_cuts(l.rows, l.chunk_rows, rng);
    for (std::size_t b = 0; b + 1 < bands.size(); ++b) {
        const std::vector<std::int64_t> cols = random_cuts(l.cols, l.chunk_cols, rng);
        for (std::size_t c = 0; c + 1 < cols.size(); ++c)
            tiles.push_back({bands[b], cols[c], bands[b + 1] - bands[b], cols[c + 1] - cols[c]});
    }
    std::shuffle(tiles.begin(), tiles.end(), rng);
    return tiles;
}

// What reached the "file": decoded chunks by their first cell, and pieces written the other way.
struct Written {
    std::mutex mutex;
    std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::uint8_t>> chunks;
    std::map<std::pair<std::int64_t, std::int64_t>, int> chunk_writes;
    std::vector<std::uint8_t> image;  // [rows, cols] raw, filled from the chunks and the pieces
    std::int64_t piece_cells = 0;
};

std::vector<std::uint8_t> decode(const ChunkLayout& l, const void* bytes, std::size_t size) {
    std::vector<std::uint8_t> raw(l.chunk_bytes());
    if (l.gzip_level == 0) {
        EXPECT_EQ(size, raw.size());
        std::memcpy(raw.data(), bytes, std::min(size, raw.size()));
        return raw;
    }
    std::vector<std::uint8_t> shuffled(l.chunk_bytes());
    uLongf n = static_cast<uLongf>(shuffled.size());
    EXPECT_EQ(
        uncompress(shuffled.data(), &n, static_cast<const Bytef*>(bytes), static_cast<uLong>(size)),
        Z_OK);
    EXPECT_EQ(n, shuffled.size());
    const std::size_t count = raw.size() / l.esize;
    for (std::size_t i = 0; i < count; ++i)
        for (int b = 0; b < l.esize; ++b) raw[i * l.esize + b] = shuffled[b * count + i];
    return raw;
}

std::unique_ptr<ChunkAssembler> make_assembler(const ChunkLayout& l, std::size_t budget,
                                               Written& w) {
    w.image.assign(static_cast<std::size_t>(l.rows * l.cols) * l.esize, 0);
    const std::size_t es = static_cast<std::size_t>(l.esize);
    return std::make_unique<ChunkAssembler>(
        l, budget,
        [&l, &w, es](std::int64_t r0, std::int64_t c0, const void* bytes, std::size_t size) {
            std::vector<std::uint8_t> raw = decode(l, bytes, size);
            const std::lock_guard<std::mutex> lock(w.mutex);
            ++w.chunk_writes[{r0, c0}];
            for (std::int64_t r = 0; r < l.chunk_rows; ++r)
                for (std::int64_t c = 0; c < l.chunk_cols; ++c) {
                    const std::uint8_t* cell = raw.data() + (r * l.chunk_cols + c) * es;
                    if (r0 + r < l.rows && c0 + c < l.cols)
                        std::memcpy(w.image.data() + ((r0 + r) * l.cols + c0 + c) * es, cell, es);
                    else  // past the extent: HDF5's fill value
                        EXPECT_TRUE(std::all_of(cell, cell + es, [](auto b) { return b == 0; }));
                }
            w.chunks[{r0, c0}] = std::move(raw);
        },
        [&l, &w, es](std::int64_t r0, std::int64_t c0, std::int64_t rows, std::int64_t cols,
                     const void* values, std::int64_t ld) {
            const std::lock_guard<std::mutex> lock(w.mutex);
            for (std::int64_t r = 0; r < rows; ++r)
                std::memcpy(w.image.data() + ((r0 + r) * l.cols + c0) * es,
                            static_cast<const std::uint8_t*>(values) + r * ld * es, cols * es);
            w.piece_cells += rows * cols;
        });
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937_64& rng) {
    std::vector<std::uint8_t> v(n);
    // Half the bytes small, half random: compressible the way float exponents are, not all.
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i % 2 ? rng() : rng() % 4);
    return v;
}

// Hands every tile of `tiles` to the assembler from `threads` threads (or one thread with a team),
// each tile as a view into a wider buffer (row pitch cols + 3).
void put_all(ChunkAssembler& a, const ChunkLayout& l, const std::vector<std::uint8_t>& ref,
             const std::vector<Rect>& tiles, int threads, bool team) {
    const std::size_t es = static_cast<std::size_t>(l.esize);
    const std::int64_t ld = l.cols + 3;
    std::vector<std::uint8_t> wide(static_cast<std::size_t>(l.rows * ld) * es);
    for (std::int64_t r = 0; r < l.rows; ++r)
        std::memcpy(wide.data() + r * ld * es, ref.data() + r * l.cols * es, l.cols * es);
    const auto run = [&](int first) {
        for (std::size_t t = first; t < tiles.size(); t += threads) {
            const Rect& x = tiles[t];
            a.put(x.r0, x.c0, x.rows, x.cols, wide.data() + (x.r0 * ld + x.c0) * es, ld, team);
        }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(run, t);
    for (std::thread& t : pool) t.join();
}

using Case = std::tuple<int /*esize*/, int /*gzip*/, int /*budget in chunks, -1 = plenty*/>;
class ChunkAssemblerCases : public ::testing::TestWithParam<Case> {};

TEST_P(ChunkAssemblerCases, EveryChunkOnceAndTheDatasetRebuildsBitForBit) {
    const auto [esize, gzip, budget_chunks] = GetParam();
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const ChunkLayout l =
        make_layout(300 + static_cast<std::int64_t>(rng() % 200),
                    250 + static_cast<std::int64_t>(rng() % 300), 64, 48, esize, gzip);
    const std::size_t budget =
        budget_chunks < 0 ? std::size_t{1} << 30 : budget_chunks * l.chunk_bytes();
    const std::vector<std::uint8_t> ref = random_bytes(l.rows * l.cols * esize, rng);
    const std::vector<Rect> tiles = random_tiling(l, rng);

    for (const bool team : {false, true}) {
        SCOPED_TRACE(team ? "one thread, with a team" : "four threads");
        Written w;
        auto a = make_assembler(l, budget, w);
        put_all(*a, l, ref, tiles, team ? 1 : 4, team);
        EXPECT_EQ(a->waiting_bytes(), 0u);  // every cut chunk got all its pieces
        EXPECT_LE(a->peak_waiting_bytes(), budget);
        for (const auto& [at, n] : w.chunk_writes) EXPECT_EQ(n, 1) << at.first << "," << at.second;
        EXPECT_TRUE(w.image == ref);
        const std::int64_t grid = ((l.rows + 63) / 64) * ((l.cols + 47) / 48);
        if (budget_chunks < 0) {
            EXPECT_EQ(a->pieces_past_budget(), 0);
            EXPECT_EQ(static_cast<std::int64_t>(w.chunk_writes.size()), grid);
            EXPECT_EQ(w.piece_cells, 0);
        } else {
            // Random cuts through 64 x 48 chunks: more cut chunks than a budget of a few holds.
            EXPECT_GT(a->pieces_past_budget(), 0);
            EXPECT_GT(w.piece_cells, 0);
            EXPECT_LT(static_cast<std::int64_t>(w.chunk_writes.size()), grid);
        }
        a->finish();  // nothing left to write
        EXPECT_EQ(w.chunk_writes.size(), w.chunks.size());
    }
}

INSTANTIATE_TEST_SUITE_P(, ChunkAssemblerCases,
                         ::testing::Combine(::testing::Values(2, 4), ::testing::Values(0, 1, 9),
                                            ::testing::Values(-1, 0, 3)));

// A tile computed twice (no engine does; a retry might) is handed over twice: each cell still
// holds its value, no chunk goes out before its last cell, and none waits forever.
TEST(ChunkAssembler, TilesHandedOverTwiceLeaveTheSameDataset) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const ChunkLayout l = make_layout(200 + static_cast<std::int64_t>(rng() % 100),
                                      180 + static_cast<std::int64_t>(rng() % 100), 32, 40, 2, 1);
    const std::vector<std::uint8_t> ref = random_bytes(l.rows * l.cols * 2, rng);
    std::vector<Rect> tiles = random_tiling(l, rng);
    const std::size_t once = tiles.size();
    for (std::size_t t = 0; t < once; ++t)
        if (rng() % 2) tiles.push_back(tiles[t]);
    std::shuffle(tiles.begin(), tiles.end(), rng);
    Written w;
    auto a = make_assembler(l, std::size_t{1} << 30, w);
    put_all(*a, l, ref, tiles, 3, false);
    EXPECT_EQ(a->waiting_bytes(), 0u);
    EXPECT_TRUE(w.image == ref);
    a->finish();
    EXPECT_TRUE(w.image == ref);
}

// A job that stops part way leaves cut chunks waiting; finish() writes them with what arrived
// (the cells that never did read as HDF5's fill value, 0), so nothing handed over is lost.
TEST(ChunkAssembler, FinishWritesTheChunksStillWaitingWithWhatArrived) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    const ChunkLayout l = make_layout(100, 90, 32, 32, 4, 1);
    const std::vector<std::uint8_t> ref = random_bytes(l.rows * l.cols * 4, rng);
    // Three tiles of a 2 x 2 split at (50, 40); the lower right one never comes.
    std::vector<Rect> tiles = {{0, 0, 50, 40}, {0, 40, 50, 50}, {50, 0, 50, 40}};
    Written w;
    auto a = make_assembler(l, std::size_t{1} << 20, w);
    put_all(*a, l, ref, tiles, 1, false);
    EXPECT_GT(a->waiting_bytes(), 0u);
    a->finish();
    EXPECT_EQ(a->waiting_bytes(), 0u);
    for (const auto& [at, n] : w.chunk_writes) EXPECT_EQ(n, 1);
    // Of the 4 x 3 chunks, (2, 2) and (3, 2) lie wholly in the missing tile: never written.
    EXPECT_EQ(w.chunk_writes.size(), 10u);
    EXPECT_FALSE(w.chunk_writes.count({64, 64}) || w.chunk_writes.count({96, 64}));
    for (std::int64_t r = 0; r < l.rows; ++r)
        for (std::int64_t c = 0; c < l.cols; ++c) {
            const bool arrived = r < 50 || c < 40;
            for (int b = 0; b < 4; ++b) {
                const std::size_t i = static_cast<std::size_t>((r * l.cols + c) * 4 + b);
                ASSERT_EQ(w.image[i], arrived ? ref[i] : 0) << r << "," << c;
            }
        }
}

TEST(ChunkAssembler, ShuffleIsHdf5sByteOrder) {
    // Elements 0x0A0B0C0D and 0x01020304 (little-endian): byte b of every element, in turn.
    const std::uint8_t in[8] = {0x0D, 0x0C, 0x0B, 0x0A, 0x04, 0x03, 0x02, 0x01};
    std::uint8_t out[8];
    embgeom::io::shuffle_bytes(in, 2, 4, out);
    const std::uint8_t want[8] = {0x0D, 0x04, 0x0C, 0x03, 0x0B, 0x02, 0x0A, 0x01};
    EXPECT_EQ(std::memcmp(out, want, 8), 0);
}

}  // namespace
