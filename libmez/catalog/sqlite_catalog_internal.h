// SQL text the SQLite catalog prepares, exposed so that tests can run
// EXPLAIN QUERY PLAN on exactly the statements that run. Not an API.
#ifndef MEZ_CATALOG_SQLITE_CATALOG_INTERNAL_H_
#define MEZ_CATALOG_SQLITE_CATALOG_INTERNAL_H_

#include <string>

#include "libmez/catalog/catalog.h"

namespace mez::catalog::internal {

// The statement ListSessions prepares for `filter`. Parameters: :user,
// :node, :since, :until (each only when that filter is set) and :limit.
std::string ListSessionsSql(const SessionFilter& filter);
// The statement ListAudit prepares for `filter`. Parameters: :type, :user,
// :session_id, :since, :until (each only when set) and :limit.
std::string ListAuditSql(const AuditFilter& filter);
// The statement FindNodeByJoinTokenHash prepares. Parameter: :hash.
std::string FindNodeByJoinTokenHashSql();

}  // namespace mez::catalog::internal

#endif  // MEZ_CATALOG_SQLITE_CATALOG_INTERNAL_H_
