/*
 * vllm_sim.c - a GPU-free vLLM engine for switchyard's routing tests and
 * benchmarks: the OpenAI API, /metrics, sleep mode and the P/D protocol as
 * vLLM speaks them, timed by the model in sim_model.c (batching, prefix
 * cache, step times). `vllm_sim --help` lists every flag and endpoint.
 *
 * One thread, one libevent loop. The model runs on a virtual clock; a step
 * is one timer event over every running request, so an idle engine has no
 * timer at all and a busy one wakes once a step. --time-scale S runs the
 * virtual clock S times faster than the wall clock.
 *
 * Lifetimes are mock_backend's (see there): a request not answered in its
 * handler is a struct sreq with a close callback on its connection; every
 * path that ends one unhooks that callback first (sreq_finish). The model's
 * request (sreq->sr) leaves the model either through the finish hook (then
 * sr is NULL) or through sim_cancel when the client goes away.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "../test_server.h"

#define xcalloc(n) test_server_xcalloc("vllm_sim", (n))
#define xstrdup(s) test_server_xstrdup("vllm_sim", (s))

#include "sim_model.h"

#define MAX_BODY (64 * 1024 * 1024)
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define MAX_NAMES 16

/* The answer's text: token i is these 4 bytes at 4i (mod the length), so
 * the output, sent back as a prompt, counts as many tokens. */
static const char filler[] = "This is simulated output of a GPU-free engine, 4 bytes a token. ";
_Static_assert((sizeof(filler) - 1) % SIM_TOKEN_BYTES == 0, "filler: whole tokens");

enum role { ROLE_BOTH, ROLE_PREFILL, ROLE_DECODE };
enum fault_kind { F_NONE, F_STATUS, F_HANG, F_DIE, F_CONTEXT };

/* Injected failures, for inference requests only. */
struct fault {
	enum fault_kind kind;
	int status;		/* F_STATUS: the answer's status */
	int die_after;		/* F_DIE: tokens sent before the connection closes */
	double fraction;	/* share of requests hit */
	long count;		/* requests still to hit; -1: no limit */
};

struct srv;

/* An inference request not answered in its handler. */
struct sreq {
	struct srv *s;
	struct sreq *prev, *next;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;	/* NULL once the connection is gone */
	struct sim_req *sr;	/* in the model, else NULL */
	struct event *drop;	/* F_DIE: closes the connection */
	int chat, stream, include_usage, started, dying;
	int die_after;		/* -1: never */
	int produce_kv;		/* a prefill for a remote decode: answer kv_transfer_params */
	int prompt_tokens, cached_tokens, generated;
	long long created;
	char *id_js, *model_js;	/* JSON strings, quotes included */
};

struct lora {
	const char *name, *path;
};

struct srv {
	/* options */
	const char *host, *port_file, *root, *engine_id, *kv_host, *version;
	int port, kv_port;
	const char *served[MAX_NAMES];
	int n_served;
	struct lora lora[MAX_NAMES];
	int n_lora;
	enum role role;
	double time_scale;
	enum sim_ctx_style ctx_style;
	int asleep_reject, prompt_details, hide_deprecated;
	uint64_t rng;
	struct sim_config cfg;
	struct fault fault;
	/* state */
	struct sim_model *model;
	struct event_base *base;
	struct evhttp *http;
	struct event *sig_term, *sig_int, *step_timer, *kick;
	int stepping;
	struct timespec t0;
	long long started_at;
	struct sreq *reqs;
	unsigned long requests, ids;
	char engine_buf[64];
};



/* xorshift64*: the fraction of requests a fault hits, reproducibly. */
static double rng_next(struct srv *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (double)((s->rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* Virtual now: the wall clock since start, times the time scale. */
static sim_us vnow(struct srv *s)
{
	struct timespec ts;
	double us;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	us = (double)(ts.tv_sec - s->t0.tv_sec) * 1e6 + (double)(ts.tv_nsec - s->t0.tv_nsec) / 1e3;
	return (sim_us)(us * s->time_scale);
}

/* ---- JSON ---- */

static const char *js(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_FLAGS);
}

/* s as a JSON string, quotes included (caller frees). */
static char *json_quote(const char *s)
{
	json_object *o = json_object_new_string(s);
	char *q = xstrdup(js(o));

	json_object_put(o);
	return q;
}

/* A stored JSON string (quotes included) as an object again. */
static json_object *unquote(const char *quoted)
{
	return json_tokener_parse(quoted);
}


static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    json_object_is_type(v, json_type_null))
		return NULL;
	return v;
}

static int get_bool(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	return v != NULL && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* ---- answers ---- */

/* The OpenAI SDK's class for a status, as vLLM names its errors. */
static const char *err_type(int status)
{
	switch (status) {
	case 400: return "BadRequestError";
	case 401: return "AuthenticationError";
	case 403: return "PermissionDeniedError";
	case 404: return "NotFoundError";
	case 409: return "ConflictError";
	case 422: return "UnprocessableEntityError";
	case 429: return "RateLimitError";
	case 501: return "NotImplementedError";
	case 503: return "ServiceUnavailableError";
	default: return status >= 500 ? "InternalServerError" : "BadRequestError";
	}
}

/* Send obj (consumed) as the whole answer; NULL obj: an empty body. */
static void send_json(struct evhttp_request *req, int status, json_object *obj)
{
	struct evbuffer *buf = evbuffer_new();

	if (obj != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "application/json");
	if (buf != NULL && obj != NULL)
		evbuffer_add_printf(buf, "%s", js(obj));
	evhttp_send_reply(req, status, NULL, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	json_object_put(obj);
}

/* vLLM's error body: {"error": {"message", "type", "param", "code"}}. */
static void send_error_param(struct evhttp_request *req, int status, const char *msg,
			     const char *param)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "type", json_object_new_string(err_type(status)));
	json_object_object_add(e, "param", param ? json_object_new_string(param) : NULL);
	json_object_object_add(e, "code", json_object_new_int(status));
	json_object_object_add(o, "error", e);
	send_json(req, status, o);
}

__attribute__((format(printf, 3, 4)))
static void send_error(struct evhttp_request *req, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_error_param(req, status, msg, NULL);
}

/* FastAPI's own answers for unknown paths and methods. */
static void send_detail(struct evhttp_request *req, int status, const char *detail)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "detail", json_object_new_string(detail));
	send_json(req, status, o);
}

/* ---- pending inference requests ---- */

static void on_client_close(struct evhttp_connection *evcon, void *arg);
static void on_drop(evutil_socket_t fd, short what, void *arg);

/* evhttp stops reading once a request is in, so a client that goes away
 * would go unnoticed until we write (mock_backend does the same). */
static void watch_client_close(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	bufferevent_data_cb wcb;
	bufferevent_event_cb ecb;
	void *arg;

	bufferevent_getcb(bev, NULL, &wcb, &ecb, &arg);
	bufferevent_setcb(bev, NULL, wcb, ecb, arg);
	bufferevent_enable(bev, EV_READ);
}

static struct sreq *sreq_new(struct srv *s, struct evhttp_request *req)
{
	struct sreq *q = xcalloc(sizeof(*q));

	q->s = s;
	q->req = req;
	q->evcon = evhttp_request_get_connection(req);
	q->die_after = -1;
	q->drop = evtimer_new(s->base, on_drop, q);
	if (q->drop == NULL) {
		fprintf(stderr, "vllm_sim: evtimer_new failed\n");
		exit(1);
	}
	q->next = s->reqs;
	if (s->reqs != NULL)
		s->reqs->prev = q;
	s->reqs = q;
	evhttp_connection_set_closecb(q->evcon, on_client_close, q);
	watch_client_close(q->evcon);
	return q;
}

/* Forget q (and its model request). Does not touch q->req. */
static void sreq_finish(struct sreq *q)
{
	struct srv *s = q->s;

	if (q->sr != NULL)
		sim_cancel(s->model, q->sr);
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		s->reqs = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	/* The callback would outlive q: the connection may serve more requests. */
	if (q->evcon != NULL)
		evhttp_connection_set_closecb(q->evcon, NULL, NULL);
	event_free(q->drop);
	free(q->id_js);
	free(q->model_js);
	free(q);
}

static void on_client_close(struct evhttp_connection *evcon, void *arg)
{
	struct sreq *q = arg;
	struct evhttp_request *req = q->req;
	/* On EOF libevent detaches an unanswered request and leaves it to us. */
	int orphaned = evhttp_request_get_connection(req) == NULL;

	q->evcon = NULL;
	sreq_finish(q);
	if (orphaned)
		evhttp_request_free(req);
}

