// The msh and mezctl commands, one function each: the binaries in cmd/
// bind flags to these option structs and map the returned Status to an
// exit code. Output goes to stdout; errors come back as the Status.
// Each command (or group: nodes, users, config) has its own .cc file here;
// msh ssh's OpenSSH launcher is openssh.h, their shared helpers call.h.
#ifndef MEZ_CLI_COMMANDS_H_
#define MEZ_CLI_COMMANDS_H_

#include <string>
#include <vector>

#include "libmez/util/status.h"

namespace mez::cli {

// msh login --identity FILE
Status Login(const std::string& identity_file);
// msh status: prints the identity the CLIs would use (--identity, else
// $MEZ_IDENTITY, else msh login's), where it came from, its cluster, user,
// role, expiry and time left, and the logins the server grants it.
// kFailedPrecondition when it is missing or expired (after printing what
// it knows), the server's error when it cannot be reached.
Status ShowStatus(const std::string& identity);
// msh logout: removes the identity `msh login` stored; not logged in is
// not an error.
Status Logout();

struct SessionsLsOptions {
  std::string identity;
  std::string user, node, last;
  int limit = 0;
  std::string format = "text";
  bool quiet = false;  // -q: session ids only
};
Status SessionsLs(const SessionsLsOptions& o);

struct AuditLsOptions {
  std::string identity;
  std::string type, user, session, last, since, until;
  int limit = 0;
  std::string format = "text";
};
Status AuditLs(const AuditLsOptions& o);

Status ConfigGet(const std::string& identity, const std::string& key);
Status ConfigSet(const std::string& identity, const std::string& key,
                 const std::string& value);

struct NodesAddOptions {
  std::string identity;
  std::string name, addr, login_hint, host_key;
  bool openssh = false;
};
Status NodesAdd(const NodesAddOptions& o);
Status NodesLs(const std::string& identity, const std::string& format);
Status NodesRm(const std::string& identity, const std::string& name);

struct UsersAddOptions {
  std::string identity;
  std::string name;
  std::vector<std::string> logins;
  std::string role = "user";
  // Empty: 12h for people, 365 days for a proxy (a service).
  std::string ttl;
  std::string identity_out;  // Empty: print the identity JSON to stdout.
};
Status UsersAdd(const UsersAddOptions& o);
// mezctl users reissue NAME: a new identity for an existing user (same
// role, logins and uid), e.g. when theirs has expired; earlier ones stay
// valid until they expire.
struct UsersReissueOptions {
  std::string identity;
  std::string name;
  std::string ttl;           // Empty: the server's default (12h; proxy 8760h).
  std::string identity_out;  // Empty: print the identity JSON to stdout.
};
Status UsersReissue(const UsersReissueOptions& o);
Status UsersLs(const std::string& identity, const std::string& format);
Status UsersRm(const std::string& identity, const std::string& name);

// mezctl ca export --type=user|host|tls: the SSH user or host CA public
// key, or the PEM of the TLS CA the identity pins (checked by a call over
// it); kFailedPrecondition for tls with a plaintext identity.
Status CaExport(const std::string& identity, const std::string& type);

// msh play [--speed=N] [--skip-idle=DUR] [--format=pty|text|json|cast]
//          ID|FILE
struct PlayRecordingOptions {
  std::string identity;  // For a session id.
  double speed = 1.0;
  std::string skip_idle;  // A duration; empty: pauses as recorded.
  std::string format = "pty";
  // A session id, or a local file (play::IsLocalRecording), decrypted
  // with MEZITE_RECORDING_ENC_KEY when sealed.
  std::string target;
};
// Plays `target` to stdout. kInvalidArgument for a bad --format or
// --skip-idle; a damaged recording's error (kDataLoss) names the target.
Status PlayRecording(const PlayRecordingOptions& o);

// msh ssh [-p PORT] [-t|-T] [-N] [-L [BIND:]PORT:HOST:HOSTPORT]...
//         [login@]NODE [command...]
struct SshOptions {
  std::string identity;
  int port = 0;        // 0: the port registered for the node.
  std::string target;  // [login@]node; login defaults to the first login.
  std::vector<std::string> command;
  bool force_tty = false;   // -t
  bool no_tty = false;      // -T
  bool no_command = false;  // -N: forwarding only, no shell or command.
  // -L specs, "[bind_address:]port:host:hostport"; without a bind address
  // the local port listens on loopback only.
  std::vector<std::string> local_forwards;
};
// Checks one -L spec, "[bind_address:]port:host:hostport" (addresses may be
// bracketed IPv6 literals). kInvalidArgument naming what is wrong.
Status CheckLocalForward(const std::string& spec);
// Gets a short-lived certificate for a fresh key, scoped to the node (it
// carries a recording grant for that node, not the user's API token), and
// runs the system OpenSSH client with it, which accepts only the host key
// the node reported to the cluster. The key directory
// ($HOME/.mez/keys/ssh-*) is removed when ssh exits; ones left by killed
// runs are removed once their certificate has expired. On success
// `*exit_code` is ssh's exit code (the remote command's, or 255). Errors
// before ssh runs: kFailedPrecondition when the node has no host key on
// record yet, or ssh cannot be run.
Status Ssh(const SshOptions& o, int* exit_code);

// Prints "<program>: <message>" on stderr and returns the exit code for
// `s`: 0 ok, 2 usage (kInvalidArgument), 1 anything else.
int Report(const char* program, const Status& s);

}  // namespace mez::cli

#endif  // MEZ_CLI_COMMANDS_H_
