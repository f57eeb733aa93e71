#include "libmez/cli/commands.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "libmez/auth/identity.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/cli/output.h"
#include "libmez/rpc/client.h"
#include "libmez/settings/settings.h"
#include "libmez/util/clock.h"
#include "libmez/util/duration.h"
#include "libmez/util/file.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;
using nlohmann::ordered_json;

Result<std::unique_ptr<rpc::ClusterClient>> Connect(const std::string& flag) {
  MEZ_ASSIGN_OR_RETURN(auto id, rpc::ResolveIdentity(flag));
  return rpc::ClusterClient::Connect(id);
}

// Calls a unary Cluster method with the caller's credentials.
template <typename Req, typename Resp, typename Method>
Status Call(rpc::ClusterClient* c, Method method, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  c->Prepare(&ctx);
  return c->Check((c->cluster()->*method)(&ctx, req, resp));
}

ordered_json SessionJson(const pb::SessionInfo& s) {
  return ordered_json{{"id", s.id()},
                      {"connection_id", s.connection_id()},
                      {"user", s.user()},
                      {"node", s.node()},
                      {"login", s.login()},
                      {"kind", s.kind()},
                      {"command", s.command()},
                      {"started", IsoUtc(s.started_us())},
                      {"ended", s.ended_us() ? IsoUtc(s.ended_us()) : ""},
                      {"started_us", s.started_us()},
                      {"ended_us", s.ended_us()},
                      {"bytes", s.bytes()},
                      {"status", s.status()},
                      {"storage_key", s.storage_key()},
                      {"format", s.format()},
                      {"encrypted", s.encrypted()}};
}

// Prints rows as json (one array) or jsonl (one object per line).
void PrintJson(const std::vector<ordered_json>& rows, OutputFormat f) {
  if (f == OutputFormat::kJson) {
    std::printf("%s\n", ordered_json(rows).dump(2).c_str());
  } else {
    for (const auto& r : rows) std::printf("%s\n", r.dump().c_str());
  }
}

}  // namespace

int Report(const char* program, const Status& s) {
  if (s.ok()) return 0;
  std::fprintf(stderr, "%s: %s\n", program, s.message().c_str());
  return s.code() == Code::kInvalidArgument ? 2 : 1;
}

Status Login(const std::string& identity_file) {
  MEZ_ASSIGN_OR_RETURN(std::string path, rpc::StoreLogin(identity_file));
  MEZ_ASSIGN_OR_RETURN(auto id, auth::ReadIdentityFile(path));
  MEZ_ASSIGN_OR_RETURN(auto client, rpc::ClusterClient::Connect(id));
  pb::WhoAmIResponse me;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::WhoAmI, pb::WhoAmIRequest(), &me));
  std::string logins;
  for (const auto& l : me.logins()) logins += (logins.empty() ? "" : ",") + l;
  std::printf("Logged in to %s as %s (%s%s%s), valid until %s.\n",
              id.auth_addr.c_str(), me.name().c_str(), me.role().c_str(),
              logins.empty() ? "" : ", logins: ", logins.c_str(),
              IsoUtc(me.expires_at() * 1'000'000).c_str());
  std::printf("Identity stored in %s\n", path.c_str());
  return Status::Ok();
}

Status SessionsLs(const SessionsLsOptions& o) {
  MEZ_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o.format));
  if (o.limit < 0) return InvalidArgument("--limit must be 0 or more");
  pb::ListSessionsRequest req;
  req.set_user(o.user);
  req.set_node(o.node);
  req.set_limit(o.limit);
  int64_t since = 0, until = 0;
  MEZ_RETURN_IF_ERROR(
      TimeWindow(o.last, "", "", RealClock()->WallMicros(), &since, &until));
  req.set_since_us(since);
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::ListSessionsResponse resp;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::ListSessions, req, &resp));
  if (o.quiet) {
    for (const auto& s : resp.sessions()) std::printf("%s\n", s.id().c_str());
    return Status::Ok();
  }
  if (format != OutputFormat::kText) {
    std::vector<ordered_json> rows;
    for (const auto& s : resp.sessions()) rows.push_back(SessionJson(s));
    PrintJson(rows, format);
    return Status::Ok();
  }
  Table t({"SESSION ID", "USER", "NODE", "LOGIN", "STARTED", "ENDED", "KIND",
           "STATUS"});
  for (const auto& s : resp.sessions()) {
    t.AddRow({s.id(), s.user(), s.node(), s.login(), IsoUtc(s.started_us()),
              IsoUtc(s.ended_us()), s.kind(), s.status()});
  }
  t.Print(stdout, StdoutIsTty(), TerminalWidth(), 7);
  return Status::Ok();
}

