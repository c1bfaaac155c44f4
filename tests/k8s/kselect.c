/*
 * kselect.c - label and field selectors (kselect.h).
 *
 * A selector is a list of requirements, all of which must hold. Labels are
 * read with a small tokenizer after the real parser's grammar: words, the
 * operators = == != ! and the keywords in, notin, and ( ) , for sets.
 */
#define _POSIX_C_SOURCE 200809L

#include "kselect.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kstore.h"

enum op { OP_EQ, OP_NEQ, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };

struct req {
	char *key;
	enum op op;
	char **vals;
	size_t nvals;
};

struct ksel {
	int fields;		/* a field selector: keys are dotted paths */
	struct req *r;
	size_t n;
};

#define MAX_REQS 256
#define MAX_VALS 256

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = xcalloc(n + 1, 1);

	memcpy(p, s, n);
	return p;
}

void ksel_free(struct ksel *sel)
{
	size_t i, j;

	if (sel == NULL)
		return;
	for (i = 0; i < sel->n; i++) {
		free(sel->r[i].key);
		for (j = 0; j < sel->r[i].nvals; j++)
			free(sel->r[i].vals[j]);
		free(sel->r[i].vals);
	}
	free(sel->r);
	free(sel);
}

int ksel_empty(const struct ksel *sel)
{
	return sel == NULL || sel->n == 0;
}

static struct req *add_req(struct ksel *sel, char *key, enum op op)
{
	struct req *r = &sel->r[sel->n++];

	r->key = key;
	r->op = op;
	r->vals = xcalloc(MAX_VALS, sizeof(char *));
	return r;
}

/* ---- labels ---- */

enum tok { T_END, T_WORD, T_EQ, T_DEQ, T_NEQ, T_NOT, T_IN, T_NOTIN, T_OPEN, T_CLOSE, T_COMMA };

struct lexer {
	const char *p;
	char *word;		/* T_WORD's text, owned by the caller after next() */
};

static int is_special(char c)
{
	return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' ||
		isspace((unsigned char)c) || c == '\0';
}

static enum tok next(struct lexer *lx)
{
	const char *s;

	lx->word = NULL;
	while (isspace((unsigned char)*lx->p))
		lx->p++;
	switch (*lx->p) {
	case '\0': return T_END;
	case '(': lx->p++; return T_OPEN;
	case ')': lx->p++; return T_CLOSE;
	case ',': lx->p++; return T_COMMA;
	case '=':
		lx->p++;
		if (*lx->p == '=') {
			lx->p++;
			return T_DEQ;
		}
		return T_EQ;
	case '!':
		lx->p++;
		if (*lx->p == '=') {
			lx->p++;
			return T_NEQ;
		}
		return T_NOT;
	}
	for (s = lx->p; !is_special(*lx->p); lx->p++)
		;
	if ((size_t)(lx->p - s) == 2 && !strncmp(s, "in", 2))
		return T_IN;
	if ((size_t)(lx->p - s) == 5 && !strncmp(s, "notin", 5))
		return T_NOTIN;
	lx->word = xstrndup(s, (size_t)(lx->p - s));
	return T_WORD;
}

/* A label key or value: letters, digits, '-', '_', '.', and one '/' in keys. */
static int valid_label(const char *s, int key)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.' &&
		    !(key && *s == '/'))
			return 0;
	return 1;
}

/* "(a,b,c)" after in/notin; the values go into r. */
static int parse_set(struct lexer *lx, struct req *r, char *err, size_t errlen)
{
	enum tok t;

	if (next(lx) != T_OPEN) {
		snprintf(err, errlen, "expected '(' after in/notin");
		return -1;
	}
	for (;;) {
		t = next(lx);
		if (t != T_WORD || !valid_label(lx->word, 0) || r->nvals == MAX_VALS) {
			free(lx->word);
			snprintf(err, errlen, "bad value in a set");
			return -1;
		}
		r->vals[r->nvals++] = lx->word;
		t = next(lx);
		if (t == T_CLOSE)
			break;
		if (t != T_COMMA) {
			free(lx->word);
			snprintf(err, errlen, "expected ',' or ')' in a set");
			return -1;
		}
	}
	return 0;
}

struct ksel *ksel_parse_labels(const char *s, char *err, size_t errlen)
{
	struct ksel *sel = xcalloc(1, sizeof(*sel));
	struct lexer lx = { s, NULL };
	enum tok t;
	struct req *r;
	char *key;

