/* log.c: see log.h.
 *
 * A line is built by hand (no printf for the access log's dozen fields:
 * it was most of the line's cost) into the calling thread's buffer, whose
 * mutex only the flusher ever contends for, a few times a second. Each
 * client string is cut at FIELD_MAX bytes and escaped, so that a line never
 * exceeds LINE_MAX and always fits the room kept free in a buffer.
 */
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/utf8.h"

#define FIELD_MAX 512               /* bytes of one client string kept */
#define LINE_MAX (16 * 1024)        /* the longest line: 5 fields x 512 x 6 (JSON \u00XX) */
#define BUF_SIZE (64 * 1024)

static enum log_level min_level = LOG_INFO;
static enum log_format format = LOG_TEXT;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;   /* every write(2) */

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_set_format(enum log_format f)
{
    format = f;
}

static _Thread_local const char *current_request;

void log_set_request(const char *request_id)
{
    current_request = request_id;
}

/* ---- writing -------------------------------------------------------------------- */

static void write_all(const char *p, size_t n)
{
    pthread_mutex_lock(&out_lock);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;          /* nowhere to write: nothing else to do */
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&out_lock);
}

/* ---- building a line ---------------------------------------------------------------- */

struct sink {
    char *p, *end;
};

static void put(struct sink *s, const char *text, size_t n)
{
    if (n > (size_t)(s->end - s->p))
        n = (size_t)(s->end - s->p);
    memcpy(s->p, text, n);
    s->p += n;
}

#define PUT(s, lit) put((s), (lit), sizeof(lit) - 1)

static void put_str(struct sink *s, const char *text)
{
    put(s, text, strlen(text));
}

static void put_uint(struct sink *s, uint64_t v)
{
    char tmp[24];
    int i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(s, tmp + i, sizeof tmp - (size_t)i);
}

/* Milliseconds with three decimals. */
static void put_ms(struct sink *s, double ms)
{
    if (!(ms >= 0))
        ms = 0;
    uint64_t us = (uint64_t)(ms * 1000.0 + 0.5);
    put_uint(s, us / 1000);
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10)};
    put(s, frac, 4);
}

static const char hex[] = "0123456789abcdef";

/* Text: what would break a line or fake a field becomes \xHH (control
 * characters, DEL, the quote and the backslash). */
static bool text_escaped(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '"' || c == '\\';
}

/* Runs of plain bytes are copied whole; a byte is written only while 4
 * bytes of room are left, as an escape needs. */
static void put_text_escaped(struct sink *s, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n && s->end - s->p >= 4) {
        size_t room = (size_t)(s->end - s->p) - 3, run = 0;
        while (run < room && i + run < n && !text_escaped((unsigned char)v[i + run]))
            run++;
        memcpy(s->p, v + i, run);
        s->p += run;
        i += run;
        if (i < n && run < room) {      /* an escaped byte, with room for it */
            unsigned char c = (unsigned char)v[i++];
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            put(s, e, 4);
        }
    }
}

/* JSON: a string value, quoted. Text that is not valid UTF-8 has each byte
 * above 0x7f written as \u00XX, so that the line stays valid JSON. */
static void put_json_string(struct sink *s, const char *v, size_t n)
{
    bool utf8 = utf8_valid(v, n);
    PUT(s, "\"");
    for (size_t i = 0; i < n && s->end - s->p >= 7; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(s, e, 2);
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(s, e, 6);
        } else {
            *s->p++ = (char)c;
        }
    }
    PUT(s, "\"");
}

/* The time, "2026-01-02T03:04:05.678Z"; its first 19 characters are made
 * again only when the second changes. */
static void put_time(struct sink *s)
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = ts.tv_sec;
    }
    put(s, cached, 19);
    long ms = ts.tv_nsec / 1000000;
    char frac[5] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
                    (char)('0' + ms % 10), 'Z'};
    put(s, frac, 5);
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The start of a line: the time and level, and in JSON the opening brace. */
static void begin_line(struct sink *s, enum log_level level)
{
    if (format == LOG_JSON) {
        PUT(s, "{\"time\":\"");
        put_time(s);
        PUT(s, "\",\"level\":\"");
        put_str(s, level_names[level]);
        PUT(s, "\"");
    } else {
        put_time(s);
        PUT(s, " ");
        put_str(s, level_names[level]);
        PUT(s, " ");
    }
}

