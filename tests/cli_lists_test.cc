// msh sessions ls and mezctl audit ls against a real mezrecd (filters,
// the default window and its note, the headerless pipe, session.end's
// details), the exit codes every command shares, and the completion of
// session ids and node names in real bash, zsh and fish.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

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

// The start of a command that runs a shell as its user would: in `home` (as
// HOME and working directory; no visible files there, so play's file names
// add nothing), without MEZ_IDENTITY, with msh and mezctl on PATH as
// installed, ahead of any installed elsewhere.
std::string AsUser(const std::string& home) {
  auto dir_of = [](std::string path) {
    return path.substr(0, path.rfind('/'));
  };
  return "mkdir -p " + ShellQuote(home) + " && cd " + ShellQuote(home) +
         " && HOME=" + ShellQuote(home) +
         " MEZ_IDENTITY= LC_ALL=C PATH=" + ShellQuote(dir_of(MSH_PATH)) + ":" +
         ShellQuote(dir_of(MEZCTL_PATH)) + ":$PATH ";
}

// What a shell offered for a line: the candidates, sorted, one per line,
// each as it would stand on the line; and what the shell wrote on stderr.
struct Offer {
  std::string words;
  std::string errors;
};

// Runs `shell_command` (which prints the candidates, one per line) as the
// user of `home`, under a time limit, with `scratch` for its output and
// `path_first` (if not empty) ahead of msh and mezctl on PATH.
Offer Complete(const std::string& home, const std::string& shell_command,
               const std::string& scratch, const std::string& path_first) {
  std::string out = ShellQuote(scratch + "/offer.out");
  std::string err = ShellQuote(scratch + "/offer.err");
  CommandResult r = ::mez::testing::Run(
      AsUser(home) +
      (path_first.empty() ? "" : "PATH=" + ShellQuote(path_first) + ":$PATH ") +
      "timeout 60 " + shell_command + " >" + out + " 2>" + err +
      "; rc=$?; sort " + out + "; echo '~~'; cat " + err + "; exit $rc");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  size_t split = r.out.find("~~\n");
  if (split == std::string::npos) return {r.out, "(no output)"};
  return {r.out.substr(0, split), r.out.substr(split + 3)};
}

// Real zsh: tests/zsh_complete.zsh types `line` and a TAB into an
// interactive zsh with compinit, completions/*.zsh installed as _msh and
// _mezctl in an $fpath directory under `scratch`.
Offer ZshComplete(const std::string& line, const std::string& home,
                  const std::string& scratch, const std::string& path_first) {
  std::string src = std::string(MEZ_SOURCE_DIR);
  std::string fpath = scratch + "/zsh-fpath";
  CommandResult ln =
      ::mez::testing::Run("mkdir -p " + ShellQuote(fpath) + " && ln -sf " +
                          ShellQuote(src + "/completions/msh.zsh") + " " +
                          ShellQuote(fpath + "/_msh") + " && ln -sf " +
                          ShellQuote(src + "/completions/mezctl.zsh") + " " +
                          ShellQuote(fpath + "/_mezctl"));
  EXPECT_EQ(ln.exit_code, 0);
  return Complete(home,
                  "zsh -f " + ShellQuote(src + "/tests/zsh_complete.zsh") +
                      " " + ShellQuote(fpath) + " " + ShellQuote(line),
                  scratch, path_first);
}

// Real fish: `complete -C LINE` with completions/ as the only directory
// fish loads completions from (not an installed msh.fish), descriptions
// cut off (`string replace` fails when there is nothing: not an error).
Offer FishComplete(const std::string& line, const std::string& home,
                   const std::string& scratch, const std::string& path_first) {
  std::string script =
      "set fish_complete_path $argv[1]; "
      "complete -C $argv[2] | string replace -r '\\t.*' ''; or true";
  return Complete(home,
                  "fish --no-config -c " + ShellQuote(script) + " " +
                      ShellQuote(std::string(MEZ_SOURCE_DIR) + "/completions") +
                      " " + ShellQuote(line),
                  scratch, path_first);
}

// Real bash: tests/bash_complete.bash hands the completion function what
// bash hands it on TAB (COMP_WORDS split at blanks and at "=" and ":",
// quotes kept as typed) and prints what would stand on the line.
Offer BashComplete(const std::string& line, const std::string& home,
                   const std::string& scratch, const std::string& path_first) {
  std::string src = std::string(MEZ_SOURCE_DIR);
  return Complete(home,
                  "bash --norc --noprofile " +
                      ShellQuote(src + "/tests/bash_complete.bash") + " " +
                      ShellQuote(src + "/completions") + " " + ShellQuote(line),
                  scratch, path_first);
}

// Each check runs in bash, zsh and fish, which must offer exactly the same
// candidates, written as they stand on the line ("root@db-01",
// "--node=db-01"); the server's are asked with the bash test's lines.
class CliCompleteTest : public CliTest {
 protected:
  using Shell = std::function<Offer(
      const std::string& line, const std::string& home,
      const std::string& scratch, const std::string& path_first)>;

