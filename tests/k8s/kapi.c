/*
 * kapi.c - the fake API server's reading side: what a path is (routing),
 * the discovery documents, LIST and GET, and Tables for kubectl's default
 * output. Writes are kwrite.c's, watches kwatch.c's.
 *
 * Discovery is the plain ("legacy") kind: /api, /api/v1, /apis and one
 * document per group version. kubectl asks for the aggregated kind first
 * and takes the plain one when the answer's Content-Type says so.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE	/* timegm */

#include "kfake.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/keyvalq_struct.h>

enum { D_NONE, D_ROOT, D_API, D_APIS, D_GROUP, D_GROUP_VERSION, D_OPENAPI_V2, D_OPENAPI_V3,
       D_OPENAPI_V3_GV };

#define MAX_SEGS 12

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	return p;
}

/* ---- routing ---- */

static int is_group(const char *g)
{
	int i;

	for (i = 0; i < N_KRES; i++)
		if (*kres_all[i].group != '\0' && !strcmp(kres_all[i].group, g))
			return 1;
	return 0;
}

static int is_group_version(const char *g, const char *v)
{
	int i;

	for (i = 0; i < N_KRES; i++)
		if (!strcmp(kres_all[i].group, g) && !strcmp(kres_all[i].version, v))
			return 1;
	return 0;
}

static int no_route(struct kreq *kr, int code)
{
	kr->route_err = code;
	return -1;
}

/* What a discovery path names. */
static void doc(struct kreq *kr, int which, const char *group, const char *version)
{
	kr->discovery = which;
	kr->group = group;
	kr->version = version;
}

/* [watch/] [namespaces/NS/] RES [/NAME [/status]] after a group version. */
static int route_resource(struct kreq *kr, const char *group, const char *version,
			  char **seg, int n)
{
	int i = 0, collection;

	if (i < n && !strcmp(seg[i], "watch")) {
		kr->watch_path = 1;
		i++;
	}
	if (n - i >= 3 && !strcmp(seg[i], "namespaces")) {
		kr->ns = xstrdup(seg[i + 1]);
		i += 2;
	}
	if (i >= n || (kr->res = kres_find(group, version, seg[i])) < 0)
		return no_route(kr, 404);
	i++;
	if (i < n)
		kr->name = xstrdup(seg[i++]);
	if (i < n) {
		if (strcmp(seg[i], "status") != 0 || !kres_all[kr->res].has_status || kr->watch_path)
			return no_route(kr, 404);
		kr->status_sub = 1;
		i++;
	}
	/* Every resource here is namespaced: a name needs a namespace. */
	if (i < n || (kr->name != NULL && kr->ns == NULL) ||
	    (kr->ns != NULL && *kr->ns == '\0') || (kr->name != NULL && *kr->name == '\0'))
		return no_route(kr, 404);
	collection = kr->name == NULL;
	switch (kr->cmd) {
	case EVHTTP_REQ_GET:
		kr->verb = kr->watch_path || (collection && kq_true(kr, "watch")) ? KV_WATCH :
			collection ? KV_LIST : KV_GET;
		return 0;
	case EVHTTP_REQ_POST:
		kr->verb = KV_CREATE;
		if (collection && kr->ns != NULL && !kr->watch_path)
			return 0;
		break;
	case EVHTTP_REQ_PUT:
		kr->verb = KV_UPDATE;
		if (!collection && !kr->watch_path)
			return 0;
		break;
	case EVHTTP_REQ_PATCH:
		kr->verb = KV_PATCH;
		if (!collection && !kr->watch_path)
			return 0;
		break;
	case EVHTTP_REQ_DELETE:
		kr->verb = collection ? KV_DELETECOLLECTION : KV_DELETE;
		if (!kr->watch_path && !kr->status_sub)
			return 0;
		break;
	default:
		break;
	}
	return no_route(kr, 405);
}

