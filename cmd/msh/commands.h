// msh subcommands: each file registers one with the app.
#ifndef MEZ_CMD_MSH_COMMANDS_H_
#define MEZ_CMD_MSH_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <string>

namespace mez::cli {

// `identity` is the global --identity flag; `rc` receives the exit code.
void AddLoginCommand(CLI::App* app, int* rc);
// `play`: exit codes as every command (libmez/cli/commands.h).
void AddPlayCommand(CLI::App* app, const std::string* identity, int* rc);
void AddSessionsCommand(CLI::App* app, const std::string* identity, int* rc);
void AddSshCommand(CLI::App* app, const std::string* identity, int* rc);
// `status` and `logout`.
void AddStatusCommands(CLI::App* app, const std::string* identity, int* rc);
// `web`: a sign-in link for the web UI.
void AddWebCommand(CLI::App* app, const std::string* identity, int* rc);

}  // namespace mez::cli

#endif  // MEZ_CMD_MSH_COMMANDS_H_
