/*
 * otlp_receiver.c - an OTLP/HTTP trace receiver (JSON encoding only) for
 * switchyard's end-to-end tests of its span exporter.
 *
 * Single-threaded libevent evhttp server on 127.0.0.1.  POST /v1/traces
 * takes an ExportTraceServiceRequest as OTLP/JSON and holds it to the
 * encoding's rules (opentelemetry-proto's docs/specification.md, "JSON
 * Protobuf Encoding"; trace/v1/trace.proto):
 *
 *   - keys are lowerCamelCase: a key holding '_' (trace_id) is refused;
 *     unknown lowerCamelCase keys are ignored, as receivers must;
 *   - traceId and spanId are hex (not base64, as protobuf's own JSON
 *     mapping would have them), 32 and 16 digits, of either case, not all
 *     zero; parentSpanId is 16 hex digits or empty;
 *   - enums (kind, status.code) are integers, never names;
 *   - 64-bit integers (times, intValue) are decimal strings or numbers.
 *
 * Beyond the encoding it asks what an exporter that works must send: a
 * non-empty name, kind, both times (0 is unset), end not before start,
 * resourceSpans, scopeSpans and spans not empty, attribute keys not empty
 * nor repeated, an AnyValue holding exactly one value.
 *
 * A body that breaks a rule gets 400 and a google.rpc.Status
 * {"code":3,"message":"PATH: what is wrong"} naming the first problem, e.g.
 * "resourceSpans[0].scopeSpans[0].spans[1].traceId: 31 hex digits, want
 * 32"; a Content-Type other than application/json (or a Content-Encoding)
 * gets 415.  Both count as rejected.  A good one gets 200 "{}"
 * (ExportTraceServiceResponse, no partialSuccess); its spans are kept all
 * or none.
 *
 * For the tests:
 *   GET  /_otlp/spans   every span taken so far, flattened: [{traceId,
 *                       spanId, parentSpanId, name, kind, start, end,
 *                       attributes: {key: value}, status_code,
 *                       status_message, service_name, scope_name}]
 *   GET  /_otlp/stats   {"requests","spans","rejected","failed","last_error"}
 *   GET  /_otlp/last    the last POST /v1/traces: method, uri, headers, body
 *   GET|POST /_otlp/mode  {"status":503[,"count":N][,"retry_after":"1"]}:
 *                       the next exports (all, or the next N) fail with that
 *                       status (counted as failed, their spans dropped);
 *                       {"status":0} is back to normal
 *   POST /_otlp/reset   forget spans, counters, the last export and the mode
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "test_server.h"

#define PROG "otlp_receiver"
#define MAX_BODY (16 * 1024 * 1024)
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define MAX_DEPTH 64

/* How to fail the next exports. */
struct mode {
	int status;		/* 0: answer normally */
	int count;		/* exports left to fail; 0: all until changed */
	char retry_after[32];	/* "": no Retry-After */
};

struct recv {
	const char *port_file;
	int port;
	struct event_base *base;
	struct evhttp *http;
	struct event *sig_term;
	struct event *sig_int;
	struct mode mode;
	json_object *spans;	/* array of flattened spans */
	json_object *last;	/* the last export, or NULL */
	unsigned long requests, rejected, failed;
	char last_error[1024];
};

/* ---- validation ---- */

/* Where in the body we are ("resourceSpans[0].scopeSpans[0]"), and the
 * first problem found. */
struct vctx {
	char path[512];
	size_t len;
	char err[1024];
};

__attribute__((format(printf, 2, 3)))
static size_t vpush(struct vctx *v, const char *fmt, ...)
{
	size_t old = v->len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(v->path + v->len, sizeof(v->path) - v->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		v->len = v->len + (size_t)n < sizeof(v->path) ? v->len + (size_t)n
							      : sizeof(v->path) - 1;
	return old;
}

static void vpop(struct vctx *v, size_t old)
{
	v->len = old;
	v->path[old] = '\0';
}

static size_t vkey(struct vctx *v, const char *key)
{
	return vpush(v, "%s%s", v->len ? "." : "", key);
}

static size_t vidx(struct vctx *v, size_t i)
{
	return vpush(v, "[%zu]", i);
}

__attribute__((format(printf, 2, 3)))
static int vfail(struct vctx *v, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v->err[0] == '\0')
		snprintf(v->err, sizeof(v->err), "%s: %.480s", v->len ? v->path : "body", msg);
	return -1;
}

static const char *tname(json_object *o)
{
	return json_type_to_name(json_object_get_type(o));
}

/* obj's member key, or NULL when absent or null (proto3 JSON: the default). */
static json_object *member(json_object *obj, const char *key)
{
	json_object *val;

	if (!json_object_object_get_ex(obj, key, &val) || json_object_is_type(val, json_type_null))
		return NULL;
	return val;
}

