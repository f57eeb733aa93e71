// msh play [--speed=N] [--skip-idle=DUR] [--format=pty|text|json|cast]
//          ID|FILE
#ifndef MEZ_CMD_MSH_PLAY_H_
#define MEZ_CMD_MSH_PLAY_H_

#include <CLI/CLI.hpp>
#include <string>

namespace mez::cli {

// Registers `play`. `identity` is the global --identity flag (used for
// session ids); the callback stores its exit code in *rc: 0 ok, 1 error,
// 2 usage.
void AddPlayCommand(CLI::App* app, const std::string* identity, int* rc);

}  // namespace mez::cli

#endif  // MEZ_CMD_MSH_PLAY_H_