int kapi_route(struct kreq *kr)
{
	char *seg[MAX_SEGS], *p, *save = NULL;
	int n = 0;

	kr->res = -1;
	if (strlen(kr->path) >= sizeof(kr->seg_buf))
		return no_route(kr, 404);
	snprintf(kr->seg_buf, sizeof(kr->seg_buf), "%s", kr->path);
	for (p = strtok_r(kr->seg_buf, "/", &save); p != NULL; p = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGS)
			return no_route(kr, 404);
		seg[n++] = p;
	}
	kr->verb = KV_DISCOVERY;
	if (n == 0) {
		kr->discovery = D_ROOT;
	} else if (!strcmp(seg[0], "api")) {
		if (n == 1)
			kr->discovery = D_API;
		else if (strcmp(seg[1], "v1") != 0)
			kr->route_err = 404;
		else if (n == 2)
			doc(kr, D_GROUP_VERSION, "", "v1");
		else
			return route_resource(kr, "", "v1", seg + 2, n - 2);
	} else if (!strcmp(seg[0], "apis")) {
		if (n == 1)
			kr->discovery = D_APIS;
		else if (!is_group(seg[1]))
			kr->route_err = 404;
		else if (n == 2)
			doc(kr, D_GROUP, seg[1], NULL);
		else if (!is_group_version(seg[1], seg[2]))
			kr->route_err = 404;
		else if (n == 3)
			doc(kr, D_GROUP_VERSION, seg[1], seg[2]);
		else
			return route_resource(kr, seg[1], seg[2], seg + 3, n - 3);
	} else if (!strcmp(seg[0], "openapi") && n == 2 && !strcmp(seg[1], "v2")) {
		kr->discovery = D_OPENAPI_V2;
	} else if (!strcmp(seg[0], "openapi") && n == 2 && !strcmp(seg[1], "v3")) {
		kr->discovery = D_OPENAPI_V3;
	} else if (!strcmp(seg[0], "openapi") && n >= 4 && !strcmp(seg[1], "v3")) {
		if (n == 4 && !strcmp(seg[2], "api") && !strcmp(seg[3], "v1"))
			doc(kr, D_OPENAPI_V3_GV, "", "v1");
		else if (n == 5 && !strcmp(seg[2], "apis") && is_group_version(seg[3], seg[4]))
			doc(kr, D_OPENAPI_V3_GV, seg[3], seg[4]);
		else
			kr->route_err = 404;
	} else {
		kr->verb = KV_OTHER;
		kr->route_err = 404;
	}
	if (kr->route_err == 0 && kr->cmd != EVHTTP_REQ_GET)
		kr->route_err = 405;
	return kr->route_err ? -1 : 0;
}

/* ---- discovery ---- */

static json_object *jstrs(const char *const *s)
{
	json_object *a = json_object_new_array();

	for (; *s != NULL; s++)
		json_object_array_add(a, json_object_new_string(*s));
	return a;
}

json_object *kapi_version(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "major", json_object_new_string("1"));
	json_object_object_add(o, "minor", json_object_new_string("32"));
	json_object_object_add(o, "gitVersion", json_object_new_string("v1.32.0-fake"));
	json_object_object_add(o, "gitCommit", json_object_new_string("0000000000000000000000000000000000000000"));
	json_object_object_add(o, "gitTreeState", json_object_new_string("clean"));
	json_object_object_add(o, "buildDate", json_object_new_string("2024-12-11T00:00:00Z"));
	json_object_object_add(o, "goVersion", json_object_new_string("go1.23.0"));
	json_object_object_add(o, "compiler", json_object_new_string("gc"));
	json_object_object_add(o, "platform", json_object_new_string("linux/amd64"));
	return o;
}

static json_object *group_version_for_discovery(const char *group, const char *version)
{
	json_object *o = json_object_new_object();
	char gv[128];

	snprintf(gv, sizeof(gv), "%s/%s", group, version);
	json_object_object_add(o, "groupVersion", json_object_new_string(gv));
	json_object_object_add(o, "version", json_object_new_string(version));
	return o;
}

static json_object *api_group(const char *group)
{
	json_object *o = json_object_new_object(), *vs = json_object_new_array();
	int i;

	json_object_object_add(o, "name", json_object_new_string(group));
	for (i = 0; i < N_KRES; i++)
		if (!strcmp(kres_all[i].group, group)) {
			json_object_array_add(vs, group_version_for_discovery(group, kres_all[i].version));
			break;	/* one version per group here */
		}
	json_object_object_add(o, "versions", vs);
	json_object_object_add(o, "preferredVersion",
			       json_object_get(json_object_array_get_idx(vs, 0)));
	return o;
}

