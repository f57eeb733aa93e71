// Keeps the man pages and shell completions in step with the CLIs: walks
// each binary's --help tree (CLI11 output) and checks that every
// subcommand, long option and enumerated option value is documented in the
// man page (options of a subcommand in that subcommand's .SS section) and,
// for msh and mezctl, offered by the bash, zsh and fish completions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace mez::testing {
namespace {

struct Option {
  std::string name;                 // "--format".
  std::vector<std::string> values;  // From CLI11's ":{a,b,c}", if any.
};

// One node of a binary's command tree, as its --help page shows it.
struct Command {
  std::vector<std::string> path;  // Subcommand names below the binary.
  std::vector<Option> options;
  std::vector<std::string> subcommands;
};

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// "msh sessions ls", or "msh" at the top.
std::string Describe(const std::string& bin, const Command& c) {
  return c.path.empty() ? bin : bin + " " + Join(c.path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Parses one CLI11 help page: option lines are indented and start with
// '-' ("  -q,--quiet   ...", "  --format TEXT:{text,json}"); subcommands are
// the indented lines of the "Subcommands:" section (any case).
void ParseHelp(const std::string& help, Command* cmd) {
  static const std::regex kOptionLine(R"(^ {1,4}(-\S+))");
  static const std::regex kSubcommandLine(R"(^ {1,4}([A-Za-z0-9_][^\s]*))");
  static const std::regex kValues(R"(:\{([^}]*)\})");
  std::istringstream in(help);
  std::string line;
  bool in_subcommands = false;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != ' ') {
      std::string lower;
      for (char c : line) lower += static_cast<char>(std::tolower(c));
      in_subcommands = lower.rfind("subcommands:", 0) == 0;
      continue;
    }
    if (in_subcommands) {
      if (std::regex_search(line, m, kSubcommandLine)) {
        cmd->subcommands.push_back(m[1]);
      }
      continue;
    }
    if (!std::regex_search(line, m, kOptionLine)) continue;
    std::vector<std::string> values;
    std::smatch vm;
    if (std::regex_search(line, vm, kValues)) {
      std::stringstream vs(vm[1]);
      std::string v;
      while (std::getline(vs, v, ',')) values.push_back(v);
    }
    std::stringstream names(m[1]);
    std::string name;
    while (std::getline(names, name, ',')) {
      if (name.rfind("--", 0) == 0) cmd->options.push_back({name, values});
    }
  }
}

// Runs `bin [path...] --help` for every node of the tree, depth first.
// Failures to run are reported through gtest and end the walk there.
void Walk(const std::string& bin, std::vector<std::string> path,
          std::vector<Command>* out) {
  std::string argv = ShellQuote(bin);
  for (const auto& p : path) argv += " " + ShellQuote(p);
  CommandResult r = Run(argv + " --help 2>&1");
  ASSERT_EQ(r.exit_code, 0) << argv << " --help:\n" << r.out;
  Command cmd;
  cmd.path = path;
  ParseHelp(r.out, &cmd);
  out->push_back(cmd);
  for (const auto& sub : cmd.subcommands) {
    path.push_back(sub);
    Walk(bin, path, out);
    path.pop_back();
  }
}

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// Whether `word` occurs in `text` not as part of a longer word ("--identity"
// is not found in "--identity-out").
bool HasWord(const std::string& text, const std::string& word) {
  for (size_t at = text.find(word); at != std::string::npos;
       at = text.find(word, at + 1)) {
    size_t end = at + word.size();
    if ((at == 0 || !IsWordChar(text[at - 1])) &&
        (end == text.size() || !IsWordChar(text[end]))) {
      return true;
    }
  }
  return false;
}

// Man page source as plain text: font escapes dropped, "\-" as "-", quotes
// removed, so that "\fB\-\-speed\fR" reads "--speed".
std::string ManText(const std::string& roff) {
  std::string out;
  for (size_t i = 0; i < roff.size(); ++i) {
    if (roff[i] == '"') continue;
    if (roff[i] != '\\' || i + 1 == roff.size()) {
      out += roff[i];
      continue;
    }
    char next = roff[i + 1];
    if (next == 'f' && i + 2 < roff.size()) {
      i += 2;  // \fB, \fI, \fR, \fP.
    } else if (next == '(' && i + 3 < roff.size()) {
      out += roff.substr(i + 2, 2) == "aq" ? "'" : " ";
      i += 3;
    } else {
      out += next;  // \- and \\ and anything else: the character itself.
      ++i;
    }
  }
  return out;
}

struct ManSection {
  std::vector<std::string> heading;  // Words of the .SS line.
  std::string text;
};

// The .SS sections of a man page (each up to the next .SS or .SH).
std::vector<ManSection> ManSections(const std::string& text) {
  std::vector<ManSection> sections;
  std::istringstream in(text);
  std::string line;
  bool open = false;
  while (std::getline(in, line)) {
    if (line.rfind(".SH", 0) == 0) {
      open = false;
    } else if (line.rfind(".SS ", 0) == 0) {
      ManSection s;
      std::istringstream words(line.substr(4));
      std::string w;
      while (words >> w) s.heading.push_back(w);
      sections.push_back(s);
      open = true;
    } else if (open) {
      sections.back().text += line + "\n";
    }
  }
  return sections;
}

// Text of every .SS section whose heading starts with `bin path...`; the
// whole page for the top level. Empty when no section matches.
std::string ManScope(const std::string& page, const std::string& bin,
                     const std::vector<std::string>& path) {
  if (path.empty()) return page;
  std::vector<std::string> want = {bin};
  want.insert(want.end(), path.begin(), path.end());
  std::string scope;
  for (const auto& s : ManSections(page)) {
    if (s.heading.size() >= want.size() &&
        std::equal(want.begin(), want.end(), s.heading.begin())) {
      scope += Join(s.heading) + "\n" + s.text;
    }
  }
  return scope;
}

// Everything the man page at `man_path` fails to document, one per line.
std::string ManPageGaps(const std::string& bin,
                        const std::vector<Command>& tree,
                        const std::string& man_path) {
  std::string page = ManText(ReadFile(man_path));
  if (page.empty()) return man_path + ": missing or empty\n";
  std::string gaps;
  for (const auto& cmd : tree) {
    std::string where = Describe(bin, cmd);
    std::string scope = ManScope(page, bin, cmd.path);
    if (scope.empty()) {
      gaps += man_path + ": no .SS section for '" + where + "'\n";
      continue;
    }
    for (const auto& opt : cmd.options) {
      // --help is everywhere; the page documents it once.
      const std::string& in = opt.name == "--help" ? page : scope;
      if (!HasWord(in, opt.name)) {
        gaps += man_path + ": '" + where + "' lacks " + opt.name + "\n";
      }
      for (const auto& v : opt.values) {
        if (!HasWord(in, v)) {
          gaps += man_path + ": '" + where + "' lacks " + opt.name + " value " +
                  v + "\n";
        }
      }
    }
  }
  return gaps;
}

enum class Shell { kBash, kZsh, kFish };

// How a completion file spells a long option: "--name" in bash and zsh,
// "-l name" in fish.
bool CompletesOption(Shell shell, const std::string& text,
                     const std::string& option) {
  if (shell != Shell::kFish) return HasWord(text, option);
  return HasWord(text, "-l " + option.substr(2)) ||
         HasWord(text, "--long-option " + option.substr(2));
}

// Everything the completion file at `path` fails to offer, one per line.
std::string CompletionGaps(const std::string& bin,
                           const std::vector<Command>& tree, Shell shell,
                           const std::string& path) {
  std::string text = ReadFile(path);
  if (text.empty()) return path + ": missing or empty\n";
  std::string gaps;
  for (const auto& cmd : tree) {
    std::string where = Describe(bin, cmd);
    for (const auto& sub : cmd.subcommands) {
      if (!HasWord(text, sub)) {
        gaps += path + ": '" + where + "' lacks subcommand " + sub + "\n";
      }
    }
    for (const auto& opt : cmd.options) {
      if (!CompletesOption(shell, text, opt.name)) {
        gaps += path + ": '" + where + "' lacks " + opt.name + "\n";
      }
      for (const auto& v : opt.values) {
        if (!HasWord(text, v)) {
          gaps += path + ": '" + where + "' lacks " + opt.name + " value " + v +
                  "\n";
        }
      }
    }
  }
  return gaps;
}

std::vector<Command> Tree(const std::string& bin_path) {
  std::vector<Command> tree;
  Walk(bin_path, {}, &tree);
  return tree;
}

int CountOptions(const std::vector<Command>& tree) {
  int n = 0;
  for (const auto& c : tree) n += static_cast<int>(c.options.size());
  return n;
}

const std::string kSource = MEZ_SOURCE_DIR;

TEST(CliDocsTest, HelpParserSeesTheWholeTree) {
  // Guards the checks below against passing because nothing was parsed.
  std::vector<Command> msh = Tree(MSH_PATH);
  ASSERT_FALSE(msh.empty());
  EXPECT_GE(msh.size(), 5u);  // msh, login, sessions, sessions ls, play.
  bool saw_play_format = false;
  for (const auto& c : msh) {
    for (const auto& o : c.options) {
      if (c.path == std::vector<std::string>{"play"} && o.name == "--format") {
        saw_play_format = !o.values.empty();
      }
    }
  }
  EXPECT_TRUE(saw_play_format);
  EXPECT_GE(Tree(MEZCTL_PATH).size(), 15u);
  EXPECT_GE(CountOptions(Tree(MEZRECD_PATH)), 8);
}

// Every binary answers --version with its name and the project's version
// on stdout, exit 0.
TEST(CliDocsTest, EveryBinaryPrintsItsVersion) {
  for (const auto& [name, path] :
       std::vector<std::pair<std::string, std::string>>{
           {"msh", MSH_PATH},
           {"mezctl", MEZCTL_PATH},
           {"mezrecd", MEZRECD_PATH},
           {"mezd", MEZD_PATH}}) {
    CommandResult r =
        ::mez::testing::Run(ShellQuote(path) + " --version 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << name;
    EXPECT_EQ(r.out, name + " " + MEZ_VERSION + "\n") << name;
  }
}

TEST(CliDocsTest, MshManPage) {
  EXPECT_EQ(ManPageGaps("msh", Tree(MSH_PATH), kSource + "/man/msh.1"), "");
}

TEST(CliDocsTest, MezctlManPage) {
  EXPECT_EQ(ManPageGaps("mezctl", Tree(MEZCTL_PATH), kSource + "/man/mezctl.1"),
            "");
}

TEST(CliDocsTest, MezrecdManPage) {
  EXPECT_EQ(
      ManPageGaps("mezrecd", Tree(MEZRECD_PATH), kSource + "/man/mezrecd.8"),
      "");
}

TEST(CliDocsTest, MezdManPage) {
  EXPECT_EQ(ManPageGaps("mezd", Tree(MEZD_PATH), kSource + "/man/mezd.8"), "");
}

TEST(CliDocsTest, MshCompletions) {
  std::vector<Command> tree = Tree(MSH_PATH);
  std::string dir = kSource + "/completions/";
  EXPECT_EQ(CompletionGaps("msh", tree, Shell::kBash, dir + "msh.bash"), "");
  EXPECT_EQ(CompletionGaps("msh", tree, Shell::kZsh, dir + "msh.zsh"), "");
  EXPECT_EQ(CompletionGaps("msh", tree, Shell::kFish, dir + "msh.fish"), "");
}

TEST(CliDocsTest, MezctlCompletions) {
  std::vector<Command> tree = Tree(MEZCTL_PATH);
  std::string dir = kSource + "/completions/";
  EXPECT_EQ(CompletionGaps("mezctl", tree, Shell::kBash, dir + "mezctl.bash"),
            "");
  EXPECT_EQ(CompletionGaps("mezctl", tree, Shell::kZsh, dir + "mezctl.zsh"),
            "");
  EXPECT_EQ(CompletionGaps("mezctl", tree, Shell::kFish, dir + "mezctl.fish"),
            "");
}

}  // namespace
}  // namespace mez::testing
