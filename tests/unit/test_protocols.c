/*
 * test_protocols.c: frames, control messages and chunked tensor streams
 * (protocols/fp_wire.h, protocols/fp_stream.h), over memory buffers and
 * socketpairs with a sender thread. Each case names the statement it checks.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fp_common.h"
#include "fp_stream.h"
#include "fp_test.h"
#include "fp_wire.h"

/* A memory transport: writes append, reads consume. */
struct mem_io {
	struct fp_io io;
	uint8_t *buf;
	size_t len, pos, cap;
};

static enum fp_status mem_read(void *ctx, void *out, size_t n)
{
	struct mem_io *m = ctx;
	if (n > m->len - m->pos) return FP_FAIL(FP_ERR_IO, "memory transport: end of data");
	memcpy(out, m->buf + m->pos, n);
	m->pos += n;
	return FP_OK;
}

static enum fp_status mem_write(void *ctx, const void *in, size_t n)
{
	struct mem_io *m = ctx;
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->buf = realloc(m->buf, m->cap);
		CHECK(m->buf);
	}
	memcpy(m->buf + m->len, in, n);
	m->len += n;
	return FP_OK;
}

static void mem_init(struct mem_io *m)
{
	memset(m, 0, sizeof(*m));
	m->io.read = mem_read;
	m->io.write = mem_write;
	m->io.ctx = m;
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

FP_TEST(header_roundtrip)
{
	uint8_t h[FP_FRAME_WIRE_HEADER];
	uint16_t type = 0;
	uint32_t len = 0;
	fp_frame_header_encode(FP_FRAME_TASK, 1234, h);
	CHECK(memcmp(h, "FPW1", 4) == 0);
	CHECK_OK(fp_frame_header_decode(h, &type, &len));
	CHECK_INT_EQ(type, FP_FRAME_TASK);
	CHECK_INT_EQ(len, 1234);
}

FP_TEST(header_rejects_bad_magic_version_type_reserved_length)
{
	uint8_t h[FP_FRAME_WIRE_HEADER];
	uint16_t type;
	uint32_t len;
	fp_frame_header_encode(FP_FRAME_HELLO, 10, h);
	h[0] = 'X';
	CHECK_STATUS(fp_frame_header_decode(h, &type, &len), FP_ERR_PROTOCOL);
	fp_frame_header_encode(FP_FRAME_HELLO, 10, h);
	h[5] = 2;
	CHECK_STATUS(fp_frame_header_decode(h, &type, &len), FP_ERR_VERSION);
	fp_frame_header_encode(99, 10, h);
	CHECK_STATUS(fp_frame_header_decode(h, &type, &len), FP_ERR_PROTOCOL);
	fp_frame_header_encode(FP_FRAME_HELLO, 10, h);
	h[15] = 1;
	CHECK_STATUS(fp_frame_header_decode(h, &type, &len), FP_ERR_PROTOCOL);
	fp_frame_header_encode(FP_FRAME_HELLO, FP_PROTO_MAX_CONTROL_BYTES + 1, h);
	CHECK_STATUS(fp_frame_header_decode(h, &type, &len), FP_ERR_LIMIT);
	fp_frame_header_encode(FP_FRAME_CHUNK, FP_PROTO_MAX_CHUNK_FRAME, h);
	CHECK_OK(fp_frame_header_decode(h, &type, &len));
	fp_frame_header_encode(FP_FRAME_CHUNK, FP_PROTO_MAX_CHUNK_FRAME + 1, h);
	CHECK_STATUS(fp_frame_header_decode(h, &type, &len), FP_ERR_LIMIT);
}

FP_TEST(huge_length_refused_before_allocation)
{
	/* A frame claiming 4 GiB - 1: refused after the 16 header bytes, with
	 * no payload read and no buffer grown. */
	struct mem_io m;
	struct fp_frame f;
	mem_init(&m);
	fp_frame_init(&f);
	uint8_t h[FP_FRAME_WIRE_HEADER];
	fp_frame_header_encode(FP_FRAME_CHUNK, 0, h);
	put32(h + 8, 0xffffffffu);
	mem_write(&m, h, sizeof(h));
	mem_write(&m, "payload", 7);
	CHECK_STATUS(fp_frame_recv(&m.io, &f), FP_ERR_LIMIT);
	CHECK_STR_CONTAINS(fp_error_msg(), "4294967295");
	CHECK_INT_EQ(m.pos, FP_FRAME_WIRE_HEADER);
	CHECK(f.data == NULL && f.cap == 0);
	fp_frame_close(&f);
	free(m.buf);
}

FP_TEST(parse_refuses_truncated_payload)
{
	uint8_t buf[FP_FRAME_WIRE_HEADER + 4];
	uint16_t type;
	const uint8_t *p;
	uint32_t plen;
	size_t used;
	fp_frame_header_encode(FP_FRAME_STATUS, 10, buf);
	CHECK_STATUS(fp_frame_parse(buf, sizeof(buf), &type, &p, &plen, &used), FP_ERR_PROTOCOL);
	CHECK_STATUS(fp_frame_parse(buf, 10, &type, &p, &plen, &used), FP_ERR_PROTOCOL);
	fp_frame_header_encode(FP_FRAME_STATUS, 4, buf);
	CHECK_OK(fp_frame_parse(buf, sizeof(buf), &type, &p, &plen, &used));
	CHECK_INT_EQ(used, sizeof(buf));
}

FP_TEST(control_messages_roundtrip)
{
	struct mem_io m;
	struct fp_frame f;
	ProtobufCMessage *out = NULL;
	uint8_t hash[32];
	memset(hash, 0xab, sizeof(hash));
	mem_init(&m);
	fp_frame_init(&f);

	Fedpath__Hello h = FEDPATH__HELLO__INIT;
	h.protocol_version = FP_PROTO_VERSION;
	h.site_id = "H01";
	h.role = "site";
	h.software_version = "0.1.0";
	h.model_hash.data = hash;
	h.model_hash.len = 32;
	CHECK_OK(fp_msg_send(&m.io, FP_FRAME_HELLO, &h.base));
	Fedpath__TensorHeader t = FEDPATH__TENSOR_HEADER__INIT;
	uint64_t dims[2] = {256, 1024};
	t.stream_id = 3;
	t.dtype = 1;
	t.n_dims = 2;
	t.dims = dims;
	t.total_bytes = 4u * 256 * 1024;
	t.chunk_bytes = FP_PROTO_MAX_CHUNK_BYTES;
	t.digest.data = hash;
	t.digest.len = 32;
	Fedpath__Task task = FEDPATH__TASK__INIT;
	task.round = 5;
	task.kind = "train";
	task.base_model_hash.data = hash;
	task.base_model_hash.len = 32;
	task.model = &t;
	CHECK_OK(fp_msg_send(&m.io, FP_FRAME_TASK, &task.base));
	Fedpath__Update u = FEDPATH__UPDATE__INIT;
	u.round = 5;
	u.base_model_hash.data = hash;
	u.base_model_hash.len = 32;
	u.sample_count = 4321;
	u.delta = &t;
	CHECK_OK(fp_msg_send(&m.io, FP_FRAME_UPDATE, &u.base));
	Fedpath__Ack a = FEDPATH__ACK__INIT;
	a.stream_id = 3;
	a.next_chunk = 7;
	a.resend = 1;
	CHECK_OK(fp_msg_send(&m.io, FP_FRAME_ACK, &a.base));
	Fedpath__EvalRequest er = FEDPATH__EVAL_REQUEST__INIT;
	char *metrics[] = {"auc", "c_index"};
	er.round = 6;
	er.model_hash.data = hash;
	er.model_hash.len = 32;
	er.n_metrics = 2;
	er.metrics = metrics;
	CHECK_OK(fp_msg_send(&m.io, FP_FRAME_EVAL_REQUEST, &er.base));
	Fedpath__EvalSummary es = FEDPATH__EVAL_SUMMARY__INIT;
	es.round = 6;
	es.model_hash.data = hash;
	es.model_hash.len = 32;
	es.n_patients = 120;
	es.summary_json = "{\"auc\":0.81}";
	CHECK_OK(fp_msg_send(&m.io, FP_FRAME_EVAL_SUMMARY, &es.base));
	Fedpath__Status s = FEDPATH__STATUS__INIT;
	s.state = "training";
	s.progress = 0.5;
	CHECK_OK(fp_msg_send(&m.io, FP_FRAME_STATUS, &s.base));

	CHECK_OK(fp_msg_recv(&m.io, &f, FP_FRAME_HELLO, &out));
	CHECK_STR_EQ(((Fedpath__Hello *)out)->site_id, "H01");
	fp_msg_free(out);
	CHECK_OK(fp_msg_recv(&m.io, &f, FP_FRAME_TASK, &out));
	CHECK_INT_EQ(((Fedpath__Task *)out)->round, 5);
	CHECK_INT_EQ(((Fedpath__Task *)out)->model->dims[1], 1024);
	fp_msg_free(out);
	CHECK_OK(fp_msg_recv(&m.io, &f, FP_FRAME_UPDATE, &out));
	CHECK_INT_EQ(((Fedpath__Update *)out)->sample_count, 4321);
	fp_msg_free(out);
	CHECK_OK(fp_msg_recv(&m.io, &f, FP_FRAME_ACK, &out));
	CHECK_INT_EQ(((Fedpath__Ack *)out)->next_chunk, 7);
	CHECK(((Fedpath__Ack *)out)->resend);
	fp_msg_free(out);
	CHECK_OK(fp_msg_recv(&m.io, &f, FP_FRAME_EVAL_REQUEST, &out));
	CHECK_STR_EQ(((Fedpath__EvalRequest *)out)->metrics[1], "c_index");
	fp_msg_free(out);
	CHECK_OK(fp_msg_recv(&m.io, &f, FP_FRAME_EVAL_SUMMARY, &out));
	CHECK_INT_EQ(((Fedpath__EvalSummary *)out)->n_patients, 120);
	fp_msg_free(out);
	/* The wrong type where another was expected is a protocol error. */
	CHECK_STATUS(fp_msg_recv(&m.io, &f, FP_FRAME_HELLO, &out), FP_ERR_PROTOCOL);
	CHECK_OK(fp_msg_send_error(&m.io, FP_ERR_AUTH, "site H09 is not allowed"));
	CHECK_STATUS(fp_msg_recv(&m.io, &f, FP_FRAME_TASK, &out), FP_ERR_AUTH);
	CHECK_STR_CONTAINS(fp_error_msg(), "site H09 is not allowed");
	fp_frame_close(&f);
	free(m.buf);
}

FP_TEST(messages_validated_on_unpack)
{
	uint8_t buf[4096], hash[32] = {0};
	size_t n;
	ProtobufCMessage *out = NULL;
	Fedpath__Hello h = FEDPATH__HELLO__INIT;
	h.protocol_version = 2;
	h.site_id = "H01";
	n = protobuf_c_message_pack(&h.base, buf);
	CHECK_STATUS(fp_msg_unpack(FP_FRAME_HELLO, buf, n, &out), FP_ERR_VERSION);
	h.protocol_version = FP_PROTO_VERSION;
	h.site_id = "H01/../x";
	n = protobuf_c_message_pack(&h.base, buf);
	CHECK_STATUS(fp_msg_unpack(FP_FRAME_HELLO, buf, n, &out), FP_ERR_PROTOCOL);

	Fedpath__TensorHeader t = FEDPATH__TENSOR_HEADER__INIT;
	uint64_t dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
	Fedpath__Update u = FEDPATH__UPDATE__INIT;
	u.base_model_hash.data = hash;
	u.base_model_hash.len = 32;
	u.delta = &t;
	t.dtype = 1;
	t.chunk_bytes = FP_PROTO_MAX_CHUNK_BYTES;
	t.digest.data = hash;
	t.digest.len = 32;
	t.total_bytes = FP_PROTO_MAX_TENSOR_BYTES + 1;
	n = protobuf_c_message_pack(&u.base, buf);
	CHECK_STATUS(fp_msg_unpack(FP_FRAME_UPDATE, buf, n, &out), FP_ERR_LIMIT);
	t.total_bytes = 36;
	t.n_dims = 9;
	t.dims = dims;
	n = protobuf_c_message_pack(&u.base, buf);
	CHECK_STATUS(fp_msg_unpack(FP_FRAME_UPDATE, buf, n, &out), FP_ERR_LIMIT);
	t.n_dims = 2;
	dims[0] = 3;
	n = protobuf_c_message_pack(&u.base, buf);
	CHECK_STATUS(fp_msg_unpack(FP_FRAME_UPDATE, buf, n, &out), FP_ERR_PROTOCOL); /* 3*1*4 != 36 */
	dims[1] = 3;
	n = protobuf_c_message_pack(&u.base, buf);
	CHECK_OK(fp_msg_unpack(FP_FRAME_UPDATE, buf, n, &out));
	fp_msg_free(out);
	t.chunk_bytes = FP_PROTO_MAX_CHUNK_BYTES + 1;
	n = protobuf_c_message_pack(&u.base, buf);
	CHECK_STATUS(fp_msg_unpack(FP_FRAME_UPDATE, buf, n, &out), FP_ERR_LIMIT);
	t.chunk_bytes = FP_PROTO_MAX_CHUNK_BYTES;
	t.digest.len = 31;
	n = protobuf_c_message_pack(&u.base, buf);
	CHECK_STATUS(fp_msg_unpack(FP_FRAME_UPDATE, buf, n, &out), FP_ERR_PROTOCOL);
	CHECK_STATUS(fp_msg_unpack(FP_FRAME_UPDATE, (const uint8_t *)"\xff\xff\xff", 3, &out), FP_ERR_PROTOCOL);
}

/* ---- streams over a socketpair, the sender in a thread ---- */

/* Wraps an fd transport: can corrupt one chunk's data, cut the connection
 * before a given chunk, and records the chunk indices it sent. */
struct evil_io {
	struct fp_io io;
	struct fp_fd_io fd;
	long corrupt_index;  /* flip a byte of this chunk's data once; -1 none */
	long cut_before;     /* fail when this chunk is about to go; -1 none */
	long pending_index;  /* index of the chunk whose data comes next */
	long sent[4096];
	size_t n_sent;
};

static enum fp_status evil_write(void *ctx, const void *buf, size_t len)
{
	struct evil_io *e = ctx;
	const uint8_t *p = buf;
	if (len >= FP_FRAME_WIRE_HEADER + FP_PROTO_CHUNK_HEADER && memcmp(p, "FPW1", 4) == 0 && p[7] == FP_FRAME_CHUNK) {
		long idx = 0;
		for (int i = 0; i < 8; i++) idx = (idx << 8) | p[FP_FRAME_WIRE_HEADER + 8 + i];
		if (idx == e->cut_before) {
			shutdown(e->fd.fd, SHUT_RDWR);
			return FP_FAIL(FP_ERR_IO, "test: connection cut before chunk %ld", idx);
		}
		e->sent[e->n_sent++] = idx;
		e->pending_index = idx;
		return e->fd.io.write(e->fd.io.ctx, buf, len);
	}
	if (e->pending_index >= 0 && e->pending_index == e->corrupt_index) {
		uint8_t *copy = malloc(len);
		memcpy(copy, buf, len);
		copy[len / 2] ^= 0x40;
		e->corrupt_index = -1;
		e->pending_index = -1;
		enum fp_status st = e->fd.io.write(e->fd.io.ctx, copy, len);
		free(copy);
		return st;
	}
	e->pending_index = -1;
	return e->fd.io.write(e->fd.io.ctx, buf, len);
}

static enum fp_status evil_read(void *ctx, void *buf, size_t len)
{
	struct evil_io *e = ctx;
	return e->fd.io.read(e->fd.io.ctx, buf, len);
}

static void evil_init(struct evil_io *e, int fd)
{
	memset(e, 0, sizeof(*e));
	fp_fd_io_init(&e->fd, fd);
	e->io.read = evil_read;
	e->io.write = evil_write;
	e->io.ctx = e;
	e->corrupt_index = e->cut_before = e->pending_index = -1;
}

struct sender {
	struct fp_stream_tx *tx;
	struct evil_io *io;
	enum fp_status st;
	char msg[FP_ERROR_MSG_MAX];
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct fp_frame f;
	fp_frame_init(&f);
	s->st = fp_stream_tx_send(s->tx, &s->io->io, &f, 4);
	snprintf(s->msg, sizeof(s->msg), "%s", fp_error_msg());
	fp_frame_close(&f);
	/* Closing our end lets a waiting receiver see the cut. */
	shutdown(s->io->fd.fd, SHUT_RDWR);
	return NULL;
}

struct sink_buf {
	uint8_t *data;
	uint64_t next_off;
	int out_of_order;
};

static enum fp_status sink_copy(void *ctx, uint64_t off, const void *d, size_t n, const uint8_t digest[32])
{
	struct sink_buf *s = ctx;
	(void)digest;
	if (off != s->next_off) s->out_of_order = 1;
	memcpy(s->data + off, d, n);
	s->next_off = off + n;
	return FP_OK;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);
	CHECK(p);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* One connection: sender thread on sv[0] (through evil), receiver here. */
static enum fp_status run_connection(struct fp_stream_tx *tx, struct evil_io *evil, struct fp_stream_rx *rx,
                                     enum fp_status *tx_st)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	int cut = (int)evil->cut_before, corrupt = (int)evil->corrupt_index;
	evil_init(evil, sv[0]);
	evil->cut_before = cut;
	evil->corrupt_index = corrupt;
	struct sender s = {tx, evil, FP_OK, ""};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, sender_main, &s) == 0);
	struct fp_fd_io rio;
	struct fp_frame f;
	fp_fd_io_init(&rio, sv[1]);
	fp_frame_init(&f);
	enum fp_status st = fp_stream_rx_recv(rx, &rio.io, &f);
	shutdown(sv[1], SHUT_RDWR);
	CHECK(pthread_join(th, NULL) == 0);
	fp_frame_close(&f);
	close(sv[0]);
	close(sv[1]);
	*tx_st = s.st;
	return st;
}