static json_object *resource_list(const char *group, const char *version)
{
	static const char *const verbs[] = { "create", "delete", "deletecollection", "get", "list",
					     "patch", "update", "watch", NULL };
	static const char *const status_verbs[] = { "get", "patch", "update", NULL };
	static const char *const all[] = { "all", NULL };
	json_object *o = json_object_new_object(), *rs = json_object_new_array(), *r;
	char gv[128], name[64];
	int i;

	if (*group != '\0')
		snprintf(gv, sizeof(gv), "%s/%s", group, version);
	else
		snprintf(gv, sizeof(gv), "%s", version);
	json_object_object_add(o, "kind", json_object_new_string("APIResourceList"));
	json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(o, "groupVersion", json_object_new_string(gv));
	for (i = 0; i < N_KRES; i++) {
		const struct kres *k = &kres_all[i];

		if (strcmp(k->group, group) != 0 || strcmp(k->version, version) != 0)
			continue;
		r = json_object_new_object();
		json_object_object_add(r, "name", json_object_new_string(k->plural));
		json_object_object_add(r, "singularName", json_object_new_string(k->singular));
		json_object_object_add(r, "namespaced", json_object_new_boolean(1));
		json_object_object_add(r, "kind", json_object_new_string(k->kind));
		json_object_object_add(r, "verbs", jstrs(verbs));
		if (k->short_name != NULL) {
			const char *const sn[] = { k->short_name, NULL };

			json_object_object_add(r, "shortNames", jstrs(sn));
		}
		if (i != KRES_ENDPOINTSLICES)
			json_object_object_add(r, "categories", jstrs(all));
		json_object_array_add(rs, r);
		if (k->has_status) {
			r = json_object_new_object();
			snprintf(name, sizeof(name), "%s/status", k->plural);
			json_object_object_add(r, "name", json_object_new_string(name));
			json_object_object_add(r, "singularName", json_object_new_string(""));
			json_object_object_add(r, "namespaced", json_object_new_boolean(1));
			json_object_object_add(r, "kind", json_object_new_string(k->kind));
			json_object_object_add(r, "verbs", jstrs(status_verbs));
			json_object_array_add(rs, r);
		}
	}
	json_object_object_add(o, "resources", rs);
	return o;
}

/*
 * OpenAPI v3, as little as kubectl reads: the root lists one document per
 * group version, and each has a PATCH operation per kind that takes the
 * fieldValidation parameter, which tells kubectl to leave validation to
 * the server (without it kubectl validates on its side and wants the whole
 * schema). This server accepts the parameter and does not act on it.
 */
static json_object *openapi_v3_root(void)
{
	json_object *o = json_object_new_object(), *paths = json_object_new_object(), *p;
	char key[128], url[160];
	int i;

	for (i = 0; i < N_KRES; i++) {
		const struct kres *k = &kres_all[i];

		if (*k->group != '\0')
			snprintf(key, sizeof(key), "apis/%s/%s", k->group, k->version);
		else
			snprintf(key, sizeof(key), "api/%s", k->version);
		snprintf(url, sizeof(url), "/openapi/v3/%s?hash=FAKE0001", key);
		p = json_object_new_object();
		json_object_object_add(p, "serverRelativeURL", json_object_new_string(url));
		json_object_object_add(paths, key, p);
	}
	json_object_object_add(o, "paths", paths);
	return o;
}

static json_object *openapi_v3_gv(const char *group, const char *version)
{
	json_object *o = json_object_new_object(), *paths = json_object_new_object();
	json_object *info = json_object_new_object();
	char path[256];
	int i;

	json_object_object_add(o, "openapi", json_object_new_string("3.0.0"));
	json_object_object_add(info, "title", json_object_new_string("Kubernetes"));
	json_object_object_add(info, "version", json_object_new_string("v1.32.0-fake"));
	json_object_object_add(o, "info", info);
	for (i = 0; i < N_KRES; i++) {
		const struct kres *k = &kres_all[i];
		json_object *item, *op, *params, *param, *gvk, *schema;

		if (strcmp(k->group, group) != 0 || strcmp(k->version, version) != 0)
			continue;
		if (*group)
			snprintf(path, sizeof(path), "/apis/%s/%s/namespaces/{namespace}/%s/{name}",
				 group, version, k->plural);
		else
			snprintf(path, sizeof(path), "/api/%s/namespaces/{namespace}/%s/{name}",
				 version, k->plural);
		op = json_object_new_object();
		gvk = json_object_new_object();
		json_object_object_add(gvk, "group", json_object_new_string(group));
		json_object_object_add(gvk, "kind", json_object_new_string(k->kind));
		json_object_object_add(gvk, "version", json_object_new_string(version));
		json_object_object_add(op, "x-kubernetes-group-version-kind", gvk);
		json_object_object_add(op, "x-kubernetes-action", json_object_new_string("patch"));
		params = json_object_new_array();
		param = json_object_new_object();
		json_object_object_add(param, "name", json_object_new_string("fieldValidation"));
		json_object_object_add(param, "in", json_object_new_string("query"));
		schema = json_object_new_object();
		json_object_object_add(schema, "type", json_object_new_string("string"));
		json_object_object_add(param, "schema", schema);
		json_object_array_add(params, param);
		param = json_object_new_object();
		json_object_object_add(param, "name", json_object_new_string("dryRun"));
		json_object_object_add(param, "in", json_object_new_string("query"));
		schema = json_object_new_object();
		json_object_object_add(schema, "type", json_object_new_string("string"));
		json_object_object_add(param, "schema", schema);
		json_object_array_add(params, param);
		json_object_object_add(op, "parameters", params);
		item = json_object_new_object();
		json_object_object_add(item, "patch", op);
		json_object_object_add(paths, path, item);
	}
	json_object_object_add(o, "paths", paths);
	json_object_object_add(o, "components", json_object_new_object());
	return o;
}

