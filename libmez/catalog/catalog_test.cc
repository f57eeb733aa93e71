// One suite for every Catalog backend: CatalogTest is parameterised over a
// Backend that makes a fresh, empty store per test. A new backend adds one
// Backend to INSTANTIATE_TEST_SUITE_P. Tests that reach into SQLite itself
// (file mode, raw schema rows) are in SqliteCatalogTest below, those that
// reach into PostgreSQL (concurrent migrations, reconnects) in
// PostgresCatalogTest. The PostgreSQL backend runs against a real server
// that the test starts (tests/postgres_server.h): one per test process, a
// fresh schema per test.
//
// Session ids are fixed-width ASCII ("s000042") so that the id tie-break
// of the ordering is the same under any SQL collation.
#include "libmez/catalog/catalog.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "libmez/catalog/replica_lease.h"
#include "libmez/catalog/sqlite_catalog_internal.h"
#include "libmez/util/clock.h"
#include "tests/postgres_server.h"

namespace mez::catalog {
namespace {

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

#define ASSERT_OK(expr)                                                \
  do {                                                                 \
    const auto& mez_r_ = (expr);                                       \
    ASSERT_TRUE(StatusOf(mez_r_).ok()) << StatusOf(mez_r_).ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                                \
  do {                                                                 \
    const auto& mez_r_ = (expr);                                       \
    EXPECT_TRUE(StatusOf(mez_r_).ok()) << StatusOf(mez_r_).ToString(); \
  } while (0)

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mez_catalog_test.XXXXXX";
    MEZ_CHECK(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A store under test. Each Open() returns a new handle on the same data,
// so that a test can close its handle and check what a restart sees.
class TestStore {
 public:
  virtual ~TestStore() = default;
  virtual Result<std::unique_ptr<Catalog>> Open() = 0;
};

struct Backend {
  std::string name;
  std::function<std::unique_ptr<TestStore>()> make;  // Fresh and empty.
};

class SqliteStore : public TestStore {
 public:
  Result<std::unique_ptr<Catalog>> Open() override {
    return OpenSqliteCatalog(path());
  }

 private:
  std::string path() const { return dir_.path() + "/catalog.db"; }

  TempDir dir_;
};

// A fresh schema on the shared test server, so an empty catalog; dropped on
// destruction.
class PostgresStore : public TestStore {
 public:
  PostgresStore() {
    auto server = testing::SharedPostgresServer();
    if (!server.ok()) {
      url_ = server.status();
      return;
    }
    server_ = *server;
    url_ = server_->CreateSchema();
  }
  ~PostgresStore() override {
    if (server_ != nullptr && url_.ok()) (void)server_->DropSchema(*url_);
  }
  Result<std::unique_ptr<Catalog>> Open() override {
    if (!url_.ok()) return url_.status();
    return OpenPostgresCatalog(*url_);
  }
  const Result<std::string>& url() const { return url_; }

 private:
  testing::PostgresServer* server_ = nullptr;
  Result<std::string> url_ = Status(Code::kInternal, "not created");
};

std::string Id(int n) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "s%06d", n);
  return buf;
}

Session MakeSession(int n, const std::string& user, const std::string& node,
                    int64_t started_us) {
  Session s;
  s.id = Id(n);
  s.connection_id = "c" + std::to_string(n / 4);
  s.user = user;
  s.node = node;
  s.login = "ubuntu";
  s.kind = "shell";
  s.started_us = started_us;
  s.storage_key = user + "/shell/" + s.id + ".cast";
  s.format = "asciicast-v2";
  return s;
}

// Designated initialisers would read better, but -Wextra wants every
// member named.
SessionFilter Sessions(std::string user, std::string node, int64_t since_us,
                       int64_t until_us, int limit) {
  SessionFilter f;
  f.user = std::move(user);
  f.node = std::move(node);
  f.since_us = since_us;
  f.until_us = until_us;
  f.limit = limit;
  return f;
}

AuditFilter Audit(std::string type, std::string user, std::string session_id,
                  int64_t since_us, int64_t until_us, int limit) {
  AuditFilter f;
  f.type = std::move(type);
  f.user = std::move(user);
  f.session_id = std::move(session_id);
  f.since_us = since_us;
  f.until_us = until_us;
  f.limit = limit;
  return f;
}

AuditEvent Event(int64_t time_us, std::string type, std::string user = "",
                 std::string session_id = "") {
  AuditEvent e;
  e.time_us = time_us;
  e.type = std::move(type);
  e.user = std::move(user);
  e.session_id = std::move(session_id);
  e.node = "web-1";
  return e;
}

void ExpectSameSession(const Session& want, const Session& got) {
  EXPECT_EQ(want.id, got.id);
  EXPECT_EQ(want.connection_id, got.connection_id);
  EXPECT_EQ(want.user, got.user);
  EXPECT_EQ(want.node, got.node);
  EXPECT_EQ(want.login, got.login);
  EXPECT_EQ(want.kind, got.kind);
  EXPECT_EQ(want.command, got.command);
  EXPECT_EQ(want.started_us, got.started_us);
  EXPECT_EQ(want.ended_us, got.ended_us);
  EXPECT_EQ(want.bytes, got.bytes);
  EXPECT_EQ(SessionStatusName(want.status), SessionStatusName(got.status));
  EXPECT_EQ(want.storage_key, got.storage_key);
  EXPECT_EQ(want.format, got.format);
  EXPECT_EQ(want.encrypted, got.encrypted);
  EXPECT_EQ(want.replica, got.replica);
}

std::vector<std::string> Ids(const std::vector<Session>& sessions) {
  std::vector<std::string> ids;
  for (const Session& s : sessions) ids.push_back(s.id);
  return ids;
}

// What ListSessions must return, computed the slow, obvious way.
std::vector<std::string> ReferenceList(std::vector<Session> all,
                                       const SessionFilter& f) {
  std::erase_if(all, [&](const Session& s) {
    return (!f.user.empty() && s.user != f.user) ||
           (!f.node.empty() && s.node != f.node) ||
           (!f.kind.empty() && s.kind != f.kind) ||
           (f.status && s.status != *f.status) ||
           !s.id.starts_with(f.id_prefix) ||
           (f.since_us != 0 && s.started_us < f.since_us) ||
           (f.until_us != 0 && s.started_us >= f.until_us);
  });
  std::sort(all.begin(), all.end(), [](const Session& a, const Session& b) {
    if (a.started_us != b.started_us) return a.started_us > b.started_us;
    return a.id > b.id;
  });
  if (f.limit > 0 && all.size() > static_cast<size_t>(f.limit)) {
    all.resize(f.limit);
  }
  return Ids(all);
}

class CatalogTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NO_FATAL_FAILURE(Reopen());
  }

  // Drops the handle and opens the store again, as a restart would.
  void Reopen() {
    catalog_.reset();
    auto opened = store_->Open();
    ASSERT_OK(opened);
    catalog_ = std::move(opened).value();
  }

  Catalog& cat() { return *catalog_; }

  std::unique_ptr<TestStore> store_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_P(CatalogTest, SessionRoundTripKeepsEveryField) {
  Session s;
  s.id = "0b5e6a1c-93f2-4c4e-9a57-6f0d2f0e1d2a";
  s.connection_id = "conn-7";
  s.user = "alice";
  s.node = "db-1";
  s.login = "postgres";
  s.kind = "exec";
  s.command = "psql -c 'select 1;' \"quoted\"\n\xc3\xa9t\xc3\xa9";
  s.started_us = 1'700'000'000'123'456;
  s.ended_us = 0;
  s.bytes = uint64_t{1} << 40;
  s.status = SessionStatus::kRecording;
  s.storage_key = "alice/exec/0b5e6a1c-93f2-4c4e-9a57-6f0d2f0e1d2a.cast.gz";
  s.format = "asciicast-v2";
  s.encrypted = true;
  s.replica = "0123456789abcdef";
  ASSERT_OK(cat().CreateSession(s));

  auto got = cat().GetSession(s.id);
  ASSERT_OK(got);
  ExpectSameSession(s, *got);

  ASSERT_OK(cat().UpdateSessionBytes(s.id, s.bytes + 100));
  s.bytes += 100;
  got = cat().GetSession(s.id);
  ASSERT_OK(got);
  ExpectSameSession(s, *got);

  ASSERT_OK(cat().FinishSession(s.id, s.started_us + 5'000'000, 123456789,
                                SessionStatus::kComplete));
  s.ended_us = s.started_us + 5'000'000;
  s.bytes = 123456789;
  s.status = SessionStatus::kComplete;
  got = cat().GetSession(s.id);
  ASSERT_OK(got);
  ExpectSameSession(s, *got);

  // The largest byte count a BIGINT column holds round-trips.
  Session big = MakeSession(1, "bob", "web-1", 5);
  big.bytes = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  big.encrypted = false;
  ASSERT_OK(cat().CreateSession(big));
  got = cat().GetSession(big.id);
  ASSERT_OK(got);
  ExpectSameSession(big, *got);
}

TEST_P(CatalogTest, DuplicateIdIsAlreadyExistsAndKeepsTheOriginal) {
  Session s = MakeSession(1, "alice", "web-1", 1000);
  ASSERT_OK(cat().CreateSession(s));
  Session other = MakeSession(1, "mallory", "web-2", 2000);
  Status st = cat().CreateSession(other);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_EQ(st.message(), "session s000001 already exists");
  auto got = cat().GetSession(s.id);
  ASSERT_OK(got);
  ExpectSameSession(s, *got);
}

TEST_P(CatalogTest, SetSessionStorageKeyChangesOnlyTheKey) {
  Session s = MakeSession(1, "alice", "web-1", 1000);
  ASSERT_OK(cat().CreateSession(s));
  ASSERT_OK(cat().SetSessionStorageKey(s.id, "alice/tcpip/c_h_22.1.pcap.gz"));
  s.storage_key = "alice/tcpip/c_h_22.1.pcap.gz";
  auto got = cat().GetSession(s.id);
  ASSERT_OK(got);
  ExpectSameSession(s, *got);
  EXPECT_EQ(cat().SetSessionStorageKey("nope", "k").code(), Code::kNotFound);
}

TEST_P(CatalogTest, DeleteSessionRemovesOnlyThatRow) {
  Session a = MakeSession(1, "alice", "web-1", 1000);
  Session b = MakeSession(2, "alice", "web-1", 2000);
  ASSERT_OK(cat().CreateSession(a));
  ASSERT_OK(cat().CreateSession(b));
  ASSERT_OK(cat().DeleteSession(a.id));
  EXPECT_EQ(cat().GetSession(a.id).status().code(), Code::kNotFound);
  auto got = cat().GetSession(b.id);
  ASSERT_OK(got);
  ExpectSameSession(b, *got);
  // The id can be used again, and deleting twice is kNotFound.
  ASSERT_OK(cat().CreateSession(a));
  ASSERT_OK(cat().DeleteSession(a.id));
  Status st = cat().DeleteSession(a.id);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find(a.id), std::string::npos);
}

TEST_P(CatalogTest, UnknownIdIsNotFound) {
  ASSERT_OK(cat().CreateSession(MakeSession(1, "alice", "web-1", 1000)));
  auto got = cat().GetSession("nope");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound);
  EXPECT_NE(got.status().message().find("nope"), std::string::npos);

  Status st = cat().FinishSession("nope", 5, 5, SessionStatus::kComplete);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find("nope"), std::string::npos);
  st = cat().UpdateSessionBytes("nope", 5);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
}

