/*
 * version.c: build facts baked in by CMake.
 */
#include "fp_build_info.h"
#include "fp_common.h"

const char *fp_version(void)
{
	return FP_VERSION;
}

const char *fp_git_hash(void)
{
	return FP_GIT_HASH;
}