static void serve_discovery(struct kreq *kr)
{
	static const char *const root_paths[] = {
		"/api", "/api/v1", "/apis", "/apis/discovery.k8s.io", "/apis/discovery.k8s.io/v1",
		"/healthz", "/livez", "/openapi/v2", "/openapi/v3", "/readyz", "/version", NULL
	};
	json_object *o, *a;
	int i, seen;

	switch (kr->discovery) {
	case D_ROOT:
		o = json_object_new_object();
		json_object_object_add(o, "paths", jstrs(root_paths));
		break;
	case D_API:
		o = json_object_new_object();
		a = json_object_new_array();
		json_object_object_add(o, "kind", json_object_new_string("APIVersions"));
		json_object_array_add(a, json_object_new_string("v1"));
		json_object_object_add(o, "versions", a);
		a = json_object_new_array();
		{
			json_object *cidr = json_object_new_object();
			char addr[300];

			snprintf(addr, sizeof(addr), "%s:%d", kr->f->host, kr->f->port);
			json_object_object_add(cidr, "clientCIDR", json_object_new_string("0.0.0.0/0"));
			json_object_object_add(cidr, "serverAddress", json_object_new_string(addr));
			json_object_array_add(a, cidr);
		}
		json_object_object_add(o, "serverAddressByClientCIDRs", a);
		break;
	case D_APIS:
		o = json_object_new_object();
		a = json_object_new_array();
		json_object_object_add(o, "kind", json_object_new_string("APIGroupList"));
		json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
		for (i = 0; i < N_KRES; i++) {
			int j;

			if (*kres_all[i].group == '\0')
				continue;
			for (seen = 0, j = 0; j < i; j++)
				seen |= !strcmp(kres_all[j].group, kres_all[i].group);
			if (!seen)
				json_object_array_add(a, api_group(kres_all[i].group));
		}
		json_object_object_add(o, "groups", a);
		break;
	case D_GROUP:
		o = api_group(kr->group);
		json_object_object_add(o, "kind", json_object_new_string("APIGroup"));
		json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
		break;
	case D_GROUP_VERSION:
		o = resource_list(kr->group, kr->version);
		break;
	case D_OPENAPI_V3:
		o = openapi_v3_root();
		break;
	case D_OPENAPI_V3_GV:
		o = openapi_v3_gv(kr->group, kr->version);
		break;
	default:	/* OpenAPI v2 is not served: kubectl does without it */
		kf_fail(kr, 404, "NotFound", NULL, NULL, "the server could not find the requested resource");
		return;
	}
	kf_send_json(kr, 200, o);
}

/* ---- lists ---- */