TEST_P(CatalogTest, InvalidInputIsRejected) {
  Session s = MakeSession(1, "alice", "web-1", 1000);
  s.id.clear();
  EXPECT_EQ(cat().CreateSession(s).code(), Code::kInvalidArgument);

  s = MakeSession(1, "alice", "web-1", 1000);
  s.bytes = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(cat().CreateSession(s).code(), Code::kInvalidArgument);
  s.bytes = 0;
  ASSERT_OK(cat().CreateSession(s));
  EXPECT_EQ(cat().FinishSession(s.id, 5, 0, SessionStatus::kRecording).code(),
            Code::kInvalidArgument);

  SessionFilter sf;
  sf.limit = -1;
  EXPECT_EQ(cat().ListSessions(sf).status().code(), Code::kInvalidArgument);
  AuditFilter af;
  af.limit = -1;
  EXPECT_EQ(cat().ListAudit(af).status().code(), Code::kInvalidArgument);

  AuditEvent e;
  e.time_us = 1;
  EXPECT_EQ(cat().AppendAudit(e).status().code(), Code::kInvalidArgument);
  e.type = "session.start";
  for (const char* bad : {"not json", "[1,2]", "\"text\"", "{\"a\":"}) {
    e.details = bad;
    EXPECT_EQ(cat().AppendAudit(e).status().code(), Code::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(cat().GetConfig("").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cat().SetConfig("", "x").code(), Code::kInvalidArgument);
}

TEST_P(CatalogTest, ListSessionsFiltersAndOrdersNewestFirst) {
  const std::vector<std::string> users = {"alice", "bob", "carol"};
  const std::vector<std::string> nodes = {"web-1", "web-2", "db-1"};
  std::vector<Session> all;
  int n = 0;
  for (int t = 0; t < 20; ++t) {
    for (size_t u = 0; u < users.size(); ++u) {
      for (size_t d = 0; d < nodes.size(); ++d) {
        // Every third time slot is shared by all nine sessions, so the id
        // tie-break matters.
        int64_t started = 1'000'000 + t * 1000 + (t % 3 == 0 ? 0 : n % 9);
        all.push_back(MakeSession(n++, users[u], nodes[d], started));
      }
    }
  }
  std::vector<Session> shuffled = all;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(42));
  for (const Session& s : shuffled) ASSERT_OK(cat().CreateSession(s));

  const std::vector<SessionFilter> filters = {
      Sessions("", "", 0, 0, 0),
      Sessions("bob", "", 0, 0, 0),
      Sessions("", "db-1", 0, 0, 0),
      Sessions("carol", "web-2", 0, 0, 0),
      Sessions("", "", 1'009'000, 0, 0),
      Sessions("", "", 0, 1'005'000, 0),
      Sessions("", "", 1'003'000, 1'012'000, 0),
      Sessions("", "", 1'003'000, 1'003'000, 0),
      Sessions("alice", "web-1", 1'006'000, 1'015'000, 0),
      Sessions("", "", 0, 0, 7),
      Sessions("bob", "", 0, 0, 5),
      Sessions("", "web-1", 1'010'000, 0, 4),
      Sessions("nobody", "", 0, 0, 0),
      Sessions("", "", 0, 0, 100000),
  };
  for (const SessionFilter& f : filters) {
    SCOPED_TRACE("user=" + f.user + " node=" + f.node +
                 " since=" + std::to_string(f.since_us) +
                 " until=" + std::to_string(f.until_us) +
                 " limit=" + std::to_string(f.limit));
    auto got = cat().ListSessions(f);
    ASSERT_OK(got);
    EXPECT_EQ(Ids(*got), ReferenceList(all, f));
  }

  // Rows come back whole, not just their ids.
  auto one = cat().ListSessions(Sessions("carol", "db-1", 0, 0, 1));
  ASSERT_OK(one);
  ASSERT_EQ(one->size(), 1u);
  auto want = cat().GetSession((*one)[0].id);
  ASSERT_OK(want);
  ExpectSameSession(*want, (*one)[0]);
}

// msh sessions ls --kind/--status, and a session named by a prefix of its id.
TEST_P(CatalogTest, ListSessionsByKindStatusAndIdPrefix) {
  const char* kinds[] = {"shell", "exec", "tcpip"};
  const SessionStatus statuses[] = {SessionStatus::kRecording,
                                    SessionStatus::kComplete,
                                    SessionStatus::kIncomplete};
  std::vector<Session> all;
  for (int n = 0; n < 36; ++n) {
    Session s =
        MakeSession(n, n % 2 == 0 ? "alice" : "bob", "web-1", 1'000'000 + n);
    s.kind = kinds[n % 3];
    s.status = statuses[(n / 3) % 3];
    if (s.status != SessionStatus::kRecording) s.ended_us = 2'000'000;
    ASSERT_OK(cat().CreateSession(s));
    all.push_back(s);
  }
  auto filter = [](std::string kind, std::optional<SessionStatus> status,
                   std::string prefix, std::string user) {
    SessionFilter f;
    f.kind = std::move(kind);
    f.status = status;
    f.id_prefix = std::move(prefix);
    f.user = std::move(user);
    return f;
  };
  const std::vector<SessionFilter> filters = {
      filter("exec", std::nullopt, "", ""),
      filter("", SessionStatus::kIncomplete, "", ""),
      filter("tcpip", SessionStatus::kComplete, "", "alice"),
      filter("", std::nullopt, "s00001", ""),  // s000010..s000019
      filter("", std::nullopt, "s000012", ""),
      filter("", std::nullopt, "s000012", "alice"),
      filter("", std::nullopt, "s000013", "alice"),  // bob's: none
      filter("", std::nullopt, "s1", ""),
      filter("shell", SessionStatus::kRecording, "s00002", ""),
  };
  for (const SessionFilter& f : filters) {
    SCOPED_TRACE("kind=" + f.kind + " prefix=" + f.id_prefix +
                 " user=" + f.user);
    auto got = cat().ListSessions(f);
    ASSERT_OK(got);
    EXPECT_EQ(Ids(*got), ReferenceList(all, f));
  }
  EXPECT_EQ(cat().ListSessions(filter("", std::nullopt, "s00001", ""))->size(),
            10u);
  // Wildcards are characters like any other.
  EXPECT_TRUE(cat().ListSessions(filter("", std::nullopt, "%", ""))->empty());
  EXPECT_TRUE(cat().ListSessions(filter("", std::nullopt, "s_", ""))->empty());

  // The audit log by node.
  AuditEvent on_db = Event(10, "session.start", "alice", Id(1));
  on_db.node = "db-1";
  ASSERT_OK(cat().AppendAudit(on_db));
  ASSERT_OK(cat().AppendAudit(Event(11, "session.start", "alice", Id(2))));
  AuditFilter af;
  af.node = "db-1";
  auto events = cat().ListAudit(af);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].session_id, Id(1));
}

TEST_P(CatalogTest, MarkInterruptedTouchesOnlyRecordingAndSurvivesReopen) {
  std::vector<Session> all;
  for (int i = 0; i < 6; ++i) {
    Session s = MakeSession(i, "alice", "web-1", 1000 + i);
    if (i >= 3) {
      s.ended_us = 5000 + i;
      s.bytes = 10 * i;
      s.status = i == 5 ? SessionStatus::kIncomplete : SessionStatus::kComplete;
    }
    ASSERT_OK(cat().CreateSession(s));
    all.push_back(s);
  }
  ASSERT_OK(cat().UpdateSessionBytes(Id(1), 77));
  all[1].bytes = 77;

  auto marked = cat().MarkInterruptedSessions(9999);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 3);
  for (int i = 0; i < 3; ++i) {
    all[i].status = SessionStatus::kIncomplete;
    all[i].ended_us = 9999;
  }

  ASSERT_OK(cat().SetConfig("session_recording", "node"));
  ASSERT_OK(cat().AppendAudit(Event(1, "session.start")));

  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (const Session& s : all) {
    SCOPED_TRACE(s.id);
    auto got = cat().GetSession(s.id);
    ASSERT_OK(got);
    ExpectSameSession(s, *got);
  }
  auto config = cat().GetConfig("session_recording");
  ASSERT_OK(config);
  EXPECT_EQ(config->value_or("<unset>"), "node");
  auto audit = cat().ListAudit({});
  ASSERT_OK(audit);
  EXPECT_EQ(audit->size(), 1u);

  marked = cat().MarkInterruptedSessions(20000);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 0);
  auto got = cat().GetSession(Id(0));
  ASSERT_OK(got);
  EXPECT_EQ(got->ended_us, 9999);
}

TEST_P(CatalogTest, AuditAppendAndListWithEachFilter) {
  struct Spec {
    int64_t time_us;
    const char* type;
    const char* user;
    const char* session_id;
  };
  const Spec specs[] = {
      {100, "session.start", "alice", "s1"},
      {200, "session.end", "alice", "s1"},
      {150, "session.start", "bob", "s2"},
      {300, "auth.denied", "mallory", ""},
      {300, "session.start", "alice", "s3"},
      {400, "session.end", "bob", "s2"},
      {300, "config.set", "admin", ""},
      {500, "session.end", "alice", "s3"},
  };
  std::vector<AuditEvent> all;
  int64_t last_id = 0;
  for (const Spec& sp : specs) {
    AuditEvent e = Event(sp.time_us, sp.type, sp.user, sp.session_id);
    if (e.type == "config.set") {
      // Stored byte for byte, spacing included.
      e.details = R"({"key": "session_recording",  "value":"off"})";
    }
    auto id = cat().AppendAudit(e);
    ASSERT_OK(id);
    EXPECT_GT(*id, last_id);
    last_id = *id;
    e.id = *id;
    if (e.details.empty()) e.details = "{}";
    all.push_back(e);
  }

  auto list = [&](const AuditFilter& f) {
    std::vector<int64_t> ids;
    auto got = cat().ListAudit(f);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (got.ok()) {
      for (const AuditEvent& e : *got) ids.push_back(e.id);
    }
    return ids;
  };
  auto want = [&](const AuditFilter& f) {
    std::vector<AuditEvent> v = all;
    std::erase_if(v, [&](const AuditEvent& e) {
      return (!f.type.empty() && e.type != f.type) ||
             (!f.user.empty() && e.user != f.user) ||
             (!f.session_id.empty() && e.session_id != f.session_id) ||
             (f.since_us != 0 && e.time_us < f.since_us) ||
             (f.until_us != 0 && e.time_us >= f.until_us);
    });
    std::sort(v.begin(), v.end(), [](const AuditEvent& a, const AuditEvent& b) {
      if (a.time_us != b.time_us) return a.time_us > b.time_us;
      return a.id > b.id;
    });
    if (f.limit > 0 && v.size() > static_cast<size_t>(f.limit)) {
      v.resize(f.limit);
    }
    std::vector<int64_t> ids;
    for (const AuditEvent& e : v) ids.push_back(e.id);
    return ids;
  };

  const std::vector<AuditFilter> filters = {
      Audit("", "", "", 0, 0, 0),
      Audit("session.start", "", "", 0, 0, 0),
      Audit("", "alice", "", 0, 0, 0),
      Audit("", "", "s2", 0, 0, 0),
      Audit("", "", "", 300, 0, 0),
      Audit("", "", "", 0, 300, 0),
      Audit("", "", "", 150, 400, 0),
      Audit("session.end", "alice", "", 0, 0, 0),
      Audit("", "", "", 0, 0, 3),
      Audit("session.start", "", "", 0, 0, 2),
      Audit("no.such.type", "", "", 0, 0, 0),
  };
  for (const AuditFilter& f : filters) {
    SCOPED_TRACE("type=" + f.type + " user=" + f.user + " session=" +
                 f.session_id + " since=" + std::to_string(f.since_us) +
                 " until=" + std::to_string(f.until_us) +
                 " limit=" + std::to_string(f.limit));
    EXPECT_EQ(list(f), want(f));
  }
  EXPECT_EQ(list({}).size(), all.size());

  // Every field comes back as stored.
  auto got = cat().ListAudit({});
  ASSERT_OK(got);
  for (const AuditEvent& e : *got) {
    auto it = std::find_if(all.begin(), all.end(),
                           [&](const AuditEvent& a) { return a.id == e.id; });
    ASSERT_NE(it, all.end());
    EXPECT_EQ(e.time_us, it->time_us);
    EXPECT_EQ(e.type, it->type);
    EXPECT_EQ(e.user, it->user);
    EXPECT_EQ(e.session_id, it->session_id);
    EXPECT_EQ(e.node, it->node);
    EXPECT_EQ(e.details, it->details);
  }
}

TEST_P(CatalogTest, ConfigDefaultsSetAndOverwrite) {
  auto v = cat().GetConfig("session_recording");
  ASSERT_OK(v);
  EXPECT_EQ(v->value_or("<unset>"), "node-sync");
  v = cat().GetConfig("no_such_key");
  ASSERT_OK(v);
  EXPECT_FALSE(v->has_value());

  ASSERT_OK(cat().SetConfig("session_recording", "off"));
  ASSERT_OK(cat().SetConfig("motd", "hello"));
  v = cat().GetConfig("session_recording");
  ASSERT_OK(v);
  EXPECT_EQ(v->value_or("<unset>"), "off");
  ASSERT_OK(cat().SetConfig("session_recording", "node"));
  v = cat().GetConfig("session_recording");
  ASSERT_OK(v);
  EXPECT_EQ(v->value_or("<unset>"), "node");
  v = cat().GetConfig("motd");
  ASSERT_OK(v);
  EXPECT_EQ(v->value_or("<unset>"), "hello");
  // An empty value is a value, not "unset".
  ASSERT_OK(cat().SetConfig("motd", ""));
  v = cat().GetConfig("motd");
  ASSERT_OK(v);
  EXPECT_EQ(v->value_or("<unset>"), "");
}