Status AuditLs(const AuditLsOptions& o) {
  MEZ_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o.format));
  if (o.limit < 0) return InvalidArgument("--limit must be 0 or more");
  pb::ListAuditRequest req;
  req.set_type(o.type);
  req.set_user(o.user);
  req.set_session_id(o.session);
  req.set_limit(o.limit);
  int64_t since = 0, until = 0;
  MEZ_RETURN_IF_ERROR(TimeWindow(o.last, o.since, o.until,
                                 RealClock()->WallMicros(), &since, &until));
  req.set_since_us(since);
  req.set_until_us(until);
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::ListAuditResponse resp;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::ListAudit, req, &resp));
  if (format != OutputFormat::kText) {
    std::vector<ordered_json> rows;
    for (const auto& e : resp.events()) {
      ordered_json details = ordered_json::parse(e.details(), nullptr, false);
      if (details.is_discarded()) details = e.details();
      rows.push_back(ordered_json{{"id", e.id()},
                                  {"time", IsoUtc(e.time_us())},
                                  {"time_us", e.time_us()},
                                  {"type", e.type()},
                                  {"user", e.user()},
                                  {"session_id", e.session_id()},
                                  {"node", e.node()},
                                  {"details", details}});
    }
    PrintJson(rows, format);
    return Status::Ok();
  }
  Table t({"TIME", "TYPE", "USER", "SESSION", "NODE", "DETAILS"});
  for (const auto& e : resp.events()) {
    t.AddRow({IsoUtc(e.time_us()), e.type(), e.user(), e.session_id(), e.node(),
              e.details()});
  }
  t.Print(stdout, StdoutIsTty(), TerminalWidth());
  return Status::Ok();
}

Status ConfigGet(const std::string& identity, const std::string& key) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::GetConfigRequest req;
  req.set_key(key);
  pb::ConfigValue v;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::GetConfig, req, &v));
  std::printf("%s\n", v.value().c_str());
  return Status::Ok();
}

Status ConfigSet(const std::string& identity, const std::string& key,
                 const std::string& value) {
  MEZ_RETURN_IF_ERROR(settings::CheckValueIfKnown(key, value));
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::SetConfigRequest req;
  req.set_key(key);
  req.set_value(value);
  pb::ConfigValue v;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::SetConfig, req, &v));
  std::printf("%s = %s (applies to new sessions)\n", v.key().c_str(),
              v.value().c_str());
  return Status::Ok();
}

Status NodesAdd(const NodesAddOptions& o) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::AddNodeRequest req;
  req.set_name(o.name);
  req.set_addr(o.addr);
  req.set_openssh(o.openssh);
  req.set_login_hint(o.login_hint);
  req.set_host_key(o.host_key);
  pb::AddNodeResponse resp;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::AddNode, req, &resp));
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
  MEZ_RETURN_IF_ERROR(Call(client.get(), &pb::Cluster::Stub::ListNodes,
                           pb::ListNodesRequest(), &resp));
  pb::GetConfigRequest creq;
  creq.set_key("session_recording");
  pb::ConfigValue cluster_mode;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::GetConfig, creq, &cluster_mode));
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
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::RemoveNode, req, &resp));
  std::printf("Removed node %s.\n", name.c_str());
  return Status::Ok();
}