/* F_DIE: close once what was sent has left, so the client sees it all. */
static void on_drop(evutil_socket_t fd, short what, void *arg)
{
	struct sreq *q = arg;
	struct evhttp_connection *evcon = q->evcon;
	struct timeval ms = { 0, 1000 };

	if (evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(evcon))) > 0) {
		evtimer_add(q->drop, &ms);
		return;
	}
	sreq_finish(q);
	evhttp_connection_free(evcon);
}

static void schedule_drop(struct sreq *q)
{
	struct timeval zero = { 0, 0 };

	q->dying = 1;
	evtimer_add(q->drop, &zero);
}

/* ---- steps ---- */

/* Begins a step at virtual time begin; its timer fires when the wall clock
 * reaches the step's end, so a late timer is made up by the next step and
 * virtual time keeps pace with the wall clock (times the scale). */
static void maybe_step(struct srv *s, sim_us begin)
{
	struct timeval tv;
	sim_us d;
	double real;

	if (s->stepping || (d = sim_step_begin(s->model, begin)) < 0)
		return;
	s->stepping = 1;
	real = (double)(sim_now(s->model) + d - vnow(s)) / s->time_scale;
	if (real < 0)
		real = 0;
	tv.tv_sec = (time_t)(real / 1e6);
	tv.tv_usec = (suseconds_t)(real - (double)tv.tv_sec * 1e6);
	evtimer_add(s->step_timer, &tv);
}

/* Busy, the next step follows at once, from the last one's end. */
static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;

	s->stepping = 0;
	sim_step_end(s->model);
	maybe_step(s, sim_now(s->model));
}

/* Requests that arrive together start a step together: the kick runs
 * after this loop iteration's other events. */
static void kick(struct srv *s)
{
	struct timeval zero = { 0, 0 };

	if (!s->stepping && !evtimer_pending(s->kick, NULL))
		evtimer_add(s->kick, &zero);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;

	maybe_step(s, vnow(s));
}

/* ---- streaming ---- */

static const char *token_text(int i, char out[SIM_TOKEN_BYTES + 1])
{
	size_t at = ((size_t)i * SIM_TOKEN_BYTES) % (sizeof(filler) - 1);

	memcpy(out, filler + at, SIM_TOKEN_BYTES);
	out[SIM_TOKEN_BYTES] = '\0';
	return out;
}

static void add_usage(struct sreq *q, struct evbuffer *b)
{
	evbuffer_add_printf(b, "{\"prompt_tokens\":%d,\"total_tokens\":%d,\"completion_tokens\":%d",
			    q->prompt_tokens, q->prompt_tokens + q->generated, q->generated);
	if (q->s->prompt_details)
		evbuffer_add_printf(b, ",\"prompt_tokens_details\":{\"cached_tokens\":%d}",
				    q->cached_tokens);
	evbuffer_add_printf(b, "}");
}

/* The start of a chunk, up to "choices":[ */
static void chunk_head(struct sreq *q, struct evbuffer *b)
{
	evbuffer_add_printf(b, "data: {\"id\":%s,\"object\":\"%s\",\"created\":%lld,\"model\":%s,"
			    "\"choices\":[", q->id_js, q->chat ? "chat.completion.chunk" :
			    "text_completion", q->created, q->model_js);
}

/* One chunk: a token (text non-NULL) and/or the finish reason (why non-NULL). */
static void add_chunk(struct sreq *q, struct evbuffer *b, const char *text, const char *why)
{
	chunk_head(q, b);
	if (q->chat)
		evbuffer_add_printf(b, "{\"index\":0,\"delta\":{%s%s%s},\"logprobs\":null,",
				    text ? "\"content\":\"" : "", text ? text : "", text ? "\"" : "");
	else
		evbuffer_add_printf(b, "{\"index\":0,\"text\":\"%s\",\"logprobs\":null,",
				    text ? text : "");
	if (why != NULL)
		evbuffer_add_printf(b, "\"finish_reason\":\"%s\",\"stop_reason\":null}]}\n\n", why);
	else
		evbuffer_add_printf(b, "\"finish_reason\":null}]}\n\n");
}

static void stream_start(struct sreq *q, struct evbuffer *b)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(q->req);

	evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_send_reply_start(q->req, 200, NULL);
	q->started = 1;
	/* vLLM's first chat chunk names the role */
	if (q->chat) {
		chunk_head(q, b);
		evbuffer_add_printf(b, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
				    "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
	}
}

/* ---- the model's hooks ---- */

static void on_token(void *arg, struct sim_req *r)
{
	struct sreq *q = r->user;
	struct evbuffer *b;
	char tok[SIM_TOKEN_BYTES + 1];

	q->generated = r->generated;
	q->cached_tokens = r->cached_tokens;
	if (q->dying)
		return;
	if (q->stream && (b = evbuffer_new()) != NULL) {
		if (!q->started)
			stream_start(q, b);
		add_chunk(q, b, token_text(r->generated - 1, tok),
			  r->generated >= r->n_out ? sim_finish_name(r->finish) : NULL);
		evhttp_send_reply_chunk(q->req, b);
		evbuffer_free(b);
	}
	if (q->die_after >= 0 && r->generated >= q->die_after)
		schedule_drop(q);
}

/* A producer's kv_transfer_params, as vLLM's NixlConnector returns them. */
static json_object *kv_params(struct sreq *q, struct sim_req *r)
{
	struct srv *s = q->s;
	json_object *o = json_object_new_object(), *ids = json_object_new_array();
	int i;

	for (i = 0; i < r->n_hash; i++)
		json_object_array_add(ids, json_object_new_int(r->blocks[i]));
	json_object_object_add(o, "do_remote_prefill", json_object_new_boolean(1));
	json_object_object_add(o, "do_remote_decode", json_object_new_boolean(0));
	json_object_object_add(o, "remote_block_ids", ids);
	json_object_object_add(o, "remote_engine_id", json_object_new_string(s->engine_id));
	json_object_object_add(o, "remote_request_id", unquote(q->id_js));
	json_object_object_add(o, "remote_host", json_object_new_string(s->kv_host));
	json_object_object_add(o, "remote_port", json_object_new_int(s->kv_port));
	json_object_object_add(o, "tp_size", json_object_new_int(1));
	return o;
}

static void answer_whole(struct sreq *q, struct sim_req *r, enum sim_finish why)
{
	json_object *o = json_object_new_object(), *choice = json_object_new_object();
	json_object *choices = json_object_new_array(), *usage = json_object_new_object();
	json_object *details = NULL, *text, *msg;
	char *buf = xcalloc((size_t)q->generated * SIM_TOKEN_BYTES + 1), tok[SIM_TOKEN_BYTES + 1];
	int i;

	for (i = 0; i < q->generated; i++)
		memcpy(buf + (size_t)i * SIM_TOKEN_BYTES, token_text(i, tok), SIM_TOKEN_BYTES);
	text = json_object_new_string(buf);
	free(buf);
	json_object_object_add(o, "id", unquote(q->id_js));
	json_object_object_add(o, "object", json_object_new_string(q->chat ? "chat.completion" :
								   "text_completion"));
	json_object_object_add(o, "created", json_object_new_int64(q->created));
	json_object_object_add(o, "model", unquote(q->model_js));
	json_object_object_add(choice, "index", json_object_new_int(0));
	if (q->chat) {
		msg = json_object_new_object();
		json_object_object_add(msg, "role", json_object_new_string("assistant"));
		json_object_object_add(msg, "content", text);
		json_object_object_add(msg, "tool_calls", json_object_new_array());
		json_object_object_add(choice, "message", msg);
	} else {
		json_object_object_add(choice, "text", text);
	}
	json_object_object_add(choice, "logprobs", NULL);
	json_object_object_add(choice, "finish_reason", json_object_new_string(sim_finish_name(why)));
	json_object_object_add(choice, "stop_reason", NULL);
	json_object_array_add(choices, choice);
	json_object_object_add(o, "choices", choices);
	json_object_object_add(usage, "prompt_tokens", json_object_new_int(q->prompt_tokens));
	json_object_object_add(usage, "total_tokens", json_object_new_int(q->prompt_tokens + q->generated));
	json_object_object_add(usage, "completion_tokens", json_object_new_int(q->generated));
	if (q->s->prompt_details) {
		details = json_object_new_object();
		json_object_object_add(details, "cached_tokens", json_object_new_int(q->cached_tokens));
	}
	json_object_object_add(usage, "prompt_tokens_details", details);
	json_object_object_add(o, "usage", usage);
	json_object_object_add(o, "prompt_logprobs", NULL);
	/* NixlConnector hands the KV over only for a prefill cut by max_tokens */
	json_object_object_add(o, "kv_transfer_params",
			       q->produce_kv && why == SIM_LENGTH ? kv_params(q, r) : NULL);
	send_json(q->req, 200, o);
}

