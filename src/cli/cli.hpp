#pragma once
// The command line: `embgeom analyze|synth|inspect|demo`. build_cli is separate from main so the
// tests parse argument lists and config files exactly as the binary does.
#include <cstdint>
#include <string>
#include <vector>

#include "embgeom/config.hpp"
#include "synth/synth.hpp"

namespace CLI {
class App;
}

namespace embgeom {

/// Everything the subcommands parse into.
struct CliState {
    AnalyzeConfig analyze;
    SynthSpec synth;
    std::string synth_output;
    std::string inspect_file;
    std::int64_t demo_rows = 20000;
    std::int64_t demo_dims = 256;
    std::string demo_dir;  ///< where the demo writes; empty = a new temporary folder
    int demo_threads = 0;
    std::string memory_budget_text;
    std::vector<std::string> devices_text;  ///< --devices entries: ids, or the one word "all"
};

/// Adds the subcommands and their options (with config-file keys) to app, bound to state.
void build_cli(CLI::App& app, CliState& state);

/// Expands `analyze --config FILE` into options: each key of FILE becomes --key=value placed
/// before the command line's own options, so flags given on the command line override the file.
/// @throws UsageError naming the file and the key for an unknown key, a missing or bad file.
std::vector<std::string> expand_config_file(CLI::App& app, const std::vector<std::string>& args);

/// Parses args (without the program name) into state, as the binary does (config files included).
/// @throws UsageError on bad usage; CLI::Success/CallForHelp for --help (the caller prints).
void parse_cli(CLI::App& app, CliState& state, const std::vector<std::string>& args);

/// Parses argv, runs the chosen subcommand, prints errors as one line; returns the exit code.
int run_cli(int argc, char** argv);

}  // namespace embgeom
