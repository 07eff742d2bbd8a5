/*
 * test_common.c: unit tests of common/. Each case names the header statement
 * it checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_common.h"
#include "fp_test.h"

static char *path_in_tmp(const char *name)
{
	static char buf[8][4096];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, 4096, "%s/%s", fp_test_tmpdir(), name);
	return p;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* ---- fp_status.h ---- */

/* "numeric values are part of the ABI and are never renumbered" */
FP_TEST(status_values_are_stable)
{
	CHECK_INT_EQ(FP_OK, 0);
	CHECK_INT_EQ(FP_ERR_INVALID_ARG, 1);
	CHECK_INT_EQ(FP_ERR_IO, 2);
	CHECK_INT_EQ(FP_ERR_FORMAT, 4);
	CHECK_INT_EQ(FP_ERR_CHECKSUM, 6);
	CHECK_INT_EQ(FP_ERR_CONFIG, 8);
	CHECK_INT_EQ(FP_ERR_LIMIT, 11);
	CHECK_INT_EQ(FP_ERR_AUTH, 15);
	CHECK_INT_EQ(FP_ERR_INTERNAL, 20);
	CHECK_INT_EQ(FP_ERR_DATA, 21);
}

/* "fp_status_str() returns a non-NULL static string for every value" */
FP_TEST(status_str_total)
{
	for (int s = -3; s < FP_STATUS_COUNT + 5; s++) {
		CHECK(fp_status_str((enum fp_status)s) != NULL);
		CHECK(fp_status_name((enum fp_status)s) != NULL);
	}
	CHECK_STR_EQ(fp_status_str(FP_ERR_IO), "I/O error");
	CHECK_STR_EQ(fp_status_name(FP_ERR_CHECKSUM), "FP_ERR_CHECKSUM");
	CHECK_STR_EQ(fp_status_str((enum fp_status)999), "unknown status");
	for (int s = 0; s < FP_STATUS_COUNT; s++)
		CHECK_MSG(strcmp(fp_status_str((enum fp_status)s), "unknown status") != 0, "status %d has no text", s);
}

static enum fp_status inner(void)
{
	return FP_FAIL(FP_ERR_FORMAT, "bad value %d in field %s", 42, "age");
}

static enum fp_status outer(void)
{
	FP_TRY(inner());
	return FP_OK;
}

