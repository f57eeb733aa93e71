#include "libmez/bpf/event.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "libmez/bpf/event_abi.h"

namespace mez::bpf {
namespace {

// A ring buffer record as the kernel side writes it.
std::vector<uint8_t> Record(const mez_bpf_record& header,
                            const std::string& body = "") {
  std::vector<uint8_t> out(sizeof(header) + body.size());
  std::memcpy(out.data(), &header, sizeof(header));
  std::memcpy(out.data() + sizeof(header), body.data(), body.size());
  return out;
}

mez_bpf_record ExecHeader(const std::string& exe, const std::string& cwd,
                          const std::string& argv, uint64_t argv_total) {
  mez_bpf_record r{};
  r.kind = MEZ_BPF_KIND_EXEC;
  r.cookie = 42;
  r.seq = 3;
  r.time_ns = 1000;
  r.pid = 10;
  r.ppid = 9;
  r.pgid = 8;
  r.uid = 1000;
  r.euid = 0;
  r.exe_len = static_cast<uint32_t>(exe.size());
  r.cwd_len = static_cast<uint32_t>(cwd.size());
  r.argv_len = static_cast<uint32_t>(argv.size());
  r.argv_total = argv_total;
  return r;
}

TEST(BpfEventTest, DecodesExecWithPathsFromLeafToRoot) {
  std::string exe("echo\0bin\0usr\0", 13);
  std::string cwd("work\0", 5);
  std::string argv("echo\0a b\0\0", 10);
  auto rec = Record(ExecHeader(exe, cwd, argv, argv.size()), exe + cwd + argv);
  Result<Event> e = DecodeRecord(rec, 5);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->kind, EventKind::kExec);
  EXPECT_EQ(e->cookie, 42u);
  EXPECT_EQ(e->seq, 3u);
  EXPECT_EQ(e->time_unix_ns, 1005);
  EXPECT_EQ(e->pid, 10);
  EXPECT_EQ(e->ppid, 9);
  EXPECT_EQ(e->pgid, 8);
  EXPECT_EQ(e->uid, 1000u);
  EXPECT_EQ(e->euid, 0u);
  EXPECT_EQ(e->path, "/usr/bin/echo");
  EXPECT_EQ(e->cwd, "/work");
  EXPECT_EQ(e->argv, (std::vector<std::string>{"echo", "a b", ""}));
  EXPECT_EQ(e->argv_bytes, 10u);
  EXPECT_EQ(e->argv_cut_bytes, 0u);
}

TEST(BpfEventTest, RootCwdAndCutPathsAndArgv) {
  std::string exe("x\0", 2);
  std::string argv("long-argument-prefi", 19);  // cut inside an argument
  mez_bpf_record h = ExecHeader(exe, "", argv, 50000);
  h.flags = MEZ_BPF_FLAG_EXE_CUT;
  Result<Event> e = DecodeRecord(Record(h, exe + argv), 0);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->path, ".../x");
  EXPECT_TRUE(e->path_cut);
  EXPECT_EQ(e->cwd, "/");
  EXPECT_FALSE(e->cwd_cut);
  EXPECT_EQ(e->argv, (std::vector<std::string>{"long-argument-prefi"}));
  EXPECT_EQ(e->argv_bytes, 50000u);
  EXPECT_EQ(e->argv_cut_bytes, 50000u - 19u);
}

TEST(BpfEventTest, DecodesExitCodeSignalAndCore) {
  mez_bpf_record r{};
  r.kind = MEZ_BPF_KIND_EXIT;
  r.exit_code = 7 << 8;
  r.duration_ns = 123;
  Result<Event> e = DecodeRecord(Record(r), 0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, EventKind::kExit);
  EXPECT_EQ(e->exit_code, 7);
  EXPECT_FALSE(e->signal.has_value());
  EXPECT_EQ(e->duration_ns, 123u);

  r.exit_code = 9;
  e = DecodeRecord(Record(r), 0);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->exit_code.has_value());
  EXPECT_EQ(e->signal, 9);
  EXPECT_FALSE(e->core_dumped);

  r.exit_code = 0x80 | 11;
  e = DecodeRecord(Record(r), 0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->signal, 11);
  EXPECT_TRUE(e->core_dumped);
}

