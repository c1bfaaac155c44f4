/*
 * sim_model.h - the pure model of a vLLM engine behind tests/vllm_sim: token
 * counting, a block prefix cache, continuous batching and step timing, on a
 * virtual clock. No I/O and no timers: the caller says when a step begins
 * and when it ends, and hears about tokens and finished requests through two
 * hooks. The unit tests drive it directly (tests/unit/test_sim_model.c).
 *
 * Timing (see sim_step_begin): a step admits waiting requests FIFO, prefills
 * every newly admitted one whole (no chunking) and decodes one token for each
 * request already running; its duration is
 *
 *   (any local prefill ? prefill_overhead + uncached_tokens * prefill_per_token : 0)
 *   + remote_uncached_tokens * kv_transfer_per_token
 *   + (decoders > 0 ? decode_base + decode_per_seq * decoders : 0)
 *
 * where decoders counts the requests already running plus those whose KV
 * came from a prefill engine (they need one forward pass for the first
 * token). A request's first token comes at the end of the step that
 * prefilled it, then one token per step.
 */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Virtual time in microseconds. */
typedef int64_t sim_us;

/* Bytes a token stands for: token i is bytes [4i, 4i+4) of the prompt. */
#define SIM_TOKEN_BYTES 4

struct sim_config {
	int block_size;			/* tokens per KV block */
	int num_gpu_blocks;		/* KV capacity in blocks */
	int max_num_seqs;		/* running batch limit */
	int max_model_len;		/* prompt + output limit, in tokens */
	int output_len;			/* a request's natural answer length (EOS) */
	double prefill_overhead_us;	/* once per step that prefills */
	double prefill_per_token_us;	/* per uncached prompt token */
	double decode_base_us;		/* once per step that decodes */
	double decode_per_seq_us;	/* per decoding sequence in a step */
	double kv_transfer_per_token_us; /* per uncached token whose KV came over */
};

/* The defaults vllm_sim documents in --help (an 8B-class model on one GPU). */
void sim_config_defaults(struct sim_config *cfg);
/* NULL, or why cfg cannot work (e.g. max_model_len beyond the KV capacity). */
const char *sim_config_check(const struct sim_config *cfg);

enum sim_finish { SIM_LENGTH, SIM_STOP, SIM_ABORT };
#define SIM_N_FINISH 3
/* vLLM's finish_reason strings: "length", "stop", "abort". */
const char *sim_finish_name(enum sim_finish why);

enum sim_state { SIM_WAITING, SIM_RUNNING };

/* A request in the model. Fields are for reading; the model owns it. */
struct sim_req {
	uint64_t id;
	void *user;			/* the caller's, untouched */
	enum sim_state state;
	int n_prompt;			/* prompt tokens */
	int n_out;			/* tokens it will generate */
	enum sim_finish finish;		/* why it ends after n_out tokens */
	int generated;			/* tokens so far */
	int remote_kv;			/* its KV comes from a prefill engine */
	int cached_tokens;		/* prefix cache hit at admission */
	int prefilling;			/* admitted in the step under way */
	uint64_t *hash;			/* chained hashes of its full prompt blocks */
	int n_hash;
	int *blocks;			/* block ids held while running; the first
					 * n_hash hold the prompt's full blocks */
	int n_blocks;
	char *lora;			/* adapter name, or NULL */
	sim_us arrival, first_token_at;
	struct sim_req *prev, *next;	/* waiting or running list */
};

/* Called from sim_step_end (and sim_sleep for aborts). A hook must not call
 * back into the model; after finish() returns the request is freed. */
struct sim_hooks {
	void (*token)(void *arg, struct sim_req *r);	/* r->generated grew */
	void (*finish)(void *arg, struct sim_req *r, enum sim_finish why);
	void *arg;
};

/* vLLM's vllm:time_to_first_token_seconds buckets. */
#define SIM_TTFT_NBUCKETS 22
extern const double sim_ttft_buckets[SIM_TTFT_NBUCKETS];

struct sim_stats {
	uint64_t prefix_queries;	/* prompt tokens looked up (vLLM's queries) */
	uint64_t prefix_hits;		/* of which found cached */
	uint64_t prompt_tokens;
	uint64_t generation_tokens;
	uint64_t finished[SIM_N_FINISH];
	uint64_t preemptions;		/* always 0: admission reserves all blocks */
	uint64_t local_prefills;
	uint64_t remote_prefills;	/* KV came from a prefill engine */
	uint64_t ttft_bucket[SIM_TTFT_NBUCKETS];	/* non-cumulative */
	uint64_t ttft_count;
	double ttft_sum;		/* seconds */
};