/* Errors are described where they start (file:line) and forwarded unchanged. */
FP_TEST(error_context_where_it_starts)
{
	CHECK_STATUS(outer(), FP_ERR_FORMAT);
	const struct fp_error *e = fp_error_last();
	CHECK_INT_EQ(e->code, FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(e->file, "test_common.c");
	CHECK(e->line > 0);
	CHECK_STR_EQ(e->msg, "bad value 42 in field age");
	CHECK_INT_EQ(fp_error_wrap("reading %s", "clinical.csv"), FP_ERR_FORMAT);
	CHECK_STR_EQ(fp_error_msg(), "reading clinical.csv: bad value 42 in field age");
	fp_error_clear();
	CHECK_INT_EQ(fp_error_last()->code, FP_OK);
	CHECK_STR_EQ(fp_error_msg(), "");
}

/* "messages are truncated, never overflowed, at FP_ERROR_MSG_MAX bytes" */
FP_TEST(error_message_truncated)
{
	char big[3 * FP_ERROR_MSG_MAX];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	FP_FAIL(FP_ERR_IO, "%s", big);
	CHECK_INT_EQ(strlen(fp_error_msg()), FP_ERROR_MSG_MAX - 1);
	fp_error_wrap("%s", big);
	CHECK_INT_EQ(strlen(fp_error_msg()), FP_ERROR_MSG_MAX - 1);
}

/* ---- fp_arith.h ---- */

FP_TEST(arith_overflow_detected)
{
	size_t r = 7;
	CHECK_OK(fp_size_mul(1000, 1000, &r, "tiles"));
	CHECK_INT_EQ(r, 1000000);
	r = 7;
	CHECK_STATUS(fp_size_mul(SIZE_MAX / 2 + 1, 2, &r, "tile bytes"), FP_ERR_OVERFLOW);
	CHECK_INT_EQ(r, 7); /* "leaves *out alone" */
	CHECK_STR_CONTAINS(fp_error_msg(), "tile bytes");
	CHECK_STATUS(fp_size_add(SIZE_MAX, 1, &r, "x"), FP_ERR_OVERFLOW);
	CHECK_STATUS(fp_size_mul3(1u << 30, 1u << 30, 1u << 30, &r, "w*h*c"), FP_ERR_OVERFLOW);
	uint64_t u;
	CHECK_STATUS(fp_u64_mul(UINT64_MAX, 3, &u, "x"), FP_ERR_OVERFLOW);
	CHECK_STATUS(fp_u64_add(UINT64_MAX, 1, &u, "x"), FP_ERR_OVERFLOW);
	void *p = NULL;
	CHECK_STATUS(fp_alloc_array(SIZE_MAX / 4, 8, &p, "array"), FP_ERR_OVERFLOW);
	CHECK(p == NULL);
	CHECK_OK(fp_calloc_array(10, 8, &p, "array"));
	CHECK(((uint64_t *)p)[9] == 0);
	free(p);
}

/* ---- fp_buf.h ---- */

FP_TEST(buf_respects_limit)
{
	struct fp_buf b;
	fp_buf_init(&b, 10);
	CHECK_OK(fp_buf_append(&b, "hello", 5));
	CHECK_OK(fp_buf_printf(&b, "%d", 1234));
	CHECK_STR_EQ(b.data, "hello1234");
	CHECK_STATUS(fp_buf_append(&b, "ab", 2), FP_ERR_LIMIT);
	CHECK_INT_EQ(b.len, 9); /* unchanged after a refused append */
	CHECK_OK(fp_buf_append(&b, "a", 1));
	fp_buf_close(&b);
	fp_buf_close(&b); /* closing twice is harmless */
}

/* ---- fp_hash.h ---- */

FP_TEST(sha256_known_vectors)
{
	uint8_t d[FP_SHA256_SIZE];
	char hex[FP_SHA256_HEX_SIZE];
	CHECK_OK(fp_sha256("abc", 3, d));
	fp_hex_encode(d, sizeof d, hex);
	CHECK_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK_OK(fp_sha256("", 0, d));
	fp_hex_encode(d, sizeof d, hex);
	CHECK_STR_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* incremental == one-shot, and the file form agrees */
	struct fp_sha256 *h = NULL;
	CHECK_OK(fp_sha256_create(&h));
	CHECK_OK(fp_sha256_update(h, "a", 1));
	CHECK_OK(fp_sha256_update(h, "bc", 2));
	uint8_t d2[FP_SHA256_SIZE];
	CHECK_OK(fp_sha256_final(h, d2));
	fp_sha256_destroy(h);
	fp_sha256_destroy(NULL);
	CHECK_OK(fp_sha256("abc", 3, d));
	CHECK(memcmp(d, d2, sizeof d) == 0);
	const char *p = path_in_tmp("abc.txt");
	write_text(p, "abc");
	CHECK_OK(fp_sha256_file(p, d2));
	CHECK(memcmp(d, d2, sizeof d) == 0);
	CHECK_STATUS(fp_sha256_file(path_in_tmp("missing"), d2), FP_ERR_NOT_FOUND);
}

/* ---- fp_file.h ---- */

FP_TEST(file_commit_replaces_and_sets_mode)
{
	const char *p = path_in_tmp("key.pem");
	CHECK_OK(fp_file_commit(p, "first", 5, 0600));
	CHECK_OK(fp_file_commit(p, "second!", 7, 0600));
	char *data = NULL;
	size_t len = 0;
	CHECK_OK(fp_file_read_all(p, 100, &data, &len));
	CHECK_STR_EQ(data, "second!");
	CHECK_INT_EQ(len, 7);
	free(data);
	struct stat sb;
	CHECK(stat(p, &sb) == 0);
	CHECK_INT_EQ(sb.st_mode & 0777, 0600);
	/* no temporary left behind */
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", fp_test_tmpdir());
	CHECK(system(cmd) == 0);
	CHECK_STATUS(fp_file_read_all(p, 3, &data, &len), FP_ERR_LIMIT);
}

FP_TEST(file_commit_failure_leaves_target)
{
	const char *p = path_in_tmp("target.txt");
	CHECK_OK(fp_file_commit(p, "old", 3, 0644));
	/* a folder that does not exist: the commit fails, naming the path */
	CHECK_STATUS(fp_file_commit(path_in_tmp("nope/x.txt"), "new", 3, 0644), FP_ERR_IO);
	CHECK_STR_CONTAINS(fp_error_msg(), "nope/x.txt");
	/* an aborted streaming write leaves the old file and no temporary */
	struct fp_file_writer w;
	CHECK_OK(fp_file_writer_open(&w, p, 0644));
	fputs("half-written", w.fp);
	fp_file_writer_abort(&w);
	char *data = NULL;
	size_t len = 0;
	CHECK_OK(fp_file_read_all(p, 100, &data, &len));
	CHECK_STR_EQ(data, "old");
	free(data);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", fp_test_tmpdir());
	CHECK(system(cmd) == 0);
}

static const char MAGIC[8] = {'F', 'P', 'T', 'E', 'S', 'T', 0, 0};

FP_TEST(framed_roundtrip_and_refusals)
{
	const char *p = path_in_tmp("f.bin");
	const char payload[] = "model weights";
	CHECK_OK(fp_file_commit_framed(p, MAGIC, 2, payload, sizeof payload, 0644));
	void *out = NULL;
	size_t len = 0;
	uint32_t ver = 0;
	CHECK_OK(fp_file_read_framed(p, MAGIC, 2, 1 << 20, &ver, &out, &len));
	CHECK_INT_EQ(ver, 2);
	CHECK_INT_EQ(len, sizeof payload);
	CHECK(memcmp(out, payload, len) == 0);
	free(out);

	/* "a version above the caller's maximum (FP_ERR_VERSION)" */
	CHECK_STATUS(fp_file_read_framed(p, MAGIC, 1, 1 << 20, &ver, &out, &len), FP_ERR_VERSION);
	CHECK_STR_CONTAINS(fp_error_msg(), p);
	/* "a length above the caller's limit (FP_ERR_LIMIT) before allocating" */
	CHECK_STATUS(fp_file_read_framed(p, MAGIC, 2, 4, &ver, &out, &len), FP_ERR_LIMIT);
	/* "a wrong magic (FP_ERR_FORMAT)" */
	const char other[8] = {'O', 'T', 'H', 'E', 'R', 0, 0, 0};
	CHECK_STATUS(fp_file_read_framed(p, other, 2, 1 << 20, &ver, &out, &len), FP_ERR_FORMAT);

	/* "a hash mismatch (FP_ERR_CHECKSUM)": flip one payload byte */
	int fd = open(p, O_RDWR);
	CHECK(fd >= 0);
	char c;
	CHECK(pread(fd, &c, 1, FP_FRAME_HEADER_SIZE + 3) == 1);
	c ^= 0x20;
	CHECK(pwrite(fd, &c, 1, FP_FRAME_HEADER_SIZE + 3) == 1);
	CHECK_STATUS(fp_file_read_framed(p, MAGIC, 2, 1 << 20, &ver, &out, &len), FP_ERR_CHECKSUM);
	/* "a short file (FP_ERR_FORMAT)" */
	CHECK(ftruncate(fd, FP_FRAME_HEADER_SIZE + 2) == 0);
	close(fd);
	CHECK_STATUS(fp_file_read_framed(p, MAGIC, 2, 1 << 20, &ver, &out, &len), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "truncated");
	fd = open(p, O_RDWR | O_TRUNC);
	close(fd);
	CHECK_STATUS(fp_file_read_framed(p, MAGIC, 2, 1 << 20, &ver, &out, &len), FP_ERR_FORMAT);
	CHECK_STATUS(fp_file_read_framed(path_in_tmp("absent"), MAGIC, 2, 1 << 20, &ver, &out, &len), FP_ERR_NOT_FOUND);
}

/*
 * Crash consistency: "a reader sees the old file or the new one, never a mix".
 * A child rewrites one framed file in a loop, each generation with a payload
 * whose every byte and size depend on the generation; the parent kills it with
 * SIGKILL at random moments, then checks the file is intact and self-consistent.
 */
static void writer_loop(const char *path, uint32_t start)
{
	static unsigned char payload[300000];
	for (uint32_t gen = start;; gen++) {
		size_t n = 1000 + (gen * 7919u) % (sizeof payload - 1000);
		memset(payload, (int)(gen & 0xff), n);
		memcpy(payload, &gen, sizeof gen);
		if (fp_file_commit_framed(path, MAGIC, 1, payload, n, 0644) != FP_OK) _exit(3);
	}
}

/* Statement: a framed file of 8 MiB or more (written around the page cache
 * where the file system allows it) reads back whole and exact, at its exact
 * length, whatever its length modulo the block size; also on tmpfs, which
 * has no O_DIRECT (the usual write is used). */
FP_TEST(large_framed_file_roundtrips)
{
	size_t lens[] = {(size_t)8 << 20, ((size_t)9 << 20) + 13, ((size_t)12 << 20) - FP_FRAME_HEADER_SIZE};
	size_t most = lens[2];
	uint8_t *payload = malloc(most);
	CHECK(payload != NULL);
	for (size_t i = 0; i < most; i++) payload[i] = (uint8_t)(i * 2654435761u >> 13);
	const char *dirs[] = {fp_test_tmpdir(), "/dev/shm"};
	for (int d = 0; d < 2; d++) {
		struct stat sb;
		if (stat(dirs[d], &sb) != 0) continue;
		for (int k = 0; k < 3; k++) {
			char p[4096];
			snprintf(p, sizeof p, "%s/fp_test_large_%ld_%d.bin", dirs[d], (long)getpid(), k);
			CHECK_OK(fp_file_commit_framed(p, MAGIC, 1, payload, lens[k], 0644));
			CHECK(stat(p, &sb) == 0);
			CHECK_INT_EQ((long long)sb.st_size, (long long)(FP_FRAME_HEADER_SIZE + lens[k]));
			void *out = NULL;
			size_t len = 0;
			uint32_t ver = 0;
			CHECK_OK(fp_file_read_framed(p, MAGIC, 1, (size_t)64 << 20, &ver, &out, &len));
			CHECK_INT_EQ(len, lens[k]);
			CHECK(out && memcmp(out, payload, len) == 0);
			free(out);
			unlink(p);
		}
	}
	free(payload);
}

/* fp_dir_lock: "two processes never work in one folder at once"; a holder's
 * pid is named; children forked by the holder keep the lock until they exit;
 * a lock that is freed within wait_s is taken. */
FP_TEST(dir_lock_is_exclusive_and_inherited)
{
	const char *dir = fp_test_tmpdir();
	int a = -1, b = -1;
	CHECK_OK(fp_dir_lock(dir, "fp_test.lock", 0, &a));
	CHECK(a >= 0);
	CHECK_INT_EQ(fp_dir_lock(dir, "fp_test.lock", 0.1, &b), FP_ERR_STATE);
	CHECK_INT_EQ(b, -1);
	char pid[32];
	snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
	CHECK(strstr(fp_error_msg(), pid) != NULL);
	CHECK(strstr(fp_error_msg(), "fp_test.lock") != NULL);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) { /* holds the inherited lock for a while, never touches it */
		struct timespec t = {0, 400 * 1000 * 1000};
		nanosleep(&t, NULL);
		_exit(0);
	}
	close(a);
	CHECK_INT_EQ(fp_dir_lock(dir, "fp_test.lock", 0, &b), FP_ERR_STATE); /* the child still holds it */
	CHECK_OK(fp_dir_lock(dir, "fp_test.lock", 5.0, &b));                 /* taken once the child exits */
	int ws = 0;
	CHECK(waitpid(child, &ws, WNOHANG) == child || waitpid(child, &ws, 0) == child);
	close(b);
	CHECK_INT_EQ(fp_dir_lock("/nonexistent-fedpath-dir", "x.lock", 0, &b), FP_ERR_IO);
	CHECK(strstr(fp_error_msg(), "/nonexistent-fedpath-dir/x.lock") != NULL);
}

