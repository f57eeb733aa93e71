// msh sessions ls and mezctl audit ls against a real mezrecd (filters,
// the default window and its note, the headerless pipe, session.end's
// details), the exit codes every command shares, and the bash completion
// of session ids and node names.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "tests/cli_fixture.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

namespace pb = mezite::v1;
using nlohmann::json;

TEST_F(CliTest, SessionsLsFiltersNewestFirstWithinADefaultWindow) {
  std::string alice = AddUser("alice");
  Record("shell-1", "alice");
  Record("exec-1", "alice", pb::SESSION_KIND_EXEC, "db-01", 3);
  auto ids = [&](const std::string& args) {
    return Cli(MSH_PATH, "sessions ls -q " + args, alice).out;
  };
  EXPECT_EQ(ids(""), "exec-1\nshell-1\n");
  EXPECT_EQ(ids("--kind=exec"), "exec-1\n");
  EXPECT_EQ(ids("--kind=shell"), "shell-1\n");
  EXPECT_EQ(ids("--status=complete"), "exec-1\nshell-1\n");
  EXPECT_EQ(ids("--status=recording"), "");
  EXPECT_EQ(ids("--node=db-01"), "exec-1\n");
  EXPECT_EQ(ids("--since=1h"), "exec-1\nshell-1\n");
  EXPECT_EQ(ids("--until=1h"), "");
  EXPECT_EQ(ids("--since=2100-01-01"), "");
  EXPECT_EQ(ids("--until=2100-01-01T00:00:00Z"), "exec-1\nshell-1\n");
  auto bad_kind = Cli(MSH_PATH, "sessions ls --kind=sftp", alice);
  EXPECT_EQ(bad_kind.exit_code, 2) << bad_kind.out;
  auto bad_since = Cli(MSH_PATH, "sessions ls --since=yesterday", alice);
  EXPECT_EQ(bad_since.exit_code, 2) << bad_since.out;
  EXPECT_NE(bad_since.out.find("duration"), std::string::npos);

  // The latest 50 by default, with one line on stderr saying how to see
  // more; an explicit --limit is obeyed silently.
  for (int i = 0; i < 50; ++i) Record("bulk-" + std::to_string(i), "alice");
  // (Cli appends "2>&1"; "; true" keeps it off msh.)
  auto cut = Cli(MSH_PATH, "sessions ls -q 2>/dev/null; true", alice);
  EXPECT_EQ(std::count(cut.out.begin(), cut.out.end(), '\n'), 50);
  EXPECT_EQ(cut.out.rfind("bulk-49\n", 0), 0u) << cut.out;
  auto note = Cli(MSH_PATH, "sessions ls -q 2>&1 >/dev/null; true", alice);
  EXPECT_EQ(note.out,
            "msh: the latest 50 sessions shown; --limit=0 lists all, "
            "--since/--until a time window\n");
  auto all = Cli(MSH_PATH, "sessions ls -q --limit=0", alice);
  EXPECT_EQ(std::count(all.out.begin(), all.out.end(), '\n'), 52);
  auto three =
      Cli(MSH_PATH, "sessions ls --limit=3 2>&1 | wc -l | tr -d ' '", alice);
  EXPECT_EQ(three.out, "3\n");
}

TEST_F(CliTest, AuditLsShowsLoginExitAndDurationOfSessionEnd) {
  Record("s1", "alice", pb::SESSION_KIND_EXEC, "db-01", 7);
  Record("s2", "bob", pb::SESSION_KIND_SHELL, "web-01");
  auto text = Mezctl("audit ls --type=session.end --node=db-01");
  ASSERT_EQ(text.exit_code, 0) << text.out;
  // One line, no header: time, type, user, full session id, node, details.
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 1) << text.out;
  std::istringstream row(text.out);
  std::string time, type, user, session, node, login, exit, duration;
  row >> time >> type >> user >> session >> node >> login >> exit >> duration;
  EXPECT_EQ(type, "session.end");
  EXPECT_EQ(user, "alice");
  EXPECT_EQ(session, "s1");
  EXPECT_EQ(node, "db-01");
  EXPECT_EQ(login.rfind("login=", 0), 0u) << text.out;
  EXPECT_EQ(exit, "exit=7") << text.out;
  EXPECT_TRUE(
      std::regex_match(duration, std::regex(R"((\d+h)?(\d+m)?[0-9.]+s)")))
      << text.out;
  auto header = Mezctl("audit ls --header --node=web-01 | head -1");
  EXPECT_EQ(header.out.rfind("TIME", 0), 0u) << header.out;
  auto web = Mezctl("audit ls --type=session.end --node=web-01 --format=jsonl");
  EXPECT_EQ(json::parse(web.out)["session_id"], "s2");
}