FP_TEST(stream_roundtrip_many_chunks)
{
	size_t n = (1u << 20) + 3; /* 16 full chunks of 64 KiB and a 3-byte tail */
	uint8_t *data = pattern(n, 1);
	struct sink_buf got = {calloc(1, n), 0, 0};
	struct fp_stream_tx *tx = NULL;
	struct fp_stream_rx *rx = NULL;
	struct evil_io evil;
	enum fp_status tx_st;
	CHECK_OK(fp_stream_tx_create(11, data, n, FP_PROTO_MIN_CHUNK_BYTES, &tx));
	Fedpath__TensorHeader h = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &h);
	CHECK_OK(fp_stream_rx_create(&h, sink_copy, &got, &rx));
	evil_init(&evil, -1);
	CHECK_OK(run_connection(tx, &evil, rx, &tx_st));
	CHECK_OK(tx_st);
	CHECK(fp_stream_rx_complete(rx));
	CHECK_INT_EQ(fp_stream_rx_next_chunk(rx), 17);
	CHECK_INT_EQ(evil.n_sent, 17);
	CHECK(!got.out_of_order);
	CHECK(memcmp(got.data, data, n) == 0);
	fp_stream_rx_destroy(rx);
	fp_stream_tx_destroy(tx);
	free(got.data);
	free(data);
}

