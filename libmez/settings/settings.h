// The registry of cluster settings: for each key that an admin may set
// (`mezctl config set`, the SetConfig RPC), its allowed values, its
// default and its help text. The catalog reads defaults here, the cluster
// domain validates here, the recorder parses session_recording through
// it and the CLI checks values before it calls mezrecd. A new setting is
// one entry in settings.cc (docs/architecture.md "Where to add").
//
// Everything here is constant data and pure functions: thread-safe.
#ifndef MEZ_SETTINGS_SETTINGS_H_
#define MEZ_SETTINGS_SETTINGS_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez::settings {

// The recording mode of new sessions: node-sync (default), node or off
// (DESIGN.md "modes"; docs/formats/catalog.md).
inline constexpr std::string_view kSessionRecording = "session_recording";

struct Setting {
  std::string_view key;
  // The value an unset key reads as. Defaults live in code, not in the
  // database, so that changing one needs no migration.
  std::string_view default_value;
  // Every value the key may hold, in the order messages list them.
  std::span<const std::string_view> allowed;
  std::string_view help;  // One line, for `mezctl config` and errors.
};

// Every setting, in a fixed order.
std::span<const Setting> All();

// The setting named `key`, or nullptr.
const Setting* Find(std::string_view key);

// kInvalidArgument "unknown setting 'KEY' (known: a, b)" for a key that is
// not in the registry.
Status CheckKey(std::string_view key);

// CheckKey, then kInvalidArgument "KEY must be one of a, b, c (got 'V')"
// for a value the key does not allow.
Status Validate(std::string_view key, std::string_view value);

// Validate for a key in the registry; Ok for any other key. For a client
// (mezctl) that may be older than the mezrecd it talks to, which names
// the keys it knows itself.
Status CheckValueIfKnown(std::string_view key, std::string_view value);

// The default of `key`, or nullopt for a key not in the registry.
std::optional<std::string> DefaultValue(std::string_view key);

// "a, b, c": the allowed values of `setting`, as messages list them.
std::string AllowedList(const Setting& setting);

}  // namespace mez::settings

#endif  // MEZ_SETTINGS_SETTINGS_H_