/* An object, whose keys are lowerCamelCase: protobuf's JSON parsers take
 * the proto's own names too (trace_id), OTLP/JSON forbids them. */
static int want_object(struct vctx *v, json_object *o)
{
	if (!json_object_is_type(o, json_type_object))
		return vfail(v, "%s, want an object", tname(o));
	json_object_object_foreach(o, key, val) {
		(void)val;
		if (strchr(key, '_') != NULL) {
			size_t at = vkey(v, key);

			vfail(v, "not a lowerCamelCase key (OTLP/JSON has no proto field names)");
			vpop(v, at);
			return -1;
		}
	}
	return 0;
}

/* parent.key as an object (NULL when absent and not required). */
static int get_object(struct vctx *v, json_object *parent, const char *key, int required,
		      json_object **out)
{
	size_t at = vkey(v, key);
	int rc = 0;

	*out = member(parent, key);
	if (*out == NULL)
		rc = required ? vfail(v, "missing") : 0;
	else
		rc = want_object(v, *out);
	vpop(v, at);
	return rc;
}

/* parent.key as an array; required: present and not empty. */
static int get_array(struct vctx *v, json_object *parent, const char *key, int required,
		     json_object **out)
{
	size_t at = vkey(v, key);
	int rc = 0;

	*out = member(parent, key);
	if (*out == NULL)
		rc = required ? vfail(v, "missing") : 0;
	else if (!json_object_is_type(*out, json_type_array))
		rc = vfail(v, "%s, want an array", tname(*out));
	else if (required && json_object_array_length(*out) == 0)
		rc = vfail(v, "empty");
	vpop(v, at);
	return rc;
}

/* parent.key as a string (NULL when absent); required: present, not "". */
static int get_string(struct vctx *v, json_object *parent, const char *key, int required,
		      const char **out)
{
	json_object *val = member(parent, key);
	size_t at = vkey(v, key);
	int rc = 0;

	*out = NULL;
	if (val == NULL)
		rc = required ? vfail(v, "missing") : 0;
	else if (!json_object_is_type(val, json_type_string))
		rc = vfail(v, "%s, want a string", tname(val));
	else if (required && json_object_get_string_len(val) == 0)
		rc = vfail(v, "empty");
	else
		*out = json_object_get_string(val);
	vpop(v, at);
	return rc;
}

/* parent.key as an id of `digits` hex digits, lowercased into out
 * (digits + 1 bytes); "" when absent or empty and not required. */
static int get_hexid(struct vctx *v, json_object *parent, const char *key, int digits,
		     int required, char *out)
{
	json_object *val = member(parent, key);
	size_t at = vkey(v, key);
	const char *s;
	int rc = 0, len, i, zero = 1;

	out[0] = '\0';
	if (val == NULL || (json_object_is_type(val, json_type_string) &&
			    json_object_get_string_len(val) == 0 && !required)) {
		rc = required ? vfail(v, val == NULL ? "missing" : "empty") : 0;
		goto out;
	}
	if (!json_object_is_type(val, json_type_string)) {
		rc = vfail(v, "%s, want a string of hex digits", tname(val));
		goto out;
	}
	s = json_object_get_string(val);
	len = json_object_get_string_len(val);
	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i])) {
			rc = vfail(v, "'%c' is not a hex digit (OTLP/JSON ids are hex, not base64)",
				   isprint((unsigned char)s[i]) ? s[i] : '?');
			goto out;
		}
	if (len != digits) {
		rc = vfail(v, "%d hex digits, want %d", len, digits);
		goto out;
	}
	for (i = 0; i < len; i++) {
		out[i] = (char)tolower((unsigned char)s[i]);
		zero &= out[i] == '0';
	}
	out[len] = '\0';
	if (zero)
		rc = vfail(v, "all zero, an invalid id");
out:
	vpop(v, at);
	return rc;
}

/* An unsigned integer (fixed64, uint32...) up to max: a number or a
 * decimal string. */
static int parse_uint(struct vctx *v, json_object *val, uint64_t max, uint64_t *out)
{
	if (json_object_is_type(val, json_type_int)) {
		if (json_object_get_int64(val) < 0)
			return vfail(v, "negative");
		*out = json_object_get_uint64(val);
	} else if (json_object_is_type(val, json_type_string)) {
		const char *s = json_object_get_string(val);

		if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
			return vfail(v, "\"%.40s\" is not a decimal integer", s);
		errno = 0;
		*out = strtoull(s, NULL, 10);
		if (errno != 0)
			return vfail(v, "%.40s is out of range", s);
	} else {
		return vfail(v, "%s, want an integer or a decimal string", tname(val));
	}
	if (*out > max)
		return vfail(v, "%" PRIu64 " is out of range (most %" PRIu64 ")", *out, max);
	return 0;
}

