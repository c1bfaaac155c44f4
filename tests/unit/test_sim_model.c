/* The vLLM engine simulator's model (tests/sim/sim_model.c), driven on its
 * virtual clock: tokens, block hashes, the prefix cache, batching, timing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sim/sim_model.h"
#include "unit.h"

/* What the hooks saw. */
struct seen {
    int tokens, finished, finished_reason[SIM_N_FINISH];
    sim_us first_token[16];     /* by request id */
    sim_us finish_at[16];
    struct sim_model *m;
};

static void on_token(void *arg, struct sim_req *r)
{
    struct seen *s = arg;
    s->tokens++;
    if (r->generated == 1 && r->id < 16)
        s->first_token[r->id] = sim_now(s->m) - r->arrival;
}

static void on_finish(void *arg, struct sim_req *r, enum sim_finish why)
{
    struct seen *s = arg;
    s->finished++;
    s->finished_reason[why]++;
    if (r->id < 16)
        s->finish_at[r->id] = sim_now(s->m);
}

/* Round numbers, so timings can be checked exactly. */
static struct sim_config small_config(void)
{
    struct sim_config c;
    sim_config_defaults(&c);
    c.block_size = 4;
    c.num_gpu_blocks = 64;
    c.max_num_seqs = 8;
    c.max_model_len = 128;
    c.output_len = 1000;
    c.prefill_overhead_us = 1000;
    c.prefill_per_token_us = 10;
    c.decode_base_us = 100;
    c.decode_per_seq_us = 10;
    c.kv_transfer_per_token_us = 1;
    return c;
}

static struct sim_model *make(const struct sim_config *c, struct seen *s)
{
    struct sim_hooks h = { on_token, on_finish, s };
    memset(s, 0, sizeof *s);
    s->m = sim_model_new(c, &h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->m);
    return s->m;
}

/* Steps until nothing runs; returns the virtual time then. */
static sim_us run_idle(struct sim_model *m)
{
    sim_us d;
    while ((d = sim_step_begin(m, sim_now(m))) > 0)
        sim_step_end(m);
    return sim_now(m);
}

static struct sim_req *submit(struct sim_model *m, const char *text, int max_tokens)
{
    return sim_submit(m, (const unsigned char *)text, strlen(text), max_tokens, 0, NULL, 0,
                      sim_now(m), NULL);
}

/* A prompt of n tokens (4n bytes), its first 4*same bytes shared with the
 * one made with the same `same`. */
static char *prompt(int n, int same, char tag)
{
    char *p = malloc((size_t)n * 4 + 1);
    for (int i = 0; i < n * 4; i++)
        p[i] = i < same * 4 ? (char)('a' + i % 26) : tag;
    p[n * 4] = '\0';
    return p;
}

static void test_token_count(void)
{
    CU_ASSERT_EQUAL(sim_token_count(0), 0);
    CU_ASSERT_EQUAL(sim_token_count(1), 1);
    CU_ASSERT_EQUAL(sim_token_count(4), 1);
    CU_ASSERT_EQUAL(sim_token_count(5), 2);
    CU_ASSERT_EQUAL(sim_token_count(4000), 1000);

    struct seen s;
    struct sim_config c = small_config();
    struct sim_model *m = make(&c, &s);
    struct sim_req *r = submit(m, "hello world!!", 5);   /* 13 bytes */
    CU_ASSERT_EQUAL(r->n_prompt, 4);
    CU_ASSERT_EQUAL(r->n_hash, 1);
    CU_ASSERT_EQUAL(r->n_out, 5);
    CU_ASSERT_EQUAL(r->finish, SIM_LENGTH);
    /* no max_tokens: the natural length, finish "stop" */
    c.output_len = 7;
    sim_model_free(m);
    m = make(&c, &s);
    r = submit(m, "hello world!!", -1);
    CU_ASSERT_EQUAL(r->n_out, 7);
    CU_ASSERT_EQUAL(r->finish, SIM_STOP);
    r = sim_submit(m, (const unsigned char *)"abcd", 4, 20, 1, NULL, 0, 0, NULL);
    CU_ASSERT_EQUAL(r->n_out, 20);      /* ignore_eos runs to max_tokens */
    sim_model_free(m);
}

