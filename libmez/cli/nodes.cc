// mezctl nodes add/ls/rm: the cluster's nodes (agents and agentless).
#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/cli/output.h"
#include "libmez/util/host_port.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;
using nlohmann::ordered_json;

// `s` as one bash word: bare when it holds only characters bash never
// interprets, else in single quotes (a quote inside as '\'').
std::string ShellWord(const std::string& s) {
  bool bare = !s.empty();
  for (char c : s) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') ||
                std::strchr("_-.,:/@%+=", c) != nullptr;
    if (!safe || c == '\0') bare = false;
  }
  if (bare) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

bool IsWildcardOrLoopback(const std::string& addr) {
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(addr, &host, &port).ok()) return false;
  return host.empty() || host == "0.0.0.0" || host == "::" ||
         IsLoopbackHost(addr);
}

// True when the host of `addr` is an IP address (v4, or v6 in brackets).
bool HostIsIp(const std::string& addr) {
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(addr, &host, &port).ok()) return false;
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string JoinCommand(const std::string& auth, const std::string& token,
                        const std::string& addr, const std::string& data_dir,
                        bool plaintext) {
  std::string cmd = "mezd --auth " + ShellWord(auth) + " --token " +
                    ShellWord(token) + " --data-dir " + ShellWord(data_dir);
  if (HostIsIp(addr)) {
    cmd += " --listen " + ShellWord(addr);
  } else {
    // A name may resolve to an address the node does not have (NAT, a
    // load balancer): listen everywhere on its port, report the name.
    std::string host;
    uint16_t port = 0;
    if (SplitHostPort(addr, &host, &port).ok()) {
      cmd += " --listen 0.0.0.0:" + std::to_string(port);
    }
    cmd += " --advertise " + ShellWord(addr);
  }
  if (plaintext) cmd += " --insecure";
  return cmd;
}

Status NodesAdd(const NodesAddOptions& o) {
  // Checked before the token is issued: a token printed with a command
  // that cannot work is a token wasted.
  if (!o.openssh) {
    std::string host;
    uint16_t port = 0;
    if (!o.auth.empty() && !SplitHostPort(o.auth, &host, &port).ok()) {
      return InvalidArgument("--auth " + ShellWord(o.auth) +
                             " is not HOST:PORT (mezrecd's address as the "
                             "node reaches it)");
    }
    if (o.data_dir.empty()) return InvalidArgument("--data-dir is empty");
  }
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
  std::string auth = o.auth.empty() ? client->identity().auth_addr : o.auth;
  bool plaintext = client->identity().tls_ca_pem.empty();
  std::printf(
      "Start the agent on that node with:\n  %s\n",
      JoinCommand(auth, resp.join_token(), o.addr, o.data_dir, plaintext)
          .c_str());
  if (IsWildcardOrLoopback(auth)) {
    std::fprintf(stderr,
                 "mezctl: note: the printed --auth %s works only on "
                 "mezrecd's own machine; for a node elsewhere, give --auth "
                 "with the address nodes reach mezrecd at\n",
                 auth.c_str());
  }
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
  // Enhanced recording (BPF) needs mezd on the node; an agent's sessions
  // each say in their session.start audit event whether it was on.
  auto enhanced = [](const pb::NodeInfo& n) -> std::string {
    return n.openssh() ? "no (agentless)" : "per session";
  };
  if (format != OutputFormat::kText) {
    std::vector<ordered_json> rows;
    for (const auto& n : resp.nodes()) {
      rows.push_back(ordered_json{{"name", n.name()},
                                  {"id", n.id()},
                                  {"addr", n.addr()},
                                  {"kind", n.openssh() ? "openssh" : "agent"},
                                  {"last_seen", IsoUtc(n.last_seen_us())},
                                  {"recording_mode", effective(n)},
                                  {"enhanced_recording", enhanced(n)}});
    }
    PrintJson(rows, format);
    return Status::Ok();
  }
  Table t({"NAME", "ADDRESS", "KIND", "LAST SEEN", "RECORDING", "ENHANCED"});
  for (const auto& n : resp.nodes()) {
    t.AddRow({n.name(), n.addr(), n.openssh() ? "openssh" : "agent",
              IsoUtc(n.last_seen_us()), effective(n), enhanced(n)});
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
