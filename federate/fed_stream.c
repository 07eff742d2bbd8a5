/*
 * fed_stream.c: tensor stream sender (fp_fed_stream.h). Each chunk's digest
 * is computed as it is sent, so the sender holds no per-chunk state.
 */
#include "fp_fed_stream.h"

#include "fp_hash.h"

static enum fp_status recv_ack(const struct fp_fed_tx *tx, uint64_t n_chunks, const struct fp_io *io,
                               struct fp_frame *f, Fedpath__Ack **out)
{
	ProtobufCMessage *m = NULL;
	FP_TRY(fp_msg_recv(io, f, FP_FRAME_ACK, &m));
	Fedpath__Ack *a = (Fedpath__Ack *)m;
	if (a->stream_id != tx->stream_id || a->next_chunk > n_chunks) {
		enum fp_status st = FP_FAIL(FP_ERR_PROTOCOL, "ACK for stream %llu chunk %llu, sending stream %llu of %llu chunks",
		                            (unsigned long long)a->stream_id, (unsigned long long)a->next_chunk,
		                            (unsigned long long)tx->stream_id, (unsigned long long)n_chunks);
		fp_msg_free(m);
		return st;
	}
	*out = a;
	return FP_OK;
}

static enum fp_status send_chunk(struct fp_fed_tx *tx, const struct fp_io *io, uint64_t i)
{
	struct fp_chunk_header h = {tx->stream_id, i, i * tx->chunk_bytes, 0, {0}};
	uint64_t left = tx->total - h.offset;
	h.len = (uint32_t)(left < tx->chunk_bytes ? left : tx->chunk_bytes);
	FP_TRY(fp_sha256(tx->data + h.offset, h.len, h.digest));
	uint8_t head[FP_PROTO_CHUNK_HEADER];
	fp_chunk_header_encode(&h, head);
	FP_TRY(fp_frame_send(io, FP_FRAME_CHUNK, head, sizeof head, tx->data + h.offset, h.len));
	tx->chunks_sent++;
	return FP_OK;
}

enum fp_status fp_fed_tx_send(struct fp_fed_tx *tx, const struct fp_io *io, struct fp_frame *scratch, unsigned window)
{
	if (tx->chunk_bytes == 0) return FP_FAIL(FP_ERR_INVALID_ARG, "tensor stream: chunk size 0");
	uint64_t n_chunks = (tx->total + tx->chunk_bytes - 1) / tx->chunk_bytes;
	if (window == 0) window = FP_STREAM_DEFAULT_WINDOW;
	Fedpath__Ack *ack = NULL;
	FP_TRY(recv_ack(tx, n_chunks, io, scratch, &ack));
	uint64_t acked = ack->next_chunk, next = acked;
	int complete = ack->complete;
	fp_msg_free(&ack->base);
	ack = NULL;
	enum fp_status st = FP_OK;
	while (!complete) {
		while (next < n_chunks && next - acked < window) FP_CHECK(st, send_chunk(tx, io, next++));
		FP_CHECK(st, recv_ack(tx, n_chunks, io, scratch, &ack));
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
