/*
 * fp_common.h: everything in common/ in one include, and build facts.
 */
#ifndef FP_COMMON_H
#define FP_COMMON_H

#include "fp_arith.h"
#include "fp_buf.h"
#include "fp_config.h"
#include "fp_file.h"
#include "fp_hash.h"
#include "fp_json.h"
#include "fp_log.h"
#include "fp_progress.h"
#include "fp_status.h"

/* "0.1.0" */
const char *fp_version(void);
/* Short git hash of the source tree at configure time, or "unknown". */
const char *fp_git_hash(void);

#endif
