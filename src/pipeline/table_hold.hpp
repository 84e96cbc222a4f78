#pragma once
// Backend::hold_table for one job: the backend keeps its copy of the table (on CUDA, in device
// memory) from construction until release() or the end of the scope, whichever comes first. It
// must end before the backend does; declared after the backend, it does so on every path.
#include <chrono>
#include <string>

#include "embgeom/backend.hpp"

namespace embgeom {

class TableHold {
  public:
    /// wanted false asks for nothing (held() is false).
    TableHold(Backend& backend, RowSource& table, const AllPairsOptions& engine, bool wanted = true)
        : backend_(&backend) {
        const auto t0 = std::chrono::steady_clock::now();
        held_ = wanted && backend.hold_table(table, engine);
        seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (held_) dtype_ = backend.held_table_dtype();
    }
    ~TableHold() { release(); }
    TableHold(const TableHold&) = delete;
    TableHold& operator=(const TableHold&) = delete;

    /// Whether the backend took the copy.
    bool held() const noexcept { return held_; }
    /// Time the backend took to make it (0 when it made none).
    double seconds() const noexcept { return held_ ? seconds_ : 0.0; }
    /// The type the copy keeps its values in (Backend::held_table_dtype), empty when none.
    const std::string& dtype() const noexcept { return dtype_; }
    void release() noexcept {
        if (!backend_) return;
        if (held_) backend_->release_table();
        backend_ = nullptr;
    }

  private:
    Backend* backend_;
    bool held_ = false;
    double seconds_ = 0.0;
    std::string dtype_;
};

}  // namespace embgeom