	sel->r = xcalloc(MAX_REQS, sizeof(*sel->r));
	t = next(&lx);
	if (t == T_END)
		return sel;
	for (;;) {
		if (sel->n == MAX_REQS) {
			free(lx.word);
			snprintf(err, errlen, "too many requirements");
			goto bad;
		}
		if (t == T_NOT) {
			if (next(&lx) != T_WORD || !valid_label(lx.word, 1)) {
				free(lx.word);
				snprintf(err, errlen, "expected a label key after '!'");
				goto bad;
			}
			add_req(sel, lx.word, OP_NOTEXISTS);
			t = next(&lx);
		} else if (t == T_WORD) {
			key = lx.word;
			if (*key == '\0' || !valid_label(key, 1)) {
				free(key);
				snprintf(err, errlen, "bad label key");
				goto bad;
			}
			t = next(&lx);
			if (t == T_END || t == T_COMMA) {
				add_req(sel, key, OP_EXISTS);
			} else if (t == T_IN || t == T_NOTIN) {
				r = add_req(sel, key, t == T_IN ? OP_IN : OP_NOTIN);
				if (parse_set(&lx, r, err, errlen) != 0)
					goto bad;
				t = next(&lx);
			} else if (t == T_EQ || t == T_DEQ || t == T_NEQ) {
				r = add_req(sel, key, t == T_NEQ ? OP_NEQ : OP_EQ);
				t = next(&lx);
				if (t == T_WORD && valid_label(lx.word, 0)) {
					r->vals[r->nvals++] = lx.word;
					t = next(&lx);
				} else if (t == T_WORD) {
					free(lx.word);
					snprintf(err, errlen, "bad label value");
					goto bad;
				} else {
					/* a=  selects the empty value */
					r->vals[r->nvals++] = xstrndup("", 0);
				}
			} else {
				free(lx.word);
				snprintf(err, errlen, "unexpected text after label key '%.60s'", key);
				free(key);
				goto bad;
			}
		} else {
			free(lx.word);
			snprintf(err, errlen, "expected a label key");
			goto bad;
		}
		if (t == T_END)
			return sel;
		if (t != T_COMMA) {
			free(lx.word);
			snprintf(err, errlen, "expected ',' between requirements");
			goto bad;
		}
		t = next(&lx);
	}
bad:
	ksel_free(sel);
	return NULL;
}

/* ---- fields ---- */

/* The text up to an unescaped stop character, unescaped (\, \= \! \\). */
static char *field_word(const char **p, const char *stops)
{
	const char *s = *p;
	char *out = xcalloc(strlen(s) + 1, 1), *o = out;

	while (*s != '\0' && strchr(stops, *s) == NULL) {
		if (*s == '\\' && s[1] != '\0')
			s++;
		*o++ = *s++;
	}
	*p = s;
	return out;
}

struct ksel *ksel_parse_fields(const char *s, char *err, size_t errlen)
{
	struct ksel *sel = xcalloc(1, sizeof(*sel));
	const char *p = s;
	struct req *r;
	enum op op;
	char *key;

	sel->fields = 1;
	sel->r = xcalloc(MAX_REQS, sizeof(*sel->r));
	while (*p != '\0') {
		if (sel->n == MAX_REQS) {
			snprintf(err, errlen, "too many requirements");
			goto bad;
		}
		key = field_word(&p, "=!,");
		if (p[0] == '!' && p[1] == '=') {
			op = OP_NEQ;
			p += 2;
		} else if (p[0] == '=') {
			op = OP_EQ;
			p += p[1] == '=' ? 2 : 1;
		} else {
			snprintf(err, errlen, "invalid selector: '%.100s'; can't understand '%.60s'", s, key);
			free(key);
			goto bad;
		}
		if (*key == '\0') {
			free(key);
			snprintf(err, errlen, "field selector: empty field name");
			goto bad;
		}
		r = add_req(sel, key, op);
		r->vals[r->nvals++] = field_word(&p, ",");
		if (*p == ',')
			p++;
	}
	return sel;
bad:
	ksel_free(sel);
	return NULL;
}

/* ---- matching ---- */

static int in_vals(const struct req *r, const char *v)
{
	size_t i;

	for (i = 0; i < r->nvals; i++)
		if (!strcmp(r->vals[i], v))
			return 1;
	return 0;
}

/* The text of the scalar at a dotted path, or NULL. */
static const char *field_value(json_object *obj, const char *path, char *buf, size_t len)
{
	const char *dot;
	json_object *v = obj;
	char key[256];

	while (v != NULL) {
		dot = strchr(path, '.');
		snprintf(key, sizeof(key), "%.*s", (int)(dot ? (size_t)(dot - path) : strlen(path)), path);
		if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, key, &v))
			return NULL;
		if (dot == NULL)
			break;
		path = dot + 1;
	}
	switch (json_object_get_type(v)) {
	case json_type_string:
		return json_object_get_string(v);
	case json_type_boolean:
	case json_type_int:
	case json_type_double:
		snprintf(buf, len, "%s", json_object_to_json_string(v));
		return buf;
	default:
		return NULL;
	}
}

int ksel_match(const struct ksel *sel, json_object *obj)
{
	json_object *labels = kj_get(kj_meta(obj), "labels", json_type_object);
	size_t i;
	char buf[64];

	for (i = 0; sel != NULL && i < sel->n; i++) {
		const struct req *r = &sel->r[i];
		const char *v;

		if (sel->fields) {
			v = field_value(obj, r->key, buf, sizeof(buf));
			if (v == NULL)
				v = "";
		} else {
			v = kj_str(labels, r->key);
		}
		switch (r->op) {
		case OP_EQ:
		case OP_IN:
			if (v == NULL || !in_vals(r, v))
				return 0;
			break;
		case OP_NEQ:
		case OP_NOTIN:
			if (v != NULL && in_vals(r, v))
				return 0;
			break;
		case OP_EXISTS:
			if (v == NULL)
				return 0;
			break;
		case OP_NOTEXISTS:
			if (v != NULL)
				return 0;
			break;
		}
	}
	return 1;
}