/* A field, from here on: ` key=value` (quoted when asked, escaped), or
 * `,"key":value` in JSON. */
static void field_str(struct sink *s, const char *key, const char *v, bool quote)
{
    if (!v)
        return;
    size_t n = strlen(v);
    if (n > FIELD_MAX)
        n = utf8_cut(v, n, FIELD_MAX);
    if (format == LOG_JSON) {
        PUT(s, ",\"");
        put_str(s, key);
        PUT(s, "\":");
        put_json_string(s, v, n);
        return;
    }
    PUT(s, " ");
    put_str(s, key);
    if (quote) {
        PUT(s, "=\"");
        put_text_escaped(s, v, n);
        PUT(s, "\"");
    } else {
        PUT(s, "=");
        put_text_escaped(s, v, n);
    }
}

static void field_key(struct sink *s, const char *key)
{
    if (format == LOG_JSON) {
        PUT(s, ",\"");
        put_str(s, key);
        PUT(s, "\":");
    } else {
        PUT(s, " ");
        put_str(s, key);
        PUT(s, "=");
    }
}

static void end_line(struct sink *s)
{
    /* room for these was kept by every put above */
    if (s->end - s->p < 2)
        s->p = s->end - 2;
    if (format == LOG_JSON)
        *s->p++ = '}';
    *s->p++ = '\n';
}

/* ---- the per-thread buffers ---------------------------------------------------------- */

struct logbuf {
    pthread_mutex_t lock;       /* data and len; the owner's, and the flusher's now and then */
    char *data;
    size_t len;
    struct logbuf *next;        /* every buffer, for the flusher */
};

static pthread_mutex_t bufs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct logbuf *bufs;
static atomic_bool buffering;
static pthread_t flusher;
static pthread_mutex_t flusher_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flusher_cond;
static bool flusher_stop;
static _Thread_local struct logbuf *mine;

/* The calling thread's buffer, made on first use (NULL: out of memory; the
 * line is then written at once). Buffers live until the process ends: a
 * thread's last lines are written out by the flusher after it exits. */
static struct logbuf *my_buffer(void)
{
    if (mine)
        return mine;
    struct logbuf *b = calloc(1, sizeof *b);
    if (!b || !(b->data = malloc(BUF_SIZE))) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_lock(&bufs_lock);
    b->next = bufs;
    bufs = b;
    pthread_mutex_unlock(&bufs_lock);
    return mine = b;
}

/* Under b->lock. */
static void flush_locked(struct logbuf *b)
{
    if (b->len) {
        write_all(b->data, b->len);
        b->len = 0;
    }
}

