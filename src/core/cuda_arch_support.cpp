#include "core/cuda_arch_support.hpp"

#include <cctype>
#include <sstream>

namespace embgeom {
namespace {

struct ArchEntry {
    int major = 0, minor = 0;
    char variant = 0;  // 'a': that exact capability only; 'f': that family (same major, minor >=)
    bool real = true, virt = true;
};

bool parse_entry(std::string e, ArchEntry& out) {
    const auto dash = e.find('-');
    std::string suffix;
    if (dash != std::string::npos) {
        suffix = e.substr(dash + 1);
        e = e.substr(0, dash);
    }
    if (suffix == "real")
        out.virt = false;
    else if (suffix == "virtual")
        out.real = false;
    else if (!suffix.empty())
        return false;
    if (!e.empty() && (e.back() == 'a' || e.back() == 'f')) {
        out.variant = e.back();
        e.pop_back();
    }
    if (e.size() < 2) return false;
    for (const char c : e)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    const int number = std::stoi(e);
    out.major = number / 10;
    out.minor = number % 10;
    return true;
}

}  // namespace

bool cuda_archs_run_on(const std::string& archs, int major, int minor) {
    std::string list = archs;
    for (char& c : list)
        if (c == ',') c = ';';
    std::istringstream in(list);
    std::string entry;
    while (std::getline(in, entry, ';')) {
        while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back())))
            entry.pop_back();
        while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front())))
            entry.erase(entry.begin());
        if (entry == "all" || entry == "all-major" || entry == "native") return true;
        ArchEntry a;
        if (!parse_entry(entry, a)) continue;
        const bool same_family = major == a.major && minor >= a.minor;
        if (a.variant == 'a') {
            if (major == a.major && minor == a.minor) return true;
        } else if (a.variant == 'f') {
            if (same_family) return true;
        } else {
            if (a.real && same_family) return true;
            if (a.virt && (major > a.major || same_family)) return true;
        }
    }
    return false;
}

}  // namespace embgeom
