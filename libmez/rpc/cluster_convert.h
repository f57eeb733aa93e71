// Conversions between the Cluster service's messages and the cluster
// domain's plain structs (libmez/cluster), in one place.
#ifndef MEZ_RPC_CLUSTER_CONVERT_H_
#define MEZ_RPC_CLUSTER_CONVERT_H_

#include "libmez/catalog/catalog.h"
#include "libmez/cluster/cluster.h"
#include "mezite/v1/cluster.pb.h"

namespace mez::rpc {

void ToProto(const catalog::Session& s, mezite::v1::SessionInfo* p);
void ToProto(const catalog::User& u, mezite::v1::UserInfo* p);
void ToProto(const catalog::Node& n, mezite::v1::NodeInfo* p);
void ToProto(const catalog::AuditEvent& e, mezite::v1::AuditEventInfo* p);
void ToProto(const cluster::JoinAnswer& a, mezite::v1::JoinNodeResponse* p);

// kInvalidArgument for a kind or status that does not exist.
Result<catalog::SessionFilter> FromProto(
    const mezite::v1::ListSessionsRequest& p);
catalog::AuditFilter FromProto(const mezite::v1::ListAuditRequest& p);
cluster::NewUser FromProto(const mezite::v1::AddUserRequest& p);
cluster::NewNode FromProto(const mezite::v1::AddNodeRequest& p);
cluster::NodeEvent FromProto(const mezite::v1::NodeAuditRequest& p);

}  // namespace mez::rpc

#endif  // MEZ_RPC_CLUSTER_CONVERT_H_