TEST_P(CatalogTest, ConcurrentWritersLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::vector<std::vector<int64_t>> audit_ids(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string user = "user" + std::to_string(t);
      for (int i = 0; i < kPerThread; ++i) {
        int n = t * kPerThread + i;
        Session s = MakeSession(n, user, "web-1", 1000 + n);
        Status st = cat().CreateSession(s);
        if (st.ok()) st = cat().UpdateSessionBytes(s.id, i);
        if (!st.ok()) {
          errors[t] = st.ToString();
          return;
        }
        auto id =
            cat().AppendAudit(Event(1000 + n, "session.start", user, s.id));
        if (!id.ok()) {
          errors[t] = id.status().ToString();
          return;
        }
        audit_ids[t].push_back(*id);
        if (i % 50 == 0) {
          auto listed = cat().ListSessions(Sessions(user, "", 0, 0, 10));
          if (!listed.ok()) {
            errors[t] = listed.status().ToString();
            return;
          }
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(errors[t], "") << "thread " << t;
  }

  auto sessions = cat().ListSessions({});
  ASSERT_OK(sessions);
  ASSERT_EQ(sessions->size(), size_t{kThreads * kPerThread});
  std::set<std::string> ids;
  for (const Session& s : *sessions) ids.insert(s.id);
  for (int n = 0; n < kThreads * kPerThread; ++n) {
    EXPECT_TRUE(ids.count(Id(n))) << Id(n);
  }
  for (int t = 0; t < kThreads; ++t) {
    auto mine =
        cat().ListSessions(Sessions("user" + std::to_string(t), "", 0, 0, 0));
    ASSERT_OK(mine);
    EXPECT_EQ(mine->size(), size_t{kPerThread});
  }

  std::set<int64_t> all_audit;
  for (int t = 0; t < kThreads; ++t) {
    // Ids a thread received increase in the order it appended.
    EXPECT_TRUE(std::is_sorted(audit_ids[t].begin(), audit_ids[t].end()));
    all_audit.insert(audit_ids[t].begin(), audit_ids[t].end());
  }
  EXPECT_EQ(all_audit.size(), size_t{kThreads * kPerThread});
  auto audit = cat().ListAudit({});
  ASSERT_OK(audit);
  EXPECT_EQ(audit->size(), size_t{kThreads * kPerThread});
}

TEST_P(CatalogTest, LargeListWithUserFilterAndLimit) {
  constexpr int kSessions = 100'000;
  constexpr int kUsers = 10;
  std::vector<Session> all;
  all.reserve(kSessions);
  for (int n = 0; n < kSessions; ++n) {
    // Start times are not in id order, and collide in pairs.
    int64_t started = 1'700'000'000'000'000 + ((n * 7919) % kSessions) / 2;
    all.push_back(MakeSession(n, "u" + std::to_string(n % kUsers),
                              "node" + std::to_string(n % 7), started));
  }
  // A few through the API, to check they list alongside the bulk rows.
  for (int n = 0; n < 100; ++n) ASSERT_OK(cat().CreateSession(all[n]));
  ASSERT_OK(cat().BulkInsertSessions(
      std::vector<Session>(all.begin() + 100, all.end())));

  SessionFilter f = Sessions("u3", "", 0, 0, 50);
  auto got = cat().ListSessions(f);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 50u);
  EXPECT_EQ(Ids(*got), ReferenceList(all, f));
  for (const Session& s : *got) EXPECT_EQ(s.user, "u3");

  f = Sessions("u7", "node2", 0, 1'700'000'000'030'000, 50);
  got = cat().ListSessions(f);
  ASSERT_OK(got);
  EXPECT_EQ(Ids(*got), ReferenceList(all, f));
}

// Users and nodes.

User MakeUser(std::string name, std::vector<std::string> logins,
              std::string role, int64_t created_us) {
  User u;
  u.name = std::move(name);
  u.logins = std::move(logins);
  u.role = std::move(role);
  u.created_us = created_us;
  return u;
}

Node MakeNode(std::string name, std::string addr, std::string token_hash) {
  Node n;
  n.name = std::move(name);
  n.addr = std::move(addr);
  n.openssh = false;
  n.login_hint = "ubuntu";
  n.host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 " + n.name;
  n.join_token_hash = std::move(token_hash);
  n.created_us = 1'700'000'000'000'000;
  n.last_seen_us = 0;
  n.recording_mode = "node-sync";
  return n;
}

// `want.id` empty: any identity id will do (CreateUser assigned one).
void ExpectSameUser(const User& want, const User& got) {
  EXPECT_TRUE(IsIdentityId(got.id)) << got.id;
  if (!want.id.empty()) {
    EXPECT_EQ(want.id, got.id);
  }
  EXPECT_EQ(want.name, got.name);
  EXPECT_EQ(want.logins, got.logins);
  EXPECT_EQ(want.role, got.role);
  EXPECT_EQ(want.created_us, got.created_us);
}

void ExpectSameNode(const Node& want, const Node& got) {
  EXPECT_TRUE(IsIdentityId(got.id)) << got.id;
  if (!want.id.empty()) {
    EXPECT_EQ(want.id, got.id);
  }
  EXPECT_EQ(want.name, got.name);
  EXPECT_EQ(want.addr, got.addr);
  EXPECT_EQ(want.openssh, got.openssh);
  EXPECT_EQ(want.login_hint, got.login_hint);
  EXPECT_EQ(want.host_key, got.host_key);
  EXPECT_EQ(want.join_token_hash, got.join_token_hash);
  EXPECT_EQ(want.created_us, got.created_us);
  EXPECT_EQ(want.last_seen_us, got.last_seen_us);
  EXPECT_EQ(want.recording_mode, got.recording_mode);
}

template <typename T>
std::vector<std::string> Names(const std::vector<T>& v) {
  std::vector<std::string> names;
  for (const T& x : v) names.push_back(x.name);
  return names;
}

// Checks `st` is kInvalidArgument and its message contains each of `want`.
void ExpectInvalid(const Status& st, const std::vector<std::string>& want) {
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  for (const std::string& w : want) {
    EXPECT_NE(st.message().find(w), std::string::npos)
        << "want \"" << w << "\" in: " << st.message();
  }
}

TEST_P(CatalogTest, UserRoundTripListAndDelete) {
  // Names are lowercase so that the expected order holds in any collation.
  const std::vector<User> users = {
      MakeUser("carol", {"postgres"}, "user", 3),
      MakeUser("alice", {"root", "ubuntu", "_svc", "deploy-1"}, "admin",
               1'700'000'000'000'001),
      MakeUser("bob", {}, "user", 0),
      MakeUser(std::string(128, 'd'), {std::string(32, 'x')}, "user", -5),
  };
  for (const User& u : users) ASSERT_OK(cat().CreateUser(u));
  for (const User& u : users) {
    SCOPED_TRACE(u.name);
    auto got = cat().GetUser(u.name);
    ASSERT_OK(got);
    ExpectSameUser(u, *got);
  }
  auto list = cat().ListUsers();
  ASSERT_OK(list);
  EXPECT_EQ(Names(*list), (std::vector<std::string>{"alice", "bob", "carol",
                                                    std::string(128, 'd')}));
  ExpectSameUser(users[1], (*list)[0]);

  ASSERT_OK(cat().DeleteUser("bob"));
  auto got = cat().GetUser("bob");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound);
  EXPECT_NE(got.status().message().find("bob"), std::string::npos);
  Status st = cat().DeleteUser("bob");
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find("bob"), std::string::npos);
  list = cat().ListUsers();
  ASSERT_OK(list);
  EXPECT_EQ(Names(*list), (std::vector<std::string>{"alice", "carol",
                                                    std::string(128, 'd')}));
  // The name is free again.
  User again = MakeUser("bob", {"bob"}, "admin", 9);
  ASSERT_OK(cat().CreateUser(again));
  got = cat().GetUser("bob");
  ASSERT_OK(got);
  ExpectSameUser(again, *got);
}

TEST_P(CatalogTest, DuplicateUserIsAlreadyExistsAndKeepsTheOriginal) {
  User u = MakeUser("alice", {"root"}, "admin", 1);
  ASSERT_OK(cat().CreateUser(u));
  Status st = cat().CreateUser(MakeUser("alice", {"nobody"}, "user", 2));
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_EQ(st.message(), "user alice already exists");
  auto got = cat().GetUser("alice");
  ASSERT_OK(got);
  ExpectSameUser(u, *got);
  // Names are compared exactly: case matters.
  EXPECT_OK(cat().CreateUser(MakeUser("Alice", {}, "user", 3)));
}

TEST_P(CatalogTest, InvalidUsersAreRefusedNamingTheField) {
  struct Case {
    User user;
    std::vector<std::string> want;  // In the message.
  };
  const std::vector<Case> cases = {
      {MakeUser("", {}, "user", 0), {"name", "plain identifier"}},
      {MakeUser(".hidden", {}, "user", 0), {"name", "\".hidden\""}},
      {MakeUser("-x", {}, "user", 0), {"name"}},
      {MakeUser("a b", {}, "user", 0), {"name", "\"a b\""}},
      {MakeUser("a/b", {}, "user", 0), {"name"}},
      {MakeUser("..", {}, "user", 0), {"name"}},
      {MakeUser(std::string(129, 'a'), {}, "user", 0), {"name"}},
      {MakeUser("caf\xc3\xa9", {}, "user", 0), {"name", "caf\\xc3\\xa9"}},
      {MakeUser("evil\n2024 admin login", {}, "user", 0), {"name", "\\x0a"}},
      {MakeUser("alice", {}, "", 0), {"alice", "role", "\"\""}},
      {MakeUser("alice", {}, "root", 0), {"role", "\"root\""}},
      {MakeUser("alice", {}, "Admin", 0), {"role"}},
      {MakeUser("alice", {""}, "user", 0), {"logins[0]"}},
      {MakeUser("alice", {"ok", "Root"}, "user", 0), {"logins[1]", "\"Root\""}},
      {MakeUser("alice", {"1abc"}, "user", 0), {"logins[0]"}},
      {MakeUser("alice", {"-abc"}, "user", 0), {"logins[0]"}},
      {MakeUser("alice", {std::string(33, 'a')}, "user", 0), {"logins[0]"}},
      {MakeUser("alice", {"a.b"}, "user", 0), {"logins[0]"}},
      {MakeUser("alice", {"pc$"}, "user", 0), {"logins[0]"}},
      {MakeUser("alice", {"root", "x", "root"}, "user", 0),
       {"logins[2]", "repeats logins[0]"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.user.name + " role=" + c.user.role);
    ExpectInvalid(cat().CreateUser(c.user), c.want);
  }
  auto list = cat().ListUsers();
  ASSERT_OK(list);
  EXPECT_TRUE(list->empty()) << Names(*list).size();
}

TEST_P(CatalogTest, NodeRoundTripListAndDelete) {
  Node full = MakeNode("db-1", "[fe80::1%eth0]:2222", "9f86d081884c7d65");
  full.openssh = true;
  full.login_hint = "postgres";
  full.host_key = "ssh-ed25519 AAAA\n\"quoted\" \xc3\xa9";
  full.created_us = 1'700'000'000'123'456;
  full.last_seen_us = 1'700'000'001'000'000;
  full.recording_mode = "off";
  const std::vector<Node> nodes = {
      MakeNode("web-2", "10.0.0.2:22", ""),
      full,
      MakeNode("web-1", "web-1.internal:22", ""),
      MakeNode("bastion", "[::1]:65535", "aa"),
      MakeNode("a.b_c", "localhost:1", ""),
  };
  for (const Node& n : nodes) ASSERT_OK(cat().CreateNode(n));
  for (const Node& n : nodes) {
    SCOPED_TRACE(n.name);
    auto got = cat().GetNode(n.name);
    ASSERT_OK(got);
    ExpectSameNode(n, *got);
  }
  auto list = cat().ListNodes();
  ASSERT_OK(list);
  EXPECT_EQ(Names(*list), (std::vector<std::string>{"a.b_c", "bastion", "db-1",
                                                    "web-1", "web-2"}));
  ExpectSameNode(full, (*list)[2]);

  ASSERT_OK(cat().DeleteNode("db-1"));
  auto got = cat().GetNode("db-1");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound);
  EXPECT_NE(got.status().message().find("db-1"), std::string::npos);
  Status st = cat().DeleteNode("db-1");
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  list = cat().ListNodes();
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), 4u);
  // Its name and its join token hash are free again.
  ASSERT_OK(cat().CreateNode(MakeNode("db-1", "db:22", "9f86d081884c7d65")));
}

TEST_P(CatalogTest, DuplicateNodeNameOrJoinTokenHashIsAlreadyExists) {
  Node n = MakeNode("web-1", "10.0.0.1:22", "hash-1");
  ASSERT_OK(cat().CreateNode(n));
  Status st = cat().CreateNode(MakeNode("web-1", "10.0.0.9:22", "hash-2"));
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_EQ(st.message(), "node web-1 already exists");

  st = cat().CreateNode(MakeNode("web-2", "10.0.0.2:22", "hash-1"));
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("web-2"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("join_token_hash"), std::string::npos)
      << st.message();
  EXPECT_EQ(st.message().find("hash-1"), std::string::npos) << st.message();

  // Any number of nodes may have no join token hash.
  ASSERT_OK(cat().CreateNode(MakeNode("web-3", "10.0.0.3:22", "")));
  ASSERT_OK(cat().CreateNode(MakeNode("web-4", "10.0.0.4:22", "")));

  auto got = cat().GetNode("web-1");
  ASSERT_OK(got);
  ExpectSameNode(n, *got);
  auto list = cat().ListNodes();
  ASSERT_OK(list);
  EXPECT_EQ(Names(*list),
            (std::vector<std::string>{"web-1", "web-3", "web-4"}));
}

TEST_P(CatalogTest, InvalidNodesAreRefusedNamingTheField) {
  struct Case {
    std::string name;
    std::string addr;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"", "h:22", {"node name", "plain identifier"}},
      {".n", "h:22", {"node name", "\".n\""}},
      {"web 1", "h:22", {"node name"}},
      {"web/1", "h:22", {"node name"}},
      {std::string(129, 'n'), "h:22", {"node name"}},
      {"web-1", "", {"web-1", "addr", "empty"}},
      {"web-1", "host", {"addr", "\"host\"", "HOST:PORT"}},
      {"web-1", "host:", {"addr"}},
      {"web-1", ":22", {"addr"}},
      {"web-1", "host:0", {"addr"}},
      {"web-1", "host:65536", {"addr"}},
      {"web-1", "host:123456", {"addr"}},
      {"web-1", "host:22x", {"addr"}},
      {"web-1", "host:+22", {"addr"}},
      {"web-1", "host:-1", {"addr"}},
      {"web-1", "::1:22", {"addr"}},
      {"web-1", "[::1]", {"addr"}},
      {"web-1", "[]:22", {"addr"}},
      {"web-1", "[::1:22", {"addr"}},
      {"web-1", "[host]:22", {"addr"}},
      {"web-1", "[::1%]:22", {"addr"}},
      {"web-1", "a b:22", {"addr"}},
      {"web-1", "user@host:22", {"addr"}},
      {"web-1", "host:22\n", {"addr", "\\x0a"}},
      {"web-1", std::string(254, 'h') + ":22", {"addr"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name + " addr=" + c.addr);
    ExpectInvalid(cat().CreateNode(MakeNode(c.name, c.addr, "")), c.want);
  }
  auto list = cat().ListNodes();
  ASSERT_OK(list);
  EXPECT_TRUE(list->empty());

  for (const char* addr :
       {"h:22", "10.0.0.1:22", "[::1]:22", "[2001:db8::1]:65535",
        "[::ffff:10.0.0.1]:22", "[fe80::1%eth0]:22", "my_host.example:2222"}) {
    SCOPED_TRACE(addr);
    EXPECT_OK(cat().CreateNode(
        MakeNode("n" + std::to_string(list->size()), addr, "")));
    list = cat().ListNodes();
    ASSERT_OK(list);
  }
}

