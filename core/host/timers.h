/*
 * timers: the one-shot timers plugins ask the host for (sy_timer), on the
 * loop of the thread that asked: the health thread's, or a worker's (ABI
 * 1.2, worker_timer_add).  Each list is owned by one thread; adding,
 * cancelling and clearing happen on that thread only.
 */
#ifndef SY_TIMERS_H
#define SY_TIMERS_H

#include <switchyard/plugin.h>
#include <sys/queue.h>

struct event_base;

struct sy_timer;
struct timer_list {
    LIST_HEAD(, sy_timer) head;
};

void timers_init(struct timer_list *l);
/* cb(arg) once after `seconds` on base; NULL on failure. */
sy_timer *timers_add(struct timer_list *l, struct event_base *base, double seconds,
                     sy_timer_cb cb, void *arg);
/* Cancel a timer not fired yet (it frees itself when it fires). */
void timers_cancel(sy_timer *t);
/* Cancel every timer of the list. */
void timers_clear(struct timer_list *l);

/* Which worker this thread is (set by the worker at start and at each
 * reload's hand-over): its index, loop and the setup it serves from; -1
 * on any other thread. */
void timers_worker_here(int worker, struct event_base *base, const void *setup);
int timers_worker(struct event_base **base, const void **setup);

#endif
