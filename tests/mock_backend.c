/*
 * mock_backend.c - a small OpenAI-compatible backend for switchyard's
 * end-to-end tests.
 *
 * Single-threaded libevent evhttp server. It answers the usual inference
 * paths with canned JSON (or an SSE stream), remembers the last inference
 * request so tests can see what the router forwarded, and can be told to
 * misbehave (error status, hang, close, delay, die mid-stream) either per
 * request via X-Mock-* headers or globally via POST /_mock/mode.  GET
 * /metrics answers as an idle vLLM does, or with the text a test POSTs to
 * /_mock/metrics.
 *
 * Lifetimes (libevent 2.1): a request we do not answer at once is kept in a
 * struct pending with a close callback on its connection. If the client
 * goes away, libevent detaches the unanswered request (evcon == NULL), frees
 * the connection and calls our close callback, which frees the request and
 * the pending state. Every path that ends a pending request first unhooks
 * that callback (pending_finish), so it can never run on freed state.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "test_server.h"

#define xcalloc(n) test_server_xcalloc("mock_backend", (n))

#define MAX_BODY (64 * 1024 * 1024)
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define MAX_MS (3600 * 1000)
#define MAX_COUNT 1000000

/* How to misbehave; also the effective plan for one request. */
struct mode {
	int status;		/* 0: answer normally */
	char retry_after[64];	/* "": no Retry-After */
	int hang;
	int close;
	int delay_ms;
	int chunks;
	int chunk_delay_ms;
	int die_after;		/* -1: never */
	int health_status;
};

enum action { ACT_HANG, ACT_CLOSE, ACT_REPLY, ACT_STREAM };
enum kind { K_CHAT, K_COMPLETION, K_EMBEDDING, K_OTHER };

struct mock;

/* A request that is not answered within its handler. */
struct pending {
	struct mock *m;
	struct pending *prev, *next;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;	/* NULL once it is dying */
	struct event *timer;
	enum action action;
	struct mode plan;
	int status;		/* ACT_REPLY */
	json_object *answer;	/* ACT_REPLY */
	json_object *model;	/* ACT_STREAM */
	int chat;		/* ACT_STREAM: chat or text completion */
	int started;		/* ACT_STREAM: status line sent */
	int sent;		/* ACT_STREAM: chunks sent */
};

struct mock {
	const char *host;
	const char *name;
	const char *port_file;
	int port;
	json_object *models;	/* array of model ids */
	json_object *name_js;	/* name and "hello from name", as JSON strings */
	json_object *hello_js;
	struct mode mode;
	struct event_base *base;
	struct evhttp *http;
	struct event *sig_term;
	struct event *sig_int;
	unsigned long requests;
	int inflight;
	json_object *last;	/* last inference request, or NULL */
	char *metrics;		/* GET /metrics answers this (POST /_mock/metrics) */
	int sleeping;		/* vLLM's sleep mode: POST /sleep, /wake_up */
	unsigned long scrapes;	/* GET /metrics served */
	struct pending *pending;
};


static void mode_defaults(struct mode *md)
{
	memset(md, 0, sizeof(*md));
	md->chunks = 5;
	md->die_after = -1;
	md->health_status = 200;
}

static int parse_int(const char *s, int min, int max, int *out)
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

/* Every integer knob of a mode: JSON key, command-line flag, request header. */
static const struct knob {
	const char *key;
	const char *flag;
	const char *header;	/* NULL: global only */
	size_t off;
	int min, max;		/* max 1: a boolean */
} knobs[] = {
	{ "status", "status", "X-Mock-Status", offsetof(struct mode, status), 0, 599 },
	{ "hang", "hang", "X-Mock-Hang", offsetof(struct mode, hang), 0, 1 },
	{ "close", "close", "X-Mock-Close", offsetof(struct mode, close), 0, 1 },
	{ "delay_ms", "delay-ms", "X-Mock-Delay-Ms", offsetof(struct mode, delay_ms), 0, MAX_MS },
	{ "chunks", "chunks", "X-Mock-Chunks", offsetof(struct mode, chunks), 0, MAX_COUNT },
	{ "chunk_delay_ms", "chunk-delay-ms", "X-Mock-Chunk-Delay-Ms",
	  offsetof(struct mode, chunk_delay_ms), 0, MAX_MS },
	{ "die_after", "die-after", "X-Mock-Die-After", offsetof(struct mode, die_after),
	  -1, MAX_COUNT },
	{ "health_status", "health-status", NULL, offsetof(struct mode, health_status), 200, 599 },
};
#define N_KNOBS (sizeof(knobs) / sizeof(knobs[0]))