static void on_finish(void *arg, struct sim_req *r, enum sim_finish why)
{
	struct sreq *q = r->user;
	struct evhttp_request *req = q->req;
	struct evbuffer *b;

	q->sr = NULL;
	q->generated = r->generated;
	q->cached_tokens = r->cached_tokens;
	if (q->dying)
		return;		/* on_drop closes it */
	if (!q->stream) {
		answer_whole(q, r, why);
		sreq_finish(q);
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		return;		/* the client waits; shutdown frees it */
	if (!q->started)
		stream_start(q, b);
	if (why == SIM_ABORT)
		add_chunk(q, b, NULL, "abort");
	if (q->include_usage) {
		chunk_head(q, b);
		evbuffer_add_printf(b, "],\"usage\":");
		add_usage(q, b);
		evbuffer_add_printf(b, "}\n\n");
	}
	evbuffer_add_printf(b, "data: [DONE]\n\n");
	evhttp_send_reply_chunk(req, b);
	evbuffer_free(b);
	/* reply_end may free the connection at once (HTTP/1.0): unhook first. */
	sreq_finish(q);
	evhttp_send_reply_end(req);
}

/* ---- inference ---- */

/* The request's prompt as the model reads it, in buf; NULL or an error. */
static const char *render_chat(json_object *body, struct evbuffer *buf)
{
	json_object *msgs = get(body, "messages"), *m, *role, *content, *part, *t;
	size_t i, j;

	if (msgs == NULL || !json_object_is_type(msgs, json_type_array) ||
	    json_object_array_length(msgs) == 0)
		return "'messages' must be a non-empty array";
	/* role + content in order, so a shared system prompt is a shared prefix */
	for (i = 0; i < json_object_array_length(msgs); i++) {
		m = json_object_array_get_idx(msgs, i);
		role = get(m, "role");
		if (!json_object_is_type(m, json_type_object) || role == NULL ||
		    !json_object_is_type(role, json_type_string))
			return "each message needs a string 'role'";
		evbuffer_add_printf(buf, "%s: ", json_object_get_string(role));
		content = get(m, "content");
		if (content != NULL && json_object_is_type(content, json_type_string)) {
			evbuffer_add(buf, json_object_get_string(content),
				     (size_t)json_object_get_string_len(content));
		} else if (content != NULL && json_object_is_type(content, json_type_array)) {
			for (j = 0; j < json_object_array_length(content); j++) {
				part = json_object_array_get_idx(content, j);
				t = get(part, "text");
				if (t != NULL && json_object_is_type(t, json_type_string))
					evbuffer_add(buf, json_object_get_string(t),
						     (size_t)json_object_get_string_len(t));
			}
		} else if (content != NULL) {
			return "a message's 'content' must be a string or an array of parts";
		}
		evbuffer_add(buf, "\n", 1);
	}
	return NULL;
}

/* Token ids become their 4 bytes (little-endian), so they hash as tokens. */
static const char *add_token_ids(json_object *arr, struct evbuffer *buf)
{
	unsigned char b[4];
	int64_t v;
	size_t i;

	for (i = 0; i < json_object_array_length(arr); i++) {
		json_object *t = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(t, json_type_int) || (v = json_object_get_int64(t)) < 0 ||
		    v > UINT32_MAX)
			return "token ids must be integers 0..4294967295";
		b[0] = (unsigned char)v;
		b[1] = (unsigned char)(v >> 8);
		b[2] = (unsigned char)(v >> 16);
		b[3] = (unsigned char)(v >> 24);
		evbuffer_add(buf, b, 4);
	}
	return NULL;
}

static const char *render_prompt(json_object *body, struct evbuffer *buf)
{
	json_object *p = get(body, "prompt"), *first;

	if (p != NULL && json_object_is_type(p, json_type_string)) {
		evbuffer_add(buf, json_object_get_string(p), (size_t)json_object_get_string_len(p));
		return NULL;
	}
	if (p == NULL || !json_object_is_type(p, json_type_array) || json_object_array_length(p) == 0)
		return "'prompt' must be a string, or an array of one string or of token ids";
	first = json_object_array_get_idx(p, 0);
	if (json_object_is_type(first, json_type_int))
		return add_token_ids(p, buf);
	if (json_object_array_length(p) != 1)
		return "vllm_sim answers one prompt per request";
	if (json_object_is_type(first, json_type_string)) {
		evbuffer_add(buf, json_object_get_string(first),
			     (size_t)json_object_get_string_len(first));
		return NULL;
	}
	if (json_object_is_type(first, json_type_array))
		return add_token_ids(first, buf);
	return "'prompt' must be a string, or an array of one string or of token ids";
}

/* -1 when absent; -2 when not a whole number. */
static long long get_count(json_object *body, const char *key)
{
	json_object *v = get(body, key);

	if (v == NULL)
		return -1;
	if (!json_object_is_type(v, json_type_int))
		return -2;
	return json_object_get_int64(v);
}

/* Checks a decode request's kv_transfer_params; NULL when they are good. */
static const char *check_remote(struct srv *s, json_object *kv, int n_prompt, char *why, size_t n)
{
	json_object *v;
	int64_t port;
	size_t i, want = (size_t)(n_prompt / s->cfg.block_size);

	if ((v = get(kv, "remote_engine_id")) == NULL || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return "remote_engine_id must be a non-empty string";
	if ((v = get(kv, "remote_host")) == NULL || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return "remote_host must be a non-empty string";
	if ((v = get(kv, "remote_port")) == NULL || !json_object_is_type(v, json_type_int) ||
	    (port = json_object_get_int64(v)) < 1 || port > 65535)
		return "remote_port must be a port number";
	if ((v = get(kv, "remote_block_ids")) == NULL || !json_object_is_type(v, json_type_array))
		return "remote_block_ids must be an array";
	for (i = 0; i < json_object_array_length(v); i++)
		if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_int))
			return "remote_block_ids must be integers";
	/* the prefill engine's full prompt blocks: the same prompt was sent */
	if (json_object_array_length(v) != want) {
		snprintf(why, n, "remote_block_ids has %zu blocks, the prompt's full blocks are %zu "
			 "(was the same prompt prefilled?)", json_object_array_length(v), want);
		return why;
	}
	return NULL;
}

/* Whether the current fault hits this request (and use it up). */
static enum fault_kind fault_hits(struct srv *s, struct fault *f)
{
	*f = s->fault;
	if (f->kind == F_NONE || f->count == 0)
		return F_NONE;
	if (f->fraction < 1.0 && rng_next(s) >= f->fraction)
		return F_NONE;
	if (s->fault.count > 0 && --s->fault.count == 0)
		s->fault.kind = F_NONE;
	return f->kind;
}

static const struct lora *find_lora(struct srv *s, const char *name)
{
	int i;

	for (i = 0; i < s->n_lora; i++)
		if (!strcmp(s->lora[i].name, name))
			return &s->lora[i];
	return NULL;
}

static int is_served(struct srv *s, const char *name)
{
	int i;

	for (i = 0; i < s->n_served; i++)
		if (!strcmp(s->served[i], name))
			return 1;
	return 0;
}

static void new_id(struct srv *s, struct evhttp_request *req, int chat, char *out, size_t n)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id");
	const char *prefix = chat ? "chatcmpl-" : "cmpl-";

	/* vLLM takes the id from X-Request-Id when the client sends one */
	if (h != NULL && *h != '\0')
		snprintf(out, n, "%s%.200s", prefix, h);
	else
		snprintf(out, n, "%s%08lx%08lx%016llx", prefix, (unsigned long)getpid() & 0xffffffffUL,
			 ++s->ids, (unsigned long long)(rng_next(s) * 1.8e19));
}