FP_TEST(file_commit_survives_kill)
{
	const char *p = path_in_tmp("state.bin");
	unsigned char first[1000];
	uint32_t gen0 = 0;
	memset(first, 0, sizeof first);
	CHECK_OK(fp_file_commit_framed(p, MAGIC, 1, first, sizeof first, 0644));
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	uint32_t last_gen = 0;
	int progressed = 0;
	for (int round = 0; round < 200; round++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) writer_loop(p, (uint32_t)(round + 1) * 100000u);
		struct timespec ts = {0, (long)(rand() % 20000) * 1000L}; /* 0-20 ms */
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		CHECK_MSG(WIFSIGNALED(status), "writer exited on its own (status %d): commit failed", status);
		void *out = NULL;
		size_t len = 0;
		uint32_t ver;
		CHECK_OK(fp_file_read_framed(p, MAGIC, 1, 1 << 20, &ver, &out, &len));
		unsigned char *b = out;
		uint32_t gen;
		memcpy(&gen, b, sizeof gen);
		if (gen == gen0) {
			CHECK_INT_EQ(len, sizeof first);
		} else {
			CHECK_INT_EQ(len, 1000 + (gen * 7919u) % (300000 - 1000));
			for (size_t i = sizeof gen; i < len; i++)
				CHECK_MSG(b[i] == (gen & 0xff), "byte %zu of generation %u is mixed", i, gen);
		}
		if (gen != last_gen) progressed++;
		last_gen = gen;
		free(out);
	}
	/* The test must exercise real replacements, not only the first file. */
	CHECK_MSG(progressed >= 30, "only %d of 200 rounds replaced the file", progressed);
}

