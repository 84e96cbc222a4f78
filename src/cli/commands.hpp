#pragma once
// The subcommands' bodies, run after parsing. Each returns the process exit code and throws
// embgeom::Error subclasses for failures (run_cli turns those into one-line messages).
#include <ostream>

#include "cli/cli.hpp"

namespace embgeom {

int run_analyze_command(const CliState& st, std::ostream& out);
int run_synth_command(const CliState& st, std::ostream& out);
int run_inspect_command(const CliState& st, std::ostream& out);
int run_demo_command(const CliState& st, std::ostream& out);
int run_devices_command(const CliState& st, std::ostream& out);

}  // namespace embgeom
