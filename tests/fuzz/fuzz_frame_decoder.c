/*
 * fuzz_frame_decoder.c: libFuzzer target for the wire decoder
 * (protocols/fp_wire.h, fp_stream.h). The input is a byte stream of frames as
 * a peer would send them; each is parsed, control payloads are unpacked and
 * validated, and CHUNK payloads are fed to a tensor-stream receiver whose
 * header comes from the first UPDATE or TASK in the input. Any crash,
 * sanitizer report, leak or allocation beyond a documented limit is a bug.
 * Seeds: tests/fuzz/corpus/frame_decoder/ (replayed in every build).
 */
#include <stddef.h>
#include <stdint.h>

#include "fp_stream.h"
#include "fp_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fp_stream_rx *rx = NULL;
	size_t pos = 0;
	for (int frames = 0; frames < 256 && pos < size; frames++) {
		uint16_t type;
		const uint8_t *payload;
		uint32_t plen;
		size_t used;
		if (fp_frame_parse(data + pos, size - pos, &type, &payload, &plen, &used) != FP_OK) break;
		pos += used;
		if (type == FP_FRAME_CHUNK) {
			if (!rx) continue;
			Fedpath__Ack ack;
			int reply;
			if (fp_stream_rx_on_chunk(rx, payload, plen, &ack, &reply) != FP_OK) break;
			continue;
		}
		ProtobufCMessage *m = NULL;
		if (fp_msg_unpack(type, payload, plen, &m) != FP_OK) continue;
		const Fedpath__TensorHeader *h = NULL;
		if (type == FP_FRAME_UPDATE) h = ((Fedpath__Update *)m)->delta;
		if (type == FP_FRAME_TASK) h = ((Fedpath__Task *)m)->model;
		/* Cap what one fuzz input may make the receiver allocate. */
		if (h && !rx && h->total_bytes <= (64u << 20)) fp_stream_rx_create(h, NULL, NULL, &rx);
		fp_msg_free(m);
	}
	fp_stream_rx_destroy(rx);
	return 0;
}