TEST_P(CatalogTest, TouchNodeUpdatesSeenModeAndOptionallyAddr) {
  Node n = MakeNode("web-1", "10.0.0.1:22", "hash-1");
  ASSERT_OK(cat().CreateNode(n));
  Node other = MakeNode("web-2", "10.0.0.2:22", "");
  ASSERT_OK(cat().CreateNode(other));

  ASSERT_OK(cat().TouchNode("web-1", 1'700'000'100'000'000, "node", ""));
  n.last_seen_us = 1'700'000'100'000'000;
  n.recording_mode = "node";  // addr kept: empty means "keep".
  auto got = cat().GetNode("web-1");
  ASSERT_OK(got);
  ExpectSameNode(n, *got);

  ASSERT_OK(
      cat().TouchNode("web-1", 1'700'000'200'000'000, "off", "[::1]:2022"));
  n.last_seen_us = 1'700'000'200'000'000;
  n.recording_mode = "off";
  n.addr = "[::1]:2022";
  got = cat().GetNode("web-1");
  ASSERT_OK(got);
  ExpectSameNode(n, *got);

  ASSERT_OK(cat().TouchNode("web-1", 1'700'000'300'000'000, "node-sync", "",
                            "ssh-ed25519 AAAAC3Nza"));
  n.last_seen_us = 1'700'000'300'000'000;
  n.recording_mode = "node-sync";
  n.host_key = "ssh-ed25519 AAAAC3Nza";
  got = cat().GetNode("web-1");
  ASSERT_OK(got);
  ExpectSameNode(n, *got);

  // A bad address changes nothing.
  Status st = cat().TouchNode("web-1", 5, "node-sync", "nowhere");
  ExpectInvalid(st, {"web-1", "addr", "\"nowhere\""});
  got = cat().GetNode("web-1");
  ASSERT_OK(got);
  ExpectSameNode(n, *got);

  st = cat().TouchNode("web-9", 5, "node", "");
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find("web-9"), std::string::npos);
  st = cat().TouchNode("web-9", 5, "node", "10.0.0.9:22");
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();

  // The other node is untouched.
  got = cat().GetNode("web-2");
  ASSERT_OK(got);
  ExpectSameNode(other, *got);
}

TEST_P(CatalogTest, FindNodeByJoinTokenHash) {
  Node a = MakeNode("web-1", "10.0.0.1:22", "e3b0c44298fc1c14");
  Node b = MakeNode("web-2", "10.0.0.2:22", "E3B0C44298FC1C14");
  ASSERT_OK(cat().CreateNode(a));
  ASSERT_OK(cat().CreateNode(b));
  ASSERT_OK(cat().CreateNode(MakeNode("web-3", "10.0.0.3:22", "")));

  auto got = cat().FindNodeByJoinTokenHash("e3b0c44298fc1c14");
  ASSERT_OK(got);
  ExpectSameNode(a, *got);
  got = cat().FindNodeByJoinTokenHash("E3B0C44298FC1C14");  // Exact match.
  ASSERT_OK(got);
  ExpectSameNode(b, *got);

  got = cat().FindNodeByJoinTokenHash("e3b0c44298fc1c1");
  EXPECT_EQ(got.status().code(), Code::kNotFound) << got.status().ToString();
  // An empty hash never finds the nodes that have none.
  got = cat().FindNodeByJoinTokenHash("");
  EXPECT_EQ(got.status().code(), Code::kInvalidArgument)
      << got.status().ToString();

  ASSERT_OK(cat().TouchNode("web-1", 77, "node", "10.0.0.11:22"));
  got = cat().FindNodeByJoinTokenHash("e3b0c44298fc1c14");
  ASSERT_OK(got);
  EXPECT_EQ(got->last_seen_us, 77);
  EXPECT_EQ(got->addr, "10.0.0.11:22");

  ASSERT_OK(cat().DeleteNode("web-1"));
  got = cat().FindNodeByJoinTokenHash("e3b0c44298fc1c14");
  EXPECT_EQ(got.status().code(), Code::kNotFound) << got.status().ToString();
}

TEST_P(CatalogTest, JoinTokenIsUsedUpOnceAndOnlyByItsNode) {
  ASSERT_OK(cat().CreateNode(MakeNode("web-1", "10.0.0.1:22", "h1")));
  ASSERT_OK(cat().CreateNode(MakeNode("web-2", "10.0.0.2:22", "h2")));
  // Another node's hash, an empty one or a wrong one use up nothing.
  EXPECT_EQ(cat().ConsumeJoinToken("web-1", "h2").code(), Code::kNotFound);
  EXPECT_EQ(cat().ConsumeJoinToken("web-1", "").code(), Code::kInvalidArgument);
  EXPECT_EQ(cat().ConsumeJoinToken("web-9", "h1").code(), Code::kNotFound);
  ASSERT_OK(cat().ConsumeJoinToken("web-1", "h1"));
  Status again = cat().ConsumeJoinToken("web-1", "h1");
  EXPECT_EQ(again.code(), Code::kNotFound) << again.ToString();
  auto n = cat().GetNode("web-1");
  ASSERT_OK(n);
  EXPECT_EQ(n->join_token_hash, "");
  EXPECT_EQ(cat().FindNodeByJoinTokenHash("h1").status().code(),
            Code::kNotFound);
  n = cat().GetNode("web-2");
  ASSERT_OK(n);
  EXPECT_EQ(n->join_token_hash, "h2");

  // Concurrent callers: exactly one wins.
  ASSERT_OK(cat().CreateNode(MakeNode("web-3", "10.0.0.3:22", "h3")));
  std::atomic<int> won{0}, lost{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      Status s = cat().ConsumeJoinToken("web-3", "h3");
      if (s.ok()) {
        ++won;
      } else if (s.code() == Code::kNotFound) {
        ++lost;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(lost.load(), 7);
}

TEST_P(CatalogTest, UsersAndNodesSurviveReopen) {
  User alice = MakeUser("alice", {"root", "ubuntu"}, "admin", 11);
  User bob = MakeUser("bob", {}, "user", 12);
  ASSERT_OK(cat().CreateUser(alice));
  ASSERT_OK(cat().CreateUser(bob));
  ASSERT_OK(cat().CreateUser(MakeUser("gone", {}, "user", 13)));
  ASSERT_OK(cat().DeleteUser("gone"));
  Node web = MakeNode("web-1", "10.0.0.1:22", "hash-1");
  web.openssh = true;
  ASSERT_OK(cat().CreateNode(web));
  ASSERT_OK(cat().TouchNode("web-1", 99, "node", "10.0.0.2:22"));
  web.last_seen_us = 99;
  web.recording_mode = "node";
  web.addr = "10.0.0.2:22";

  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto users = cat().ListUsers();
  ASSERT_OK(users);
  ASSERT_EQ(users->size(), 2u);
  ExpectSameUser(alice, (*users)[0]);
  ExpectSameUser(bob, (*users)[1]);
  auto node = cat().GetNode("web-1");
  ASSERT_OK(node);
  ExpectSameNode(web, *node);
  node = cat().FindNodeByJoinTokenHash("hash-1");
  ASSERT_OK(node);
  EXPECT_EQ(node->name, "web-1");
  EXPECT_EQ(cat().CreateUser(alice).code(), Code::kAlreadyExists);
  EXPECT_EQ(cat().CreateNode(web).code(), Code::kAlreadyExists);
}

TEST_P(CatalogTest, IdentityIdsAreAssignedReturnedAndNeverShared) {
  ASSERT_OK(cat().CreateUser(MakeUser("alice", {"root"}, "user", 1)));
  User bob = MakeUser("bob", {}, "admin", 2);
  bob.id = NewIdentityId();
  ASSERT_OK(cat().CreateUser(bob));
  auto alice = cat().GetUser("alice");
  ASSERT_OK(alice);
  EXPECT_TRUE(IsIdentityId(alice->id)) << alice->id;
  auto got = cat().GetUser("bob");
  ASSERT_OK(got);
  EXPECT_EQ(got->id, bob.id);
  EXPECT_NE(alice->id, bob.id);
  auto users = cat().ListUsers();
  ASSERT_OK(users);
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].id, alice->id);
  EXPECT_EQ((*users)[1].id, bob.id);

  // An id is one identity's: another user or node cannot take it.
  User carol = MakeUser("carol", {}, "user", 3);
  carol.id = bob.id;
  Status st = cat().CreateUser(carol);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("carol"), std::string::npos) << st.message();
  EXPECT_EQ(cat().GetUser("carol").status().code(), Code::kNotFound);

  ASSERT_OK(cat().CreateNode(MakeNode("web-1", "10.0.0.1:22", "")));
  Node web2 = MakeNode("web-2", "10.0.0.2:22", "");
  web2.id = NewIdentityId();
  ASSERT_OK(cat().CreateNode(web2));
  auto n1 = cat().GetNode("web-1");
  ASSERT_OK(n1);
  EXPECT_TRUE(IsIdentityId(n1->id)) << n1->id;
  EXPECT_NE(n1->id, web2.id);
  auto nodes = cat().ListNodes();
  ASSERT_OK(nodes);
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[1].id, web2.id);
  Node web3 = MakeNode("web-3", "10.0.0.3:22", "");
  web3.id = web2.id;
  st = cat().CreateNode(web3);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("id"), std::string::npos) << st.message();

  // Ids survive a restart.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  got = cat().GetUser("alice");
  ASSERT_OK(got);
  EXPECT_EQ(got->id, alice->id);
  n1 = cat().GetNode("web-1");
  ASSERT_OK(n1);
  EXPECT_EQ(n1->id, (*nodes)[0].id);

  // 10,000 fresh ids are well-formed and distinct.
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) {
    std::string id = NewIdentityId();
    ASSERT_TRUE(IsIdentityId(id)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 10000u);
}

TEST_P(CatalogTest, MalformedIdsAreRefusedNamingTheField) {
  for (const char* bad :
       {"0123456789abcdef0123456789ABCDEF", "0123456789abcdef", "x",
        "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef0",
        " 0123456789abcdef0123456789abcde"}) {
    SCOPED_TRACE(bad);
    User u = MakeUser("alice", {}, "user", 1);
    u.id = bad;
    ExpectInvalid(cat().CreateUser(u), {"alice", "id", "32 lowercase hex"});
    Node n = MakeNode("web-1", "h:22", "");
    n.id = bad;
    ExpectInvalid(cat().CreateNode(n), {"web-1", "id", "32 lowercase hex"});
  }
  EXPECT_TRUE(cat().ListUsers()->empty());
  EXPECT_TRUE(cat().ListNodes()->empty());
}

TEST_P(CatalogTest, ProxiesArePrincipalsWithoutLogins) {
  ASSERT_OK(cat().CreateUser(MakeUser("px1", {}, "proxy", 5)));
  auto got = cat().GetUser("px1");
  ASSERT_OK(got);
  ExpectSameUser(MakeUser("px1", {}, "proxy", 5), *got);
  auto list = cat().ListUsers();
  ASSERT_OK(list);
  EXPECT_EQ(Names(*list), std::vector<std::string>{"px1"});
  ExpectInvalid(cat().CreateUser(MakeUser("px2", {"root"}, "proxy", 5)),
                {"px2", "logins", "proxy"});
  EXPECT_EQ(cat().GetUser("px2").status().code(), Code::kNotFound);
  ASSERT_OK(cat().DeleteUser("px1", 77));
  auto r = cat().GetRevocation(got->id);
  ASSERT_OK(r);
  EXPECT_EQ(r->kind, "proxy");
  EXPECT_EQ(r->name, "px1");
  EXPECT_EQ(r->revoked_us, 77);
}

