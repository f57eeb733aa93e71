// The recording modes of the real mezd binary against a real mezrecd, with
// msh ssh (the stock OpenSSH client) as the user: a mode change applies to
// the next session only; node-sync ends a session when mezrecd dies; node
// mode records while mezrecd is down and uploads afterwards, resuming an
// upload cut by a mezd crash; a full spool ends the session and is audited.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "libmez/auth/identity.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/spool/spool.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif

namespace mez::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

CommandResult Sh(const std::string& command) { return Run(command); }

// What a terminal shows of a command's output when the channel has no pty
// (these sessions are `msh ssh node CMD`): its ONLCR turns every "\n" into
// "\r\n", and the recording stores it so (docs/formats/asciicast.md).
std::string AsShown(const std::string& out) {
  std::string shown;
  shown.reserve(out.size() + out.size() / 16);
  for (char c : out) {
    if (c == '\n') shown.push_back('\r');
    shown.push_back(c);
  }
  return shown;
}

// A file's content, or "" when it cannot be read.
std::string Text(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : std::string();
}

// The size of `path` (0 when missing), without reading it.
uint64_t SizeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

bool PollUntil(const std::function<bool()>& pred, int seconds = 30) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    if (pred()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Names in `dir` that end in `suffix`.
std::vector<std::string> FilesEndingIn(const std::string& dir,
                                       const std::string& suffix) {
  std::vector<std::string> out;
  auto r = Sh("ls -1 " + ShellQuote(dir) + " 2>/dev/null");
  std::istringstream in(r.out);
  for (std::string name; std::getline(in, name);) {
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(name);
    }
  }
  return out;
}

