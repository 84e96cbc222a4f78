#pragma once
// Reads the row blocks a pass will need, in the order it needs them, on a thread of its own, into
// a small ring of host buffers: reading (HDF5, decompression, conversion to float32) overlaps the
// compute on the blocks already read. The CUDA engine gives it pinned buffers, so its copies to
// the device are asynchronous too; the CPU engine's streamed passes use plain ones.
//
// The RowSource is read only by the reader thread while a prefetcher lives; sources that share
// global state with other threads (HDF5) must serialise themselves (see io::Hdf5Lock).
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "embgeom/row_source.hpp"

namespace embgeom {

/// Rows [first, first + count) of a RowSource.
struct RowBlock {
    std::int64_t first = 0;
    std::int64_t count = 0;
};

/// Host memory for the prefetcher's buffers (pinned on the CUDA backend).
class HostBufferAllocator {
  public:
    virtual ~HostBufferAllocator() = default;
    /// @throws ResourceError when the memory is not available.
    virtual float* allocate(std::size_t floats) = 0;
    virtual void deallocate(float* p) noexcept = 0;
};

class BlockPrefetcher {
  public:
    /// One block handed to the consumer: valid until release(lease) (or the prefetcher's end).
    struct Lease {
        RowBlock block;
        const float* data = nullptr;  ///< block.count rows, leading dimension source.cols()
        int slot = -1;
    };

    /// Starts reading blocks[0], blocks[1], ... into `depth` buffers (>= 1) of the largest block's
    /// size, allocated up front by alloc (plain aligned memory when null). A consumer holding all
    /// `depth` leases stalls the reader until it releases one.
    /// @throws ResourceError when the buffers cannot be allocated.
    BlockPrefetcher(RowSource& source, std::vector<RowBlock> blocks, int depth = 2,
                    HostBufferAllocator* alloc = nullptr);
    /// Stops the reader (a read in flight finishes first) and frees the buffers.
    ~BlockPrefetcher();
    BlockPrefetcher(const BlockPrefetcher&) = delete;
    BlockPrefetcher& operator=(const BlockPrefetcher&) = delete;

    /// The next block in order, waiting for it. @throws what the reader's read_rows threw for it
    /// (and every later call throws it again); ResourceError after the last block.
    Lease next();
    /// Gives the lease's buffer back to the reader.
    void release(const Lease& lease);

  private:
    void read_loop();

    RowSource& source_;
    const std::vector<RowBlock> blocks_;
    HostBufferAllocator* alloc_;
    std::vector<float*> buffers_;
    std::unique_ptr<HostBufferAllocator> own_alloc_;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<int> free_slots_;          ///< buffers the reader may fill
    std::vector<int> filled_;              ///< slot of blocks_[i] once read, else -1
    std::size_t next_ = 0;                 ///< the block the consumer takes next
    std::size_t failed_at_ = SIZE_MAX;     ///< the block whose read threw
    std::exception_ptr failure_;
    bool stop_ = false;
    std::thread reader_;
};

}  // namespace embgeom