TEST_P(CatalogTest, RemovalRevokesTheIdAndANewRowGetsAnother) {
  ASSERT_OK(cat().CreateUser(MakeUser("dave", {"dave"}, "user", 1)));
  ASSERT_OK(cat().CreateUser(MakeUser("root-admin", {}, "admin", 1)));
  ASSERT_OK(cat().CreateNode(MakeNode("web-02", "10.0.0.2:22", "hash-2")));
  auto dave = cat().GetUser("dave");
  ASSERT_OK(dave);
  auto admin = cat().GetUser("root-admin");
  ASSERT_OK(admin);
  auto web = cat().GetNode("web-02");
  ASSERT_OK(web);
  // Nothing is revoked yet.
  EXPECT_EQ(cat().GetRevocation(dave->id).status().code(), Code::kNotFound);
  auto revs = cat().ListRevocations(0);
  ASSERT_OK(revs);
  EXPECT_TRUE(revs->empty());

  ASSERT_OK(cat().DeleteUser("dave", 1'000));
  ASSERT_OK(cat().DeleteNode("web-02", 2'000));
  ASSERT_OK(cat().DeleteUser("root-admin", 3'000));
  // A failed removal records nothing.
  EXPECT_EQ(cat().DeleteUser("dave", 4'000).code(), Code::kNotFound);
  EXPECT_EQ(cat().DeleteNode("web-02", 4'000).code(), Code::kNotFound);

  auto r = cat().GetRevocation(dave->id);
  ASSERT_OK(r);
  EXPECT_EQ(r->id, dave->id);
  EXPECT_EQ(r->name, "dave");
  EXPECT_EQ(r->kind, "user");
  EXPECT_EQ(r->revoked_us, 1'000);
  r = cat().GetRevocation(web->id);
  ASSERT_OK(r);
  EXPECT_EQ(r->name, "web-02");
  EXPECT_EQ(r->kind, "node");
  EXPECT_EQ(r->revoked_us, 2'000);
  r = cat().GetRevocation(admin->id);
  ASSERT_OK(r);
  EXPECT_EQ(r->kind, "admin");

  // The same names again are new identities.
  ASSERT_OK(cat().CreateUser(MakeUser("dave", {"dave"}, "admin", 5)));
  ASSERT_OK(cat().CreateNode(MakeNode("web-02", "10.0.0.2:22", "hash-3")));
  auto dave2 = cat().GetUser("dave");
  ASSERT_OK(dave2);
  EXPECT_NE(dave2->id, dave->id);
  EXPECT_EQ(cat().GetRevocation(dave2->id).status().code(), Code::kNotFound);
  auto web2 = cat().GetNode("web-02");
  ASSERT_OK(web2);
  EXPECT_NE(web2->id, web->id);
  // ... and a revoked id cannot be brought back by naming it.
  User again = MakeUser("dave2", {}, "user", 6);
  again.id = dave->id;
  Status st = cat().CreateUser(again);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("revoked"), std::string::npos) << st.message();
  Node node_again = MakeNode("web-03", "10.0.0.3:22", "");
  node_again.id = web->id;
  st = cat().CreateNode(node_again);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("revoked"), std::string::npos) << st.message();
  EXPECT_EQ(cat().GetUser("dave2").status().code(), Code::kNotFound);
  EXPECT_EQ(cat().GetNode("web-03").status().code(), Code::kNotFound);

  // Newest first, bounded by since_us and limit; kept across a restart.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  revs = cat().ListRevocations(0);
  ASSERT_OK(revs);
  ASSERT_EQ(revs->size(), 3u);
  EXPECT_EQ((*revs)[0].id, admin->id);
  EXPECT_EQ((*revs)[1].id, web->id);
  EXPECT_EQ((*revs)[2].id, dave->id);
  revs = cat().ListRevocations(2'000);
  ASSERT_OK(revs);
  ASSERT_EQ(revs->size(), 2u);
  EXPECT_EQ((*revs)[1].name, "web-02");
  revs = cat().ListRevocations(0, 1);
  ASSERT_OK(revs);
  ASSERT_EQ(revs->size(), 1u);
  EXPECT_EQ((*revs)[0].name, "root-admin");
  revs = cat().ListRevocations(3'001);
  ASSERT_OK(revs);
  EXPECT_TRUE(revs->empty());

  // Removal without a time uses the clock.
  int64_t before = RealClock()->WallMicros();
  ASSERT_OK(cat().DeleteUser("dave"));
  r = cat().GetRevocation(dave2->id);
  ASSERT_OK(r);
  EXPECT_GE(r->revoked_us, before);
  EXPECT_LE(r->revoked_us, RealClock()->WallMicros());
}

TEST_P(CatalogTest, ListRevocationsIsBounded) {
  for (int i = 0; i < 30; ++i) {
    ASSERT_OK(
        cat().CreateNode(MakeNode("n" + std::to_string(i), "10.0.0.1:22", "")));
    ASSERT_OK(cat().DeleteNode("n" + std::to_string(i), 100 + i));
  }
  auto revs = cat().ListRevocations(0, 7);
  ASSERT_OK(revs);
  ASSERT_EQ(revs->size(), 7u);
  EXPECT_EQ((*revs)[0].name, "n29");
  EXPECT_EQ((*revs)[6].name, "n23");
  for (int limit : {0, -1, kMaxRevocationList + 1}) {
    revs = cat().ListRevocations(0, limit);
    ASSERT_OK(revs);
    EXPECT_EQ(revs->size(), 30u);
  }
}

TEST_P(CatalogTest, BulkInsertIsAllOrNothingAndCounted) {
  auto count = cat().CountSessions();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 0u);
  count = cat().CountAudit();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 0u);
  ASSERT_OK(cat().BulkInsertSessions({}));
  ASSERT_OK(cat().BulkInsertAudit({}));

  std::vector<Session> sessions;
  for (int n = 0; n < 1000; ++n) {
    sessions.push_back(
        MakeSession(n, "u" + std::to_string(n % 3), "web-1", 1000 + n % 17));
  }
  sessions[5].command = "ls -l";
  sessions[5].encrypted = true;
  sessions[5].status = SessionStatus::kComplete;
  sessions[5].bytes = 12345;
  ASSERT_OK(cat().BulkInsertSessions(sessions));
  count = cat().CountSessions();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 1000u);
  auto got = cat().GetSession(sessions[5].id);
  ASSERT_OK(got);
  ExpectSameSession(sessions[5], *got);

  // A batch with one stored id, one repeated id, or one invalid session
  // stores nothing.
  std::vector<Session> batch = {MakeSession(2000, "a", "n", 1),
                                MakeSession(999, "a", "n", 1),
                                MakeSession(2001, "a", "n", 1)};
  Status st = cat().BulkInsertSessions(batch);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_EQ(st.message(), "session s000999 already exists");
  batch = {MakeSession(2000, "a", "n", 1), MakeSession(2000, "b", "n", 1)};
  st = cat().BulkInsertSessions(batch);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  batch = {MakeSession(2000, "a", "n", 1), MakeSession(2001, "a", "n", 1)};
  batch[1].id.clear();
  EXPECT_EQ(cat().BulkInsertSessions(batch).code(), Code::kInvalidArgument);
  count = cat().CountSessions();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 1000u);
  EXPECT_EQ(cat().GetSession(Id(2000)).status().code(), Code::kNotFound);
  // The catalog is usable after a failed batch.
  ASSERT_OK(cat().CreateSession(MakeSession(2000, "a", "n", 1)));

  auto first = cat().AppendAudit(Event(1, "session.start"));
  ASSERT_OK(first);
  std::vector<AuditEvent> events;
  for (int i = 0; i < 500; ++i) {
    AuditEvent e = Event(1000 - i, i % 2 ? "session.end" : "session.start",
                         "u" + std::to_string(i % 3));
    e.id = 42;  // Ignored.
    events.push_back(e);
  }
  events[7].details = R"({"k": 1})";
  ASSERT_OK(cat().BulkInsertAudit(events));
  count = cat().CountAudit();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 501u);
  // Ids follow vector order, after the ones already assigned.
  auto listed = cat().ListAudit({});
  ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 501u);
  for (const AuditEvent& e : *listed) {
    if (e.id == *first) continue;
    int64_t i = e.id - *first - 1;
    ASSERT_GE(i, 0);
    ASSERT_LT(i, 500);
    EXPECT_EQ(e.time_us, events[i].time_us);
    EXPECT_EQ(e.type, events[i].type);
    EXPECT_EQ(e.user, events[i].user);
    EXPECT_EQ(e.details, i == 7 ? events[7].details : "{}");
  }

  std::vector<AuditEvent> bad = {Event(1, "x"), Event(2, ""), Event(3, "y")};
  EXPECT_EQ(cat().BulkInsertAudit(bad).code(), Code::kInvalidArgument);
  bad = {Event(1, "x"), Event(2, "y")};
  bad[1].details = "[]";
  EXPECT_EQ(cat().BulkInsertAudit(bad).code(), Code::kInvalidArgument);
  count = cat().CountAudit();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 501u);
}

TEST_P(CatalogTest, LargeAuditListWithTypeFilterSinceAndLimit) {
  constexpr int kEvents = 100'000;
  const std::vector<std::string> types = {"session.start", "session.end",
                                          "auth.denied", "config.set"};
  std::vector<AuditEvent> all;
  all.reserve(kEvents);
  for (int i = 0; i < kEvents; ++i) {
    // Times are not in append order and collide in pairs; one type in
    // sixteen is rare.
    int64_t t = 1'700'000'000'000'000 + ((int64_t{i} * 7919) % kEvents) / 2;
    const std::string& type = (i % 16 == 0) ? types[2] : types[(i / 3) % 2];
    all.push_back(Event(t, type, "u" + std::to_string(i % 10), Id(i / 8)));
  }
  ASSERT_OK(cat().BulkInsertAudit(
      std::vector<AuditEvent>(all.begin(), all.begin() + kEvents / 2)));
  ASSERT_OK(cat().BulkInsertAudit(
      std::vector<AuditEvent>(all.begin() + kEvents / 2, all.end())));
  auto count = cat().CountAudit();
  ASSERT_OK(count);
  EXPECT_EQ(*count, uint64_t{kEvents});
  // Ids follow append order, so each listed event's index is its id less
  // the first one's. The first event is one of the oldest two.
  auto oldest =
      cat().ListAudit(Audit("", "", "", all[0].time_us, all[0].time_us + 1, 0));
  ASSERT_OK(oldest);
  ASSERT_EQ(oldest->size(), 2u);
  int64_t min_id = std::min((*oldest)[0].id, (*oldest)[1].id);

  for (const AuditFilter& f :
       {Audit("session.start", "", "", 1'700'000'000'050'000, 0, 100),
        Audit("auth.denied", "", "", 1'700'000'000'090'000, 0, 100),
        Audit("session.end", "", "", 0, 0, 100),
        Audit("config.set", "", "", 0, 0, 100)}) {
    SCOPED_TRACE(f.type + " since=" + std::to_string(f.since_us));
    std::vector<int64_t> want;
    for (int i = 0; i < kEvents; ++i) {
      if (all[i].type == f.type && all[i].time_us >= f.since_us) {
        want.push_back(i);
      }
    }
    std::sort(want.begin(), want.end(), [&](int64_t a, int64_t b) {
      if (all[a].time_us != all[b].time_us) {
        return all[a].time_us > all[b].time_us;
      }
      return a > b;
    });
    if (want.size() > 100) want.resize(100);
    auto got = cat().ListAudit(f);
    ASSERT_OK(got);
    std::vector<int64_t> got_index;
    for (const AuditEvent& e : *got) got_index.push_back(e.id - min_id);
    EXPECT_EQ(got_index, want);
  }
}

// Replica leases: several mezrecd share one catalog; each renews its lease
// and names itself in its sessions. Times are passed in, so the tests run
// on an invented clock.

constexpr int64_t kT0 = 1'700'000'000'000'000;
constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kLease = 60 * kSecond;

Session OwnedSession(int n, const std::string& replica) {
  Session s = MakeSession(n, "alice", "web-1", kT0 - 1000 + n);
  s.replica = replica;
  return s;
}

std::vector<std::string> LeaseIds(Catalog& cat) {
  std::vector<std::string> ids;
  auto leases = cat.ListReplicaLeases();
  if (!leases.ok()) return {"<" + leases.status().ToString() + ">"};
  for (const ReplicaLeaseRow& r : *leases) ids.push_back(r.id);
  return ids;
}

TEST_P(CatalogTest, ReplicaLeasesRenewListAndDrop) {
  EXPECT_TRUE(LeaseIds(cat()).empty());
  ASSERT_OK(cat().RenewReplicaLease("b", kT0 + 5));
  ASSERT_OK(cat().RenewReplicaLease("a", kT0));
  ASSERT_OK(cat().RenewReplicaLease("a", kT0 + 7 * kSecond));
  auto leases = cat().ListReplicaLeases();
  ASSERT_OK(leases);
  ASSERT_EQ(leases->size(), 2u);
  EXPECT_EQ((*leases)[0].id, "a");
  EXPECT_EQ((*leases)[0].started_us, kT0);  // Kept by a renewal.
  EXPECT_EQ((*leases)[0].last_seen_us, kT0 + 7 * kSecond);
  EXPECT_EQ((*leases)[1].id, "b");
  EXPECT_EQ((*leases)[1].started_us, kT0 + 5);
  EXPECT_EQ((*leases)[1].last_seen_us, kT0 + 5);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(LeaseIds(cat()), (std::vector<std::string>{"a", "b"}));
  ASSERT_OK(cat().DropReplicaLease("a"));
  ASSERT_OK(cat().DropReplicaLease("a"));  // Gone already: fine.
  EXPECT_EQ(LeaseIds(cat()), std::vector<std::string>{"b"});
  EXPECT_EQ(cat().RenewReplicaLease("", kT0).code(), Code::kInvalidArgument);
}

TEST_P(CatalogTest, MarkOrphanedSessionsTouchesOnlyExpiredReplicas) {
  // live: renewed 40 s before the sweep; dead: 70 s; gone: no lease;
  // "": a row from before replicas were recorded; self: the sweeper.
  ASSERT_OK(cat().RenewReplicaLease("dead", kT0));
  ASSERT_OK(cat().RenewReplicaLease("self", kT0));
  ASSERT_OK(cat().RenewReplicaLease("live", kT0 + 30 * kSecond));
  std::vector<Session> all = {
      OwnedSession(0, "live"), OwnedSession(1, "dead"), OwnedSession(2, ""),
      OwnedSession(3, "gone"), OwnedSession(4, "dead"), OwnedSession(5, "self"),
  };
  all[4].status = SessionStatus::kComplete;  // Ended before its replica.
  all[4].ended_us = kT0 - 10;
  all[4].bytes = 44;
  for (const Session& s : all) ASSERT_OK(cat().CreateSession(s));

  const int64_t now = kT0 + 70 * kSecond;
  auto marked = cat().MarkOrphanedSessions("self", now, kLease);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 3);
  for (int i : {1, 2, 3}) {
    all[i].status = SessionStatus::kIncomplete;
    all[i].ended_us = now;
  }
  for (const Session& s : all) {
    SCOPED_TRACE(s.id + " of replica '" + s.replica + "'");
    auto got = cat().GetSession(s.id);
    ASSERT_OK(got);
    ExpectSameSession(s, *got);
  }
  // The expired lease is gone; the sweeper's own stale one is kept (it is
  // alive: it is sweeping).
  EXPECT_EQ(LeaseIds(cat()), (std::vector<std::string>{"live", "self"}));

  // Sweeping again changes nothing.
  marked = cat().MarkOrphanedSessions("self", now + kSecond, kLease);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 0);

  // To another replica, "self" has not renewed for 70 s either.
  marked = cat().MarkOrphanedSessions("live", now, kLease);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 1);
  auto got = cat().GetSession(all[5].id);
  ASSERT_OK(got);
  EXPECT_EQ(SessionStatusName(got->status), "incomplete");
  EXPECT_EQ(got->ended_us, now);
  EXPECT_EQ(LeaseIds(cat()), std::vector<std::string>{"live"});
  got = cat().GetSession(all[0].id);
  ASSERT_OK(got);
  EXPECT_EQ(SessionStatusName(got->status), "recording");

  // A session marked incomplete still takes its final status when its
  // replica turns out to be alive after all and ends it.
  ASSERT_OK(
      cat().FinishSession(all[1].id, now + 5, 123, SessionStatus::kComplete));
  got = cat().GetSession(all[1].id);
  ASSERT_OK(got);
  EXPECT_EQ(SessionStatusName(got->status), "complete");

  EXPECT_EQ(cat().MarkOrphanedSessions("", now, kLease).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(cat().MarkOrphanedSessions("self", now, 0).status().code(),
            Code::kInvalidArgument);
}

TEST_P(CatalogTest, LeaseRenewedExactlyATimeoutAgoIsStillAlive) {
  ASSERT_OK(cat().RenewReplicaLease("r", kT0));
  ASSERT_OK(cat().CreateSession(OwnedSession(1, "r")));
  auto marked = cat().MarkOrphanedSessions("other", kT0 + kLease, kLease);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 0);
  EXPECT_EQ(LeaseIds(cat()), std::vector<std::string>{"r"});
  // A renewal in time keeps it alive past the first deadline...
  ASSERT_OK(cat().RenewReplicaLease("r", kT0 + kLease));
  marked = cat().MarkOrphanedSessions("other", kT0 + kLease + 1, kLease);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 0);
  // ...and a microsecond past the next one it is dead.
  marked = cat().MarkOrphanedSessions("other", kT0 + 2 * kLease + 1, kLease);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 1);
}

// Two replicas sweeping at once (two connections) mark each orphan once.
TEST_P(CatalogTest, ConcurrentSweepsMarkEachOrphanOnce) {
  constexpr int kOrphans = 200;
  std::vector<Session> orphans;
  for (int i = 0; i < kOrphans; ++i) orphans.push_back(OwnedSession(i, "x"));
  ASSERT_OK(cat().BulkInsertSessions(orphans));
  auto other = store_->Open();
  ASSERT_OK(other);
  Result<int> a = 0, b = 0;
  std::thread ta([&] { a = cat().MarkOrphanedSessions("a", kT0, kLease); });
  std::thread tb([&] { b = (*other)->MarkOrphanedSessions("b", kT0, kLease); });
  ta.join();
  tb.join();
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(*a + *b, kOrphans);
  auto listed = cat().ListSessions({});
  ASSERT_OK(listed);
  for (const Session& s : *listed) {
    EXPECT_EQ(SessionStatusName(s.status), "incomplete") << s.id;
  }
}

TEST_P(CatalogTest, ReplicaLeaseRenewsSweepsAndDropsOnDestruction) {
  FakeClock clock(kT0);
  ReplicaLeaseOptions o;
  o.catalog = &cat();
  o.clock = &clock;
  o.timeout_us = kLease;
  o.run_thread = false;
  // A replica that crashed a while ago, and one alive.
  ASSERT_OK(cat().RenewReplicaLease("crashed", kT0 - 61 * kSecond));
  ASSERT_OK(cat().RenewReplicaLease("peer", kT0));
  ASSERT_OK(cat().CreateSession(OwnedSession(1, "crashed")));
  ASSERT_OK(cat().CreateSession(OwnedSession(2, "peer")));

  auto lease = ReplicaLease::Start(o);
  ASSERT_OK(lease);
  const std::string self = (*lease)->id();
  EXPECT_EQ(self.size(), 16u);
  EXPECT_EQ(self.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(NewReplicaId(), self);
  // Start renewed and swept once.
  EXPECT_EQ(LeaseIds(cat()),
            (std::vector<std::string>{std::min(self, std::string("peer")),
                                      std::max(self, std::string("peer"))}));
  auto got = cat().GetSession(Id(1));
  ASSERT_OK(got);
  EXPECT_EQ(SessionStatusName(got->status), "incomplete");
  EXPECT_EQ(got->ended_us, kT0);
  ASSERT_OK(cat().CreateSession(OwnedSession(3, self)));

  // The peer goes quiet; this replica keeps renewing.
  for (int i = 0; i < 7; ++i) {
    clock.Advance(10 * kSecond);
    auto marked = (*lease)->RunOnce();
    ASSERT_OK(marked);
    EXPECT_EQ(*marked, i == 6 ? 1 : 0) << "round " << i;
  }
  got = cat().GetSession(Id(2));
  ASSERT_OK(got);
  EXPECT_EQ(SessionStatusName(got->status), "incomplete");
  EXPECT_EQ(got->ended_us, kT0 + 70 * kSecond);
  got = cat().GetSession(Id(3));
  ASSERT_OK(got);
  EXPECT_EQ(SessionStatusName(got->status), "recording");
  auto leases = cat().ListReplicaLeases();
  ASSERT_OK(leases);
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].id, self);
  EXPECT_EQ((*leases)[0].started_us, kT0);
  EXPECT_EQ((*leases)[0].last_seen_us, kT0 + 70 * kSecond);

  // A clean stop drops the lease: what it left recording is an orphan at
  // once to the next sweeper, whatever the time.
  lease = Status(Code::kInternal, "stopped");
  EXPECT_TRUE(LeaseIds(cat()).empty());
  auto marked = cat().MarkOrphanedSessions("next", kT0 + 70 * kSecond, kLease);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 1);

  o.timeout_us = 0;
  EXPECT_EQ(ReplicaLease::Start(o).status().code(), Code::kInvalidArgument);
  o.timeout_us = kLease;
  o.period_us = kLease;
  EXPECT_EQ(ReplicaLease::Start(o).status().code(), Code::kInvalidArgument);
}

