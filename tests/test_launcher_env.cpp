// What the environment says about the launcher that started the process (scaleout/launcher_env):
// how many copies it started, and the one-line error for copies that did not join one job, in
// both of its wordings (a build with MPI, and one without, which CI does not build).
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "scaleout/launcher_env.hpp"

namespace embgeom {
namespace {

// Sets (or, with nullopt, removes) environment variables for one scope, and restores them.
class ScopedEnv {
  public:
    ScopedEnv(std::initializer_list<std::pair<const char*, std::optional<std::string>>> vars) {
        for (const auto& [name, value] : vars) {
            const char* old = std::getenv(name);
            saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
            if (value) ::setenv(name, value->c_str(), 1);
            else ::unsetenv(name);
        }
    }
    ~ScopedEnv() {
        for (const auto& [name, value] : saved_) {
            if (value) ::setenv(name.c_str(), value->c_str(), 1);
            else ::unsetenv(name.c_str());
        }
    }

  private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

const std::optional<std::string> kUnset;

ScopedEnv no_launcher() {
    return ScopedEnv({{"PMI_RANK", kUnset},
                      {"PMI_SIZE", kUnset},
                      {"PMIX_RANK", kUnset},
                      {"OMPI_COMM_WORLD_SIZE", kUnset},
                      {"MV2_COMM_WORLD_SIZE", kUnset},
                      {"SLURM_STEP_NUM_TASKS", kUnset},
                      {"SLURM_PROCID", kUnset}});
}

TEST(LauncherEnv, CountsTheCopiesTheLauncherStarted) {
    const ScopedEnv clean = no_launcher();
    EXPECT_FALSE(scaleout::started_by_mpi_launcher());
    EXPECT_EQ(scaleout::copies_the_launcher_started().count, 1);
    {
        const ScopedEnv pmi({{"PMI_SIZE", "4"}, {"PMI_RANK", "2"}});
        EXPECT_TRUE(scaleout::started_by_mpi_launcher());
        const scaleout::LauncherCopies c = scaleout::copies_the_launcher_started();
        EXPECT_EQ(c.count, 4);
        EXPECT_EQ(c.variable, "PMI_SIZE");
    }
    {
        const ScopedEnv ompi({{"OMPI_COMM_WORLD_SIZE", "6"}});
        EXPECT_EQ(scaleout::copies_the_launcher_started().variable, "OMPI_COMM_WORLD_SIZE");
        EXPECT_EQ(scaleout::copies_the_launcher_started().count, 6);
    }
    {
        // A Slurm step's task count means copies of one MPI job only where PMIx started them.
        const ScopedEnv slurm({{"SLURM_STEP_NUM_TASKS", "8"}});
        EXPECT_FALSE(scaleout::started_by_mpi_launcher());
        EXPECT_EQ(scaleout::copies_the_launcher_started().count, 1);
        const ScopedEnv pmix({{"PMIX_RANK", "3"}});
        EXPECT_TRUE(scaleout::started_by_mpi_launcher());
        EXPECT_EQ(scaleout::copies_the_launcher_started().count, 8);
        EXPECT_EQ(scaleout::copies_the_launcher_started().variable, "SLURM_STEP_NUM_TASKS");
    }
    for (const char* junk : {"", "4x", "0", "-3", "99999999999"}) {
        const ScopedEnv bad({{"PMI_SIZE", std::string(junk)}});
        EXPECT_EQ(scaleout::copies_the_launcher_started().count, 1) << "'" << junk << "'";
    }
}

TEST(LauncherEnv, CopiesApartErrorNamesTheCountAndWhatTheBuildSpeaks) {
    const scaleout::LauncherCopies four{4, "PMI_SIZE"};
    EXPECT_EQ(scaleout::copies_apart_error({}, 1, "MPICH Version: 4.0.2"), "");
    EXPECT_EQ(scaleout::copies_apart_error(four, 4, "MPICH Version: 4.0.2"), "");  // one job
    const std::string with_mpi = scaleout::copies_apart_error(four, 1, "MPICH Version: 4.0.2");
    EXPECT_EQ(with_mpi.rfind("the launcher started 4 copies of embgeom (PMI_SIZE=4) but they did "
                             "not join one MPI job: this embgeom speaks MPICH Version: 4.0.2, ",
                             0),
              0u)
        << with_mpi;
    EXPECT_NE(with_mpi.find("or start one copy"), std::string::npos) << with_mpi;
    const std::string without = scaleout::copies_apart_error(four, 1, "built without MPI");
    EXPECT_NE(without.find("this embgeom is built without MPI (rebuild it with -DEMBGEOM_MPI=ON)"),
              std::string::npos)
        << without;
    EXPECT_EQ(with_mpi.find('\n'), std::string::npos);
    EXPECT_EQ(without.find('\n'), std::string::npos);
}

// srun without an MPI plugin sets only Slurm's variables: task 0 notes that the copies are alone
// (a notice: one task of several may be the only one running embgeom); nothing under a launcher
// of an MPI, in a one-task step, in a job of several ranks, or from the other tasks.
TEST(LauncherEnv, SrunCopiesWithoutAnMpiPluginGetANoticeFromTaskZero) {
    const ScopedEnv clean = no_launcher();
    EXPECT_EQ(scaleout::srun_copies_apart_notice(1), "");
    const ScopedEnv slurm({{"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_PROCID", "0"}});
    const std::string notice = scaleout::srun_copies_apart_notice(1);
    EXPECT_EQ(notice.rfind("srun started 4 tasks (SLURM_STEP_NUM_TASKS=4) and this embgeom joined "
                           "no MPI job",
                           0),
              0u)
        << notice;
    EXPECT_NE(notice.find("--mpi=pmix or --mpi=pmi2"), std::string::npos) << notice;
    EXPECT_EQ(notice.find('\n'), std::string::npos);
    EXPECT_EQ(scaleout::srun_copies_apart_notice(4), "");  // they did join one job
    {
        const ScopedEnv other({{"SLURM_PROCID", "2"}});
        EXPECT_EQ(scaleout::srun_copies_apart_notice(1), "");
    }
    {
        const ScopedEnv one({{"SLURM_STEP_NUM_TASKS", "1"}});
        EXPECT_EQ(scaleout::srun_copies_apart_notice(1), "");
    }
    {
        const ScopedEnv pmix({{"PMIX_RANK", "0"}});  // the copies error's case, not this one
        EXPECT_EQ(scaleout::srun_copies_apart_notice(1), "");
    }
}

}  // namespace
}  // namespace embgeom
