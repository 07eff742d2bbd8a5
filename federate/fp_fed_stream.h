/*
 * fp_fed_stream.h: the sending half of a tensor stream for the federation
 * processes (server.c sends models, agent.c sends updates).
 *
 * Same wire behaviour as fp_stream_tx_send (protocols/fp_stream.h: start ACK,
 * a window of CHUNK frames, resends on request, resumable on a new
 * connection). It was written while fp_stream_tx_send freed the start ACK
 * twice on a connection lost before the second ACK; that is fixed now, so
 * this duplicate is to be folded back into fp_stream_tx_send (its counters
 * come from fp_stream_tx_stats).
 * Borrows `tx` (for its header and geometry) and `data` (total bytes, the
 * same bytes tx was created from).
 */
#ifndef FP_FED_STREAM_H
#define FP_FED_STREAM_H

#include <stdint.h>

#include "fp_stream.h"

struct fp_fed_tx {
	uint64_t stream_id, total;
	uint32_t chunk_bytes;
	const uint8_t *data;
	uint64_t resends;
	uint64_t chunks_sent; /* chunks written whole, over all calls */
};

/* Reads the receiver's start ACK, then sends until it acknowledges the whole tensor. */
enum fp_status fp_fed_tx_send(struct fp_fed_tx *tx, const struct fp_io *io, struct fp_frame *scratch, unsigned window);

#endif