FP_TEST(corrupted_chunk_detected_and_resent)
{
	size_t n = 10 * FP_PROTO_MIN_CHUNK_BYTES;
	uint8_t *data = pattern(n, 2);
	struct sink_buf got = {calloc(1, n), 0, 0};
	struct fp_stream_tx *tx = NULL;
	struct fp_stream_rx *rx = NULL;
	struct evil_io evil;
	enum fp_status tx_st;
	uint64_t sent, resends;
	CHECK_OK(fp_stream_tx_create(12, data, n, FP_PROTO_MIN_CHUNK_BYTES, &tx));
	Fedpath__TensorHeader h = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &h);
	CHECK_OK(fp_stream_rx_create(&h, sink_copy, &got, &rx));
	evil_init(&evil, -1);
	evil.corrupt_index = 3;
	CHECK_OK(run_connection(tx, &evil, rx, &tx_st));
	CHECK_OK(tx_st);
	CHECK_INT_EQ(fp_stream_rx_resends(rx), 1);
	fp_stream_tx_stats(tx, &sent, &resends);
	CHECK_INT_EQ(resends, 1);
	CHECK(sent > 10);
	/* Chunk 3 went twice; the sink still saw every byte once, in order. */
	int threes = 0;
	for (size_t i = 0; i < evil.n_sent; i++) threes += evil.sent[i] == 3;
	CHECK_INT_EQ(threes, 2);
	CHECK(!got.out_of_order);
	CHECK(memcmp(got.data, data, n) == 0);
	fp_stream_rx_destroy(rx);
	fp_stream_tx_destroy(tx);
	free(got.data);
	free(data);
}