TEST_F(CliTest, ExitCodesTellErrorsApart) {
  std::string alice = AddUser("alice");
  Record("a1", "alice");
  // 0 ok, 2 usage.
  EXPECT_EQ(Cli(MSH_PATH, "sessions ls", alice).exit_code, 0);
  EXPECT_EQ(Cli(MSH_PATH, "sessions ls --nosuchflag", alice).exit_code, 2);
  EXPECT_EQ(Mezctl("audit ls --limit=-5").exit_code, 2);
  // 3 not found.
  auto play = Cli(MSH_PATH, "play --format=text b0", alice);
  EXPECT_EQ(play.exit_code, 3) << play.out;
  auto rm = Mezctl("nodes rm no-such-node");
  EXPECT_EQ(rm.exit_code, 3) << rm.out;
  // 4 permission denied, or an identity the server refuses.
  auto denied = Cli(MEZCTL_PATH, "audit ls", alice);
  EXPECT_EQ(denied.exit_code, 4) << denied.out;
  ASSERT_EQ(Mezctl("users rm alice").exit_code, 0);
  auto removed = Cli(MSH_PATH, "sessions ls", alice);
  EXPECT_EQ(removed.exit_code, 4) << removed.out;
  // 5 mezrecd unreachable.
  server_->Stop();
  ASSERT_FALSE(server_->running());
  auto down = Mezctl("audit ls");
  EXPECT_EQ(down.exit_code, 5) << down.out;
  // The --help footer says so.
  auto help = Cli(MSH_PATH, "--help");
  EXPECT_NE(help.out.find("5 mezrecd unavailable"), std::string::npos)
      << help.out;
}

// Sources completions/<bin>.bash in bash, completes the line `words` (the
// last word is the one under the cursor) and returns COMPREPLY sorted, one
// per line. msh and mezctl are found on PATH, as installed.
std::string BashComplete(const std::string& bin, const std::string& words,
                         const std::string& home) {
  std::string dir = MSH_PATH;
  dir = dir.substr(0, dir.rfind('/'));
  std::string script = "source " +
                       ShellQuote(std::string(MEZ_SOURCE_DIR) +
                                  "/completions/" + bin + ".bash") +
                       "; COMP_WORDS=(" + words +
                       "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _" + bin +
                       "; printf '%s\\n' \"${COMPREPLY[@]}\" | sort";
  // In HOME (no visible files), so play's file names add nothing.
  CommandResult r =
      ::mez::testing::Run("mkdir -p " + ShellQuote(home) + " && cd " +
                          ShellQuote(home) + " && HOME=" + ShellQuote(home) +
                          " MEZ_IDENTITY= LC_ALL=C PATH=" + ShellQuote(dir) +
                          ":$PATH bash -c " + ShellQuote(script) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return r.out;
}

TEST_F(CliTest, BashCompletesSessionIdsAndNodeNamesFromTheServer) {
  std::string alice = AddUser("alice");
  AddUser("bob");
  Record("ab12", "alice");
  Record("ab34", "alice", pb::SESSION_KIND_EXEC, "db-01");
  Record("ac56", "alice");
  Record("ab78", "bob", pb::SESSION_KIND_SHELL, "web-03");
  ASSERT_EQ(Mezctl("nodes add web-02 --addr 127.0.0.1:3022").exit_code, 0);
  // msh play: alice's session ids (not bob's), and local files.
  EXPECT_EQ(BashComplete("msh", "msh play ab", alice), "ab12\nab34\n");
  EXPECT_EQ(BashComplete("msh", "msh play --format=text a", alice),
            "ab12\nab34\nac56\n");
  // msh ssh: the nodes of alice's sessions, also after "login@".
  EXPECT_EQ(BashComplete("msh", "msh ssh ''", alice), "db-01\nweb-01\n");
  EXPECT_EQ(BashComplete("msh", "msh ssh root@d", alice), "root@db-01\n");
  // The --identity on the line is the one asked with.
  EXPECT_EQ(BashComplete(
                "msh", "msh --identity " + ShellQuote(admin_id_) + " ssh web-0",
                dir_.File("nobody")),
            "web-01\nweb-03\n");
  // mezctl nodes rm and audit ls --node: registered nodes.
  std::string admin = "mezctl --identity " + ShellQuote(admin_id_);
  EXPECT_EQ(BashComplete("mezctl", admin + " nodes rm web", alice),
            "web-01\nweb-02\nweb-03\n");
  EXPECT_EQ(BashComplete("mezctl", admin + " audit ls --node d", alice),
            "db-01\n");
  EXPECT_EQ(BashComplete("mezctl", admin + " audit ls --session ab", alice),
            "ab12\nab34\nab78\n");
  // Without a usable identity or server: nothing, quickly, no error text.
  EXPECT_EQ(BashComplete("msh", "msh play ab", dir_.File("nobody")), "\n");
  server_->Stop();
  EXPECT_EQ(BashComplete("msh", "msh ssh ''", alice), "\n");
}

}  // namespace
}  // namespace mez::testing