static void handle_inference(struct srv *s, struct evhttp_request *req, int chat)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *raw = len ? (const char *)evbuffer_pullup(in, -1) : "";
	json_object *body = test_server_parse_object(raw, len), *v, *kv;
	struct evbuffer *prompt = NULL;
	const char *model, *bad, *param;
	const struct lora *lora = NULL;
	long long max_tokens, n;
	int n_prompt, remote = 0, produce = 0, stream;
	enum fault_kind hit;
	struct fault f;
	struct sreq *q;
	char msg[1024], id[256];

	s->requests++;
	if (body == NULL) {
		send_error(req, 400, "The request body must be a JSON object");
		return;
	}
	v = get(body, "model");
	if (v != NULL && !json_object_is_type(v, json_type_string)) {
		send_error(req, 400, "'model' must be a string");
		goto out;
	}
	model = v != NULL ? json_object_get_string(v) : s->served[0];
	if (!is_served(s, model) && (lora = find_lora(s, model)) == NULL) {
		send_error(req, 404, "The model `%.200s` does not exist.", model);
		goto out;
	}
	prompt = evbuffer_new();
	if (prompt == NULL) {
		send_error(req, 500, "out of memory");
		goto out;
	}
	if ((bad = chat ? render_chat(body, prompt) : render_prompt(body, prompt)) != NULL) {
		send_error(req, 400, "%s", bad);
		goto out;
	}
	if (evbuffer_get_length(prompt) == 0) {
		send_error(req, 400, "The decoder prompt cannot be empty");
		goto out;
	}
	n_prompt = sim_token_count(evbuffer_get_length(prompt));
	/* chat: max_completion_tokens wins; completions default to 16 (OpenAI's) */
	max_tokens = chat ? get_count(body, "max_completion_tokens") : -1;
	if (max_tokens == -1)
		max_tokens = get_count(body, "max_tokens");
	if (max_tokens == -1 && !chat)
		max_tokens = 16;
	if (max_tokens == -2 || max_tokens == 0 || max_tokens < -2 || max_tokens > INT_MAX) {
		send_error(req, 400, "max_tokens must be at least 1, got %lld.", max_tokens);
		goto out;
	}
	if ((n = get_count(body, "n")) != -1 && n != 1) {
		send_error(req, 400, "vllm_sim answers n=1 only");
		goto out;
	}
	stream = get_bool(body, "stream");
	/* disaggregated prefill: the role decides what the params may ask */
	kv = get(body, "kv_transfer_params");
	if (kv != NULL && !json_object_is_type(kv, json_type_object)) {
		send_error(req, 400, "kv_transfer_params must be an object");
		goto out;
	}
	produce = get_bool(kv, "do_remote_decode");
	remote = get_bool(kv, "do_remote_prefill");
	if (s->role == ROLE_PREFILL && !produce) {
		send_error(req, 400, "this is a prefill engine (--role prefill): "
			   "kv_transfer_params.do_remote_decode must be true");
		goto out;
	}
	if (s->role == ROLE_DECODE && produce) {
		send_error(req, 400, "this is a decode engine (--role decode): it does not "
			   "prefill for others (kv_transfer_params.do_remote_decode)");
		goto out;
	}
	if (produce && remote) {
		send_error(req, 400, "kv_transfer_params: do_remote_decode and do_remote_prefill "
			   "cannot both be true");
		goto out;
	}
	if (remote && (bad = check_remote(s, kv, n_prompt, msg, sizeof(msg))) != NULL) {
		send_error_param(req, 400, bad, "kv_transfer_params");
		goto out;
	}
	if (sim_is_sleeping(s->model) && s->asleep_reject) {
		send_error(req, 503, "The engine is sleeping; POST /wake_up first.");
		goto out;
	}
	switch (hit = fault_hits(s, &f)) {
	case F_STATUS:
		send_error(req, f.status, "vllm_sim: injected failure (status %d)", f.status);
		goto out;
	case F_CONTEXT:
		/* as if the prompt were one token too long */
		sim_context_error(msg, sizeof(msg), s->ctx_style,
				  n_prompt + (max_tokens > 0 ? (int)max_tokens : 0) - 1, n_prompt,
				  (int)max_tokens, &param);
		send_error_param(req, 400, msg, param);
		goto out;
	case F_HANG:
		sreq_new(s, req);	/* never answered; freed when the client goes */
		goto out;
	default:
		break;
	}
	if (sim_too_long(s->model, n_prompt, (int)max_tokens)) {
		sim_context_error(msg, sizeof(msg), s->ctx_style, s->cfg.max_model_len, n_prompt,
				  (int)max_tokens, &param);
		send_error_param(req, 400, msg, param);
		goto out;
	}
	q = sreq_new(s, req);
	q->chat = chat;
	q->stream = stream;
	q->include_usage = stream && get_bool(get(body, "stream_options"), "include_usage");
	q->produce_kv = produce;
	q->prompt_tokens = n_prompt;
	q->created = (long long)time(NULL);
	new_id(s, req, chat, id, sizeof(id));
	q->id_js = json_quote(id);
	q->model_js = json_quote(model);
	if (hit == F_DIE)
		q->die_after = f.die_after;
	q->sr = sim_submit(s->model, evbuffer_pullup(prompt, -1), evbuffer_get_length(prompt),
			   (int)max_tokens, get_bool(body, "ignore_eos"), lora ? lora->name : NULL,
			   remote, vnow(s), q);
	if (q->sr == NULL) {
		sreq_finish(q);
		send_error(req, 500, "out of memory");
		goto out;
	}
	if (q->die_after == 0)
		schedule_drop(q);
	kick(s);
out:
	if (prompt != NULL)
		evbuffer_free(prompt);
	json_object_put(body);
}

/* ---- /v1/models ---- */

static json_object *model_card(struct srv *s, const char *id, const char *root,
			       const char *parent, int max_model_len)
{
	json_object *card = json_object_new_object(), *perm = json_object_new_object();
	json_object *perms = json_object_new_array();
	char pid[64];

	snprintf(pid, sizeof(pid), "modelperm-%016llx", (unsigned long long)(rng_next(s) * 1.8e19));
	json_object_object_add(perm, "id", json_object_new_string(pid));
	json_object_object_add(perm, "object", json_object_new_string("model_permission"));
	json_object_object_add(perm, "created", json_object_new_int64(s->started_at));
	json_object_object_add(perm, "allow_create_engine", json_object_new_boolean(0));
	json_object_object_add(perm, "allow_sampling", json_object_new_boolean(1));
	json_object_object_add(perm, "allow_logprobs", json_object_new_boolean(1));
	json_object_object_add(perm, "allow_search_indices", json_object_new_boolean(0));
	json_object_object_add(perm, "allow_view", json_object_new_boolean(1));
	json_object_object_add(perm, "allow_fine_tuning", json_object_new_boolean(0));
	json_object_object_add(perm, "organization", json_object_new_string("*"));
	json_object_object_add(perm, "group", NULL);
	json_object_object_add(perm, "is_blocking", json_object_new_boolean(0));
	json_object_array_add(perms, perm);
	json_object_object_add(card, "id", json_object_new_string(id));
	json_object_object_add(card, "object", json_object_new_string("model"));
	json_object_object_add(card, "created", json_object_new_int64(s->started_at));
	json_object_object_add(card, "owned_by", json_object_new_string("vllm"));
	json_object_object_add(card, "root", json_object_new_string(root));
	json_object_object_add(card, "parent", parent ? json_object_new_string(parent) : NULL);
	json_object_object_add(card, "max_model_len",
			       max_model_len > 0 ? json_object_new_int(max_model_len) : NULL);
	json_object_object_add(card, "permission", perms);
	return card;
}

/* vLLM's list: the served names, then each LoRA adapter with its base as parent. */
static void handle_models(struct srv *s, struct evhttp_request *req)
{
	json_object *o = json_object_new_object(), *data = json_object_new_array();
	int i;

	for (i = 0; i < s->n_served; i++)
		json_object_array_add(data, model_card(s, s->served[i], s->root, NULL,
						       s->cfg.max_model_len));
	for (i = 0; i < s->n_lora; i++)
		json_object_array_add(data, model_card(s, s->lora[i].name, s->lora[i].path,
						       s->served[0], 0));
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "data", data);
	send_json(req, 200, o);
}

/* ---- /metrics: Prometheus text as vLLM's prometheus_client writes it ---- */

static void add_escaped(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add_printf(b, "\\n");
		else
			evbuffer_add(b, v, 1);
	}
}

/* Python's float repr, near enough: 3.0, 0.25, 1e-05. */
static void add_num(struct evbuffer *b, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		evbuffer_add_printf(b, "%.1f\n", v);
	else
		evbuffer_add_printf(b, "%.15g\n", v);
}

static void head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{model_name="...",engine="0"[,extra]} */
static void labels(struct srv *s, struct evbuffer *b, const char *name, const char *extra)
{
	evbuffer_add_printf(b, "%s{model_name=\"", name);
	add_escaped(b, s->served[0]);
	evbuffer_add_printf(b, "\",engine=\"0\"%s%s} ", extra ? "," : "", extra ? extra : "");
}

