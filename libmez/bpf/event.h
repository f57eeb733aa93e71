// The events of enhanced recording: one typed struct and its JSON line
// form, the schema of docs/formats/enhanced-events.md. DecodeRecord turns
// the kernel's ring buffer records (event_abi.h) into events.
#ifndef MEZ_BPF_EVENT_H_
#define MEZ_BPF_EVENT_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "libmez/util/status.h"

namespace mez::bpf {

enum class EventKind {
  kExec,       // a tracked process replaced its program
  kExit,       // a tracked process that had exec'd ended
  kLoss,       // the kernel could not deliver some of the session's events
  kConnect,    // a TCP connect of a tracked process got its outcome
  kFile,       // a tracked process opened, created, unlinked or renamed a file
  kListen,     // a tracked process made a TCP socket listen
  kAccept,     // accept() returned a TCP connection to a tracked process
  kUdpSend,    // a session's first UDP send to a destination
  kUntracked,  // a process still running when the session was untracked
};

// "exec", "exit", "loss", "connect", "file", "listen", "accept",
// "udp_send", "untracked".
const char* EventKindName(EventKind kind);

// One event of one session. Which fields mean something depends on kind;
// the others keep their defaults.
struct Event {
  EventKind kind = EventKind::kExec;
  // The session's cookie, as given to Monitor::Track.
  uint64_t cookie = 0;
  // Every kind but loss: the session's sequence number, from 1, one per
  // event the kernel produced for the session (a collapsed open stands for
  // `count` numbers from this one); a number that never arrives is
  // counted in a loss event. loss: the last number handed out when the
  // loss was read (every lost event's number is at most this).
  uint64_t seq = 0;
  // Wall clock, nanoseconds since the Unix epoch (converted from the
  // kernel's monotonic time when the event was decoded).
  int64_t time_unix_ns = 0;
  // CLOCK_MONOTONIC nanoseconds, as the kernel stamped it (0 for loss).
  uint64_t monotonic_ns = 0;

  // exec, exit: the process (tgid), its parent, real and effective uid.
  int pid = 0;
  int ppid = 0;
  int pgid = 0;  // exec: the process group (a pipeline, under job control)
  uint32_t uid = 0;
  uint32_t euid = 0;

  // exec: the executable's absolute path and the working directory, as
  // seen from the initial mount namespace's root. When a path was deeper
  // or longer than the kernel keeps, *_cut is set and the path holds only
  // its last components after a leading ".../".
  std::string path;
  bool path_cut = false;
  std::string cwd;
  bool cwd_cut = false;
  // exec: argv as captured (at most kArgvCap bytes); argv_bytes is the
  // size of the whole argv (each argument with its NUL) and argv_cut_bytes
  // how many of those bytes are not here (0: argv is complete). The last
  // argument of a cut argv is a prefix.
  std::vector<std::string> argv;
  uint64_t argv_bytes = 0;
  uint64_t argv_cut_bytes = 0;
  bool argv_unreadable = false;

  // connect, listen, accept, udp_send: the endpoints ("127.0.0.1", "::1"; ports
  // in host order; listen has only the local one), and the outcome:
  // established, else error is the errno that ended the attempt (ECONNREFUSED,
  // ETIMEDOUT; 0: closed before any answer). file: error is the errno of a
  // failed operation, else 0. duration_ns: from the SYN to the outcome.
  bool ipv6 = false;
  std::string remote_addr;
  uint16_t remote_port = 0;
  std::string local_addr;
  uint16_t local_port = 0;
  int error = 0;
  bool established = false;

  // file: the operation ("open", "unlink", "rmdir", "rename"), the path
  // (absolute: an opened file's real path, else the name as the process
  // gave it joined to the directory it is relative to), for rename the new
  // path, the flags (open's O_* flags, renameat2's RENAME_*), open's mode,
  // and the result: fd (>= 0) for a successful open, else error (errno)
  // when it failed, both -1/0 for a successful unlink or rename.
  std::string file_op;
  std::string new_path;
  uint32_t flags = 0;
  std::vector<std::string> flag_names;
  uint32_t mode = 0;
  int fd = -1;
  // file open: how many identical opens this event stands for (see
  // collapse.h): they have the sequence numbers seq to seq + count - 1,
  // time_unix_ns and fd are the first's, last_time_unix_ns (and
  // last_monotonic_ns) the last's. 1 for every other event, whose last_*
  // are 0.
  uint64_t count = 1;
  int64_t last_time_unix_ns = 0;
  uint64_t last_monotonic_ns = 0;

  // exit: exactly one of exit_code and signal is set.
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool core_dumped = false;
  // exit: time from the process's last exec to its exit; connect: see
  // above.
  uint64_t duration_ns = 0;

  // loss: events of the session the kernel produced but could not put in
  // the ring buffer since the previous loss event, by kind, and children
  // it could not follow (the task map was full).
  uint64_t lost_exec = 0;
  uint64_t lost_exit = 0;
  uint64_t lost_forks = 0;
  uint64_t lost_net = 0;  // connect, listen, accept and udp_send events
  uint64_t lost_file = 0;
};

// Bytes of argv the kernel keeps per exec (MEZ_BPF_ARGV_CAP).
extern const uint64_t kArgvCap;

// Decodes one ring buffer record. realtime_minus_monotonic_ns converts
// the kernel's monotonic stamp to wall time. Every length in the record
// is checked against its size: a malformed record is kDataLoss, never a
// read out of bounds.
Result<Event> DecodeRecord(std::span<const uint8_t> record,
                           int64_t realtime_minus_monotonic_ns);

// The event as one line of JSON (no newline), keys as in
// docs/formats/enhanced-events.md. Bytes that are not UTF-8 (file names
// and arguments may be anything) become U+FFFD.
std::string ToJsonLine(const Event& event);

// CLOCK_REALTIME minus CLOCK_MONOTONIC, now, in nanoseconds.
int64_t RealtimeMinusMonotonicNs();

}  // namespace mez::bpf

#endif  // MEZ_BPF_EVENT_H_
