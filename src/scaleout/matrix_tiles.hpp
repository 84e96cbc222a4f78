#pragma once
// --write-matrix in an MPI job: the cosine matrix of a shared all-pairs pass is written by rank 0
// alone (the one output file), from tiles every rank computes. Each rank other than 0 sends its
// tiles to rank 0 as its share produces them; on rank 0 a receiving thread hands them to the
// file's sink beside rank 0's own. Nothing waits for a whole share: a rank's memory holds one
// tile in flight, the matrix is written once, and a sender is slowed to the rate rank 0 writes.
//
// Why a thread and not a step after the pass: a share of the matrix is V^2 / R values, more than
// a rank can hold (128k tokens over 4 ranks: 16 GB of float32 each), and spilling it to a disk
// doubles the matrix's I/O. The ranks' sinks are called from their engines' threads, one call at
// a time, while the main thread makes no MPI call: MPI_THREAD_SERIALIZED is all this needs.
//
// Failures never leave a rank waiting: every rank other than 0 ends its stream with a marker
// whether its share succeeded or not, and rank 0 receives until every rank has (dropping tiles
// after a failure), before the ranks agree on the pass.
#include <atomic>
#include <exception>
#include <memory>
#include <thread>

#include <mpi.h>

#include "embgeom/backend.hpp"

namespace embgeom::scaleout {

/// The matrix of one shared all-pairs pass on its way to rank 0's file. Every rank constructs one
/// (a collective step) around its share and calls end() after it, whether the share succeeded
/// or not.
class MatrixToRoot {
  public:
    /// @param[in] file_sink  on rank 0, the output file's sink; it must take tiles from two
    ///                       threads at once (ResultFile's do). Unused on the other ranks.
    explicit MatrixToRoot(MatrixSink& file_sink);
    /// Ends the stream as end_after_failure() would if end() was not called.
    ~MatrixToRoot();
    MatrixToRoot(const MatrixToRoot&) = delete;
    MatrixToRoot& operator=(const MatrixToRoot&) = delete;

    /// What this rank's share writes its tiles to: the file's sink on rank 0, a sender elsewhere.
    MatrixSink* sink();

    /// After this rank's share succeeded: elsewhere, tells rank 0 no more tiles come; on rank 0,
    /// waits until every rank has said so and every tile is written.
    /// @throws on rank 0, the first failure to receive or write a tile.
    void end();
    /// After this rank's share failed: as end(), but rank 0 drops the tiles still coming and
    /// nothing is thrown.
    void end_after_failure() noexcept;

  private:
    void receive_every_rank() noexcept;  // rank 0: until every other rank's end marker
    MPI_Status wait_for_header() const;  // rank 0: the next tile's (or end marker's) sender
    void finish(bool failed) noexcept;

    MPI_Comm comm_ = MPI_COMM_NULL;  // the tiles' own communicator: never matched by collectives
    MatrixSink& file_sink_;
    std::unique_ptr<MatrixSink> sender_;  // ranks other than 0
    std::thread receiver_;                // rank 0
    std::atomic<bool> drop_{false};       // rank 0: a failure happened; receive, write nothing
    std::exception_ptr receive_failure_;  // rank 0: the first, set by the receiver
    bool ended_ = false;
};

}  // namespace embgeom::scaleout
