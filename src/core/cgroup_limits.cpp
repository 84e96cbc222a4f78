#include "core/cgroup_limits.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

namespace embgeom {
namespace {

// A limit read from one group's folder, or nullopt where that group sets none.
using ReadLimit = std::function<std::optional<double>(const std::string& dir)>;

bool is_directory(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The first `count` words of a file; fewer where it is missing or shorter.
std::vector<std::string> words_of(const std::string& file, int count) {
    std::ifstream in(file);
    std::vector<std::string> words;
    std::string w;
    while (static_cast<int>(words.size()) < count && in >> w) words.push_back(w);
    return words;
}

// A whole non-negative number below 2^62 (cgroup v1 writes "no limit" as the largest
// page-aligned int64, ~2^63), else nullopt ("max", "-1", anything else).
std::optional<double> whole_number(const std::string& word) {
    if (word.empty() || word.find_first_not_of("0123456789") != std::string::npos) return {};
    errno = 0;
    const unsigned long long v = std::strtoull(word.c_str(), nullptr, 10);
    if (errno != 0 || v >= (1ull << 62)) return {};
    return static_cast<double>(v);
}

// The smallest limit on the group mount + path and each ancestor up to mount. A path that does
// not exist under mount (a cgroup namespace shows the process its own group as "/" while mount
// is that group) is read at mount alone.
std::optional<double> smallest_on_the_way_up(const std::string& mount, std::string path,
                                             const ReadLimit& read) {
    if (!is_directory(mount)) return {};
    if (!is_directory(mount + path)) path = "/";
    std::optional<double> least;
    while (true) {
        if (const auto v = read(path == "/" ? mount : mount + path))
            least = least ? std::min(*least, *v) : *v;
        if (path == "/") break;
        const auto slash = path.find_last_of('/');
        path = slash == 0 ? "/" : path.substr(0, slash);
    }
    return least;
}

// The smallest limit over every hierarchy of the listing: v2 ("0::/path", mounted at the root or
// at root/unified beside v1 hierarchies) read by `v2`, and the v1 hierarchy holding `controller`
// (mounted at root/<its controllers>, e.g. root/cpu,cpuacct) read by `v1`.
std::optional<double> smallest_limit(const std::string& cgroup_listing,
                                     const std::string& cgroup_root, const ReadLimit& v2,
                                     const std::string& controller, const ReadLimit& v1) {
    std::optional<double> least;
    const auto take = [&](std::optional<double> v) {
        if (v) least = least ? std::min(*least, *v) : *v;
    };
    std::istringstream lines(cgroup_listing);
    std::string line;
    while (std::getline(lines, line)) {
        // "hierarchy-id:controllers:path"; the path may itself hold ':'.
        const auto a = line.find(':');
        const auto b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue;
        const std::string id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1);
        const std::string path = line.substr(b + 1);
        if (path.empty() || path[0] != '/') continue;
        if (id == "0" && controllers.empty()) {
            take(smallest_on_the_way_up(cgroup_root, path, v2));
            take(smallest_on_the_way_up(cgroup_root + "/unified", path, v2));
            continue;
        }
        std::istringstream names(controllers);
        std::string name;
        while (std::getline(names, name, ','))
            if (name == controller)
                take(smallest_on_the_way_up(cgroup_root + "/" + controllers, path, v1));
    }
    return least;
}

std::string this_process_listing() {
    std::ifstream in("/proc/self/cgroup");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

std::optional<std::uint64_t> cgroup_memory_limit(const std::string& cgroup_listing,
                                                 const std::string& cgroup_root) {
    const auto first_word = [](const std::string& file) -> std::optional<double> {
        const auto w = words_of(file, 1);
        return w.empty() ? std::nullopt : whole_number(w[0]);
    };
    const auto bytes = smallest_limit(
        cgroup_listing, cgroup_root,
        [&](const std::string& dir) { return first_word(dir + "/memory.max"); }, "memory",
        [&](const std::string& dir) { return first_word(dir + "/memory.limit_in_bytes"); });
    if (!bytes) return std::nullopt;
    return static_cast<std::uint64_t>(*bytes);
}

std::optional<double> cgroup_cpu_limit(const std::string& cgroup_listing,
                                       const std::string& cgroup_root) {
    const auto cores = [](std::optional<double> quota, std::optional<double> period) {
        return quota && period && *period > 0 ? std::optional<double>(*quota / *period)
                                              : std::nullopt;
    };
    return smallest_limit(
        cgroup_listing, cgroup_root,
        [&](const std::string& dir) {  // cpu.max: "QUOTA PERIOD" or "max PERIOD"
            const auto w = words_of(dir + "/cpu.max", 2);
            return w.size() == 2 ? cores(whole_number(w[0]), whole_number(w[1])) : std::nullopt;
        },
        "cpu",
        [&](const std::string& dir) {  // cpu.cfs_quota_us is -1 without a quota
            const auto q = words_of(dir + "/cpu.cfs_quota_us", 1);
            const auto p = words_of(dir + "/cpu.cfs_period_us", 1);
            return q.empty() || p.empty() ? std::nullopt
                                          : cores(whole_number(q[0]), whole_number(p[0]));
        });
}

std::optional<std::uint64_t> this_process_memory_limit() {
    return cgroup_memory_limit(this_process_listing(), "/sys/fs/cgroup");
}

std::optional<double> this_process_cpu_limit() {
    return cgroup_cpu_limit(this_process_listing(), "/sys/fs/cgroup");
}

}  // namespace embgeom
