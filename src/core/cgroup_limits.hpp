#pragma once
// The limits of the control group this process runs in: what a batch job or a container was
// given (Slurm's --mem, Docker's --memory and --cpus, Kubernetes' limits). The machine's memory
// and core count say nothing about them: a job that sizes its memory from the machine is killed
// by the kernel when it grows past its group's limit (no error message, no output), and one that
// starts a thread per core under a CPU quota of a few cores is throttled in every time slice.
// Linux cgroup v2 (memory.max, cpu.max) and v1 (memory.limit_in_bytes, cpu.cfs_quota_us /
// cpu.cfs_period_us), on every level from the process's group up to the hierarchy's root: the
// smallest limit wins.
#include <cstdint>
#include <optional>
#include <string>

namespace embgeom {

/// @brief The smallest memory limit, in bytes, set on the groups of `cgroup_listing` (the text of
///        /proc/self/cgroup) and their ancestors, below `cgroup_root` (where the hierarchies are
///        mounted, /sys/fs/cgroup). nullopt when none is set or none can be read ("max", v1's
///        "unlimited" of ~2^63, missing files all mean no limit). Never throws.
std::optional<std::uint64_t> cgroup_memory_limit(const std::string& cgroup_listing,
                                                 const std::string& cgroup_root);

/// @brief The same for the CPU quota, in cores (quota / period, e.g. 2.5 for Docker's --cpus 2.5).
///        nullopt when none is set ("max", v1's -1). Never throws.
std::optional<double> cgroup_cpu_limit(const std::string& cgroup_listing,
                                       const std::string& cgroup_root);

/// cgroup_memory_limit of this process (/proc/self/cgroup, /sys/fs/cgroup).
std::optional<std::uint64_t> this_process_memory_limit();

/// cgroup_cpu_limit of this process.
std::optional<double> this_process_cpu_limit();

}  // namespace embgeom
