/*
 * multipart: the form fields of a multipart/form-data body (RFC 7578,
 * framed as RFC 2046 says), for the OpenAI endpoints that take one
 * (/v1/audio/transcriptions, /v1/audio/translations, /v1/images/edits):
 * the router reads the `model` field to route, forwards the body as it is,
 * and rewrites that field's value when it falls back to another model.
 * Pure, no allocation but multipart_replace_field's result.
 *
 * The body comes from a client and is untrusted.  Whatever two parsers
 * could read two ways (the router routing by one model, the backend
 * serving another) is refused, never guessed: every "CRLF--boundary" is a
 * delimiter and must be framed as one, a field named twice, a file part
 * under that name, backslashes in quoted parameters, folded or malformed
 * part headers.
 */
#ifndef SY_MULTIPART_H
#define SY_MULTIPART_H

#include <stddef.h>

#define MULTIPART_BOUNDARY_MAX 70 /* RFC 2046 */
#define MULTIPART_HEADERS_MAX 8192 /* one part's header block, its empty line included */
#define MULTIPART_PARTS_MAX 1000

/* The boundary of a Content-Type value "multipart/form-data;
 * boundary=...": the media type case-insensitive, parameters with optional
 * spaces around ';' (none around '='), the boundary quoted or a token, 1 to
 * 70 of RFC 2046's bchars, other parameters allowed and ignored.  0 with
 * *b and *blen pointing into content_type (for a quoted one, inside the
 * quotes); -1 when it is not multipart/form-data or has no valid boundary,
 * or two, or a quoted parameter holds a backslash (quoted-pair escapes are
 * read differently by different parsers, so none is taken). */
int multipart_boundary(const char *content_type, const char **b, size_t *blen);

/* A field's value: body[value_off, value_off + value_len). */
struct multipart_field {
    size_t value_off, value_len;
};

enum { MULTIPART_FOUND = 1, MULTIPART_ABSENT = 0, MULTIPART_BAD = -1 };

/* Find the form field `name` (a part whose Content-Disposition is
 * form-data with name="NAME", quoted or a token, and no filename
 * parameter) in body[0, len), which may hold NUL bytes.  Checks the
 * framing of the whole body: a preamble allowed; each delimiter "--B" at
 * the start of the body or after CRLF, then optional transport padding
 * (spaces, tabs) and CRLF, or "--" for the close delimiter, which is
 * required (then padding and CRLF, or the end; an epilogue allowed, but
 * not one holding another delimiter); part headers CRLF-terminated lines
 * up to an empty line, names case-insensitive, at most
 * MULTIPART_HEADERS_MAX bytes a part, at most MULTIPART_PARTS_MAX parts,
 * each with a form-data Content-Disposition and a name.  A second part
 * named `name`, or a file part of that name, is an error (ambiguous), as is
 * a Content-Transfer-Encoding on it other than 7bit, 8bit or binary.
 *
 * FOUND: *out says where the value lies (after its header block's CRLFCRLF,
 * up to the CRLF before the next delimiter).  BAD: err gets a one-line
 * reason ("part 3: no Content-Disposition", "no closing boundary").
 * *out is set only for FOUND.  Never reads past len. */
int multipart_find_field(const char *body, size_t len, const char *boundary, size_t blen,
                         const char *name, struct multipart_field *out, char *err,
                         size_t errlen);

/* The body with the value of field f (as multipart_find_field gave it)
 * replaced by value[0, vlen), the rest byte for byte: 0 and a malloc'd
 * buffer the caller frees (*out, *outlen).  -1, *out untouched, when f does
 * not lie in the body, when the new body would hold a delimiter "\r\n--B"
 * overlapping the value (the value holds one, or starts with "--B" after
 * the header block's CRLF), or on allocation failure. */
int multipart_replace_field(const char *body, size_t len, const struct multipart_field *f,
                            const char *boundary, size_t blen, const char *value,
                            size_t vlen, char **out, size_t *outlen);

#endif
