// A batch job's control-group limits (the default memory budget and thread count follow them):
// cgroup v1 and v2 trees laid out as the kernel mounts them (files in a temporary folder
// standing for /sys/fs/cgroup).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "core/cgroup_limits.hpp"
#include "pipeline/memory_plan.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

using test::TempDir;
using test::write_text_file;

// Makes every folder of `path` under root and writes `text` into root/path/file.
void put(const std::string& root, const std::string& path, const std::string& file,
         const std::string& text) {
    std::string dir = root;
    std::string rest = path;
    while (!rest.empty()) {
        const auto slash = rest.find('/', 1);
        dir += rest.substr(0, slash);
        mkdir(dir.c_str(), 0755);
        rest = slash == std::string::npos ? "" : rest.substr(slash);
    }
    if (!file.empty()) write_text_file(dir + "/" + file, text);
}

constexpr std::uint64_t kGiB = 1ull << 30;

TEST(CgroupMemory, SlurmJobOnCgroupV1TheJobsLimitBelowTheStepsNone) {
    TempDir root;
    // Slurm's layout: the job's group holds --mem, its step has no limit of its own (v1 writes
    // "none" as the largest page-aligned int64), the root none either.
    put(root.path(), "/memory", "memory.limit_in_bytes", "9223372036854771712\n");
    put(root.path(), "/memory/slurm/uid_1000/job_42", "memory.limit_in_bytes", "8589934592\n");
    put(root.path(), "/memory/slurm/uid_1000/job_42/step_0", "memory.limit_in_bytes",
        "9223372036854771712\n");
    const std::string listing = "12:pids:/slurm/uid_1000/job_42/step_0\n"
                                "4:memory:/slurm/uid_1000/job_42/step_0\n"
                                "1:name=systemd:/\n";
    EXPECT_EQ(cgroup_memory_limit(listing, root.path()), 8 * kGiB);
}

TEST(CgroupMemory, CgroupV2ContainerAndParentLimitsTheSmallestWins) {
    TempDir root;
    put(root.path(), "", "cgroup.controllers", "cpu memory pids\n");
    put(root.path(), "/kubepods/pod7", "memory.max", "4294967296\n");
    put(root.path(), "/kubepods/pod7/ctr", "memory.max", "max\n");
    put(root.path(), "/kubepods", "memory.max", "17179869184\n");
    EXPECT_EQ(cgroup_memory_limit("0::/kubepods/pod7/ctr\n", root.path()), 4 * kGiB);
    // A limit only on the leaf.
    put(root.path(), "/kubepods/pod7/ctr", "memory.max", "1073741824\n");
    EXPECT_EQ(cgroup_memory_limit("0::/kubepods/pod7/ctr\n", root.path()), 1 * kGiB);
}

TEST(CgroupMemory, ANamespacedGroupIsReadAtTheMount) {
    // Inside a cgroup namespace the process sees its own group as "/" and the mount is that
    // group; a path that does not exist under the mount is read at the mount itself.
    TempDir root;
    put(root.path(), "", "memory.max", "2147483648\n");
    EXPECT_EQ(cgroup_memory_limit("0::/\n", root.path()), 2 * kGiB);
    EXPECT_EQ(cgroup_memory_limit("0::/not/here\n", root.path()), 2 * kGiB);
}

TEST(CgroupMemory, HybridHierarchyReadsV1MemoryAndUnified) {
    TempDir root;
    put(root.path(), "/memory/job", "memory.limit_in_bytes", "6442450944\n");
    put(root.path(), "/unified/job", "memory.max", "max\n");
    EXPECT_EQ(cgroup_memory_limit("4:memory:/job\n0::/job\n", root.path()), 6 * kGiB);
    put(root.path(), "/unified/job", "memory.max", "3221225472\n");
    EXPECT_EQ(cgroup_memory_limit("4:memory:/job\n0::/job\n", root.path()), 3 * kGiB);
}

