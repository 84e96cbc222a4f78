#include "core/cgroup_memory.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace embgeom {
namespace {

bool is_directory(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The first word of a limit file as bytes; nullopt for "max", a missing file or anything else.
// cgroup v1 writes "no limit" as the largest page-aligned int64 (~2^63): anything from 2^62 up.
std::optional<std::uint64_t> read_limit(const std::string& file) {
    std::ifstream in(file);
    std::string word;
    if (!(in >> word) || word.empty() || word.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    errno = 0;
    const unsigned long long v = std::strtoull(word.c_str(), nullptr, 10);
    if (errno != 0 || v >= (1ull << 62)) return std::nullopt;
    return static_cast<std::uint64_t>(v);
}

// The smallest limit in `file` on the group mount + path and each ancestor up to mount. A path
// that does not exist under mount (a cgroup namespace shows the process its own group as "/"
// while mount is that group) is read from mount alone.
std::optional<std::uint64_t> smallest_on_the_way_up(const std::string& mount, std::string path,
                                                    const std::string& file) {
    if (!is_directory(mount)) return std::nullopt;
    if (!is_directory(mount + path)) path = "/";
    std::optional<std::uint64_t> least;
    while (true) {
        const std::string dir = path == "/" ? mount : mount + path;
        if (const auto v = read_limit(dir + "/" + file)) least = least ? std::min(*least, *v) : *v;
        if (path == "/" || path.empty()) break;
        const auto slash = path.find_last_of('/');
        path = slash == 0 ? "/" : path.substr(0, slash);
    }
    return least;
}

}  // namespace

std::optional<std::uint64_t> cgroup_memory_limit(const std::string& cgroup_listing,
                                                 const std::string& cgroup_root) {
    std::optional<std::uint64_t> least;
    const auto take = [&](std::optional<std::uint64_t> v) {
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
            // v2: mounted at the root, or at root/unified beside v1 hierarchies (a mount
            // without the files adds nothing).
            take(smallest_on_the_way_up(cgroup_root, path, "memory.max"));
            take(smallest_on_the_way_up(cgroup_root + "/unified", path, "memory.max"));
        } else {
            std::istringstream names(controllers);
            std::string name;
            while (std::getline(names, name, ','))
                if (name == "memory")
                    take(smallest_on_the_way_up(cgroup_root + "/" + controllers, path,
                                                "memory.limit_in_bytes"));
        }
    }
    return least;
}

std::optional<std::uint64_t> this_process_memory_limit() {
    std::ifstream in("/proc/self/cgroup");
    std::stringstream text;
    text << in.rdbuf();
    return cgroup_memory_limit(text.str(), "/sys/fs/cgroup");
}

}  // namespace embgeom