// A command run in the background through /bin/sh; its stdout and stderr
// go to files. Killed (with its process group) if still running at the end.
class Background {
 public:
  Background(const std::string& command, const std::string& out,
             const std::string& err) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execl("/bin/sh", "sh", "-c",
            (command + " </dev/null >" + ShellQuote(out) + " 2>" +
             ShellQuote(err))
                .c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // The exit code, or -1 if it did not exit within `seconds`.
  int Wait(int seconds) {
    int status = 0;
    bool done = PollUntil(
        [&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, seconds);
    if (!done) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

class MezdModesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
    me_ = CurrentLogin();
    port_ = FreeLoopbackPort();
    ASSERT_NE(port_, 0);
    StartCluster();
    std::string error;
    ASSERT_TRUE(
        AddUserAndLogin(*cluster_, dir_.path(), "alice", me_, &alice_, &error))
        << error;
  }
  // mezrecd on a fixed port, so mezd finds it again after a restart.
  void StartCluster(std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args{"--listen",
                                  "127.0.0.1:" + std::to_string(port_)};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    cluster_ = std::make_unique<Mezrecd>(dir_.File("data"), args);
    ASSERT_TRUE(cluster_->Start()) << cluster_->log();
  }
  void StartNode(std::vector<std::string> extra_args = {},
                 std::vector<std::string> env = {}) {
    MezdOptions options;
    options.node_name = "node-1";
    options.extra_args = std::move(extra_args);
    options.env = std::move(env);
    options.extra_args.push_back("--data-dir");
    options.extra_args.push_back(dir_.File("mezd"));
    std::string error;
    mezd_ = StartRegisteredNode(cluster_.get(), dir_.path(), options, &error);
    ASSERT_NE(mezd_, nullptr) << error;
  }
  std::string MshSsh(const std::string& command) const {
    return "HOME=" + ShellQuote(alice_.home) +
           " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) + " ssh node-1 " +
           ShellQuote(command);
  }
  CommandResult Admin(const std::string& args) {
    return Mezctl(*cluster_, args);
  }
  json Sessions() {
    auto ls = Sh("HOME=" + ShellQuote(dir_.path()) + " " +
                 ShellQuote(MSH_PATH) + " --identity " +
                 ShellQuote(cluster_->data_dir() + "/admin.identity") +
                 " sessions ls --format=json 2>&1");
    json arr = json::parse(ls.out, nullptr, false);
    return arr.is_array() ? arr : json::array();
  }
  json AuditEvents(const std::string& type) {
    auto r = Admin("audit ls --type=" + type + " --format=json");
    json arr = json::parse(r.out, nullptr, false);
    return arr.is_array() ? arr : json::array();
  }
  // The text the recording of `id` replays (exec without a pty: stdout).
  std::string Played(const std::string& id) {
    return Sh("HOME=" + ShellQuote(dir_.path()) + " " + ShellQuote(MSH_PATH) +
              " --identity " +
              ShellQuote(cluster_->data_dir() + "/admin.identity") +
              " play --format=text " + ShellQuote(id) + " 2>/dev/null")
        .out;
  }
  std::string SpoolDir() const { return dir_.File("mezd") + "/spool"; }
  // With mezd started: alice, removed, is refused on new connections while
  // bob gets in (defined below, after StockSshWithClusterCert).
  void ExpectRemovedUserRefused();
  // A key pair and a certificate for alice (login me_) from the cluster's
  // user CA, made here, whose recording grant extension is `grant`;
  // returns the private key's path ("" on failure).
  std::string CertWithGrant(const std::string& grant, const std::string& name) {
    auto ca = ReadFile(cluster_->data_dir() + "/user_ca.key");
    auto pair = auth::GenerateSshUserKey();
    if (!ca.ok() || !pair.ok()) return "";
    auth::SshCertRequest req;
    req.public_key_blob = pair->second;
    req.key_id = "alice";
    req.principals = {me_};
    int64_t now = time(nullptr);
    req.valid_after = now - 60;
    req.valid_before = now + 600;
    req.extensions = {{"permit-pty", ""},
                      {std::string(auth::kMeziteTokenExtension), grant}};
    auto cert = auth::SignSshCert(*ca, req);
    if (!cert.ok()) return "";
    std::string key = dir_.File(name);
    WriteFileOrDie(key, pair->first);
    chmod(key.c_str(), 0600);
    WriteFileOrDie(key + "-cert.pub", auth::SshCertLine(*cert, "alice") + "\n");
    return key;
  }

  TempDir dir_;
  std::string me_;
  uint16_t port_ = 0;
  std::unique_ptr<Mezrecd> cluster_;
  std::unique_ptr<Mezd> mezd_;
  TestUser alice_;
};

// `config set session_recording off` while a session runs: that session
// stays recorded to its end; the next one is not recorded, but its start
// and end are audited. mezd learns the setting from its heartbeat answer
// (every second here), and reports the mode it applies in the next one.
TEST_F(MezdModesTest, OffAppliesToTheNextSessionNotTheRunningOne) {
  StartNode({"--heartbeat", "1s"});
  std::string flag = dir_.File("go");
  Background running(
      MshSsh("echo first-start; while [ ! -e " + ShellQuote(flag) +
             " ]; do sleep 0.05; done; echo first-end"),
      dir_.File("a.out"), dir_.File("a.err"));
  ASSERT_TRUE(PollUntil([&] {
    return Text(dir_.File("a.out")).find("first-start") != std::string::npos;
  })) << Text(dir_.File("a.err"));

  ASSERT_EQ(Admin("config set session_recording off").exit_code, 0);
  ASSERT_TRUE(PollUntil([&] {
    json nodes =
        json::parse(Admin("nodes ls --format=json").out, nullptr, false);
    return nodes.is_array() && nodes.size() == 1 &&
           nodes[0].value("recording_mode", "") == "off";
  })) << Admin("nodes ls").out;
  auto second = Sh(MshSsh("echo second-unrecorded") + " 2>&1");
  EXPECT_EQ(second.exit_code, 0) << second.out;
  EXPECT_NE(second.out.find("second-unrecorded"), std::string::npos);

  WriteFileOrDie(flag, "");
  ASSERT_EQ(running.Wait(30), 0) << Text(dir_.File("a.err"));

  json sessions;
  ASSERT_TRUE(PollUntil([&] {
    sessions = Sessions();
    return sessions.size() == 1 && sessions[0]["status"] == "complete";
  })) << sessions.dump();
  std::string id = sessions[0]["id"];
  std::string played = Played(id);
  EXPECT_NE(played.find("first-start"), std::string::npos) << played;
  EXPECT_NE(played.find("first-end"), std::string::npos) << played;

  // The unrecorded session left its start and end in the audit log.
  json starts, ends;
  ASSERT_TRUE(PollUntil([&] {
    starts = AuditEvents("session.start");
    ends = AuditEvents("session.end");
    return starts.size() == 2 && ends.size() == 2;
  })) << starts.dump()
      << ends.dump();
  int off_events = 0;
  for (const json& e : {starts, ends}) {
    for (const json& ev : e) {
      json d =
          ev["details"].is_string()
              ? json::parse(ev["details"].get<std::string>(), nullptr, false)
              : ev["details"];
      if (!d.is_object() || d.value("recording", "") != "off") continue;
      ++off_events;
      EXPECT_EQ(ev["user"], "alice") << ev.dump();
      EXPECT_EQ(ev["node"], "node-1") << ev.dump();
      EXPECT_EQ(d.value("command", ""), "echo second-unrecorded");
    }
  }
  EXPECT_EQ(off_events, 2) << starts.dump() << ends.dump();
}

// node-sync: when mezrecd dies mid-session, the session ends by itself
// (mezd's goal is within a second) with a one-line reason for the user.
TEST_F(MezdModesTest, NodeSyncEndsTheSessionWhenMezrecdDies) {
  StartNode({}, {"MEZITE_RECORDING_MODE=node-sync"});
  Background session(MshSsh("echo started; sleep 60; echo never"),
                     dir_.File("s.out"), dir_.File("s.err"));
  ASSERT_TRUE(PollUntil([&] {
    return Text(dir_.File("s.out")).find("started") != std::string::npos;
  })) << Text(dir_.File("s.err"));
  auto killed = Clock::now();
  cluster_->Kill9();
  int rc = session.Wait(30);
  double seconds = std::chrono::duration<double>(Clock::now() - killed).count();
  std::printf("session ended %.3f s after mezrecd was killed\n", seconds);
  EXPECT_NE(rc, -1) << "the session kept running without its recording";
  EXPECT_NE(rc, 0);
  std::string err = Text(dir_.File("s.err"));
  EXPECT_NE(err.find("session recording failed"), std::string::npos) << err;
  EXPECT_EQ(Text(dir_.File("s.out")).find("never"), std::string::npos);
}

// The session `id` once its recording is complete (polls up to 60 s);
// "" with the sessions seen in *seen otherwise.
std::string WaitComplete(const std::function<json()>& sessions,
                         std::string* seen) {
  json all;
  std::string id;
  PollUntil(
      [&] {
        all = sessions();
        for (const json& s : all) {
          if (s["status"] == "complete") {
            id = s["id"];
            return true;
          }
        }
        return false;
      },
      60);
  *seen = all.dump();
  return id;
}

// node-sync, mezrecd killed -9 in the middle of a burst of output: the
// session ends, and once mezrecd is back the recording holds byte for byte
// what the client received (completed from mezd's local copy), and the
// local copy is gone.
TEST_F(MezdModesTest, NodeSyncKill9MidBurstEqualsWhatTheClientSaw) {
  StartNode({"--upload-retry-max", "1s"}, {"MEZITE_RECORDING_MODE=node-sync"});
  std::string out = dir_.File("k.out");
  // Endless output: only the lost recording can end the session, however
  // fast or slow this machine runs the burst.
  Background session(MshSsh("base64 /dev/urandom"), out, dir_.File("k.err"));
  ASSERT_TRUE(PollUntil([&] { return SizeOf(out) > 2'000'000; }))
      << Text(dir_.File("k.err"));
  cluster_->Kill9();
  int rc = session.Wait(60);
  ASSERT_NE(rc, -1) << "the session kept running without its recording";
  std::string seen = Text(out);
  ASSERT_GT(seen.size(), 2'000'000u);
  std::printf("client received %zu bytes before the end\n", seen.size());
  std::string err = Text(dir_.File("k.err"));
  EXPECT_NE(err.find("session recording failed"), std::string::npos) << err;
  // Held for upload while mezrecd is away.
  ASSERT_TRUE(PollUntil([&] {
    return FilesEndingIn(SpoolDir(), ".spool").size() == 1;
  })) << mezd_->log();

  StartCluster();
  std::string all;
  std::string id = WaitComplete([&] { return Sessions(); }, &all);
  ASSERT_FALSE(id.empty()) << all << mezd_->log();
  std::string played = Played(id);
  EXPECT_EQ(played.size(), AsShown(seen).size());
  EXPECT_TRUE(played == AsShown(seen))
      << "the recording differs from the output";
  ASSERT_TRUE(PollUntil([&] {
    return FilesEndingIn(SpoolDir(), ".spool").empty() &&
           FilesEndingIn(SpoolDir(), ".sync").empty();
  })) << mezd_->log();
}

// A session whose stream ends cleanly leaves no local copy behind.
TEST_F(MezdModesTest, NodeSyncCleanStreamDeletesTheLocalCopy) {
  StartNode({}, {"MEZITE_RECORDING_MODE=node-sync"});
  auto r = Sh(MshSsh("head -c 300000 /dev/urandom | base64") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out.substr(0, 400);
  std::string all;
  std::string id = WaitComplete([&] { return Sessions(); }, &all);
  ASSERT_FALSE(id.empty()) << all;
  EXPECT_EQ(Played(id), AsShown(r.out));
  EXPECT_TRUE(FilesEndingIn(SpoolDir(), ".sync").empty());
  EXPECT_TRUE(FilesEndingIn(SpoolDir(), ".spool").empty());
  EXPECT_EQ(mezd_->log().find("uploading the local copy"), std::string::npos)
      << mezd_->log();
}

// node-sync with mezrecd's storage on a full disk (a small tmpfs): the
// session ends, its row does not stay "recording" and its end is audited;
// once the disk has room again, the recording holds byte for byte what
// the client received.
TEST_F(MezdModesTest, NodeSyncFullDiskEqualsWhatTheClientSaw) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  std::string storage = dir_.File("small");
  ASSERT_EQ(mkdir(storage.c_str(), 0700), 0);
  auto mounted =
      Sh("mount -t tmpfs -o size=1m tmpfs " + ShellQuote(storage) + " 2>&1");
  if (mounted.exit_code != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << mounted.out;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { Sh("umount -l " + ShellQuote(path)); }
  } unmount{storage};
  cluster_->Stop();
  StartCluster({"--storage-path", storage});
  StartNode({"--upload-retry-max", "1s"}, {"MEZITE_RECORDING_MODE=node-sync"});
  std::string out = dir_.File("d.out");
  Background session(MshSsh("head -c 10000000 /dev/urandom | base64"), out,
                     dir_.File("d.err"));
  int rc = session.Wait(120);
  ASSERT_NE(rc, -1) << "the session kept running without its recording";
  std::string seen = Text(out);
  ASSERT_GT(seen.size(), 1'000'000u);
  std::printf("client received %zu bytes; exit %d\n", seen.size(), rc);
  // Refused by mezrecd: the row is finished (not left "recording") and
  // its end is in the audit log.
  json sessions;
  ASSERT_TRUE(PollUntil([&] {
    sessions = Sessions();
    return sessions.size() == 1 && sessions[0]["status"] == "incomplete";
  })) << sessions.dump()
      << cluster_->log();
  std::string id = sessions[0]["id"];
  json ends;
  ASSERT_TRUE(PollUntil([&] {
    ends = AuditEvents("session.end");
    for (const json& e : ends) {
      if (e["session_id"] == id) return true;
    }
    return false;
  })) << ends.dump();

  std::printf("mezrecd held %s bytes of it before the disk had room\n",
              sessions[0].value("bytes", json(0)).dump().c_str());
  // Room again: the upload of the local copy completes the recording.
  ASSERT_EQ(Sh("mount -o remount,size=256m " + ShellQuote(storage)).exit_code,
            0);
  std::string all;
  ASSERT_EQ(WaitComplete([&] { return Sessions(); }, &all), id)
      << all << mezd_->log();
  std::string played = Played(id);
  EXPECT_EQ(played.size(), AsShown(seen).size());
  EXPECT_TRUE(played == AsShown(seen))
      << "the recording differs from the output";
}

// node-sync with mezrecd SIGSTOPped under a burst: the session ends
// within the recorder's stall timeout (set to 2 s here), and after SIGCONT
// the recording completes with exactly what the client received.
TEST_F(MezdModesTest, NodeSyncStoppedMezrecdEndsTheSessionAndCompletes) {
  StartNode(
      {"--upload-retry-max", "1s"},
      {"MEZITE_RECORDING_MODE=node-sync", "MEZITE_SYNC_STALL_TIMEOUT_MS=2000",
       "MEZITE_SYNC_ACCEPT_TIMEOUT_MS=2000"});
  std::string out = dir_.File("p.out");
  // Endless output, as in the kill -9 test.
  Background session(MshSsh("base64 /dev/urandom"), out, dir_.File("p.err"));
  ASSERT_TRUE(PollUntil([&] { return SizeOf(out) > 1'000'000; }))
      << Text(dir_.File("p.err"));
  ASSERT_EQ(kill(cluster_->pid(), SIGSTOP), 0);
  auto stopped = Clock::now();
  struct Resume {
    pid_t pid;
    ~Resume() { kill(pid, SIGCONT); }
  } resume{cluster_->pid()};
  int rc = session.Wait(60);
  std::printf("session ended %.3f s after mezrecd was stopped\n",
              std::chrono::duration<double>(Clock::now() - stopped).count());
  EXPECT_NE(rc, -1) << "the session kept running while mezrecd was stopped";
  EXPECT_NE(rc, 0);
  std::string err = Text(dir_.File("p.err"));
  EXPECT_NE(err.find("session recording failed"), std::string::npos) << err;
  std::string seen = Text(out);
  std::printf("client received %zu bytes before the end\n", seen.size());
  ASSERT_EQ(kill(cluster_->pid(), SIGCONT), 0);

  std::string all;
  std::string id = WaitComplete([&] { return Sessions(); }, &all);
  ASSERT_FALSE(id.empty()) << all << mezd_->log();
  std::string played = Played(id);
  EXPECT_EQ(played.size(), AsShown(seen).size());
  EXPECT_TRUE(played == AsShown(seen))
      << "the recording differs from the output";
}

// node-sync whose local copy cannot be kept (a spool budget far too small
// for the session): the session ends with a clear message (fail closed)
// and recording.spool_full is audited; the stream, still healthy, holds
// exactly what the client received.
TEST_F(MezdModesTest, NodeSyncFullSpoolEndsTheSessionAndIsAudited) {
  StartNode({"--spool-budget", "256K"}, {"MEZITE_RECORDING_MODE=node-sync"});
  std::string out = dir_.File("f.out");
  auto r = Sh(MshSsh("echo begin; head -c 3000000 /dev/urandom | base64; "
                     "echo never-reached") +
              " >" + ShellQuote(out) + " 2>" + ShellQuote(dir_.File("f.err")));
  EXPECT_NE(r.exit_code, 0);
  std::string err = Text(dir_.File("f.err"));
  EXPECT_NE(err.find("recording spool is full"), std::string::npos) << err;
  EXPECT_NE(err.find("--spool-budget"), std::string::npos) << err;
  std::string seen = Text(out);
  EXPECT_EQ(seen.find("never-reached"), std::string::npos);
  json events;
  ASSERT_TRUE(PollUntil([&] {
    events = AuditEvents("recording.spool_full");
    return events.size() == 1;
  })) << events.dump()
      << mezd_->log();
  EXPECT_EQ(events[0]["user"], "alice");
  EXPECT_EQ(events[0]["node"], "node-1");
  std::string all;
  std::string id = WaitComplete([&] { return Sessions(); }, &all);
  ASSERT_FALSE(id.empty()) << all;
  EXPECT_TRUE(Played(id) == AsShown(seen))
      << "the recording differs from the output";
  EXPECT_TRUE(FilesEndingIn(SpoolDir(), ".sync").empty());
}

// node mode with mezrecd down for the whole session: the session runs, the
// spool waits, and once mezrecd is back the recording arrives holding
// exactly the bytes the user saw; the spool file is deleted only then.
TEST_F(MezdModesTest, NodeModeUploadsOnceMezrecdIsBack) {
  StartNode({"--upload-retry-max", "1s"}, {"MEZITE_RECORDING_MODE=node"});
  ASSERT_EQ(Sh(MshSsh("true")).exit_code, 0);
  ASSERT_TRUE(PollUntil([&] { return Sessions().size() == 1; }));
  std::string ssh = StockSshWithClusterCert(
      *cluster_, alice_, dir_.File("kept"), mezd_->port(), me_);
  ASSERT_EQ(cluster_->Stop(), 0);

  std::string out = dir_.File("n.out");
  auto r =
      Sh(ssh + ShellQuote("head -c 300000 /dev/urandom | base64; echo done") +
         " >" + ShellQuote(out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << Text(out) << mezd_->log();
  std::string seen = *ReadFile(out);
  ASSERT_GT(seen.size(), 400'000u);

  // Recorded locally, waiting; upload attempts fail meanwhile.
  std::vector<std::string> spools;
  ASSERT_TRUE(PollUntil([&] {
    spools = FilesEndingIn(SpoolDir(), ".spool");
    return spools.size() == 1;
  })) << mezd_->log();
  std::string spool = SpoolDir() + "/" + spools[0];
  std::string id = spools[0].substr(0, spools[0].find('.'));
  std::string spool_sha = *spool::FileSha256(spool);

  StartCluster();
  json sessions;
  ASSERT_TRUE(PollUntil([&] {
    sessions = Sessions();
    for (const json& s : sessions) {
      if (s["id"] == id && s["status"] == "complete") return true;
    }
    return false;
  })) << sessions.dump()
      << mezd_->log();
  EXPECT_EQ(Played(id), AsShown(seen));
  ASSERT_TRUE(PollUntil([&] {
    return FilesEndingIn(SpoolDir(), ".spool").empty();
  })) << mezd_->log();
  // mezd deleted it after mezrecd confirmed this very file.
  EXPECT_NE(mezd_->log().find("session " + id + " uploaded"), std::string::npos)
      << mezd_->log();
  EXPECT_NE(mezd_->log().find(spool_sha.substr(0, 12)), std::string::npos)
      << mezd_->log();
}

// mezd killed -9 in the middle of an upload: after a restart the upload
// resumes where mezrecd's copy ends, and the recording is whole.
TEST_F(MezdModesTest, UploadCutByAMezdCrashResumesAfterRestart) {
  // A slow uplink, so that the upload is still running when mezd dies.
  StartNode({"--upload-rate-limit", "1M", "--upload-retry-max", "1s"},
            {"MEZITE_RECORDING_MODE=node"});
  std::string out = dir_.File("u.out");
  auto r = Sh(MshSsh("head -c 3000000 /dev/urandom | base64") + " >" +
              ShellQuote(out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << Text(out);
  std::string seen = *ReadFile(out);

  std::string uploads = cluster_->data_dir() + "/uploads/node-1";
  std::string part;
  uint64_t held = 0;
  ASSERT_TRUE(PollUntil([&] {
    auto parts = FilesEndingIn(uploads, ".part");
    if (parts.empty()) return false;
    part = uploads + "/" + parts[0];
    struct stat st;
    held = stat(part.c_str(), &st) == 0 ? st.st_size : 0;
    return held > 0;
  })) << mezd_->log();
  mezd_->Kill9();
  std::string id = part.substr(part.rfind('/') + 1);
  id = id.substr(0, id.find('.'));
  ASSERT_EQ(FilesEndingIn(SpoolDir(), ".spool").size(), 1u);

  // Same data dir (the spool), no rate limit now; registered afresh.
  mezd_.reset();
  auto again = Admin("nodes rm node-1");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  StartNode();
  json sessions;
  ASSERT_TRUE(PollUntil([&] {
    sessions = Sessions();
    for (const json& s : sessions) {
      if (s["id"] == id && s["status"] == "complete") return true;
    }
    return false;
  })) << sessions.dump()
      << mezd_->log();
  std::smatch m;
  std::string log = mezd_->log();
  ASSERT_TRUE(std::regex_search(
      log, m,
      std::regex("resuming the upload of session " + id + " at byte ([0-9]+)")))
      << log;
  EXPECT_GE(std::stoull(m[1].str()), held);
  EXPECT_EQ(Played(id), AsShown(seen));
  EXPECT_TRUE(FilesEndingIn(SpoolDir(), ".spool").empty());
}

// A spool budget too small for the session: the session ends with a clear
// message, what was recorded is kept and uploaded, and the event is
// audited.
TEST_F(MezdModesTest, FullSpoolEndsTheSessionAndIsAudited) {
  StartNode({"--spool-budget", "256K"}, {"MEZITE_RECORDING_MODE=node"});
  auto r = Sh(MshSsh("echo begin; head -c 3000000 /dev/urandom | base64; "
                     "echo never-reached") +
              " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("recording spool is full"), std::string::npos)
      << r.out.substr(r.out.size() > 400 ? r.out.size() - 400 : 0);
  EXPECT_NE(r.out.find("--spool-budget"), std::string::npos);
  EXPECT_EQ(r.out.find("never-reached"), std::string::npos);
  json events;
  ASSERT_TRUE(PollUntil([&] {
    events = AuditEvents("recording.spool_full");
    return events.size() == 1;
  })) << events.dump()
      << mezd_->log();
  EXPECT_EQ(events[0]["user"], "alice");
  EXPECT_EQ(events[0]["node"], "node-1");
  // What was recorded up to the limit still arrives.
  json sessions;
  ASSERT_TRUE(PollUntil([&] {
    sessions = Sessions();
    return sessions.size() == 1 && sessions[0]["status"] != "recording";
  })) << sessions.dump();
  std::string played = Played(sessions[0]["id"]);
  EXPECT_EQ(played.rfind("begin", 0), 0u) << played.substr(0, 100);
}

// The host key a node reported first stays pinned: the same credential
// with a new key (a reinstalled node, or a stolen credential) is refused
// and audited.
TEST_F(MezdModesTest, ANewHostKeyForAJoinedNodeIsRefused) {
  std::string error;
  std::string token = RegisterNode(*cluster_, "node-1", "127.0.0.1:1", &error);
  ASSERT_FALSE(token.empty()) << error;
  MezdOptions options;
  options.token = token;
  options.extra_args = {"--data-dir", dir_.File("first")};
  Mezd first(cluster_.get(), dir_.path(), options);
  ASSERT_TRUE(first.Start()) << first.log();
  ASSERT_EQ(first.Stop(), 0);

  // The credential and CA copied to a data dir with another host key.
  ASSERT_EQ(mkdir(dir_.File("second").c_str(), 0700), 0);
  for (const char* f : {"node_credential", "cluster_ca.pem"}) {
    WriteFileOrDie(dir_.File("second") + "/" + f,
                   Text(dir_.File("first") + "/" + f));
  }
  options.token.clear();
  options.extra_args = {"--data-dir", dir_.File("second")};
  Mezd second(cluster_.get(), dir_.path(), options);
  EXPECT_FALSE(second.Start());
  EXPECT_NE(second.log().find("differs from the pinned one"), std::string::npos)
      << second.log();
  EXPECT_NE(second.log().find("mezctl nodes rm node-1"), std::string::npos);
  EXPECT_EQ(AuditEvents("node.host_key_mismatch").size(), 1u);

  // The original key still works.
  options.extra_args = {"--data-dir", dir_.File("first")};
  Mezd again(cluster_.get(), dir_.path(), options);
  EXPECT_TRUE(again.Start()) << again.log();
}

// `mezctl users rm` while the user still holds a certificate (valid for
// minutes, obtained as msh obtains it): mezd learns of the removal at its
// next heartbeat (every second here) and refuses that certificate on new
// connections, audited as auth.refused with the reason; another user still
// gets in. node-sync needs no help (mezrecd refuses the removed user's
// recording, so the program never runs); node and off modes record through
// no stream mezrecd could refuse.
void MezdModesTest::ExpectRemovedUserRefused() {
  TestUser bob;
  std::string error;
  ASSERT_TRUE(AddUserAndLogin(*cluster_, dir_.path(), "bob", me_, &bob, &error))
      << error;
  std::string alice_ssh = StockSshWithClusterCert(
      *cluster_, alice_, dir_.File("alice-key"), mezd_->port(), me_);
  std::string bob_ssh = StockSshWithClusterCert(
      *cluster_, bob, dir_.File("bob-key"), mezd_->port(), me_);
  auto r = Sh(alice_ssh + ShellQuote("echo alice-in") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out << mezd_->log();
  ASSERT_EQ(r.out, "alice-in\n");

  auto rm = Admin("users rm alice");
  ASSERT_EQ(rm.exit_code, 0) << rm.out;
  // The certificate is still valid for minutes; within a few heartbeats
  // mezd refuses it.
  ASSERT_TRUE(PollUntil([&] {
    r = Sh(alice_ssh + ShellQuote("echo still-in") + " 2>&1");
    return r.exit_code == 255;
  })) << r.out
      << mezd_->log();
  EXPECT_NE(r.out.find("Permission denied"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("still-in"), std::string::npos) << r.out;
  json refused;
  ASSERT_TRUE(PollUntil([&] {
    for (const json& ev : AuditEvents("auth.refused")) {
      json d =
          ev["details"].is_string()
              ? json::parse(ev["details"].get<std::string>(), nullptr, false)
              : ev["details"];
      if (d.is_object() &&
          d.value("reason", "").find("alice") != std::string::npos &&
          d.value("reason", "").find("was removed from the cluster") !=
              std::string::npos) {
        refused = ev;
        return true;
      }
    }
    return false;
  })) << AuditEvents("auth.refused").dump()
      << mezd_->log();
  EXPECT_EQ(refused["node"], "node-1") << refused.dump();
  EXPECT_NE(refused.dump().find("\"key_id\":\"alice\""), std::string::npos)
      << refused.dump();

  // Bob was not removed.
  r = Sh(bob_ssh + ShellQuote("echo bob-in") + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out << mezd_->log();
  EXPECT_EQ(r.out, "bob-in\n");
}

TEST_F(MezdModesTest, RemovedUserIsRefusedInNodeMode) {
  StartNode({"--heartbeat", "1s"}, {"MEZITE_RECORDING_MODE=node"});
  ExpectRemovedUserRefused();
}

TEST_F(MezdModesTest, RemovedUserIsRefusedInOffMode) {
  StartNode({"--heartbeat", "1s"}, {"MEZITE_RECORDING_MODE=off"});
  ExpectRemovedUserRefused();
}

// A certificate from the cluster's CA whose recording grant is no token
// (made outside mezrecd): mezd cannot tell whether its user was removed,
// so it refuses it at authentication, even in off mode where nothing would
// check the grant later.
TEST_F(MezdModesTest, UnreadableGrantIsRefusedInOffMode) {
  StartNode({}, {"MEZITE_RECORDING_MODE=off"});
  std::string key = CertWithGrant("not-a-token", "garbled");
  ASSERT_FALSE(key.empty());
  auto r =
      Sh(StockSsh(key, mezd_->port(), me_) + ShellQuote("echo ran") + " 2>&1");
  EXPECT_EQ(r.exit_code, 255) << r.out << mezd_->log();
  EXPECT_EQ(r.out.find("ran"), std::string::npos) << r.out;
  EXPECT_NE(mezd_->log().find("recording grant (mezite-token@mezite) cannot "
                              "be read"),
            std::string::npos)
      << mezd_->log();
}

// A grant is for one node: a certificate asked for another node does not
// log in here, in node and off modes too (where no ingest checks it), so no
// session runs that the cluster would refuse to record.
TEST_F(MezdModesTest, GrantForAnotherNodeIsRefusedInOffMode) {
  StartNode({}, {"MEZITE_RECORDING_MODE=off"});
  std::string other = CertWithGrant(cluster_->Grant("alice", "node-2"), "n2");
  std::string mine = CertWithGrant(cluster_->Grant("alice", "node-1"), "n1");
  ASSERT_FALSE(other.empty());
  ASSERT_FALSE(mine.empty());
  auto r = Sh(StockSsh(other, mezd_->port(), me_) + ShellQuote("echo ran") +
              " 2>&1");
  EXPECT_EQ(r.exit_code, 255) << r.out << mezd_->log();
  EXPECT_EQ(r.out.find("ran"), std::string::npos) << r.out;
  EXPECT_NE(mezd_->log().find("the certificate is for node 'node-2'"),
            std::string::npos)
      << mezd_->log();
  r = Sh(StockSsh(mine, mezd_->port(), me_) + ShellQuote("echo ran") + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out << mezd_->log();
  EXPECT_EQ(r.out, "ran\n");
}

}  // namespace
}  // namespace mez::testing
