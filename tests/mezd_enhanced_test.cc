// Enhanced recording (docs/enhanced-recording.md) with the real mezd
// binary, a real mezrecd and the stock OpenSSH client, in node mode with
// mezrecd stopped during the sessions, so that their spools stay on the
// node and are read here with the spool reader:
//   - with --bpf, a session's exec, exit and file events are recorded in
//     its own spool (absolute paths, full argv, exit codes, one cookie),
//     a double fork after setsid included; a concurrent session's events
//     and a process of the same user outside any session are absent;
//   - --bpf as an unprivileged user: mezd exits at start with one line,
//     unless --bpf-degraded, which records enhanced=false;
//   - a pty session is followed from its start too;
//   - no --bpf: the header has no `enhanced` field.
#include <gtest/gtest.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "libmez/bpf/monitor.h"
#include "libmez/spool/spool.h"
#include "libmez/util/file.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

CommandResult Sh(const std::string& command) { return Run(command); }

bool PollUntil(const std::function<bool()>& pred, int seconds = 60) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    if (pred()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

// The closed spool files (*.spool) in `dir`, full paths.
std::vector<std::string> Spools(const std::string& dir) {
  std::vector<std::string> out;
  auto r = Sh("ls -1 " + ShellQuote(dir) + " 2>/dev/null");
  std::istringstream in(r.out);
  for (std::string name; std::getline(in, name);) {
    if (name.size() > 6 && name.compare(name.size() - 6, 6, ".spool") == 0) {
      out.push_back(dir + "/" + name);
    }
  }
  return out;
}

// One spool read back: its header and its events, each line parsed.
struct Spooled {
  mezite::v1::RecordHeader header;
  std::vector<json> events;
  int events_frames = 0;
  bool exit_last = false;  // the exit frame is the last frame
};

Spooled ReadSpool(const std::string& path) {
  Spooled s;
  auto reader = spool::SpoolReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status().message();
  if (!reader.ok()) return s;
  mezite::v1::RecordFrame f;
  for (;;) {
    auto more = (*reader)->Next(&f);
    EXPECT_TRUE(more.ok()) << more.status().message();
    if (!more.ok() || !*more) break;
    s.exit_last = f.has_exit();
    if (f.has_header()) s.header = f.header();
    if (!f.has_events()) continue;
    ++s.events_frames;
    EXPECT_GE(f.events().offset_us(), 0);
    for (const std::string& line : f.events().lines()) {
      s.events.push_back(json::parse(line, nullptr, false));
      EXPECT_FALSE(s.events.back().is_discarded()) << line;
    }
  }
  EXPECT_TRUE((*reader)->clean_end()) << path;
  return s;
}

class MezdEnhancedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
    cluster_ = std::make_unique<Mezrecd>(dir_.File("data"));
    ASSERT_TRUE(cluster_->Start()) << cluster_->log();
  }
  void StartNode(std::vector<std::string> extra_args) {
    MezdOptions options;
    options.extra_args = std::move(extra_args);
    options.extra_args.push_back("--data-dir");
    options.extra_args.push_back(dir_.File("mezd"));
    options.env = {"MEZITE_RECORDING_MODE=node"};
    std::string error;
    mezd_ = StartRegisteredNode(cluster_.get(), dir_.path(), options, &error);
    ASSERT_NE(mezd_, nullptr) << error;
  }
  // A certificate for `login` on node-1, as msh would obtain it, for the
  // stock ssh client (so sessions run while mezrecd is stopped): returns
  // the ssh command prefix.
  std::string StockSsh(const std::string& login, uint16_t port) {
    TestUser user;
    std::string error;
    std::string name = "u" + std::to_string(users_++);
    EXPECT_TRUE(
        AddUserAndLogin(*cluster_, dir_.path(), name, login, &user, &error))
        << error;
    return StockSshWithClusterCert(*cluster_, user, dir_.File(name + ".key"),
                                   port, login);
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> cluster_;
  std::unique_ptr<Mezd> mezd_;
  int users_ = 0;
};

// The exec events of `s` by pid, and the exit event of each pid.
struct Processes {
  std::vector<json> execs;
  std::map<int64_t, json> exits;
  explicit Processes(const Spooled& s) {
    for (const json& e : s.events) {
      if (e["type"] == "exec") execs.push_back(e);
      if (e["type"] == "exit") exits[e["pid"].get<int64_t>()] = e;
    }
  }
  // The exec events running `path` (absolute).
  std::vector<json> Of(const std::string& path) const {
    std::vector<json> out;
    for (const json& e : execs) {
      if (e["path"] == path) out.push_back(e);
    }
    return out;
  }
  // The exit code of the process of `exec`, or -1.
  int ExitCode(const json& exec) const {
    auto it = exits.find(exec["pid"].get<int64_t>());
    if (it == exits.end() || !it->second.contains("exit_code")) return -1;
    return it->second["exit_code"].get<int>();
  }
};

