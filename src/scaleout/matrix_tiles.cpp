#include "scaleout/matrix_tiles.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <new>
#include <system_error>
#include <vector>

#include "embgeom/errors.hpp"
#include "scaleout/job_ranks.hpp"

namespace embgeom::scaleout {
namespace {

constexpr int kTileTag = 7402;
// A tile travels as a header {row0, col0, rows, cols} and then its values, row-major, in pieces
// of at most this many floats (64 MiB: MPI counts are ints). rows < 0 ends a rank's stream.
constexpr std::int64_t kPieceFloats = std::int64_t{16} << 20;
constexpr std::int64_t kEndOfTiles = -1;

// Each tile to rank 0, whole and in order: MPI keeps the order of one sender's messages on one
// communicator and tag, so the receiver takes the pieces from the header's sender.
class SendTilesToRoot final : public MatrixSink {
  public:
    explicit SendTilesToRoot(MPI_Comm comm) : comm_(comm) {}

    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) override {
        if (tile.rows <= 0 || tile.cols <= 0) return;
        // The values go row after row: a dense tile (the engines') as it is, others packed.
        const float* values = tile.data;
        if (tile.ld != tile.cols) {
            packed_.resize(static_cast<std::size_t>(tile.rows * tile.cols));
            for (std::int64_t r = 0; r < tile.rows; ++r)
                std::copy(tile.row(r), tile.row(r) + tile.cols, packed_.data() + r * tile.cols);
            values = packed_.data();
        }
        std::int64_t header[4] = {row0, col0, tile.rows, tile.cols};
        MPI_Send(header, 4, MPI_INT64_T, 0, kTileTag, comm_);
        const std::int64_t total = tile.rows * tile.cols;
        for (std::int64_t at = 0; at < total; at += kPieceFloats)
            MPI_Send(values + at, static_cast<int>(std::min(kPieceFloats, total - at)), MPI_FLOAT,
                     0, kTileTag, comm_);
    }

  private:
    MPI_Comm comm_;
    std::vector<float> packed_;
};

// Stands for rank 0's file on the other ranks, where the shared pass sends the tiles instead.
class WrittenByRank0 final : public MatrixSink {
  public:
    void write_tile(std::int64_t, std::int64_t, MatrixView<const float>) override {
        EMBGEOM_EXPECTS(false, "tiles of rank 0's matrix go through MatrixToRoot");
    }
};

}  // namespace

std::unique_ptr<MatrixSink> matrix_written_by_rank0() { return std::make_unique<WrittenByRank0>(); }

MatrixToRoot::MatrixToRoot(MatrixSink& file_sink) : file_sink_(file_sink) {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    if (!job_ranks().root()) {
        try {
            sender_ = std::make_unique<SendTilesToRoot>(comm_);
        } catch (...) {
            // No destructor runs for a constructor that throws: rank 0 must still hear the end.
            finish(true);
            MPI_Comm_free(&comm_);
            throw;
        }
        return;
    }
    try {
        receiver_ = std::thread([this] { receive_every_rank(); });
    } catch (const std::system_error&) {
        // No thread: end() receives instead, after rank 0's own share (the senders wait).
    }
}

MatrixToRoot::~MatrixToRoot() {
    if (!ended_) finish(true);
    MPI_Comm_free(&comm_);
}

MatrixSink* MatrixToRoot::sink() { return job_ranks().root() ? &file_sink_ : sender_.get(); }

void MatrixToRoot::end() {
    finish(false);
    if (receive_failure_) std::rethrow_exception(receive_failure_);
}

void MatrixToRoot::end_after_failure() noexcept { finish(true); }

void MatrixToRoot::finish(bool failed) noexcept {
    if (ended_) return;
    ended_ = true;
    if (!job_ranks().root()) {
        std::int64_t header[4] = {0, 0, kEndOfTiles, 0};
        MPI_Send(header, 4, MPI_INT64_T, 0, kTileTag, comm_);
        return;
    }
    if (failed) drop_ = true;  // the pass fails anyway: the rest need not reach the disk
    if (receiver_.joinable())
        receiver_.join();
    else
        receive_every_rank();
}

MPI_Status MatrixToRoot::wait_for_header() const {
    // A blocking receive spins a core in MPICH and Open MPI alike, and rank 0's own share needs
    // its cores for the whole pass: probe, and sleep between probes (at most 2 ms: a tile takes
    // longer than that to compute), so waiting costs next to nothing.
    std::chrono::microseconds nap(20);
    for (;;) {
        int arrived = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, kTileTag, comm_, &arrived, &status);
        if (arrived) return status;
        std::this_thread::sleep_for(nap);
        nap = std::min(nap * 2, std::chrono::microseconds(2000));
    }
}

void MatrixToRoot::receive_every_rank() noexcept {
    std::vector<float> tile, scratch;
    for (int ended = 0; ended < job_ranks().size - 1;) {
        const MPI_Status from = wait_for_header();
        std::int64_t header[4] = {};
        MPI_Recv(header, 4, MPI_INT64_T, from.MPI_SOURCE, kTileTag, comm_, MPI_STATUS_IGNORE);
        const std::int64_t rows = header[2], cols = header[3];
        if (rows == kEndOfTiles) {
            ++ended;
            continue;
        }
        const std::int64_t total = rows * cols;
        bool keep = !drop_ && !receive_failure_;
        if (keep) {
            try {
                tile.resize(static_cast<std::size_t>(total));
            } catch (...) {
                receive_failure_ = std::current_exception();
                keep = false;
            }
        }
        // A tile that will not be written still arrives whole, into a piece of scratch.
        const auto piece = static_cast<std::size_t>(std::min(kPieceFloats, total));
        if (!keep && scratch.size() < piece) scratch.resize(piece);
        for (std::int64_t at = 0; at < total; at += kPieceFloats)
            MPI_Recv(keep ? tile.data() + at : scratch.data(),
                     static_cast<int>(std::min(kPieceFloats, total - at)), MPI_FLOAT,
                     from.MPI_SOURCE, kTileTag, comm_, MPI_STATUS_IGNORE);
        if (!keep || drop_) continue;
        try {
            file_sink_.write_tile(header[0], header[1],
                                  MatrixView<const float>(tile.data(), rows, cols));
        } catch (...) {
            receive_failure_ = std::current_exception();
        }
    }
}

}  // namespace embgeom::scaleout
