#pragma once
// Helpers shared by the tests: temporary folders, running the real embgeom binary and Debian's
// python3 (h5py + numpy, the outside HDF5 client and float64 reference), random tables.
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cli/cli.hpp"

namespace embgeom::test {

/// A fresh folder under $TMPDIR, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

struct CommandResult {
    int exit_code = -1;
    std::string out;  ///< stdout
    std::string err;  ///< stderr
};

/// Runs a shell command line, capturing stdout and stderr separately.
CommandResult run_command(const std::string& command_line);

/// Runs `embgeom <args>` (the built binary); args is a shell-quoted argument string.
CommandResult run_embgeom(const std::string& args);

/// The command line as the binary parses it (config files included), without running it.
/// @throws what parse_cli throws (UsageError, CLI::ParseError).
CliState parse(const std::vector<std::string>& args);

/// The embgeom binary and the source folder: built-in paths unless EMBGEOM_BINARY /
/// EMBGEOM_SOURCE_DIR are set (scripts/gpu-validate runs the tests away from their build).
std::string embgeom_binary();
std::string source_dir();
/// python3 with h5py and numpy: EMBGEOM_PYTHON from the environment, else the configured one.
std::string python_binary();

/// Runs a python3 script (h5py, numpy available) given as source text, with argv[1..] = args.
/// Fails the current test (ADD_FAILURE) if python exits non-zero, and returns its result anyway.
CommandResult run_python(const std::string& script, const std::string& args = "");

/// Runs tests/python/<name> from the source tree with args (python failure -> ADD_FAILURE).
CommandResult run_python_file(const std::string& name, const std::string& args);

/// Single-quotes s for /bin/sh.
std::string shell_quote(const std::string& s);

/// rows x cols float32 values ~ N(mean, 1) from a fresh, logged seed (printed via RecordProperty
/// so a failure can be replayed with EMBGEOM_TEST_SEED).
std::vector<float> random_table(std::int64_t rows, std::int64_t cols, std::uint64_t seed,
                                float mean = 0.0f);

/// A seed for this test: EMBGEOM_TEST_SEED when set, else random_device; recorded in the output.
std::uint64_t fresh_seed();

/// Raw bytes of v to path (for handing arrays to numpy's np.fromfile).
template <class T>
void write_binary(const std::string& path, const std::vector<T>& v) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(v.data()),
              static_cast<std::streamsize>(v.size() * sizeof(T)));
}

/// A file of raw float64 values (as numpy's tofile writes them).
std::vector<double> read_doubles(const std::string& path);

bool file_exists(const std::string& path);
std::string read_text_file(const std::string& path);
void write_text_file(const std::string& path, const std::string& text);

}  // namespace embgeom::test
