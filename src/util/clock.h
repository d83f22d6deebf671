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

/* *ts = *ts + seconds (at least 0). */
static inline void timespec_add(struct timespec *ts, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    time_t whole = (time_t)seconds;
    ts->tv_sec += whole;
    ts->tv_nsec += (long)((seconds - (double)whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* *ts = now (CLOCK_MONOTONIC) + seconds. */
static inline void deadline_after_s(struct timespec *ts, double seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    timespec_add(ts, seconds);
}

/* *ts = now (CLOCK_MONOTONIC) + ms milliseconds. */
static inline void deadline_after_ms(struct timespec *ts, long ms)
{
    deadline_after_s(ts, (double)ms / 1e3);
}

#endif
