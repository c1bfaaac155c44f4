/*
 * sim_model.c - the pure model of a vLLM engine (see sim_model.h for the
 * timing formula).
 *
 * The KV cache is vLLM's in miniature: num_gpu_blocks blocks; a block that
 * holds a full block of a computed prompt gets that block's chained hash and
 * stays findable after its request ends, until it is reused. Blocks not held
 * by a running request wait in one free queue, evicted from its head:
 * released hashed blocks go to the tail (a request's last block first, so its
 * prefix outlives its tail, as vLLM frees them), released blocks without a
 * hash go to the head (they hold nothing worth keeping). A cache hit on a
 * free block takes it out of the queue.
 *
 * Admission reserves every block a request will need (prompt + output) at
 * once, so a running request never runs out and nothing is preempted. Hits
 * are counted as vLLM counts them: per token, full blocks only, and never
 * the prompt's last token (vLLM always computes at least one).
 */
#include "sim_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE (-1)

const double sim_ttft_buckets[SIM_TTFT_NBUCKETS] = {
	0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
	1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
};

struct block {
	uint64_t hash;
	int hashed;		/* in the table under hash */
	int ref;		/* running requests holding it */
	int prev, next;		/* free queue links, while ref == 0 */
};

struct list {
	struct sim_req *head, *tail;
	int n;
};

struct sim_model {
	struct sim_config cfg;
	struct sim_hooks hooks;
	struct block *blk;
	int free_head, free_tail, n_free;
	int n_hashed;
	uint32_t *table;	/* block id + 1, 0 empty; linear probing */
	size_t mask;
	struct list waiting, running;
	sim_us now, step_end;
	int in_step;
	int asleep;
	uint64_t next_id;
	struct sim_stats st;
};

void sim_config_defaults(struct sim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->block_size = 16;
	cfg->num_gpu_blocks = 2048;
	cfg->max_num_seqs = 64;
	cfg->max_model_len = 8192;
	cfg->output_len = 256;
	cfg->prefill_overhead_us = 20000;
	cfg->prefill_per_token_us = 200;
	cfg->decode_base_us = 10000;
	cfg->decode_per_seq_us = 150;
	cfg->kv_transfer_per_token_us = 3;
}

const char *sim_config_check(const struct sim_config *cfg)
{
	if (cfg->block_size < 1 || cfg->block_size > 1024)
		return "block size must be 1..1024";
	if (cfg->num_gpu_blocks < 1 || cfg->num_gpu_blocks > (1 << 24))
		return "num_gpu_blocks must be 1..16777216";
	if (cfg->max_num_seqs < 1)
		return "max_num_seqs must be at least 1";
	if (cfg->max_model_len < 2)
		return "max_model_len must be at least 2";
	if (cfg->output_len < 1)
		return "output_len must be at least 1";
	/* vLLM refuses to start when one max_model_len sequence cannot fit; a
	 * request that can never be admitted would block the queue for ever. */
	if ((int64_t)cfg->num_gpu_blocks * cfg->block_size < cfg->max_model_len)
		return "the KV cache (num_gpu_blocks * block_size tokens) is smaller than max_model_len";
	if (cfg->prefill_overhead_us < 0 || cfg->prefill_per_token_us < 0 ||
	    cfg->decode_base_us < 0 || cfg->decode_per_seq_us < 0 ||
	    cfg->kv_transfer_per_token_us < 0)
		return "times cannot be negative";
	return NULL;
}

const char *sim_finish_name(enum sim_finish why)
{
	switch (why) {
	case SIM_LENGTH: return "length";
	case SIM_STOP: return "stop";
	default: return "abort";
	}
}

/* ---- free queue ---- */

static void free_unlink(struct sim_model *m, int b)
{
	struct block *k = &m->blk[b];

	if (k->prev != NONE)
		m->blk[k->prev].next = k->next;
	else
		m->free_head = k->next;
	if (k->next != NONE)
		m->blk[k->next].prev = k->prev;
	else
		m->free_tail = k->prev;
	k->prev = k->next = NONE;
	m->n_free--;
}

static void free_push(struct sim_model *m, int b, int at_head)
{
	struct block *k = &m->blk[b];

	if (at_head) {
		k->prev = NONE;
		k->next = m->free_head;
		if (m->free_head != NONE)
			m->blk[m->free_head].prev = b;
		else
			m->free_tail = b;
		m->free_head = b;
	} else {
		k->next = NONE;
		k->prev = m->free_tail;
		if (m->free_tail != NONE)
			m->blk[m->free_tail].next = b;
		else
			m->free_head = b;
		m->free_tail = b;
	}
	m->n_free++;
}

