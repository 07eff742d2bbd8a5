/*
 * stream.c: chunked tensor streams (fp_stream.h). Both ends are small state
 * machines over an fp_io; nothing here knows about rounds or models, so the
 * TLS channel, the MPI transport and tests drive the same code.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "fp_arith.h"
#include "fp_file.h"
#include "fp_hash.h"
#include "fp_stream.h"

#define TENSOR_DIGEST_TAG "fedpath-tensor-v1"
static const char STATE_MAGIC[8] = {'F', 'P', 'S', 'T', 'R', 'M', 0, 0};

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) v = (v << 8) | p[i];
	return v;
}

void fp_chunk_header_encode(const struct fp_chunk_header *h, uint8_t out[FP_PROTO_CHUNK_HEADER])
{
	put_be(out, h->stream_id, 8);
	put_be(out + 8, h->index, 8);
	put_be(out + 16, h->offset, 8);
	put_be(out + 24, h->len, 4);
	put_be(out + 28, 0, 4);
	memcpy(out + 32, h->digest, 32);
}

enum fp_status fp_chunk_parse(const uint8_t *payload, size_t len, struct fp_chunk_header *h,
                              const uint8_t **data)
{
	if (len < FP_PROTO_CHUNK_HEADER)
		return FP_FAIL(FP_ERR_PROTOCOL, "CHUNK payload of %zu bytes is shorter than its %u-byte header",
		               len, FP_PROTO_CHUNK_HEADER);
	h->stream_id = get_be(payload, 8);
	h->index = get_be(payload + 8, 8);
	h->offset = get_be(payload + 16, 8);
	h->len = (uint32_t)get_be(payload + 24, 4);
	if (get_be(payload + 28, 4) != 0) return FP_FAIL(FP_ERR_PROTOCOL, "CHUNK header: reserved field not zero");
	memcpy(h->digest, payload + 32, 32);
	if (h->len > FP_PROTO_MAX_CHUNK_BYTES)
		return FP_FAIL(FP_ERR_LIMIT, "CHUNK %llu: %u data bytes, limit %u", (unsigned long long)h->index,
		               h->len, FP_PROTO_MAX_CHUNK_BYTES);
	if (h->len != len - FP_PROTO_CHUNK_HEADER)
		return FP_FAIL(FP_ERR_PROTOCOL, "CHUNK %llu: header says %u data bytes, frame carries %zu",
		               (unsigned long long)h->index, h->len, len - FP_PROTO_CHUNK_HEADER);
	*data = payload + FP_PROTO_CHUNK_HEADER;
	return FP_OK;
}

/* Checks the geometry of a stream and returns its chunk count. */
static enum fp_status stream_geometry(uint64_t total, uint32_t chunk_bytes, uint64_t *n_chunks)
{
	if (total > FP_PROTO_MAX_TENSOR_BYTES)
		return FP_FAIL(FP_ERR_LIMIT, "tensor stream of %llu bytes, limit %llu", (unsigned long long)total,
		               (unsigned long long)FP_PROTO_MAX_TENSOR_BYTES);
	if (chunk_bytes < FP_PROTO_MIN_CHUNK_BYTES || chunk_bytes > FP_PROTO_MAX_CHUNK_BYTES)
		return FP_FAIL(FP_ERR_LIMIT, "chunk size %u outside [%u, %u]", chunk_bytes,
		               FP_PROTO_MIN_CHUNK_BYTES, FP_PROTO_MAX_CHUNK_BYTES);
	*n_chunks = total / chunk_bytes + (total % chunk_bytes != 0);
	return FP_OK;
}

enum fp_status fp_stream_tensor_digest(uint64_t total, uint32_t chunk_bytes, const uint8_t *digests, uint64_t n,
                                       uint8_t out[32])
{
	struct fp_sha256 *h = NULL;
	uint8_t geo[12];
	put_be(geo, total, 8);
	put_be(geo + 8, chunk_bytes, 4);
	enum fp_status st;
	FP_CHECK(st, fp_sha256_create(&h));
	FP_CHECK(st, fp_sha256_update(h, TENSOR_DIGEST_TAG, strlen(TENSOR_DIGEST_TAG)));
	FP_CHECK(st, fp_sha256_update(h, geo, sizeof(geo)));
	FP_CHECK(st, fp_sha256_update(h, digests, (size_t)n * 32));
	FP_CHECK(st, fp_sha256_final(h, out));
fail:
	fp_sha256_destroy(h);
	return st;
}

/* ---- sender ---- */

