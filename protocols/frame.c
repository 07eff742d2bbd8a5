/*
 * frame.c: the 16-byte frame header, frame send/receive over an fp_io, and
 * the file-descriptor transport. Lengths are checked against the per-type
 * limit before any payload byte is read or any buffer grows (fp_wire.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fp_wire.h"

static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint16_t get_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

size_t fp_frame_limit(uint16_t type)
{
	switch (type) {
	case FP_FRAME_HELLO: case FP_FRAME_TASK: case FP_FRAME_UPDATE: case FP_FRAME_ACK:
	case FP_FRAME_EVAL_REQUEST: case FP_FRAME_EVAL_SUMMARY: case FP_FRAME_STATUS:
	case FP_FRAME_ERROR:
		return FP_PROTO_MAX_CONTROL_BYTES;
	case FP_FRAME_CHUNK:
		return FP_PROTO_MAX_CHUNK_FRAME;
	default:
		return 0;
	}
}

const char *fp_frame_type_str(uint16_t type)
{
	switch (type) {
	case FP_FRAME_HELLO: return "HELLO";
	case FP_FRAME_TASK: return "TASK";
	case FP_FRAME_UPDATE: return "UPDATE";
	case FP_FRAME_ACK: return "ACK";
	case FP_FRAME_EVAL_REQUEST: return "EVAL_REQUEST";
	case FP_FRAME_EVAL_SUMMARY: return "EVAL_SUMMARY";
	case FP_FRAME_STATUS: return "STATUS";
	case FP_FRAME_ERROR: return "ERROR";
	case FP_FRAME_CHUNK: return "CHUNK";
	default: return "unknown";
	}
}

void fp_frame_header_encode(uint16_t type, uint32_t len, uint8_t out[FP_FRAME_WIRE_HEADER])
{
	memcpy(out, FP_FRAME_WIRE_MAGIC, 4);
	put_be16(out + 4, (uint16_t)FP_PROTO_VERSION);
	put_be16(out + 6, type);
	put_be32(out + 8, len);
	put_be32(out + 12, 0);
}

enum fp_status fp_frame_header_decode(const uint8_t in[FP_FRAME_WIRE_HEADER], uint16_t *type,
                                      uint32_t *len)
{
	if (memcmp(in, FP_FRAME_WIRE_MAGIC, 4) != 0)
		return FP_FAIL(FP_ERR_PROTOCOL, "frame header: bad magic %02x%02x%02x%02x (expected \"FPW1\")",
		               in[0], in[1], in[2], in[3]);
	uint16_t ver = get_be16(in + 4), t = get_be16(in + 6);
	uint32_t n = get_be32(in + 8), reserved = get_be32(in + 12);
	if (ver != FP_PROTO_VERSION)
		return FP_FAIL(FP_ERR_VERSION, "frame header: protocol version %u, this build speaks %u",
		               (unsigned)ver, FP_PROTO_VERSION);
	size_t limit = fp_frame_limit(t);
	if (limit == 0) return FP_FAIL(FP_ERR_PROTOCOL, "frame header: unknown frame type %u", (unsigned)t);
	if (reserved != 0)
		return FP_FAIL(FP_ERR_PROTOCOL, "frame header: reserved field is 0x%08x, must be 0", reserved);
	if (n > limit)
		return FP_FAIL(FP_ERR_LIMIT, "frame header: %s frame claims %u bytes, limit %zu",
		               fp_frame_type_str(t), n, limit);
	*type = t;
	*len = n;
	return FP_OK;
}

void fp_frame_init(struct fp_frame *f) { memset(f, 0, sizeof(*f)); }

void fp_frame_close(struct fp_frame *f)
{
	if (!f) return;
	free(f->data);
	memset(f, 0, sizeof(*f));
}

enum fp_status fp_frame_send(const struct fp_io *io, uint16_t type, const void *a, size_t alen,
                             const void *b, size_t blen)
{
	size_t limit = fp_frame_limit(type);
	if (limit == 0) return FP_FAIL(FP_ERR_INVALID_ARG, "frame send: unknown frame type %u", (unsigned)type);
	if (alen > limit || blen > limit - alen)
		return FP_FAIL(FP_ERR_LIMIT, "frame send: %s payload of %zu bytes exceeds the limit %zu",
		               fp_frame_type_str(type), alen + blen, limit);
	/* Header and a small first part go out in one write (one TLS record). */
	uint8_t small[FP_FRAME_WIRE_HEADER + 256];
	fp_frame_header_encode(type, (uint32_t)(alen + blen), small);
	if (alen <= sizeof(small) - FP_FRAME_WIRE_HEADER) {
		if (alen) memcpy(small + FP_FRAME_WIRE_HEADER, a, alen);
		FP_TRY(io->write(io->ctx, small, FP_FRAME_WIRE_HEADER + alen));
	} else {
		FP_TRY(io->write(io->ctx, small, FP_FRAME_WIRE_HEADER));
		FP_TRY(io->write(io->ctx, a, alen));
	}
	if (blen) FP_TRY(io->write(io->ctx, b, blen));
	return FP_OK;
}

