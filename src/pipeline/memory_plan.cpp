#include "pipeline/memory_plan.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "core/cgroup_limits.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {

std::uint64_t memory_this_process_may_use() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    std::uint64_t memory = pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page)
                                                 : (8ull << 30);
    // A batch job's limit (Slurm --mem, a container's): the kernel kills a job past it.
    if (const auto limit = this_process_memory_limit()) memory = std::min(memory, *limit);
    return memory;
}

std::uint64_t default_memory_budget() {
    return std::max<std::uint64_t>(memory_this_process_may_use() / 2, 256ull << 20);
}

std::uint64_t parse_byte_size(const std::string& text, const std::string& what) {
    std::size_t pos = 0;
    double value = 0.0;
    try {
        value = std::stod(text, &pos);
    } catch (...) {
        throw UsageError(what + ": '" + text + "' is not a size (examples: 4G, 512M, 1000000)");
    }
    std::string unit = text.substr(pos);
    std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::toupper(c); });
    if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
    if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
    double scale = 1.0;
    if (unit == "K") scale = 1024.0;
    else if (unit == "M") scale = 1024.0 * 1024;
    else if (unit == "G") scale = 1024.0 * 1024 * 1024;
    else if (unit == "T") scale = 1024.0 * 1024 * 1024 * 1024;
    else if (!unit.empty() && unit != "B")
        throw UsageError(what + ": unknown unit in '" + text + "' (use K, M, G or T)");
    if (!(value > 0) || !std::isfinite(value))
        throw UsageError(what + ": '" + text + "' must be a positive size");
    return static_cast<std::uint64_t>(value * scale);
}

std::string format_bytes(double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 5) {
        bytes /= 1024.0;
        ++u;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
    return buf;
}

}  // namespace embgeom