/* ---- fp_config.h ---- */

struct cfg {
	long epochs;
	double lr;
	int amp;
	char site[FP_CONFIG_STR_MAX];
	int mode;
};
static const char *const modes[] = {"fedavg", "fedprox", NULL};
static const struct fp_config_key keys[] = {
	{"train", "epochs", FP_CFG_INT, offsetof(struct cfg, epochs), "10", 1, 1000, NULL, "epochs"},
	{"train", "lr", FP_CFG_DOUBLE, offsetof(struct cfg, lr), "0.001", 1e-8, 1, NULL, "learning rate"},
	{"train", "amp", FP_CFG_BOOL, offsetof(struct cfg, amp), "false", 0, 0, NULL, "mixed precision"},
	{"site", "id", FP_CFG_STRING, offsetof(struct cfg, site), "H00", 0, 0, NULL, "site id"},
	{"fed", "mode", FP_CFG_ENUM, offsetof(struct cfg, mode), "fedavg", 0, 0, modes, "strategy"},
};
static const struct fp_config_schema schema = {"test", keys, 5};

/* "every key starts at its default; a file overrides only what it names" */
FP_TEST(config_defaults_and_values)
{
	struct cfg c;
	const char *p = path_in_tmp("site.ini");
	write_text(p, "; comment\n[train]\nepochs = 25\namp = yes\n[fed]\nmode = fedprox\n");
	CHECK_OK(fp_config_load(&schema, p, &c));
	CHECK_INT_EQ(c.epochs, 25);
	CHECK_NEAR(c.lr, 0.001, 0, 0);
	CHECK_INT_EQ(c.amp, 1);
	CHECK_STR_EQ(c.site, "H00");
	CHECK_INT_EQ(c.mode, 1);
	CHECK_OK(fp_config_set(&schema, "train.lr=0.5", &c));
	CHECK_NEAR(c.lr, 0.5, 0, 0);
	CHECK_STATUS(fp_config_set(&schema, "train.lr=5", &c), FP_ERR_CONFIG);
	CHECK_STATUS(fp_config_set(&schema, "nonsense", &c), FP_ERR_CONFIG);
}