// The thread renews and sweeps by itself (real time; the deadline is
// generous, the period short).
TEST_P(CatalogTest, ReplicaLeaseThreadSweepsPeriodically) {
  ReplicaLeaseOptions o;
  o.catalog = &cat();
  o.timeout_us = 2 * kSecond;
  o.period_us = 50'000;
  auto lease = ReplicaLease::Start(o);
  ASSERT_OK(lease);
  ASSERT_OK(cat().CreateSession(OwnedSession(1, "never-leased")));
  ASSERT_OK(cat().CreateSession(OwnedSession(2, (*lease)->id())));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Result<Session> got = Status(Code::kInternal, "not read");
  while (std::chrono::steady_clock::now() < deadline) {
    got = cat().GetSession(Id(1));
    ASSERT_OK(got);
    if (got->status != SessionStatus::kRecording) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(SessionStatusName(got->status), "incomplete");
  // Past the timeout, the lease has been renewed and the replica's own
  // session is still recording.
  auto leases = cat().ListReplicaLeases();
  ASSERT_OK(leases);
  ASSERT_EQ(leases->size(), 1u);
  const int64_t seen = (*leases)[0].last_seen_us;
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  leases = cat().ListReplicaLeases();
  ASSERT_OK(leases);
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_GT((*leases)[0].last_seen_us, seen);
  got = cat().GetSession(Id(2));
  ASSERT_OK(got);
  EXPECT_EQ(SessionStatusName(got->status), "recording");
}

INSTANTIATE_TEST_SUITE_P(
    Backends, CatalogTest,
    ::testing::Values(
        Backend{"Sqlite",
                [] { return std::unique_ptr<TestStore>(new SqliteStore); }},
        Backend{"Postgres",
                [] { return std::unique_ptr<TestStore>(new PostgresStore); }}),
    [](const ::testing::TestParamInfo<Backend>& param_info) {
      return param_info.param.name;
    });

// SQLite specifics: the file itself, its schema rows and pragmas.

// Runs one SQL statement on the file with a separate raw connection and
// returns the first column of every row, joined by ','.
std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) !=
      SQLITE_OK) {
    sqlite3_close(db);
    return "<open failed>";
  }
  auto collect = [](void* arg, int, char** values, char**) {
    std::string* o = static_cast<std::string*>(arg);
    if (!o->empty()) *o += ",";
    *o += values[0] != nullptr ? values[0] : "NULL";
    return 0;
  };
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), collect, &out, &err) != SQLITE_OK) {
    out = std::string("<error: ") + (err ? err : "?") + ">";
    sqlite3_free(err);
  }
  sqlite3_close(db);
  return out;
}

// Stores a session row as a build that knew schema versions 1-5 did (no
// replica column), through a raw connection. "" on success.
std::string RawInsertOldSession(const std::string& path, const Session& s) {
  char* sql = sqlite3_mprintf(
      "INSERT INTO sessions (id, connection_id, user, node, login, kind, "
      "command, started_us, ended_us, bytes, status, storage_key, format, "
      "encrypted) VALUES (%Q, %Q, %Q, %Q, %Q, %Q, %Q, %lld, %lld, %lld, %Q, "
      "%Q, %Q, %d)",
      s.id.c_str(), s.connection_id.c_str(), s.user.c_str(), s.node.c_str(),
      s.login.c_str(), s.kind.c_str(), s.command.c_str(),
      static_cast<long long>(s.started_us), static_cast<long long>(s.ended_us),
      static_cast<long long>(s.bytes),
      std::string(SessionStatusName(s.status)).c_str(), s.storage_key.c_str(),
      s.format.c_str(), s.encrypted ? 1 : 0);
  std::string out = RawQuery(path, sql);
  sqlite3_free(sql);
  return out;
}

mode_t FileMode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(SqliteCatalogTest, FilesAreOwnerOnly) {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  mode_t old_umask = umask(022);
  auto cat = OpenSqliteCatalog(path);
  umask(old_umask);
  ASSERT_OK(cat);
  ASSERT_OK((*cat)->CreateSession(MakeSession(1, "alice", "web-1", 1)));
  EXPECT_EQ(FileMode(path), 0600u);
  EXPECT_EQ(FileMode(path + "-wal"), 0600u);
  EXPECT_EQ(FileMode(path + "-shm"), 0600u);
  cat = Status(Code::kInternal, "closed");

  // A file someone loosened is tightened on open.
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  cat = OpenSqliteCatalog(path);
  ASSERT_OK(cat);
  EXPECT_EQ(FileMode(path), 0600u);
}

TEST(SqliteCatalogTest, RefusesSymlink) {
  TempDir dir;
  std::string target = dir.path() + "/real.db";
  std::string link = dir.path() + "/catalog.db";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  auto cat = OpenSqliteCatalog(link);
  ASSERT_FALSE(cat.ok());
  EXPECT_NE(cat.status().message().find(link), std::string::npos)
      << cat.status().ToString();
}