static int *knob_ptr(struct mode *md, const struct knob *k)
{
	return (int *)((char *)md + k->off);
}

/* 1xx statuses would confuse clients and evhttp; status 0 means "normal". */
static int knob_set(struct mode *md, const struct knob *k, long v)
{
	if (v < k->min || v > k->max || (k->off == offsetof(struct mode, status) && v > 0 && v < 200))
		return -1;
	*knob_ptr(md, k) = (int)v;
	return 0;
}

/* From text (flag or header): a number, or true/false for booleans. */
static int knob_parse(struct mode *md, const struct knob *k, const char *s)
{
	int v;

	if (k->max == 1 && !strcasecmp(s, "true"))
		v = 1;
	else if (k->max == 1 && !strcasecmp(s, "false"))
		v = 0;
	else if (parse_int(s, INT_MIN, INT_MAX, &v) != 0)
		return -1;
	return knob_set(md, k, v);
}

/* ---- JSON answers ---- */

static json_object *error_json(const char *msg, const char *type, int code)
{
	json_object *err = json_object_new_object();
	json_object *o = json_object_new_object();

	json_object_object_add(err, "message", json_object_new_string(msg));
	json_object_object_add(err, "type", json_object_new_string(type));
	json_object_object_add(err, "code", json_object_new_int(code));
	json_object_object_add(o, "error", err);
	return o;
}

/* Send obj (consumed) as the whole answer. */
static void send_json(struct mock *m, struct evhttp_request *req, int status,
		      json_object *obj, const char *retry_after)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "X-Mock-Backend", m->name);
	if (retry_after != NULL && *retry_after != '\0')
		evhttp_add_header(out, "Retry-After", retry_after);
	if (buf != NULL)
		evbuffer_add_printf(buf, "%s", json_object_to_json_string_ext(obj, JSON_FLAGS));
	evhttp_send_reply(req, status, NULL, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	json_object_put(obj);
}

static void send_error(struct mock *m, struct evhttp_request *req, int code, const char *msg)
{
	send_json(m, req, code, error_json(msg, "invalid_request_error", code), NULL);
}

static json_object *mode_to_json(struct mode *md)
{
	json_object *o = json_object_new_object();
	size_t i;

	for (i = 0; i < N_KNOBS; i++) {
		int v = *knob_ptr(md, &knobs[i]);

		json_object_object_add(o, knobs[i].key, knobs[i].max == 1 ?
				       json_object_new_boolean(v) : json_object_new_int(v));
	}
	json_object_object_add(o, "retry_after", json_object_new_string(md->retry_after));
	return o;
}

/* The body is the whole new mode: absent (or null) keys get defaults. */
static int mode_from_json(struct mode *md, json_object *o, const char **bad)
{
	const struct knob *k;
	size_t i;

	mode_defaults(md);
	json_object_object_foreach(o, key, val) {
		*bad = key;
		if (json_object_is_type(val, json_type_null))
			continue;
		if (!strcmp(key, "retry_after")) {
			snprintf(md->retry_after, sizeof(md->retry_after), "%s",
				 json_object_get_string(val));
			continue;
		}
		for (k = NULL, i = 0; i < N_KNOBS && k == NULL; i++)
			if (!strcmp(key, knobs[i].key))
				k = &knobs[i];
		if (k == NULL || !(json_object_is_type(val, json_type_int) ||
				   json_object_is_type(val, json_type_boolean)) ||
		    knob_set(md, k, (long)json_object_get_int64(val)) != 0)
			return -1;
	}
	return 0;
}