/* parent.key as an unsigned integer; 0 when absent and not required. */
static int get_uint(struct vctx *v, json_object *parent, const char *key, uint64_t max,
		    int required, uint64_t *out)
{
	json_object *val = member(parent, key);
	size_t at = vkey(v, key);
	int rc = 0;

	*out = 0;
	if (val == NULL)
		rc = required ? vfail(v, "missing") : 0;
	else
		rc = parse_uint(v, val, max, out);
	vpop(v, at);
	return rc;
}

/* parent.key as an enum: an integer 0..max, never its name. */
static int get_enum(struct vctx *v, json_object *parent, const char *key, int max,
		    int required, int *out)
{
	json_object *val = member(parent, key);
	size_t at = vkey(v, key);
	int rc = 0;
	int64_t n;

	*out = 0;
	if (val == NULL) {
		rc = required ? vfail(v, "missing") : 0;
	} else if (!json_object_is_type(val, json_type_int)) {
		rc = vfail(v, "%s, want an integer (OTLP/JSON enums are integers)", tname(val));
	} else {
		n = json_object_get_int64(val);
		if (n < 0 || n > max)
			rc = vfail(v, "%" PRId64 " is not one of 0..%d", n, max);
		else
			*out = (int)n;
	}
	vpop(v, at);
	return rc;
}

static int check_keyvalues(struct vctx *v, json_object *arr, json_object *flat);

static const char *const value_kinds[] = {
	"stringValue", "boolValue", "intValue", "doubleValue",
	"arrayValue", "kvlistValue", "bytesValue",
};
#define N_VALUE_KINDS (sizeof(value_kinds) / sizeof(value_kinds[0]))

static int check_int64(struct vctx *v, json_object *val, json_object **out)
{
	if (json_object_is_type(val, json_type_int)) {
		if (json_object_get_int64(val) == INT64_MAX && json_object_get_uint64(val) > INT64_MAX)
			return vfail(v, "out of range (int64)");
		*out = json_object_new_int64(json_object_get_int64(val));
	} else if (json_object_is_type(val, json_type_string)) {
		const char *s = json_object_get_string(val), *d = s + (*s == '-');
		long long n;

		if (*d == '\0' || strspn(d, "0123456789") != strlen(d))
			return vfail(v, "\"%.40s\" is not a decimal integer", s);
		errno = 0;
		n = strtoll(s, NULL, 10);
		if (errno != 0)
			return vfail(v, "%.40s is out of range (int64)", s);
		*out = json_object_new_int64(n);
	} else {
		return vfail(v, "%s, want an integer or a decimal string", tname(val));
	}
	return 0;
}

static int check_double(struct vctx *v, json_object *val, json_object **out)
{
	if (json_object_is_type(val, json_type_int) || json_object_is_type(val, json_type_double)) {
		*out = json_object_new_double(json_object_get_double(val));
	} else if (json_object_is_type(val, json_type_string)) {
		const char *s = json_object_get_string(val);
		char *end;
		double d;

		/* non-finite values are strings in JSON, and stay strings here */
		if (!strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity")) {
			*out = json_object_new_string(s);
			return 0;
		}
		errno = 0;
		d = strtod(s, &end);
		if (*s == '\0' || *end != '\0' || errno != 0)
			return vfail(v, "\"%.40s\" is not a number", s);
		*out = json_object_new_double(d);
	} else {
		return vfail(v, "%s, want a number", tname(val));
	}
	return 0;
}

/* An AnyValue holding exactly one value; its plain JSON into *out (new). */
static int check_anyvalue(struct vctx *v, json_object *any, json_object **out)
{
	json_object *val = NULL, *items;
	const char *kind = NULL;
	size_t i, n, at;
	int rc = 0;

	*out = NULL;
	if (want_object(v, any) != 0)
		return -1;
	for (i = 0; i < N_VALUE_KINDS; i++) {
		json_object *m = member(any, value_kinds[i]);

		if (m == NULL)
			continue;
		if (kind != NULL)
			return vfail(v, "both %s and %s, want one value", kind, value_kinds[i]);
		kind = value_kinds[i];
		val = m;
	}
	if (kind == NULL)
		return vfail(v, "no value (stringValue, boolValue, intValue, doubleValue, "
			     "arrayValue, kvlistValue or bytesValue)");
	at = vkey(v, kind);
	if (!strcmp(kind, "stringValue") || !strcmp(kind, "bytesValue")) {
		if (!json_object_is_type(val, json_type_string))
			rc = vfail(v, "%s, want a string", tname(val));
		else
			*out = json_object_get(val);
	} else if (!strcmp(kind, "boolValue")) {
		if (!json_object_is_type(val, json_type_boolean))
			rc = vfail(v, "%s, want a boolean", tname(val));
		else
			*out = json_object_get(val);
	} else if (!strcmp(kind, "intValue")) {
		rc = check_int64(v, val, out);
	} else if (!strcmp(kind, "doubleValue")) {
		rc = check_double(v, val, out);
	} else if ((rc = want_object(v, val)) == 0 &&
		   (rc = get_array(v, val, "values", 0, &items)) == 0) {
		/* arrayValue {values: [AnyValue]}, kvlistValue {values: [KeyValue]} */
		int list = !strcmp(kind, "arrayValue");

		*out = list ? json_object_new_array() : json_object_new_object();
		if (items != NULL && !list) {
			size_t at2 = vkey(v, "values");

			rc = check_keyvalues(v, items, *out);
			vpop(v, at2);
		}
		n = items != NULL && list ? json_object_array_length(items) : 0;
		for (i = 0; i < n && rc == 0; i++) {
			size_t at2 = vpush(v, ".values[%zu]", i);
			json_object *elem;

			rc = check_anyvalue(v, json_object_array_get_idx(items, i), &elem);
			if (rc == 0)
				json_object_array_add(*out, elem);
			vpop(v, at2);
		}
	}
	vpop(v, at);
	if (rc != 0) {
		json_object_put(*out);
		*out = NULL;
	}
	return rc;
}