TEST(SqliteCatalogTest, UsesWalAndTheDocumentedSchema) {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  auto cat = OpenSqliteCatalog(path);
  ASSERT_OK(cat);
  EXPECT_EQ(RawQuery(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawQuery(path,
                     "SELECT version FROM schema_migrations "
                     "ORDER BY version"),
            "1,2,3,4,5,6,7");
  EXPECT_EQ(SqliteCatalogSchemaVersion(), 7);
  EXPECT_EQ(RawQuery(path,
                     "SELECT name FROM sqlite_schema WHERE type = 'table' "
                     "AND name NOT LIKE 'sqlite_%' ORDER BY name"),
            "audit_events,config,nodes,replicas,revocations,"
            "schema_migrations,sessions,users");
  EXPECT_EQ(RawQuery(path, "SELECT name FROM pragma_table_info('users')"),
            "name,id,logins,role,created_us");
  EXPECT_EQ(RawQuery(path, "SELECT name FROM pragma_table_info('revocations')"),
            "id,name,kind,revoked_us");
  EXPECT_EQ(RawQuery(path, "SELECT name FROM pragma_table_info('replicas')"),
            "id,started_us,last_seen_us");
  EXPECT_EQ(RawQuery(path,
                     "SELECT dflt_value FROM pragma_table_info('sessions') "
                     "WHERE name = 'replica'"),
            "''");
  EXPECT_EQ(RawQuery(path,
                     "SELECT name FROM sqlite_schema WHERE type = 'index' "
                     "AND name NOT LIKE 'sqlite_%' ORDER BY name"),
            "audit_session,audit_time,audit_type_time,audit_user_time,"
            "nodes_id,nodes_join_token_hash,revocations_time,"
            "sessions_connection,sessions_node_started,"
            "sessions_recording,sessions_started,sessions_user_started,"
            "users_id");
}

using Value = std::variant<std::string, int64_t>;

// The query plan SQLite picks for `sql` on the file at `path`, one line per
// step ("SEARCH audit_events USING INDEX ...; "). Parameters named in
// `params` are bound first (text or integer), as the catalog binds them.
std::string QueryPlan(
    const std::string& path, const std::string& sql,
    const std::vector<std::pair<std::string, Value>>& params) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    sqlite3_close(db);
    return "<open failed>";
  }
  sqlite3_stmt* stmt = nullptr;
  std::string plan;
  if (sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt,
                         nullptr) != SQLITE_OK) {
    plan = std::string("<prepare failed: ") + sqlite3_errmsg(db) + ">";
  } else {
    for (const auto& [name, value] : params) {
      int i = sqlite3_bind_parameter_index(stmt, name.c_str());
      if (i == 0) plan += "<no parameter " + name + "> ";
      if (const auto* text = std::get_if<std::string>(&value)) {
        sqlite3_bind_text(stmt, i, text->c_str(), -1, SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_int64(stmt, i, std::get<int64_t>(value));
      }
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
      plan += "; ";
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return plan;
}

// The listings behind `msh sessions ls` and the audit views read their
// index in order and stop at LIMIT, so their cost does not grow with the
// table. Checked on the exact SQL the catalog prepares, with the planner
// knowing nothing (a new file) and with statistics as ANALYZE (which PRAGMA
// optimize runs) would leave them on 1,000,000 sessions and 10,000,000
// audit events. Timing is the benchmarks' business.
TEST(SqliteCatalogTest, ListingsWalkTheirIndexesAtScale) {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  {
    auto cat = OpenSqliteCatalog(path);
    ASSERT_OK(cat);
  }
  struct Query {
    std::string sql;
    std::vector<std::pair<std::string, Value>> params;
    std::string index;  // The plan must use it, and must not sort.
  };
  const int64_t kSince = 1'700'000'000'000'000;
  const std::vector<Query> queries = {
      {internal::ListAuditSql(Audit("session.start", "", "", kSince, 0, 100)),
       {{":type", "session.start"}, {":since", kSince}, {":limit", 100}},
       "audit_type_time (type=? AND time_us>?)"},
      {internal::ListAuditSql(Audit("session.start", "", "", 0, 0, 100)),
       {{":type", "session.start"}, {":limit", 100}},
       "audit_type_time (type=?)"},
      {internal::ListAuditSql(Audit("", "alice", "", 0, 0, 100)),
       {{":user", "alice"}, {":limit", 100}},
       "audit_user_time (user=?)"},
      {internal::ListAuditSql(Audit("", "", "", 0, 0, 100)),
       {{":limit", 100}},
       "audit_time"},
      {internal::ListSessionsSql(Sessions("alice", "", 0, 0, 50)),
       {{":user", "alice"}, {":limit", 50}},
       "sessions_user_started (user=?)"},
      {internal::ListSessionsSql(Sessions("alice", "", kSince, 0, 50)),
       {{":user", "alice"}, {":since", kSince}, {":limit", 50}},
       "sessions_user_started (user=? AND started_us>?)"},
      {internal::ListSessionsSql(Sessions("", "web-1", 0, 0, 50)),
       {{":node", "web-1"}, {":limit", 50}},
       "sessions_node_started (node=?)"},
      {internal::ListSessionsSql(Sessions("", "", 0, 0, 50)),
       {{":limit", 50}},
       "sessions_started"},
  };
  auto check_all = [&] {
    for (const Query& q : queries) {
      SCOPED_TRACE(q.sql);
      std::string plan = QueryPlan(path, q.sql, q.params);
      EXPECT_NE(plan.find("USING INDEX " + q.index), std::string::npos) << plan;
      EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
      EXPECT_EQ(plan.find("<"), std::string::npos) << plan;
    }
    std::string plan = QueryPlan(path, internal::FindNodeByJoinTokenHashSql(),
                                 {{":hash", "abc"}});
    EXPECT_NE(
        plan.find("USING INDEX nodes_join_token_hash (join_token_hash=?)"),
        std::string::npos)
        << plan;
  };
  {
    SCOPED_TRACE("no statistics");
    check_all();
  }

  // sqlite_stat1 rows: "rows, then rows per distinct value of each index
  // prefix". 10,000 users, 1,000 nodes, 2 sessions per connection, 10
  // events per session; few audit types, so each one matches 1/5 of them.
  EXPECT_EQ(RawQuery(path,
                     "ANALYZE; DELETE FROM sqlite_stat1; "
                     "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES "
                     "('sessions', 'sqlite_autoindex_sessions_1', "
                     "'1000000 1'), "
                     "('sessions', 'sessions_user_started', "
                     "'1000000 100 1 1'), "
                     "('sessions', 'sessions_node_started', "
                     "'1000000 1000 1 1'), "
                     "('sessions', 'sessions_started', '1000000 1 1'), "
                     "('sessions', 'sessions_connection', '1000000 2'), "
                     "('sessions', 'sessions_recording', '20 1'), "
                     "('audit_events', 'audit_time', '10000000 2'), "
                     "('audit_events', 'audit_type_time', "
                     "'10000000 2000000 2'), "
                     "('audit_events', 'audit_user_time', "
                     "'10000000 1000 2'), "
                     "('audit_events', 'audit_session', '10000000 10'), "
                     "('nodes', 'sqlite_autoindex_nodes_1', '1000 1'), "
                     "('nodes', 'nodes_join_token_hash', '900 1'), "
                     "('users', 'sqlite_autoindex_users_1', '10000 1')"),
            "");
  EXPECT_EQ(RawQuery(path, "SELECT COUNT(*) FROM sqlite_stat1"), "13");
  {
    SCOPED_TRACE("statistics of 1,000,000 sessions, 10,000,000 events");
    check_all();
  }
}

TEST(SqliteCatalogTest, RefusesNewerSchemaNamingBothVersions) {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  {
    auto cat = OpenSqliteCatalog(path);
    ASSERT_OK(cat);
  }
  EXPECT_EQ(RawQuery(path,
                     "INSERT INTO schema_migrations (version, "
                     "applied_at) VALUES (999, 0)"),
            "");
  auto cat = OpenSqliteCatalog(path);
  ASSERT_FALSE(cat.ok());
  EXPECT_EQ(cat.status().code(), Code::kFailedPrecondition);
  const std::string& m = cat.status().message();
  EXPECT_NE(m.find("999"), std::string::npos) << m;
  EXPECT_NE(m.find("version " + std::to_string(SqliteCatalogSchemaVersion())),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(path), std::string::npos) << m;
}

TEST(SqliteCatalogTest, UpgradesAnOlderSchemaKeepingData) {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  Session s = MakeSession(1, "alice", "web-1", 1000);
  {
    auto cat = OpenSqliteCatalog(path, {.max_schema_version = 1});
    ASSERT_OK(cat);
    ASSERT_EQ(RawInsertOldSession(path, s), "");
    EXPECT_EQ(RawQuery(path, "SELECT version FROM schema_migrations"), "1");
    // Tables of later versions do not exist yet.
    EXPECT_FALSE((*cat)->AppendAudit(Event(1, "x")).ok());
  }
  auto cat = OpenSqliteCatalog(path);
  ASSERT_OK(cat);
  EXPECT_EQ(RawQuery(path,
                     "SELECT version FROM schema_migrations "
                     "ORDER BY version"),
            "1,2,3,4,5,6,7");
  auto got = (*cat)->GetSession(s.id);
  ASSERT_OK(got);
  ExpectSameSession(s, *got);
  EXPECT_OK((*cat)->AppendAudit(Event(1, "session.start")));
  EXPECT_OK((*cat)->SetConfig("session_recording", "off"));

  EXPECT_EQ(OpenSqliteCatalog(
                path, {.max_schema_version = SqliteCatalogSchemaVersion() + 1})
                .status()
                .code(),
            Code::kInvalidArgument);
}

// A file written by a build that knew versions 1-3 gains users and nodes
// and keeps everything it had.
TEST(SqliteCatalogTest, UpgradesFromVersion3AddingUsersAndNodes) {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  std::vector<Session> sessions;
  for (int n = 0; n < 5; ++n) {
    sessions.push_back(MakeSession(n, "alice", "web-1", 1000 + n));
  }
  sessions[4].status = SessionStatus::kComplete;
  sessions[4].ended_us = 9000;
  sessions[4].bytes = 4242;
  {
    auto cat = OpenSqliteCatalog(path, {.max_schema_version = 3});
    ASSERT_OK(cat);
    for (const Session& s : sessions) {
      ASSERT_EQ(RawInsertOldSession(path, s), "");
    }
    ASSERT_OK((*cat)->AppendAudit(Event(100, "session.start", "alice")));
    ASSERT_OK((*cat)->AppendAudit(Event(200, "session.end", "alice")));
    ASSERT_OK((*cat)->SetConfig("session_recording", "off"));
    EXPECT_EQ(RawQuery(path,
                       "SELECT version FROM schema_migrations "
                       "ORDER BY version"),
              "1,2,3");
    // The tables of versions 4, 5 and 7 do not exist yet.
    Status st = (*cat)->CreateUser(MakeUser("alice", {}, "user", 1));
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("no such table"), std::string::npos)
        << st.ToString();
    EXPECT_FALSE((*cat)->ListNodes().ok());
  }
  auto cat = OpenSqliteCatalog(path);
  ASSERT_OK(cat);
  EXPECT_EQ(RawQuery(path,
                     "SELECT version FROM schema_migrations "
                     "ORDER BY version"),
            "1,2,3,4,5,6,7");
  EXPECT_EQ(RawQuery(path,
                     "SELECT name FROM sqlite_schema WHERE type = 'table' "
                     "AND name IN ('users', 'nodes') ORDER BY name"),
            "nodes,users");
  for (const Session& s : sessions) {
    auto got = (*cat)->GetSession(s.id);
    ASSERT_OK(got);
    ExpectSameSession(s, *got);
  }
  auto audit = (*cat)->ListAudit({});
  ASSERT_OK(audit);
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*audit)[0].type, "session.end");
  auto config = (*cat)->GetConfig("session_recording");
  ASSERT_OK(config);
  EXPECT_EQ(config->value_or("<unset>"), "off");

  auto users = (*cat)->ListUsers();
  ASSERT_OK(users);
  EXPECT_TRUE(users->empty());
  auto nodes = (*cat)->ListNodes();
  ASSERT_OK(nodes);
  EXPECT_TRUE(nodes->empty());
  User alice = MakeUser("alice", {"root"}, "admin", 1);
  ASSERT_OK((*cat)->CreateUser(alice));
  Node web = MakeNode("web-1", "10.0.0.1:22", "hash-1");
  ASSERT_OK((*cat)->CreateNode(web));
  cat = Status(Code::kInternal, "closed");

  // And again: nothing is re-applied, everything is still there.
  cat = OpenSqliteCatalog(path);
  ASSERT_OK(cat);
  EXPECT_EQ(RawQuery(path, "SELECT COUNT(*) FROM schema_migrations"), "7");
  auto got_user = (*cat)->GetUser("alice");
  ASSERT_OK(got_user);
  ExpectSameUser(alice, *got_user);
  auto got_node = (*cat)->FindNodeByJoinTokenHash("hash-1");
  ASSERT_OK(got_node);
  ExpectSameNode(web, *got_node);
  auto count = (*cat)->CountSessions();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 5u);
  // Rows from before replicas were recorded belong to none: the first
  // sweep of a replica takes those still recording for orphans.
  auto marked = (*cat)->MarkOrphanedSessions("r1", 20000, 1000);
  ASSERT_OK(marked);
  EXPECT_EQ(*marked, 4);
}

