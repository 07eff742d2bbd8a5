/*
 * test_audit.c: the hash-chained audit log (federate/fp_audit.h): verify
 * accepts an untouched log and catches edits, deletions and reordering;
 * reopening appends; a torn tail is cut; threads never interleave.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_audit.h"
#include "fp_common.h"
#include "fp_test.h"

static void log_path(char *buf, size_t n) { snprintf(buf, n, "%s/audit.jsonl", fp_test_tmpdir()); }

/* Writes n records {"n": i, "update_sha256": ...}; returns the head. */
static void write_log(const char *path, int n, char head[FP_SHA256_HEX_SIZE])
{
	struct fp_audit *a = NULL;
	CHECK_OK(fp_audit_open(path, &a));
	for (int i = 0; i < n; i++) {
		json_t *d = json_pack("{s:i, s:s, s:f}", "n", i, "update_sha256", "ab12", "loss", 0.1 * i);
		CHECK_OK(fp_audit_append(a, "round.update", d));
		json_decref(d);
	}
	uint64_t count = 0;
	fp_audit_head(a, head, &count);
	CHECK_INT_EQ(count, n);
	fp_audit_close(a);
}

/* Splits the file into lines (at most 64), applies `edit`, writes it back. */
struct lines {
	char *l[64];
	int n;
};
static void read_lines(const char *path, struct lines *ls)
{
	char *text = NULL;
	size_t len = 0;
	CHECK_OK(fp_file_read_all(path, 1 << 20, &text, &len));
	ls->n = 0;
	for (char *save = NULL, *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
		ls->l[ls->n++] = strdup(t);
	free(text);
}
static void write_lines(const char *path, struct lines *ls)
{
	struct fp_buf b;
	fp_buf_init(&b, 1 << 20);
	for (int i = 0; i < ls->n; i++) {
		CHECK_OK(fp_buf_append(&b, ls->l[i], strlen(ls->l[i])));
		CHECK_OK(fp_buf_append(&b, "\n", 1));
	}
	CHECK_OK(fp_file_commit(path, b.data, b.len, 0640));
	fp_buf_close(&b);
	for (int i = 0; i < ls->n; i++) free(ls->l[i]);
}

FP_TEST(untouched_log_verifies_with_count_and_head)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	log_path(path, sizeof(path));
	write_log(path, 5, head);
	CHECK_OK(fp_audit_verify(path, NULL, &r));
	CHECK_INT_EQ(r.records, 5);
	CHECK_STR_EQ(r.head, head);
	CHECK_OK(fp_audit_verify(path, head, &r));
	struct lines ls;
	read_lines(path, &ls);
	CHECK_STR_CONTAINS(ls.l[0], "\"prev\":\"0000000000000000");
	CHECK_STR_CONTAINS(ls.l[0], "\"seq\":0");
	write_lines(path, &ls);
}

FP_TEST(edit_detected)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	struct lines ls;
	log_path(path, sizeof(path));
	write_log(path, 5, head);
	read_lines(path, &ls);
	char *p = strstr(ls.l[2], "\"n\":2");
	CHECK(p);
	p[4] = '7'; /* claim another sample count */
	write_lines(path, &ls);
	CHECK_STATUS(fp_audit_verify(path, NULL, &r), FP_ERR_CHECKSUM);
	CHECK_INT_EQ(r.bad_line, 3);
	CHECK_STR_CONTAINS(r.reason, "edited");
}

FP_TEST(whitespace_edit_detected)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	struct lines ls;
	log_path(path, sizeof(path));
	write_log(path, 3, head);
	read_lines(path, &ls);
	char *l = malloc(strlen(ls.l[1]) + 2);
	sprintf(l, " %s", ls.l[1]);
	free(ls.l[1]);
	ls.l[1] = l;
	write_lines(path, &ls);
	CHECK_STATUS(fp_audit_verify(path, NULL, &r), FP_ERR_CHECKSUM);
	CHECK_INT_EQ(r.bad_line, 2);
}

FP_TEST(deletion_detected)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	struct lines ls;
	log_path(path, sizeof(path));
	write_log(path, 5, head);
	read_lines(path, &ls);
	free(ls.l[1]);
	memmove(&ls.l[1], &ls.l[2], (size_t)(ls.n - 2) * sizeof(char *));
	ls.n--;
	write_lines(path, &ls);
	CHECK_STATUS(fp_audit_verify(path, NULL, &r), FP_ERR_CHECKSUM);
	CHECK_INT_EQ(r.bad_line, 2);
	CHECK_STR_CONTAINS(r.reason, "deleted");
}

FP_TEST(reordering_detected)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	struct lines ls;
	log_path(path, sizeof(path));
	write_log(path, 5, head);
	read_lines(path, &ls);
	char *t = ls.l[2];
	ls.l[2] = ls.l[3];
	ls.l[3] = t;
	write_lines(path, &ls);
	CHECK_STATUS(fp_audit_verify(path, NULL, &r), FP_ERR_CHECKSUM);
	CHECK_INT_EQ(r.bad_line, 3);
}

