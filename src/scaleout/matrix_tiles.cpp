#include "scaleout/matrix_tiles.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <new>
#include <system_error>
#include <vector>

#include "embgeom/errors.hpp"
#include "io/half_float.hpp"
#include "scaleout/job_ranks.hpp"

namespace embgeom::scaleout {
namespace {

constexpr int kTileTag = 7402;
// A tile travels as a header {row0, col0, rows, cols} and then its values, row-major, in pieces
// of at most this many values (64 MiB of float32: MPI counts are ints). rows < 0 ends a rank's
// stream. Where rank 0's file keeps float16, the values travel as float16: half the bytes, and
// float16 -> float32 -> float16 gives back every bit, so the file is the one-process file.
constexpr std::int64_t kPieceFloats = std::int64_t{16} << 20;
constexpr std::int64_t kEndOfTiles = -1;

// Each tile to rank 0, whole and in order: MPI keeps the order of one sender's messages on one
// communicator and tag, so the receiver takes the pieces from the header's sender.
class SendTilesToRoot final : public MatrixSink {
  public:
    SendTilesToRoot(MPI_Comm comm, bool float16) : comm_(comm), float16_(float16) {}

    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) override {
        if (tile.rows <= 0 || tile.cols <= 0) return;
        const std::int64_t total = tile.rows * tile.cols;
        std::int64_t header[4] = {row0, col0, tile.rows, tile.cols};
        if (float16_) {
            halves_.resize(static_cast<std::size_t>(total));
            for (std::int64_t r = 0; r < tile.rows; ++r)
                for (std::int64_t c = 0; c < tile.cols; ++c)
                    halves_[static_cast<std::size_t>(r * tile.cols + c)] =
                        io::float_to_half(tile.row(r)[c]);
            MPI_Send(header, 4, MPI_INT64_T, 0, kTileTag, comm_);
            for (std::int64_t at = 0; at < total; at += kPieceFloats)
                MPI_Send(halves_.data() + at, static_cast<int>(std::min(kPieceFloats, total - at)),
                         MPI_UINT16_T, 0, kTileTag, comm_);
            return;
        }
        // The values go row after row: a dense tile (the engines') as it is, others packed.
        const float* values = tile.data;
        if (tile.ld != tile.cols) {
            packed_.resize(static_cast<std::size_t>(total));
            for (std::int64_t r = 0; r < tile.rows; ++r)
                std::copy(tile.row(r), tile.row(r) + tile.cols, packed_.data() + r * tile.cols);
            values = packed_.data();
        }
        MPI_Send(header, 4, MPI_INT64_T, 0, kTileTag, comm_);
        for (std::int64_t at = 0; at < total; at += kPieceFloats)
            MPI_Send(values + at, static_cast<int>(std::min(kPieceFloats, total - at)), MPI_FLOAT,
                     0, kTileTag, comm_);
    }
    bool stores_float16() const override { return float16_; }

  private:
    MPI_Comm comm_;
    bool float16_;
    std::vector<float> packed_;
    std::vector<std::uint16_t> halves_;
};

// Stands for rank 0's file on the other ranks, where the shared pass sends the tiles instead.
class WrittenByRank0 final : public MatrixSink {
  public:
    explicit WrittenByRank0(bool float16) : float16_(float16) {}
    void write_tile(std::int64_t, std::int64_t, MatrixView<const float>) override {
        EMBGEOM_EXPECTS(false, "tiles of rank 0's matrix go through MatrixToRoot");
    }
    bool stores_float16() const override { return float16_; }

  private:
    bool float16_;
};

}  // namespace

std::unique_ptr<MatrixSink> matrix_written_by_rank0(bool float16) {
    return std::make_unique<WrittenByRank0>(float16);
}

MatrixToRoot::MatrixToRoot(MatrixSink& file_sink) : file_sink_(file_sink) {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    if (!job_ranks().root()) {
        try {
            sender_ = std::make_unique<SendTilesToRoot>(comm_, file_sink.stores_float16());
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
    const bool float16 = file_sink_.stores_float16();
    std::vector<float> tile, scratch;
    std::vector<std::uint16_t> halves, half_scratch;
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
                if (float16) halves.resize(static_cast<std::size_t>(total));
            } catch (...) {
                receive_failure_ = std::current_exception();
                keep = false;
            }
        }
        // A tile that will not be written still arrives whole, into a piece of scratch.
        const auto piece = static_cast<std::size_t>(std::min(kPieceFloats, total));
        if (!keep && scratch.size() < piece) scratch.resize(piece);
        if (!keep && float16 && half_scratch.size() < piece) half_scratch.resize(piece);
        for (std::int64_t at = 0; at < total; at += kPieceFloats) {
            const int count = static_cast<int>(std::min(kPieceFloats, total - at));
            if (float16)
                MPI_Recv(keep ? halves.data() + at : half_scratch.data(), count, MPI_UINT16_T,
                         from.MPI_SOURCE, kTileTag, comm_, MPI_STATUS_IGNORE);
            else
                MPI_Recv(keep ? tile.data() + at : scratch.data(), count, MPI_FLOAT,
                         from.MPI_SOURCE, kTileTag, comm_, MPI_STATUS_IGNORE);
        }
        if (!keep || drop_) continue;
        if (float16)
            std::transform(halves.begin(), halves.end(), tile.begin(),
                           [](std::uint16_t h) { return io::half_to_float(h); });
        try {
            file_sink_.write_tile(header[0], header[1],
                                  MatrixView<const float>(tile.data(), rows, cols));
        } catch (...) {
            receive_failure_ = std::current_exception();
        }
    }
}

}  // namespace embgeom::scaleout