// Users and nodes of a version 6 file get distinct identity ids, keep
// everything else, and proxies become storable.
TEST(SqliteCatalogTest, UpgradesFromVersion6GivingEveryIdentityAnId) {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  User alice = MakeUser("alice", {"root", "ubuntu"}, "admin", 11);
  User bob = MakeUser("bob", {}, "user", 12);
  Node web = MakeNode("web-1", "10.0.0.1:22", "hash-1");
  Node db = MakeNode("db-1", "10.0.0.2:22", "");
  {
    auto cat = OpenSqliteCatalog(path, {.max_schema_version = 6});
    ASSERT_OK(cat);
    // Written as a version 6 build did: no id column yet.
    ASSERT_EQ(RawQuery(path,
                       "INSERT INTO users (name, logins, role, created_us) "
                       "VALUES ('alice', '[\"root\",\"ubuntu\"]', 'admin', "
                       "11), ('bob', '[]', 'user', 12)"),
              "");
    for (const Node& n : {web, db}) {
      char* sql = sqlite3_mprintf(
          "INSERT INTO nodes (name, addr, openssh, login_hint, host_key, "
          "join_token_hash, created_us, last_seen_us, recording_mode) VALUES "
          "(%Q, %Q, 0, %Q, %Q, %Q, %lld, 0, %Q)",
          n.name.c_str(), n.addr.c_str(), n.login_hint.c_str(),
          n.host_key.c_str(), n.join_token_hash.c_str(),
          static_cast<long long>(n.created_us), n.recording_mode.c_str());
      ASSERT_EQ(RawQuery(path, sql), "");
      sqlite3_free(sql);
    }
    // A version 6 schema refuses proxies.
    EXPECT_NE(RawQuery(path,
                       "INSERT INTO users (name, logins, role, created_us) "
                       "VALUES ('px', '[]', 'proxy', 1)"),
              "");
  }
  auto cat = OpenSqliteCatalog(path);
  ASSERT_OK(cat);
  auto users = (*cat)->ListUsers();
  ASSERT_OK(users);
  ASSERT_EQ(users->size(), 2u);
  ExpectSameUser(alice, (*users)[0]);
  ExpectSameUser(bob, (*users)[1]);
  EXPECT_NE((*users)[0].id, (*users)[1].id);
  auto nodes = (*cat)->ListNodes();
  ASSERT_OK(nodes);
  ASSERT_EQ(nodes->size(), 2u);
  ExpectSameNode(db, (*nodes)[0]);
  ExpectSameNode(web, (*nodes)[1]);
  EXPECT_NE((*nodes)[0].id, (*nodes)[1].id);
  ASSERT_OK((*cat)->CreateUser(MakeUser("px1", {}, "proxy", 13)));
  ASSERT_OK((*cat)->DeleteUser("alice", 99));
  auto r = (*cat)->GetRevocation((*users)[0].id);
  ASSERT_OK(r);
  EXPECT_EQ(r->kind, "admin");
}

TEST(SqliteCatalogTest, NotADatabaseIsDataLossNamingTheFile) {
  TempDir dir;
  std::string path = dir.path() + "/catalog.db";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(std::string(4096, 'x').c_str(), f);
  std::fclose(f);
  auto cat = OpenSqliteCatalog(path);
  ASSERT_FALSE(cat.ok());
  EXPECT_EQ(cat.status().code(), Code::kDataLoss) << cat.status().ToString();
  EXPECT_NE(cat.status().message().find(path), std::string::npos);
}

TEST(SqliteCatalogTest, MissingDirectoryIsAnError) {
  auto cat = OpenSqliteCatalog("/nonexistent/mez/catalog.db");
  ASSERT_FALSE(cat.ok());
  EXPECT_NE(cat.status().message().find("/nonexistent/mez/catalog.db"),
            std::string::npos);
}

TEST(SessionStatusTest, NamesRoundTrip) {
  for (SessionStatus s : {SessionStatus::kRecording, SessionStatus::kComplete,
                          SessionStatus::kIncomplete}) {
    auto parsed = ParseSessionStatus(SessionStatusName(s));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(SessionStatusName(SessionStatus::kIncomplete), "incomplete");
  EXPECT_EQ(ParseSessionStatus("done").status().code(), Code::kInvalidArgument);
}

// PostgreSQL specifics: migrations under concurrency, the schema as
// PostgreSQL sees it, connection loss.

TEST(PostgresCatalogTest, ConcurrentStartsOnAFreshDatabaseMigrateOnce) {
  PostgresStore store;
  ASSERT_OK(store.url());
  constexpr int kOpeners = 4;
  std::vector<Result<std::unique_ptr<Catalog>>> opened;
  for (int i = 0; i < kOpeners; ++i) {
    opened.emplace_back(Status(Code::kInternal, "not run"));
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] { opened[i] = store.Open(); });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) {
    ASSERT_OK(opened[i]);
    ASSERT_OK((*opened[i])->CreateSession(MakeSession(i, "u", "n", 1000 + i)));
  }
  auto count = (*opened[0])->CountSessions();
  ASSERT_OK(count);
  EXPECT_EQ(*count, uint64_t{kOpeners});
  auto versions = testing::PostgresServer::Query(
      *store.url(), "SELECT version FROM schema_migrations ORDER BY version");
  ASSERT_OK(versions);
  EXPECT_EQ(*versions, "1,2,3,4,5,6,7");
}

TEST(PostgresCatalogTest, UsesTheDocumentedSchema) {
  PostgresStore store;
  ASSERT_OK(store.Open());
  const std::string& url = *store.url();
  auto q = [&](const std::string& sql) {
    auto r = testing::PostgresServer::Query(url, sql);
    return r.ok() ? *r : "<error: " + r.status().ToString() + ">";
  };
  EXPECT_EQ(q("SELECT table_name FROM information_schema.tables "
              "WHERE table_schema = current_schema() ORDER BY 1"),
            "audit_events,config,nodes,replicas,revocations,"
            "schema_migrations,sessions,users");
  EXPECT_EQ(q("SELECT indexname FROM pg_indexes "
              "WHERE schemaname = current_schema() ORDER BY 1"),
            "audit_events_pkey,audit_session,audit_time,audit_type_time,"
            "audit_user_time,config_pkey,nodes_id,nodes_join_token_hash,"
            "nodes_pkey,replicas_pkey,revocations_pkey,revocations_time,"
            "schema_migrations_pkey,sessions_connection,"
            "sessions_node_started,"
            "sessions_pkey,sessions_recording,sessions_started,"
            "sessions_user_started,users_id,users_pkey");
  // Ordered and compared text is bytewise.
  EXPECT_EQ(q("SELECT table_name || '.' || column_name FROM "
              "information_schema.columns WHERE table_schema = "
              "current_schema() AND collation_name = 'C' ORDER BY 1"),
            "audit_events.session_id,audit_events.type,audit_events.user,"
            "config.key,nodes.id,nodes.join_token_hash,nodes.name,replicas.id,"
            "revocations.id,sessions.connection_id,sessions.id,sessions.node,"
            "sessions.replica,sessions.user,users.id,users.name");
  EXPECT_EQ(q("SELECT data_type FROM information_schema.columns WHERE "
              "table_schema = current_schema() AND table_name = 'sessions' "
              "AND column_name = 'bytes'"),
            "bigint");
}

// Users and nodes of a version 6 database get distinct identity ids in
// step 7, and proxies become storable. The database is laid out as
// versions 4 and 5 made it (only the tables step 7 touches).
TEST(PostgresCatalogTest, UpgradesFromVersion6GivingEveryIdentityAnId) {
  PostgresStore store;
  ASSERT_OK(store.url());
  const std::string& url = *store.url();
  ASSERT_OK(testing::PostgresServer::Query(url, R"sql(
CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY,
                                applied_at BIGINT NOT NULL);
INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0),
                                     (6, 0);
CREATE TABLE users (
  name       TEXT COLLATE "C" NOT NULL,
  logins     TEXT   NOT NULL,
  role       TEXT   NOT NULL CHECK (role IN ('user', 'admin')),
  created_us BIGINT NOT NULL,
  CONSTRAINT users_pkey PRIMARY KEY (name)
);
CREATE TABLE nodes (
  name            TEXT COLLATE "C" NOT NULL,
  addr            TEXT    NOT NULL,
  openssh         BOOLEAN NOT NULL,
  login_hint      TEXT    NOT NULL,
  host_key        TEXT    NOT NULL,
  join_token_hash TEXT COLLATE "C" NOT NULL,
  created_us      BIGINT  NOT NULL,
  last_seen_us    BIGINT  NOT NULL,
  recording_mode  TEXT    NOT NULL,
  CONSTRAINT nodes_pkey PRIMARY KEY (name)
);
CREATE UNIQUE INDEX nodes_join_token_hash ON nodes (join_token_hash)
  WHERE join_token_hash <> '';
INSERT INTO users VALUES ('alice', '["root"]', 'admin', 11),
                         ('bob', '[]', 'user', 12);
INSERT INTO nodes VALUES ('db-1', 'h:22', false, '', '', '', 1, 0, ''),
                         ('web-1', 'h:22', false, '', '', 'hash-1', 1, 0, '');
)sql"));
  auto cat = store.Open();
  ASSERT_OK(cat);
  EXPECT_EQ(*testing::PostgresServer::Query(
                url, "SELECT version FROM schema_migrations ORDER BY 1"),
            "1,2,3,4,5,6,7");
  auto users = (*cat)->ListUsers();
  ASSERT_OK(users);
  ASSERT_EQ(users->size(), 2u);
  ExpectSameUser(MakeUser("alice", {"root"}, "admin", 11), (*users)[0]);
  ExpectSameUser(MakeUser("bob", {}, "user", 12), (*users)[1]);
  EXPECT_NE((*users)[0].id, (*users)[1].id);
  auto nodes = (*cat)->ListNodes();
  ASSERT_OK(nodes);
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_TRUE(IsIdentityId((*nodes)[0].id)) << (*nodes)[0].id;
  EXPECT_TRUE(IsIdentityId((*nodes)[1].id)) << (*nodes)[1].id;
  EXPECT_NE((*nodes)[0].id, (*nodes)[1].id);
  ASSERT_OK((*cat)->CreateUser(MakeUser("px1", {}, "proxy", 13)));
  ASSERT_OK((*cat)->DeleteNode("web-1", 99));
  auto r = (*cat)->GetRevocation((*nodes)[1].id);
  ASSERT_OK(r);
  EXPECT_EQ(r->name, "web-1");
}

TEST(PostgresCatalogTest, RefusesNewerSchemaNamingBothVersions) {
  PostgresStore store;
  ASSERT_OK(store.Open());
  ASSERT_OK(testing::PostgresServer::Query(
      *store.url(),
      "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 1)"));
  auto cat = store.Open();
  ASSERT_FALSE(cat.ok());
  EXPECT_EQ(cat.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(cat.status().message().find("999"), std::string::npos)
      << cat.status().message();
  // Both backends number their steps alike.
  EXPECT_NE(cat.status().message().find(
                "version " + std::to_string(SqliteCatalogSchemaVersion())),
            std::string::npos)
      << cat.status().message();
}

TEST(PostgresCatalogTest, ReconnectsOnceWhenTheServerDropsTheConnection) {
  PostgresStore store;
  ASSERT_OK(store.url());
  // Its own application name, so that only this catalog's connection is
  // dropped when other tests share the server.
  std::string app = "mezreconnect" + std::to_string(getpid());
  auto opened = OpenPostgresCatalog(*store.url() + "&application_name=" + app);
  ASSERT_OK(opened);
  Catalog& cat = **opened;
  ASSERT_OK(cat.CreateSession(MakeSession(1, "alice", "web-1", 1000)));
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    auto killed = testing::PostgresServer::Query(
        *store.url(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
        "application_name = '" +
            app + "' AND pid <> pg_backend_pid()");
    ASSERT_OK(killed);
    EXPECT_EQ(*killed, "t");
    auto got = cat.GetSession(Id(1));
    ASSERT_OK(got);
    EXPECT_EQ(got->user, "alice");
  }
  ASSERT_OK(cat.CreateSession(MakeSession(2, "bob", "web-1", 2000)));
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

TEST(PostgresCatalogTest, UnreachableServerIsUnavailableNamingIt) {
  int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  auto cat = OpenPostgresCatalog(
      "postgresql://mez:s3cret-pw@127.0.0.1:" + std::to_string(port) + "/mez");
  ASSERT_FALSE(cat.ok());
  EXPECT_EQ(cat.status().code(), Code::kUnavailable) << cat.status().ToString();
  EXPECT_NE(cat.status().message().find("127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << cat.status().message();
  EXPECT_EQ(cat.status().message().find("s3cret-pw"), std::string::npos)
      << cat.status().message();

  EXPECT_EQ(OpenPostgresCatalog("mysql://h/db").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(OpenPostgresCatalog("postgresql://h/db?bogus=1").status().code(),
            Code::kInvalidArgument);
}

TEST(PostgresCatalogTest, OpenCatalogChoosesTheBackendByUrl) {
  PostgresStore store;
  ASSERT_OK(store.url());
  auto pg = OpenCatalog(*store.url());
  ASSERT_OK(pg);
  ASSERT_OK((*pg)->SetConfig("motd", "pg"));
  auto v =
      testing::PostgresServer::Query(*store.url(), "SELECT value FROM config");
  ASSERT_OK(v);
  EXPECT_EQ(*v, "pg");

  TempDir dir;
  auto lite = OpenCatalog(dir.path() + "/catalog.db");
  ASSERT_OK(lite);
  EXPECT_EQ(RawQuery(dir.path() + "/catalog.db", "PRAGMA journal_mode"), "wal");
}

TEST(PostgresCatalogTest, TextThatIsNotUtf8IsInvalidArgument) {
  PostgresStore store;
  auto opened = store.Open();
  ASSERT_OK(opened);
  Catalog& cat = **opened;
  Session s = MakeSession(1, "caf\xe9", "web-1", 1000);
  Status st = cat.CreateSession(s);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  s.user = std::string("nul\0byte", 8);
  st = cat.CreateSession(s);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  st = cat.BulkInsertSessions({MakeSession(2, "ok", "n", 1), s});
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  auto count = cat.CountSessions();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 0u);
  // The connection is fine afterwards.
  ASSERT_OK(cat.CreateSession(MakeSession(3, "ok", "n", 1)));
}

}  // namespace
}  // namespace mez::catalog