enum fp_status fp_frame_recv(const struct fp_io *io, struct fp_frame *f)
{
	uint8_t h[FP_FRAME_WIRE_HEADER];
	uint16_t type;
	uint32_t len;
	FP_TRY(io->read(io->ctx, h, sizeof(h)));
	FP_TRY(fp_frame_header_decode(h, &type, &len));
	if (len > f->cap) {
		/* Grow to the claimed length only: it is already within the limit. */
		uint8_t *p = realloc(f->data, len);
		if (!p) return FP_FAIL(FP_ERR_NOMEM, "frame receive: cannot allocate %u bytes", len);
		f->data = p;
		f->cap = len;
	}
	if (len) FP_TRY(io->read(io->ctx, f->data, len));
	f->type = type;
	f->len = len;
	return FP_OK;
}

enum fp_status fp_frame_parse(const uint8_t *buf, size_t len, uint16_t *type,
                              const uint8_t **payload, uint32_t *plen, size_t *used)
{
	if (len < FP_FRAME_WIRE_HEADER)
		return FP_FAIL(FP_ERR_PROTOCOL, "frame: %zu bytes, shorter than the %u-byte header", len,
		               FP_FRAME_WIRE_HEADER);
	FP_TRY(fp_frame_header_decode(buf, type, plen));
	if (*plen > len - FP_FRAME_WIRE_HEADER)
		return FP_FAIL(FP_ERR_PROTOCOL, "frame: %s claims %u payload bytes, only %zu present",
		               fp_frame_type_str(*type), *plen, len - FP_FRAME_WIRE_HEADER);
	*payload = buf + FP_FRAME_WIRE_HEADER;
	*used = FP_FRAME_WIRE_HEADER + (size_t)*plen;
	return FP_OK;
}

static enum fp_status fd_read(void *ctx, void *buf, size_t len)
{
	struct fp_fd_io *f = ctx;
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(f->fd, p, len);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return FP_FAIL(FP_ERR_TIMEOUT, "read fd %d: timed out", f->fd);
		if (n < 0) return FP_FAIL(FP_ERR_IO, "read fd %d: %s", f->fd, strerror(errno));
		if (n == 0) return FP_FAIL(FP_ERR_IO, "read fd %d: connection closed by the peer", f->fd);
		p += n;
		len -= (size_t)n;
	}
	return FP_OK;
}

static enum fp_status fd_write(void *ctx, const void *buf, size_t len)
{
	struct fp_fd_io *f = ctx;
	const uint8_t *p = buf;
	while (len) {
		/* MSG_NOSIGNAL: a closed peer is an error to report, not SIGPIPE. */
		ssize_t n = f->is_socket ? send(f->fd, p, len, MSG_NOSIGNAL) : write(f->fd, p, len);
		if (n < 0 && errno == ENOTSOCK && f->is_socket) { f->is_socket = 0; continue; }
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return FP_FAIL(FP_ERR_TIMEOUT, "write fd %d: timed out", f->fd);
		if (n < 0) return FP_FAIL(FP_ERR_IO, "write fd %d: %s", f->fd, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return FP_OK;
}

void fp_fd_io_init(struct fp_fd_io *f, int fd)
{
	f->fd = fd;
	f->is_socket = 1;
	f->io.read = fd_read;
	f->io.write = fd_write;
	f->io.ctx = f;
}
