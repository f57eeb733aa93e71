// mezctl config get|set KEY [VALUE]
#include "cmd/mezctl/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddConfigCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* config = app->add_subcommand("config", "cluster settings");
  config->require_subcommand(1);
  auto key = std::make_shared<std::string>();
  auto value = std::make_shared<std::string>();
  auto* get = config->add_subcommand("get", "print a setting");
  get->add_option("key", *key, "setting name: session_recording")->required();
  get->callback([=] { *rc = Report("mezctl", ConfigGet(*identity, *key)); });
  auto* set = config->add_subcommand(
      "set", "change a setting (applies to new sessions)");
  set->add_option("key", *key, "setting name: session_recording")->required();
  set->add_option("value", *value, "node-sync, node or off")->required();
  set->callback(
      [=] { *rc = Report("mezctl", ConfigSet(*identity, *key, *value)); });
}

}  // namespace mez::cli