FP_TEST(interrupted_stream_resumes_from_last_acked_chunk_after_restart)
{
	size_t n = 20 * FP_PROTO_MIN_CHUNK_BYTES + 100;
	uint8_t *data = pattern(n, 3);
	struct sink_buf got = {calloc(1, n), 0, 0};
	struct fp_stream_tx *tx = NULL;
	struct fp_stream_rx *rx = NULL;
	struct evil_io evil;
	enum fp_status tx_st;
	char state[1024];
	snprintf(state, sizeof(state), "%s/stream.state", fp_test_tmpdir());
	CHECK_OK(fp_stream_tx_create(13, data, n, FP_PROTO_MIN_CHUNK_BYTES, &tx));
	Fedpath__TensorHeader h = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &h);
	CHECK_OK(fp_stream_rx_create(&h, sink_copy, &got, &rx));
	CHECK_OK(fp_stream_rx_set_state_path(rx, state));
	evil_init(&evil, -1);
	evil.cut_before = 9;
	CHECK_STATUS(run_connection(tx, &evil, rx, &tx_st), FP_ERR_IO);
	CHECK(tx_st == FP_ERR_IO);
	uint64_t acked = fp_stream_rx_next_chunk(rx);
	CHECK(acked > 0 && acked <= 9);
	fp_stream_rx_destroy(rx); /* the receiving process "restarts" */

	CHECK_OK(fp_stream_rx_create(&h, sink_copy, &got, &rx));
	CHECK_OK(fp_stream_rx_load_state(rx, state));
	CHECK_INT_EQ(fp_stream_rx_next_chunk(rx), acked);
	CHECK_OK(fp_stream_rx_set_state_path(rx, state));
	evil_init(&evil, -1);
	CHECK_OK(run_connection(tx, &evil, rx, &tx_st));
	CHECK_OK(tx_st);
	CHECK(fp_stream_rx_complete(rx));
	/* Nothing below the acknowledged chunk travelled again. */
	CHECK_INT_EQ(evil.sent[0], acked);
	CHECK_INT_EQ(evil.n_sent, 21 - acked);
	CHECK(memcmp(got.data, data, n) == 0);
	/* A state file is refused for another tensor. */
	Fedpath__TensorHeader other = h;
	other.stream_id = 99;
	struct fp_stream_rx *rx2 = NULL;
	CHECK_OK(fp_stream_rx_create(&other, NULL, NULL, &rx2));
	CHECK_STATUS(fp_stream_rx_load_state(rx2, state), FP_ERR_STATE);
	fp_stream_rx_destroy(rx2);
	fp_stream_rx_destroy(rx);
	fp_stream_tx_destroy(tx);
	free(got.data);
	free(data);
}