static void metric(struct srv *s, struct evbuffer *b, const char *name, const char *type,
		   const char *help, double v)
{
	head(b, name, type, help);
	labels(s, b, name, NULL);
	add_num(b, v);
}

static void ttft_histogram(struct srv *s, struct evbuffer *b, const struct sim_stats *st)
{
	const char *n = "vllm:time_to_first_token_seconds";
	char le[64], name[96];
	uint64_t cum = 0;
	int i;

	head(b, n, "histogram", "Histogram of time to first token in seconds.");
	snprintf(name, sizeof(name), "%s_bucket", n);
	for (i = 0; i < SIM_TTFT_NBUCKETS; i++) {
		cum += st->ttft_bucket[i];
		if (sim_ttft_buckets[i] == floor(sim_ttft_buckets[i]))
			snprintf(le, sizeof(le), "le=\"%.1f\"", sim_ttft_buckets[i]);
		else
			snprintf(le, sizeof(le), "le=\"%g\"", sim_ttft_buckets[i]);
		labels(s, b, name, le);
		add_num(b, (double)cum);
	}
	labels(s, b, name, "le=\"+Inf\"");
	add_num(b, (double)st->ttft_count);
	snprintf(name, sizeof(name), "%s_count", n);
	labels(s, b, name, NULL);
	add_num(b, (double)st->ttft_count);
	snprintf(name, sizeof(name), "%s_sum", n);
	labels(s, b, name, NULL);
	add_num(b, st->ttft_sum);
}

/* The adapters of a request list, comma-separated, each once. */
static void adapters(struct sim_req *r, char *out, size_t n)
{
	size_t len = 0;

	out[0] = '\0';
	for (; r != NULL; r = r->next) {
		const char *at;
		size_t l;

		if (r->lora == NULL || (l = strlen(r->lora)) == 0)
			continue;
		for (at = strstr(out, r->lora); at != NULL; at = strstr(at + 1, r->lora))
			if ((at == out || at[-1] == ',') && (at[l] == ',' || at[l] == '\0'))
				break;
		if (at == NULL && len + l + 2 < n)
			len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "," : "", r->lora);
	}
}

static void handle_metrics(struct srv *s, struct evhttp_request *req)
{
	const struct sim_stats *st = sim_get_stats(s->model);
	const struct sim_config *c = &s->cfg;
	struct evbuffer *b = evbuffer_new();
	static const enum sim_finish reasons[] = { SIM_STOP, SIM_LENGTH, SIM_ABORT };
	char extra[96], run[512], wait[512];
	size_t i;

	if (b == NULL) {
		send_error(req, 500, "out of memory");
		return;
	}
	metric(s, b, "vllm:num_requests_running", "gauge",
	       "Number of requests in model execution batches.", sim_num_running(s->model));
	metric(s, b, "vllm:num_requests_waiting", "gauge",
	       "Number of requests waiting to be processed.", sim_num_waiting(s->model));
	metric(s, b, "vllm:kv_cache_usage_perc", "gauge",
	       "KV-cache usage. 1 means 100 percent usage.", sim_kv_usage(s->model));
	metric(s, b, "vllm:prefix_cache_queries_total", "counter",
	       "Prefix cache queries, in terms of number of queried tokens.",
	       (double)st->prefix_queries);
	metric(s, b, "vllm:prefix_cache_hits_total", "counter",
	       "Prefix cache hits, in terms of number of cached tokens.", (double)st->prefix_hits);
	/* the names before v0.9, which production-stack's router still reads */
	if (!s->hide_deprecated) {
		metric(s, b, "vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means "
		       "100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
		       sim_kv_usage(s->model));
		metric(s, b, "vllm:gpu_prefix_cache_queries_total", "counter", "GPU prefix cache "
		       "queries, in terms of number of queriedtokens. DEPRECATED: Use "
		       "vllm:prefix_cache_queries instead.", (double)st->prefix_queries);
		metric(s, b, "vllm:gpu_prefix_cache_hits_total", "counter", "GPU prefix cache hits, "
		       "in terms of number of cached tokens. DEPRECATED: Use vllm:prefix_cache_hits "
		       "instead.", (double)st->prefix_hits);
	}
	metric(s, b, "vllm:num_preemptions_total", "counter",
	       "Cumulative number of preemption from the engine.", (double)st->preemptions);
	metric(s, b, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.",
	       (double)st->prompt_tokens);
	metric(s, b, "vllm:generation_tokens_total", "counter",
	       "Number of generation tokens processed.", (double)st->generation_tokens);
	head(b, "vllm:request_success_total", "counter", "Count of successfully processed requests.");
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		snprintf(extra, sizeof(extra), "finished_reason=\"%s\"", sim_finish_name(reasons[i]));
		labels(s, b, "vllm:request_success_total", extra);
		add_num(b, (double)st->finished[reasons[i]]);
	}
	ttft_histogram(s, b, st);
	/* an info metric: CacheConfig's fields as labels, value 1 */
	head(b, "vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig");
	evbuffer_add_printf(b, "vllm:cache_config_info{block_size=\"%d\",gpu_memory_utilization=\"0.9\","
			    "swap_space=\"4\",cache_dtype=\"auto\",is_attention_free=\"False\","
			    "num_gpu_blocks_override=\"None\",sliding_window=\"None\","
			    "enable_prefix_caching=\"True\",prefix_caching_hash_algo=\"sha256\","
			    "cpu_offload_gb=\"0\",calculate_kv_scales=\"False\",num_gpu_blocks=\"%d\","
			    "num_cpu_blocks=\"None\",engine=\"0\"} 1.0\n", c->block_size,
			    c->num_gpu_blocks);
	if (s->n_lora > 0) {
		adapters(sim_running(s->model), run, sizeof(run));
		adapters(sim_waiting(s->model), wait, sizeof(wait));
		head(b, "vllm:lora_requests_info", "gauge", "Running stats on lora requests.");
		evbuffer_add_printf(b, "vllm:lora_requests_info{max_lora=\"%d\",waiting_lora_adapters=\"",
				    s->n_lora);
		add_escaped(b, wait);
		evbuffer_add_printf(b, "\",running_lora_adapters=\"");
		add_escaped(b, run);
		evbuffer_add_printf(b, "\"} ");
		add_num(b, (double)time(NULL));
	}
	/* the simulator's own: which prefills were skipped because the KV came over */
	metric(s, b, "vllm_sim_remote_prefills_total", "counter",
	       "Requests whose KV came from a prefill engine (no local prefill).",
	       (double)st->remote_prefills);
	metric(s, b, "vllm_sim_local_prefills_total", "counter", "Requests prefilled here.",
	       (double)st->local_prefills);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, NULL, b);
	evbuffer_free(b);
}

/* ---- sleep mode ---- */

static const char *query_param(struct evhttp_request *req, const char *key, char *out, size_t n)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL, *v;
	struct evkeyvalq kv;

	kv.tqh_first = NULL;
	kv.tqh_last = &kv.tqh_first;
	if (q == NULL || evhttp_parse_query_str(q, &kv) != 0 || (v = evhttp_find_header(&kv, key)) == NULL) {
		evhttp_clear_headers(&kv);
		return NULL;
	}
	snprintf(out, n, "%s", v);
	evhttp_clear_headers(&kv);
	return out;
}

/* POST /sleep?level=N: vLLM's default mode, abort: what runs is aborted. */
static void handle_sleep(struct srv *s, struct evhttp_request *req)
{
	char buf[32];
	const char *v = query_param(req, "level", buf, sizeof(buf));
	int level = 1;

	if (v != NULL && (strlen(v) != 1 || v[0] < '0' || v[0] > '2')) {
		send_error(req, 400, "sleep level must be 0, 1 or 2");
		return;
	}
	if (v != NULL)
		level = v[0] - '0';
	sim_sleep(s->model, level);
	send_json(req, 200, NULL);
}

static void handle_wake_up(struct srv *s, struct evhttp_request *req)
{
	sim_wake_up(s->model);
	kick(s);
	send_json(req, 200, NULL);
}

static void handle_is_sleeping(struct srv *s, struct evhttp_request *req)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "is_sleeping", json_object_new_boolean(sim_is_sleeping(s->model)));
	send_json(req, 200, o);
}

/* ---- /_sim/: the test's controls ---- */

static const char *fault_name(enum fault_kind k)
{
	static const char *const names[] = { "none", "status", "hang", "die", "context_error" };

	return names[k];
}