/* A KeyValue's key (not empty, not seen before in flat) and value, added
 * to flat. */
static int check_keyvalue(struct vctx *v, json_object *kv, json_object *flat)
{
	json_object *any, *val;
	const char *key;
	size_t at;
	int rc;

	if (want_object(v, kv) != 0 || get_string(v, kv, "key", 1, &key) != 0)
		return -1;
	if (json_object_object_get_ex(flat, key, NULL)) {
		at = vkey(v, "key");
		vfail(v, "\"%.100s\" again, want keys unique", key);
		vpop(v, at);
		return -1;
	}
	at = vkey(v, "value");
	any = member(kv, "value");
	rc = any == NULL ? vfail(v, "missing") : check_anyvalue(v, any, &val);
	vpop(v, at);
	if (rc == 0)
		json_object_object_add(flat, key, val);
	return rc;
}

static int check_keyvalues(struct vctx *v, json_object *arr, json_object *flat)
{
	size_t i, n = json_object_array_length(arr);

	for (i = 0; i < n; i++) {
		size_t at = vidx(v, i);
		int rc = check_keyvalue(v, json_object_array_get_idx(arr, i), flat);

		vpop(v, at);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* parent.key, an optional array of KeyValue, and droppedAttributesCount;
 * the attributes as one JSON object into *out (new). */
static int get_attributes(struct vctx *v, json_object *parent, json_object **out)
{
	json_object *arr;
	uint64_t dropped;
	size_t at;
	int rc;

	*out = NULL;
	if (get_array(v, parent, "attributes", 0, &arr) != 0 ||
	    get_uint(v, parent, "droppedAttributesCount", UINT32_MAX, 0, &dropped) != 0)
		return -1;
	*out = json_object_new_object();
	if (arr == NULL)
		return 0;
	at = vkey(v, "attributes");
	rc = check_keyvalues(v, arr, *out);
	vpop(v, at);
	if (rc != 0) {
		json_object_put(*out);
		*out = NULL;
	}
	return rc;
}

/* Each element of parent.key (optional array) through check(). */
static int each(struct vctx *v, json_object *parent, const char *key,
		int (*check)(struct vctx *, json_object *))
{
	json_object *arr;
	size_t i, n, at;
	int rc = 0;

	if (get_array(v, parent, key, 0, &arr) != 0)
		return -1;
	n = arr != NULL ? json_object_array_length(arr) : 0;
	at = vkey(v, key);
	for (i = 0; i < n && rc == 0; i++) {
		size_t at2 = vidx(v, i);

		rc = check(v, json_object_array_get_idx(arr, i));
		vpop(v, at2);
	}
	vpop(v, at);
	return rc;
}

static int check_event(struct vctx *v, json_object *ev)
{
	json_object *attrs = NULL;
	const char *name;
	uint64_t t;
	int rc;

	rc = want_object(v, ev) || get_uint(v, ev, "timeUnixNano", UINT64_MAX, 1, &t) ||
	     get_string(v, ev, "name", 1, &name) || get_attributes(v, ev, &attrs);
	json_object_put(attrs);
	return rc ? -1 : 0;
}

static int check_link(struct vctx *v, json_object *link)
{
	json_object *attrs = NULL;
	char trace[33], span[17];
	const char *state;
	uint64_t flags;
	int rc;

	rc = want_object(v, link) || get_hexid(v, link, "traceId", 32, 1, trace) ||
	     get_hexid(v, link, "spanId", 16, 1, span) ||
	     get_string(v, link, "traceState", 0, &state) ||
	     get_uint(v, link, "flags", UINT32_MAX, 0, &flags) || get_attributes(v, link, &attrs);
	json_object_put(attrs);
	return rc ? -1 : 0;
}

/* What one span's resource and scope give it. */
struct origin {
	json_object *service;	/* the resource's service.name, or NULL */
	const char *scope;	/* the scope's name, or NULL */
};

static json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

/* One span; flattened onto out when good. */
static int check_span(struct vctx *v, json_object *span, const struct origin *from,
		      json_object *out)
{
	char trace[33], id[17], parent[17];
	const char *name, *state, *msg = NULL;
	json_object *attrs = NULL, *status, *o;
	uint64_t start, end, u;
	int kind, code = 0;
	size_t at;

	if (want_object(v, span) || get_hexid(v, span, "traceId", 32, 1, trace) ||
	    get_hexid(v, span, "spanId", 16, 1, id) ||
	    get_hexid(v, span, "parentSpanId", 16, 0, parent) ||
	    get_string(v, span, "traceState", 0, &state) ||
	    get_uint(v, span, "flags", UINT32_MAX, 0, &u) ||
	    get_string(v, span, "name", 1, &name) ||
	    get_enum(v, span, "kind", 5, 1, &kind) ||
	    get_uint(v, span, "startTimeUnixNano", UINT64_MAX, 1, &start) ||
	    get_uint(v, span, "endTimeUnixNano", UINT64_MAX, 1, &end) ||
	    get_attributes(v, span, &attrs) ||
	    each(v, span, "events", check_event) ||
	    get_uint(v, span, "droppedEventsCount", UINT32_MAX, 0, &u) ||
	    each(v, span, "links", check_link) ||
	    get_uint(v, span, "droppedLinksCount", UINT32_MAX, 0, &u) ||
	    get_object(v, span, "status", 0, &status))
		goto bad;
	if (status != NULL) {
		at = vkey(v, "status");
		if (get_string(v, status, "message", 0, &msg) ||
		    get_enum(v, status, "code", 2, 0, &code)) {
			vpop(v, at);
			goto bad;
		}
		vpop(v, at);
	}
	if (!strcmp(parent, id)) {
		at = vkey(v, "parentSpanId");
		vfail(v, "the span's own spanId");
		vpop(v, at);
		goto bad;
	}
	if (start == 0 || end == 0) {
		at = vkey(v, start == 0 ? "startTimeUnixNano" : "endTimeUnixNano");
		vfail(v, "0, unset");
		vpop(v, at);
		goto bad;
	}
	if (end < start) {
		at = vkey(v, "endTimeUnixNano");
		vfail(v, "%" PRIu64 " is before startTimeUnixNano %" PRIu64, end, start);
		vpop(v, at);
		goto bad;
	}
	o = json_object_new_object();
	json_object_object_add(o, "traceId", json_object_new_string(trace));
	json_object_object_add(o, "spanId", json_object_new_string(id));
	json_object_object_add(o, "parentSpanId", json_object_new_string(parent));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "kind", json_object_new_int(kind));
	json_object_object_add(o, "start", json_object_new_uint64(start));
	json_object_object_add(o, "end", json_object_new_uint64(end));
	json_object_object_add(o, "attributes", attrs);
	json_object_object_add(o, "status_code", json_object_new_int(code));
	json_object_object_add(o, "status_message", json_object_new_string(msg ? msg : ""));
	json_object_object_add(o, "service_name", json_object_get(from->service));
	json_object_object_add(o, "scope_name", str_or_null(from->scope));
	json_object_array_add(out, o);
	return 0;
bad:
	json_object_put(attrs);
	return -1;
}

static int check_scope_spans(struct vctx *v, json_object *ss, struct origin *from,
			     json_object *out)
{
	json_object *scope, *spans, *attrs = NULL;
	const char *version, *url;
	size_t i, n, at;
	int rc = 0;

	from->scope = NULL;
	if (want_object(v, ss) || get_object(v, ss, "scope", 0, &scope) ||
	    get_string(v, ss, "schemaUrl", 0, &url))
		return -1;
	if (scope != NULL) {
		at = vkey(v, "scope");
		rc = get_string(v, scope, "name", 0, &from->scope) ||
		     get_string(v, scope, "version", 0, &version) ||
		     get_attributes(v, scope, &attrs);
		json_object_put(attrs);
		vpop(v, at);
		if (rc)
			return -1;
	}
	if (get_array(v, ss, "spans", 1, &spans) != 0)
		return -1;
	n = json_object_array_length(spans);
	at = vkey(v, "spans");
	for (i = 0; i < n && rc == 0; i++) {
		size_t at2 = vidx(v, i);

		rc = check_span(v, json_object_array_get_idx(spans, i), from, out);
		vpop(v, at2);
	}
	vpop(v, at);
	return rc;
}

static int check_resource_spans(struct vctx *v, json_object *rs, json_object *out)
{
	json_object *res, *attrs = NULL, *list, *name;
	struct origin from = { NULL, NULL };
	const char *url;
	size_t i, n, at;
	int rc = 0;

	if (want_object(v, rs) || get_object(v, rs, "resource", 0, &res) ||
	    get_string(v, rs, "schemaUrl", 0, &url))
		return -1;
	if (res != NULL) {
		at = vkey(v, "resource");
		rc = get_attributes(v, res, &attrs);
		vpop(v, at);
		if (rc)
			return -1;
		if (json_object_object_get_ex(attrs, "service.name", &name))
			from.service = name;
	}
	if (get_array(v, rs, "scopeSpans", 1, &list) != 0) {
		json_object_put(attrs);
		return -1;
	}
	n = json_object_array_length(list);
	at = vkey(v, "scopeSpans");
	for (i = 0; i < n && rc == 0; i++) {
		size_t at2 = vidx(v, i);

		rc = check_scope_spans(v, json_object_array_get_idx(list, i), &from, out);
		vpop(v, at2);
	}
	vpop(v, at);
	json_object_put(attrs);
	return rc;
}

/* An ExportTraceServiceRequest; its spans flattened onto out. */
static int check_export(struct vctx *v, json_object *body, json_object *out)
{
	json_object *list;
	size_t i, n, at;
	int rc = 0;

	if (want_object(v, body) || get_array(v, body, "resourceSpans", 1, &list))
		return -1;
	n = json_object_array_length(list);
	at = vkey(v, "resourceSpans");
	for (i = 0; i < n && rc == 0; i++) {
		size_t at2 = vidx(v, i);

		rc = check_resource_spans(v, json_object_array_get_idx(list, i), out);
		vpop(v, at2);
	}
	vpop(v, at);
	return rc;
}

/* ---- HTTP ---- */

/* Send obj (consumed) as the whole answer. */
static void send_json(struct evhttp_request *req, int status, json_object *obj,
		      const char *retry_after)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(out, "Content-Type", "application/json");
	if (retry_after != NULL && *retry_after != '\0')
		evhttp_add_header(out, "Retry-After", retry_after);
	if (buf != NULL)
		evbuffer_add_printf(buf, "%s", json_object_to_json_string_ext(obj, JSON_FLAGS));
	evhttp_send_reply(req, status, NULL, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	json_object_put(obj);
}

/* google.rpc.Status, OTLP/HTTP's failure body. */
static void send_status(struct evhttp_request *req, int http, int code, const char *msg,
			const char *retry_after)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "code", json_object_new_int(code));
	json_object_object_add(o, "message", json_object_new_string(msg));
	send_json(req, http, o, retry_after);
}