static void expect_config_error(const char *text, const char *needle)
{
	struct cfg c;
	const char *p = path_in_tmp("bad.ini");
	write_text(p, text);
	CHECK_STATUS(fp_config_load(&schema, p, &c), FP_ERR_CONFIG);
	CHECK_STR_CONTAINS(fp_error_msg(), p);
	CHECK_STR_CONTAINS(fp_error_msg(), needle);
}

/* unknown key, out-of-range, wrong type, duplicate, syntax: file:line in the message */
FP_TEST(config_errors_name_file_and_line)
{
	expect_config_error("[train]\nepochs = 5\nepoch = 3\n", ":3: unknown key 'epoch' in section [train]");
	expect_config_error("[train]\n\nepochs = 5000\n", ":3: train.epochs: 5000 is out of range");
	expect_config_error("[train]\nlr = fast\n", ":2: train.lr: 'fast' is not a finite number");
	expect_config_error("[train]\nlr = nan\n", ":2: train.lr: 'nan' is not a finite number");
	expect_config_error("[train]\nepochs = 2.5\n", ":2: train.epochs: '2.5' is not an integer");
	expect_config_error("[train]\namp = maybe\n", ":2: train.amp: 'maybe' is not a boolean");
	expect_config_error("[fed]\nmode = fedsgd\n", ":2: fed.mode: 'fedsgd' is not one of: fedavg fedprox");
	expect_config_error("[gpu]\nid = 1\n", ":2: unknown section [gpu]");
	expect_config_error("[train]\nepochs = 5\nepochs = 6\n", ":3: train.epochs is set twice");
	expect_config_error("[train]\nthis line has no equals sign\n", ":2: syntax error");
	struct cfg c;
	CHECK_STATUS(fp_config_load(&schema, path_in_tmp("absent.ini"), &c), FP_ERR_NOT_FOUND);
	CHECK_STR_CONTAINS(fp_error_msg(), "absent.ini");
}

