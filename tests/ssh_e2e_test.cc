// SSH end to end on loopback with real processes only: mezrecd, the mezd
// binary, msh, the stock OpenSSH client and tmux. What a user sees in the
// terminal must be what the recording plays back; exit codes and stderr
// survive; certificates mezd must not accept are refused and leave no
// recording behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "libmez/auth/identity.h"
#include "libmez/auth/ssh_cert.h"
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

namespace pb = mezite::v1;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = std::chrono::seconds(20);

// testing::Run under a name gtest's Test::Run does not hide.
CommandResult Sh(const std::string& command) { return Run(command); }

// Polls `pred` every 50 ms until it holds or kDeadline passes.
bool PollUntil(const std::function<bool()>& pred) {
  auto deadline = Clock::now() + kDeadline;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string TrimRight(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' ||
                        s.back() == '\n' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

// The printable text of a terminal byte stream: escape sequences (CSI, OSC,
// two-byte ESC) and other control bytes removed except '\n'.
std::string StripTerminalControls(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if (c == 0x1b && i + 1 < s.size()) {
      char kind = s[i + 1];
      i += 2;
      if (kind == '[') {  // CSI: parameters and intermediates, one final.
        while (i < s.size() && (s[i] < 0x40 || s[i] > 0x7e)) ++i;
      } else if (kind == ']') {  // OSC: up to BEL or ST.
        while (i < s.size() && s[i] != '\a' &&
               !(s[i] == 0x1b && i + 1 < s.size() && s[i + 1] == '\\')) {
          ++i;
        }
        if (i < s.size() && s[i] == 0x1b) ++i;
      } else if (kind == '(' || kind == ')') {  // Charset: one more byte.
        ++i;
      } else {
        --i;  // Two-byte sequence: ESC and `kind`.
      }
      continue;
    }
    if (c == '\n' || c >= 0x20) out += static_cast<char>(c);
  }
  return out;
}

class Tmux {
 public:
  Tmux() {
    static std::atomic<int> n{0};
    socket_ = "mezssh" + std::to_string(getpid()) + "_" + std::to_string(n++);
  }
  ~Tmux() { Sh(Cmd("kill-server") + " >/dev/null 2>&1"); }

  std::string Cmd(const std::string& args) const {
    return "tmux -L " + socket_ + " -f /dev/null " + args;
  }
  bool Start(const std::string& shell_command, int cols, int rows) {
    return Sh(Cmd("new-session -d -x " + std::to_string(cols) + " -y " +
                  std::to_string(rows) + " " + ShellQuote(shell_command)))
               .exit_code == 0;
  }
  void Type(const std::string& line) {
    Sh(Cmd("send-keys -t 0 -l " + ShellQuote(line)));
    Sh(Cmd("send-keys -t 0 Enter"));
  }
  // The whole pane, scrollback included, wrapped lines joined.
  std::string Capture(const std::string& flags = "") {
    return Sh(Cmd("capture-pane -p -J -S - " + flags + " -t 0")).out;
  }
  std::string PaneSize() {
    return TrimRight(
        Sh(Cmd("display-message -p -t 0 '#{pane_width}x#{pane_height}'")).out);
  }
  bool WaitForText(const std::string& text) {
    return PollUntil([&] {
      last_ = Capture();
      return last_.find(text) != std::string::npos;
    });
  }
  const std::string& last() const { return last_; }

 private:
  std::string socket_;
  std::string last_;
};

class SshE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
    ASSERT_TRUE(HaveProgram("ssh-keygen"))
        << "ssh-keygen is missing: run scripts/deps";
    me_ = CurrentLogin();
    cluster_ = std::make_unique<Mezrecd>(dir_.File("data"));
    ASSERT_TRUE(cluster_->Start()) << cluster_->log();
    std::string error;
    ASSERT_TRUE(
        AddUserAndLogin(*cluster_, dir_.path(), "alice", me_, &alice_, &error))
        << error;
    MezdOptions options;
    options.node_name = "node-1";
    mezd_ = StartRegisteredNode(cluster_.get(), dir_.path(), options, &error);
    ASSERT_NE(mezd_, nullptr) << error;
  }

  void TearDown() override {
    if (HasFailure() && mezd_ != nullptr) {
      std::cerr << "---- mezd log ----\n" << mezd_->log();
    }
    if (mezd_ != nullptr) {
      EXPECT_EQ(mezd_->Stop(), 0) << mezd_->log();
    }
  }

  // msh as alice, stderr merged unless the command redirects it.
  CommandResult Msh(const std::string& args) {
    return Sh("HOME=" + ShellQuote(alice_.home) +
              " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) + " " + args);
  }
  // Every recorded session, as the admin sees them.
  json AllSessions() {
    auto r = Sh("HOME=" + ShellQuote(dir_.path()) + " " + ShellQuote(MSH_PATH) +
                " --identity " +
                ShellQuote(cluster_->data_dir() + "/admin.identity") +
                " sessions ls --format=json 2>&1");
    json arr = json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !arr.is_array()) {
      ADD_FAILURE() << "msh sessions ls as admin: " << r.out;
      return json::array();
    }
    return arr;
  }
  // Waits until alice has `count` complete sessions; their ids, newest
  // first.
  std::vector<std::string> WaitForCompleteSessions(size_t count) {
    std::vector<std::string> ids;
    PollUntil([&] {
      ids.clear();
      auto r = Msh("sessions ls --format=json 2>&1");
      if (r.exit_code != 0) return false;
      json arr = json::parse(r.out, nullptr, false);
      if (!arr.is_array() || arr.size() != count) return false;
      for (const auto& s : arr) {
        if (s.value("status", "") != "complete") return false;
        ids.push_back(s.value("id", ""));
      }
      return true;
    });
    return ids;
  }
  std::string Play(const std::string& id, const std::string& format) {
    auto r =
        Msh("play --format=" + format + " " + ShellQuote(id) + " 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << format << " " << id;
    return r.out;
  }
  // The stock OpenSSH client against mezd with this key and certificate;
  // stderr goes to *err.
  CommandResult OpenSsh(const std::string& key, const std::string& cert,
                        const std::string& command, std::string* err) {
    std::string err_file = dir_.File("ssh.err");
    auto r =
        Sh("ssh -F /dev/null -i " + ShellQuote(key) +
           " -o CertificateFile=" + ShellQuote(cert) +
           " -o IdentitiesOnly=yes -o BatchMode=yes"
           " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
           " -o ConnectTimeout=20 -o LogLevel=ERROR -p " +
           std::to_string(mezd_->port()) + " " + ShellQuote(me_) +
           "@127.0.0.1 " + ShellQuote(command) + " 2>" + ShellQuote(err_file));
    auto text = ReadFile(err_file);
    *err = text.ok() ? *text : "";
    return r;
  }

  // The cluster's user CA private key as an OpenSSH key file, for
  // ssh-keygen -s.
  std::string ClusterCa() {
    std::string path = dir_.File("cluster_ca");
    auto pem = ReadFile(cluster_->data_dir() + "/user_ca.key");
    EXPECT_TRUE(pem.ok()) << pem.status().ToString();
    if (!pem.ok()) return path;
    auto ca = auth::OpenSshPrivateKeyFromPem(*pem, "cluster user CA");
    EXPECT_TRUE(ca.ok()) << ca.status().ToString();
    if (ca.ok()) WriteFileOrDie(path, *ca);
    chmod(path.c_str(), 0600);
    return path;
  }
  // A fresh key certified with ssh-keygen by `ca` for `principals` over
  // `validity` (ssh-keygen -V), with or without the token extension.
  // Returns the key's path; the certificate is at PATH-cert.pub.
  // `token`: the JWT to carry, "" for alice's recording grant for node-1.
  std::string NewCert(const std::string& ca, const std::string& principals,
                      const std::string& validity, bool with_token,
                      const std::string& token = "") {
    std::string key = dir_.File("key" + std::to_string(++keys_));
    std::string ext;
    if (with_token && !token.empty()) {
      ext = " -O " +
            ShellQuote("extension:" + std::string(auth::kMeziteTokenExtension) +
                       "=" + token);
    } else if (with_token) {
      std::string grant = cluster_->Grant("alice", "node-1");
      EXPECT_FALSE(grant.empty());
      ext = " -O " +
            ShellQuote("extension:" + std::string(auth::kMeziteTokenExtension) +
                       "=" + grant);
    }
    auto r = Sh("ssh-keygen -q -t ed25519 -N '' -C test -f " + ShellQuote(key) +
                " && ssh-keygen -q -s " + ShellQuote(ca) + " -I alice -n " +
                ShellQuote(principals) + " -V " + ShellQuote(validity) + ext +
                " " + ShellQuote(key + ".pub") + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return key;
  }

  TempDir dir_;
  int keys_ = 0;
  std::string me_;
  std::unique_ptr<Mezrecd> cluster_;
  TestUser alice_;
  std::unique_ptr<Mezd> mezd_;
};

// An interactive shell through `msh ssh` inside tmux: colours, UTF-8 and a
// resize. Every line the terminal showed is in the playback, in order.
TEST_F(SshE2eTest, InteractiveShellInTmuxPlaysBackWhatTheUserSaw) {
  ASSERT_TRUE(HaveProgram("tmux")) << "tmux is missing: run scripts/deps";
  Tmux tmux;
  ASSERT_TRUE(tmux.Start("env LANG=C.UTF-8 HOME=" + ShellQuote(alice_.home) +
                             " MEZ_IDENTITY= PS1='$ ' sh",
                         100, 30));
  // The local prompt first: a line typed before it would be echoed ahead
  // of it, and the prompt taken for the node's.
  ASSERT_TRUE(tmux.WaitForText("$")) << tmux.last();
  tmux.Type(ShellQuote(MSH_PATH) + " ssh node-1; echo MSH''EXIT=$?");
  // Type only once the node's shell has drawn something (its prompt):
  // keys typed earlier are echoed by the local terminal, not the node.
  ASSERT_TRUE(PollUntil([&] {
    std::string s = tmux.Capture();
    size_t cmd = s.find("ssh node-1");
    size_t eol = cmd == std::string::npos ? cmd : s.find('\n', cmd);
    return eol != std::string::npos && !TrimRight(s.substr(eol + 1)).empty();
  })) << tmux.Capture()
      << mezd_->log();
  tmux.Type("echo READY''1");
  ASSERT_TRUE(tmux.WaitForText("READY1")) << tmux.last() << mezd_->log();

  tmux.Type("printf '\\033[31mRED''LINE\\033[0m\\n'");
  ASSERT_TRUE(tmux.WaitForText("\nREDLINE")) << tmux.last();
  // "utf8: zażółć 日本", typed as ASCII so only the output carries UTF-8.
  tmux.Type(
      "printf 'utf8: za\\305\\274\\303\\263\\305\\202\\304\\207 "
      "\\346\\227\\245\\346\\234\\254\\n'");
  const std::string utf8_line = "utf8: za\u017c\u00f3\u0142\u0107 \u65e5\u672c";
  ASSERT_TRUE(tmux.WaitForText(utf8_line)) << tmux.last();

  ASSERT_EQ(Sh(tmux.Cmd("resize-window -t 0 -x 120 -y 40")).exit_code, 0);
  ASSERT_TRUE(PollUntil([&] { return tmux.PaneSize() == "120x40"; }))
      << tmux.PaneSize();
  // The window-change travels ssh -> mezd asynchronously; ask again until
  // the remote side reports the new size.
  const std::string size_line = "SIZE=120 40 120";
  bool resized = false;
  for (int attempt = 0; attempt < 5 && !resized; ++attempt) {
    tmux.Type("echo SIZE=$(tput cols) $(stty size)");
    auto deadline = Clock::now() + std::chrono::seconds(4);
    while (!resized && Clock::now() < deadline) {
      resized = tmux.Capture().find(size_line) != std::string::npos;
      if (!resized) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_TRUE(resized) << tmux.Capture();

  tmux.Type("echo LAST''LINE");
  ASSERT_TRUE(tmux.WaitForText("\nLASTLINE")) << tmux.last();
  std::string screen = tmux.Capture();
  std::string colours = tmux.Capture("-e");
  EXPECT_NE(colours.find("\x1b[31mREDLINE"), std::string::npos) << colours;
  tmux.Type("exit");
  ASSERT_TRUE(tmux.WaitForText("MSHEXIT=0")) << tmux.last();

  auto ids = WaitForCompleteSessions(1);
  ASSERT_EQ(ids.size(), 1u) << Msh("sessions ls 2>&1").out;
  std::string raw = Play(ids[0], "text");
  EXPECT_NE(raw.find("\x1b[31mREDLINE\x1b[0m"), std::string::npos) << raw;
  std::string played = StripTerminalControls(raw);

  // The pane's lines from the first one the node sent: each one is in the
  // playback, after the previous one.
  std::vector<std::string> seen;
  bool remote = false;
  for (const std::string& line : Lines(screen)) {
    if (!remote) {
      remote = line.find("ssh node-1") != std::string::npos;
      continue;
    }
    std::string t = TrimRight(line);
    if (!t.empty()) seen.push_back(t);
  }
  ASSERT_GE(seen.size(), 5u) << screen;
  size_t pos = 0;
  for (const std::string& line : seen) {
    size_t at = played.find(line, pos);
    ASSERT_NE(at, std::string::npos)
        << "the terminal showed \"" << line
        << "\" but the playback lacks it (after offset " << pos
        << ")\n---- screen ----\n"
        << screen << "\n---- playback ----\n"
        << played;
    pos = at + line.size();
  }
  for (const std::string& must : {std::string("REDLINE"), utf8_line, size_line,
                                  std::string("LASTLINE")}) {
    EXPECT_NE(std::find(seen.begin(), seen.end(), must), seen.end())
        << must << "\n"
        << screen;
  }

  // The recording starts at the pane's size and records the resize.
  std::vector<std::string> cast = Lines(Play(ids[0], "cast"));
  ASSERT_FALSE(cast.empty());
  json header = json::parse(cast[0]);
  EXPECT_EQ(header["width"], 100) << cast[0];
  EXPECT_EQ(header["height"], 30) << cast[0];
  bool resize_event = false;
  for (size_t i = 1; i < cast.size(); ++i) {
    json ev = json::parse(cast[i], nullptr, false);
    if (ev.is_array() && ev.size() == 3 && ev[1] == "r" && ev[2] == "120x40") {
      resize_event = true;
    }
  }
  EXPECT_TRUE(resize_event) << Play(ids[0], "cast");
}

// A command without a terminal: the exit code, and stdout and stderr each
// on their own stream at the client and both in the recording.
TEST_F(SshE2eTest, ExecKeepsExitCodeAndStreamsAndRecordsBoth) {
  std::string out = dir_.File("out"), err = dir_.File("err");
  auto r = Msh("ssh node-1 'echo out-line; echo err-line >&2; exit 3' >" +
               ShellQuote(out) + " 2>" + ShellQuote(err));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(*ReadFile(out), "out-line\n");
  EXPECT_EQ(*ReadFile(err), "err-line\n");

  auto ids = WaitForCompleteSessions(1);
  ASSERT_EQ(ids.size(), 1u) << Msh("sessions ls 2>&1").out;
  std::string text = Play(ids[0], "text");
  EXPECT_NE(text.find("out-line"), std::string::npos) << text;
  EXPECT_NE(text.find("err-line"), std::string::npos) << text;
  json all = AllSessions();
  ASSERT_EQ(all.size(), 1u) << all.dump();
  EXPECT_EQ(all[0]["user"], "alice");
  EXPECT_EQ(all[0]["node"], "node-1");
  EXPECT_EQ(all[0]["login"], me_);
}

// A command without a terminal plays in the stock asciinema as the user's
// terminal showed it: each line at the left margin, not a staircase (the
// output's "\n" is stored as "\r\n", docs/formats/asciicast.md).
TEST_F(SshE2eTest, ExecSessionPlaysInAsciinemaWithoutAStaircase) {
  ASSERT_TRUE(HaveProgram("tmux")) << "tmux is missing: run scripts/deps";
  ASSERT_TRUE(HaveProgram("asciinema"))
      << "asciinema is missing: run scripts/deps";
  auto r = Msh("ssh node-1 'printf \"first\\nsecond\\nthird\\n\"'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_EQ(r.out, "first\nsecond\nthird\n");
  auto ids = WaitForCompleteSessions(1);
  ASSERT_EQ(ids.size(), 1u) << Msh("sessions ls 2>&1").out;
  std::string cast = dir_.File("exec.cast");
  WriteFileOrDie(cast, Play(ids[0], "cast"));

  Tmux tmux;
  ASSERT_TRUE(tmux.Start("asciinema play -s 1000 -i 0.001 " + ShellQuote(cast) +
                             "; echo PLAY''DONE; exec sleep 600",
                         80, 24));
  ASSERT_TRUE(tmux.WaitForText("PLAYDONE")) << tmux.last();
  std::vector<std::string> shown;
  for (const std::string& line : Lines(tmux.last())) {
    std::string t = TrimRight(line);
    if (t.find("first") != std::string::npos ||
        t.find("second") != std::string::npos ||
        t.find("third") != std::string::npos) {
      shown.push_back(t);
    }
  }
  EXPECT_EQ(shown, (std::vector<std::string>{"first", "second", "third"}))
      << tmux.last();
}

// The stock OpenSSH client with a certificate obtained as msh obtains it
// (a fresh key, Cluster.SignUserCert), without msh in between.
TEST_F(SshE2eTest, StockOpenSshClientWithClusterCertificate) {
  auto id = auth::ReadIdentityFile(alice_.identity);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto key = auth::GenerateSshUserKey();
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  auto stub = pb::Cluster::NewStub(cluster_->Channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + id->token);
  pb::SignUserCertRequest req;
  req.set_public_key_blob(key->second);
  req.set_login(me_);
  req.set_node("node-1");
  pb::SignUserCertResponse cert;
  grpc::Status s = stub->SignUserCert(&ctx, req, &cert);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::string key_path = dir_.File("id_ed25519");
  WriteFileOrDie(key_path, key->first);
  chmod(key_path.c_str(), 0600);
  WriteFileOrDie(key_path + "-cert.pub", cert.certificate_line() + "\n");

  std::string err;
  auto r = OpenSsh(key_path, key_path + "-cert.pub", "echo hi", &err);
  EXPECT_EQ(r.exit_code, 0) << err;
  EXPECT_EQ(r.out, "hi\n") << err;
  auto ids = WaitForCompleteSessions(1);
  ASSERT_EQ(ids.size(), 1u) << Msh("sessions ls 2>&1").out;
  EXPECT_NE(Play(ids[0], "text").find("hi"), std::string::npos);
}

// Certificates made with ssh-keygen: one from the cluster's user CA for
// the right login works (the control); expired, foreign-CA and
// wrong-principal ones are refused by mezd and record nothing.
TEST_F(SshE2eTest, BadCertificatesAreRefusedAndNothingIsRecorded) {
  std::string cluster_ca = ClusterCa();
  std::string other_ca = dir_.File("other_ca");
  ASSERT_EQ(Sh("ssh-keygen -q -t ed25519 -N '' -C other -f " +
               ShellQuote(other_ca) + " 2>&1")
                .exit_code,
            0);
  struct Case {
    const char* what;
    std::string key;
    const char* log_says;  // mezd logs the refusal with this reason
  };
  const std::vector<Case> refused = {
      {"expired", NewCert(cluster_ca, me_, "20200101:20200102", true),
       "SSH certificate expired at"},
      {"another CA", NewCert(other_ca, me_, "-5m:+1h", true),
       "signed by an untrusted CA"},
      {"without the login",
       NewCert(cluster_ca, "someone-else", "-5m:+1h", true),
       "does not allow principal"},
  };
  for (const Case& c : refused) {
    SCOPED_TRACE(c.what);
    std::string err;
    auto r = OpenSsh(c.key, c.key + "-cert.pub", "echo should-not-run", &err);
    EXPECT_EQ(r.exit_code, 255) << r.out << err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(err.find("Permission denied"), std::string::npos) << err;
  }
  std::string log = mezd_->log();
  for (const Case& c : refused) {
    EXPECT_NE(log.find(c.log_says), std::string::npos) << c.what << ": " << log;
  }
  EXPECT_EQ(AllSessions().size(), 0u) << AllSessions().dump();
  EXPECT_TRUE(ListFiles(cluster_->data_dir() + "/recordings").empty());

  // The control: the same key, the cluster CA, the right login.
  std::string good = NewCert(cluster_ca, me_, "-5m:+1h", true);
  std::string err;
  auto r = OpenSsh(good, good + "-cert.pub", "echo control-ok", &err);
  EXPECT_EQ(r.exit_code, 0) << err;
  EXPECT_EQ(r.out, "control-ok\n") << err;
  auto ids = WaitForCompleteSessions(1);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_NE(Play(ids[0], "text").find("control-ok"), std::string::npos);
}

// A certificate from the cluster's CA without the mezite token extension:
// mezd cannot attribute the session to a user, so mezrecd refuses its
// recording and mezd ends the session within a second with a one-line
// message (mezd(8): no session runs unrecorded); the catalog holds
// nothing.
TEST_F(SshE2eTest, CertificateWithoutTokenIsRefused) {
  std::string key = NewCert(ClusterCa(), me_, "-5m:+1h", /*with_token=*/false);
  std::string marker = dir_.File("ran");
  std::string err;
  auto r = OpenSsh(key, key + "-cert.pub",
                   "touch " + ShellQuote(marker) + "; echo unrecorded", &err);
  EXPECT_EQ(r.exit_code, 255) << r.out << err;
  EXPECT_EQ(r.out, "") << err;
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the program ran";
  EXPECT_NE(mezd_->log().find("lacks the mezite-token@mezite extension"),
            std::string::npos)
      << mezd_->log();
  EXPECT_EQ(AllSessions().size(), 0u) << AllSessions().dump();
}

// mezrecd refuses the recording (here: the grant, signed by the cluster,
// names a user the catalog does not have): the session ends with the
// reason before the program ever runs, so nothing happens unrecorded.
TEST_F(SshE2eTest, RefusedRecordingNeverRunsTheProgram) {
  auth::Claims ghost;
  ghost.subject = "ghost";
  ghost.role = auth::Role::kSession;
  ghost.uid = "0123456789abcdef0123456789abcdef";
  ghost.audience = "node-1";
  ghost.logins = {me_};
  ghost.issued_at = time(nullptr) - 10;
  ghost.expires_at = time(nullptr) + 600;
  std::string key = NewCert(ClusterCa(), me_, "-5m:+1h", /*with_token=*/true,
                            cluster_->Sign(ghost));
  std::string marker = dir_.File("ran");
  std::string err;
  auto r = OpenSsh(key, key + "-cert.pub",
                   "touch " + ShellQuote(marker) + "; echo unrecorded", &err);
  EXPECT_NE(r.exit_code, 0) << r.out << err;
  EXPECT_EQ(r.out, "") << err;
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the program ran";
  EXPECT_NE(err.find("session recording failed"), std::string::npos) << err;
  EXPECT_NE(err.find("ghost"), std::string::npos) << err;
}

// A certificate from the cluster's CA whose token is not a session grant
// (here a node's credential): refused when the connection authenticates.
TEST_F(SshE2eTest, CertificateWithANodeTokenIsRefused) {
  std::string key = NewCert(ClusterCa(), me_, "-5m:+1h", /*with_token=*/true,
                            cluster_->Token(auth::Role::kNode, "node-1"));
  std::string marker = dir_.File("ran");
  std::string err;
  auto r = OpenSsh(key, key + "-cert.pub",
                   "touch " + ShellQuote(marker) + "; echo unrecorded", &err);
  EXPECT_EQ(r.exit_code, 255) << r.out << err;
  EXPECT_EQ(r.out, "") << err;
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the program ran";
  EXPECT_NE(mezd_->log().find("is a node token, not a session grant"),
            std::string::npos)
      << mezd_->log();
}

// The harness passes extra flags through, and reports a mezd that does
// not start instead of waiting for it.
TEST_F(SshE2eTest, HarnessReportsAMezdThatDoesNotStart) {
  MezdOptions options;
  options.node_name = "broken";
  options.token = "unused";
  options.extra_args = {"--no-such-flag"};
  options.env = {"MEZITE_TEST_MARKER=1"};
  Mezd broken(cluster_.get(), dir_.path(), options);
  auto start = Clock::now();
  EXPECT_FALSE(broken.Start());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(broken.running());
  EXPECT_NE(broken.log().find("no-such-flag"), std::string::npos)
      << broken.log();
  EXPECT_NE(broken.command_line().find("--no-such-flag"), std::string::npos);
}

// msh ssh leaves no key behind: each run removes its key directory when
// ssh exits, and one left by a killed run goes once its certificate has
// expired. A directory holding anything msh never writes is left alone.
TEST_F(SshE2eTest, MshSshRemovesItsKeysAndStaleOnes) {
  std::string keys = alice_.home + "/.mez/keys";
  ASSERT_EQ(Sh("mkdir -p " + ShellQuote(keys)).exit_code, 0);
  // Left by killed runs an hour ago: one of ours, one with a foreign file.
  for (const char* d : {"ssh-stale1", "ssh-foreign"}) {
    ASSERT_EQ(Sh("mkdir " + ShellQuote(keys + "/" + d) + " && touch " +
                 ShellQuote(keys + "/" + d + "/id_ed25519"))
                  .exit_code,
              0);
  }
  ASSERT_EQ(Sh("touch " + ShellQuote(keys + "/ssh-foreign/notes")).exit_code,
            0);
  ASSERT_EQ(Sh("touch -d '-1 hour' " + ShellQuote(keys + "/ssh-stale1") + " " +
               ShellQuote(keys + "/ssh-foreign"))
                .exit_code,
            0);
  // In use by a run that started a moment ago: kept.
  ASSERT_EQ(Sh("mkdir " + ShellQuote(keys + "/ssh-live")).exit_code, 0);

  std::string err_file = dir_.File("msh.err");
  for (int i = 0; i < 3; ++i) {
    auto r = Msh("ssh node-1 'echo run-" + std::to_string(i) + "; exit " +
                 std::to_string(i) + "' 2>" + ShellQuote(err_file));
    EXPECT_EQ(r.exit_code, i) << r.out;
    EXPECT_EQ(r.out, "run-" + std::to_string(i) + "\n");
    // The directory it would not remove is named, with the reason.
    EXPECT_NE(ReadFile(err_file)->find("ssh-foreign holds an unexpected "
                                       "entry 'notes'"),
              std::string::npos)
        << *ReadFile(err_file);
  }
  auto left = Sh("ls -A " + ShellQuote(keys));
  EXPECT_EQ(left.out, "ssh-foreign\nssh-live\n");
  EXPECT_EQ(Sh("ls -A " + ShellQuote(keys + "/ssh-foreign")).out,
            "id_ed25519\nnotes\n");
}

// Removing a user stops their sessions at once in node-sync, even with a
// certificate still valid for minutes: mezrecd refuses the grant of a
// removed user, and mezd ends the session before the program runs.
TEST_F(SshE2eTest, ARemovedUsersCertificateRunsNothing) {
  auto id = auth::ReadIdentityFile(alice_.identity);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto key = auth::GenerateSshUserKey();
  ASSERT_TRUE(key.ok());
  auto stub = pb::Cluster::NewStub(cluster_->Channel());
  pb::SignUserCertResponse cert;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + id->token);
    pb::SignUserCertRequest req;
    req.set_public_key_blob(key->second);
    req.set_login(me_);
    req.set_node("node-1");
    grpc::Status s = stub->SignUserCert(&ctx, req, &cert);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::string key_path = dir_.File("removed_key");
  WriteFileOrDie(key_path, key->first);
  chmod(key_path.c_str(), 0600);
  WriteFileOrDie(key_path + "-cert.pub", cert.certificate_line() + "\n");
  // The certificate works while alice exists (the control).
  std::string err;
  auto ok = OpenSsh(key_path, key_path + "-cert.pub", "echo still-here", &err);
  ASSERT_EQ(ok.exit_code, 0) << err;
  ASSERT_EQ(ok.out, "still-here\n");
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization",
                    "Bearer " + cluster_->Token(auth::Role::kAdmin, "admin"));
    pb::RemoveUserRequest req;
    req.set_name("alice");
    pb::RemoveUserResponse resp;
    ASSERT_TRUE(stub->RemoveUser(&ctx, req, &resp).ok());
  }
  std::string marker = dir_.File("ran-after-removal");
  auto r = OpenSsh(key_path, key_path + "-cert.pub",
                   "touch " + ShellQuote(marker) + "; echo unrecorded", &err);
  EXPECT_NE(r.exit_code, 0) << r.out << err;
  EXPECT_EQ(r.out, "") << err;
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the program ran";
  EXPECT_NE(err.find("session recording failed"), std::string::npos) << err;
  EXPECT_NE(err.find("removed"), std::string::npos) << err;
}

}  // namespace
}  // namespace mez::testing