struct fp_stream_tx {
	uint64_t stream_id, total, n_chunks;
	uint32_t chunk_bytes;
	const uint8_t *data;
	uint8_t *digests; /* (n_chunks, 32) */
	uint8_t digest[32];
	uint64_t sent, resends;
};

enum fp_status fp_stream_tx_create(uint64_t stream_id, const void *data, uint64_t total_bytes,
                                   uint32_t chunk_bytes, struct fp_stream_tx **out)
{
	struct fp_stream_tx *tx = calloc(1, sizeof(*tx));
	if (!tx) return FP_FAIL(FP_ERR_NOMEM, "tensor stream: cannot allocate the sender");
	enum fp_status st;
	FP_CHECK(st, stream_geometry(total_bytes, chunk_bytes, &tx->n_chunks));
	FP_CHECK(st, fp_alloc_array(tx->n_chunks ? (size_t)tx->n_chunks : 1, 32, (void **)&tx->digests,
	                            "tensor stream chunk digests"));
	tx->stream_id = stream_id;
	tx->total = total_bytes;
	tx->chunk_bytes = chunk_bytes;
	tx->data = data;
	for (uint64_t i = 0; i < tx->n_chunks; i++) {
		uint64_t off = i * chunk_bytes, len = total_bytes - off < chunk_bytes ? total_bytes - off : chunk_bytes;
		FP_CHECK(st, fp_sha256(tx->data + off, (size_t)len, tx->digests + i * 32));
	}
	FP_CHECK(st, fp_stream_tensor_digest(total_bytes, chunk_bytes, tx->digests, tx->n_chunks, tx->digest));
	*out = tx;
	return FP_OK;
fail:
	fp_stream_tx_destroy(tx);
	return st;
}

enum fp_status fp_stream_tx_copy(const struct fp_stream_tx *src, struct fp_stream_tx **out)
{
	struct fp_stream_tx *tx = calloc(1, sizeof(*tx));
	if (!tx) return FP_FAIL(FP_ERR_NOMEM, "tensor stream: cannot allocate the sender");
	*tx = *src;
	tx->sent = tx->resends = 0;
	size_t n = src->n_chunks ? (size_t)src->n_chunks : 1;
	tx->digests = malloc(n * 32); /* n * 32 was allocated once for src */
	if (!tx->digests) {
		free(tx);
		return FP_FAIL(FP_ERR_NOMEM, "tensor stream: cannot copy %zu chunk digests", n);
	}
	memcpy(tx->digests, src->digests, n * 32);
	*out = tx;
	return FP_OK;
}

void fp_stream_tx_destroy(struct fp_stream_tx *tx)
{
	if (!tx) return;
	free(tx->digests);
	free(tx);
}

void fp_stream_tx_header(const struct fp_stream_tx *tx, Fedpath__TensorHeader *h)
{
	h->stream_id = tx->stream_id;
	h->dtype = 1;
	h->total_bytes = tx->total;
	h->chunk_bytes = tx->chunk_bytes;
	h->digest.data = (uint8_t *)tx->digest;
	h->digest.len = 32;
}

void fp_stream_tx_stats(const struct fp_stream_tx *tx, uint64_t *chunks_sent, uint64_t *resends)
{
	if (chunks_sent) *chunks_sent = tx->sent;
	if (resends) *resends = tx->resends;
}

static enum fp_status tx_send_chunk(struct fp_stream_tx *tx, const struct fp_io *io, uint64_t i)
{
	struct fp_chunk_header h;
	uint8_t hdr[FP_PROTO_CHUNK_HEADER];
	h.stream_id = tx->stream_id;
	h.index = i;
	h.offset = i * tx->chunk_bytes;
	h.len = (uint32_t)(tx->total - h.offset < tx->chunk_bytes ? tx->total - h.offset : tx->chunk_bytes);
	memcpy(h.digest, tx->digests + i * 32, 32);
	fp_chunk_header_encode(&h, hdr);
	FP_TRY(fp_frame_send(io, FP_FRAME_CHUNK, hdr, sizeof(hdr), tx->data + h.offset, h.len));
	tx->sent++; /* whole chunks only: one cut mid-frame is not counted */
	return FP_OK;
}