/* Builds a CHUNK payload by hand. */
static size_t make_chunk(uint8_t *out, uint64_t sid, uint64_t idx, uint64_t off, const uint8_t *d, uint32_t n)
{
	struct fp_chunk_header c = {sid, idx, off, n, {0}};
	fp_sha256(d, n, c.digest);
	fp_chunk_header_encode(&c, out);
	memcpy(out + FP_PROTO_CHUNK_HEADER, d, n);
	return FP_PROTO_CHUNK_HEADER + n;
}

FP_TEST(chunks_that_do_not_form_the_tensor_fail_checksum)
{
	size_t cb = FP_PROTO_MIN_CHUNK_BYTES, n = 2 * cb;
	uint8_t *a = pattern(n, 4), *b = pattern(n, 5);
	uint8_t *frame = malloc(FP_PROTO_CHUNK_HEADER + cb);
	struct fp_stream_tx *tx = NULL;
	struct fp_stream_rx *rx = NULL;
	Fedpath__Ack ack;
	int reply;
	CHECK_OK(fp_stream_tx_create(5, a, n, (uint32_t)cb, &tx));
	Fedpath__TensorHeader h = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &h);
	CHECK_OK(fp_stream_rx_create(&h, NULL, NULL, &rx));
	size_t len = make_chunk(frame, 5, 0, 0, a, (uint32_t)cb);
	CHECK_OK(fp_stream_rx_on_chunk(rx, frame, len, &ack, &reply));
	CHECK(reply && ack.next_chunk == 1 && !ack.complete);
	/* Chunk 1 of another tensor: valid on its own, wrong for this one. */
	len = make_chunk(frame, 5, 1, cb, b + cb, (uint32_t)cb);
	CHECK_STATUS(fp_stream_rx_on_chunk(rx, frame, len, &ack, &reply), FP_ERR_CHECKSUM);
	fp_stream_rx_destroy(rx);
	fp_stream_tx_destroy(tx);
	free(frame);
	free(a);
	free(b);
}

