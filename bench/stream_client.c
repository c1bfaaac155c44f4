/*
 * stream_client.c - opens N concurrent SSE streams (POST, libcurl multi, one
 * thread) and reports how long their events took to arrive.  Part of
 * switchyard's bench/.
 *
 * usage: stream_client URL BODY_FILE N [TIMEOUT_S]
 *
 * Every stream is started at once.  An event is a block ending in a blank
 * line.  Events carrying "t_us":T (bench/sse_backend stamps each chunk with
 * the CLOCK_MONOTONIC microsecond it was written) give a delay: arrival
 * minus T.  Through a router minus direct, that is what the router adds to
 * each chunk.
 *
 * Prints one line of key=value pairs (times in microseconds):
 *   streams ok events first_mean_us delay_mean_us delay_p50_us delay_p99_us
 *   delay_max_us wall_s
 * (first_mean_us: request start to first event, mean over streams.)
 * Exit status 0 when every stream answered 200, 1 otherwise.
 *
 * Build: cc -O2 -o stream_client stream_client.c $(curl-config --libs)
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

struct stream {
	CURL *h;
	double t0;		/* request start, us */
	int prev_nl;		/* last byte seen was '\n' */
	int n;			/* events seen */
	int cap;
	double *t;		/* delay of each stamped event, us */
	double first;		/* arrival of the first event, us */
	char ev[1024];		/* the current event (its start) */
	size_t evlen;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* An event ended: note when it came and, if stamped, its delay. */
static int on_event(struct stream *s, double t)
{
	char *p;

	s->ev[s->evlen < sizeof(s->ev) ? s->evlen : sizeof(s->ev) - 1] = '\0';
	s->evlen = 0;
	if (s->first == 0)
		s->first = t;
	if ((p = strstr(s->ev, "\"t_us\":")) == NULL)
		return 0;
	if (s->n == s->cap) {
		int cap = s->cap ? 2 * s->cap : 64;
		double *nt = realloc(s->t, (size_t)cap * sizeof(*nt));

		if (nt == NULL)
			return -1;
		s->t = nt;
		s->cap = cap;
	}
	s->t[s->n++] = t - strtod(p + 7, NULL);
	return 0;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;
	size_t i, len = size * nmemb;
	double t = now_us();

	for (i = 0; i < len; i++) {
		if (s->evlen < sizeof(s->ev) - 1)
			s->ev[s->evlen++] = p[i];
		if (p[i] == '\r')
			continue;
		if (p[i] != '\n') {
			s->prev_nl = 0;
		} else if (s->prev_nl) {
			if (on_event(s, t) != 0)
				return 0;
			s->prev_nl = 0;
		} else {
			s->prev_nl = 1;
		}
	}
	return len;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static char *read_file(const char *path, long *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (*len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)*len + 1)) == NULL ||
	    fread(buf, 1, (size_t)*len, f) != (size_t)*len) {
		perror(path);
		exit(2);
	}
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	struct curl_slist *hdrs = NULL;
	struct stream *st;
	CURLM *multi;
	CURLMsg *msg;
	long body_len, timeout_s = 60;
	char *body;
	int n, i, j, running, left, ok = 0, nfirst = 0;
	double start, wall, first_sum = 0, sum = 0, *late;
	size_t nlate = 0, total = 0;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: stream_client URL BODY_FILE N [TIMEOUT_S]\n");
		return 2;
	}
	body = read_file(argv[2], &body_len);
	n = atoi(argv[3]);
	if (argc == 5)
		timeout_s = atol(argv[4]);
	if (n < 1) {
		fprintf(stderr, "stream_client: N must be >= 1\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	st = calloc((size_t)n, sizeof(*st));
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (multi == NULL || st == NULL || hdrs == NULL)
		return 2;

	for (i = 0; i < n; i++) {
		CURL *h = curl_easy_init();

		if (h == NULL)
			return 2;
		st[i].h = h;
		curl_easy_setopt(h, CURLOPT_URL, argv[1]);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &st[i]);
		curl_easy_setopt(h, CURLOPT_PRIVATE, &st[i]);
		curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
		curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	}
	start = now_us();
	for (i = 0; i < n; i++) {
		st[i].t0 = now_us();
		curl_multi_add_handle(multi, st[i].h);
	}
	do {
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			struct stream *s;
			long status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result == CURLE_OK && status == 200)
				ok++;
			else
				fprintf(stderr, "stream_client: stream %d: %s, status %ld\n",
					(int)(s - st), curl_easy_strerror(msg->data.result), status);
		}
		if (running)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	} while (running);
	wall = (now_us() - start) / 1e6;

	for (i = 0; i < n; i++)
		total += (size_t)st[i].n;
	late = malloc((total ? total : 1) * sizeof(*late));
	if (late == NULL)
		return 2;
	for (i = 0; i < n; i++) {
		if (st[i].first > 0) {
			first_sum += st[i].first - st[i].t0;
			nfirst++;
		}
		for (j = 0; j < st[i].n; j++) {
			late[nlate] = st[i].t[j];
			sum += late[nlate++];
		}
	}
	qsort(late, nlate, sizeof(*late), cmp_double);
#define PCT(q) (nlate ? late[(size_t)((q) * (double)(nlate - 1) + 0.5)] : 0.0)
	printf("streams=%d ok=%d events=%zu first_mean_us=%.1f delay_mean_us=%.1f "
	       "delay_p50_us=%.1f delay_p99_us=%.1f delay_max_us=%.1f wall_s=%.3f\n",
	       n, ok, nlate, nfirst ? first_sum / nfirst : 0.0, nlate ? sum / (double)nlate : 0.0,
	       PCT(0.50), PCT(0.99), nlate ? late[nlate - 1] : 0.0, wall);

	for (i = 0; i < n; i++) {
		curl_multi_remove_handle(multi, st[i].h);
		curl_easy_cleanup(st[i].h);
		free(st[i].t);
	}
	curl_slist_free_all(hdrs);
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	free(late);
	free(st);
	free(body);
	return ok == n ? 0 : 1;
}