Status UsersAdd(const UsersAddOptions& o) {
  std::string ttl = o.ttl;
  if (ttl.empty()) ttl = o.role == "proxy" ? "8760h" : "12h";
  MEZ_ASSIGN_OR_RETURN(int64_t ttl_us, ParseDuration(ttl));
  if (ttl_us < 60'000'000) return InvalidArgument("--ttl must be at least 1m");
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::AddUserRequest req;
  req.set_name(o.name);
  for (const auto& l : o.logins) req.add_logins(l);
  req.set_role(o.role);
  req.set_ttl_seconds(ttl_us / 1'000'000);
  pb::AddUserResponse resp;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::AddUser, req, &resp));
  auth::Identity id = client->identity();
  id.token = resp.token();
  id.username = o.name;
  if (o.identity_out.empty()) {
    std::printf("%s\n", ordered_json{{"auth_addr", id.auth_addr},
                                     {"proxy_addr", id.proxy_addr},
                                     {"tls_ca_pem", id.tls_ca_pem},
                                     {"token", id.token},
                                     {"username", id.username}}
                            .dump(2)
                            .c_str());
    return Status::Ok();
  }
  MEZ_RETURN_IF_ERROR(auth::WriteIdentityFile(o.identity_out, id));
  std::printf(
      "Added user %s (%s). Identity written to %s; give it to them "
      "for 'msh login --identity %s'.\n",
      o.name.c_str(), o.role.c_str(), o.identity_out.c_str(),
      o.identity_out.c_str());
  return Status::Ok();
}

Status UsersLs(const std::string& identity, const std::string& format_s) {
  MEZ_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(format_s));
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::ListUsersResponse resp;
  MEZ_RETURN_IF_ERROR(Call(client.get(), &pb::Cluster::Stub::ListUsers,
                           pb::ListUsersRequest(), &resp));
  auto logins = [](const pb::UserInfo& u) {
    std::string s;
    for (const auto& l : u.logins()) s += (s.empty() ? "" : ",") + l;
    return s;
  };
  if (format != OutputFormat::kText) {
    std::vector<ordered_json> rows;
    for (const auto& u : resp.users()) {
      rows.push_back(ordered_json{{"name", u.name()},
                                  {"id", u.id()},
                                  {"role", u.role()},
                                  {"logins", u.logins()},
                                  {"created", IsoUtc(u.created_us())}});
    }
    PrintJson(rows, format);
    return Status::Ok();
  }
  Table t({"NAME", "ROLE", "LOGINS", "CREATED"});
  for (const auto& u : resp.users()) {
    t.AddRow({u.name(), u.role(), logins(u), IsoUtc(u.created_us())});
  }
  t.Print(stdout, StdoutIsTty(), TerminalWidth());
  return Status::Ok();
}

Status UsersRm(const std::string& identity, const std::string& name) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::RemoveUserRequest req;
  req.set_name(name);
  pb::RemoveUserResponse resp;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::RemoveUser, req, &resp));
  std::printf("Removed user %s; every token issued for it is revoked.\n",
              name.c_str());
  return Status::Ok();
}

Status CaExport(const std::string& identity, const std::string& type) {
  if (type != "user" && type != "host") {
    return InvalidArgument("--type must be user or host (got '" + type + "')");
  }
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::ExportCARequest req;
  req.set_type(type);
  pb::ExportCAResponse resp;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::ExportCA, req, &resp));
  std::printf("%s\n", resp.public_key().c_str());
  return Status::Ok();
}