static void reject(struct recv *r, struct evhttp_request *req, int http, const char *msg)
{
	r->rejected++;
	snprintf(r->last_error, sizeof(r->last_error), "%s", msg);
	fprintf(stderr, PROG ": %d %s\n", http, msg);
	send_status(req, http, 3 /* INVALID_ARGUMENT */, msg, NULL);
}

static void remember_last(struct recv *r, struct evhttp_request *req, const char *body,
			  size_t len)
{
	json_object *o = json_object_new_object();
	json_object *h = json_object_new_object();
	struct evkeyval *kv;

	for (kv = evhttp_request_get_input_headers(req)->tqh_first; kv; kv = kv->next.tqe_next)
		json_object_object_add(h, kv->key, json_object_new_string(kv->value));
	json_object_object_add(o, "method", json_object_new_string("POST"));
	json_object_object_add(o, "uri", json_object_new_string(evhttp_request_get_uri(req)));
	json_object_object_add(o, "headers", h);
	json_object_object_add(o, "body", json_object_new_string_len(body, (int)len));
	json_object_put(r->last);
	r->last = o;
}

/* "application/json", any case, parameters (charset) allowed. */
static int is_json_type(const char *ct)
{
	size_t n = sizeof("application/json") - 1;

	if (ct == NULL)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, "application/json", n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* The body as a JSON value; NULL with the reason in msg. */
static json_object *parse_body(const char *buf, size_t len, char *msg, size_t cap)
{
	json_tokener *tok;
	json_object *o;
	size_t end;

	if (len == 0) {
		snprintf(msg, cap, "body: empty");
		return NULL;
	}
	tok = json_tokener_new_ex(MAX_DEPTH);
	if (tok == NULL) {
		snprintf(msg, cap, "body: out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(msg, cap, "body: not JSON (%s at byte %zu)",
			 json_tokener_error_desc(json_tokener_get_error(tok)),
			 json_tokener_get_parse_end(tok));
		json_object_put(o);
		o = NULL;
	} else {
		for (end = json_tokener_get_parse_end(tok); end < len; end++)
			if (!isspace((unsigned char)buf[end])) {
				snprintf(msg, cap, "body: not JSON (more after the value, at byte %zu)",
					 end);
				json_object_put(o);
				o = NULL;
				break;
			}
	}
	json_tokener_free(tok);
	return o;
}

static int grpc_code(int http)
{
	switch (http) {
	case 400: return 3;	/* INVALID_ARGUMENT */
	case 401: return 16;	/* UNAUTHENTICATED */
	case 403: return 7;	/* PERMISSION_DENIED */
	case 404: return 5;	/* NOT_FOUND */
	case 429: return 8;	/* RESOURCE_EXHAUSTED */
	case 502: case 503: case 504: return 14;	/* UNAVAILABLE */
	default: return 2;	/* UNKNOWN */
	}
}

static void handle_export(struct recv *r, struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(body);
	const char *raw = len ? (const char *)evbuffer_pullup(body, -1) : "";
	const char *ct = evhttp_find_header(in, "Content-Type");
	const char *ce = evhttp_find_header(in, "Content-Encoding");
	json_object *doc, *spans;
	struct vctx v;
	char msg[1024];
	size_t i, n;

	r->requests++;
	remember_last(r, req, raw, len);
	if (r->mode.status != 0) {
		snprintf(msg, sizeof(msg), PROG ": mode status %d", r->mode.status);
		r->failed++;
		send_status(req, r->mode.status, grpc_code(r->mode.status), msg,
			    r->mode.retry_after);
		if (r->mode.count > 0 && --r->mode.count == 0)
			memset(&r->mode, 0, sizeof(r->mode));
		return;
	}
	if (!is_json_type(ct)) {
		snprintf(msg, sizeof(msg), "Content-Type %.200s: this receiver takes "
			 "application/json (OTLP/JSON) only", ct ? ct : "(none)");
		reject(r, req, 415, msg);
		return;
	}
	if (ce != NULL && strcasecmp(ce, "identity") != 0) {
		snprintf(msg, sizeof(msg), "Content-Encoding %.200s: not supported", ce);
		reject(r, req, 415, msg);
		return;
	}
	doc = parse_body(raw, len, msg, sizeof(msg));
	if (doc == NULL) {
		reject(r, req, 400, msg);
		return;
	}
	memset(&v, 0, sizeof(v));
	spans = json_object_new_array();
	if (check_export(&v, doc, spans) != 0) {
		reject(r, req, 400, v.err);
	} else {
		n = json_object_array_length(spans);
		for (i = 0; i < n; i++)
			json_object_array_add(r->spans,
					      json_object_get(json_object_array_get_idx(spans, i)));
		send_json(req, 200, json_object_new_object(), NULL);
	}
	json_object_put(spans);
	json_object_put(doc);
}

static json_object *mode_to_json(const struct mode *md)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_int(md->status));
	json_object_object_add(o, "count", json_object_new_int(md->count));
	json_object_object_add(o, "retry_after", json_object_new_string(md->retry_after));
	return o;
}

