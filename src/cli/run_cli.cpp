#include <CLI/CLI.hpp>
#include <iostream>
#include <new>

#include "cli/cli.hpp"
#include "cli/commands.hpp"
#include "embgeom/errors.hpp"
#include "io/unfinished_files.hpp"

namespace embgeom {

int run_cli(int argc, char** argv) {
    remove_unfinished_files_on_signals();
    CLI::App app("embgeom: the geometry of embedding tables (norms, centroid, all-pairs cosines, "
                 "outliers), on CUDA or the CPU");
    CliState st;
    build_cli(app, st);
    try {
        try {
            parse_cli(app, st, std::vector<std::string>(argv + 1, argv + argc));
        } catch (const CLI::ParseError& e) {
            if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
            std::cerr << "embgeom: error: " << e.what() << " (see embgeom --help)\n";
            return static_cast<int>(ExitCode::kUsage);
        }
        if (app.got_subcommand("analyze")) return run_analyze_command(st, std::cout);
        if (app.got_subcommand("synth")) return run_synth_command(st, std::cout);
        if (app.got_subcommand("inspect")) return run_inspect_command(st, std::cout);
        if (app.got_subcommand("demo")) return run_demo_command(st, std::cout);
        if (app.got_subcommand("devices")) return run_devices_command(st, std::cout);
        return static_cast<int>(ExitCode::kUsage);
    } catch (const Error& e) {
        std::cerr << "embgeom: error: " << e.what() << "\n";
        return static_cast<int>(e.code());
    } catch (const std::bad_alloc&) {
        std::cerr << "embgeom: error: out of host memory (lower --memory-budget or --block-rows)\n";
        return static_cast<int>(ExitCode::kRuntime);
    } catch (const std::exception& e) {
        std::cerr << "embgeom: error: " << e.what() << "\n";
        return static_cast<int>(ExitCode::kRuntime);
    }
}

}  // namespace embgeom
