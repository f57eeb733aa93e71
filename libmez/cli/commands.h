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

// What `sessions ls` and `audit ls` show when --limit is not given.
inline constexpr int kDefaultListLimit = 50;

// msh sessions ls: newest first, the full session id in the first column.
struct SessionsLsOptions {
  std::string identity;
  std::string user, node, last, since, until, kind, status;
  int limit = -1;  // -1: kDefaultListLimit, with a note when cut; 0: all.
  std::string format = "text";
  bool quiet = false;   // -q: session ids only
  bool header = false;  // The header line also when stdout is no terminal.
};
// kInvalidArgument for a bad --format, --limit or time; the server's for
// an unknown --kind or --status.
Status SessionsLs(const SessionsLsOptions& o);

// msh sessions show ID: the session's metadata, then its enhanced
// recording events (commands, files, connections) in time order with
// their offsets from the start; --format=json prints the stored JSON lines
// (docs/formats/enhanced-events.md, "Stored form") as the server sends
// them. Same access as playback.
struct SessionsShowOptions {
  std::string identity;
  std::string id;
  std::string format = "text";  // text or json
};
Status SessionsShow(const SessionsShowOptions& o);

// mezctl audit ls: newest first; session.end rows show the login, exit
// status and duration.
struct AuditLsOptions {
  std::string identity;
  std::string type, user, session, node, last, since, until;
  int limit = -1;  // As SessionsLsOptions::limit.
  std::string format = "text";
  bool header = false;
};
Status AuditLs(const AuditLsOptions& o);

Status ConfigGet(const std::string& identity, const std::string& key);
Status ConfigSet(const std::string& identity, const std::string& key,
                 const std::string& value);

struct NodesAddOptions {
  std::string identity;
  std::string name, addr, login_hint, host_key;
  bool openssh = false;
  // For the printed mezd command: mezrecd's address as the node reaches it
  // (empty: the identity's) and the node's data dir.
  std::string auth;
  std::string data_dir = "/var/lib/mezd";
};
// The command NodesAdd prints for an agent node, safe to paste into bash
// as is: every value a single shell word, `mezd` found on PATH. `addr`
// with an IP host is mezd's --listen; with a name, mezd listens on all
// addresses at its port and advertises `addr`. `plaintext` adds
// --insecure (a cluster without TLS, reachable on loopback only).
std::string JoinCommand(const std::string& auth, const std::string& token,
                        const std::string& addr, const std::string& data_dir,
                        bool plaintext);
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
  std::string identity;     // For a session id.
  std::string speed = "1";  // play::ParseSpeed: "2", "0.5", "2x".
  // play::ParseIdleLimit ("2", "500ms", "off"); empty: the recording
  // header's idle_time_limit, if any.
  std::string skip_idle;
  std::string start_at;  // play::ParseStartAt ("90", "1m30s", "50%").
  std::string format = "pty";
  bool strip = false;  // --format=text without escapes (= plain).
  // A session id, a local file (play::IsLocalRecording), decrypted with
  // MEZITE_RECORDING_ENC_KEY when sealed, or "-" for stdin.
  std::string target;
  int stdin_fd = 0;  // Where "-" reads from (tests).
};
// Plays `target` to stdout. kInvalidArgument for a bad --format, --speed,
// --skip-idle or --start-at; a damaged recording's error (kDataLoss)
// names the target.
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

// The exit codes of every msh and mezctl command (msh ssh, once ssh runs,
// exits with ssh's own code instead). man/msh.1 and man/mezctl.1 list
// them under EXIT STATUS; kExitCodesHelp is the --help footer.
// msh web, mezctl web: asks mezrecd for a single-use sign-in code and
// prints "<public url>/login#<code>" on stdout (the one line a script
// reads) and how to use it on stderr; `program` names the command there.
Status WebSignIn(const std::string& identity, const char* program);

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // Anything not below.
inline constexpr int kExitUsage = 2;        // Bad flags or values.
inline constexpr int kExitNotFound = 3;     // No such session, node, user.
inline constexpr int kExitDenied = 4;       // Permission denied or refused.
inline constexpr int kExitUnavailable = 5;  // mezrecd cannot be reached.
inline constexpr char kExitCodesHelp[] =
    "Exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 permission denied "
    "or not authenticated, 5 mezrecd unavailable.";

// The exit code for `s`: kExitUsage for kInvalidArgument, kExitNotFound,
// kExitDenied for kPermissionDenied and kUnauthenticated, kExitUnavailable,
// kExitError for anything else.
int ExitCode(const Status& s);
// Prints "<program>: <message>" on stderr unless `s` is ok; returns
// ExitCode(s).
int Report(const char* program, const Status& s);

}  // namespace mez::cli

#endif  // MEZ_CLI_COMMANDS_H_