json_object *kapi_item(json_object *obj)
{
	json_object *v = json_object_new_object();

	json_object_object_foreach(obj, k, val)
		if (strcmp(k, "kind") != 0 && strcmp(k, "apiVersion") != 0)
			json_object_object_add(v, k, json_object_get(val));
	return v;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* Continue tokens: base64url of {"rv":N,"start":"NS/NAME"}, the list's
 * version and the last key it returned. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *out = malloc(n / 3 * 4 + 8);

	if (out == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = b64[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = b64[v & 63];
	}
	out[o] = '\0';
	return out;
}

static char *b64_decode(const char *s)
{
	size_t n = strlen(s), o = 0, i;
	char *out = malloc(n + 1);
	unsigned v = 0;
	int bits = 0;

	if (out == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		const char *c = strchr(b64, s[i]);

		if (s[i] == '=' )
			break;
		if (c == NULL || s[i] == '\0') {
			free(out);
			return NULL;
		}
		v = (v << 6) | (unsigned)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return out;
}

static char *continue_token(int64_t rv, const char *ns, const char *name)
{
	json_object *o = json_object_new_object();
	char key[600], *tok;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	json_object_object_add(o, "v", json_object_new_string("meta.k8s.io/v1"));
	json_object_object_add(o, "rv", json_object_new_int64(rv));
	json_object_object_add(o, "start", json_object_new_string(key));
	tok = b64_encode(json_object_to_json_string_ext(o, KF_JSON));
	json_object_put(o);
	return tok;
}

/* 0 and the token's version (-1: the latest) and start key, or -1. */
static int parse_continue(const char *tok, int64_t *rv, char *start, size_t len)
{
	char *text = b64_decode(tok);
	json_object *o = text ? json_tokener_parse(text) : NULL, *v;
	int rc = -1;

	if (json_object_object_get_ex(o, "rv", &v) && json_object_is_type(v, json_type_int) &&
	    kj_str(o, "start") != NULL && strlen(kj_str(o, "start")) < len) {
		*rv = json_object_get_int64(v);
		snprintf(start, len, "%s", kj_str(o, "start"));
		rc = *rv >= -1 ? 0 : -1;
	}
	json_object_put(o);
	free(text);
	return rc;
}

static int after_start(json_object *obj, const char *start)
{
	json_object *meta = kj_meta(obj);
	const char *ns = kj_str(meta, "namespace"), *name = kj_str(meta, "name");
	const char *slash = strchr(start, '/');
	size_t nslen = slash ? (size_t)(slash - start) : strlen(start);
	int c;

	if (ns == NULL || name == NULL)
		return 0;
	c = strncmp(ns, start, nslen);
	if (c == 0 && strlen(ns) != nslen)
		c = 1;
	if (c == 0)
		c = strcmp(name, slash ? slash + 1 : "");
	return c > 0;
}

static void expired_continue(struct kreq *kr, const char *start)
{
	json_object *st = kf_status(410, "Expired",
		"The provided continue parameter is too old to display a consistent list result. "
		"You can start a new list without the continue parameter, or use the continue "
		"token in this response to retrieve the remainder of the results. Continuing with "
		"the provided token results in an inconsistent list - objects that were created, "
		"modified, or deleted between the time the first chunk was returned and now may "
		"show up in the list.");
	const char *slash = strchr(start, '/');
	char ns[300];
	char *tok;

	snprintf(ns, sizeof(ns), "%.*s", (int)(slash ? (size_t)(slash - start) : strlen(start)), start);
	tok = continue_token(-1, ns, slash ? slash + 1 : "");
	json_object_object_add(kj_meta(st), "continue", json_object_new_string(tok));
	free(tok);
	kf_send_json(kr, 410, st);
}

static void too_large(struct kreq *kr, uint64_t asked)
{
	json_object *st, *details = json_object_new_object(), *causes = json_object_new_array();
	json_object *cause = json_object_new_object();
	char msg[160];

	snprintf(msg, sizeof(msg), "Too large resource version: %llu, current: %llu",
		 (unsigned long long)asked, (unsigned long long)kr->f->st->rv);
	st = kf_status(504, "Timeout", msg);
	json_object_object_add(cause, "reason", json_object_new_string("ResourceVersionTooLarge"));
	json_object_object_add(cause, "message", json_object_new_string("Too large resource version"));
	json_object_array_add(causes, cause);
	json_object_object_add(details, "causes", causes);
	json_object_object_add(details, "retryAfterSeconds", json_object_new_int(1));
	json_object_object_add(st, "details", details);
	kf_send_json(kr, 504, st);
}

static int parse_selectors(struct kreq *kr, struct ksel **labels, struct ksel **fields)
{
	const char *ls = kq_get(kr, "labelSelector"), *fs = kq_get(kr, "fieldSelector");
	char err[300];

	*labels = *fields = NULL;
	if ((*labels = ksel_parse_labels(ls ? ls : "", err, sizeof(err))) == NULL) {
		kf_fail(kr, 400, "BadRequest", NULL, NULL, "unable to parse requirement: %s", err);
		return -1;
	}
	if ((*fields = ksel_parse_fields(fs ? fs : "", err, sizeof(err))) == NULL) {
		ksel_free(*labels);
		*labels = NULL;
		kf_fail(kr, 400, "BadRequest", NULL, NULL, "%s", err);
		return -1;
	}
	return 0;
}

static void serve_list(struct kreq *kr, struct ksel *labels, struct ksel *fields)
{
	struct kstore *st = kr->f->st;
	const struct kres *k = &kres_all[kr->res];
	const char *rvs = kq_get(kr, "resourceVersion"), *match = kq_get(kr, "resourceVersionMatch");
	const char *cont = kq_get(kr, "continue"), *limits = kq_get(kr, "limit");
	json_object **items = NULL, *list, *meta, *arr, **page;
	uint64_t at = st->rv, asked = 0;
	int64_t crv;
	size_t n = 0, i, npage = 0, remaining = 0;
	unsigned long long limit = 0;
	char start[600] = "", rvbuf[24], kind[80], *tok = NULL;
	int rc;

	if (limits != NULL && *limits != '\0') {
		uint64_t l;

		if (parse_u64(limits, &l) != 0) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "limit: invalid value '%.40s'", limits);
			return;
		}
		limit = l;
	}
	if (match != NULL && *match != '\0' && strcmp(match, "Exact") != 0 &&
	    strcmp(match, "NotOlderThan") != 0) {
		kf_fail(kr, 422, "Invalid", NULL, NULL, "resourceVersionMatch: Unsupported value: \"%.40s\"",
			match);
		return;
	}
	if (cont != NULL && *cont != '\0') {
		if ((rvs != NULL && *rvs != '\0') || (match != NULL && *match != '\0')) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL,
				"specifying resource version is not allowed when using continue");
			return;
		}
		if (parse_continue(cont, &crv, start, sizeof(start)) != 0) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "continue key is not valid");
			return;
		}
		at = crv < 0 ? st->rv : (uint64_t)crv;
		if (at < st->hist_start) {
			expired_continue(kr, start);
			return;
		}
	} else if (rvs != NULL && *rvs != '\0') {
		if (parse_u64(rvs, &asked) != 0) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL,
				"resourceVersion: Invalid value: \"%.40s\": must be a number", rvs);
			return;
		}
		if (asked > st->rv) {
			too_large(kr, asked);
			return;
		}
		if (match != NULL && !strcmp(match, "Exact")) {
			if (asked == 0) {
				kf_fail(kr, 422, "Invalid", NULL, NULL,
					"resourceVersionMatch: Forbidden: resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"");
				return;
			}
			at = asked;
			if (at < st->hist_start) {
				kf_fail(kr, 410, "Expired", NULL, NULL,
					"The resourceVersion for the provided list is too old.");
				return;
			}
		}
	} else if (match != NULL && *match != '\0') {
		kf_fail(kr, 422, "Invalid", NULL, NULL,
			"resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided");
		return;
	}
	rc = kstore_snapshot(st, kr->res, kr->ns, at, &items, &n);
	if (rc != 0) {	/* checked above; the history cannot move meanwhile */
		kf_fail(kr, 500, "InternalError", NULL, NULL, "cannot list at %llu",
			(unsigned long long)at);
		return;
	}
	page = malloc((n ? n : 1) * sizeof(*page));
	if (page == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		if (*start != '\0' && !after_start(items[i], start))
			continue;
		if (!ksel_match(labels, items[i]) || !ksel_match(fields, items[i]))
			continue;
		if (limit > 0 && npage == limit) {
			remaining++;
			continue;
		}
		page[npage++] = items[i];
	}
	if (remaining > 0) {
		json_object *last = kj_meta(page[npage - 1]);

		tok = continue_token((int64_t)at, kj_str(last, "namespace"), kj_str(last, "name"));
	}
	snprintf(rvbuf, sizeof(rvbuf), "%llu", (unsigned long long)at);
	if (kapi_wants_table(kr)) {
		list = kapi_table(kq_get(kr, "includeObject"), kr->res, page, npage, rvbuf, tok);
	} else {
		list = json_object_new_object();
		meta = json_object_new_object();
		arr = json_object_new_array_ext((int)npage);
		snprintf(kind, sizeof(kind), "%sList", k->kind);
		json_object_object_add(list, "kind", json_object_new_string(kind));
		json_object_object_add(list, "apiVersion", json_object_new_string(k->api_version));
		json_object_object_add(meta, "resourceVersion", json_object_new_string(rvbuf));
		if (tok != NULL) {
			json_object_object_add(meta, "continue", json_object_new_string(tok));
			if (ksel_empty(labels) && ksel_empty(fields))
				json_object_object_add(meta, "remainingItemCount",
						       json_object_new_int64((int64_t)remaining));
		}
		json_object_object_add(list, "metadata", meta);
		for (i = 0; i < npage; i++)
			json_object_array_add(arr, kapi_item(page[i]));
		json_object_object_add(list, "items", arr);
	}
	free(tok);
	free(page);
	kstore_items_free(items, n);
	kf_send_json(kr, 200, list);
}