static const char *method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	default: return "OTHER";
	}
}

static void remember_last(struct mock *m, struct evhttp_request *req,
			  const char *body, size_t len)
{
	json_object *o = json_object_new_object();
	json_object *h = json_object_new_object();
	struct evkeyval *kv;

	/* json-c replaces a repeated key, so the last header wins. */
	for (kv = evhttp_request_get_input_headers(req)->tqh_first; kv; kv = kv->next.tqe_next)
		json_object_object_add(h, kv->key, json_object_new_string(kv->value));
	json_object_object_add(o, "method",
			       json_object_new_string(method_name(evhttp_request_get_command(req))));
	json_object_object_add(o, "uri", json_object_new_string(evhttp_request_get_uri(req)));
	json_object_object_add(o, "headers", h);
	json_object_object_add(o, "body", json_object_new_string_len(body, (int)len));
	json_object_put(m->last);
	m->last = o;
}

static enum kind path_kind(const char *path)
{
	size_t n = strlen(path);

#define ENDS_WITH(s) (n >= sizeof(s) - 1 && !strcmp(path + n - (sizeof(s) - 1), s))
	if (ENDS_WITH("/chat/completions"))
		return K_CHAT;
	if (ENDS_WITH("/completions"))
		return K_COMPLETION;
	if (ENDS_WITH("/embeddings"))
		return K_EMBEDDING;
	return K_OTHER;
#undef ENDS_WITH
}

/* The model to echo: the body's "model", else our first model (new ref). */
static json_object *body_model(struct mock *m, json_object *body)
{
	json_object *v;

	if (json_object_object_get_ex(body, "model", &v) && v != NULL)
		return json_object_get(v);
	return json_object_get(json_object_array_get_idx(m->models, 0));
}

/*
 * Build a JSON object from a template; %s slots take serialized JSON values.
 * json-c accepts 'single quotes', which keeps the templates readable.
 */
__attribute__((format(printf, 1, 2)))
static json_object *jfmt(const char *fmt, ...)
{
	struct evbuffer *b = evbuffer_new();
	json_object *o = NULL;
	va_list ap;

	if (b == NULL)
		return NULL;
	va_start(ap, fmt);
	evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
	if (evbuffer_add(b, "", 1) == 0)
		o = json_tokener_parse((const char *)evbuffer_pullup(b, -1));
	evbuffer_free(b);
	return o;
}

static const char *js(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_FLAGS);
}

static json_object *build_answer(struct mock *m, enum kind kind, const char *path,
				 json_object *model)
{
	json_object *o;

	switch (kind) {
	case K_CHAT:
		return jfmt("{'id':'chatcmpl-mock','object':'chat.completion','model':%s,'backend':%s,"
			    "'choices':[{'index':0,'message':{'role':'assistant','content':%s},"
			    "'finish_reason':'stop'}],"
			    "'usage':{'prompt_tokens':1,'completion_tokens':3,'total_tokens':4}}",
			    js(model), js(m->name_js), js(m->hello_js));
	case K_COMPLETION:
		return jfmt("{'id':'cmpl-mock','object':'text_completion','model':%s,'backend':%s,"
			    "'choices':[{'index':0,'text':%s,'finish_reason':'stop'}]}",
			    js(model), js(m->name_js), js(m->hello_js));
	case K_EMBEDDING:
		return jfmt("{'object':'list','model':%s,'backend':%s,'data':[{'object':'embedding',"
			    "'index':0,'embedding':[0.1,0.2,0.3]}]}", js(model), js(m->name_js));
	default:
		o = jfmt("{'object':'mock','path':null,'model':%s,'backend':%s}",
			 js(model), js(m->name_js));
		/* Replacing a key keeps its place. */
		json_object_object_add(o, "path", json_object_new_string(path));
		return o;
	}
}

