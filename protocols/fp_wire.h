/*
 * fp_wire.h: frames, limits and control messages of the fedpath wire protocol.
 *
 * Stage: protocols/, below federate/. Takes a byte transport (struct fp_io:
 * a TLS connection, a socketpair, a memory buffer) and moves whole frames over
 * it; knows nothing of rounds or models. The written spec is PROTOCOL.md.
 *
 * A frame is a 16-byte header, big-endian, then the payload:
 *   offset size field
 *   0      4    magic "FPW1"
 *   4      2    protocol version (FP_PROTO_VERSION)
 *   6      2    type (enum fp_frame_type)
 *   8      4    payload length
 *   12     4    reserved, zero
 * Testable statements (tests/unit/test_protocols.c):
 *  - a header with a wrong magic, an unknown version or type, a non-zero
 *    reserved field, or a length above the type's limit is refused
 *    (FP_ERR_PROTOCOL, FP_ERR_VERSION, FP_ERR_LIMIT) after reading only the
 *    16 header bytes: nothing is allocated for its payload;
 *  - control payloads are protobuf-c messages of fedpath.proto, at most
 *    FP_PROTO_MAX_CONTROL_BYTES; every field with a documented bound (digest
 *    32 bytes, at most 8 dims, ids of 1..64 [A-Za-z0-9._-]) is checked on
 *    unpacking, so a message that unpacks is within the limits;
 *  - an ERROR frame received where another type was expected becomes
 *    FP_ERR_AUTH/FP_ERR_PROTOCOL with the peer's reason in the message.
 * Ownership: struct fp_frame is caller storage (init/close) whose buffer is
 * reused across receives; unpacked messages are owned by the caller
 * (fp_msg_free).
 */
#ifndef FP_WIRE_H
#define FP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "fedpath.pb-c.h"
#include "fp_status.h"

#define FP_PROTO_VERSION 1u
#define FP_FRAME_WIRE_MAGIC "FPW1"
#define FP_FRAME_WIRE_HEADER 16u

/* Documented limits (PROTOCOL.md section 4). */
#define FP_PROTO_MAX_CONTROL_BYTES (1u << 20)        /* one control message */
#define FP_PROTO_MAX_CHUNK_BYTES (4u << 20)          /* tensor bytes in one chunk */
#define FP_PROTO_MIN_CHUNK_BYTES (64u << 10)         /* except a tensor's last chunk */
#define FP_PROTO_MAX_TENSOR_BYTES (64ull << 30)      /* one tensor stream */
#define FP_PROTO_MAX_DIMS 8u
#define FP_PROTO_MAX_ID_LEN 64u
#define FP_PROTO_CHUNK_HEADER 64u                    /* see fp_stream.h */
#define FP_PROTO_MAX_CHUNK_FRAME (FP_PROTO_CHUNK_HEADER + FP_PROTO_MAX_CHUNK_BYTES)

enum fp_frame_type {
	FP_FRAME_HELLO = 1,
	FP_FRAME_TASK = 2,
	FP_FRAME_UPDATE = 3,
	FP_FRAME_ACK = 4,
	FP_FRAME_EVAL_REQUEST = 5,
	FP_FRAME_EVAL_SUMMARY = 6,
	FP_FRAME_STATUS = 7,
	FP_FRAME_ERROR = 8,
	FP_FRAME_CHUNK = 16,
};

/* A byte transport. read fills exactly len bytes or fails (FP_ERR_IO on EOF,
 * FP_ERR_TIMEOUT when the transport's timeout passes); write sends all. */
struct fp_io {
	enum fp_status (*read)(void *ctx, void *buf, size_t len);
	enum fp_status (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
};

/* An fp_io over a connected file descriptor (socketpair, pipe, TCP). */
struct fp_fd_io {
	struct fp_io io;
	int fd;
	int is_socket; /* private: send(MSG_NOSIGNAL) until ENOTSOCK says otherwise */
};
void fp_fd_io_init(struct fp_fd_io *f, int fd);

/* A received frame; data is reused and grows up to the type's limit. */
struct fp_frame {
	uint16_t type;
	uint32_t len;
	uint8_t *data; /* owned */
	size_t cap;
};
void fp_frame_init(struct fp_frame *f);
void fp_frame_close(struct fp_frame *f);

/* Largest payload a frame of `type` may carry; 0 for an unknown type. */
size_t fp_frame_limit(uint16_t type);
/* Name of a frame type ("HELLO"); "unknown" when not one. */
const char *fp_frame_type_str(uint16_t type);

void fp_frame_header_encode(uint16_t type, uint32_t len, uint8_t out[FP_FRAME_WIRE_HEADER]);
/* Validates magic, version, type, reserved and length limit. */
enum fp_status fp_frame_header_decode(const uint8_t in[FP_FRAME_WIRE_HEADER], uint16_t *type,
                                      uint32_t *len);

/* Sends one frame whose payload is a followed by b (b may be NULL). */
enum fp_status fp_frame_send(const struct fp_io *io, uint16_t type, const void *a, size_t alen,
                             const void *b, size_t blen);
/* Receives one frame into f (header checked before the payload is read). */
enum fp_status fp_frame_recv(const struct fp_io *io, struct fp_frame *f);

/* Parses the first frame of buf without copying: for the fuzz target and for
 * transports that deliver whole messages (MPI). *used = header + payload. */
enum fp_status fp_frame_parse(const uint8_t *buf, size_t len, uint16_t *type,
                              const uint8_t **payload, uint32_t *plen, size_t *used);

/* The protobuf descriptor of a control frame type; NULL for CHUNK/unknown. */
const ProtobufCMessageDescriptor *fp_msg_descriptor(uint16_t type);

/* Packs and sends m as a frame of `type` (m's descriptor must match). */
enum fp_status fp_msg_send(const struct fp_io *io, uint16_t type, const ProtobufCMessage *m);
/* Unpacks and validates a control payload of `type`. *out owned (fp_msg_free). */
enum fp_status fp_msg_unpack(uint16_t type, const uint8_t *payload, size_t len,
                             ProtobufCMessage **out);
/* Receives the next frame and unpacks it as `type`. A peer's ERROR frame
 * turns into FP_ERR_AUTH (code 15) or FP_ERR_PROTOCOL with its reason. */
enum fp_status fp_msg_recv(const struct fp_io *io, struct fp_frame *f, uint16_t type,
                           ProtobufCMessage **out);
void fp_msg_free(ProtobufCMessage *m);

/* Sends an ERROR frame (best effort, for refusals). */
enum fp_status fp_msg_send_error(const struct fp_io *io, enum fp_status code, const char *reason);

/* 1 when s is a valid site/peer id: 1..64 chars of [A-Za-z0-9._-]. */
int fp_wire_id_valid(const char *s);

#endif
