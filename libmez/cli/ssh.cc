// msh ssh: checks the options, resolves the node and its pinned host key,
// gets a certificate scoped to it, and runs OpenSSH (openssh.h) with a key
// kept only while ssh runs (key_dir.h).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "libmez/auth/ssh_cert.h"
#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/cli/key_dir.h"
#include "libmez/cli/openssh.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;

// The colon-separated fields of a forwarding spec. A field in brackets
// ("[::1]") may hold colons and comes back without the brackets. False
// when a bracket is unbalanced or does not span a whole field.
bool SplitForwardSpec(const std::string& spec,
                      std::vector<std::string>* fields) {
  fields->clear();
  size_t i = 0;
  for (;;) {
    if (i < spec.size() && spec[i] == '[') {
      size_t close = spec.find(']', i);
      if (close == std::string::npos) return false;
      fields->push_back(spec.substr(i + 1, close - i - 1));
      i = close + 1;
      if (i < spec.size() && spec[i] != ':') return false;
    } else {
      size_t colon = std::min(spec.find(':', i), spec.size());
      fields->push_back(spec.substr(i, colon - i));
      if (fields->back().find_first_of("[]") != std::string::npos) {
        return false;
      }
      i = colon;
    }
    if (i >= spec.size()) return true;
    ++i;  // The colon.
  }
}

bool IsPort(const std::string& s) {
  if (s.empty() || s.size() > 5) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  int n = std::stoi(s);
  return n >= 1 && n <= 65535;
}

}  // namespace

Status CheckLocalForward(const std::string& spec) {
  auto bad = [&spec](const std::string& why) {
    return InvalidArgument("-L '" + spec + "': " + why +
                           " (want [bind_address:]port:host:hostport)");
  };
  for (char c : spec) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return bad("whitespace or control characters");
    }
  }
  if (spec.find('/') != std::string::npos) {
    return bad("Unix-domain socket forwarding is not supported");
  }
  std::vector<std::string> f;
  if (!SplitForwardSpec(spec, &f)) {
    return bad("unbalanced brackets; write IPv6 addresses as [addr]");
  }
  if (f.size() != 3 && f.size() != 4) {
    return bad(f.size() > 4 ? "too many fields; write IPv6 addresses as [addr]"
                            : "too few fields");
  }
  size_t p = f.size() - 3;
  if (!IsPort(f[p])) {
    return bad("local port '" + f[p] + "' is not a number from 1 to 65535");
  }
  if (f[p + 1].empty()) return bad("the destination host is empty");
  if (!IsPort(f[p + 2])) {
    return bad("destination port '" + f[p + 2] +
               "' is not a number from 1 to 65535");
  }
  return Status::Ok();
}