/* One SSE event carrying token i of a chat or text completion stream. */
static void add_stream_chunk(struct pending *p, struct evbuffer *buf, int i)
{
	const char *model = js(p->model), *name = js(p->m->name_js);
	json_object *o;

	if (p->chat)
		o = jfmt("{'id':'chatcmpl-mock','object':'chat.completion.chunk','model':%s,"
			 "'backend':%s,'choices':[{'index':0,'delta':{'content':'tok%d '}}]}",
			 model, name, i);
	else
		o = jfmt("{'id':'cmpl-mock','object':'text_completion','model':%s,'backend':%s,"
			 "'choices':[{'index':0,'text':'tok%d '}]}", model, name, i);
	evbuffer_add_printf(buf, "data: %s\n\n", js(o));
	json_object_put(o);
}

/* ---- pending requests ---- */

static void on_client_close(struct evhttp_connection *evcon, void *arg);
static void pending_tick(evutil_socket_t fd, short what, void *arg);

/*
 * evhttp stops reading once the request is in, so a client that goes away
 * would go unnoticed until we write. Do what evhttp itself does while
 * writing: keep its write/event callbacks, drop the read one, enable EV_READ.
 */
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

static struct pending *pending_new(struct mock *m, struct evhttp_request *req,
				   enum action action, const struct mode *plan)
{
	struct pending *p = xcalloc(sizeof(*p));

	p->m = m;
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	p->action = action;
	p->plan = *plan;
	p->timer = evtimer_new(m->base, pending_tick, p);
	if (p->timer == NULL) {
		fprintf(stderr, "mock_backend: evtimer_new failed\n");
		exit(1);
	}
	p->next = m->pending;
	if (m->pending != NULL)
		m->pending->prev = p;
	m->pending = p;
	m->inflight++;
	evhttp_connection_set_closecb(p->evcon, on_client_close, p);
	watch_client_close(p->evcon);
	return p;
}

/* Forget p. Does not touch p->req, which the caller answers or frees. */
static void pending_finish(struct pending *p)
{
	struct mock *m = p->m;

	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		m->pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	m->inflight--;
	/* The callback would outlive p: the connection may serve more requests. */
	if (p->evcon != NULL)
		evhttp_connection_set_closecb(p->evcon, NULL, NULL);
	event_free(p->timer);
	json_object_put(p->answer);
	json_object_put(p->model);
	free(p);
}

static void arm(struct pending *p, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(p->timer, &tv);
}

/* Close the connection without (further) answer; frees the request too. */
static void drop(struct pending *p)
{
	struct evhttp_connection *evcon = p->evcon;

	pending_finish(p);
	evhttp_connection_free(evcon);
}

static void on_client_close(struct evhttp_connection *evcon, void *arg)
{
	struct pending *p = arg;
	struct evhttp_request *req = p->req;
	/* On EOF libevent detaches an unanswered request and leaves it to us. */
	int orphaned = evhttp_request_get_connection(req) == NULL;

	p->evcon = NULL;
	pending_finish(p);
	if (orphaned)
		evhttp_request_free(req);
}

static void stream_step(struct pending *p)
{
	struct evhttp_request *req = p->req;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *buf;

	if (!p->started) {
		evhttp_add_header(out, "Content-Type", "text/event-stream");
		evhttp_add_header(out, "Cache-Control", "no-cache");
		evhttp_add_header(out, "X-Mock-Backend", p->m->name);
		evhttp_send_reply_start(req, 200, NULL);
		p->started = 1;
		arm(p, 0);
		return;
	}
	if (p->plan.die_after >= 0 && p->sent >= p->plan.die_after) {
		/* Let the chunks reach the socket first, or the client sees fewer. */
		struct bufferevent *bev = evhttp_connection_get_bufferevent(p->evcon);

		if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
			arm(p, 1);
		else
			drop(p);
		return;
	}
	buf = evbuffer_new();
	if (buf == NULL) {
		drop(p);
		return;
	}
	if (p->sent < p->plan.chunks) {
		add_stream_chunk(p, buf, p->sent++);
		evhttp_send_reply_chunk(req, buf);
		arm(p, p->plan.chunk_delay_ms);
	} else {
		evbuffer_add_printf(buf, "data: [DONE]\n\n");
		evhttp_send_reply_chunk(req, buf);
		/* reply_end may free the connection at once (HTTP/1.0): unhook first. */
		pending_finish(p);
		evhttp_send_reply_end(req);
	}
	evbuffer_free(buf);
}

