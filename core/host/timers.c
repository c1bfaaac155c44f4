#include "timers.h"

#include <event2/event.h>
#include <stdlib.h>

struct sy_timer {
    struct event *ev;
    sy_timer_cb cb;
    void *arg;
    LIST_ENTRY(sy_timer) link;
};

static _Thread_local int here_worker = -1;
static _Thread_local struct event_base *here_base;
static _Thread_local const void *here_setup;

void timers_worker_here(int worker, struct event_base *base, const void *setup)
{
    here_worker = worker;
    here_base = base;
    here_setup = setup;
}

int timers_worker(struct event_base **base, const void **setup)
{
    *base = here_base;
    *setup = here_setup;
    return here_worker;
}

void timers_init(struct timer_list *l)
{
    LIST_INIT(&l->head);
}

static void timer_free(struct sy_timer *t)
{
    LIST_REMOVE(t, link);
    event_free(t->ev);
    free(t);
}

static void timer_fire(evutil_socket_t fd, short what, void *arg)
{
    struct sy_timer *t = arg;
    sy_timer_cb cb = t->cb;
    void *cb_arg = t->arg;

    timer_free(t); /* one-shot: gone before the callback may add another */
    cb(cb_arg);
}

sy_timer *timers_add(struct timer_list *l, struct event_base *base, double seconds,
                     sy_timer_cb cb, void *arg)
{
    struct sy_timer *t;
    struct timeval tv;

    if (base == NULL || cb == NULL || !(seconds >= 0))
        return NULL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->cb = cb;
    t->arg = arg;
    t->ev = evtimer_new(base, timer_fire, t);
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    if (t->ev == NULL || evtimer_add(t->ev, &tv) != 0) {
        if (t->ev)
            event_free(t->ev);
        free(t);
        return NULL;
    }
    LIST_INSERT_HEAD(&l->head, t, link);
    return t;
}

void timers_cancel(sy_timer *t)
{
    if (t != NULL)
        timer_free(t);
}

void timers_clear(struct timer_list *l)
{
    while (!LIST_EMPTY(&l->head))
        timer_free(LIST_FIRST(&l->head));
}
