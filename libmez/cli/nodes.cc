// mezctl nodes add/ls/rm: the cluster's nodes (agents and agentless).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/cli/output.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;
using nlohmann::ordered_json;

}  // namespace

Status NodesAdd(const NodesAddOptions& o) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::AddNodeRequest req;
  req.set_name(o.name);
  req.set_addr(o.addr);
  req.set_openssh(o.openssh);
  req.set_login_hint(o.login_hint);
  req.set_host_key(o.host_key);
  pb::AddNodeResponse resp;
  MEZ_RETURN_IF_ERROR(client->AddNode(req, &resp));
  if (o.openssh) {
    std::printf("Added agentless node %s at %s.\n", o.name.c_str(),
                o.addr.c_str());
    return Status::Ok();
  }
  std::printf(
      "Added node %s at %s. Good for one join, until %s. Its join token "
      "(shown once):\n%s\n",
      o.name.c_str(), o.addr.c_str(),
      IsoUtc(resp.join_token_expires_at() * 1'000'000).c_str(),
      resp.join_token().c_str());
  // The token pins the cluster's TLS CA: mezd needs no CA file.
  bool plaintext = client->identity().tls_ca_pem.empty();
  std::printf(
      "Start the agent on that node with:\n  mezd --auth %s --token '%s' "
      "--listen %s --data-dir /var/lib/mezd%s\n",
      client->identity().auth_addr.c_str(), resp.join_token().c_str(),
      o.addr.c_str(), plaintext ? " --insecure" : "");
  return Status::Ok();
}

Status NodesLs(const std::string& identity, const std::string& format_s) {
  MEZ_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(format_s));
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::ListNodesResponse resp;
  MEZ_RETURN_IF_ERROR(client->ListNodes(pb::ListNodesRequest(), &resp));
  pb::GetConfigRequest creq;
  creq.set_key("session_recording");
  pb::ConfigValue cluster_mode;
  MEZ_RETURN_IF_ERROR(client->GetConfig(creq, &cluster_mode));
  auto effective = [&](const pb::NodeInfo& n) {
    // Agentless nodes are recorded by the proxy with the cluster setting;
    // agents report theirs when they join.
    if (!n.recording_mode().empty()) return n.recording_mode();
    return cluster_mode.value() + " (cluster)";
  };
  if (format != OutputFormat::kText) {
    std::vector<ordered_json> rows;
    for (const auto& n : resp.nodes()) {
      rows.push_back(ordered_json{{"name", n.name()},
                                  {"id", n.id()},
                                  {"addr", n.addr()},
                                  {"kind", n.openssh() ? "openssh" : "agent"},
                                  {"last_seen", IsoUtc(n.last_seen_us())},
                                  {"recording_mode", effective(n)}});
    }
    PrintJson(rows, format);
    return Status::Ok();
  }
  Table t({"NAME", "ADDRESS", "KIND", "LAST SEEN", "RECORDING"});
  for (const auto& n : resp.nodes()) {
    t.AddRow({n.name(), n.addr(), n.openssh() ? "openssh" : "agent",
              IsoUtc(n.last_seen_us()), effective(n)});
  }
  t.Print(stdout, StdoutIsTty(), TerminalWidth());
  return Status::Ok();
}

Status NodesRm(const std::string& identity, const std::string& name) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::RemoveNodeRequest req;
  req.set_name(name);
  pb::RemoveNodeResponse resp;
  MEZ_RETURN_IF_ERROR(client->RemoveNode(req, &resp));
  std::printf("Removed node %s.\n", name.c_str());
  return Status::Ok();
}

}  // namespace mez::cli