/* The body is the whole new mode: absent keys get their defaults. */
static int mode_from_json(struct mode *md, json_object *o, char *msg, size_t cap)
{
	memset(md, 0, sizeof(*md));
	json_object_object_foreach(o, key, val) {
		int64_t n = json_object_get_int64(val);
		int is_int = json_object_is_type(val, json_type_int);

		if (!strcmp(key, "status") && is_int && (n == 0 || (n >= 400 && n <= 599))) {
			md->status = (int)n;
		} else if (!strcmp(key, "count") && is_int && n >= 0 && n <= INT_MAX) {
			md->count = (int)n;
		} else if (!strcmp(key, "retry_after") && json_object_is_type(val, json_type_string)) {
			snprintf(md->retry_after, sizeof(md->retry_after), "%s",
				 json_object_get_string(val));
		} else {
			snprintf(msg, cap, "bad mode key '%.100s' (status: 0 or 400..599, "
				 "count: >= 0, retry_after: a string)", key);
			return -1;
		}
	}
	return 0;
}

static void handle_set_mode(struct recv *r, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *raw = len ? (const char *)evbuffer_pullup(in, -1) : "";
	json_object *body = test_server_parse_object(raw, len);
	struct mode md;
	char msg[256];

	if (body == NULL) {
		send_status(req, 400, 3, "mode: not a JSON object", NULL);
	} else if (mode_from_json(&md, body, msg, sizeof(msg)) != 0) {
		send_status(req, 400, 3, msg, NULL);
	} else {
		r->mode = md;
		send_json(req, 200, mode_to_json(&r->mode), NULL);
	}
	json_object_put(body);
}