  void ExpectServerCompletions(const Shell& shell) {
    std::string alice = AddUser("alice");
    AddUser("bob");
    Record("ab12", "alice");
    Record("ab34", "alice", mezite::v1::SESSION_KIND_EXEC, "db-01");
    Record("ac56", "alice");
    Record("ab78", "bob", mezite::v1::SESSION_KIND_SHELL, "web-03");
    ASSERT_EQ(Mezctl("nodes add web-02 --addr 127.0.0.1:3022").exit_code, 0);
    std::string nobody = dir_.File("home-nobody");
    // An identity named with "~/", as a user may type it.
    std::string tilde = dir_.File("home-tilde");
    ASSERT_EQ(::mez::testing::Run("mkdir -p " + ShellQuote(tilde) + " && cp " +
                                  ShellQuote(admin_id_) + " " +
                                  ShellQuote(tilde + "/admin.identity"))
                  .exit_code,
              0);
    // And one in a directory whose name has a blank and a quote.
    std::string odd = dir_.File("id dir's");
    ASSERT_EQ(::mez::testing::Run("mkdir -p " + ShellQuote(odd) + " && cp " +
                                  ShellQuote(admin_id_) + " " +
                                  ShellQuote(odd + "/admin.identity"))
                  .exit_code,
              0);
    std::string admin = "mezctl --identity " + ShellQuote(admin_id_);
    struct Case {
      std::string line, home, want;
    };
    std::vector<Case> cases = {
        // msh play: alice's session ids (not bob's), and local files.
        {"msh play ab", alice, "ab12\nab34\n"},
        {"msh play --format=text a", alice, "ab12\nab34\nac56\n"},
        // msh sessions show: the same ids.
        {"msh sessions show ab", alice, "ab12\nab34\n"},
        // msh ssh: the nodes of alice's sessions, also after "login@".
        {"msh ssh ", alice, "db-01\nweb-01\n"},
        {"msh ssh root@d", alice, "root@db-01\n"},
        // The --identity on the line is the one asked with, quoted or not.
        {"msh --identity " + ShellQuote(admin_id_) + " ssh web-0", nobody,
         "web-01\nweb-03\n"},
        {"msh --identity=~/admin.identity ssh web-0", tilde,
         "web-01\nweb-03\n"},
        {"msh --identity " + ShellQuote(odd + "/admin.identity") + " ssh web-0",
         nobody, "web-01\nweb-03\n"},
        {"mezctl --identity=" + ShellQuote(odd + "/admin.identity") +
             " nodes rm web-02",
         nobody, "web-02\n"},
        // mezctl nodes rm and audit ls --node: registered nodes.
        {admin + " nodes rm web", nobody, "web-01\nweb-02\nweb-03\n"},
        {admin + " audit ls --node d", nobody, "db-01\n"},
        {admin + " audit ls --node=d", nobody, "--node=db-01\n"},
        {admin + " audit ls --session ab", nobody, "ab12\nab34\nab78\n"},
        // A user may not list the nodes: nothing.
        {"mezctl nodes rm web", alice, ""},
        // Without a usable identity: nothing, no error text.
        {"msh play ab", nobody, ""},
        {"mezctl nodes rm web", nobody, ""},
    };
    for (const Case& c : cases) {
      Offer offer = shell(c.line, c.home, dir_.path(), "");
      EXPECT_EQ(offer.words, c.want) << c.line;
      EXPECT_EQ(offer.errors, "") << c.line;
    }
    // Without a server: nothing, no error text.
    server_->Stop();
    Offer down = shell("msh ssh ", alice, dir_.path(), "");
    EXPECT_EQ(down.words, "");
    EXPECT_EQ(down.errors, "");
  }

  // What comes from the files alone: subcommands and the values of options
  // with a fixed set (option names are cli_docs_test's).
  void ExpectCommandsAndValues(const Shell& shell) {
    std::string home = dir_.File("home-nobody");
    struct Case {
      std::string line, want;
    };
    std::vector<Case> cases = {
        {"msh ", "login\nlogout\nplay\nsessions\nssh\nstatus\nweb\n"},
        {"msh sessions ", "ls\nshow\n"},
        {"msh sessions show --format=", "--format=json\n--format=text\n"},
        {"msh sessions ls --kind=",
         "--kind=exec\n--kind=shell\n--kind=tcpip\n"},
        {"msh sessions ls --status ", "complete\nincomplete\nrecording\n"},
        {"msh play --format=p", "--format=plain\n--format=pty\n"},
        {"mezctl ", "audit\nca\nconfig\nnodes\nusers\nweb\n"},
        {"mezctl nodes ", "add\nls\nrm\n"},
        {"mezctl users ", "add\nls\nreissue\nrm\n"},
        {"mezctl config get ", "session_recording\n"},
        {"mezctl config set session_recording ", "node\nnode-sync\noff\n"},
        {"mezctl ca export --type ", "host\ntls\nuser\n"},
        {"mezctl users add bob --role ", "admin\nproxy\nuser\n"},
    };
    for (const Case& c : cases) {
      Offer offer = shell(c.line, home, dir_.path(), "");
      EXPECT_EQ(offer.words, c.want) << c.line;
      EXPECT_EQ(offer.errors, "") << c.line;
    }
  }

