/*
 * cmd_audit.c: `fedpath audit verify FILE [--head HASH]`: checks the hash
 * chain of an audit log (federate/fp_audit.h) and prints its record count and
 * head hash; the first broken line is named.
 */
#include <stdio.h>
#include <string.h>

#include "fp_audit.h"
#include "fp_cli.h"

const char fp_cmd_audit_usage[] =
	"Usage: fedpath audit verify FILE [--head HASH]\n\n"
	"Verifies an append-only, hash-chained audit log (JSON lines): every record's\n"
	"sequence number, link to the previous record and own SHA-256. Any edit,\n"
	"deletion or reordering is reported with its line. Records removed from the\n"
	"end leave a shorter valid chain: pass the head hash recorded elsewhere (for\n"
	"example in the aggregator's journal) with --head to detect that too.\n\n"
	"Prints: FILE: OK, N records, head HASH\n"
	"Exit status: 0 intact, 1 broken or unreadable, 2 usage error.\n";

int fp_cmd_audit(int argc, char **argv)
{
	const char *cmd = "audit", *file = NULL, *head = NULL;
	if (argc < 2 || strcmp(argv[1], "verify") != 0)
		return fp_cli_usage_error(cmd, "the only subcommand is 'verify FILE'");
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--head") == 0) {
			if (i + 1 >= argc) return fp_cli_usage_error(cmd, "--head needs a value");
			head = argv[++i];
			if (strlen(head) != 64) return fp_cli_usage_error(cmd, "--head must be 64 hex digits");
		} else if (argv[i][0] == '-') {
			return fp_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
		} else if (!file) {
			file = argv[i];
		} else {
			return fp_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
		}
	}
	if (!file) return fp_cli_usage_error(cmd, "verify needs a FILE");
	struct fp_audit_report r;
	if (fp_audit_verify(file, head, &r) != FP_OK) {
		fprintf(stderr, "fedpath audit: %s: BROKEN after %llu valid records: %s\n", file,
		        (unsigned long long)r.records, r.reason);
		return FP_EXIT_RUNTIME;
	}
	printf("%s: OK, %llu records, head %s\n", file, (unsigned long long)r.records, r.head);
	return FP_EXIT_OK;
}