static void handle_control(struct recv *r, struct evhttp_request *req,
			   enum evhttp_cmd_type cmd, const char *what)
{
	json_object *o;

	if (cmd == EVHTTP_REQ_GET && !strcmp(what, "spans")) {
		send_json(req, 200, json_object_get(r->spans), NULL);
	} else if (cmd == EVHTTP_REQ_GET && !strcmp(what, "stats")) {
		o = json_object_new_object();
		json_object_object_add(o, "requests", json_object_new_uint64(r->requests));
		json_object_object_add(o, "spans",
				       json_object_new_uint64(json_object_array_length(r->spans)));
		json_object_object_add(o, "rejected", json_object_new_uint64(r->rejected));
		json_object_object_add(o, "failed", json_object_new_uint64(r->failed));
		json_object_object_add(o, "last_error", json_object_new_string(r->last_error));
		send_json(req, 200, o, NULL);
	} else if (cmd == EVHTTP_REQ_GET && !strcmp(what, "last")) {
		if (r->last != NULL)
			send_json(req, 200, json_object_get(r->last), NULL);
		else
			send_status(req, 404, 5, "no export yet", NULL);
	} else if (cmd == EVHTTP_REQ_GET && !strcmp(what, "mode")) {
		send_json(req, 200, mode_to_json(&r->mode), NULL);
	} else if (cmd == EVHTTP_REQ_POST && !strcmp(what, "mode")) {
		handle_set_mode(r, req);
	} else if (cmd == EVHTTP_REQ_POST && !strcmp(what, "reset")) {
		json_object_put(r->spans);
		r->spans = json_object_new_array();
		json_object_put(r->last);
		r->last = NULL;
		r->requests = r->rejected = r->failed = 0;
		r->last_error[0] = '\0';
		memset(&r->mode, 0, sizeof(r->mode));
		send_json(req, 200, json_object_new_object(), NULL);
	} else {
		send_status(req, 404, 5, "no such control path", NULL);
	}
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct recv *r = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (path == NULL || *path == '\0')
		path = "/";
	if (!strcmp(path, "/v1/traces")) {
		if (cmd == EVHTTP_REQ_POST) {
			handle_export(r, req);
		} else {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
			send_status(req, 405, 2, "POST only", NULL);
		}
	} else if (!strncmp(path, "/_otlp/", 7)) {
		handle_control(r, req, cmd, path + 7);
	} else {
		send_status(req, 404, 5, "no such path (traces go to /v1/traces)", NULL);
	}
}

