// mezctl subcommands: each file registers one with the app.
#ifndef MEZ_CMD_MEZCTL_COMMANDS_H_
#define MEZ_CMD_MEZCTL_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <string>

namespace mez::cli {

// `identity` is the global --identity flag; `rc` receives the exit code.
void AddConfigCommand(CLI::App* app, const std::string* identity, int* rc);
void AddAuditCommand(CLI::App* app, const std::string* identity, int* rc);
void AddNodesCommand(CLI::App* app, const std::string* identity, int* rc);
void AddUsersCommand(CLI::App* app, const std::string* identity, int* rc);
void AddCaCommand(CLI::App* app, const std::string* identity, int* rc);
// `web`: a sign-in link for the web UI.
void AddWebCommand(CLI::App* app, const std::string* identity, int* rc);

}  // namespace mez::cli

#endif  // MEZ_CMD_MEZCTL_COMMANDS_H_