  // A server (or anything posing as msh and mezctl on PATH) that answers
  // with options and shell syntax instead of ids and names: only what
  // mezrecd accepts as an id or name is offered, and nothing is run.
  void ExpectOnlyPlainWordsFromAHostileServer(const Shell& shell) {
    std::string bin = dir_.File("hostile-bin");
    std::string pwned = dir_.File("pwned");
    std::string junk =
        "'--identity=/tmp/x' '-rf' '.ab' 'ab c' 'ab;x' "
        "'$(touch${IFS}" +
        pwned + ")' '`touch " + pwned + "`' 'x\\$HOME'";
    // Both print the junk and one good word per listing; the nodes come
    // as jsonl, their names in the field the completions read.
    std::string msh =
        "#!/bin/sh\ncase \"$*\" in\n"
        "*--format=jsonl*) for n in web-01 " +
        junk +
        "; do printf '{\"id\":\"s\",\"node\":\"%s\"}\\n' \"$n\"; done ;;\n"
        "*) printf '%s\\n' ab-1 " +
        junk + " ;;\nesac\n";
    std::string mezctl = "#!/bin/sh\nfor n in db-01 " + junk +
                         "; do printf '{\"name\":\"%s\"}\\n' \"$n\"; done\n";
    ASSERT_EQ(::mez::testing::Run("mkdir -p " + ShellQuote(bin)).exit_code, 0);
    WriteFileOrDie(bin + "/msh", msh);
    WriteFileOrDie(bin + "/mezctl", mezctl);
    ASSERT_EQ(::mez::testing::Run("chmod +x " + ShellQuote(bin + "/msh") + " " +
                                  ShellQuote(bin + "/mezctl"))
                  .exit_code,
              0);
    std::string home = dir_.File("home-victim");
    struct Case {
      std::string line, want;
    };
    std::vector<Case> cases = {
        {"msh play ", "ab-1\n"},
        {"msh ssh ", "web-01\n"},
        {"msh ssh root@", "root@web-01\n"},
        {"mezctl nodes rm ", "db-01\n"},
        {"mezctl audit ls --node ", "db-01\n"},
        {"mezctl audit ls --session ", "ab-1\n"},
    };
    for (const Case& c : cases) {
      Offer offer = shell(c.line, home, dir_.path(), bin);
      EXPECT_EQ(offer.words, c.want) << c.line;
      EXPECT_EQ(offer.errors, "") << c.line;
    }
    EXPECT_NE(::mez::testing::Run("test -e " + ShellQuote(pwned)).exit_code, 0)
        << "a completion ran what the server sent";
  }
};

TEST_F(CliCompleteTest, BashCompletesSessionIdsAndNodeNamesFromTheServer) {
  ExpectServerCompletions(BashComplete);
}

TEST_F(CliCompleteTest, BashOffersOnlyPlainIdsAndNamesFromAHostileServer) {
  ExpectOnlyPlainWordsFromAHostileServer(BashComplete);
}

TEST_F(CliCompleteTest, BashCompletesCommandsAndValues) {
  ExpectCommandsAndValues(BashComplete);
}

TEST_F(CliCompleteTest, ZshCompletesSessionIdsAndNodeNamesFromTheServer) {
  ASSERT_TRUE(HaveProgram("zsh")) << "zsh is missing: run scripts/deps";
  ExpectServerCompletions(ZshComplete);
}

TEST_F(CliCompleteTest, FishCompletesSessionIdsAndNodeNamesFromTheServer) {
  ASSERT_TRUE(HaveProgram("fish")) << "fish is missing: run scripts/deps";
  ExpectServerCompletions(FishComplete);
}

TEST_F(CliCompleteTest, ZshOffersOnlyPlainIdsAndNamesFromAHostileServer) {
  ASSERT_TRUE(HaveProgram("zsh")) << "zsh is missing: run scripts/deps";
  ExpectOnlyPlainWordsFromAHostileServer(ZshComplete);
}

TEST_F(CliCompleteTest, FishOffersOnlyPlainIdsAndNamesFromAHostileServer) {
  ASSERT_TRUE(HaveProgram("fish")) << "fish is missing: run scripts/deps";
  ExpectOnlyPlainWordsFromAHostileServer(FishComplete);
}

TEST_F(CliCompleteTest, ZshCompletesCommandsAndValues) {
  ASSERT_TRUE(HaveProgram("zsh")) << "zsh is missing: run scripts/deps";
  ExpectCommandsAndValues(ZshComplete);
}

TEST_F(CliCompleteTest, FishCompletesCommandsAndValues) {
  ASSERT_TRUE(HaveProgram("fish")) << "fish is missing: run scripts/deps";
  ExpectCommandsAndValues(FishComplete);
}

}  // namespace
}  // namespace mez::testing