FP_TEST(config_example_lists_every_key)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	CHECK_OK(fp_config_write_example(&schema, f));
	fclose(f);
	CHECK_STR_CONTAINS(buf, "[train]\n");
	CHECK_STR_CONTAINS(buf, "epochs = 10\n");
	CHECK_STR_CONTAINS(buf, "; integer, 1 to 1000\n");
	CHECK_STR_CONTAINS(buf, "; one of: fedavg fedprox\n");
	/* the example itself parses and gives the defaults */
	struct cfg c;
	CHECK_OK(fp_config_load_string(&schema, buf, "example", &c));
	CHECK_INT_EQ(c.epochs, 10);
	free(buf);
}

/* ---- fp_json.h ---- */

FP_TEST(json_errors_and_roundtrip)
{
	json_t *doc = NULL;
	const char *p = path_in_tmp("x.json");
	write_text(p, "{\n  \"a\": 1,\n  \"b\": [1, 2,\n}\n");
	CHECK_STATUS(fp_json_load_file(p, &doc), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), p);
	CHECK_STR_CONTAINS(fp_error_msg(), ":4:");
	write_text(p, "{\"a\": 1, \"a\": 2}");
	CHECK_STATUS(fp_json_load_file(p, &doc), FP_ERR_FORMAT); /* duplicate keys refused */

	json_t *o = json_object();
	json_object_set_new(o, "z", json_integer(3));
	CHECK_OK(fp_json_set_real(o, "x", 0.1));
	CHECK_OK(fp_json_set_real(o, "nan", NAN));
	CHECK_OK(fp_json_save_file(p, o, 0644));
	json_decref(o);
	CHECK_OK(fp_json_load_file(p, &doc));
	double x;
	long long z;
	CHECK_OK(fp_json_get_real(doc, "x", p, &x));
	CHECK(x == 0.1); /* exact round trip */
	CHECK_OK(fp_json_get_int(doc, "z", p, &z));
	CHECK_INT_EQ(z, 3);
	CHECK(json_is_null(json_object_get(doc, "nan")));
	const char *s;
	CHECK_STATUS(fp_json_get_str(doc, "z", p, &s), FP_ERR_FORMAT);
	CHECK_STATUS(fp_json_get_str(doc, "missing", p, &s), FP_ERR_NOT_FOUND);
	CHECK_STR_CONTAINS(fp_error_msg(), "\"missing\"");
	json_decref(doc);
	/* sorted keys: equal documents are byte-identical */
	char *text;
	CHECK_OK(fp_file_read_all(p, 1000, &text, &(size_t){0}));
	CHECK(strstr(text, "\"nan\"") < strstr(text, "\"x\"") && strstr(text, "\"x\"") < strstr(text, "\"z\""));
	free(text);
}