static json_object *fault_json(const struct fault *f)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string(fault_name(f->kind)));
	json_object_object_add(o, "status", json_object_new_int(f->status));
	json_object_object_add(o, "die_after", json_object_new_int(f->die_after));
	json_object_object_add(o, "fraction", json_object_new_double(f->fraction));
	json_object_object_add(o, "count", json_object_new_int64(f->count));
	return o;
}

static void fault_clear(struct fault *f)
{
	memset(f, 0, sizeof(*f));
	f->fraction = 1.0;
	f->count = -1;
}

/* The body is the whole new fault: {} clears it. NULL, or what is wrong. */
static const char *fault_from_json(struct fault *f, json_object *o)
{
	int kinds = 0;
	int64_t i;
	double d;

	fault_clear(f);
	json_object_object_foreach(o, key, val) {
		if (json_object_is_type(val, json_type_null))
			continue;
		if (!strcmp(key, "status")) {
			if (!json_object_is_type(val, json_type_int) ||
			    (i = json_object_get_int64(val)) < 200 || i > 599)
				return "status must be 200..599";
			f->kind = F_STATUS;
			f->status = (int)i;
			kinds++;
		} else if (!strcmp(key, "die_after")) {
			if (!json_object_is_type(val, json_type_int) ||
			    (i = json_object_get_int64(val)) < 0 || i > INT_MAX)
				return "die_after must be a token count";
			f->kind = F_DIE;
			f->die_after = (int)i;
			kinds++;
		} else if (!strcmp(key, "hang") || !strcmp(key, "context_error")) {
			if (!json_object_is_type(val, json_type_boolean))
				return "hang and context_error are booleans";
			if (json_object_get_boolean(val)) {
				f->kind = key[0] == 'h' ? F_HANG : F_CONTEXT;
				kinds++;
			}
		} else if (!strcmp(key, "fraction")) {
			if (!json_object_is_type(val, json_type_double) &&
			    !json_object_is_type(val, json_type_int))
				return "fraction must be a number 0..1";
			d = json_object_get_double(val);
			if (!(d >= 0 && d <= 1))
				return "fraction must be a number 0..1";
			f->fraction = d;
		} else if (!strcmp(key, "count")) {
			if (!json_object_is_type(val, json_type_int) ||
			    (i = json_object_get_int64(val)) < -1)
				return "count must be -1 (no limit) or a request count";
			f->count = (long)i;
		} else {
			return "unknown key (status, hang, die_after, context_error, fraction, count)";
		}
	}
	return kinds > 1 ? "one of status, hang, die_after, context_error at a time" : NULL;
}

static void handle_fail(struct srv *s, struct evhttp_request *req, int post)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_object *body;
	struct fault f;
	const char *bad;

	if (!post) {
		send_json(req, 200, fault_json(&s->fault));
		return;
	}
	body = test_server_parse_object(len ? (const char *)evbuffer_pullup(in, -1) : "", len);
	if (body == NULL) {
		send_error(req, 400, "the body must be a JSON object");
	} else if ((bad = fault_from_json(&f, body)) != NULL) {
		send_error(req, 400, "%s", bad);
	} else {
		s->fault = f;
		send_json(req, 200, fault_json(&s->fault));
	}
	json_object_put(body);
}

static void handle_stats(struct srv *s, struct evhttp_request *req)
{
	const struct sim_stats *st = sim_get_stats(s->model);
	json_object *o = json_object_new_object(), *fin = json_object_new_object();
	int i;

	json_object_object_add(o, "requests", json_object_new_int64((int64_t)s->requests));
	json_object_object_add(o, "running", json_object_new_int(sim_num_running(s->model)));
	json_object_object_add(o, "waiting", json_object_new_int(sim_num_waiting(s->model)));
	json_object_object_add(o, "kv_cache_usage", json_object_new_double(sim_kv_usage(s->model)));
	json_object_object_add(o, "blocks_used", json_object_new_int(sim_blocks_used(s->model)));
	json_object_object_add(o, "blocks_cached", json_object_new_int(sim_blocks_cached(s->model)));
	json_object_object_add(o, "num_gpu_blocks", json_object_new_int(s->cfg.num_gpu_blocks));
	json_object_object_add(o, "prefix_cache_queries", json_object_new_int64((int64_t)st->prefix_queries));
	json_object_object_add(o, "prefix_cache_hits", json_object_new_int64((int64_t)st->prefix_hits));
	json_object_object_add(o, "prompt_tokens", json_object_new_int64((int64_t)st->prompt_tokens));
	json_object_object_add(o, "generation_tokens", json_object_new_int64((int64_t)st->generation_tokens));
	for (i = 0; i < SIM_N_FINISH; i++)
		json_object_object_add(fin, sim_finish_name((enum sim_finish)i),
				       json_object_new_int64((int64_t)st->finished[i]));
	json_object_object_add(o, "finished", fin);
	json_object_object_add(o, "local_prefills", json_object_new_int64((int64_t)st->local_prefills));
	json_object_object_add(o, "remote_prefills", json_object_new_int64((int64_t)st->remote_prefills));
	json_object_object_add(o, "is_sleeping", json_object_new_boolean(sim_is_sleeping(s->model)));
	json_object_object_add(o, "virtual_time_us", json_object_new_int64(sim_now(s->model)));
	json_object_object_add(o, "fault", fault_json(&s->fault));
	send_json(req, 200, o);
}

/* ---- routing ---- */

static void on_request(struct evhttp_request *req, void *arg)
{
	struct srv *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	int post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;
	static const struct route {
		const char *path;
		int post;
	} routes[] = {
		{ "/health", 0 }, { "/version", 0 }, { "/v1/models", 0 }, { "/metrics", 0 },
		{ "/is_sleeping", 0 }, { "/sleep", 1 }, { "/wake_up", 1 },
		{ "/reset_prefix_cache", 1 }, { "/v1/chat/completions", 1 },
		{ "/v1/completions", 1 }, { "/_sim/stats", 0 },
	};
	size_t i;

	if (path == NULL || *path == '\0')
		path = "/";
	if (!strcmp(path, "/_sim/fail")) {
		handle_fail(s, req, post);
		return;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(path, routes[i].path))
			break;
	if (i == sizeof(routes) / sizeof(routes[0])) {
		send_detail(req, 404, "Not Found");
		return;
	}
	if (routes[i].post != post) {
		send_detail(req, 405, "Method Not Allowed");
		return;
	}
	if (!strcmp(path, "/health")) {
		send_json(req, 200, NULL);	/* vLLM: 200, empty, asleep or not */
	} else if (!strcmp(path, "/version")) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "version", json_object_new_string(s->version));
		send_json(req, 200, o);
	} else if (!strcmp(path, "/v1/models")) {
		handle_models(s, req);
	} else if (!strcmp(path, "/metrics")) {
		handle_metrics(s, req);
	} else if (!strcmp(path, "/is_sleeping")) {
		handle_is_sleeping(s, req);
	} else if (!strcmp(path, "/sleep")) {
		handle_sleep(s, req);
	} else if (!strcmp(path, "/wake_up")) {
		handle_wake_up(s, req);
	} else if (!strcmp(path, "/reset_prefix_cache")) {
		sim_reset_prefix_cache(s->model);
		send_json(req, 200, NULL);
	} else if (!strcmp(path, "/_sim/stats")) {
		handle_stats(s, req);
	} else {
		handle_inference(s, req, !strcmp(path, "/v1/chat/completions"));
	}
}