static enum fp_status tx_recv_ack(struct fp_stream_tx *tx, const struct fp_io *io, struct fp_frame *f,
                                  Fedpath__Ack **ack)
{
	ProtobufCMessage *m = NULL;
	FP_TRY(fp_msg_recv(io, f, FP_FRAME_ACK, &m));
	Fedpath__Ack *a = (Fedpath__Ack *)m;
	if (a->stream_id != tx->stream_id || a->next_chunk > tx->n_chunks) {
		enum fp_status st = FP_FAIL(FP_ERR_PROTOCOL, "ACK for stream %llu chunk %llu, sending stream %llu of %llu chunks",
		                            (unsigned long long)a->stream_id, (unsigned long long)a->next_chunk,
		                            (unsigned long long)tx->stream_id, (unsigned long long)tx->n_chunks);
		fp_msg_free(m);
		return st;
	}
	*ack = a;
	return FP_OK;
}

enum fp_status fp_stream_tx_send(struct fp_stream_tx *tx, const struct fp_io *io,
                                 struct fp_frame *scratch, unsigned window)
{
	Fedpath__Ack *ack = NULL;
	if (window == 0) window = FP_STREAM_DEFAULT_WINDOW;
	FP_TRY(tx_recv_ack(tx, io, scratch, &ack));
	uint64_t acked = ack->next_chunk, next = acked;
	int complete = ack->complete;
	fp_msg_free(&ack->base);
	ack = NULL; /* the fail path frees whatever ack holds */
	enum fp_status st = FP_OK;
	while (!complete) {
		while (next < tx->n_chunks && next - acked < window) FP_CHECK(st, tx_send_chunk(tx, io, next++));
		FP_CHECK(st, tx_recv_ack(tx, io, scratch, &ack));
		if (ack->resend) {
			if (++tx->resends > FP_STREAM_MAX_RESENDS) {
				st = FP_FAIL(FP_ERR_CHECKSUM, "tensor stream %llu: receiver asked for %llu resends, limit %u",
				             (unsigned long long)tx->stream_id, (unsigned long long)tx->resends,
				             FP_STREAM_MAX_RESENDS);
				goto fail;
			}
			acked = next = ack->next_chunk;
		} else if (ack->next_chunk < acked || ack->next_chunk > next) {
			st = FP_FAIL(FP_ERR_PROTOCOL, "tensor stream %llu: ACK of chunk %llu outside the window [%llu, %llu]",
			             (unsigned long long)tx->stream_id, (unsigned long long)ack->next_chunk,
			             (unsigned long long)acked, (unsigned long long)next);
			goto fail;
		} else {
			acked = ack->next_chunk;
		}
		complete = ack->complete;
		fp_msg_free(&ack->base);
		ack = NULL;
	}
	return FP_OK;
fail:
	fp_msg_free(ack ? &ack->base : NULL);
	return st;
}

/* ---- receiver ---- */

struct fp_stream_rx {
	uint64_t stream_id, total, n_chunks, next, resends;
	uint32_t chunk_bytes;
	uint8_t digest[32];
	uint8_t *digests; /* (n_chunks, 32) */
	int resend_pending, complete;
	fp_stream_sink_fn sink;
	void *sink_ctx;
	char *state_path;
};

enum fp_status fp_stream_rx_create(const Fedpath__TensorHeader *h, fp_stream_sink_fn sink,
                                   void *sink_ctx, struct fp_stream_rx **out)
{
	struct fp_stream_rx *rx = calloc(1, sizeof(*rx));
	if (!rx) return FP_FAIL(FP_ERR_NOMEM, "tensor stream: cannot allocate the receiver");
	enum fp_status st;
	FP_CHECK(st, stream_geometry(h->total_bytes, h->chunk_bytes, &rx->n_chunks));
	if (h->digest.len != 32) {
		st = FP_FAIL(FP_ERR_PROTOCOL, "tensor header: digest of %zu bytes, expected 32", h->digest.len);
		goto fail;
	}
	FP_CHECK(st, fp_alloc_array(rx->n_chunks ? (size_t)rx->n_chunks : 1, 32, (void **)&rx->digests,
	                            "tensor stream chunk digests"));
	rx->stream_id = h->stream_id;
	rx->total = h->total_bytes;
	rx->chunk_bytes = h->chunk_bytes;
	memcpy(rx->digest, h->digest.data, 32);
	rx->sink = sink;
	rx->sink_ctx = sink_ctx;
	if (rx->n_chunks == 0) {
		uint8_t d[32];
		FP_CHECK(st, fp_stream_tensor_digest(0, rx->chunk_bytes, rx->digests, 0, d));
		if (CRYPTO_memcmp(d, rx->digest, 32) != 0) {
			st = FP_FAIL(FP_ERR_CHECKSUM, "tensor stream %llu: empty tensor with a wrong digest",
			             (unsigned long long)rx->stream_id);
			goto fail;
		}
		rx->complete = 1;
	}
	*out = rx;
	return FP_OK;
fail:
	fp_stream_rx_destroy(rx);
	return st;
}