TEST_F(MezdEnhancedTest, SessionsRecordTheirOwnEventsInTheirSpool) {
  if (!bpf::Monitor::Built()) {
    GTEST_SKIP() << "this build has no BPF (MEZ_BPF off or missing tools)";
  }
  StartNode({"--bpf", "--upload-retry-max", "1s"});
  std::string me = CurrentLogin();
  std::string ssh = StockSsh(me, mezd_->port());
  ASSERT_EQ(cluster_->Stop(), 0);  // The spools stay on the node.

  std::string work = dir_.File("work");
  ASSERT_EQ(mkdir(work.c_str(), 0755), 0);
  WriteFileOrDie(work + "/note.txt", "a note\n");
  std::string fa = dir_.File("a-started"), fb = dir_.File("b-started"),
              fo = dir_.File("outside-done");
  std::string big(8192, 'x');
  std::string args;
  for (int i = 1; i <= 50; ++i) args += " a" + std::to_string(i);
  std::string a_cmd =
      "touch " + fa + "; while [ ! -e " + fb + " ] || [ ! -e " + fo +
      " ]; do sleep 0.05; done; /bin/echo" + args + " " + big +
      " >/dev/null; cd " + work +
      " && cat note.txt; setsid sh -c '(sleep 0; /bin/true) &'; "
      "/bin/sh -c 'exit 7'; exit 0";
  std::string b_cmd = "touch " + fb + "; while [ ! -e " + fa +
                      " ]; do sleep 0.05; done; /bin/echo only-in-b; "
                      "while [ ! -e " +
                      fo + " ]; do sleep 0.05; done";
  CommandResult a_result, b_result;
  std::thread a([&] { a_result = Sh(ssh + ShellQuote(a_cmd) + " 2>&1"); });
  std::thread b([&] { b_result = Sh(ssh + ShellQuote(b_cmd) + " 2>&1"); });
  // A process of the same user, outside any session, while both run.
  bool both = PollUntil([&] { return Exists(fa) && Exists(fb); });
  auto outside = Sh("/bin/echo outside-marker-17 >/dev/null");
  WriteFileOrDie(fo, "");
  a.join();
  b.join();
  ASSERT_TRUE(both) << mezd_->log();
  ASSERT_EQ(outside.exit_code, 0);
  ASSERT_EQ(a_result.exit_code, 0) << a_result.out << mezd_->log();
  ASSERT_EQ(b_result.exit_code, 0) << b_result.out << mezd_->log();
  EXPECT_EQ(a_result.out, "a note\n");

  std::vector<std::string> spools;
  ASSERT_TRUE(PollUntil([&] {
    spools = Spools(dir_.File("mezd") + "/spool");
    return spools.size() == 2;
  })) << mezd_->log();
  Spooled sa = ReadSpool(spools[0]), sb = ReadSpool(spools[1]);
  if (sa.header.command() != a_cmd) std::swap(sa, sb);
  ASSERT_EQ(sa.header.command(), a_cmd);
  ASSERT_EQ(sb.header.command(), b_cmd);

  for (const Spooled* s : {&sa, &sb}) {
    EXPECT_TRUE(s->header.has_enhanced() && s->header.enhanced());
    EXPECT_GT(s->events_frames, 0);
    EXPECT_TRUE(s->exit_last) << "events after the exit frame";
    // One cookie, every event; numbered from 1 without a gap; no loss.
    std::set<uint64_t> cookies, seqs;
    for (const json& e : s->events) {
      cookies.insert(e["cookie"].get<uint64_t>());
      seqs.insert(e["seq"].get<uint64_t>());
      EXPECT_NE(e["type"], "loss") << e.dump();
      EXPECT_EQ(e.dump().find("outside-marker-17"), std::string::npos)
          << "a process outside the session was recorded: " << e.dump();
    }
    ASSERT_EQ(cookies.size(), 1u);
    EXPECT_NE(*cookies.begin(), 0u);
    ASSERT_FALSE(seqs.empty());
    EXPECT_EQ(*seqs.begin(), 1u);
    EXPECT_EQ(*seqs.rbegin(), seqs.size()) << "a gap in the sequence";
  }
  EXPECT_NE(sa.events[0]["cookie"], sb.events[0]["cookie"]);

  Processes pa(sa), pb(sb);
  // /bin/echo with 50 arguments and one of 8 KiB: whole, absolute path.
  std::vector<json> echoes = pa.Of(RealPath("/bin/echo"));
  ASSERT_EQ(echoes.size(), 1u) << sa.events.size();
  const json& echo = echoes[0];
  ASSERT_EQ(echo["argv"].size(), 52u);
  EXPECT_EQ(echo["argv"][0], "/bin/echo");
  EXPECT_EQ(echo["argv"][1], "a1");
  EXPECT_EQ(echo["argv"][50], "a50");
  EXPECT_EQ(echo["argv"][51], big);
  EXPECT_EQ(echo["argv_cut_bytes"], 0);
  EXPECT_EQ(pa.ExitCode(echo), 0);
  // cat of a relative name: the absolute path of the file it opened.
  std::string real_work = RealPath(work);
  std::vector<json> cats = pa.Of(RealPath("/bin/cat"));
  ASSERT_EQ(cats.size(), 1u);
  EXPECT_EQ(cats[0]["argv"], json({"cat", "note.txt"}));
  EXPECT_EQ(cats[0]["cwd"], real_work);
  EXPECT_EQ(pa.ExitCode(cats[0]), 0);
  bool opened = false;
  for (const json& e : sa.events) {
    opened |= e["type"] == "file" && e["op"] == "open" &&
              e["path"] == real_work + "/note.txt" && e.contains("fd") &&
              e["pid"] == cats[0]["pid"];
  }
  EXPECT_TRUE(opened) << "no open of " << real_work << "/note.txt by cat";
  // setsid, then a double fork whose grandchild execs /bin/true.
  ASSERT_EQ(pa.Of(RealPath("/usr/bin/setsid")).size(), 1u);
  std::vector<json> trues = pa.Of(RealPath("/bin/true"));
  ASSERT_EQ(trues.size(), 1u);
  EXPECT_EQ(pa.ExitCode(trues[0]), 0);
  // An exit code other than 0.
  bool seven = false;
  for (const json& e : pa.execs) {
    if (e["argv"] == json({"/bin/sh", "-c", "exit 7"})) {
      seven = pa.ExitCode(e) == 7;
    }
  }
  EXPECT_TRUE(seven) << "no exec of sh -c 'exit 7' exiting 7";
  // The other session's echo is in its own spool only.
  bool b_echo = false;
  for (const json& e : pb.Of(RealPath("/bin/echo"))) {
    b_echo |= e["argv"] == json({"/bin/echo", "only-in-b"});
  }
  EXPECT_TRUE(b_echo);
  for (const json& e : sa.events) {
    EXPECT_EQ(e.dump().find("only-in-b"), std::string::npos) << e.dump();
  }
  for (const json& e : sb.events) {
    EXPECT_EQ(e.dump().find("note.txt"), std::string::npos) << e.dump();
  }
}