static void test_block_hash_chain(void)
{
    const unsigned char *a = (const unsigned char *)"0123456789abcdefXXXXXXXXXXXXXXXX";
    const unsigned char *b = (const unsigned char *)"0123456789abcdefXXXXXXXXXXXXXXXY";
    const unsigned char *c = (const unsigned char *)"Z123456789abcdefXXXXXXXXXXXXXXXX";
    uint64_t ha[2], hb[2], hc[2], seed = sim_hash_seed(NULL);

    sim_prompt_hashes(a, 32, 4, seed, ha, 2);
    sim_prompt_hashes(b, 32, 4, seed, hb, 2);
    sim_prompt_hashes(c, 32, 4, seed, hc, 2);
    CU_ASSERT_EQUAL(ha[0], hb[0]);           /* same first block */
    CU_ASSERT_NOT_EQUAL(ha[1], hb[1]);       /* different second block */
    CU_ASSERT_NOT_EQUAL(ha[0], hc[0]);
    CU_ASSERT_NOT_EQUAL(ha[1], hc[1]);       /* same bytes, other prefix: chained */
    CU_ASSERT_EQUAL(ha[1], sim_block_hash(ha[0], a, 32, 4, 4));
    /* deterministic, and a LoRA adapter has its own chain */
    CU_ASSERT_EQUAL(ha[0], sim_block_hash(seed, a, 32, 0, 4));
    CU_ASSERT_NOT_EQUAL(sim_hash_seed("sql-lora"), seed);
    CU_ASSERT_NOT_EQUAL(sim_block_hash(sim_hash_seed("sql-lora"), a, 32, 0, 4), ha[0]);
    /* the last partial token is zero-padded */
    CU_ASSERT_EQUAL(sim_block_hash(seed, (const unsigned char *)"abcde", 5, 0, 2),
                    sim_block_hash(seed, (const unsigned char *)"abcde\0\0", 8, 0, 2));
}

static void test_prefix_hits_counted_per_token(void)
{
    struct seen s;
    struct sim_config c = small_config();
    struct sim_model *m = make(&c, &s);
    char *p10 = prompt(10, 10, 'x'), *p8 = prompt(8, 8, 'x');
    const struct sim_stats *st = sim_get_stats(m);

    submit(m, p10, 2);                  /* 10 tokens: blocks 0, 1 full */
    run_idle(m);
    CU_ASSERT_EQUAL(st->prefix_queries, 10);
    CU_ASSERT_EQUAL(st->prefix_hits, 0);
    CU_ASSERT_EQUAL(sim_blocks_cached(m), 2);
    submit(m, p10, 2);
    run_idle(m);
    CU_ASSERT_EQUAL(st->prefix_queries, 20);
    CU_ASSERT_EQUAL(st->prefix_hits, 8);     /* two full blocks */
    /* 8 tokens: two full blocks, but the last token is always computed */
    struct sim_req *r = submit(m, p8, 2);
    CU_ASSERT_EQUAL(r->n_hash, 2);
    run_idle(m);
    CU_ASSERT_EQUAL(st->prefix_hits, 12);
    CU_ASSERT_EQUAL(st->prefix_queries, 28);
    /* a LoRA adapter does not see the base model's blocks */
    sim_submit(m, (const unsigned char *)p10, 40, 2, 0, "a-lora", 0, sim_now(m), NULL);
    run_idle(m);
    CU_ASSERT_EQUAL(st->prefix_hits, 12);
    CU_ASSERT_EQUAL(st->local_prefills, 4);
    CU_ASSERT_EQUAL(s.finished_reason[SIM_LENGTH], 4);
    free(p10);
    free(p8);
    sim_model_free(m);
}

