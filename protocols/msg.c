/*
 * msg.c: protobuf-c control messages in frames. Packing is bounded by the
 * control limit; unpacking validates every field that has a documented bound
 * (fp_wire.h), so callers may trust lengths in a message that unpacked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_wire.h"

const ProtobufCMessageDescriptor *fp_msg_descriptor(uint16_t type)
{
	switch (type) {
	case FP_FRAME_HELLO: return &fedpath__hello__descriptor;
	case FP_FRAME_TASK: return &fedpath__task__descriptor;
	case FP_FRAME_UPDATE: return &fedpath__update__descriptor;
	case FP_FRAME_ACK: return &fedpath__ack__descriptor;
	case FP_FRAME_EVAL_REQUEST: return &fedpath__eval_request__descriptor;
	case FP_FRAME_EVAL_SUMMARY: return &fedpath__eval_summary__descriptor;
	case FP_FRAME_STATUS: return &fedpath__status__descriptor;
	case FP_FRAME_ERROR: return &fedpath__error__descriptor;
	default: return NULL;
	}
}

int fp_wire_id_valid(const char *s)
{
	if (!s) return 0;
	size_t n = strlen(s);
	if (n == 0 || n > FP_PROTO_MAX_ID_LEN) return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		         c == '.' || c == '_' || c == '-';
		if (!ok) return 0;
	}
	return 1;
}

static enum fp_status check_hash(const ProtobufCBinaryData *b, const char *what, int required)
{
	if (b->len == 0 && !required) return FP_OK;
	if (b->len != 32)
		return FP_FAIL(FP_ERR_PROTOCOL, "%s is %zu bytes, a SHA-256 is 32", what, b->len);
	return FP_OK;
}

static enum fp_status check_tensor(const Fedpath__TensorHeader *t, const char *what)
{
	if (!t) return FP_FAIL(FP_ERR_PROTOCOL, "%s: tensor header missing", what);
	if (t->n_dims > FP_PROTO_MAX_DIMS)
		return FP_FAIL(FP_ERR_LIMIT, "%s: %zu dims, limit %u", what, t->n_dims, FP_PROTO_MAX_DIMS);
	if (t->total_bytes > FP_PROTO_MAX_TENSOR_BYTES)
		return FP_FAIL(FP_ERR_LIMIT, "%s: tensor of %llu bytes, limit %llu", what,
		               (unsigned long long)t->total_bytes, (unsigned long long)FP_PROTO_MAX_TENSOR_BYTES);
	if (t->chunk_bytes < FP_PROTO_MIN_CHUNK_BYTES || t->chunk_bytes > FP_PROTO_MAX_CHUNK_BYTES)
		return FP_FAIL(FP_ERR_LIMIT, "%s: chunk size %u outside [%u, %u]", what, t->chunk_bytes,
		               FP_PROTO_MIN_CHUNK_BYTES, FP_PROTO_MAX_CHUNK_BYTES);
	if (t->dtype != 1) return FP_FAIL(FP_ERR_UNSUPPORTED, "%s: dtype %u (only 1 = float32)", what, t->dtype);
	if (t->n_dims > 0) {
		/* The shape must account for exactly total_bytes; overflow is a lie. */
		unsigned long long n = 4;
		for (size_t i = 0; i < t->n_dims; i++) {
			if (t->dims[i] == 0 || n > FP_PROTO_MAX_TENSOR_BYTES / t->dims[i])
				return FP_FAIL(FP_ERR_LIMIT, "%s: dim %zu = %llu makes the tensor too large", what, i,
				               (unsigned long long)t->dims[i]);
			n *= t->dims[i];
		}
		if (n != t->total_bytes)
			return FP_FAIL(FP_ERR_PROTOCOL, "%s: shape gives %llu bytes, header says %llu", what, n,
			               (unsigned long long)t->total_bytes);
	}
	if (t->name && strlen(t->name) > FP_PROTO_MAX_ID_LEN)
		return FP_FAIL(FP_ERR_LIMIT, "%s: name longer than %u", what, FP_PROTO_MAX_ID_LEN);
	return check_hash(&t->digest, "tensor digest", 1);
}