namespace {

// Key directories older than this are left by a run that was killed: their
// certificate (valid at most 10 minutes) has expired, and a live ssh has
// long read its key.
constexpr int64_t kStaleKeyDirSeconds = 15 * 60;

// The files msh ssh writes into a key directory (AtomicWriteFile may leave
// a temporary sibling named NAME.tmp* when killed mid-write).
bool IsKeyDirFile(const std::string& name) {
  for (const char* f : {"id_ed25519", "id_ed25519-cert.pub", "known_hosts"}) {
    std::string base = f;
    if (name == base) return true;
    if (name.compare(0, base.size() + 4, base + ".tmp") == 0) return true;
  }
  return false;
}

// Removes a key directory of ours: its known files, then the directory.
// Anything else inside (a symlink, a subdirectory, a file we never write)
// is left alone, and so is the directory.
Status RemoveKeyDir(int parent_fd, const std::string& name) {
  int fd = openat(parent_fd, name.c_str(),
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status(Code::kInternal, "cannot open key directory " + name + ": " +
                                       std::strerror(errno));
  }
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return Status(Code::kInternal, "cannot list key directory " + name);
  }
  // Verified first, removed after: a directory holding anything else is
  // left exactly as it is.
  Status result;
  std::vector<std::string> files;
  while (struct dirent* e = readdir(d)) {
    std::string f = e->d_name;
    if (f == "." || f == "..") continue;
    struct stat st;
    if (fstatat(dirfd(d), f.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode) || !IsKeyDirFile(f)) {
      result = FailedPrecondition(
          "key directory " + name + " holds an unexpected entry '" + f +
          "'; left in place (remove it yourself if it is not needed)");
      break;
    }
    files.push_back(f);
  }
  for (size_t i = 0; result.ok() && i < files.size(); ++i) {
    if (unlinkat(dirfd(d), files[i].c_str(), 0) != 0 && errno != ENOENT) {
      result =
          Status(Code::kInternal, "cannot remove " + name + "/" + files[i] +
                                      ": " + std::strerror(errno));
    }
  }
  closedir(d);
  if (!result.ok()) return result;
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return Status(Code::kInternal, "cannot remove key directory " + name +
                                       ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// Removes ssh-* key directories that killed runs left behind (see
// kStaleKeyDirSeconds). Only directories owned by this user are touched.
void RemoveStaleKeyDirs(const std::string& keys_dir) {
  int fd =
      open(keys_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return;
  }
  std::vector<std::string> stale;
  int64_t now = RealClock()->WallMicros() / 1'000'000;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.compare(0, 4, "ssh-") != 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
    if (now - static_cast<int64_t>(st.st_mtime) < kStaleKeyDirSeconds) {
      continue;
    }
    stale.push_back(name);
  }
  for (const auto& name : stale) {
    Status s = RemoveKeyDir(dirfd(d), name);
    if (!s.ok()) {
      std::fprintf(stderr, "msh: %s\n", s.message().c_str());
    }
  }
  closedir(d);
}

// A fresh private directory $HOME/.mez/keys/ssh-XXXXXX (0700); stale ones
// are removed first.
Result<std::string> MakeKeyDir() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    return FailedPrecondition("HOME is not set; msh ssh keeps keys there");
  }
  std::string dir = std::string(home) + "/.mez";
  for (const std::string& d : {dir, dir + "/keys"}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status(Code::kInternal,
                    "cannot create " + d + ": " + std::strerror(errno));
    }
  }
  RemoveStaleKeyDirs(dir + "/keys");
  std::string tmpl = dir + "/keys/ssh-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return Status(Code::kInternal, "cannot create a key directory under " +
                                       dir + "/keys: " + std::strerror(errno));
  }
  return tmpl;
}

// Removes the key directory `path` ($HOME/.mez/keys/ssh-XXXXXX).
Status RemoveKeyDirPath(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string parent = path.substr(0, slash);
  int fd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Status(Code::kInternal,
                  "cannot open " + parent + ": " + std::strerror(errno));
  }
  Status s = RemoveKeyDir(fd, path.substr(slash + 1));
  close(fd);
  return s;
}

// The ssh child, for the signal handlers below.
volatile sig_atomic_t g_ssh_child = 0;

// A SIGTERM or SIGHUP that reaches msh goes on to ssh, so that msh stays to
// remove the key after ssh exits.
void ForwardSignal(int sig) {
  pid_t child = g_ssh_child;
  if (child > 0) kill(child, sig);
}