static void serve_get(struct kreq *kr)
{
	struct kobj *o = kstore_get(kr->f->st, kr->res, kr->ns, kr->name);
	json_object *objs[1];

	if (o == NULL) {
		kf_fail(kr, 404, "NotFound", kres_all[kr->res].plural, kr->name, "%s \"%s\" not found",
			kres_all[kr->res].plural, kr->name);
		return;
	}
	if (kapi_wants_table(kr)) {
		objs[0] = o->obj;
		kf_send_json(kr, 200, kapi_table(kq_get(kr, "includeObject"), kr->res, objs, 1,
				kj_str(kj_meta(o->obj),
				"resourceVersion"), NULL));
		return;
	}
	kf_send_json(kr, 200, json_object_get(o->obj));
}

/* ---- Tables ---- */

int kapi_wants_table(const struct kreq *kr)
{
	const char *accept = evhttp_find_header(evhttp_request_get_input_headers(kr->req), "Accept");

	return accept != NULL && strstr(accept, "as=Table") != NULL &&
		strstr(accept, "g=meta.k8s.io") != NULL;
}

static json_object *column(const char *name, const char *type, const char *format,
			   const char *desc, int priority)
{
	json_object *c = json_object_new_object();

	json_object_object_add(c, "name", json_object_new_string(name));
	json_object_object_add(c, "type", json_object_new_string(type));
	json_object_object_add(c, "format", json_object_new_string(format));
	json_object_object_add(c, "description", json_object_new_string(desc));
	json_object_object_add(c, "priority", json_object_new_int(priority));
	return c;
}