void fp_stream_rx_destroy(struct fp_stream_rx *rx)
{
	if (!rx) return;
	free(rx->digests);
	free(rx->state_path);
	free(rx);
}

uint64_t fp_stream_rx_next_chunk(const struct fp_stream_rx *rx) { return rx->next; }
int fp_stream_rx_complete(const struct fp_stream_rx *rx) { return rx->complete; }
uint64_t fp_stream_rx_resends(const struct fp_stream_rx *rx) { return rx->resends; }

enum fp_status fp_stream_rx_set_state_path(struct fp_stream_rx *rx, const char *path)
{
	char *p = strdup(path);
	if (!p) return FP_FAIL(FP_ERR_NOMEM, "tensor stream: cannot copy the state path");
	free(rx->state_path);
	rx->state_path = p;
	return FP_OK;
}

/* State file payload: stream_id, total, next (u64be each), chunk_bytes
 * (u32be), tensor digest, then next * 32 bytes of chunk digests. */
static enum fp_status rx_save(const struct fp_stream_rx *rx)
{
	size_t n = 28 + 32 + (size_t)rx->next * 32;
	uint8_t *buf = malloc(n);
	if (!buf) return FP_FAIL(FP_ERR_NOMEM, "tensor stream state: cannot allocate %zu bytes", n);
	put_be(buf, rx->stream_id, 8);
	put_be(buf + 8, rx->total, 8);
	put_be(buf + 16, rx->next, 8);
	put_be(buf + 24, rx->chunk_bytes, 4);
	memcpy(buf + 28, rx->digest, 32);
	memcpy(buf + 60, rx->digests, (size_t)rx->next * 32);
	enum fp_status st = fp_file_commit_framed(rx->state_path, STATE_MAGIC, 1, buf, n, 0600);
	free(buf);
	return st;
}

enum fp_status fp_stream_rx_load_state(struct fp_stream_rx *rx, const char *path)
{
	void *payload = NULL;
	size_t len = 0;
	uint32_t version;
	enum fp_status st;
	/* The state of the largest legal stream bounds the read. */
	size_t limit = 60 + (size_t)rx->n_chunks * 32;
	FP_CHECK(st, fp_file_read_framed(path, STATE_MAGIC, 1, limit, &version, &payload, &len));
	const uint8_t *p = payload;
	if (len < 60) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: stream state of %zu bytes is truncated", path, len);
		goto fail;
	}
	uint64_t next = get_be(p + 16, 8);
	if (get_be(p, 8) != rx->stream_id || get_be(p + 8, 8) != rx->total ||
	    get_be(p + 24, 4) != rx->chunk_bytes || memcmp(p + 28, rx->digest, 32) != 0) {
		st = FP_FAIL(FP_ERR_STATE, "%s: saved state belongs to another tensor stream; start over", path);
		goto fail;
	}
	if (next > rx->n_chunks || len != 60 + (size_t)next * 32) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: next chunk %llu and %zu bytes do not agree", path,
		             (unsigned long long)next, len);
		goto fail;
	}
	memcpy(rx->digests, p + 60, (size_t)next * 32);
	rx->next = next;
	if (next == rx->n_chunks) {
		uint8_t d[32];
		FP_CHECK(st, fp_stream_tensor_digest(rx->total, rx->chunk_bytes, rx->digests, rx->n_chunks, d));
		if (CRYPTO_memcmp(d, rx->digest, 32) != 0) {
			st = FP_FAIL(FP_ERR_CHECKSUM, "%s: saved chunks do not form the announced tensor", path);
			goto fail;
		}
		rx->complete = 1;
	}
	st = FP_OK;
fail:
	free(payload);
	return st;
}