struct sim_model;

/* NULL when cfg is bad (sim_config_check) or memory runs out. */
struct sim_model *sim_model_new(const struct sim_config *cfg, const struct sim_hooks *hooks);
/* Frees the model and every request still in it (no hooks are called). */
void sim_model_free(struct sim_model *m);

/* ---- tokens and block hashes ---- */

/* Tokens in a prompt of len bytes: ceil(len / 4). */
int sim_token_count(size_t len);
/* The hash chain's start: the base model's, or a LoRA adapter's (its blocks
 * are its own, as vLLM keys blocks by adapter). */
uint64_t sim_hash_seed(const char *lora);
/* One block's hash: covers the parent's hash (so the whole prefix) and the
 * block's tokens. */
uint64_t sim_block_hash(uint64_t parent, const unsigned char *text, size_t len,
			int first_token, int ntokens);
/* The hashes of every full block of a prompt: n = len_tokens / block_size
 * of them in out (caller's array of that size). */
void sim_prompt_hashes(const unsigned char *text, size_t len, int block_size,
		       uint64_t seed, uint64_t *out, int n);

/* ---- requests ---- */

/* 0 when a prompt of n_prompt tokens asking for max_tokens (-1: not given)
 * fits max_model_len, else 1. */
int sim_too_long(const struct sim_model *m, int n_prompt, int max_tokens);

enum sim_ctx_style { SIM_CTX_CLASSIC, SIM_CTX_V011, SIM_CTX_CURRENT };
/* vLLM's context-length error text in buf, in one of its versions' wording;
 * *param gets the error object's "param" (NULL for null). */
void sim_context_error(char *buf, size_t size, enum sim_ctx_style style, int max_model_len,
		       int n_prompt, int max_tokens, const char **param);

/* Queues a request (FIFO) at virtual time now. text is the rendered prompt
 * (len bytes, at least 1); max_tokens -1 when not given; ignore_eos makes it
 * run to its limit instead of stopping at output_len; lora NULL for the base
 * model. The caller checked sim_too_long first. NULL when memory runs out. */
struct sim_req *sim_submit(struct sim_model *m, const unsigned char *text, size_t len,
			   int max_tokens, int ignore_eos, const char *lora, int remote_kv,
			   sim_us now, void *user);
/* The client went away: the request leaves the model at once, no hook is
 * called, its blocks are released (counted as an abort). */
void sim_cancel(struct sim_model *m, struct sim_req *r);

/* ---- steps ---- */

/* Begins a step at now (not before the last step's end; an idle engine
 * begins at its first request's arrival): admits, FIFO, the requests that
 * had arrived and fit, returns the step's duration (>= 1), or -1 when there
 * is nothing to run (idle, asleep, or a step is already under way). The
 * step ends at sim_now() + duration. */
sim_us sim_step_begin(struct sim_model *m, sim_us now);
/* Ends the step: the clock moves to its end, tokens are emitted through the
 * hooks, finished requests leave. */
void sim_step_end(struct sim_model *m);
/* The virtual time of the last step's end (or begin). */
sim_us sim_now(const struct sim_model *m);

/* ---- sleep mode and cache control ---- */

/* vLLM's sleep (mode abort): every request in the model is aborted through
 * the finish hook; level >= 1 also discards the KV cache. Requests submitted
 * while asleep wait until sim_wake_up. */
void sim_sleep(struct sim_model *m, int level);
void sim_wake_up(struct sim_model *m);
int sim_is_sleeping(const struct sim_model *m);
/* Forgets every cached block not held by a running request. */
void sim_reset_prefix_cache(struct sim_model *m);

/* ---- state ---- */

int sim_num_running(const struct sim_model *m);
int sim_num_waiting(const struct sim_model *m);
/* Blocks held by running requests over all blocks: vllm:kv_cache_usage_perc. */
double sim_kv_usage(const struct sim_model *m);
int sim_blocks_used(const struct sim_model *m);
int sim_blocks_cached(const struct sim_model *m);	/* blocks with a hash */
/* 1 when a block with this hash is in the cache. */
int sim_is_cached(const struct sim_model *m, uint64_t hash);
const struct sim_stats *sim_get_stats(const struct sim_model *m);
const struct sim_config *sim_get_config(const struct sim_model *m);
/* The running (or waiting) list, for reporting: first, then r->next. */
struct sim_req *sim_running(const struct sim_model *m);
struct sim_req *sim_waiting(const struct sim_model *m);

#endif
