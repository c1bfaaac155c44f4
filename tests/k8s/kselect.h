/*
 * kselect.h - label and field selectors, as the API's labelSelector and
 * fieldSelector query parameters spell them.
 *
 * Labels: equality (a=b, a==b, a!=b) and sets (a in (x,y), a notin (x,y),
 * a, !a), comma-separated, all of which must hold.
 * Fields: a=b, a==b, a!=b over any dotted path to a scalar
 * (metadata.name, status.phase, spec.nodeName, ...); a missing field reads
 * as "". The real server allows only a few paths per resource and answers
 * 400 for others: this one allows every path.
 */
#ifndef KSELECT_H
#define KSELECT_H

#include <stddef.h>

#include <json-c/json.h>

struct ksel;

/* NULL (with a message in err) when s is not a selector; "" selects all. */
struct ksel *ksel_parse_labels(const char *s, char *err, size_t errlen);
struct ksel *ksel_parse_fields(const char *s, char *err, size_t errlen);
void ksel_free(struct ksel *sel);

/* Does obj pass? A NULL selector passes everything. */
int ksel_match(const struct ksel *sel, json_object *obj);
/* Is it empty (the API gives remainingItemCount only without selectors)? */
int ksel_empty(const struct ksel *sel);

#endif