static void flush_all(void)
{
    pthread_mutex_lock(&bufs_lock);
    for (struct logbuf *b = bufs; b; b = b->next) {
        pthread_mutex_lock(&b->lock);
        flush_locked(b);
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_unlock(&bufs_lock);
}

static void *flusher_main(void *arg)
{
    pthread_setname_np(pthread_self(), "log-flush");
    (void)arg;
    pthread_mutex_lock(&flusher_lock);
    while (!flusher_stop) {
        struct timespec until;
        deadline_after_ms(&until, LOG_FLUSH_MS);
        while (!flusher_stop &&
               pthread_cond_timedwait(&flusher_cond, &flusher_lock, &until) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&flusher_lock);
        flush_all();
        pthread_mutex_lock(&flusher_lock);
    }
    pthread_mutex_unlock(&flusher_lock);
    return NULL;
}

bool log_buffer_start(void)
{
    if (atomic_load(&buffering))
        return true;
    cond_init_monotonic(&flusher_cond);
    flusher_stop = false;
    if (pthread_create(&flusher, NULL, flusher_main, NULL) != 0)
        return false;
    atomic_store(&buffering, true);
    return true;
}

void log_buffer_stop(void)
{
    if (!atomic_exchange(&buffering, false))
        return;
    pthread_mutex_lock(&flusher_lock);
    flusher_stop = true;
    pthread_cond_signal(&flusher_cond);
    pthread_mutex_unlock(&flusher_lock);
    pthread_join(flusher, NULL);
    pthread_cond_destroy(&flusher_cond);
    flush_all();
}

/* A whole line made by `build`: into the thread's buffer when buffering,
 * else written at once. */
static void emit(void (*build)(struct sink *s, const void *arg), const void *arg, bool buffer)
{
    struct logbuf *b = buffer && atomic_load_explicit(&buffering, memory_order_relaxed)
                           ? my_buffer() : NULL;
    if (!b) {
        char *line = malloc(LINE_MAX);
        char stackline[1024];
        char *out = line ? line : stackline;
        struct sink s = {out, out + (line ? LINE_MAX : sizeof stackline)};
        build(&s, arg);
        if (mine) {             /* this thread's earlier lines first */
            pthread_mutex_lock(&mine->lock);
            flush_locked(mine);
            pthread_mutex_unlock(&mine->lock);
        }
        write_all(out, (size_t)(s.p - out));
        free(line);
        return;
    }
    pthread_mutex_lock(&b->lock);
    if (BUF_SIZE - b->len < LINE_MAX)
        flush_locked(b);
    struct sink s = {b->data + b->len, b->data + b->len + LINE_MAX};
    build(&s, arg);
    b->len = (size_t)(s.p - b->data);
    pthread_mutex_unlock(&b->lock);
}

/* ---- diagnostics ------------------------------------------------------------------ */

struct msg {
    enum log_level level;
    const char *text;
};

static void build_msg(struct sink *s, const void *arg)
{
    const struct msg *m = arg;
    s->end -= 2;                /* for end_line */
    begin_line(s, m->level);
    const char *rid = m->level >= LOG_WARN && current_request &&
                      !strstr(m->text, current_request) ? current_request : NULL;
    if (format == LOG_JSON) {
        field_str(s, "msg", m->text, true);
        field_str(s, "request_id", rid, false);
    } else {
        put_str(s, m->text);
        field_str(s, "request_id", rid, false);
    }
    s->end += 2;
    end_line(s);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct msg m = {level, text};
    emit(build_msg, &m, false);
}

/* ---- the access log --------------------------------------------------------------- */

static void build_access(struct sink *s, const void *arg)
{
    const struct log_access *a = arg;
    s->end -= 2;
    begin_line(s, LOG_INFO);
    if (format == LOG_JSON) {
        field_str(s, "msg", "access", false);
    } else {
        PUT(s, "access");
    }
    /* The method is the client's too, but a token: shown without quotes, so
     * that `method=GET` reads as it always has. */
    field_str(s, "method", a->method, format == LOG_JSON);
    field_str(s, "path", a->path, true);
    field_str(s, "query", a->query && *a->query ? a->query : NULL, true);
    field_key(s, "status");
    put_uint(s, (uint64_t)(a->status > 0 ? a->status : 0));
    field_key(s, "duration_ms");
    put_ms(s, a->duration_ms);
    field_key(s, "bytes");
    put_uint(s, a->bytes);
    field_str(s, "request_id", a->request_id, format == LOG_JSON);
    field_str(s, "user", a->user ? a->user : format == LOG_JSON ? NULL : "-", a->user != NULL);
    field_str(s, "failed_user", a->failed_user, true);
    field_str(s, "client", a->client, format == LOG_JSON);
    field_str(s, "forwarded_for", a->forwarded_for, true);
    field_str(s, "ua", a->user_agent, true);
    if (a->aborted) {
        field_key(s, "aborted");
        PUT(s, "true");
    }
    s->end += 2;
    end_line(s);
}

void log_access(const struct log_access *a)
{
    if (LOG_INFO < min_level)
        return;
    emit(build_access, a, true);
}