static void pending_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	switch (p->action) {
	case ACT_CLOSE:
		drop(p);
		break;
	case ACT_REPLY:
		/* evhttp_send_reply only queues output: no close callback meanwhile. */
		send_json(p->m, p->req, p->status, p->answer, p->plan.retry_after);
		p->answer = NULL;
		pending_finish(p);
		break;
	case ACT_STREAM:
		stream_step(p);
		break;
	case ACT_HANG:
		break;
	}
}

/* ---- handlers ---- */

/* Per-request headers override the global mode; bad values are ignored. */
static void apply_headers(struct mode *pl, struct evkeyvalq *h)
{
	const char *v;
	size_t i;

	for (i = 0; i < N_KNOBS; i++)
		if (knobs[i].header != NULL && (v = evhttp_find_header(h, knobs[i].header)))
			knob_parse(pl, &knobs[i], v);
	if ((v = evhttp_find_header(h, "X-Mock-Retry-After")))
		snprintf(pl->retry_after, sizeof(pl->retry_after), "%s", v);
}

static int is_multipart(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	return ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0;
}

/* vLLM's sleep mode, as far as a router sees it. */
static void handle_sleep(struct mock *m, struct evhttp_request *req, const char *path)
{
	m->requests++;
	remember_last(m, req, "", 0);
	if (!strcmp(path, "/is_sleeping")) {
		send_json(m, req, 200, jfmt("{'is_sleeping':%s}", m->sleeping ? "true" : "false"),
			  NULL);
		return;
	}
	m->sleeping = !strcmp(path, "/sleep");
	send_json(m, req, 200, json_object_new_object(), NULL);
}

static void handle_inference(struct mock *m, struct evhttp_request *req, const char *path)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *raw = len ? (const char *)evbuffer_pullup(in, -1) : "";
	enum kind kind = path_kind(path);
	json_object *body = NULL, *model = NULL, *answer = NULL, *v;
	enum action action = ACT_REPLY;
	struct mode plan = m->mode;
	struct pending *p;
	int status = 200;
	char msg[64];

	m->requests++;
	remember_last(m, req, raw, len);
	apply_headers(&plan, evhttp_request_get_input_headers(req));

	if (plan.close) {
		action = ACT_CLOSE;
	} else if (plan.hang) {
		action = ACT_HANG;
	} else if (plan.status != 0) {
		status = plan.status;
		snprintf(msg, sizeof(msg), "mock status %d", status);
		answer = error_json(msg, "mock", status);
	} else if (is_multipart(req)) {
		/* a form (a transcription): the test reads what came with /_mock/last */
		answer = json_object_new_object();
		json_object_object_add(answer, "text", json_object_get(m->hello_js));
		json_object_object_add(answer, "backend", json_object_get(m->name_js));
	} else if ((body = len == 0 && evhttp_request_get_command(req) == EVHTTP_REQ_GET
				   ? json_object_new_object()
				   : test_server_parse_object(raw, len)) == NULL) {
		status = 400;
		answer = error_json("mock: bad json", "invalid_request_error", 400);
	} else {
		model = body_model(m, body);
		if ((kind == K_CHAT || kind == K_COMPLETION) &&
		    json_object_object_get_ex(body, "stream", &v) &&
		    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v))
			action = ACT_STREAM;
		else
			answer = build_answer(m, kind, path, model);
	}
	if (plan.status == 0)
		plan.retry_after[0] = '\0';

	if (action == ACT_REPLY && plan.delay_ms == 0) {
		send_json(m, req, status, answer, plan.retry_after);
	} else {
		p = pending_new(m, req, action, &plan);
		p->status = status;
		p->answer = answer;
		p->model = json_object_get(model);
		p->chat = kind == K_CHAT;
		if (action != ACT_HANG)
			arm(p, plan.delay_ms);
	}
	json_object_put(model);
	json_object_put(body);
}

