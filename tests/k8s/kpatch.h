/*
 * kpatch.h - the PATCH bodies the API takes:
 *   application/merge-patch+json           (RFC 7386)
 *   application/strategic-merge-patch+json (the Kubernetes kind, for the
 *       lists kubelet and kubectl patch: conditions merged by type,
 *       containers and their statuses by name, ...; see kpatch.c)
 *   application/json-patch+json            (RFC 6902)
 * Server-side apply (application/apply-patch+yaml) is not served.
 */
#ifndef KPATCH_H
#define KPATCH_H

#include <stddef.h>

#include <json-c/json.h>

/* A new object: target (unchanged) with the patch applied; NULL and a
 * message in err when the patch does not apply. */
json_object *kpatch_merge(json_object *target, json_object *patch, int strategic,
			  char *err, size_t errlen);
json_object *kpatch_json(json_object *target, json_object *ops, char *err, size_t errlen);

#endif
