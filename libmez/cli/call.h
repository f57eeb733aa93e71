// What every msh and mezctl command shares: reaching mezrecd with the
// caller's identity (its calls are rpc::ClusterClient's typed methods),
// JSON rows, and the exit-code rule.
#ifndef MEZ_CLI_CALL_H_
#define MEZ_CLI_CALL_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "libmez/cli/output.h"
#include "libmez/rpc/client.h"
#include "libmez/util/status.h"

namespace mez::cli {

// Resolves the identity (`identity_flag`, then $MEZ_IDENTITY, then the one
// stored by msh login) and connects to the mezrecd it names.
Result<std::unique_ptr<rpc::ClusterClient>> Connect(
    const std::string& identity_flag);

// Prints rows to stdout as json (one array) or jsonl (one object per line).
void PrintJson(const std::vector<nlohmann::ordered_json>& rows, OutputFormat f);

}  // namespace mez::cli

#endif  // MEZ_CLI_CALL_H_
