/*
 * cmd_version.c: `fedpath version` / `fedpath --version`.
 * Prints the version, the git hash of the source and the backends compiled
 * in. Whether a GPU is present at run time is `fedpath doctor`'s business.
 */
#include <mpi.h>
#include <stdio.h>

#include "fp_cli.h"

const char fp_cmd_version_usage[] =
	"Usage: fedpath version\n"
	"       fedpath --version\n\n"
	"Prints the fedpath version, the git hash it was built from, and the compute\n"
	"backends compiled in (CPU always; CUDA when built with nvcc; MPI).\n";

int fp_cmd_version(int argc, char **argv)
{
	if (argc > 1) return fp_cli_usage_error("version", "unexpected argument '%s'", argv[1]);
	printf("fedpath %s (git %s)\n", fp_version(), fp_git_hash());
	printf("backends: CPU");
#ifdef FP_HAVE_CUDA
	printf(", CUDA");
#endif
#if defined(OMPI_MAJOR_VERSION)
	printf(", MPI (Open MPI %d.%d.%d)", OMPI_MAJOR_VERSION, OMPI_MINOR_VERSION, OMPI_RELEASE_VERSION);
#else
	printf(", MPI (%d.%d)", MPI_VERSION, MPI_SUBVERSION);
#endif
	printf("\n");
	return FP_EXIT_OK;
}
