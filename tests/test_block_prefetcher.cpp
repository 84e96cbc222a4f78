// BlockPrefetcher: blocks arrive in order with the source's rows, read on another thread, never
// more than `depth` buffers ahead, errors surface at the block that failed, and an early end does
// not hang.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <chrono>
#include <random>
#include <thread>

#include "core/block_prefetcher.hpp"
#include "embgeom/errors.hpp"
#include "io/result_file.hpp"
#include "io/table_reader.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

/// A table in memory that records how it is read, and can fail at one row.
class RecordingSource final : public RowSource {
  public:
    RecordingSource(std::int64_t rows, std::int64_t cols, std::uint64_t seed)
        : rows_(rows), cols_(cols), data_(test::random_table(rows, cols, seed)) {}
    std::int64_t rows() const override { return rows_; }
    std::int64_t cols() const override { return cols_; }
    void read_rows(std::int64_t first, std::int64_t count, float* out) override {
        reader = std::this_thread::get_id();
        ++reads;
        if (fail_at >= first && fail_at < first + count)
            throw InputError("test.h5:/t: cannot read row " + std::to_string(fail_at));
        std::copy(data_.begin() + first * cols_, data_.begin() + (first + count) * cols_, out);
    }
    std::string describe() const override { return "test.h5:/t"; }
    const float* row(std::int64_t r) const { return data_.data() + r * cols_; }

    std::atomic<int> reads{0};
    std::thread::id reader;
    std::int64_t fail_at = -1;

  private:
    std::int64_t rows_, cols_;
    std::vector<float> data_;
};

class CountingAllocator final : public HostBufferAllocator {
  public:
    float* allocate(std::size_t floats) override {
        ++allocated;
        return new float[floats];
    }
    void deallocate(float* p) noexcept override {
        ++freed;
        delete[] p;
    }
    int allocated = 0, freed = 0;
};

bool wait_for(const std::function<bool()>& ready) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!ready()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

TEST(BlockPrefetcher, DeliversEveryBlockInOrderFromAnotherThread) {
    RecordingSource src(1000, 7, test::fresh_seed());
    std::vector<RowBlock> blocks{{0, 100}, {100, 0}, {900, 100}, {100, 333}, {0, 1000}, {999, 1}};
    for (int depth : {1, 2, 3, 8}) {
        SCOPED_TRACE(depth);
        BlockPrefetcher pf(src, blocks, depth);
        for (const RowBlock& b : blocks) {
            const auto lease = pf.next();
            ASSERT_EQ(lease.block.first, b.first);
            ASSERT_EQ(lease.block.count, b.count);
            for (std::int64_t r = 0; r < b.count; ++r)
                for (std::int64_t c = 0; c < 7; ++c)
                    ASSERT_EQ(lease.data[r * 7 + c], src.row(b.first + r)[c]) << r << "," << c;
            pf.release(lease);
        }
        EXPECT_THROW(pf.next(), ResourceError);  // past the last block
        EXPECT_NE(src.reader, std::this_thread::get_id());
    }
}

TEST(BlockPrefetcher, ReadsAtMostDepthBlocksAheadOfTheConsumer) {
    RecordingSource src(500, 4, test::fresh_seed());
    std::vector<RowBlock> blocks;
    for (std::int64_t r = 0; r < 500; r += 50) blocks.push_back({r, 50});
    CountingAllocator alloc;
    {
        BlockPrefetcher pf(src, blocks, 3, &alloc);
        EXPECT_EQ(alloc.allocated, 3);
        const auto a = pf.next();  // held: the reader may fill the two other buffers, no more
        ASSERT_TRUE(wait_for([&] { return src.reads.load() == 3; }));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_EQ(src.reads.load(), 3);
        pf.release(a);
        ASSERT_TRUE(wait_for([&] { return src.reads.load() == 4; }));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_EQ(src.reads.load(), 4);
        // Leaving with blocks unread and the reader waiting for a buffer must not hang.
    }
    EXPECT_EQ(alloc.freed, 3);
}

TEST(BlockPrefetcher, AReadErrorSurfacesAtItsBlock) {
    RecordingSource src(300, 3, test::fresh_seed());
    src.fail_at = 250;
    BlockPrefetcher pf(src, {{0, 100}, {100, 100}, {200, 100}, {0, 10}}, 2);
    for (int i = 0; i < 2; ++i) pf.release(pf.next());
    try {
        pf.next();
        FAIL() << "no error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot read row 250"), std::string::npos);
    }
    EXPECT_THROW(pf.next(), InputError);  // and again: the pass cannot go on
}

TEST(BlockPrefetcher, RejectsBlocksOutsideTheTable) {
    RecordingSource src(10, 2, 1);
    EXPECT_THROW(BlockPrefetcher(src, {{5, 6}}), ResourceError);
    EXPECT_THROW(BlockPrefetcher(src, {{0, 1}}, 0), ResourceError);
}

// HDF5 (Debian's build is not thread-safe) is read by the prefetcher's thread while this thread
// writes another file: io::hdf5_mutex() serialises the two, and both files come out right.
TEST(BlockPrefetcher, ReadsAnHdf5TableWhileAnotherFileIsWritten) {
    test::TempDir dir;
    const std::int64_t V = 4000, d = 24;
    const std::vector<float> table = test::random_table(V, d, test::fresh_seed());
    {
        ResultFile f(dir.file("in.h5"));
        f.write_matrix("/t", table.data(), V, d);
        f.commit();
    }
    Hdf5TableReader reader(dir.file("in.h5"), "/t");
    std::vector<RowBlock> blocks;
    for (std::int64_t r = 0; r < V; r += 97) blocks.push_back({r, std::min<std::int64_t>(97, V - r)});
    ResultFile out(dir.file("out.h5"));
    {
        const auto sink = out.create_table("/copy", V, d, StoredFloat::kFloat32);
        BlockPrefetcher pf(reader, blocks, 3);
        for (std::size_t b = 0; b < blocks.size(); ++b) {
            const auto lease = pf.next();
            for (std::int64_t i = 0; i < lease.block.count * d; ++i)
                ASSERT_EQ(lease.data[i], table[lease.block.first * d + i]);
            sink->write_tile(lease.block.first, 0, MatrixView<const float>(lease.data, lease.block.count, d));
            pf.release(lease);
        }
    }
    out.commit();
    Hdf5TableReader copy(dir.file("out.h5"), "/copy");
    std::vector<float> back(static_cast<std::size_t>(V * d));
    copy.read_rows(0, V, back.data());
    EXPECT_EQ(back, table);
}

}  // namespace
}  // namespace embgeom