/* How long ago an RFC 3339 time was, the way kubectl's AGE reads. */
static void age(const char *ts, char *buf, size_t len)
{
	struct tm tm;
	long d;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (ts == NULL || sscanf(ts, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
				 &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
		snprintf(buf, len, "<unknown>");
		return;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	d = (long)difftime(time(NULL), t);
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(buf, len, "%lds", d);
	else if (d < 600)
		snprintf(buf, len, "%ldm%lds", d / 60, d % 60);
	else if (d < 3 * 3600)
		snprintf(buf, len, "%ldm", d / 60);
	else if (d < 48 * 3600)
		snprintf(buf, len, "%ldh", d / 3600);
	else
		snprintf(buf, len, "%ldd", d / 86400);
}

static void pod_cells(json_object *obj, json_object *cells, int *restarts)
{
	json_object *spec = kj_get(obj, "spec", json_type_object);
	json_object *status = kj_get(obj, "status", json_type_object);
	json_object *cs = kj_get(status, "containerStatuses", json_type_array);
	json_object *containers = kj_get(spec, "containers", json_type_array);
	const char *phase = kj_str(status, "phase"), *reason = kj_str(status, "reason");
	size_t i, ready = 0;
	char buf[64];

	*restarts = 0;
	for (i = 0; cs != NULL && i < json_object_array_length(cs); i++) {
		json_object *c = json_object_array_get_idx(cs, i), *v;

		if ((v = kj_get(c, "ready", json_type_boolean)) != NULL && json_object_get_boolean(v))
			ready++;
		if ((v = kj_get(c, "restartCount", json_type_int)) != NULL)
			*restarts += json_object_get_int(v);
	}
	snprintf(buf, sizeof(buf), "%zu/%zu", ready,
		 containers ? json_object_array_length(containers) : (size_t)0);
	json_object_array_add(cells, json_object_new_string(buf));
	if (kj_str(kj_meta(obj), "deletionTimestamp") != NULL)
		phase = "Terminating";
	else if (reason != NULL)
		phase = reason;
	json_object_array_add(cells, json_object_new_string(phase ? phase : "Unknown"));
	json_object_array_add(cells, json_object_new_int(*restarts));
}

json_object *kapi_table(const char *inc, int res, json_object **objs, size_t n,
			const char *rv, const char *cont)
{
	json_object *t = json_object_new_object(), *cols = json_object_new_array();
	json_object *rows = json_object_new_array(), *meta = json_object_new_object();
	size_t i;
	char buf[64];

	json_object_object_add(t, "kind", json_object_new_string("Table"));
	json_object_object_add(t, "apiVersion", json_object_new_string("meta.k8s.io/v1"));
	if (rv != NULL)
		json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
	if (cont != NULL)
		json_object_object_add(meta, "continue", json_object_new_string(cont));
	json_object_object_add(t, "metadata", meta);
	json_object_array_add(cols, column("Name", "string", "name", "Name must be unique within a namespace.", 0));
	if (res == KRES_PODS) {
		json_object_array_add(cols, column("Ready", "string", "", "The number of containers that are ready.", 0));
		json_object_array_add(cols, column("Status", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0));
		json_object_array_add(cols, column("Restarts", "string", "", "The number of times the containers in this pod have been restarted.", 0));
	}
	json_object_array_add(cols, column("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0));
	if (res == KRES_PODS) {
		json_object_array_add(cols, column("IP", "string", "", "podIP is the IP address allocated to the pod.", 1));
		json_object_array_add(cols, column("Node", "string", "", "nodeName is the node the pod is scheduled on.", 1));
	}
	json_object_object_add(t, "columnDefinitions", cols);
	for (i = 0; i < n; i++) {
		json_object *row = json_object_new_object(), *cells = json_object_new_array();
		json_object *meta_i = kj_meta(objs[i]), *ro;
		int restarts;

		json_object_array_add(cells, json_object_new_string(kj_str(meta_i, "name") ?
			kj_str(meta_i, "name") : ""));
		if (res == KRES_PODS)
			pod_cells(objs[i], cells, &restarts);
		age(kj_str(meta_i, "creationTimestamp"), buf, sizeof(buf));
		json_object_array_add(cells, json_object_new_string(buf));
		if (res == KRES_PODS) {
			const char *ip = kj_str(kj_get(objs[i], "status", json_type_object), "podIP");
			const char *node = kj_str(kj_get(objs[i], "spec", json_type_object), "nodeName");

			json_object_array_add(cells, json_object_new_string(ip ? ip : "<none>"));
			json_object_array_add(cells, json_object_new_string(node ? node : "<none>"));
		}
		json_object_object_add(row, "cells", cells);
		if (inc != NULL && !strcmp(inc, "Object")) {
			json_object_object_add(row, "object", json_object_get(objs[i]));
		} else if (inc == NULL || strcmp(inc, "None") != 0) {
			ro = json_object_new_object();
			json_object_object_add(ro, "kind", json_object_new_string("PartialObjectMetadata"));
			json_object_object_add(ro, "apiVersion", json_object_new_string("meta.k8s.io/v1"));
			json_object_object_add(ro, "metadata", json_object_get(meta_i));
			json_object_object_add(row, "object", ro);
		}
		json_object_array_add(rows, row);
	}
	json_object_object_add(t, "rows", rows);
	return t;
}

/* ---- serving ---- */

void kapi_serve(struct kreq *kr)
{
	struct ksel *labels, *fields;

	if (kr->route_err == 405) {
		kf_fail(kr, 405, "MethodNotAllowed", NULL, NULL,
			"the server does not allow this method on the requested resource");
		return;
	}
	if (kr->route_err != 0) {
		kf_fail(kr, 404, "NotFound", NULL, NULL, "the server could not find the requested resource");
		return;
	}
	if (kr->verb == KV_DISCOVERY) {
		serve_discovery(kr);
		return;
	}
	switch (kr->verb) {
	case KV_LIST:
	case KV_WATCH:
	case KV_DELETECOLLECTION:
		if (parse_selectors(kr, &labels, &fields) != 0)
			return;
		if (kr->verb == KV_LIST) {
			serve_list(kr, labels, fields);
			ksel_free(labels);
			ksel_free(fields);
		} else if (kr->verb == KV_WATCH) {
			kwatch_start(kr, labels, fields);
		} else {
			kwrite_deletecollection(kr, labels, fields);
		}
		break;
	case KV_GET:
		serve_get(kr);
		break;
	case KV_CREATE:
		kwrite_create(kr);
		break;
	case KV_UPDATE:
		kwrite_update(kr, 0);
		break;
	case KV_PATCH:
		kwrite_update(kr, 1);
		break;
	case KV_DELETE:
		kwrite_delete(kr);
		break;
	default:
		kf_fail(kr, 404, "NotFound", NULL, NULL, "the server could not find the requested resource");
		break;
	}
}