static enum fp_status validate(uint16_t type, const ProtobufCMessage *m)
{
	switch (type) {
	case FP_FRAME_HELLO: {
		const Fedpath__Hello *h = (const Fedpath__Hello *)m;
		if (h->protocol_version != FP_PROTO_VERSION)
			return FP_FAIL(FP_ERR_VERSION, "HELLO: peer speaks protocol %u, this build %u",
			               h->protocol_version, FP_PROTO_VERSION);
		if (!fp_wire_id_valid(h->site_id))
			return FP_FAIL(FP_ERR_PROTOCOL, "HELLO: site id is not 1..%u characters of [A-Za-z0-9._-]",
			               FP_PROTO_MAX_ID_LEN);
		FP_TRY(check_hash(&h->model_hash, "HELLO model_hash", 0));
		return check_hash(&h->config_hash, "HELLO config_hash", 0);
	}
	case FP_FRAME_TASK: {
		const Fedpath__Task *t = (const Fedpath__Task *)m;
		FP_TRY(check_hash(&t->base_model_hash, "TASK base_model_hash", 0));
		FP_TRY(check_hash(&t->config_hash, "TASK config_hash", 0));
		return t->model ? check_tensor(t->model, "TASK model") : FP_OK;
	}
	case FP_FRAME_UPDATE: {
		const Fedpath__Update *u = (const Fedpath__Update *)m;
		FP_TRY(check_hash(&u->base_model_hash, "UPDATE base_model_hash", 1));
		return check_tensor(u->delta, "UPDATE delta");
	}
	case FP_FRAME_EVAL_REQUEST:
		return check_hash(&((const Fedpath__EvalRequest *)m)->model_hash, "EVAL_REQUEST model_hash", 1);
	case FP_FRAME_EVAL_SUMMARY:
		return check_hash(&((const Fedpath__EvalSummary *)m)->model_hash, "EVAL_SUMMARY model_hash", 1);
	default:
		return FP_OK;
	}
}

enum fp_status fp_msg_send(const struct fp_io *io, uint16_t type, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = fp_msg_descriptor(type);
	if (!d || m->descriptor != d)
		return FP_FAIL(FP_ERR_INVALID_ARG, "message send: a %s is not a %s frame",
		               m->descriptor->name, fp_frame_type_str(type));
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > FP_PROTO_MAX_CONTROL_BYTES)
		return FP_FAIL(FP_ERR_LIMIT, "message send: %s packs to %zu bytes, limit %u",
		               fp_frame_type_str(type), n, FP_PROTO_MAX_CONTROL_BYTES);
	uint8_t stackbuf[512];
	uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
	if (!buf) return FP_FAIL(FP_ERR_NOMEM, "message send: cannot allocate %zu bytes", n);
	protobuf_c_message_pack(m, buf);
	enum fp_status st = fp_frame_send(io, type, buf, n, NULL, 0);
	if (buf != stackbuf) free(buf);
	return st;
}

enum fp_status fp_msg_unpack(uint16_t type, const uint8_t *payload, size_t len,
                             ProtobufCMessage **out)
{
	const ProtobufCMessageDescriptor *d = fp_msg_descriptor(type);
	if (!d) return FP_FAIL(FP_ERR_PROTOCOL, "frame type %u is not a control message", (unsigned)type);
	if (len > FP_PROTO_MAX_CONTROL_BYTES)
		return FP_FAIL(FP_ERR_LIMIT, "%s message of %zu bytes, limit %u", fp_frame_type_str(type), len,
		               FP_PROTO_MAX_CONTROL_BYTES);
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, payload);
	if (!m) return FP_FAIL(FP_ERR_PROTOCOL, "%s message of %zu bytes does not decode", fp_frame_type_str(type), len);
	enum fp_status st = validate(type, m);
	if (st != FP_OK) {
		protobuf_c_message_free_unpacked(m, NULL);
		return st;
	}
	*out = m;
	return FP_OK;
}

enum fp_status fp_msg_recv(const struct fp_io *io, struct fp_frame *f, uint16_t type,
                           ProtobufCMessage **out)
{
	FP_TRY(fp_frame_recv(io, f));
	if (f->type == FP_FRAME_ERROR && type != FP_FRAME_ERROR) {
		ProtobufCMessage *m = NULL;
		FP_TRY(fp_msg_unpack(FP_FRAME_ERROR, f->data, f->len, &m));
		const Fedpath__Error *e = (const Fedpath__Error *)m;
		enum fp_status code = e->code == FP_ERR_AUTH ? FP_ERR_AUTH : FP_ERR_PROTOCOL;
		enum fp_status st = FP_FAIL(code, "peer refused (%s): %s", fp_status_name((enum fp_status)e->code),
		                            e->reason ? e->reason : "");
		protobuf_c_message_free_unpacked(m, NULL);
		return st;
	}
	if (f->type != type)
		return FP_FAIL(FP_ERR_PROTOCOL, "expected a %s frame, got %s", fp_frame_type_str(type),
		               fp_frame_type_str(f->type));
	return fp_msg_unpack(type, f->data, f->len, out);
}

void fp_msg_free(ProtobufCMessage *m)
{
	if (m) protobuf_c_message_free_unpacked(m, NULL);
}

enum fp_status fp_msg_send_error(const struct fp_io *io, enum fp_status code, const char *reason)
{
	Fedpath__Error e = FEDPATH__ERROR__INIT;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", reason ? reason : "");
	e.code = (uint32_t)code;
	e.reason = buf;
	return fp_msg_send(io, FP_FRAME_ERROR, &e.base);
}