static void handle_health(struct mock *m, struct evhttp_request *req)
{
	int code = m->mode.health_status;

	send_json(m, req, code, code == 200 ? jfmt("{'status':'ok'}") :
		  jfmt("{'status':'error','code':%d}", code), NULL);
}

static void handle_models(struct mock *m, struct evhttp_request *req)
{
	json_object *o = json_object_new_object();
	json_object *data = json_object_new_array();
	size_t i;

	for (i = 0; i < json_object_array_length(m->models); i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "id", json_object_get(json_object_array_get_idx(m->models, i)));
		json_object_object_add(e, "object", json_object_new_string("model"));
		json_object_object_add(e, "owned_by", json_object_new_string("mock"));
		json_object_array_add(data, e);
	}
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "backend", json_object_new_string(m->name));
	json_object_object_add(o, "data", data);
	send_json(m, req, 200, o, NULL);
}

/* What vLLM's /metrics says when idle; a test sets its own text (values,
 * or garbage) with POST /_mock/metrics. */
static const char idle_metrics[] =
	"# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
	"# TYPE vllm:num_requests_running gauge\n"
	"vllm:num_requests_running{engine=\"0\",model_name=\"mock\"} 0.0\n"
	"# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
	"# TYPE vllm:num_requests_waiting gauge\n"
	"vllm:num_requests_waiting{engine=\"0\",model_name=\"mock\"} 0.0\n"
	"# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
	"# TYPE vllm:kv_cache_usage_perc gauge\n"
	"vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"mock\"} 0.0\n";

