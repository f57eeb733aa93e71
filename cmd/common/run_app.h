// Shared by the CLI binaries: parse with CLI11 and turn the outcome into
// the exit codes every command promises (0 ok, 1 error, 2 usage; msh and
// mezctl add more: libmez/cli/commands.h).
#ifndef MEZ_CMD_COMMON_RUN_APP_H_
#define MEZ_CMD_COMMON_RUN_APP_H_

#include <CLI/CLI.hpp>
#include <string>

#include "libmez/util/version.h"

namespace mez::cmd {

// Parses argv. Returns -1 to go on, or the exit code to return now: 0
// after --help or --version ("msh 0.1.0"), 2 after a usage error (CLI11's
// message printed).
inline int Parse(CLI::App& app, int argc, char** argv) {
  std::string name = argc > 0 ? argv[0] : "";
  name = name.substr(name.rfind('/') + 1);
  app.set_version_flag("--version", name + " " + Version(),
                       "Print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return -1;
}

// Parses argv and runs the chosen subcommand's callback, which stores its
// exit code in *rc.
inline int RunApp(CLI::App& app, int argc, char** argv, const int* rc) {
  int parsed = Parse(app, argc, argv);
  return parsed >= 0 ? parsed : *rc;
}

}  // namespace mez::cmd

#endif  // MEZ_CMD_COMMON_RUN_APP_H_