TEST(BpfEventTest, DecodesConnectRecords) {
  mez_bpf_record r{};
  r.kind = MEZ_BPF_KIND_CONNECT;
  r.pid = 5;
  r.duration_ns = 77;
  mez_bpf_connect c{};
  c.family = 2;  // AF_INET
  c.remote_port = htons(443);
  c.local_port = htons(50000);
  c.result = -111;  // ECONNREFUSED
  const uint8_t remote[4] = {10, 1, 2, 3};
  const uint8_t local[4] = {127, 0, 0, 1};
  std::memcpy(c.remote_addr, remote, 4);
  std::memcpy(c.local_addr, local, 4);
  std::string body(reinterpret_cast<const char*>(&c), sizeof(c));
  Result<Event> e = DecodeRecord(Record(r, body), 0);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->kind, EventKind::kConnect);
  EXPECT_FALSE(e->ipv6);
  EXPECT_EQ(e->remote_addr, "10.1.2.3");
  EXPECT_EQ(e->remote_port, 443);
  EXPECT_EQ(e->local_addr, "127.0.0.1");
  EXPECT_EQ(e->local_port, 50000);
  EXPECT_FALSE(e->established);
  EXPECT_EQ(e->error, 111);
  EXPECT_EQ(e->duration_ns, 77u);
  auto j = nlohmann::json::parse(ToJsonLine(*e));
  EXPECT_EQ(j["type"], "connect");
  EXPECT_EQ(j["family"], "ipv4");
  EXPECT_EQ(j["remote_addr"], "10.1.2.3");
  EXPECT_EQ(j["errno"], 111);
  EXPECT_EQ(j["error"], "ECONNREFUSED");

  c.family = 10;  // AF_INET6
  c.result = 0;
  uint8_t v6[16] = {};
  v6[15] = 1;
  std::memcpy(c.remote_addr, v6, 16);
  body.assign(reinterpret_cast<const char*>(&c), sizeof(c));
  e = DecodeRecord(Record(r, body), 0);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->ipv6);
  EXPECT_EQ(e->remote_addr, "::1");
  EXPECT_TRUE(e->established);
  j = nlohmann::json::parse(ToJsonLine(*e));
  EXPECT_EQ(j["established"], true);
  EXPECT_FALSE(j.contains("errno"));

  c.op = MEZ_BPF_NET_LISTEN;
  body.assign(reinterpret_cast<const char*>(&c), sizeof(c));
  e = DecodeRecord(Record(r, body), 0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, EventKind::kListen);
  j = nlohmann::json::parse(ToJsonLine(*e));
  EXPECT_EQ(j["type"], "listen");
  EXPECT_FALSE(j.contains("remote_addr"));
  c.op = MEZ_BPF_NET_UDP;
  body.assign(reinterpret_cast<const char*>(&c), sizeof(c));
  e = DecodeRecord(Record(r, body), 0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, EventKind::kUdpSend);
  EXPECT_EQ(nlohmann::json::parse(ToJsonLine(*e))["type"], "udp_send");
  c.op = 7;  // no such operation
  body.assign(reinterpret_cast<const char*>(&c), sizeof(c));
  EXPECT_EQ(DecodeRecord(Record(r, body), 0).status().code(), Code::kDataLoss);
  c.op = MEZ_BPF_NET_CONNECT;
  body.assign(reinterpret_cast<const char*>(&c), sizeof(c));

  // Short, or of a family the kernel side never writes.
  EXPECT_EQ(DecodeRecord(Record(r, body.substr(0, 10)), 0).status().code(),
            Code::kDataLoss);
  c.family = 1;
  body.assign(reinterpret_cast<const char*>(&c), sizeof(c));
  EXPECT_EQ(DecodeRecord(Record(r, body), 0).status().code(), Code::kDataLoss);
}