Status Ssh(const SshOptions& o, int* exit_code) {
  *exit_code = 1;
  if (o.force_tty && o.no_tty) {
    return InvalidArgument("-t and -T cannot be used together");
  }
  if (o.no_command && !o.command.empty()) {
    return InvalidArgument("-N runs no command; drop -N or the command");
  }
  if (o.no_command && o.force_tty) {
    return InvalidArgument("-N runs no command; -t has nothing to apply to");
  }
  if (o.port < 0 || o.port > 65535) {
    return InvalidArgument("-p must be a port between 1 and 65535");
  }
  for (const auto& spec : o.local_forwards) {
    MEZ_RETURN_IF_ERROR(CheckLocalForward(spec));
  }
  std::string login, node = o.target;
  if (size_t at = o.target.rfind('@'); at != std::string::npos) {
    login = o.target.substr(0, at);
    node = o.target.substr(at + 1);
  }
  if (node.empty()) return InvalidArgument("missing node in [login@]NODE");
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  if (login.empty()) {
    pb::WhoAmIResponse me;
    MEZ_RETURN_IF_ERROR(client->WhoAmI(pb::WhoAmIRequest(), &me));
    if (me.logins().empty()) {
      return FailedPrecondition(me.name() +
                                " has no logins; ask an admin to add one");
    }
    login = me.logins(0);
  }
  pb::ResolveNodeRequest rreq;
  rreq.set_name(node);
  pb::NodeInfo info;
  MEZ_RETURN_IF_ERROR(client->ResolveNode(rreq, &info));
  if (info.host_key().empty()) {
    if (info.openssh()) {
      return FailedPrecondition(
          "agentless node " + node +
          " has no pinned host key; ask an admin to register it with "
          "mezctl nodes add --host-key");
    }
    return FailedPrecondition("node " + node +
                              " has not reported its host key yet; is mezd "
                              "running on it?");
  }
  // Through the proxy when the identity names one, and always to agentless
  // nodes (only the proxy reaches and records them).
  std::string proxy_addr = client->identity().proxy_addr;
  if (proxy_addr.empty() && info.openssh()) proxy_addr = info.proxy_addr();
  if (info.openssh() && proxy_addr.empty()) {
    return FailedPrecondition(
        "agentless node " + node +
        " is reached through the cluster's SSH proxy, and none is running; "
        "ask an admin to start mezrecd with --roles auth,proxy");
  }
  std::string known_host;
  std::string host, port;
  std::string proxy_host, proxy_port;
  if (proxy_addr.empty()) {
    SplitAddr(info.addr(), &host, &port);
    if (o.port > 0) port = std::to_string(o.port);
    MEZ_ASSIGN_OR_RETURN(known_host,
                         KnownHostsLine(node, host, port, info.host_key()));
  } else {
    if (info.proxy_host_key().empty()) {
      return FailedPrecondition(
          "the cluster's SSH proxy at " + proxy_addr +
          " has not published its host key; is mezrecd running with "
          "--roles auth,proxy?");
    }
    SplitAddr(proxy_addr, &proxy_host, &proxy_port);
    MEZ_ASSIGN_OR_RETURN(
        std::string proxy_line,
        KnownHostsLine("proxy", proxy_host, proxy_port, info.proxy_host_key()));
    // The node is named as the proxy knows it; an agentless node's session
    // is terminated by the proxy, which presents its own key for it.
    host = node;
    port = "22";
    MEZ_ASSIGN_OR_RETURN(std::string node_line,
                         KnownHostsLine(node, node, port,
                                        info.openssh() ? info.proxy_host_key()
                                                       : info.host_key()));
    known_host = proxy_line + node_line;
  }

  MEZ_ASSIGN_OR_RETURN(auto key, auth::GenerateSshUserKey());
  pb::SignUserCertRequest creq;
  creq.set_public_key_blob(key.second);
  creq.set_login(login);
  creq.set_node(node);
  pb::SignUserCertResponse cert;
  MEZ_RETURN_IF_ERROR(client->SignUserCert(creq, &cert));
  // The key lives while ssh runs and is removed when it exits (a run that
  // is killed leaves it to the next run's stale sweep); it is useless once
  // the certificate expires, minutes from now. The known_hosts file beside
  // it holds only this node's key, so no other file can vouch for the host.
  client.reset();
  MEZ_ASSIGN_OR_RETURN(std::string dir, MakeKeyDir());
  OpenSshLaunch launch;
  launch.login = login;
  launch.host = host;
  launch.port = port;
  launch.via_proxy = !proxy_addr.empty();
  launch.proxy_host = proxy_host;
  launch.proxy_port = proxy_port;
  launch.local_forwards = o.local_forwards;
  launch.no_command = o.no_command;
  launch.force_tty = o.force_tty;
  launch.no_tty = o.no_tty;
  launch.command = o.command;
  Result<int> ran =
      RunOpenSsh(launch, dir, key.first, cert.certificate_line(), known_host);
  Status removed = RemoveKeyDirPath(dir);
  if (!removed.ok()) {
    std::fprintf(stderr, "msh: %s\n", removed.message().c_str());
  }
  if (!ran.ok()) return ran.status();
  *exit_code = *ran;
  return Status::Ok();
}

}  // namespace mez::cli