// Runs `argv` as a child and waits for it. Returns its exit code (128 + N
// when killed by signal N), or an error when it cannot be started.
Result<int> RunChild(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The child reports a failed exec through this pipe (closed on exec).
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    return Status(Code::kInternal,
                  std::string("pipe: ") + std::strerror(errno));
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // As system(3): ^C and ^\ are for ssh (and the remote side), not msh.
  struct sigaction ign = {}, fwd = {}, old_int, old_quit, old_term, old_hup;
  ign.sa_handler = SIG_IGN;
  fwd.sa_handler = ForwardSignal;
  sigaction(SIGINT, &ign, &old_int);
  sigaction(SIGQUIT, &ign, &old_quit);
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(pipefd[0]);
    close(pipefd[1]);
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    return Status(Code::kInternal, std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    close(pipefd[0]);
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    execvp(argv[0], argv.data());
    int err = errno;
    ssize_t n = write(pipefd[1], &err, sizeof(err));
    (void)n;
    _exit(127);
  }
  g_ssh_child = pid;
  sigaction(SIGTERM, &fwd, &old_term);
  sigaction(SIGHUP, &fwd, &old_hup);
  close(pipefd[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(pipefd[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  close(pipefd[0]);
  int status = 0;
  pid_t w;
  do {
    w = waitpid(pid, &status, 0);
  } while (w < 0 && errno == EINTR);
  g_ssh_child = 0;
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    return FailedPrecondition(std::string("cannot run the OpenSSH client '") +
                              args[0] + "': " + std::strerror(exec_errno) +
                              " (install openssh-client)");
  }
  if (w < 0) {
    return Status(Code::kInternal,
                  std::string("waitpid: ") + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

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

bool AllOf(const std::string& s, const char* extra) {
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::strchr(extra, c) == nullptr) {
      return false;
    }
  }
  return !s.empty();
}

// The known_hosts line that pins `key` ("TYPE BASE64 [comment]", as the
// node reported it) for `host` and `port` as ssh will look them up:
// "[host]:port", or the bare host for port 22.
Result<std::string> KnownHostsLine(const std::string& node,
                                   const std::string& host,
                                   const std::string& port,
                                   const std::string& key) {
  size_t sp = key.find(' ');
  std::string type = key.substr(0, sp);
  std::string blob;
  if (sp != std::string::npos) {
    blob = key.substr(sp + 1);
    blob = blob.substr(0, blob.find(' '));
  }
  if (!AllOf(type, "@.-") || !AllOf(blob, "+/=")) {
    return FailedPrecondition("the host key on record for node " + node +
                              " is malformed; ask an admin to re-register "
                              "the node");
  }
  if (!AllOf(host, ".:-_%")) {
    return FailedPrecondition("node " + node + " has an unusable address '" +
                              host + "'");
  }
  std::string pattern = port == "22" ? host : "[" + host + "]:" + port;
  return pattern + " " + type + " " + blob + "\n";
}

// "host:port", "[v6]:port", or a host alone (port 22).
void SplitAddr(const std::string& addr, std::string* host, std::string* port) {
  *host = addr;
  *port = "22";
  if (!host->empty() && host->front() == '[') {
    size_t close = host->find(']');
    if (close != std::string::npos) {
      if (close + 1 < host->size() && (*host)[close + 1] == ':') {
        *port = host->substr(close + 2);
      }
      *host = host->substr(1, close - 1);
    }
  } else if (size_t colon = host->find(':');
             colon != std::string::npos && host->rfind(':') == colon) {
    *port = host->substr(colon + 1);
    *host = host->substr(0, colon);
  }
}

// One word for /bin/sh (ProxyCommand is run by the user's shell).
std::string ShellWord(const std::string& s) {
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

// Writes the key, certificate and known_hosts into `dir` and runs the
// system OpenSSH client with them, which accepts only the host key the node
// reported to the cluster. Returns ssh's exit code.
Result<int> RunSshWithKeys(const SshOptions& o, const std::string& dir,
                           const std::pair<std::string, std::string>& key,
                           const pb::SignUserCertResponse& cert,
                           const std::string& known_host,
                           const std::string& login, const std::string& host,
                           const std::string& port,
                           const std::string& proxy_addr,
                           const std::string& proxy_host,
                           const std::string& proxy_port) {
  std::string key_path = dir + "/id_ed25519";
  std::string known_hosts = dir + "/known_hosts";
  MEZ_RETURN_IF_ERROR(AtomicWriteFile(key_path, key.first, 0600));
  MEZ_RETURN_IF_ERROR(AtomicWriteFile(key_path + "-cert.pub",
                                      cert.certificate_line() + "\n", 0600));
  MEZ_RETURN_IF_ERROR(AtomicWriteFile(known_hosts, known_host, 0600));

  std::vector<std::string> args = {"ssh",
                                   "-i",
                                   key_path,
                                   "-o",
                                   "CertificateFile=" + key_path + "-cert.pub",
                                   "-o",
                                   "IdentitiesOnly=yes",
                                   "-o",
                                   "StrictHostKeyChecking=yes",
                                   "-o",
                                   "UserKnownHostsFile=" + known_hosts,
                                   "-o",
                                   "GlobalKnownHostsFile=/dev/null",
                                   "-o",
                                   "UpdateHostKeys=no",
                                   "-o",
                                   "LogLevel=ERROR"};
  if (!o.local_forwards.empty()) {
    // Loopback unless the spec names an address, whatever ~/.ssh/config
    // says; and a port that cannot be bound is an error, not a warning.
    for (const char* opt : {"GatewayPorts=no", "ExitOnForwardFailure=yes"}) {
      args.push_back("-o");
      args.push_back(opt);
    }
    for (const auto& spec : o.local_forwards) {
      args.push_back("-L");
      args.push_back(spec);
    }
  }
  if (!proxy_addr.empty()) {
    // What -J would run, with this key and certificate on the first hop
    // too (-J takes no identity options).
    std::string jump =
        "ssh -F /dev/null -i " + ShellWord(key_path) +
        " -o CertificateFile=" + ShellWord(key_path + "-cert.pub") +
        " -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes"
        " -o UserKnownHostsFile=" +
        ShellWord(known_hosts) +
        " -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -p " +
        ShellWord(proxy_port) + " -W %h:%p " +
        ShellWord(login + "@" + proxy_host);
    args.push_back("-o");
    args.push_back("ProxyCommand=" + jump);
  }
  if (o.no_command) args.push_back("-N");
  if (o.force_tty) args.push_back("-t");
  if (o.no_tty) args.push_back("-T");
  args.push_back("-p");
  args.push_back(port);
  // "--" before the destination: after it, ssh would send "--" as part of
  // the remote command (a real sshd's shell then refuses it).
  args.push_back("--");
  args.push_back(login + "@" + host);
  // CLI11 keeps the "--" that ends msh's own options; it is not part of
  // the command.
  size_t first = !o.command.empty() && o.command.front() == "--" ? 1 : 0;
  for (size_t i = first; i < o.command.size(); ++i) {
    args.push_back(o.command[i]);
  }
  return RunChild(std::move(args));
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
    MEZ_RETURN_IF_ERROR(Call(client.get(), &pb::Cluster::Stub::WhoAmI,
                             pb::WhoAmIRequest(), &me));
    if (me.logins().empty()) {
      return FailedPrecondition(me.name() +
                                " has no logins; ask an admin to add one");
    }
    login = me.logins(0);
  }
  pb::ResolveNodeRequest rreq;
  rreq.set_name(node);
  pb::NodeInfo info;
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::ResolveNode, rreq, &info));
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
  MEZ_RETURN_IF_ERROR(
      Call(client.get(), &pb::Cluster::Stub::SignUserCert, creq, &cert));
  // The key lives while ssh runs and is removed when it exits (a run that
  // is killed leaves it to the next run's stale sweep); it is useless once
  // the certificate expires, minutes from now. The known_hosts file beside
  // it holds only this node's key, so no other file can vouch for the host.
  client.reset();
  MEZ_ASSIGN_OR_RETURN(std::string dir, MakeKeyDir());
  Result<int> ran = RunSshWithKeys(o, dir, key, cert, known_host, login, host,
                                   port, proxy_addr, proxy_host, proxy_port);
  Status removed = RemoveKeyDirPath(dir);
  if (!removed.ok()) {
    std::fprintf(stderr, "msh: %s\n", removed.message().c_str());
  }
  if (!ran.ok()) return ran.status();
  *exit_code = *ran;
  return Status::Ok();
}

}  // namespace mez::cli
