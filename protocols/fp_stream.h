/*
 * fp_stream.h: chunked, resumable tensor streams over frames.
 *
 * A tensor of total_bytes travels as CHUNK frames of at most chunk_bytes
 * (<= 4 MiB) each. A CHUNK payload is a 64-byte header, big-endian, then data:
 *   0  8  stream id        16  8  byte offset (= index * chunk_bytes)
 *   8  8  chunk index      24  4  data length   28  4  reserved (0)
 *   32 32 SHA-256 of the data
 * The tensor digest (TensorHeader.digest) is
 *   SHA-256("fedpath-tensor-v1" || u64be total_bytes || u32be chunk_bytes
 *           || digest of chunk 0 || ... || digest of chunk n-1),
 * so a receiver checks the whole tensor from chunk digests alone, and its
 * resumable state is small (next chunk + the digests so far).
 *
 * Exchange, after the sender's TASK/UPDATE carrying the TensorHeader:
 *   receiver -> ACK{stream_id, next_chunk = resume point, complete}
 *   sender   -> CHUNK next_chunk, next_chunk+1, ... (at most `window` unacked)
 *   receiver -> ACK{next_chunk} after each chunk it stored, or
 *               ACK{next_chunk = i, resend} when chunk i failed its digest
 *               (later in-flight chunks are dropped until i arrives again),
 *               ACK{complete} after the last chunk when the tensor digest matched.
 * Testable statements (tests/unit/test_protocols.c):
 *  - a corrupted chunk is detected by its digest, re-requested and re-sent; the
 *    sink sees every byte exactly once, in order;
 *  - a stream cut after k acknowledged chunks resumes on a new connection from
 *    chunk k (in the same process, or from the state file after a restart), and
 *    the sender sends nothing below k again;
 *  - chunks that are valid one by one but do not form the announced tensor
 *    fail with FP_ERR_CHECKSUM, as do more than FP_STREAM_MAX_RESENDS resends;
 *  - a chunk at the wrong offset, of the wrong length or for another stream
 *    is FP_ERR_PROTOCOL.
 * Ownership: tx borrows the tensor bytes until destroyed; rx owns its digests
 * and calls the sink, which must have stored a chunk (durably, if the stream
 * is to survive a restart) before returning FP_OK.
 */
#ifndef FP_STREAM_H
#define FP_STREAM_H

#include <stdint.h>

#include "fp_wire.h"

#define FP_STREAM_MAX_RESENDS 16u
#define FP_STREAM_DEFAULT_WINDOW 4u

struct fp_chunk_header {
	uint64_t stream_id, index, offset;
	uint32_t len;
	uint8_t digest[32];
};
void fp_chunk_header_encode(const struct fp_chunk_header *h, uint8_t out[FP_PROTO_CHUNK_HEADER]);
/* Parses a CHUNK payload; *data points into payload (h->len bytes). */
enum fp_status fp_chunk_parse(const uint8_t *payload, size_t len, struct fp_chunk_header *h,
                              const uint8_t **data);

/* Sender. data: (total_bytes) borrowed until destroy. */
struct fp_stream_tx;
enum fp_status fp_stream_tx_create(uint64_t stream_id, const void *data, uint64_t total_bytes,
                                   uint32_t chunk_bytes, struct fp_stream_tx **out);
void fp_stream_tx_destroy(struct fp_stream_tx *tx);
/* A sender for the same bytes with fresh counters, sharing nothing with src
 * (the chunk digests are copied, not recomputed): one model sent to many
 * sites is hashed once. */
enum fp_status fp_stream_tx_copy(const struct fp_stream_tx *src, struct fp_stream_tx **out);
/* Fills stream_id, dtype (1), total_bytes, chunk_bytes and digest (borrowed
 * from tx); the caller sets name and dims. */
void fp_stream_tx_header(const struct fp_stream_tx *tx, Fedpath__TensorHeader *h);
/* Reads the receiver's start ACK, then sends chunks until the receiver
 * acknowledges the whole tensor. Resumable: call again on a new connection. */
enum fp_status fp_stream_tx_send(struct fp_stream_tx *tx, const struct fp_io *io,
                                 struct fp_frame *scratch, unsigned window);
/* Chunks written whole in all (including resends; not one cut mid-frame)
 * and resends requested. */
void fp_stream_tx_stats(const struct fp_stream_tx *tx, uint64_t *chunks_sent, uint64_t *resends);

/* Receiver sink: called once per accepted chunk, in order; digest is the
 * chunk's SHA-256, already checked against the data (a sink that keeps its
 * own record of the tensor need not hash the bytes again). */
typedef enum fp_status (*fp_stream_sink_fn)(void *ctx, uint64_t offset, const void *data, size_t len,
                                            const uint8_t digest[32]);

struct fp_stream_rx;
/* h is copied. */
enum fp_status fp_stream_rx_create(const Fedpath__TensorHeader *h, fp_stream_sink_fn sink,
                                   void *sink_ctx, struct fp_stream_rx **out);
void fp_stream_rx_destroy(struct fp_stream_rx *rx);
/* When set, the state is saved durably to `path` after each stored chunk and
 * before it is acknowledged. */
enum fp_status fp_stream_rx_set_state_path(struct fp_stream_rx *rx, const char *path);
/* Restores next_chunk and the digests from a state file written for the same
 * stream (same id, size, chunk size and digest); FP_ERR_STATE otherwise. */
enum fp_status fp_stream_rx_load_state(struct fp_stream_rx *rx, const char *path);
/* Handles one CHUNK payload. *reply = 1 when `ack` must be sent. */
enum fp_status fp_stream_rx_on_chunk(struct fp_stream_rx *rx, const uint8_t *payload, size_t len,
                                     Fedpath__Ack *ack, int *reply);
/* Sends the start ACK, then receives chunks until the tensor is complete. */
enum fp_status fp_stream_rx_recv(struct fp_stream_rx *rx, const struct fp_io *io, struct fp_frame *scratch);
uint64_t fp_stream_rx_next_chunk(const struct fp_stream_rx *rx);
int fp_stream_rx_complete(const struct fp_stream_rx *rx);
uint64_t fp_stream_rx_resends(const struct fp_stream_rx *rx);

/* The tensor digest (above) of n chunk digests of a total_bytes tensor cut in
 * chunk_bytes; for records kept outside a stream (the aggregator's updates). */
enum fp_status fp_stream_tensor_digest(uint64_t total_bytes, uint32_t chunk_bytes, const uint8_t *digests,
                                       uint64_t n, uint8_t out[32]);

#endif