FP_TEST(chunk_wrong_stream_offset_order_or_length_is_protocol_error)
{
	size_t cb = FP_PROTO_MIN_CHUNK_BYTES, n = 3 * cb;
	uint8_t *a = pattern(n, 6);
	uint8_t *frame = malloc(FP_PROTO_CHUNK_HEADER + cb);
	struct fp_stream_tx *tx = NULL;
	struct fp_stream_rx *rx = NULL;
	Fedpath__Ack ack;
	int reply;
	CHECK_OK(fp_stream_tx_create(6, a, n, (uint32_t)cb, &tx));
	Fedpath__TensorHeader h = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &h);
	CHECK_OK(fp_stream_rx_create(&h, NULL, NULL, &rx));
	size_t len = make_chunk(frame, 7, 0, 0, a, (uint32_t)cb);
	CHECK_STATUS(fp_stream_rx_on_chunk(rx, frame, len, &ack, &reply), FP_ERR_PROTOCOL);
	len = make_chunk(frame, 6, 1, cb, a + cb, (uint32_t)cb);
	CHECK_STATUS(fp_stream_rx_on_chunk(rx, frame, len, &ack, &reply), FP_ERR_PROTOCOL);
	len = make_chunk(frame, 6, 0, 8, a, (uint32_t)cb);
	CHECK_STATUS(fp_stream_rx_on_chunk(rx, frame, len, &ack, &reply), FP_ERR_PROTOCOL);
	len = make_chunk(frame, 6, 0, 0, a, (uint32_t)cb - 1);
	CHECK_STATUS(fp_stream_rx_on_chunk(rx, frame, len, &ack, &reply), FP_ERR_PROTOCOL);
	CHECK_STATUS(fp_stream_rx_on_chunk(rx, frame, len - 1, &ack, &reply), FP_ERR_PROTOCOL);
	CHECK_INT_EQ(fp_stream_rx_next_chunk(rx), 0);
	fp_stream_rx_destroy(rx);
	fp_stream_tx_destroy(tx);
	free(frame);
	free(a);
}