/* ---- fp_log.h ---- */

static char *read_file(const char *p)
{
	char *d = NULL;
	size_t n;
	CHECK_OK(fp_file_read_all(p, 1 << 20, &d, &n));
	return d;
}

FP_TEST(log_json_lines_with_context)
{
	const char *p = path_in_tmp("log.jsonl");
	struct fp_log_options o = {FP_LOG_INFO, 1, p, -1};
	CHECK_OK(fp_log_configure(&o));
	fp_log_set_site("H07");
	fp_log_set_round(3);
	FP_DEBUG("hidden");
	FP_INFO("round started with %d sites", 8);
	fp_log_set_round(-1);
	FP_WARN("two\nlines");
	fp_log_shutdown();
	char *text = read_file(p);
	char *line2 = strchr(text, '\n');
	CHECK(line2 != NULL);
	*line2++ = '\0';
	json_t *a = NULL, *b = NULL;
	CHECK_OK(fp_json_load_string(text, "line1", &a));
	CHECK_OK(fp_json_load_string(line2, "line2", &b));
	CHECK_STR_EQ(json_string_value(json_object_get(a, "level")), "info");
	CHECK_STR_EQ(json_string_value(json_object_get(a, "site")), "H07");
	CHECK_INT_EQ(json_integer_value(json_object_get(a, "round")), 3);
	CHECK_STR_EQ(json_string_value(json_object_get(a, "msg")), "round started with 8 sites");
	const char *ts = json_string_value(json_object_get(a, "ts"));
	CHECK(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z'); /* UTC, milliseconds */
	CHECK(json_object_get(b, "round") == NULL);
	CHECK_STR_EQ(json_string_value(json_object_get(b, "msg")), "two lines"); /* one event, one line */
	CHECK(strstr(line2, "hidden") == NULL);
	json_decref(a);
	json_decref(b);
	free(text);
}

FP_TEST(log_human_lines_no_color)
{
	const char *p = path_in_tmp("log.txt");
	struct fp_log_options o = {FP_LOG_DEBUG, 0, p, -1};
	CHECK_OK(fp_log_configure(&o));
	fp_log_set_site("H01");
	FP_ERROR("disk full");
	fp_log_shutdown();
	char *text = read_file(p);
	CHECK_STR_CONTAINS(text, "Z ERROR [site=H01] disk full\n");
	CHECK(strchr(text, '\x1b') == NULL); /* a file is not a TTY: no colour */
	free(text);
	enum fp_log_level l;
	CHECK_OK(fp_log_level_parse("WARN", &l));
	CHECK_INT_EQ(l, FP_LOG_WARN);
	CHECK_STATUS(fp_log_level_parse("loud", &l), FP_ERR_INVALID_ARG);
	CHECK_STR_CONTAINS(fp_error_msg(), "loud");
}

/* ---- fp_progress.h ---- */

FP_TEST(progress_plain_lines)
{
	const char *p = path_in_tmp("progress.log");
	struct fp_log_options o = {FP_LOG_INFO, 0, p, 0};
	CHECK_OK(fp_log_configure(&o));
	struct fp_progress *pr = NULL;
	CHECK_OK(fp_progress_create("tiling", 100, "tiles", &pr));
	fp_progress_set_interval(pr, 0.1, 1);
	for (int i = 0; i < 100; i++) {
		fp_progress_add(pr, 1);
		if (i == 49) {
			struct timespec ts = {0, 150000000};
			nanosleep(&ts, NULL);
			fp_progress_add(pr, 0);
		}
	}
	fp_progress_destroy(pr);
	fp_progress_destroy(NULL);
	fp_log_shutdown();
	char *text = read_file(p);
	CHECK_STR_CONTAINS(text, "tiling: 50/100 tiles (50%)");
	CHECK_STR_CONTAINS(text, "ETA");
	CHECK_STR_CONTAINS(text, "tiling: done, 100 tiles in");
	free(text);
	char b[16];
	fp_format_duration(3725, b, sizeof b);
	CHECK_STR_EQ(b, "1:02:05");
	fp_format_duration(65, b, sizeof b);
	CHECK_STR_EQ(b, "1:05");
}

FP_TEST(mkdir_p_nested)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/a/b/c", fp_test_tmpdir());
	CHECK_OK(fp_mkdir_p(p, 0755));
	CHECK_OK(fp_mkdir_p(p, 0755)); /* idempotent */
	struct stat sb;
	CHECK(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode));
	snprintf(p, sizeof p, "%s/file", fp_test_tmpdir());
	write_text(p, "x");
	CHECK_STATUS(fp_mkdir_p(p, 0755), FP_ERR_IO);
}

