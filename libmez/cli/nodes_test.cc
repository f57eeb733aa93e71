// The mezd command `mezctl nodes add` prints: bash reads it back as the
// words it was made of, whatever the values hold.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "libmez/cli/commands.h"
#include "tests/test_util.h"

namespace mez::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

// The words bash makes of `command` (its first word, mezd, replaced by a
// printf of every word on a line of its own, NUL-free).
std::vector<std::string> BashWords(const std::string& command) {
  EXPECT_EQ(command.rfind("mezd ", 0), 0u) << command;
  testing::TempDir dir;
  std::string script = dir.File("cmd.sh");
  testing::WriteFileOrDie(script, "printf '%s\\0' " + command.substr(5) + "\n");
  auto r = testing::Run("bash " + testing::ShellQuote(script));
  EXPECT_EQ(r.exit_code, 0) << command;
  std::vector<std::string> words;
  size_t at = 0;
  while (at < r.out.size()) {
    size_t end = r.out.find('\0', at);
    if (end == std::string::npos) end = r.out.size();
    words.push_back(r.out.substr(at, end - at));
    at = end + 1;
  }
  return words;
}

TEST(JoinCommandTest, PlainValuesStayReadable) {
  std::string cmd = JoinCommand("10.0.0.1:3025", "eyJ.eyJ-_x.sig",
                                "10.0.0.5:3022", "/var/lib/mezd", false);
  EXPECT_EQ(cmd,
            "mezd --auth 10.0.0.1:3025 --token eyJ.eyJ-_x.sig --data-dir "
            "/var/lib/mezd --listen 10.0.0.5:3022");
  EXPECT_THAT(cmd, Not(HasSubstr("<")));
}

TEST(JoinCommandTest, HostileValuesAreOneWordEach) {
  // What a path or an address may hold that bash would otherwise
  // interpret: spaces, quotes, expansions, globs, a newline, a redirect.
  // (Harmless commands: the test must not hurt the machine if it fails.)
  const std::string dir = "/srv/my dir/'q' \"d\" $(echo x) `echo y` *\n>o";
  std::string cmd =
      JoinCommand("[::1]:3025", "tok;echo z", "[::1]:3022", dir, true);
  EXPECT_THAT(BashWords(cmd),
              ElementsAreArray(std::vector<std::string>{
                  "--auth", "[::1]:3025", "--token", "tok;echo z", "--data-dir",
                  dir, "--listen", "[::1]:3022", "--insecure"}));
}

// A name may resolve to an address the node does not have: mezd listens on
// every address at the port and reports the name.
TEST(JoinCommandTest, NamedAddressIsAdvertised) {
  EXPECT_THAT(BashWords(JoinCommand("auth.example:3025", "t",
                                    "web-01.example:2222", "/d", false)),
              ElementsAre("--auth", "auth.example:3025", "--token", "t",
                          "--data-dir", "/d", "--listen", "0.0.0.0:2222",
                          "--advertise", "web-01.example:2222"));
}

}  // namespace
}  // namespace mez::cli