/* ---- hash table: block hash -> block id ---- */

static int table_find(const struct sim_model *m, uint64_t h)
{
	size_t i;

	for (i = (size_t)h & m->mask; m->table[i] != 0; i = (i + 1) & m->mask)
		if (m->blk[m->table[i] - 1].hash == h)
			return (int)m->table[i] - 1;
	return NONE;
}

static void table_add(struct sim_model *m, int b)
{
	size_t i = (size_t)m->blk[b].hash & m->mask;

	while (m->table[i] != 0)
		i = (i + 1) & m->mask;
	m->table[i] = (uint32_t)b + 1;
	m->blk[b].hashed = 1;
	m->n_hashed++;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void table_del(struct sim_model *m, int b)
{
	size_t i = (size_t)m->blk[b].hash & m->mask, j, home;

	while (m->table[i] != (uint32_t)b + 1)
		i = (i + 1) & m->mask;
	for (j = (i + 1) & m->mask; m->table[j] != 0; j = (j + 1) & m->mask) {
		home = (size_t)m->blk[m->table[j] - 1].hash & m->mask;
		/* Move j back to i unless its home lies in (i, j]. */
		if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
			m->table[i] = m->table[j];
			i = j;
		}
	}
	m->table[i] = 0;
	m->blk[b].hashed = 0;
	m->n_hashed--;
}

/* ---- model ---- */

static void reset_blocks(struct sim_model *m)
{
	int i, n = m->cfg.num_gpu_blocks;

	memset(m->table, 0, (m->mask + 1) * sizeof(*m->table));
	m->n_hashed = 0;
	m->free_head = m->free_tail = NONE;
	m->n_free = 0;
	for (i = 0; i < n; i++) {
		m->blk[i].hashed = 0;
		m->blk[i].ref = 0;
		free_push(m, i, 0);
	}
}

struct sim_model *sim_model_new(const struct sim_config *cfg, const struct sim_hooks *hooks)
{
	struct sim_model *m;
	size_t cap = 2;