/* ---- TTY behaviour: colour and the redrawn progress bar ---- */
#include <pty.h>

/* Runs fn in a child whose stderr is a pseudo-terminal; returns what it wrote. */
static char *run_on_tty(void (*fn)(void), int no_color)
{
	int master;
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	CHECK(pid >= 0);
	if (pid == 0) {
		if (no_color)
			setenv("NO_COLOR", "", 1);
		else
			unsetenv("NO_COLOR");
		unsetenv("CI");
		fn();
		_exit(0);
	}
	static char buf[65536];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(master, buf + n, sizeof buf - 1 - n);
		if (r <= 0) break; /* EIO once the child has exited */
		n += (size_t)r;
	}
	buf[n] = '\0';
	int status;
	waitpid(pid, &status, 0);
	close(master);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return buf;
}

static void log_one_warning(void)
{
	struct fp_log_options o = {FP_LOG_INFO, 0, NULL, -1};
	fp_log_configure(&o);
	FP_WARN("stain outlier");
}

/* "Colour is used only when the sink is a TTY and NO_COLOR is not set" */
FP_TEST(log_color_only_on_tty_without_no_color)
{
	char *out = run_on_tty(log_one_warning, 0);
	CHECK_STR_CONTAINS(out, "\x1b[33mWARN");
	CHECK_STR_CONTAINS(out, "stain outlier");
	out = run_on_tty(log_one_warning, 1);
	CHECK_STR_CONTAINS(out, "stain outlier");
	CHECK(strchr(out, '\x1b') == NULL);
}

static void progress_on_tty(void)
{
	struct fp_progress *p = NULL;
	if (fp_progress_create("tiling", 40, "tiles", &p) != FP_OK) _exit(1);
	for (int i = 0; i < 40; i++) {
		fp_progress_add(p, 1);
		struct timespec ts = {0, 6000000};
		nanosleep(&ts, NULL);
	}
	fp_progress_destroy(p);
}

/* "On a TTY: one redrawn line ... with rate and ETA" */
FP_TEST(progress_bar_on_tty)
{
	char *out = run_on_tty(progress_on_tty, 0);
	CHECK_STR_CONTAINS(out, "\rtiling [");
	CHECK_STR_CONTAINS(out, "tiles/s ETA");
	CHECK_STR_CONTAINS(out, "40/40 100%");
}