// A file record: the sub-header, then path components, then the names as
// the process gave them.
std::vector<uint8_t> FileRecord(const mez_bpf_file& f, const std::string& base,
                                const std::string& base2,
                                const std::string& name,
                                const std::string& name2) {
  mez_bpf_record r{};
  r.kind = MEZ_BPF_KIND_FILE;
  r.pid = 7;
  r.exe_len = static_cast<uint32_t>(base.size());
  r.cwd_len = static_cast<uint32_t>(base2.size());
  std::string body(reinterpret_cast<const char*>(&f), sizeof(f));
  return Record(r, body + base + base2 + name + name2);
}

TEST(BpfEventTest, DecodesFileRecords) {
  mez_bpf_file f{};
  f.op = MEZ_BPF_FILE_OPEN;
  f.result = 3;
  f.flags = 01 | 0100 | 02000000;  // O_WRONLY | O_CREAT | O_CLOEXEC
  f.mode = 0640;
  f.resolved = 1;
  Result<Event> e =
      DecodeRecord(FileRecord(f, std::string("f\0d\0", 4), "", "", ""), 0);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->kind, EventKind::kFile);
  EXPECT_EQ(e->file_op, "open");
  EXPECT_EQ(e->path, "/d/f");
  EXPECT_EQ(e->fd, 3);
  EXPECT_EQ(e->flag_names,
            (std::vector<std::string>{"O_WRONLY", "O_CREAT", "O_CLOEXEC"}));
  auto j = nlohmann::json::parse(ToJsonLine(*e));
  EXPECT_EQ(j["type"], "file");
  EXPECT_EQ(j["op"], "open");
  EXPECT_EQ(j["fd"], 3);
  EXPECT_EQ(j["mode"], 0640);

  // A failed open: the name as given, joined to its directory.
  f.resolved = 0;
  f.result = -2;
  f.flags = 0;
  f.name_len = 4;
  e = DecodeRecord(
      FileRecord(f, std::string("w\0", 2), "", std::string("a/b\0", 4), ""), 0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->path, "/w/a/b");
  EXPECT_EQ(e->error, 2);
  EXPECT_EQ(e->fd, -1);
  EXPECT_EQ(e->flag_names, std::vector<std::string>{"O_RDONLY"});
  j = nlohmann::json::parse(ToJsonLine(*e));
  EXPECT_EQ(j["error"], "ENOENT");
  EXPECT_FALSE(j.contains("fd"));

  // A rename of an absolute name to a relative one; unlinkat(AT_REMOVEDIR).
  f = mez_bpf_file{};
  f.op = MEZ_BPF_FILE_RENAME;
  f.flags = 1;
  f.name_len = 3;
  f.name2_len = 2;
  e = DecodeRecord(FileRecord(f, "", std::string("h\0", 2),
                              std::string("/x\0", 3), std::string("y\0", 2)),
                   0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->file_op, "rename");
  EXPECT_EQ(e->path, "/x");
  EXPECT_EQ(e->new_path, "/h/y");
  EXPECT_EQ(e->flag_names, std::vector<std::string>{"RENAME_NOREPLACE"});
  f = mez_bpf_file{};
  f.op = MEZ_BPF_FILE_UNLINK;
  f.flags = 0x200;
  f.name_len = 3;
  e = DecodeRecord(FileRecord(f, "", "", std::string("/d\0", 3), ""), 0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->file_op, "rmdir");
}

TEST(BpfEventTest, RejectsFileRecordsWhoseLengthsDoNotFit) {
  mez_bpf_file f{};
  f.op = MEZ_BPF_FILE_OPEN;
  f.name_len = 5;  // one more than there is
  EXPECT_EQ(DecodeRecord(FileRecord(f, "", "", std::string("abc\0", 4), ""), 0)
                .status()
                .code(),
            Code::kDataLoss);
  f.name_len = 0xffffffffu;
  f.name2_len = 2;  // a 32-bit sum would wrap
  EXPECT_EQ(DecodeRecord(FileRecord(f, "", "", "ab", ""), 0).status().code(),
            Code::kDataLoss);
  f = mez_bpf_file{};
  f.op = 9;
  EXPECT_EQ(DecodeRecord(FileRecord(f, "", "", "", ""), 0).status().code(),
            Code::kDataLoss);
  mez_bpf_record r{};
  r.kind = MEZ_BPF_KIND_FILE;
  EXPECT_EQ(DecodeRecord(Record(r, "short"), 0).status().code(),
            Code::kDataLoss);
}

