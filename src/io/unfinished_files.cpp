#include "io/unfinished_files.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace embgeom {
namespace {

constexpr int kSlots = 16;
constexpr std::size_t kPathBytes = 4096;

// Written by registration only (under the mutex), read by the handler without locks: a slot's
// paths are complete before `used` is set and unchanged until it is cleared.
struct Slot {
    std::atomic<bool> used{false};
    char temp_path[kPathBytes];
    char final_path[kPathBytes];
};
Slot g_slots[kSlots];
std::mutex g_claim;

// Async-signal-safe output: write(2) only.
void say(const char* s) {
    std::size_t n = std::strlen(s);
    while (n > 0) {
        const ssize_t w = ::write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= static_cast<std::size_t>(w);
    }
}

const char* signal_name(int sig) {
    switch (sig) {
        case SIGINT:
            return "SIGINT";
        case SIGTERM:
            return "SIGTERM";
        default:
            return "SIGHUP";
    }
}

extern "C" void on_stop_signal(int sig) {
    const int saved_errno = errno;
    for (Slot& s : g_slots) {
        if (!s.used.load(std::memory_order_acquire) || ::unlink(s.temp_path) != 0) continue;
        say("embgeom: stopped by ");
        say(signal_name(sig));
        say(": ");
        say(s.final_path);
        say(" was not written (its unfinished temporary file is removed)\n");
    }
    errno = saved_errno;
    // SA_RESETHAND restored the default action; the signal, blocked while this runs, ends the
    // process once the handler returns.
    ::raise(sig);
}

}  // namespace

void remove_unfinished_files_on_signals() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
            struct sigaction old {};
            if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
            struct sigaction sa {};
            sa.sa_handler = on_stop_signal;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESETHAND;
            (void)::sigaction(sig, &sa, nullptr);
        }
    });
}

UnfinishedFile::UnfinishedFile(const std::string& temp_path, const std::string& final_path) {
    if (temp_path.size() >= kPathBytes || final_path.size() >= kPathBytes) return;
    std::lock_guard<std::mutex> lock(g_claim);
    for (int i = 0; i < kSlots; ++i) {
        Slot& s = g_slots[i];
        if (s.used.load(std::memory_order_relaxed)) continue;
        std::memcpy(s.temp_path, temp_path.c_str(), temp_path.size() + 1);
        std::memcpy(s.final_path, final_path.c_str(), final_path.size() + 1);
        s.used.store(true, std::memory_order_release);
        slot_ = i;
        return;
    }
}

UnfinishedFile::~UnfinishedFile() {
    if (slot_ < 0) return;
    std::lock_guard<std::mutex> lock(g_claim);
    g_slots[slot_].used.store(false, std::memory_order_release);
}

}  // namespace embgeom
