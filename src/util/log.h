/* log.h: diagnostics and the access log, on standard error, one line each,
 * as text (key=value) or JSON (one object per line).
 *
 * Diagnostics (log_msg) are written at once, with a single write(2), so that
 * a warning is seen when it happens. An error or warning written while a
 * thread works on a request carries that request's id (log_set_request).
 *
 * Access-log lines are many (one per request) and are buffered: once
 * log_buffer_start() has run, each thread appends its lines to a buffer of
 * its own, written out when it fills, by a flusher thread a fraction of a
 * second later at most (LOG_FLUSH_MS), before any diagnostic of the same
 * thread, and at log_buffer_stop(). A request then costs no system call for
 * its log line. The timestamp's text is made once a second per thread.
 * Lines from one thread stay in order; lines from different threads may
 * reach the log up to LOG_FLUSH_MS apart from when they were made (each
 * carries its own time). Whatever is written, it is written whole: every
 * write to standard error is made under one lock, so lines never interleave
 * even on a pipe. A crash loses at most the last LOG_FLUSH_MS of access
 * lines; diagnostics are never held back.
 */
#ifndef ATTACHD_LOG_H
#define ATTACHD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT, LOG_JSON };

#define LOG_FLUSH_MS 250

void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* The request the calling thread works on from now (NULL: none); its id is
 * added to the diagnostics the thread writes meanwhile. The string must stay
 * valid until it is replaced. */
void log_set_request(const char *request_id);

/* One access-log line. Strings may be NULL (not shown) and may hold
 * anything a client sent: they are escaped. */
struct log_access {
    const char *method, *path, *query;
    int status;                 /* 0: no answer was sent */
    double duration_ms;
    size_t bytes;               /* the response body */
    const char *request_id;
    const char *user;           /* authenticated */
    const char *failed_user;    /* the name a refused login gave */
    const char *client;         /* the peer's address */
    const char *forwarded_for;  /* X-Forwarded-For, from a trusted proxy */
    const char *user_agent;
    bool aborted;               /* the connection ended before the answer was sent */
};
void log_access(const struct log_access *a);

/* Buffer access lines from now on (false: the flusher thread could not
 * start, and lines are written at once). */
bool log_buffer_start(void);
/* Write out every buffer and stop buffering; before the process exits. */
void log_buffer_stop(void);

#endif