// Every length is checked against the record's size before it is used.
TEST(BpfEventTest, RejectsRecordsWhoseLengthsDoNotFit) {
  EXPECT_EQ(DecodeRecord(std::vector<uint8_t>(10), 0).status().code(),
            Code::kDataLoss);

  std::string body("a\0", 2);
  mez_bpf_record h = ExecHeader(body, "", "", 0);
  h.exe_len = 3;  // one past the body
  EXPECT_EQ(DecodeRecord(Record(h, body), 0).status().code(), Code::kDataLoss);

  h = ExecHeader(body, "", "", 0);
  h.cwd_len = 0xffffffffu;  // would wrap a 32-bit sum
  h.argv_len = 2;
  EXPECT_EQ(DecodeRecord(Record(h, body), 0).status().code(), Code::kDataLoss);

  h = ExecHeader("", "", body, 1);  // more argv than the process has
  EXPECT_EQ(DecodeRecord(Record(h, body), 0).status().code(), Code::kDataLoss);

  h = ExecHeader("", "", "", 0);
  h.kind = 99;
  EXPECT_EQ(DecodeRecord(Record(h), 0).status().code(), Code::kDataLoss);
}

// Inputs fuzz/bpf_record_fuzz.cc found (kept in fuzz/corpus/bpf_record):
// undefined behaviour, caught by the sanitizer build of these tests.

// crash_time_overflow: a kernel stamp near 2^63 plus the clock offset
// overflowed a signed sum (before the unknown kind was even looked at).
TEST(BpfEventTest, FuzzStampNearTheTopOfItsRangeDoesNotOverflow) {
  const std::vector<uint8_t> crash = {
      0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x7e, 0x00, 0x00, 0x00,
      0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x03, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x21, 0x00, 0x40, 0x09, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x40,
      0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40,
      0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40,
      0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40,
      0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x19, 0x40, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x77, 0x00, 0x22, 0x62, 0x22, 0x22, 0x22, 0x22,
      0x26, 0x22, 0x22, 0x90, 0x8a, 0x00, 0x00, 0x00, 0x26, 0x01, 0x00, 0x00,
      0x00, 0x00,
  };
  EXPECT_EQ(DecodeRecord(crash, 7).status().code(), Code::kDataLoss);
  mez_bpf_record h = ExecHeader("", "", "", 0);
  h.time_ns = 0x7ffffffffffffffeu;
  Result<Event> e = DecodeRecord(Record(h), 7);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->time_unix_ns, INT64_MIN + 5);  // modulo 2^64
  h.time_ns = 3;
  e = DecodeRecord(Record(h), -10);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->time_unix_ns, -7);
}

