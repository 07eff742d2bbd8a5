/*
 * replay_main.c: runs a libFuzzer target over committed corpus files, so every
 * build (not only clang fuzzing builds) replays the corpus in CI.
 *   fuzz_replay_<target> FILE|DIR...
 * A crash, hang (CTest timeout) or sanitizer report fails the test.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fp_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	if (fp_file_read_all(path, 64u << 20, &data, &len) != FP_OK) {
		fprintf(stderr, "cannot read %s: %s\n", path, fp_error_msg());
		return 1;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	free(data);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	int n = 0, bad = 0;
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "no such corpus: %s\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(sb.st_mode)) {
			bad |= replay_file(argv[i]);
			n++;
			continue;
		}
		struct dirent **list = NULL;
		int m = scandir(argv[i], &list, NULL, NULL);
		if (m < 0) return 1;
		qsort(list, (size_t)m, sizeof *list, cmp);
		for (int j = 0; j < m; j++) {
			if (list[j]->d_name[0] != '.') {
				char p[4096];
				snprintf(p, sizeof p, "%s/%s", argv[i], list[j]->d_name);
				bad |= replay_file(p);
				n++;
			}
			free(list[j]);
		}
		free(list);
	}
	printf("replayed %d input(s)\n", n);
	if (n == 0) {
		fprintf(stderr, "empty corpus: nothing was replayed\n");
		return 1;
	}
	return bad;
}