TEST(CgroupMemory, NoLimitUnreadableOrMalformedMeansNone) {
    TempDir root;
    EXPECT_EQ(cgroup_memory_limit("", root.path()), std::nullopt);
    EXPECT_EQ(cgroup_memory_limit("0::/a\n4:memory:/a\n", root.path()), std::nullopt)
        << "no files";
    put(root.path(), "/a", "memory.max", "max\n");
    put(root.path(), "/memory/a", "memory.limit_in_bytes", "9223372036854771712\n");
    EXPECT_EQ(cgroup_memory_limit("0::/a\n4:memory:/a\n", root.path()), std::nullopt);
    put(root.path(), "/a", "memory.max", "12abc\n");
    put(root.path(), "/memory/a", "memory.limit_in_bytes", "-1\n");
    EXPECT_EQ(cgroup_memory_limit("0::/a\n4:memory:/a\ngarbage\n7:cpu\n", root.path()),
              std::nullopt);
    EXPECT_EQ(cgroup_memory_limit("0::/a\n", root.path() + "/missing"), std::nullopt);
}

TEST(CgroupCpu, QuotasInCoresTheSmallestOnTheWayUpWins) {
    TempDir root;
    // v2 (Docker --cpus 2.5 writes "250000 100000"); a parent without a quota.
    put(root.path(), "", "cgroup.controllers", "cpu memory\n");
    put(root.path(), "/docker", "cpu.max", "max 100000\n");
    put(root.path(), "/docker/c1", "cpu.max", "250000 100000\n");
    EXPECT_EQ(cgroup_cpu_limit("0::/docker/c1\n", root.path()), 2.5);
    put(root.path(), "/docker", "cpu.max", "150000 100000\n");
    EXPECT_EQ(cgroup_cpu_limit("0::/docker/c1\n", root.path()), 1.5) << "the parent's is smaller";
    put(root.path(), "/docker", "cpu.max", "max 100000\n");
    put(root.path(), "/docker/c1", "cpu.max", "max 100000\n");
    EXPECT_EQ(cgroup_cpu_limit("0::/docker/c1\n", root.path()), std::nullopt);

    // v1, cpu co-mounted with cpuacct: the quota is -1 where none is set.
    TempDir v1;
    put(v1.path(), "/cpu,cpuacct/kubepods/pod3", "cpu.cfs_quota_us", "400000\n");
    put(v1.path(), "/cpu,cpuacct/kubepods/pod3", "cpu.cfs_period_us", "100000\n");
    put(v1.path(), "/cpu,cpuacct/kubepods", "cpu.cfs_quota_us", "-1\n");
    put(v1.path(), "/cpu,cpuacct/kubepods", "cpu.cfs_period_us", "100000\n");
    const std::string pod = "3:cpu,cpuacct:/kubepods/pod3\n4:memory:/kubepods/pod3\n";
    EXPECT_EQ(cgroup_cpu_limit(pod, v1.path()), 4.0);
    put(v1.path(), "/cpu,cpuacct/kubepods/pod3", "cpu.cfs_quota_us", "-1\n");
    EXPECT_EQ(cgroup_cpu_limit("3:cpu,cpuacct:/kubepods/pod3\n", v1.path()), std::nullopt);
    put(v1.path(), "/cpu,cpuacct/kubepods/pod3", "cpu.cfs_quota_us", "50000\n");
    put(v1.path(), "/cpu,cpuacct/kubepods/pod3", "cpu.cfs_period_us", "0\n");
    EXPECT_EQ(cgroup_cpu_limit("3:cpu,cpuacct:/kubepods/pod3\n", v1.path()), std::nullopt)
        << "a zero period is no quota";
    EXPECT_EQ(cgroup_cpu_limit("3:cpu,cpuacct:/kubepods/pod3\n", v1.path() + "/missing"),
              std::nullopt);
}

// On this machine: the default budget is half of the smaller of the physical memory and the
// process's own limit, and never below 256 MiB.
TEST(CgroupMemory, DefaultBudgetIsHalfTheSmallerOfMemoryAndTheLimit) {
    const std::uint64_t budget = default_memory_budget();
    EXPECT_GE(budget, 256ull << 20);
    if (const auto limit = this_process_memory_limit()) {
        EXPECT_LE(budget, std::max<std::uint64_t>(*limit / 2, 256ull << 20)) << *limit;
    }
}

}  // namespace
}  // namespace embgeom