	if (sim_config_check(cfg) != NULL || (m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->cfg = *cfg;
	if (hooks != NULL)
		m->hooks = *hooks;
	/* At most half full, so probe chains stay short. */
	while (cap < (size_t)cfg->num_gpu_blocks * 2)
		cap <<= 1;
	m->mask = cap - 1;
	m->blk = calloc((size_t)cfg->num_gpu_blocks, sizeof(*m->blk));
	m->table = calloc(cap, sizeof(*m->table));
	if (m->blk == NULL || m->table == NULL) {
		free(m->blk);
		free(m->table);
		free(m);
		return NULL;
	}
	reset_blocks(m);
	return m;
}

static void req_free(struct sim_req *r)
{
	free(r->hash);
	free(r->blocks);
	free(r->lora);
	free(r);
}

static void list_add(struct list *l, struct sim_req *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	l->n++;
}

static void list_del(struct list *l, struct sim_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
	l->n--;
}

static void free_list(struct list *l)
{
	struct sim_req *r, *next;

	for (r = l->head; r != NULL; r = next) {
		next = r->next;
		req_free(r);
	}
	memset(l, 0, sizeof(*l));
}

void sim_model_free(struct sim_model *m)
{
	if (m == NULL)
		return;
	free_list(&m->waiting);
	free_list(&m->running);
	free(m->blk);
	free(m->table);
	free(m);
}

/* ---- tokens and hashes ---- */

int sim_token_count(size_t len)
{
	size_t n = (len + SIM_TOKEN_BYTES - 1) / SIM_TOKEN_BYTES;

	return n > INT32_MAX ? INT32_MAX : (int)n;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* splitmix64's finalizer: FNV's low bits alone would crowd the table. */
static uint64_t mix(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

static uint64_t fnv_byte(uint64_t h, unsigned char c)
{
	return (h ^ c) * FNV_PRIME;
}

uint64_t sim_hash_seed(const char *lora)
{
	uint64_t h = FNV_OFFSET;

	if (lora == NULL || *lora == '\0')
		return mix(h);
	for (h = fnv_byte(h, 'L'); *lora != '\0'; lora++)
		h = fnv_byte(h, (unsigned char)*lora);
	return mix(h);
}

uint64_t sim_block_hash(uint64_t parent, const unsigned char *text, size_t len,
			int first_token, int ntokens)
{
	uint64_t h = FNV_OFFSET;
	size_t i, at;
	int k;

	for (k = 0; k < 8; k++)
		h = fnv_byte(h, (unsigned char)(parent >> (8 * k)));
	/* A token is its 4 bytes; the prompt's last one is padded with zeros. */
	for (k = 0; k < ntokens; k++)
		for (i = 0; i < SIM_TOKEN_BYTES; i++) {
			at = ((size_t)first_token + (size_t)k) * SIM_TOKEN_BYTES + i;
			h = fnv_byte(h, at < len ? text[at] : 0);
		}
	return mix(h);
}

void sim_prompt_hashes(const unsigned char *text, size_t len, int block_size,
		       uint64_t seed, uint64_t *out, int n)
{
	uint64_t parent = seed;
	int i;

	for (i = 0; i < n; i++) {
		parent = sim_block_hash(parent, text, len, i * block_size, block_size);
		out[i] = parent;
	}
}

/* ---- context length ---- */

int sim_too_long(const struct sim_model *m, int n_prompt, int max_tokens)
{
	int64_t limit = m->cfg.max_model_len;

	if (max_tokens < 0)
		return n_prompt >= limit;
	return (int64_t)n_prompt + max_tokens > limit;
}

void sim_context_error(char *buf, size_t size, enum sim_ctx_style style, int max_model_len,
		       int n_prompt, int max_tokens, const char **param)
{
	int out = max_tokens < 0 ? 0 : max_tokens;

	*param = NULL;
	switch (style) {
	case SIM_CTX_CLASSIC:
		/* vllm/entrypoints/openai/serving_engine.py _validate_input, v0.6-v0.10 */
		if (max_tokens < 0)
			snprintf(buf, size, "This model's maximum context length is %d tokens. "
				 "However, you requested %d tokens in the messages, "
				 "Please reduce the length of the messages.", max_model_len, n_prompt);
		else
			snprintf(buf, size, "This model's maximum context length is %d tokens. "
				 "However, you requested %lld tokens (%d in the messages, %d in the "
				 "completion). Please reduce the length of the messages or completion.",
				 max_model_len, (long long)n_prompt + max_tokens, n_prompt, max_tokens);
		break;
	case SIM_CTX_V011:
		/* the same check from v0.11, a VLLMValidationError (its str() adds
		 * the parameter and value) */
		if (max_tokens < 0) {
			*param = "input_tokens";
			snprintf(buf, size, "This model's maximum context length is %d tokens. "
				 "However, your request has %d input tokens. Please reduce the length "
				 "of the input messages. (parameter=input_tokens, value=%d)",
				 max_model_len, n_prompt, n_prompt);
		} else {
			*param = "max_tokens";
			snprintf(buf, size, "'max_tokens' or 'max_completion_tokens' is too large: %d. "
				 "This model's maximum context length is %d tokens and your request has "
				 "%d input tokens (%d > %d - %d). (parameter=max_tokens, value=%d)",
				 max_tokens, max_model_len, n_prompt, max_tokens, max_model_len,
				 n_prompt, max_tokens);
		}
		break;
	default:
		/* vllm/renderers/params.py TokenizeParams._token_len_check (2026) */
		*param = "input_tokens";
		snprintf(buf, size, "You passed %d input tokens and requested %d output tokens. "
			 "However, the model's context length is only %d tokens, resulting in a "
			 "maximum input length of %d tokens. Please reduce the length of the input "
			 "prompt. (parameter=input_tokens, value=%d)",
			 n_prompt, out, max_model_len, max_model_len - out, n_prompt);
		break;
	}
}

/* ---- requests ---- */

struct sim_req *sim_submit(struct sim_model *m, const unsigned char *text, size_t len,
			   int max_tokens, int ignore_eos, const char *lora, int remote_kv,
			   sim_us now, void *user)
{
	struct sim_req *r = calloc(1, sizeof(*r));
	int bs = m->cfg.block_size, limit, need;

	if (r == NULL)
		return NULL;
	r->n_prompt = sim_token_count(len);
	if (r->n_prompt < 1)
		r->n_prompt = 1;
	/* vLLM's default max_tokens is what the context has left. */
	limit = max_tokens >= 0 ? max_tokens : m->cfg.max_model_len - r->n_prompt;
	if (limit < 1)
		limit = 1;
	r->n_out = ignore_eos || limit <= m->cfg.output_len ? limit : m->cfg.output_len;
	r->finish = r->n_out == limit ? SIM_LENGTH : SIM_STOP;
	r->n_hash = r->n_prompt / bs;
	need = (int)(((int64_t)r->n_prompt + r->n_out + bs - 1) / bs);
	r->hash = calloc((size_t)r->n_hash + 1, sizeof(*r->hash));
	r->blocks = calloc((size_t)need, sizeof(*r->blocks));
	r->lora = lora != NULL ? strdup(lora) : NULL;
	if (r->hash == NULL || r->blocks == NULL || (lora != NULL && r->lora == NULL)) {
		req_free(r);
		return NULL;
	}
	r->n_blocks = need;
	sim_prompt_hashes(text, len, bs, sim_hash_seed(lora), r->hash, r->n_hash);
	r->id = ++m->next_id;
	r->user = user;
	r->remote_kv = remote_kv;
	r->arrival = now;
	r->state = SIM_WAITING;
	list_add(&m->waiting, r);
	return r;
}

/* Hashed blocks to the tail, last block first; the rest to the head. */
static void release_blocks(struct sim_model *m, struct sim_req *r)
{
	int i, b;

	for (i = r->n_blocks - 1; i >= 0; i--) {
		b = r->blocks[i];
		if (--m->blk[b].ref == 0)
			free_push(m, b, !m->blk[b].hashed);
	}
}

void sim_cancel(struct sim_model *m, struct sim_req *r)
{
	if (r->state == SIM_WAITING) {
		list_del(&m->waiting, r);
	} else {
		list_del(&m->running, r);
		release_blocks(m, r);
	}
	m->st.finished[SIM_ABORT]++;
	req_free(r);
}

/* Reserves r's blocks, reusing its cached prefix; 0 when they do not fit. */
static int admit(struct sim_model *m, struct sim_req *r)
{
	int bs = m->cfg.block_size, hit = 0, hit_free = 0, max_hit, i, b;
	struct block *k;

	max_hit = (r->n_prompt - 1) / bs;
	if (max_hit > r->n_hash)
		max_hit = r->n_hash;
	for (; hit < max_hit && (b = table_find(m, r->hash[hit])) != NONE; hit++)
		hit_free += m->blk[b].ref == 0;
	/* The free hit blocks leave the queue; the rest comes from it. */
	if (r->n_blocks - hit > m->n_free - hit_free)
		return 0;
	for (i = 0; i < hit; i++) {
		b = table_find(m, r->hash[i]);
		if (m->blk[b].ref++ == 0)
			free_unlink(m, b);
		r->blocks[i] = b;
	}
	for (; i < r->n_blocks; i++) {
		b = m->free_head;
		k = &m->blk[b];
		free_unlink(m, b);
		if (k->hashed)
			table_del(m, b);	/* evicted */
		k->ref = 1;
		r->blocks[i] = b;
	}
	r->cached_tokens = hit * bs;
	m->st.prefix_queries += (uint64_t)r->n_prompt;
	m->st.prefix_hits += (uint64_t)r->cached_tokens;
	m->st.prompt_tokens += (uint64_t)r->n_prompt;
	return 1;
}

/* A computed prompt's full blocks become findable; a block whose hash is
 * already cached (computed twice at once) stays anonymous, as in vLLM. */
static void cache_prompt(struct sim_model *m, struct sim_req *r)
{
	int i, b;

	for (i = 0; i < r->n_hash; i++) {
		b = r->blocks[i];
		if (m->blk[b].hashed || table_find(m, r->hash[i]) != NONE)
			continue;
		m->blk[b].hash = r->hash[i];
		table_add(m, b);
	}
}

static void observe_ttft(struct sim_model *m, sim_us ttft)
{
	double s = (double)ttft / 1e6;
	int i;

	for (i = 0; i < SIM_TTFT_NBUCKETS && s > sim_ttft_buckets[i]; i++)
		;
	if (i < SIM_TTFT_NBUCKETS)
		m->st.ttft_bucket[i]++;
	m->st.ttft_count++;
	m->st.ttft_sum += s;
}

static void finish(struct sim_model *m, struct sim_req *r, enum sim_finish why)
{
	if (r->state == SIM_WAITING) {
		list_del(&m->waiting, r);
	} else {
		list_del(&m->running, r);
		release_blocks(m, r);
	}
	m->st.finished[why]++;
	if (m->hooks.finish != NULL)
		m->hooks.finish(m->hooks.arg, r, why);
	req_free(r);
}

/* ---- steps ---- */

sim_us sim_step_begin(struct sim_model *m, sim_us now)
{
	const struct sim_config *c = &m->cfg;
	int decoders = m->running.n, n_local = 0;
	int64_t local_tokens = 0, remote_tokens = 0, uncached;
	struct sim_req *r;
	double d = 0;
	sim_us dur;

	if (m->in_step || m->asleep)
		return -1;
	if (now > m->now)
		m->now = now;
	/* An idle engine starts when its next request arrives. */
	if (m->running.n == 0 && m->waiting.head != NULL && m->waiting.head->arrival > m->now)
		m->now = m->waiting.head->arrival;
	/* A request that arrives after the step began waits for the next one. */
	while ((r = m->waiting.head) != NULL && r->arrival <= m->now &&
	       m->running.n < c->max_num_seqs && admit(m, r)) {
		list_del(&m->waiting, r);
		r->state = SIM_RUNNING;
		r->prefilling = 1;
		list_add(&m->running, r);
		uncached = r->n_prompt - r->cached_tokens;
		if (r->remote_kv) {
			remote_tokens += uncached;
			decoders++;
		} else {
			local_tokens += uncached;
			n_local++;
		}
	}
	if (m->running.n == 0)
		return -1;
	if (n_local > 0)
		d += c->prefill_overhead_us + (double)local_tokens * c->prefill_per_token_us;
	d += (double)remote_tokens * c->kv_transfer_per_token_us;
	if (decoders > 0)
		d += c->decode_base_us + (double)decoders * c->decode_per_seq_us;
	dur = (sim_us)(d + 0.5);
	if (dur < 1)
		dur = 1;
	m->in_step = 1;
	m->step_end = m->now + dur;
	return dur;
}

void sim_step_end(struct sim_model *m)
{
	struct sim_req *r, *next;

	if (!m->in_step)
		return;
	m->in_step = 0;
	m->now = m->step_end;
	for (r = m->running.head; r != NULL; r = next) {
		next = r->next;
		if (r->prefilling) {
			r->prefilling = 0;
			cache_prompt(m, r);
			if (r->remote_kv)
				m->st.remote_prefills++;
			else
				m->st.local_prefills++;
			r->first_token_at = m->now;
			observe_ttft(m, m->now - r->arrival);
		}
		r->generated++;
		m->st.generation_tokens++;
		if (m->hooks.token != NULL)
			m->hooks.token(m->hooks.arg, r);
		if (r->generated >= r->n_out)
			finish(m, r, r->finish);
	}
}

sim_us sim_now(const struct sim_model *m)
{
	return m->now;
}

/* ---- sleep mode ---- */

void sim_sleep(struct sim_model *m, int level)
{
	while (m->running.head != NULL)
		finish(m, m->running.head, SIM_ABORT);
	while (m->waiting.head != NULL)
		finish(m, m->waiting.head, SIM_ABORT);
	if (level >= 1)
		reset_blocks(m);	/* the KV cache is discarded */
	m->asleep = 1;
}

void sim_wake_up(struct sim_model *m)
{
	m->asleep = 0;
}

int sim_is_sleeping(const struct sim_model *m)
{
	return m->asleep;
}

void sim_reset_prefix_cache(struct sim_model *m)
{
	int b;

	for (b = 0; b < m->cfg.num_gpu_blocks; b++)
		if (m->blk[b].ref == 0 && m->blk[b].hashed)
			table_del(m, b);
}

/* ---- state ---- */

int sim_num_running(const struct sim_model *m)
{
	return m->running.n;
}

int sim_num_waiting(const struct sim_model *m)
{
	return m->waiting.n;
}

int sim_blocks_used(const struct sim_model *m)
{
	return m->cfg.num_gpu_blocks - m->n_free;
}

double sim_kv_usage(const struct sim_model *m)
{
	return (double)sim_blocks_used(m) / m->cfg.num_gpu_blocks;
}

int sim_blocks_cached(const struct sim_model *m)
{
	return m->n_hashed;
}

int sim_is_cached(const struct sim_model *m, uint64_t hash)
{
	return table_find(m, hash) != NONE;
}

const struct sim_stats *sim_get_stats(const struct sim_model *m)
{
	return &m->st;
}

const struct sim_config *sim_get_config(const struct sim_model *m)
{
	return &m->cfg;
}

struct sim_req *sim_running(const struct sim_model *m)
{
	return m->running.head;
}

struct sim_req *sim_waiting(const struct sim_model *m)
{
	return m->waiting.head;
}
