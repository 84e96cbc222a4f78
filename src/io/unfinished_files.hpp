#pragma once
// Unfinished output files that a signal must not leave behind. A batch job stopped by its
// scheduler (SIGTERM at the time limit), Ctrl-C (SIGINT) or a closed terminal (SIGHUP) would
// otherwise leave the hidden ".name.h5.tmp.PID" of a result still being written, which holds the
// whole similarity matrix with --write-matrix. The handlers remove every file still registered,
// say so in one line on stderr, and end the process by the same signal, so its exit status still
// says which. An earlier result at the final path is never touched: only the temporary file is.
#include <string>

namespace embgeom {

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP (once; later calls do nothing). Signals
/// the process ignored when it started (nohup) stay ignored.
void remove_unfinished_files_on_signals();

/// Registers temp_path (to remove) and final_path (to name in the message) with the handlers
/// while this object lives. At most 16 at once; beyond that a file is simply not registered.
class UnfinishedFile {
  public:
    UnfinishedFile(const std::string& temp_path, const std::string& final_path);
    ~UnfinishedFile();
    UnfinishedFile(const UnfinishedFile&) = delete;
    UnfinishedFile& operator=(const UnfinishedFile&) = delete;

  private:
    int slot_ = -1;
};

}  // namespace embgeom