FP_TEST(endless_corruption_gives_up_with_checksum_error)
{
	size_t cb = FP_PROTO_MIN_CHUNK_BYTES;
	uint8_t *a = pattern(cb, 7);
	uint8_t *frame = malloc(FP_PROTO_CHUNK_HEADER + cb);
	struct fp_stream_tx *tx = NULL;
	struct fp_stream_rx *rx = NULL;
	Fedpath__Ack ack;
	int reply;
	CHECK_OK(fp_stream_tx_create(8, a, cb, (uint32_t)cb, &tx));
	Fedpath__TensorHeader h = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &h);
	CHECK_OK(fp_stream_rx_create(&h, NULL, NULL, &rx));
	size_t len = make_chunk(frame, 8, 0, 0, a, (uint32_t)cb);
	frame[len - 1] ^= 1;
	for (unsigned i = 0; i < FP_STREAM_MAX_RESENDS; i++) {
		CHECK_OK(fp_stream_rx_on_chunk(rx, frame, len, &ack, &reply));
		CHECK(reply && ack.resend && ack.next_chunk == 0);
	}
	CHECK_STATUS(fp_stream_rx_on_chunk(rx, frame, len, &ack, &reply), FP_ERR_CHECKSUM);
	fp_stream_rx_destroy(rx);
	fp_stream_tx_destroy(tx);
	free(frame);
	free(a);
}

FP_TEST(stream_geometry_limits)
{
	uint8_t b[1] = {0};
	struct fp_stream_tx *tx = NULL;
	CHECK_STATUS(fp_stream_tx_create(1, b, 1, FP_PROTO_MAX_CHUNK_BYTES + 1, &tx), FP_ERR_LIMIT);
	CHECK_STATUS(fp_stream_tx_create(1, b, 1, FP_PROTO_MIN_CHUNK_BYTES - 1, &tx), FP_ERR_LIMIT);
	CHECK_STATUS(fp_stream_tx_create(1, b, FP_PROTO_MAX_TENSOR_BYTES + 1, FP_PROTO_MAX_CHUNK_BYTES, &tx), FP_ERR_LIMIT);
	CHECK(tx == NULL);
}