/* ---- setup ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct srv *s = arg;

	event_base_loopbreak(s->base);
}



static int run(struct srv *s)
{
	struct sim_hooks hooks = { on_token, on_finish, s };
	struct evhttp_bound_socket *bound;
	struct event_config *ecfg;

	s->model = sim_model_new(&s->cfg, &hooks);
	if (s->model == NULL) {
		fprintf(stderr, "vllm_sim: out of memory\n");
		return 1;
	}
	/* Steps of a millisecond or less (--time-scale): timers to the microsecond. */
	if ((ecfg = event_config_new()) != NULL) {
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
		s->base = event_base_new_with_config(ecfg);
		event_config_free(ecfg);
	}
	if (s->base == NULL || (s->http = evhttp_new(s->base)) == NULL) {
		fprintf(stderr, "vllm_sim: libevent init failed\n");
		return 1;
	}
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_max_body_size(s->http, MAX_BODY);
	/* A hang should outlast any client timeout a test would use. */
	evhttp_set_timeout(s->http, 3600);
	evhttp_set_gencb(s->http, on_request, s);
	bound = evhttp_bind_socket_with_handle(s->http, s->host, (ev_uint16_t)s->port);
	if (bound == NULL || (s->port = test_server_bound_port(bound)) < 0) {
		fprintf(stderr, "vllm_sim: cannot listen on %s:%d: %s\n", s->host, s->port,
			strerror(errno));
		return 1;
	}
	if (s->engine_id == NULL) {
		snprintf(s->engine_buf, sizeof(s->engine_buf), "vllm-sim-%s-%d", s->host, s->port);
		s->engine_id = s->engine_buf;
	}
	if (s->port_file != NULL && test_server_write_ports("vllm_sim", s->port_file, &s->port, 1) != 0)
		return 1;
	s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
	s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
	s->step_timer = evtimer_new(s->base, on_step, s);
	s->kick = evtimer_new(s->base, on_kick, s);
	if (s->sig_term == NULL || s->sig_int == NULL || s->step_timer == NULL || s->kick == NULL ||
	    evsignal_add(s->sig_term, NULL) != 0 || evsignal_add(s->sig_int, NULL) != 0) {
		fprintf(stderr, "vllm_sim: cannot set up events\n");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &s->t0);
	s->started_at = (long long)time(NULL);
	fprintf(stderr, "vllm_sim %s (%s) listening on %s:%d\n", s->served[0],
		s->role == ROLE_PREFILL ? "prefill" : s->role == ROLE_DECODE ? "decode" : "both",
		s->host, s->port);
	return event_base_dispatch(s->base) < 0 ? 1 : 0;
}

static void srv_free(struct srv *s)
{
	/* Pending requests stay on their connections; evhttp_free frees both. */
	while (s->reqs != NULL)
		sreq_finish(s->reqs);
	if (s->http != NULL)
		evhttp_free(s->http);
	if (s->sig_term != NULL)
		event_free(s->sig_term);
	if (s->sig_int != NULL)
		event_free(s->sig_int);
	if (s->step_timer != NULL)
		event_free(s->step_timer);
	if (s->kick != NULL)
		event_free(s->kick);
	if (s->base != NULL)
		event_base_free(s->base);
	sim_model_free(s->model);
}

/* ---- flags ---- */

static void usage(void)
{
	struct sim_config d;

	sim_config_defaults(&d);
	printf("usage: vllm_sim --port P [options]\n"
	       "A GPU-free vLLM engine: OpenAI API, vLLM's metrics, sleep mode and P/D protocol,\n"
	       "timed by a model of continuous batching and a block prefix cache.\n"
	       "\n"
	       "Server:\n"
	       "  --port P                 port; 0 picks a free one (written to --port-file and\n"
	       "                           printed as 'vllm_sim NAME (ROLE) listening on HOST:PORT')\n"
	       "  --host H                 address to bind (127.0.0.1)\n"
	       "  --port-file FILE         write the port there once listening\n"
	       "  --model NAME             the model (the cards' root) (sim-model)\n"
	       "  --served-model-name N    a name it answers to (repeatable; default --model);\n"
	       "                           the first one is the metrics' model_name\n"
	       "  --lora NAME[=PATH]       a LoRA adapter (repeatable): listed with parent set to\n"
	       "                           the base model, routable by name, its own cache blocks\n"
	       "  --vllm-version V         what /version says (0.11.0)\n"
	       "\n"
	       "Engine model (times in milliseconds of virtual time):\n"
	       "  --block-size N           tokens per KV block (%d)\n"
	       "  --num-gpu-blocks N       KV cache capacity in blocks (%d)\n"
	       "  --max-num-seqs N         running batch limit (%d)\n"
	       "  --max-model-len N        prompt + output limit in tokens (%d)\n"
	       "  --output-len N           answer length when max_tokens allows (EOS; %d);\n"
	       "                           \"ignore_eos\": true runs to max_tokens\n"
	       "  --prefill-overhead-ms F  per step that prefills (%g)\n"
	       "  --prefill-per-token-ms F per uncached prompt token (%g)\n"
	       "  --decode-base-ms F       per decode step (%g)\n"
	       "  --decode-per-seq-ms F    per running sequence in a decode step (%g)\n"
	       "  --kv-transfer-per-token-ms F  per uncached token whose KV a prefill engine\n"
	       "                           sent (%g)\n"
	       "  --time-scale F           virtual time runs F times faster than real time (1)\n"
	       "  A step prefills the newly admitted requests whole and decodes one token for\n"
	       "  each running one: step = [overhead + uncached x per-token, if any prefill]\n"
	       "  + remote tokens x transfer + [base + per-seq x decoders, if any]; tokens are\n"
	       "  4 bytes of prompt each (chat: \"role: content\\n\" per message).\n"
	       "\n"
	       "vLLM behaviour:\n"
	       "  --role both|prefill|decode  disaggregated prefill (both). prefill: requests\n"
	       "                           need kv_transfer_params.do_remote_decode and get\n"
	       "                           NixlConnector's kv_transfer_params back; decode:\n"
	       "                           do_remote_prefill params are checked, and the\n"
	       "                           prefill cost is replaced by the transfer cost\n"
	       "  --engine-id ID           remote_engine_id it hands out (vllm-sim-HOST-PORT)\n"
	       "  --kv-host H, --kv-port N remote_host/remote_port it hands out (--host, 5600)\n"
	       "  --context-error STYLE    context-length error wording: classic (v0.6-v0.10,\n"
	       "                           \"This model's maximum context length is ...\"),\n"
	       "                           v0.11 (\"'max_tokens' or 'max_completion_tokens' is\n"
	       "                           too large ...\"), current (\"You passed N input\n"
	       "                           tokens ...\") (classic)\n"
	       "  --asleep hold|reject     requests while asleep: held until /wake_up, as vLLM\n"
	       "                           does, or refused with 503 (hold)\n"
	       "  --enable-prompt-tokens-details  usage.prompt_tokens_details.cached_tokens\n"
	       "  --hide-deprecated-metrics  no vllm:gpu_cache_usage_perc and\n"
	       "                           vllm:gpu_prefix_cache_{hits,queries}_total\n"
	       "\n"
	       "Failures (inference requests only; also POST /_sim/fail at run time):\n"
	       "  --fail-status N          answer status N with an OpenAI error body\n"
	       "  --fail-hang              accept and never answer\n"
	       "  --fail-die-after K       close the connection after K tokens\n"
	       "  --fail-context           answer the 400 context-length error\n"
	       "  --fail-fraction F        share of requests hit (1)\n"
	       "  --fail-count K           hit the next K requests only (-1: no limit)\n"
	       "  --seed N                 the fraction's random sequence (1)\n"
	       "\n"
	       "Endpoints: POST /v1/chat/completions, /v1/completions (stream or not);\n"
	       "GET /v1/models, /metrics, /health, /version, /is_sleeping; POST /sleep?level=N\n"
	       "(aborts what runs; level 1 and 2 drop the KV cache), /wake_up,\n"
	       "/reset_prefix_cache; GET /_sim/stats; GET|POST /_sim/fail with\n"
	       "{\"status\":N | \"hang\":true | \"die_after\":K | \"context_error\":true,\n"
	       " \"fraction\":F, \"count\":K} ({} clears).\n",
	       d.block_size, d.num_gpu_blocks, d.max_num_seqs, d.max_model_len, d.output_len,
	       d.prefill_overhead_us / 1000, d.prefill_per_token_us / 1000, d.decode_base_us / 1000,
	       d.decode_per_seq_us / 1000, d.kv_transfer_per_token_us / 1000);
}