FP_TEST(rechained_forgery_detected_by_hash)
{
	/* Even with seq and prev patched to look right, a changed record's own
	 * hash no longer matches (and re-hashing breaks the next prev). */
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	struct lines ls;
	log_path(path, sizeof(path));
	write_log(path, 4, head);
	read_lines(path, &ls);
	char *p = strstr(ls.l[3], "round.update");
	CHECK(p);
	memcpy(p, "round.UPDATE", 12);
	write_lines(path, &ls);
	CHECK_STATUS(fp_audit_verify(path, NULL, &r), FP_ERR_CHECKSUM);
	CHECK_INT_EQ(r.bad_line, 4);
}

FP_TEST(tail_truncation_needs_the_expected_head)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	struct lines ls;
	log_path(path, sizeof(path));
	write_log(path, 5, head);
	read_lines(path, &ls);
	free(ls.l[4]);
	ls.n--;
	write_lines(path, &ls);
	CHECK_OK(fp_audit_verify(path, NULL, &r)); /* a shorter chain is still a chain */
	CHECK_INT_EQ(r.records, 4);
	CHECK_STATUS(fp_audit_verify(path, head, &r), FP_ERR_CHECKSUM);
	CHECK_STR_CONTAINS(r.reason, "removed from the end");
}

FP_TEST(reopen_appends_after_last_record)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	log_path(path, sizeof(path));
	write_log(path, 2, head);
	struct fp_audit *a = NULL;
	CHECK_OK(fp_audit_open(path, &a));
	char h2[FP_SHA256_HEX_SIZE];
	uint64_t n = 0;
	fp_audit_head(a, h2, &n);
	CHECK_INT_EQ(n, 2);
	CHECK_STR_EQ(h2, head);
	CHECK_OK(fp_audit_append(a, "round.close", NULL));
	CHECK_STATUS(fp_audit_append(a, "Bad Event", NULL), FP_ERR_INVALID_ARG);
	fp_audit_head(a, h2, &n);
	fp_audit_close(a);
	CHECK_OK(fp_audit_verify(path, h2, &r));
	CHECK_INT_EQ(r.records, 3);
}

FP_TEST(torn_tail_cut_on_open)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct fp_audit_report r;
	log_path(path, sizeof(path));
	write_log(path, 3, head);
	FILE *f = fopen(path, "ab");
	CHECK(f);
	fputs("{\"data\":{\"n\":", f); /* a crash inside an append */
	fclose(f);
	CHECK_STATUS(fp_audit_verify(path, NULL, &r), FP_ERR_FORMAT);
	CHECK_INT_EQ(r.bad_line, 4);
	struct fp_audit *a = NULL;
	CHECK_OK(fp_audit_open(path, &a));
	fp_audit_close(a);
	CHECK_OK(fp_audit_verify(path, NULL, &r));
	CHECK_INT_EQ(r.records, 4);
	char *text = NULL;
	size_t len = 0;
	CHECK_OK(fp_file_read_all(path, 1 << 20, &text, &len));
	CHECK_STR_CONTAINS(text, "audit.torn_tail");
	free(text);
}

FP_TEST(damaged_log_refuses_to_open)
{
	char path[1024], head[FP_SHA256_HEX_SIZE];
	struct lines ls;
	log_path(path, sizeof(path));
	write_log(path, 3, head);
	read_lines(path, &ls);
	char *t = ls.l[0];
	ls.l[0] = ls.l[1];
	ls.l[1] = t;
	write_lines(path, &ls);
	struct fp_audit *a = NULL;
	CHECK_STATUS(fp_audit_open(path, &a), FP_ERR_CHECKSUM);
	CHECK(a == NULL);
}

static void *appender(void *arg)
{
	struct fp_audit *a = arg;
	for (int i = 0; i < 50; i++) {
		json_t *d = json_pack("{s:i}", "i", i);
		if (fp_audit_append(a, "thread.event", d) != FP_OK) return (void *)1;
		json_decref(d);
	}
	return NULL;
}

FP_TEST(concurrent_appends_never_interleave)
{
	char path[1024];
	struct fp_audit_report r;
	struct fp_audit *a = NULL;
	pthread_t th[4];
	log_path(path, sizeof(path));
	CHECK_OK(fp_audit_open(path, &a));
	for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, appender, a) == 0);
	for (int i = 0; i < 4; i++) {
		void *ret = NULL;
		CHECK(pthread_join(th[i], &ret) == 0);
		CHECK(ret == NULL);
	}
	fp_audit_close(a);
	CHECK_OK(fp_audit_verify(path, NULL, &r));
	CHECK_INT_EQ(r.records, 200);
}