static void test_lru_eviction_order(void)
{
    struct seen s;
    struct sim_config c = small_config();
    c.num_gpu_blocks = 8;
    c.max_model_len = 32;
    struct sim_model *m = make(&c, &s);
    char *a = prompt(8, 0, 'a'), *b = prompt(8, 0, 'b'), *big = prompt(16, 0, 'z');
    char *q = prompt(20, 0, 'q');
    uint64_t ha[2], hb[2], hbig[4], seed = sim_hash_seed(NULL);

    sim_prompt_hashes((const unsigned char *)a, 32, 4, seed, ha, 2);
    sim_prompt_hashes((const unsigned char *)b, 32, 4, seed, hb, 2);
    sim_prompt_hashes((const unsigned char *)big, 64, 4, seed, hbig, 4);
    submit(m, a, 4);                    /* 3 blocks, 2 of them cached after */
    run_idle(m);
    submit(m, b, 4);
    run_idle(m);
    CU_ASSERT_TRUE(sim_is_cached(m, ha[0]) && sim_is_cached(m, ha[1]));
    CU_ASSERT_TRUE(sim_is_cached(m, hb[0]) && sim_is_cached(m, hb[1]));
    CU_ASSERT_EQUAL(sim_blocks_used(m), 0);
    CU_ASSERT_EQUAL(sim_blocks_cached(m), 4);
    /* 5 blocks: the 4 without a hash go first, then the oldest cached
     * block, a's last one (a request's tail goes before its prefix) */
    submit(m, big, 4);
    CU_ASSERT_TRUE(sim_step_begin(m, sim_now(m)) > 0);
    CU_ASSERT_EQUAL(sim_blocks_used(m), 5);
    CU_ASSERT_DOUBLE_EQUAL(sim_kv_usage(m), 5.0 / 8, 1e-9);
    CU_ASSERT_TRUE(sim_is_cached(m, ha[0]));
    CU_ASSERT_FALSE(sim_is_cached(m, ha[1]));
    CU_ASSERT_TRUE(sim_is_cached(m, hb[0]) && sim_is_cached(m, hb[1]));
    sim_step_end(m);
    run_idle(m);
    CU_ASSERT_TRUE(sim_is_cached(m, hbig[0]) && sim_is_cached(m, hbig[3]));
    /* b again: its first block is a hit (8 tokens: the last block is
     * computed again), which makes it the most recently used; a's first
     * block and the free blocks without a hash are taken */
    submit(m, b, 4);
    run_idle(m);
    CU_ASSERT_FALSE(sim_is_cached(m, ha[0]));
    CU_ASSERT_EQUAL(sim_get_stats(m)->prefix_hits, 4);
    /* 6 blocks: b's second block and big's tail go, b's first block (used
     * last) and big's first block stay */
    submit(m, q, 4);
    CU_ASSERT_TRUE(sim_step_begin(m, sim_now(m)) > 0);
    CU_ASSERT_TRUE(sim_is_cached(m, hb[0]));
    CU_ASSERT_FALSE(sim_is_cached(m, hb[1]));
    CU_ASSERT_TRUE(sim_is_cached(m, hbig[0]));
    CU_ASSERT_FALSE(sim_is_cached(m, hbig[1]) || sim_is_cached(m, hbig[2]) ||
                    sim_is_cached(m, hbig[3]));
    sim_step_end(m);
    run_idle(m);
    /* reset_prefix_cache forgets every free block */
    sim_reset_prefix_cache(m);
    CU_ASSERT_EQUAL(sim_blocks_cached(m), 0);
    free(a);
    free(b);
    free(big);
    free(q);
    sim_model_free(m);
}

static void test_ttft_cached_vs_uncached(void)
{
    struct seen s;
    struct sim_config c = small_config();
    struct sim_model *m = make(&c, &s);
    char *p = prompt(10, 10, 'x');
    struct sim_req *r;

    r = submit(m, p, 3);
    CU_ASSERT_EQUAL(r->id, 1);
    CU_ASSERT_EQUAL(sim_step_begin(m, 0), 1000 + 10 * 10);
    sim_step_end(m);
    CU_ASSERT_EQUAL(s.first_token[1], 1100);        /* overhead + 10 x per token */
    run_idle(m);
    CU_ASSERT_EQUAL(s.finish_at[1], 1100 + 2 * 110);  /* then 2 decode steps */
    /* 8 of the 10 tokens cached: 2 computed */
    r = submit(m, p, 3);
    run_idle(m);
    CU_ASSERT_EQUAL(s.first_token[2], 1000 + 2 * 10);
    const struct sim_stats *st = sim_get_stats(m);
    CU_ASSERT_EQUAL(st->ttft_count, 2);
    CU_ASSERT_DOUBLE_EQUAL(st->ttft_sum, 0.0011 + 0.00102, 1e-12);
    CU_ASSERT_EQUAL(st->ttft_bucket[1], 2);          /* (0.001, 0.005] */
    CU_ASSERT_EQUAL(st->generation_tokens, 6);
    CU_ASSERT_EQUAL(st->prompt_tokens, 20);
    free(p);
    sim_model_free(m);
}

