#include "libmez/util/status.h"

#include <gtest/gtest.h>

namespace mez {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  MEZ_ASSIGN_OR_RETURN(int h, Half(x));
  MEZ_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, OkAndErrorsCarryCodeAndMessage) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
  Status s = DataLoss("chunk 3 missing");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_EQ(s.ToString(), "DATA_LOSS: chunk 3 missing");
  EXPECT_EQ(s.WithContext("f.cast").message(), "f.cast: chunk 3 missing");
}

TEST(StatusTest, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

TEST(StatusTest, ErrnoStatusMapsCommonErrors) {
  EXPECT_EQ(ErrnoStatus("open x", ENOENT).code(), Code::kNotFound);
  EXPECT_EQ(ErrnoStatus("open x", EACCES).code(), Code::kPermissionDenied);
  EXPECT_NE(ErrnoStatus("open x", ENOENT).message().find("open x: "),
            std::string::npos);
}

}  // namespace
}  // namespace mez