// A channel with a pty (forkpty) is followed from its start too.
TEST_F(MezdEnhancedTest, PtySessionIsFollowed) {
  if (!bpf::Monitor::Built()) {
    GTEST_SKIP() << "this build has no BPF (MEZ_BPF off or missing tools)";
  }
  StartNode({"--bpf"});
  EXPECT_NE(mezd_->log().find(", enhanced recording on\n"), std::string::npos)
      << mezd_->log();
  std::string ssh = StockSsh(CurrentLogin(), mezd_->port());
  ASSERT_EQ(cluster_->Stop(), 0);
  auto r = Sh(ssh + "-tt " + ShellQuote("/bin/echo pty-marker; exit 4") +
              " </dev/null 2>&1");
  EXPECT_EQ(r.exit_code, 4) << r.out << mezd_->log();
  std::vector<std::string> spools;
  ASSERT_TRUE(PollUntil([&] {
    spools = Spools(dir_.File("mezd") + "/spool");
    return spools.size() == 1;
  })) << mezd_->log();
  Spooled s = ReadSpool(spools[0]);
  EXPECT_TRUE(s.header.pty());
  EXPECT_TRUE(s.header.has_enhanced() && s.header.enhanced());
  Processes p(s);
  bool echo = false;
  for (const json& e : p.Of(RealPath("/bin/echo"))) {
    echo |=
        e["argv"] == json({"/bin/echo", "pty-marker"}) && p.ExitCode(e) == 0;
  }
  EXPECT_TRUE(echo) << s.events.size() << " events";
}

