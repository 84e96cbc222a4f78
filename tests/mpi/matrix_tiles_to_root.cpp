// Run by MpiRanks.MatrixTilesReachRankZeroAndFailuresLeaveNoRankWaiting under mpiexec with 3
// ranks: the tiles of --write-matrix on their way to rank 0 (scaleout/matrix_tiles.hpp).
//  1. Every tile arrives whole and in place: rank 1 sends a 4100 x 4100 tile held with a row
//     pitch wider than its columns (more values than one message piece, so it travels in two),
//     rank 2 three small ones, rank 0 writes one of its own beside them.
//  2. Failures: rank 0's file fails on the first tile it takes, rank 2's share fails
//     after one tile, rank 1 sends three tiles of 9 MB (past MPI's eager limit: each send waits
//     for rank 0 to receive it). Every rank must still end, rank 0 with its write failure, and
//     no tile may reach the file after it.
// Each rank writes what it saw to FOLDER/rank<R>.txt (the launcher interleaves the ranks' stdout).
#include <cstdint>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "scaleout/job_ranks.hpp"
#include "scaleout/matrix_tiles.hpp"

using namespace embgeom;

namespace {

// A value no other cell of the matrix has, in float exactly (below 2^24).
float cell(std::int64_t r, std::int64_t c) { return static_cast<float>((r * 7919 + c) % 16000000); }

// rows x cols cells at (row0, col0), held with `pitch` values per row.
std::vector<float> tile_at(std::int64_t row0, std::int64_t col0, std::int64_t rows,
                           std::int64_t cols, std::int64_t pitch) {
    std::vector<float> t(static_cast<std::size_t>(rows * pitch), -1.0f);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) t[r * pitch + c] = cell(row0 + r, col0 + c);
    return t;
}

void send(MatrixSink& sink, std::int64_t row0, std::int64_t col0, std::int64_t rows,
          std::int64_t cols, std::int64_t pitch) {
    const std::vector<float> t = tile_at(row0, col0, rows, cols, pitch);
    sink.write_tile(row0, col0, MatrixView<const float>(t.data(), rows, cols, pitch));
}

// Rank 0's file: notes each tile and whether every cell holds its own value; from the
// `fail_from`-th tile on (counting from 1) it fails.
class CheckingSink final : public MatrixSink {
  public:
    explicit CheckingSink(int fail_from) : fail_from_(fail_from) {}
    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) override {
        const std::lock_guard<std::mutex> lock(mutex_);
        ++tiles_;
        if (fail_from_ > 0 && tiles_ >= fail_from_) throw ResourceError("the disk is full");
        bool right = tile.ld == tile.cols;
        for (std::int64_t r = 0; r < tile.rows && right; ++r)
            for (std::int64_t c = 0; c < tile.cols; ++c)
                right = right && tile.data[r * tile.ld + c] == cell(row0 + r, col0 + c);
        seen_ << " [" << row0 << "," << col0 << " " << tile.rows << "x" << tile.cols
              << (right ? " right]" : " WRONG]");
        written_ += tile.rows * tile.cols;
    }
    std::string seen() const { return seen_.str(); }
    std::int64_t written() const { return written_; }
    int tiles() const { return tiles_; }

  private:
    std::mutex mutex_;
    int fail_from_;
    int tiles_ = 0;
    std::int64_t written_ = 0;
    std::ostringstream seen_;
};

}  // namespace

int main(int argc, char** argv) {
    scaleout::MpiSession mpi(argc, argv);
    const scaleout::JobRanks& ranks = scaleout::job_ranks();
    if (ranks.size != 3 || argc != 2) {
        std::cerr << "usage: mpiexec -n 3 embgeom_mpi_matrix_tiles FOLDER\n";
        return 2;
    }
    std::ofstream out(std::string(argv[1]) + "/rank" + std::to_string(ranks.rank) + ".txt");
    if (!scaleout::ranks_can_send_matrix_tiles()) {
        out << "threads may not take turns\n";
        return 0;
    }

    // 1. Whole tiles, in place.
    {
        CheckingSink file(0);
        scaleout::MatrixToRoot matrix(file);
        MatrixSink& sink = *matrix.sink();
        if (ranks.rank == 0) send(sink, 0, 0, 5, 5, 5);
        if (ranks.rank == 1) send(sink, 10, 5000, 4100, 4100, 4103);
        if (ranks.rank == 2)
            for (int i = 0; i < 3; ++i) send(sink, 100 * i, 200, 7, 9, 9);
        matrix.end();
        if (ranks.rank == 0)
            out << "whole: " << file.tiles() << " tiles, " << file.written() << " values;"
                << file.seen() << "\n";
        else
            out << "whole: sent\n";
    }

    // 2. Failures on both sides.
    CheckingSink file(1);
    std::string seen;
    ExitCode code = ExitCode::kOk;
    std::string message;
    {
        scaleout::MatrixToRoot matrix(file);
        MatrixSink& sink = *matrix.sink();
        try {
            if (ranks.rank == 1)
                for (int i = 0; i < 3; ++i) send(sink, 1500 * i, 4000, 1500, 1500, 1500);
            if (ranks.rank == 2) {
                send(sink, 0, 9000, 1500, 1500, 1500);
                throw InputError("rank 2's share failed");
            }
            matrix.end();
            seen = "ended";
        } catch (const Error& e) {
            matrix.end_after_failure();  // nothing to do where end() threw
            seen = std::string("failed: ") + e.what();
            code = e.code();
            message = e.what();
        }
    }
    try {
        scaleout::agree(code, message);
        seen += "; agreed: none failed";
    } catch (const scaleout::RanksAgreedError& e) {
        seen += std::string("; agreed: ") + e.what();
    }
    out << "failures: " << seen;
    if (ranks.rank == 0) out << "; file took " << file.tiles() << " tiles";
    out << "\n";
    return 0;
}