static void test_decode_step_grows_with_batch(void)
{
    struct seen s;
    struct sim_config c = small_config();
    struct sim_model *m = make(&c, &s);
    char *a = prompt(4, 0, 'a'), *b = prompt(4, 0, 'b'), *d = prompt(4, 0, 'd');

    submit(m, a, 10);
    CU_ASSERT_EQUAL(sim_step_begin(m, 0), 1000 + 40);
    sim_step_end(m);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), 100 + 10 * 1);
    sim_step_end(m);
    /* two prefills share a step with a's decode */
    submit(m, b, 10);
    submit(m, d, 10);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), 1000 + 80 + 100 + 10 * 1);
    CU_ASSERT_EQUAL(sim_num_running(m), 3);
    /* no second step while one is under way */
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), -1);
    sim_step_end(m);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), 100 + 10 * 3);
    sim_step_end(m);
    /* a step never begins before the last one ended */
    sim_us end = sim_now(m);
    CU_ASSERT_EQUAL(sim_step_begin(m, end - 50), 130);
    sim_step_end(m);
    CU_ASSERT_EQUAL(sim_now(m), end + 130);
    run_idle(m);
    CU_ASSERT_EQUAL(s.tokens, 30);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), -1);     /* idle */
    free(a);
    free(b);
    free(d);
    sim_model_free(m);
}

static void test_queue_at_max_num_seqs(void)
{
    struct seen s;
    struct sim_config c = small_config();
    c.max_num_seqs = 2;
    struct sim_model *m = make(&c, &s);
    char *a = prompt(4, 0, 'a'), *b = prompt(4, 0, 'b'), *d = prompt(4, 0, 'd');

    submit(m, a, 2);
    submit(m, b, 2);
    struct sim_req *third = submit(m, d, 2);
    CU_ASSERT_EQUAL(sim_num_waiting(m), 3);
    CU_ASSERT_EQUAL(sim_step_begin(m, 0), 1000 + 80);
    CU_ASSERT_EQUAL(sim_num_running(m), 2);
    CU_ASSERT_EQUAL(sim_num_waiting(m), 1);
    CU_ASSERT_PTR_EQUAL(sim_waiting(m), third);
    sim_step_end(m);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), 120);
    sim_step_end(m);                    /* a and b finish */
    CU_ASSERT_EQUAL(sim_num_running(m), 0);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), 1040);
    CU_ASSERT_EQUAL(sim_num_waiting(m), 0);
    sim_step_end(m);
    run_idle(m);
    CU_ASSERT_EQUAL(s.first_token[3], 1080 + 120 + 1040);   /* its wait counts */
    free(a);
    free(b);
    free(d);
    sim_model_free(m);
}

static void test_arrivals_join_the_next_step(void)
{
    struct seen s;
    struct sim_config c = small_config();
    struct sim_model *m = make(&c, &s);
    char *a = prompt(4, 0, 'a'), *b = prompt(4, 0, 'b');

    /* idle: the step begins when the request arrives, not before */
    sim_submit(m, (const unsigned char *)a, 16, 3, 0, NULL, 0, 500, NULL);
    CU_ASSERT_EQUAL(sim_step_begin(m, 0), 1040);
    CU_ASSERT_EQUAL(sim_now(m), 500);
    sim_step_end(m);
    CU_ASSERT_EQUAL(s.first_token[1], 1040);
    /* b arrives during the next step (it began at 1540): it waits for the
     * step after, even when the caller is late to begin that one */
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), 110);
    sim_submit(m, (const unsigned char *)b, 16, 3, 0, NULL, 0, 1600, NULL);
    sim_step_end(m);
    CU_ASSERT_EQUAL(sim_step_begin(m, 1600 - 100), 1000 + 40 + 100 + 10);
    CU_ASSERT_EQUAL(sim_now(m), 1650);
    CU_ASSERT_EQUAL(sim_num_running(m), 2);
    sim_step_end(m);
    CU_ASSERT_EQUAL(s.first_token[2], 1650 + 1150 - 1600);
    run_idle(m);
    free(a);
    free(b);
    sim_model_free(m);
}