// crash_connect_int_min: a network record's result INT_MIN could not be
// negated into an errno. Results below -4095 (no errno) are rejected, in
// network and file records alike (the file case found by reading the
// same code).
TEST(BpfEventTest, FuzzResultThatIsNoErrnoIsRejected) {
  const std::vector<uint8_t> crash = {
      0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00,
      0x00, 0x00, 0xe8, 0x03, 0x00, 0x01, 0x00, 0x7f, 0xfd, 0x17, 0xf8, 0xb8,
      0x48, 0x00, 0x00, 0x60, 0x40, 0x00, 0x07, 0x73, 0xa3, 0x00, 0x00, 0x00,
      0x09, 0x00, 0x00, 0x51, 0xe8, 0x03, 0x00, 0x00, 0x60, 0x30, 0x00, 0x06,
      0x87, 0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
  };
  EXPECT_EQ(DecodeRecord(crash, 7).status().code(), Code::kDataLoss);

  mez_bpf_record r{};
  r.kind = MEZ_BPF_KIND_CONNECT;
  mez_bpf_connect c{};
  c.family = 2;
  c.result = INT32_MIN;
  std::string body(reinterpret_cast<const char*>(&c), sizeof(c));
  EXPECT_EQ(DecodeRecord(Record(r, body), 0).status().code(), Code::kDataLoss);
  c.result = -4096;
  body.assign(reinterpret_cast<const char*>(&c), sizeof(c));
  EXPECT_EQ(DecodeRecord(Record(r, body), 0).status().code(), Code::kDataLoss);
  c.result = -4095;
  body.assign(reinterpret_cast<const char*>(&c), sizeof(c));
  Result<Event> e = DecodeRecord(Record(r, body), 0);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->error, 4095);

  mez_bpf_file f{};
  f.op = MEZ_BPF_FILE_OPEN;
  f.result = INT32_MIN;
  EXPECT_EQ(DecodeRecord(FileRecord(f, "", "", "", ""), 0).status().code(),
            Code::kDataLoss);
  f.result = -4095;
  e = DecodeRecord(FileRecord(f, "", "", "", ""), 0);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->error, 4095);
  EXPECT_EQ(e->fd, -1);
}

TEST(BpfEventTest, JsonLineOfEachKind) {
  Event exec;
  exec.kind = EventKind::kExec;
  exec.cookie = 5;
  exec.seq = 1;
  exec.time_unix_ns = 1700000000000000000;
  exec.pid = 100;
  exec.ppid = 99;
  exec.pgid = 98;
  exec.uid = 1000;
  exec.euid = 1000;
  exec.path = "/usr/bin/echo";
  exec.cwd = "/home/u";
  exec.argv = {"echo", "hi"};
  exec.argv_bytes = 8;
  auto j = nlohmann::json::parse(ToJsonLine(exec));
  EXPECT_EQ(j["type"], "exec");
  EXPECT_EQ(j["cookie"], 5);
  EXPECT_EQ(j["seq"], 1);
  EXPECT_EQ(j["time_unix_ns"], 1700000000000000000);
  EXPECT_EQ(j["path"], "/usr/bin/echo");
  EXPECT_EQ(j["pgid"], 98);
  EXPECT_EQ(j["cwd"], "/home/u");
  EXPECT_EQ(j["argv"], nlohmann::json({"echo", "hi"}));
  EXPECT_EQ(j["argv_bytes"], 8);
  EXPECT_EQ(j["argv_cut_bytes"], 0);
  EXPECT_FALSE(j.contains("path_cut"));

  Event exit;
  exit.kind = EventKind::kExit;
  exit.signal = 9;
  exit.duration_ns = 5;
  j = nlohmann::json::parse(ToJsonLine(exit));
  EXPECT_EQ(j["type"], "exit");
  EXPECT_EQ(j["signal"], 9);
  EXPECT_EQ(j["core_dumped"], false);
  EXPECT_FALSE(j.contains("exit_code"));

  Event loss;
  loss.kind = EventKind::kLoss;
  loss.seq = 70;
  loss.lost_exec = 3;
  loss.lost_exit = 4;
  j = nlohmann::json::parse(ToJsonLine(loss));
  EXPECT_EQ(j["type"], "loss");
  EXPECT_EQ(j["lost_exec"], 3);
  EXPECT_EQ(j["lost_exit"], 4);
  EXPECT_EQ(j["lost_forks"], 0);
}

// File names and arguments are bytes: what is not UTF-8 must not break
// (or throw out of) the JSON line.
TEST(BpfEventTest, JsonLineSurvivesBytesThatAreNotUtf8) {
  Event e;
  e.path = "/tmp/\xff\xfe";
  e.argv = {"a\"b\n", std::string("\xc3", 1)};
  std::string line = ToJsonLine(e);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["path"], "/tmp/\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(j["argv"][0], "a\"b\n");
}

}  // namespace
}  // namespace mez::bpf
