// One suite for every Catalog backend: CatalogTest is parameterised over a
// Backend that makes a fresh, empty store per test. A new backend adds one
// Backend to INSTANTIATE_TEST_SUITE_P. Tests that reach into SQLite itself
// (file mode, raw schema rows) are in SqliteCatalogTest below.
//
// Session ids are fixed-width ASCII ("s000042") so that the id tie-break
// of the ordering is the same under any SQL collation.
#include "libmez/catalog/catalog.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
#include <vector>

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
  // Loads many sessions for tests of listing at scale. The default goes
  // through CreateSession; a backend may override it with a bulk path
  // (one transaction, COPY, ...) to keep the suite fast.
  virtual Status BulkCreate(Catalog& catalog,
                            const std::vector<Session>& sessions) {
    for (const Session& s : sessions) {
      Status st = catalog.CreateSession(s);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }
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

  // One transaction on a second connection: 100,000 autocommit inserts
  // take tens of seconds of WAL writes, which is not what is under test.
  Status BulkCreate(Catalog&, const std::vector<Session>& sessions) override {
    sqlite3* db = nullptr;
    sqlite3_stmt* stmt = nullptr;
    auto fail = [&](const char* what) {
      Status st = Internal(std::string(what) + ": " + sqlite3_errmsg(db));
      sqlite3_finalize(stmt);
      sqlite3_close(db);
      return st;
    };
    if (sqlite3_open_v2(path().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) !=
        SQLITE_OK) {
      return fail("open");
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
      return fail("begin");
    }
    if (sqlite3_prepare_v2(
            db,
            "INSERT INTO sessions (id, connection_id, user, node, login, "
            "kind, command, started_us, ended_us, bytes, status, "
            "storage_key, format, encrypted) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            -1, &stmt, nullptr) != SQLITE_OK) {
      return fail("prepare");
    }
    for (const Session& s : sessions) {
      int i = 0;
      for (const std::string* text : {&s.id, &s.connection_id, &s.user, &s.node,
                                      &s.login, &s.kind, &s.command}) {
        sqlite3_bind_text(stmt, ++i, text->c_str(), -1, SQLITE_STATIC);
      }
      sqlite3_bind_int64(stmt, ++i, s.started_us);
      sqlite3_bind_int64(stmt, ++i, s.ended_us);
      sqlite3_bind_int64(stmt, ++i, static_cast<int64_t>(s.bytes));
      std::string status(SessionStatusName(s.status));
      sqlite3_bind_text(stmt, ++i, status.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, ++i, s.storage_key.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, ++i, s.format.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int(stmt, ++i, s.encrypted ? 1 : 0);
      if (sqlite3_step(stmt) != SQLITE_DONE) return fail("insert");
      sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    stmt = nullptr;
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return fail("commit");
    }
    sqlite3_close(db);
    return Status::Ok();
  }

 private:
  std::string path() const { return dir_.path() + "/catalog.db"; }

  TempDir dir_;
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
  ASSERT_OK(store_->BulkCreate(
      cat(), std::vector<Session>(all.begin() + 100, all.end())));

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

INSTANTIATE_TEST_SUITE_P(
    Backends, CatalogTest,
    ::testing::Values(Backend{
        "Sqlite", [] { return std::unique_ptr<TestStore>(new SqliteStore); }}),
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
            "1,2,3");
  EXPECT_EQ(SqliteCatalogSchemaVersion(), 3);
  EXPECT_EQ(RawQuery(path,
                     "SELECT name FROM sqlite_schema WHERE type = 'table' "
                     "AND name NOT LIKE 'sqlite_%' ORDER BY name"),
            "audit_events,config,schema_migrations,sessions");
  EXPECT_EQ(RawQuery(path,
                     "SELECT name FROM sqlite_schema WHERE type = 'index' "
                     "AND name NOT LIKE 'sqlite_%' ORDER BY name"),
            "audit_session,audit_time,audit_type_time,audit_user_time,"
            "sessions_connection,sessions_node_started,sessions_recording,"
            "sessions_started,sessions_user_started");
  // The user-filtered listing walks its index in order: no sort step, so a
  // LIMIT stops early however many sessions there are.
  std::string plan;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "EXPLAIN QUERY PLAN SELECT id FROM sessions "
                               "WHERE user = ?1 ORDER BY started_us DESC, id "
                               "DESC LIMIT 50",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
    plan += "; ";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  EXPECT_NE(plan.find("sessions_user_started"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
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
    ASSERT_OK((*cat)->CreateSession(s));
    EXPECT_EQ(RawQuery(path, "SELECT version FROM schema_migrations"), "1");
    // Tables of later versions do not exist yet.
    EXPECT_FALSE((*cat)->AppendAudit(Event(1, "x")).ok());
  }
  auto cat = OpenSqliteCatalog(path);
  ASSERT_OK(cat);
  EXPECT_EQ(RawQuery(path,
                     "SELECT version FROM schema_migrations "
                     "ORDER BY version"),
            "1,2,3");
  auto got = (*cat)->GetSession(s.id);
  ASSERT_OK(got);
  ExpectSameSession(s, *got);
  EXPECT_OK((*cat)->AppendAudit(Event(1, "session.start")));
  EXPECT_OK((*cat)->SetConfig("session_recording", "off"));

  EXPECT_EQ(OpenSqliteCatalog(path, {.max_schema_version = 4}).status().code(),
            Code::kInvalidArgument);
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

}  // namespace
}  // namespace mez::catalog