static void test_kv_admission(void)
{
    struct seen s;
    struct sim_config c = small_config();
    c.num_gpu_blocks = 8;
    c.max_model_len = 32;
    struct sim_model *m = make(&c, &s);
    char *a = prompt(16, 0, 'a'), *b = prompt(8, 0, 'b'), *d = prompt(1, 0, 'd');

    submit(m, a, 8);                    /* 24 tokens: 6 of the 8 blocks */
    submit(m, b, 4);                    /* 3 blocks: must wait */
    submit(m, d, 1);                    /* 1 block fits, but FIFO: waits too */
    CU_ASSERT_TRUE(sim_step_begin(m, 0) > 0);
    CU_ASSERT_EQUAL(sim_num_running(m), 1);
    CU_ASSERT_EQUAL(sim_num_waiting(m), 2);
    CU_ASSERT_DOUBLE_EQUAL(sim_kv_usage(m), 0.75, 1e-9);
    sim_step_end(m);
    for (int i = 0; i < 7; i++) {
        CU_ASSERT_TRUE(sim_step_begin(m, sim_now(m)) > 0);
        CU_ASSERT_EQUAL(sim_num_waiting(m), 2);
        sim_step_end(m);
    }
    CU_ASSERT_EQUAL(s.finished, 1);
    CU_ASSERT_EQUAL(sim_blocks_used(m), 0);
    CU_ASSERT_TRUE(sim_step_begin(m, sim_now(m)) > 0);
    CU_ASSERT_EQUAL(sim_num_running(m), 2);
    CU_ASSERT_EQUAL(sim_blocks_used(m), 4);
    sim_step_end(m);
    run_idle(m);
    CU_ASSERT_EQUAL(s.finished, 3);
    CU_ASSERT_EQUAL(sim_get_stats(m)->preemptions, 0);
    free(a);
    free(b);
    free(d);
    sim_model_free(m);
}

static void test_context_length(void)
{
    struct seen s;
    struct sim_config c = small_config();
    struct sim_model *m = make(&c, &s);
    char buf[512];
    const char *param;

    CU_ASSERT_FALSE(sim_too_long(m, 100, 28));
    CU_ASSERT_TRUE(sim_too_long(m, 100, 29));
    CU_ASSERT_FALSE(sim_too_long(m, 127, -1));
    CU_ASSERT_TRUE(sim_too_long(m, 128, -1));
    sim_context_error(buf, sizeof buf, SIM_CTX_CLASSIC, 128, 100, 29, &param);
    CU_ASSERT_STRING_EQUAL(buf, "This model's maximum context length is 128 tokens. However, you "
                           "requested 129 tokens (100 in the messages, 29 in the completion). "
                           "Please reduce the length of the messages or completion.");
    CU_ASSERT_PTR_NULL(param);
    sim_context_error(buf, sizeof buf, SIM_CTX_CLASSIC, 128, 130, -1, &param);
    CU_ASSERT_STRING_EQUAL(buf, "This model's maximum context length is 128 tokens. However, you "
                           "requested 130 tokens in the messages, Please reduce the length of "
                           "the messages.");
    sim_context_error(buf, sizeof buf, SIM_CTX_V011, 128, 100, 29, &param);
    CU_ASSERT_STRING_EQUAL(buf, "'max_tokens' or 'max_completion_tokens' is too large: 29. This "
                           "model's maximum context length is 128 tokens and your request has "
                           "100 input tokens (29 > 128 - 100). (parameter=max_tokens, value=29)");
    CU_ASSERT_STRING_EQUAL(param, "max_tokens");
    sim_context_error(buf, sizeof buf, SIM_CTX_CURRENT, 128, 100, 29, &param);
    CU_ASSERT_STRING_EQUAL(buf, "You passed 100 input tokens and requested 29 output tokens. "
                           "However, the model's context length is only 128 tokens, resulting "
                           "in a maximum input length of 99 tokens. Please reduce the length of "
                           "the input prompt. (parameter=input_tokens, value=100)");
    CU_ASSERT_STRING_EQUAL(param, "input_tokens");
    /* no max_tokens: what the context has left */
    struct sim_req *r = sim_submit(m, (const unsigned char *)"abcd", 4, -1, 1, NULL, 0, 0, NULL);
    CU_ASSERT_EQUAL(r->n_out, 127);
    CU_ASSERT_EQUAL(r->finish, SIM_LENGTH);
    sim_model_free(m);
    /* a KV cache smaller than one max_model_len sequence is refused */
    c.num_gpu_blocks = 31;
    CU_ASSERT_PTR_NOT_NULL(sim_config_check(&c));
    CU_ASSERT_PTR_NULL(sim_model_new(&c, NULL));
}