static int parse_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_num(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

/* Milliseconds (up to an hour) into the model's microseconds. */
static int parse_ms(const char *s, double *us)
{
	double ms;

	if (parse_num(s, 0, 3600e3, &ms) != 0)
		return -1;
	*us = ms * 1e3;
	return 0;
}

/* Returns 0, 1 for --help, or -1 after printing one line. */
static int parse_args(struct srv *s, int argc, char **argv)
{
	enum {
		O_PORT = 1000, O_HOST, O_PORT_FILE, O_MODEL, O_SERVED, O_LORA, O_VERSION,
		O_BLOCK, O_BLOCKS, O_SEQS, O_LEN, O_OUT, O_PO, O_PT, O_DB, O_DS, O_KT, O_SCALE,
		O_ROLE, O_ENGINE, O_KVHOST, O_KVPORT, O_CTX, O_ASLEEP, O_DETAILS, O_HIDE,
		O_FSTATUS, O_FHANG, O_FDIE, O_FCTX, O_FFRAC, O_FCOUNT, O_SEED, O_HELP,
	};
	static const struct option opts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "host", required_argument, NULL, O_HOST },
		{ "port-file", required_argument, NULL, O_PORT_FILE },
		{ "model", required_argument, NULL, O_MODEL },
		{ "served-model-name", required_argument, NULL, O_SERVED },
		{ "lora", required_argument, NULL, O_LORA },
		{ "vllm-version", required_argument, NULL, O_VERSION },
		{ "block-size", required_argument, NULL, O_BLOCK },
		{ "num-gpu-blocks", required_argument, NULL, O_BLOCKS },
		{ "max-num-seqs", required_argument, NULL, O_SEQS },
		{ "max-model-len", required_argument, NULL, O_LEN },
		{ "output-len", required_argument, NULL, O_OUT },
		{ "prefill-overhead-ms", required_argument, NULL, O_PO },
		{ "prefill-per-token-ms", required_argument, NULL, O_PT },
		{ "decode-base-ms", required_argument, NULL, O_DB },
		{ "decode-per-seq-ms", required_argument, NULL, O_DS },
		{ "kv-transfer-per-token-ms", required_argument, NULL, O_KT },
		{ "time-scale", required_argument, NULL, O_SCALE },
		{ "role", required_argument, NULL, O_ROLE },
		{ "engine-id", required_argument, NULL, O_ENGINE },
		{ "kv-host", required_argument, NULL, O_KVHOST },
		{ "kv-port", required_argument, NULL, O_KVPORT },
		{ "context-error", required_argument, NULL, O_CTX },
		{ "asleep", required_argument, NULL, O_ASLEEP },
		{ "enable-prompt-tokens-details", no_argument, NULL, O_DETAILS },
		{ "hide-deprecated-metrics", no_argument, NULL, O_HIDE },
		{ "fail-status", required_argument, NULL, O_FSTATUS },
		{ "fail-hang", no_argument, NULL, O_FHANG },
		{ "fail-die-after", required_argument, NULL, O_FDIE },
		{ "fail-context", no_argument, NULL, O_FCTX },
		{ "fail-fraction", required_argument, NULL, O_FFRAC },
		{ "fail-count", required_argument, NULL, O_FCOUNT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c, idx = 0, rc = 0, v, kinds = 0;
	const char *bad;
	char *eq;

	s->port = -1;
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
		switch (c) {
		case O_PORT: rc = parse_int(optarg, 0, 65535, &s->port); break;
		case O_HOST: s->host = optarg; break;
		case O_PORT_FILE: s->port_file = optarg; break;
		case O_MODEL: s->root = optarg; break;
		case O_SERVED:
			if (s->n_served == MAX_NAMES || *optarg == '\0')
				rc = -1;
			else
				s->served[s->n_served++] = optarg;
			break;
		case O_LORA:
			if (s->n_lora == MAX_NAMES || *optarg == '\0' || *optarg == '=') {
				rc = -1;
				break;
			}
			/* NAME=PATH as vLLM's --lora-modules; the name is cut in place */
			s->lora[s->n_lora].name = s->lora[s->n_lora].path = optarg;
			if ((eq = strchr(optarg, '=')) != NULL) {
				*eq = '\0';
				s->lora[s->n_lora].path = eq + 1;
			}
			s->n_lora++;
			break;
		case O_VERSION: s->version = optarg; break;
		case O_BLOCK: rc = parse_int(optarg, 1, 1024, &s->cfg.block_size); break;
		case O_BLOCKS: rc = parse_int(optarg, 1, 1 << 24, &s->cfg.num_gpu_blocks); break;
		case O_SEQS: rc = parse_int(optarg, 1, 1 << 20, &s->cfg.max_num_seqs); break;
		case O_LEN: rc = parse_int(optarg, 2, 1 << 28, &s->cfg.max_model_len); break;
		case O_OUT: rc = parse_int(optarg, 1, 1 << 28, &s->cfg.output_len); break;
		case O_PO: rc = parse_ms(optarg, &s->cfg.prefill_overhead_us); break;
		case O_PT: rc = parse_ms(optarg, &s->cfg.prefill_per_token_us); break;
		case O_DB: rc = parse_ms(optarg, &s->cfg.decode_base_us); break;
		case O_DS: rc = parse_ms(optarg, &s->cfg.decode_per_seq_us); break;
		case O_KT: rc = parse_ms(optarg, &s->cfg.kv_transfer_per_token_us); break;
		case O_SCALE: rc = parse_num(optarg, 1e-3, 1e6, &s->time_scale); break;
		case O_ROLE:
			if (!strcmp(optarg, "both"))
				s->role = ROLE_BOTH;
			else if (!strcmp(optarg, "prefill"))
				s->role = ROLE_PREFILL;
			else if (!strcmp(optarg, "decode"))
				s->role = ROLE_DECODE;
			else
				rc = -1;
			break;
		case O_ENGINE: s->engine_id = optarg; break;
		case O_KVHOST: s->kv_host = optarg; break;
		case O_KVPORT: rc = parse_int(optarg, 1, 65535, &s->kv_port); break;
		case O_CTX:
			if (!strcmp(optarg, "classic"))
				s->ctx_style = SIM_CTX_CLASSIC;
			else if (!strcmp(optarg, "v0.11"))
				s->ctx_style = SIM_CTX_V011;
			else if (!strcmp(optarg, "current"))
				s->ctx_style = SIM_CTX_CURRENT;
			else
				rc = -1;
			break;
		case O_ASLEEP:
			if (!strcmp(optarg, "hold") || !strcmp(optarg, "reject"))
				s->asleep_reject = optarg[0] == 'r';
			else
				rc = -1;
			break;
		case O_DETAILS: s->prompt_details = 1; break;
		case O_HIDE: s->hide_deprecated = 1; break;
		case O_FSTATUS:
			rc = parse_int(optarg, 200, 599, &s->fault.status);
			s->fault.kind = F_STATUS;
			kinds++;
			break;
		case O_FHANG: s->fault.kind = F_HANG; kinds++; break;
		case O_FDIE:
			rc = parse_int(optarg, 0, INT_MAX, &s->fault.die_after);
			s->fault.kind = F_DIE;
			kinds++;
			break;
		case O_FCTX: s->fault.kind = F_CONTEXT; kinds++; break;
		case O_FFRAC: rc = parse_num(optarg, 0, 1, &s->fault.fraction); break;
		case O_FCOUNT:
			rc = parse_int(optarg, -1, INT_MAX, &v);
			s->fault.count = v;
			break;
		case O_SEED:
			rc = parse_int(optarg, 0, INT_MAX, &v);
			s->rng = (uint64_t)v * 0x9E3779B97F4A7C15ULL + 1;
			break;
		case O_HELP: usage(); return 1;
		case ':':
			fprintf(stderr, "vllm_sim: missing value for %s\n", argv[optind - 1]);
			return -1;
		case '?':
			fprintf(stderr, "vllm_sim: bad option '%s' (try --help)\n", argv[optind - 1]);
			return -1;
		}
	}
	if (rc != 0) {
		fprintf(stderr, "vllm_sim: bad value for --%s: '%s' (try --help)\n", opts[idx].name,
			optarg ? optarg : "");
		return -1;
	}
	if (optind < argc || s->port < 0) {
		fprintf(stderr, "vllm_sim: %s\n", optind < argc ? "unexpected argument" :
			"--port is required (0 picks a free one)");
		return -1;
	}
	if (kinds > 1) {
		fprintf(stderr, "vllm_sim: one --fail-status, --fail-hang, --fail-die-after or "
			"--fail-context at a time\n");
		return -1;
	}
	if ((bad = sim_config_check(&s->cfg)) != NULL) {
		fprintf(stderr, "vllm_sim: %s\n", bad);
		return -1;
	}
	if (s->n_served == 0)
		s->served[s->n_served++] = s->root;
	if (s->kv_host == NULL)
		s->kv_host = s->host;
	return 0;
}

int main(int argc, char **argv)
{
	struct srv s;
	int rc;

	memset(&s, 0, sizeof(s));
	s.host = "127.0.0.1";
	s.root = "sim-model";
	s.version = "0.11.0";
	s.kv_port = 5600;
	s.time_scale = 1.0;
	s.rng = 0x9E3779B97F4A7C15ULL + 1;
	sim_config_defaults(&s.cfg);
	fault_clear(&s.fault);

	rc = parse_args(&s, argc, argv);
	if (rc == 0) {
		/* A client vanishing mid-write must not kill us. */
		signal(SIGPIPE, SIG_IGN);
		rc = run(&s);
	} else {
		rc = rc > 0 ? 0 : 2;
	}
	srv_free(&s);
	return rc;
}
