// embgeom analyze as an MPI job of real ranks (mpiexec, the build's MPI library), on the CPU and
// on the emulated CUDA backend, against the same job in one process: tests/python/check_mpi_ranks.py
// (the files bit for bit, and the one-line agreed errors of a failing rank). Skips, with the
// reason, in a build without MPI.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"

#ifndef EMBGEOM_MPIEXEC
#define EMBGEOM_MPIEXEC ""
#endif

namespace embgeom {
namespace {

const std::string kMpiexec = EMBGEOM_MPIEXEC;

// Why these tests cannot start an MPI job here, or "" where they can.
std::string why_no_mpiexec() {
    if (kMpiexec.empty()) return "built without MPI (EMBGEOM_MPI=OFF or no MPI library)";
    // A test binary carried to another machine (scripts/gpu-validate) may find no launcher there.
    if (!test::file_exists(kMpiexec)) return kMpiexec + " is not on this machine";
    return "";
}

// A probe of tests/mpi/ on 3 ranks; each writes what it saw to dir/rank<R>.txt.
test::CommandResult run_probe_on_three_ranks(const std::string& probe, const test::TempDir& dir) {
    return test::run_command("timeout 120 " + test::shell_quote(kMpiexec) + " -n 3 " +
                             test::shell_quote(probe) + " " + test::shell_quote(dir.path()));
}

TEST(MpiRanks, AJobOfTwoOrThreeRanksWritesTheOneProcessFileAndAgreesOnFailures) {
    if (const std::string why = why_no_mpiexec(); !why.empty()) GTEST_SKIP() << why;
    const std::string emulated =
        test::file_exists(EMBGEOM_EMULATED_BINARY) ? EMBGEOM_EMULATED_BINARY : "";
    test::TempDir dir;
    const test::CommandResult r = test::run_python_file(
        "check_mpi_ranks.py",
        test::shell_quote(test::embgeom_binary()) + " " +
            test::shell_quote(emulated) + " " + test::shell_quote(kMpiexec) + " " +
            test::shell_quote(dir.path()) + " " + std::to_string(test::fresh_seed() % 1000000));
    EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out << r.err;
}

// Rank 1's share cannot be added to rank 0's (tests/mpi/transfer_failures.cpp): rank 0 still takes
// rank 2's share, every rank finishes the reduction and the broadcast, and all learn rank 0's
// failure in one agreement.
TEST(MpiRanks, TransfersRunToTheirEndWhenARankFails) {
    if (const std::string why = why_no_mpiexec(); !why.empty()) GTEST_SKIP() << why;
#ifdef EMBGEOM_MPI_TRANSFER_PROBE
    test::TempDir dir;
    const test::CommandResult r = run_probe_on_three_ranks(EMBGEOM_MPI_TRANSFER_PROBE, dir);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    // Rank 0 failed adding rank 1's share and added nothing after it (its histogram stays its own
    // 1); the broadcast still gave every rank rank 0's result, and every rank learnt of the
    // failure. Each rank wrote its own file (the launcher interleaves the ranks' stdout).
    for (int rank = 0; rank < 3; ++rank) {
        std::ifstream in(dir.file("rank" + std::to_string(rank) + ".txt"));
        std::string mine;
        ASSERT_TRUE(std::getline(in, mine)) << "rank " << rank << " wrote nothing; " << r.err;
        EXPECT_NE(mine.find("agreed: internal check failed: every share ran the same plan"),
                  std::string::npos)
            << "rank " << rank << ": " << mine;
        EXPECT_NE(mine.find("histogram[0] 1"), std::string::npos) << "rank " << rank << ": " << mine;
    }
#endif
}

// --write-matrix's tiles on their way to rank 0 (tests/mpi/matrix_tiles_to_root.cpp): every tile
// arrives whole and in place, also one sent in two pieces; when rank 0's file fails and another
// rank's share fails, every rank still ends, rank 0 writes nothing after its failure, and all
// agree on rank 0's error.
TEST(MpiRanks, MatrixTilesReachRankZeroAndFailuresLeaveNoRankWaiting) {
    if (const std::string why = why_no_mpiexec(); !why.empty()) GTEST_SKIP() << why;
#ifdef EMBGEOM_MPI_MATRIX_TILES_PROBE
    test::TempDir dir;
    const test::CommandResult r = run_probe_on_three_ranks(EMBGEOM_MPI_MATRIX_TILES_PROBE, dir);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    std::vector<std::string> lines[3];
    for (int rank = 0; rank < 3; ++rank) {
        std::ifstream in(dir.file("rank" + std::to_string(rank) + ".txt"));
        for (std::string line; std::getline(in, line);) lines[rank].push_back(line);
        ASSERT_EQ(lines[rank].size(), 2u) << "rank " << rank << "; " << r.err;
    }
    if (lines[0][0] == "threads may not take turns")
        GTEST_SKIP() << "this MPI library does not provide MPI_THREAD_SERIALIZED";
    // 5x5 + 4100x4100 + 3 x 7x9 values; the order the tiles came in varies.
    EXPECT_EQ(lines[0][0].rfind("whole: 5 tiles, 16810214 values;", 0), 0u) << lines[0][0];
    EXPECT_EQ(lines[0][0].find("WRONG"), std::string::npos) << lines[0][0];
    EXPECT_NE(lines[0][0].find("[10,5000 4100x4100 right]"), std::string::npos) << lines[0][0];
    EXPECT_EQ(lines[0][1], "failures: failed: the disk is full; agreed: the disk is full; "
                           "file took 1 tiles");
    EXPECT_EQ(lines[1][1], "failures: ended; agreed: the disk is full");
    EXPECT_EQ(lines[2][1], "failures: failed: rank 2's share failed; agreed: the disk is full");
#endif
}

}  // namespace
}  // namespace embgeom