static void handle_metrics(struct mock *m, struct evhttp_request *req)
{
	struct evbuffer *out = evbuffer_new();
	const char *text = m->metrics != NULL ? m->metrics : idle_metrics;

	m->scrapes++;
	evbuffer_add(out, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void handle_set_metrics(struct mock *m, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char *text = malloc(len + 1);

	if (text == NULL) {
		send_error(m, req, 500, "mock: out of memory");
		return;
	}
	evbuffer_remove(in, text, len);
	text[len] = '\0';
	free(m->metrics);
	m->metrics = text;
	send_json(m, req, 200, jfmt("{'status':'ok'}"), NULL);
}

static void handle_set_mode(struct mock *m, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *raw = len ? (const char *)evbuffer_pullup(in, -1) : "";
	json_object *body = test_server_parse_object(raw, len);
	const char *bad = "";
	struct mode md;
	char msg[160];

	if (body == NULL) {
		send_error(m, req, 400, "mock: bad json");
	} else if (mode_from_json(&md, body, &bad) != 0) {
		snprintf(msg, sizeof(msg), "mock: bad mode key '%.100s'", bad);
		send_error(m, req, 400, msg);
	} else {
		m->mode = md;
		send_json(m, req, 200, mode_to_json(&m->mode), NULL);
	}
	json_object_put(body);
}

/* /_mock/...: never subject to the failure modes. */
static void handle_control(struct mock *m, struct evhttp_request *req,
			   enum evhttp_cmd_type cmd, const char *what)
{
	if (cmd == EVHTTP_REQ_GET && !strcmp(what, "last")) {
		if (m->last != NULL)
			send_json(m, req, 200, json_object_get(m->last), NULL);
		else
			send_json(m, req, 404, jfmt("{'error':'none'}"), NULL);
	} else if (cmd == EVHTTP_REQ_GET && !strcmp(what, "stats")) {
		send_json(m, req, 200, jfmt("{'requests':%lu,'inflight':%d,'scrapes':%lu}",
					    m->requests, m->inflight, m->scrapes), NULL);
	} else if (cmd == EVHTTP_REQ_GET && !strcmp(what, "mode")) {
		send_json(m, req, 200, mode_to_json(&m->mode), NULL);
	} else if (cmd == EVHTTP_REQ_POST && !strcmp(what, "mode")) {
		handle_set_mode(m, req);
	} else if (cmd == EVHTTP_REQ_POST && !strcmp(what, "metrics")) {
		handle_set_metrics(m, req);
	} else if (cmd == EVHTTP_REQ_POST && !strcmp(what, "reset")) {
		m->requests = 0;
		json_object_put(m->last);
		m->last = NULL;
		send_json(m, req, 200, jfmt("{'status':'ok'}"), NULL);
	} else {
		send_error(m, req, 404, "mock: no such route");
	}
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct mock *m = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (path == NULL || *path == '\0')
		path = "/";
	if (!strcmp(path, "/health"))
		handle_health(m, req);
	else if (!strncmp(path, "/_mock/", 7))
		handle_control(m, req, cmd, path + 7);
	else if (cmd == EVHTTP_REQ_GET && !strcmp(path, "/v1/models"))
		handle_models(m, req);
	else if (cmd == EVHTTP_REQ_GET && !strcmp(path, "/metrics"))
		handle_metrics(m, req);
	else if ((cmd == EVHTTP_REQ_POST && (!strcmp(path, "/sleep") || !strcmp(path, "/wake_up"))) ||
		 (cmd == EVHTTP_REQ_GET && !strcmp(path, "/is_sleeping")))
		handle_sleep(m, req, path);
	else if (cmd == EVHTTP_REQ_GET && !strcmp(path, "/v1/audio/voices"))
		handle_inference(m, req, path);
	else if (cmd == EVHTTP_REQ_GET)
		send_error(m, req, 404, "mock: no such route");
	else
		handle_inference(m, req, path);
}

/* ---- setup ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct mock *m = arg;

	event_base_loopbreak(m->base);
}



static int run(struct mock *m)
{
	struct evhttp_bound_socket *bound;

	m->base = event_base_new();
	if (m->base == NULL || (m->http = evhttp_new(m->base)) == NULL) {
		fprintf(stderr, "mock_backend: libevent init failed\n");
		return 1;
	}
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
				   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_max_body_size(m->http, MAX_BODY);
	/* A hang should outlast any client timeout a test would use. */
	evhttp_set_timeout(m->http, 3600);
	evhttp_set_gencb(m->http, on_request, m);

	bound = evhttp_bind_socket_with_handle(m->http, m->host, (ev_uint16_t)m->port);
	if (bound == NULL || (m->port = test_server_bound_port(bound)) < 0) {
		fprintf(stderr, "mock_backend: cannot listen on %s:%d: %s\n",
			m->host, m->port, strerror(errno));
		return 1;
	}
	if (m->port_file != NULL && test_server_write_ports("mock_backend", m->port_file, &m->port, 1) != 0)
		return 1;

	m->sig_term = evsignal_new(m->base, SIGTERM, on_signal, m);
	m->sig_int = evsignal_new(m->base, SIGINT, on_signal, m);
	if (m->sig_term == NULL || m->sig_int == NULL ||
	    evsignal_add(m->sig_term, NULL) != 0 || evsignal_add(m->sig_int, NULL) != 0) {
		fprintf(stderr, "mock_backend: cannot handle signals\n");
		return 1;
	}
	fprintf(stderr, "mock_backend %s listening on %s:%d\n", m->name, m->host, m->port);
	return event_base_dispatch(m->base) < 0 ? 1 : 0;
}

static void mock_free(struct mock *m)
{
	/* Pending requests stay on their connections; evhttp_free frees both. */
	while (m->pending != NULL)
		pending_finish(m->pending);
	if (m->http != NULL)
		evhttp_free(m->http);
	if (m->sig_term != NULL)
		event_free(m->sig_term);
	if (m->sig_int != NULL)
		event_free(m->sig_int);
	if (m->base != NULL)
		event_base_free(m->base);
	json_object_put(m->models);
	json_object_put(m->name_js);
	json_object_put(m->hello_js);
	json_object_put(m->last);
	free(m->metrics);
}

static json_object *split_models(const char *list)
{
	json_object *arr = json_object_new_array();
	const char *s = list, *comma;

	while (*s != '\0') {
		comma = strchr(s, ',');
		if (comma == NULL)
			comma = s + strlen(s);
		if (comma > s)
			json_object_array_add(arr, json_object_new_string_len(s, (int)(comma - s)));
		s = *comma != '\0' ? comma + 1 : comma;
	}
	return arr;
}

static void usage(void)
{
	printf("usage: mock_backend --port P [--host H] [--name NAME] [--models m1,m2]\n"
	       "       [--port-file FILE] [--status N] [--retry-after S] [--hang] [--close]\n"
	       "       [--delay-ms N] [--chunks N] [--chunk-delay-ms N] [--die-after K]\n"
	       "       [--health-status N]\n");
}

/* Returns 0, 1 for --help, or -1 after printing one line. */
static int parse_args(struct mock *m, int argc, char **argv)
{
	enum { O_PORT = 1000, O_HOST, O_NAME, O_MODELS, O_PORT_FILE, O_RETRY, O_HELP, O_KNOB };
	struct option opts[7 + N_KNOBS + 1] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "host", required_argument, NULL, O_HOST },
		{ "name", required_argument, NULL, O_NAME },
		{ "models", required_argument, NULL, O_MODELS },
		{ "port-file", required_argument, NULL, O_PORT_FILE },
		{ "retry-after", required_argument, NULL, O_RETRY },
		{ "help", no_argument, NULL, O_HELP },
	};
	const char *models = "mock-model";
	int c, idx = 0, rc = 0;
	char *hello;
	size_t i, n;

	for (i = 0; i < N_KNOBS; i++) {
		opts[7 + i].name = knobs[i].flag;
		opts[7 + i].has_arg = knobs[i].max == 1 ? no_argument : required_argument;
		opts[7 + i].val = O_KNOB + (int)i;
	}
	m->port = -1;
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
		switch (c) {
		case O_PORT: rc = parse_int(optarg, 0, 65535, &m->port); break;
		case O_HOST: m->host = optarg; break;
		case O_NAME: m->name = optarg; break;
		case O_MODELS: models = optarg; break;
		case O_PORT_FILE: m->port_file = optarg; break;
		case O_RETRY:
			snprintf(m->mode.retry_after, sizeof(m->mode.retry_after), "%s", optarg);
			break;
		case O_HELP: usage(); return 1;
		case ':':
			fprintf(stderr, "mock_backend: missing value for %s\n", argv[optind - 1]);
			return -1;
		case '?':
			fprintf(stderr, "mock_backend: bad option '%s' (try --help)\n", argv[optind - 1]);
			return -1;
		default:	/* a knob; boolean flags take no value */
			rc = knob_parse(&m->mode, &knobs[c - O_KNOB], optarg ? optarg : "1");
			break;
		}
	}
	if (rc != 0) {
		fprintf(stderr, "mock_backend: bad value for --%s: '%s'\n", opts[idx].name, optarg);
		return -1;
	}
	if (optind < argc || m->port < 0) {
		fprintf(stderr, "mock_backend: %s\n",
			optind < argc ? "unexpected argument" : "--port is required");
		return -1;
	}
	m->models = split_models(models);
	if (json_object_array_length(m->models) == 0) {
		fprintf(stderr, "mock_backend: --models needs at least one name\n");
		return -1;
	}
	n = strlen(m->name) + sizeof("hello from ");
	hello = xcalloc(n);
	snprintf(hello, n, "hello from %s", m->name);
	m->name_js = json_object_new_string(m->name);
	m->hello_js = json_object_new_string(hello);
	free(hello);
	return 0;
}

int main(int argc, char **argv)
{
	struct mock m;
	int rc;

	memset(&m, 0, sizeof(m));
	m.host = "127.0.0.1";
	m.name = "mock";
	mode_defaults(&m.mode);

	rc = parse_args(&m, argc, argv);
	if (rc == 0) {
		/* A client vanishing mid-write must not kill us. */
		signal(SIGPIPE, SIG_IGN);
		rc = run(&m);
	} else {
		rc = rc > 0 ? 0 : 2;
	}
	mock_free(&m);
	return rc;
}