enum fp_status fp_stream_rx_on_chunk(struct fp_stream_rx *rx, const uint8_t *payload, size_t len,
                                     Fedpath__Ack *ack, int *reply)
{
	struct fp_chunk_header h;
	const uint8_t *data;
	*reply = 0;
	FP_TRY(fp_chunk_parse(payload, len, &h, &data));
	if (h.stream_id != rx->stream_id)
		return FP_FAIL(FP_ERR_PROTOCOL, "CHUNK for stream %llu while receiving stream %llu",
		               (unsigned long long)h.stream_id, (unsigned long long)rx->stream_id);
	if (rx->complete)
		return FP_FAIL(FP_ERR_PROTOCOL, "CHUNK %llu after stream %llu completed", (unsigned long long)h.index,
		               (unsigned long long)rx->stream_id);
	if (h.index != rx->next) {
		/* Chunks already in flight when a resend was asked for are dropped. */
		if (rx->resend_pending && h.index > rx->next) return FP_OK;
		return FP_FAIL(FP_ERR_PROTOCOL, "CHUNK %llu out of order, expected %llu", (unsigned long long)h.index,
		               (unsigned long long)rx->next);
	}
	uint64_t off = h.index * rx->chunk_bytes;
	uint64_t want = rx->total - off < rx->chunk_bytes ? rx->total - off : rx->chunk_bytes;
	if (h.offset != off || h.len != want)
		return FP_FAIL(FP_ERR_PROTOCOL, "CHUNK %llu: offset %llu length %u, expected offset %llu length %llu",
		               (unsigned long long)h.index, (unsigned long long)h.offset, h.len,
		               (unsigned long long)off, (unsigned long long)want);
	uint8_t d[32];
	FP_TRY(fp_sha256(data, h.len, d));
	fedpath__ack__init(ack);
	ack->stream_id = rx->stream_id;
	if (CRYPTO_memcmp(d, h.digest, 32) != 0) {
		if (++rx->resends > FP_STREAM_MAX_RESENDS)
			return FP_FAIL(FP_ERR_CHECKSUM, "tensor stream %llu: chunk %llu failed its digest; %llu resends, limit %u",
			               (unsigned long long)rx->stream_id, (unsigned long long)h.index,
			               (unsigned long long)rx->resends, FP_STREAM_MAX_RESENDS);
		rx->resend_pending = 1;
		ack->next_chunk = rx->next;
		ack->resend = 1;
		*reply = 1;
		return FP_OK;
	}
	if (rx->sink) FP_TRY(rx->sink(rx->sink_ctx, off, data, h.len, d));
	memcpy(rx->digests + rx->next * 32, d, 32);
	rx->next++;
	rx->resend_pending = 0;
	if (rx->next == rx->n_chunks) {
		uint8_t td[32];
		FP_TRY(fp_stream_tensor_digest(rx->total, rx->chunk_bytes, rx->digests, rx->n_chunks, td));
		if (CRYPTO_memcmp(td, rx->digest, 32) != 0)
			return FP_FAIL(FP_ERR_CHECKSUM, "tensor stream %llu: every chunk matched its digest but the tensor digest does not",
			               (unsigned long long)rx->stream_id);
		rx->complete = 1;
	}
	if (rx->state_path) FP_TRY(rx_save(rx));
	ack->next_chunk = rx->next;
	ack->complete = rx->complete;
	*reply = 1;
	return FP_OK;
}

enum fp_status fp_stream_rx_recv(struct fp_stream_rx *rx, const struct fp_io *io, struct fp_frame *scratch)
{
	Fedpath__Ack ack = FEDPATH__ACK__INIT;
	ack.stream_id = rx->stream_id;
	ack.next_chunk = rx->next;
	ack.complete = rx->complete;
	rx->resend_pending = 0;
	FP_TRY(fp_msg_send(io, FP_FRAME_ACK, &ack.base));
	while (!rx->complete) {
		int reply = 0;
		FP_TRY(fp_frame_recv(io, scratch));
		if (scratch->type == FP_FRAME_ERROR) {
			ProtobufCMessage *m = NULL;
			FP_TRY(fp_msg_unpack(FP_FRAME_ERROR, scratch->data, scratch->len, &m));
			enum fp_status st = FP_FAIL(FP_ERR_PROTOCOL, "tensor stream %llu: peer gave up: %s",
			                            (unsigned long long)rx->stream_id, ((Fedpath__Error *)m)->reason);
			fp_msg_free(m);
			return st;
		}
		if (scratch->type != FP_FRAME_CHUNK)
			return FP_FAIL(FP_ERR_PROTOCOL, "tensor stream %llu: expected CHUNK, got %s",
			               (unsigned long long)rx->stream_id, fp_frame_type_str(scratch->type));
		FP_TRY(fp_stream_rx_on_chunk(rx, scratch->data, scratch->len, &ack, &reply));
		if (reply) FP_TRY(fp_msg_send(io, FP_FRAME_ACK, &ack.base));
	}
	return FP_OK;
}
