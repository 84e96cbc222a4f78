#include "pipeline/progress.hpp"

#include <cstdio>
#include <memory>

namespace embgeom {
namespace {

constexpr double kQuietSeconds = 10.0;  // short runs print nothing
constexpr double kEverySeconds = 10.0;

}  // namespace

std::function<void(std::int64_t, std::int64_t)> progress_reporter(const std::string& label) {
    using Clock = std::chrono::steady_clock;
    struct State {
        Clock::time_point start = Clock::now();
        double last_print = 0.0;
    };
    auto state = std::make_shared<State>();
    return [label, state](std::int64_t done, std::int64_t total) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - state->start).count();
        if (total <= 0 || done >= total || elapsed < kQuietSeconds ||
            elapsed - state->last_print < kEverySeconds)
            return;
        state->last_print = elapsed;
        const double share = static_cast<double>(done) / static_cast<double>(total);
        const double left = share > 0 ? elapsed * (1.0 - share) / share : 0.0;
        std::fprintf(stderr, "embgeom: %s: %.0f%% done after %.0f s, about %.0f s left\n",
                     label.c_str(), 100.0 * share, elapsed, left);
        std::fflush(stderr);
    };
}

}  // namespace embgeom