// A data directory under /tmp for mezd running as nobody; removed after.
class NobodyDir {
 public:
  NobodyDir() {
    char tmpl[] = "/tmp/mezd-nobody-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
    if (!path_.empty() && chown(path_.c_str(), 65534, 65534) != 0) {
      path_.clear();
    }
  }
  ~NobodyDir() {
    if (!path_.empty()) Sh("rm -rf " + ShellQuote(path_));
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_F(MezdEnhancedTest, UnprivilegedMezdStopsAtStartUnlessDegraded) {
  if (!bpf::Monitor::Built()) {
    GTEST_SKIP() << "this build has no BPF (MEZ_BPF off or missing tools)";
  }
  ASSERT_EQ(geteuid(), 0u) << "this test runs mezd as nobody: run as root";
  ASSERT_TRUE(HaveProgram("setpriv"));
  NobodyDir data;
  ASSERT_FALSE(data.path().empty());
  uint16_t port = FreeLoopbackPort();
  ASSERT_NE(port, 0);
  std::string error;
  MezdOptions options;
  options.listen = "127.0.0.1:" + std::to_string(port);
  options.token = RegisterNode(*cluster_, "node-1", options.listen, &error);
  ASSERT_FALSE(options.token.empty()) << error;
  options.wrapper = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                     "--clear-groups"};
  options.extra_args = {"--data-dir", data.path(), "--bpf"};
  options.env = {"MEZITE_RECORDING_MODE=node"};

  Mezd refused(cluster_.get(), dir_.path(), options);
  ASSERT_FALSE(refused.Start()) << refused.log();
  EXPECT_GT(refused.start_exit_code(), 0) << refused.log();
  std::string log = refused.log();
  EXPECT_EQ(log.find("serving SSH"), std::string::npos) << log;
  // One line names the cause and the fix.
  int lines = 0;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("enhanced recording") == std::string::npos) continue;
    ++lines;
    EXPECT_EQ(line.rfind("mezd: enhanced recording: ", 0), 0u) << line;
    EXPECT_NE(line.find("root"), std::string::npos) << line;
  }
  EXPECT_EQ(lines, 1) << log;

  // Degraded: it starts, says so once, and records enhanced=false.
  options.extra_args.push_back("--bpf-degraded");
  Mezd degraded(cluster_.get(), dir_.path(), options);
  ASSERT_TRUE(degraded.Start()) << degraded.log();
  EXPECT_NE(degraded.log().find(", enhanced recording off (degraded)\n"),
            std::string::npos)
      << degraded.log();
  std::string ssh = StockSsh("nobody", degraded.port());
  ASSERT_EQ(cluster_->Stop(), 0);
  // nobody's shell refuses to run anything; the recording starts anyway.
  auto r = Sh(ssh + "true 2>&1");
  EXPECT_NE(r.exit_code, 255) << r.out << degraded.log();
  std::vector<std::string> spools;
  ASSERT_TRUE(PollUntil([&] {
    spools = Spools(data.path() + "/spool");
    return spools.size() == 1;
  })) << degraded.log();
  Spooled s = ReadSpool(spools[0]);
  EXPECT_TRUE(s.header.has_enhanced());
  EXPECT_FALSE(s.header.enhanced());
  EXPECT_EQ(s.events_frames, 0);
  std::string dlog = degraded.log();
  size_t first = dlog.find("degraded mode");
  ASSERT_NE(first, std::string::npos) << dlog;
  EXPECT_EQ(dlog.find("degraded mode", first + 1), std::string::npos) << dlog;
}

TEST_F(MezdEnhancedTest, WithoutBpfTheHeaderHasNoEnhancedField) {
  StartNode({});
  std::string ssh = StockSsh(CurrentLogin(), mezd_->port());
  ASSERT_EQ(cluster_->Stop(), 0);
  ASSERT_EQ(Sh(ssh + "/bin/true").exit_code, 0) << mezd_->log();
  std::vector<std::string> spools;
  ASSERT_TRUE(PollUntil([&] {
    spools = Spools(dir_.File("mezd") + "/spool");
    return spools.size() == 1;
  })) << mezd_->log();
  Spooled s = ReadSpool(spools[0]);
  EXPECT_EQ(s.header.command(), "/bin/true");
  EXPECT_FALSE(s.header.has_enhanced());
  EXPECT_EQ(s.events_frames, 0);
}

}  // namespace
}  // namespace mez::testing