static void test_sleep_cancel_and_remote_kv(void)
{
    struct seen s;
    struct sim_config c = small_config();
    struct sim_model *m = make(&c, &s);
    char *a = prompt(10, 0, 'a'), *b = prompt(10, 0, 'b');
    uint64_t hb[2];

    /* sleep aborts what runs and waits, and forgets the cache */
    submit(m, a, 5);
    run_idle(m);
    CU_ASSERT_EQUAL(sim_blocks_cached(m), 2);
    submit(m, a, 5);
    submit(m, b, 5);
    CU_ASSERT_TRUE(sim_step_begin(m, sim_now(m)) > 0);
    sim_sleep(m, 1);
    CU_ASSERT_EQUAL(s.finished_reason[SIM_ABORT], 2);
    CU_ASSERT_EQUAL(sim_blocks_used(m), 0);
    CU_ASSERT_EQUAL(sim_blocks_cached(m), 0);
    sim_step_end(m);
    CU_ASSERT_TRUE(sim_is_sleeping(m));
    /* asleep: held, not run */
    submit(m, a, 5);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), -1);
    CU_ASSERT_EQUAL(sim_num_waiting(m), 1);
    sim_wake_up(m);
    CU_ASSERT_FALSE(sim_is_sleeping(m));
    CU_ASSERT_TRUE(sim_step_begin(m, sim_now(m)) > 0);
    sim_step_end(m);
    /* a client gone mid-step: no hook, no token, an abort */
    int tokens = s.tokens;
    sim_cancel(m, sim_running(m));
    CU_ASSERT_EQUAL(sim_get_stats(m)->finished[SIM_ABORT], 3);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), -1);
    CU_ASSERT_EQUAL(s.tokens, tokens);
    CU_ASSERT_EQUAL(sim_blocks_used(m), 0);
    /* KV from a prefill engine: no prefill cost, one decode pass, cached */
    sim_submit(m, (const unsigned char *)b, 40, 2, 0, NULL, 1, sim_now(m), NULL);
    CU_ASSERT_EQUAL(sim_step_begin(m, sim_now(m)), 10 * 1 + 100 + 10);
    sim_step_end(m);
    run_idle(m);
    CU_ASSERT_EQUAL(sim_get_stats(m)->remote_prefills, 1);
    sim_prompt_hashes((const unsigned char *)b, 40, 4, sim_hash_seed(NULL), hb, 2);
    CU_ASSERT_TRUE(sim_is_cached(m, hb[0]) && sim_is_cached(m, hb[1]));
    free(a);
    free(b);
    sim_model_free(m);
}

void register_sim_model_tests(void)
{
    UNIT_SUITE("sim_model", UNIT_TEST(test_token_count), UNIT_TEST(test_block_hash_chain),
               UNIT_TEST(test_prefix_hits_counted_per_token), UNIT_TEST(test_lru_eviction_order),
               UNIT_TEST(test_ttft_cached_vs_uncached), UNIT_TEST(test_decode_step_grows_with_batch),
               UNIT_TEST(test_queue_at_max_num_seqs), UNIT_TEST(test_arrivals_join_the_next_step),
               UNIT_TEST(test_kv_admission),
               UNIT_TEST(test_context_length), UNIT_TEST(test_sleep_cancel_and_remote_kv));
}