/* ---- setup ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct recv *r = arg;

	(void)sig, (void)what;
	event_base_loopbreak(r->base);
}

static int run(struct recv *r)
{
	struct evhttp_bound_socket *bound;

	r->base = event_base_new();
	if (r->base == NULL || (r->http = evhttp_new(r->base)) == NULL) {
		fprintf(stderr, PROG ": libevent init failed\n");
		return 1;
	}
	evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				   EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_max_body_size(r->http, MAX_BODY);
	evhttp_set_gencb(r->http, on_request, r);
	bound = evhttp_bind_socket_with_handle(r->http, "127.0.0.1", (ev_uint16_t)r->port);
	if (bound == NULL || (r->port = test_server_bound_port(bound)) < 0) {
		fprintf(stderr, PROG ": cannot listen on 127.0.0.1:%d: %s\n", r->port,
			strerror(errno));
		return 1;
	}
	if (r->port_file != NULL &&
	    test_server_write_ports(PROG, r->port_file, &r->port, 1) != 0)
		return 1;
	r->sig_term = evsignal_new(r->base, SIGTERM, on_signal, r);
	r->sig_int = evsignal_new(r->base, SIGINT, on_signal, r);
	if (r->sig_term == NULL || r->sig_int == NULL ||
	    evsignal_add(r->sig_term, NULL) != 0 || evsignal_add(r->sig_int, NULL) != 0) {
		fprintf(stderr, PROG ": cannot handle signals\n");
		return 1;
	}
	fprintf(stderr, PROG ": listening on 127.0.0.1:%d\n", r->port);
	return event_base_dispatch(r->base) < 0 ? 1 : 0;
}

static void recv_free(struct recv *r)
{
	if (r->http != NULL)
		evhttp_free(r->http);
	if (r->sig_term != NULL)
		event_free(r->sig_term);
	if (r->sig_int != NULL)
		event_free(r->sig_int);
	if (r->base != NULL)
		event_base_free(r->base);
	json_object_put(r->spans);
	json_object_put(r->last);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [--port N] [--port-file FILE]\n"
		"An OTLP/HTTP trace receiver, JSON only, on 127.0.0.1 (0: any free port).\n");
}

/* 0, 1 for --help, or -1 after saying why. */
static int parse_args(struct recv *r, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long port;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			errno = 0;
			port = strtol(optarg, &end, 10);
			if (errno != 0 || *optarg == '\0' || *end != '\0' || port < 0 || port > 65535) {
				fprintf(stderr, PROG ": bad --port '%s'\n", optarg);
				return -1;
			}
			r->port = (int)port;
			break;
		case 'f':
			r->port_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			fprintf(stderr, PROG ": missing value for %s\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, PROG ": bad option '%s' (try --help)\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct recv r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.spans = json_object_new_array();
	rc = parse_args(&r, argc, argv);
	if (rc == 0) {
		signal(SIGPIPE, SIG_IGN);
		rc = run(&r);
	} else {
		rc = rc > 0 ? 0 : 2;
	}
	recv_free(&r);
	return rc;
}
