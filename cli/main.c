/*
 * main.c: the fedpath executable: dispatch to git-style subcommands.
 *
 *   fedpath [--help | --version] <command> [options]
 *   fedpath help <command>
 *   fedpath <command> --help
 *
 * The table comes from commands.def, so a command is added in one place.
 * Exit status: 0 success, 1 runtime error, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "fp_cli.h"

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
#define FP_CLI_COMMAND(name, summary) {#name, summary, fp_cmd_##name, fp_cmd_##name##_usage},
#include "commands.def"
#undef FP_CLI_COMMAND
};
static const size_t n_commands = sizeof commands / sizeof commands[0];

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < n_commands; i++)
		if (strcmp(commands[i].name, name) == 0) return &commands[i];
	return NULL;
}

static void print_help(FILE *out)
{
	fprintf(out,
	        "fedpath %s: federated training and validation on whole-slide images.\n"
	        "No slide or patient row leaves a hospital.\n\n"
	        "Usage: fedpath <command> [options]\n"
	        "       fedpath help <command>      (or: fedpath <command> --help)\n"
	        "       fedpath --version\n\n"
	        "Commands:\n",
	        fp_version());
	for (size_t i = 0; i < n_commands; i++) fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nExit status: 0 success, 1 runtime error, 2 usage error.\n"
	             "Environment: NO_COLOR disables colour.\n");
}

/* Edit distance for "did you mean"; names are short, so O(n*m) is fine. */
static int distance(const char *a, const char *b)
{
	int la = (int)strlen(a), lb = (int)strlen(b);
	if (la > 31 || lb > 31) return 99;
	int d[32][32];
	for (int i = 0; i <= la; i++) d[i][0] = i;
	for (int j = 0; j <= lb; j++) d[0][j] = j;
	for (int i = 1; i <= la; i++)
		for (int j = 1; j <= lb; j++) {
			int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
			d[i][j] = c;
		}
	return d[la][lb];
}

static int unknown_command(const char *name)
{
	fprintf(stderr, "fedpath: '%s' is not a fedpath command.\n", name);
	const char *best = NULL;
	int best_d = 3;
	for (size_t i = 0; i < n_commands; i++) {
		int dd = distance(name, commands[i].name);
		if (dd < best_d) {
			best_d = dd;
			best = commands[i].name;
		}
	}
	if (best) fprintf(stderr, "Did you mean 'fedpath %s'?\n", best);
	fprintf(stderr, "Run 'fedpath --help' for the list of commands.\n");
	return FP_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_help(stderr);
		return FP_EXIT_USAGE;
	}
	const char *arg = argv[1];
	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
		print_help(stdout);
		return FP_EXIT_OK;
	}
	if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) return fp_cmd_version(1, argv + 1);
	if (strcmp(arg, "help") == 0) {
		if (argc < 3) {
			print_help(stdout);
			return FP_EXIT_OK;
		}
		const struct command *c = find(argv[2]);
		if (!c) return unknown_command(argv[2]);
		fputs(c->usage, stdout);
		return FP_EXIT_OK;
	}
	if (arg[0] == '-') {
		fprintf(stderr, "fedpath: unknown option '%s'\nRun 'fedpath --help' for usage.\n", arg);
		return FP_EXIT_USAGE;
	}
	const struct command *c = find(arg);
	if (!c) return unknown_command(arg);
	if (fp_cli_wants_help(argc - 1, argv + 1)) {
		fputs(c->usage, stdout);
		return FP_EXIT_OK;
	}
	return c->run(argc - 1, argv + 1);
}
