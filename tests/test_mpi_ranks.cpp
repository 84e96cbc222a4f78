// embgeom analyze as an MPI job of real ranks (mpiexec, the build's MPI library), on the CPU and
// on the emulated CUDA backend, against the same job in one process: tests/python/check_mpi_ranks.py
// (the files bit for bit, and the one-line agreed errors of a failing rank). Skips, with the
// reason, in a build without MPI.
#include <gtest/gtest.h>

#include "support/test_support.hpp"

#ifndef EMBGEOM_MPIEXEC
#define EMBGEOM_MPIEXEC ""
#endif

namespace embgeom {
namespace {

TEST(MpiRanks, AJobOfTwoOrThreeRanksWritesTheOneProcessFileAndAgreesOnFailures) {
    const std::string mpiexec = EMBGEOM_MPIEXEC;
    if (mpiexec.empty()) GTEST_SKIP() << "built without MPI (EMBGEOM_MPI=OFF or no MPI library)";
    // A test binary carried to another machine (scripts/gpu-validate) may find no launcher there.
    if (!test::file_exists(mpiexec)) GTEST_SKIP() << mpiexec << " is not on this machine";
    const std::string emulated =
        test::file_exists(EMBGEOM_EMULATED_BINARY) ? EMBGEOM_EMULATED_BINARY : "";
    test::TempDir dir;
    const test::CommandResult r = test::run_python_file(
        "check_mpi_ranks.py",
        test::shell_quote(test::embgeom_binary()) + " " +
            test::shell_quote(emulated) + " " + test::shell_quote(mpiexec) + " " +
            test::shell_quote(dir.path()) + " " + std::to_string(test::fresh_seed() % 1000000));
    EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace embgeom
