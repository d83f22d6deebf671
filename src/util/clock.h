/* clock.h: timed waits on the monotonic clock, which a change of the
 * system's time does not move. */
#ifndef ATTACHD_CLOCK_H
#define ATTACHD_CLOCK_H

#include <pthread.h>
#include <time.h>

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines. */
static inline void cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

/* *ts = now (CLOCK_MONOTONIC) + ms milliseconds. */
static inline void deadline_after_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

#endif
