// msh play's link to mezrecd for session ids: OpenRemoteRecording().
#ifndef MEZ_CMD_MSH_REMOTE_H_
#define MEZ_CMD_MSH_REMOTE_H_

#include "libmez/cli/remote_source.h"

#endif  // MEZ_CMD_MSH_REMOTE_H_
