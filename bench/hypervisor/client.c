/* client.c: the client of bench/hypervisor/run. The attach/detach cycles
 * that bare.c makes straight through libvirt, made through attachd's HTTP
 * API instead: one thread and one kept-alive connection per server, all
 * servers at once, each thread doing N cycles of
 *
 *   hostway:  POST   /servers/S/os-volume_attachments       200 once attached
 *             DELETE /servers/S/os-volume_attachments/V     204 once libvirt's
 *                                                           removal event came
 *   nova:     POST   /v2.1/servers/S/os-volume_attachments  200 once attached
 *             DELETE /v2.1/servers/S/os-volume_attachments/V     202 at once
 *             GET    /v2.1/servers/S/os-volume_attachments/V     every P ms (2)
 *                                                           until 404
 *
 *   client [--nova] [--cycles N] [--warmup W] [--poll-ms P] PORT AUTH
 *          SERVER=VOLUME [SERVER=VOLUME...]
 *
 * AUTH is the base64 of user:password (HTTP Basic). Written in C, like
 * bare.c, so that the two sides are timed the same way and no interpreter
 * sits between the clock and the socket. Each thread makes W untimed
 * cycles (they also fill attachd's credential cache), then all start
 * together and make N timed cycles. Output, as bare.c's (ms):
 *
 *   go                                 (when the timed cycles start)
 *   cycle SERVER I ATTACH_MS DETACH_MS GONE_MS
 *   wall SECONDS CYCLES
 *
 * DETACH_MS is the DELETE's answer; GONE_MS the time from sending the
 * DELETE until the detach is known to be done: the 204 itself (Hostway), or
 * the first GET that answers 404 (Nova). Any other status is an error
 * (stderr, exit status 1). Built by bench/Makefile into bench/build/client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 64
#define BUF 65536

struct worker {
    const char *server, *volume;
    int fd;
    char buf[BUF];
    size_t have;                /* bytes read past the last answer */
    double *attach_ms, *detach_ms, *gone_ms;
    bool error;
};

static struct worker workers[MAX_SERVERS];
static int nworkers, port, cycles = 20, warmup = 1;
static double poll_ms = 2.0;
static bool nova;
static const char *auth;
static pthread_barrier_t start_line;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool connect_to(struct worker *w)
{
    w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    w->have = 0;
    if (connect(w->fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "client: connect: %s\n", strerror(errno));
        return false;
    }
    return true;
}

/* Send a request, read its answer; the status, or -1. */
static int request(struct worker *w, const char *method, const char *path, const char *body)
{
    char req[2048];
    int n;
    if (body)
        n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Basic %s\r\n"
                     "Accept: application/json\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, port, auth, strlen(body), body);
    else
        n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Basic %s\r\n"
                     "Accept: application/json\r\n\r\n",
                     method, path, port, auth);
    if (n < 0 || n >= (int)sizeof req)
        return -1;
    for (int off = 0; off < n;) {
        ssize_t k = send(w->fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (k < 0) {
            fprintf(stderr, "client: send: %s\n", strerror(errno));
            return -1;
        }
        off += (int)k;
    }
    /* the head */
    char *end;
    while (!(end = memmem(w->buf, w->have, "\r\n\r\n", 4))) {
        if (w->have == BUF - 1)
            return -1;
        ssize_t k = recv(w->fd, w->buf + w->have, BUF - 1 - w->have, 0);
        if (k <= 0) {
            fprintf(stderr, "client: %s %s: connection %s\n", method, path,
                    k == 0 ? "closed" : strerror(errno));
            return -1;
        }
        w->have += (size_t)k;
    }
    size_t head = (size_t)(end - w->buf) + 4;
    w->buf[head - 1] = '\0';
    int status = 0;
    if (sscanf(w->buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    size_t len = 0;
    bool close_after = false;
    for (char *line = strstr(w->buf, "\r\n"); line && line + 2 < w->buf + head;
         line = strstr(line + 2, "\r\n")) {
        if (!strncasecmp(line + 2, "Content-Length:", 15))
            len = strtoul(line + 17, NULL, 10);
        else if (!strncasecmp(line + 2, "Connection: close", 17))
            close_after = true;
        else if (!strncasecmp(line + 2, "Transfer-Encoding:", 18)) {
            fprintf(stderr, "client: a chunked answer is not expected\n");
            return -1;
        }
    }
    while (w->have < head + len) {
        if (head + len >= BUF)
            return -1;
        ssize_t k = recv(w->fd, w->buf + w->have, BUF - 1 - w->have, 0);
        if (k <= 0)
            return -1;
        w->have += (size_t)k;
    }
    if (status >= 300 && status != 404) {
        fprintf(stderr, "client: %s %s: %d %.*s\n", method, path, status, (int)len,
                w->buf + head);
    }
    memmove(w->buf, w->buf + head + len, w->have - head - len);
    w->have -= head + len;
    if (close_after) {
        close(w->fd);
        if (!connect_to(w))
            return -1;
    }
    return status;
}

static bool cycle(struct worker *w, double *attach_ms, double *detach_ms, double *gone_ms)
{
    const char *pre = nova ? "/v2.1" : "";
    char path[512], body[512];
    snprintf(path, sizeof path, "%s/servers/%s/os-volume_attachments", pre, w->server);
    snprintf(body, sizeof body, "{\"volumeAttachment\": {\"volumeId\": \"%s\"}}", w->volume);
    double t0 = now_ms();
    int st = request(w, "POST", path, body);
    *attach_ms = now_ms() - t0;
    if (st != 200) {
        fprintf(stderr, "client: %s: attach answered %d\n", w->server, st);
        return false;
    }
    snprintf(path, sizeof path, "%s/servers/%s/os-volume_attachments/%s", pre, w->server,
             w->volume);
    double t1 = now_ms();
    st = request(w, "DELETE", path, NULL);
    *detach_ms = now_ms() - t1;
    if (st != (nova ? 202 : 204)) {
        fprintf(stderr, "client: %s: detach answered %d\n", w->server, st);
        return false;
    }
    if (!nova) {
        *gone_ms = *detach_ms;
        return true;
    }
    for (;;) {
        struct timespec ts = {0, (long)(poll_ms * 1e6)};
        nanosleep(&ts, NULL);
        st = request(w, "GET", path, NULL);
        if (st == 404)
            break;
        if (st != 200) {
            fprintf(stderr, "client: %s: poll answered %d\n", w->server, st);
            return false;
        }
        if (now_ms() - t1 > 60000) {
            fprintf(stderr, "client: %s: still attached 60 s after the DELETE\n", w->server);
            return false;
        }
    }
    *gone_ms = now_ms() - t1;
    return true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    double a, d, g;
    w->error = !connect_to(w);
    for (int i = 0; i < warmup && !w->error; i++)
        w->error = !cycle(w, &a, &d, &g);
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < cycles && !w->error; i++)
        w->error = !cycle(w, &w->attach_ms[i], &w->detach_ms[i], &w->gone_ms[i]);
    close(w->fd);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: client [--nova] [--cycles N] [--warmup W] [--poll-ms P] PORT AUTH "
                    "SERVER=VOLUME [SERVER=VOLUME...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--nova"))
            nova = true;
        else if (i + 1 >= argc)
            return usage();
        else if (!strcmp(argv[i], "--cycles"))
            cycles = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup"))
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--poll-ms"))
            poll_ms = atof(argv[++i]);
        else
            return usage();
    }
    if (argc - i < 3 || argc - i - 2 > MAX_SERVERS || cycles < 1 || warmup < 0 || poll_ms < 0)
        return usage();
    port = atoi(argv[i++]);
    auth = argv[i++];
    for (; i < argc; i++) {
        struct worker *w = &workers[nworkers];
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i] || !eq[1] || strlen(argv[i]) > 400)
            return usage();
        *eq = '\0';
        w->server = argv[i];
        w->volume = eq + 1;
        w->attach_ms = calloc((size_t)cycles, sizeof(double));
        w->detach_ms = calloc((size_t)cycles, sizeof(double));
        w->gone_ms = calloc((size_t)cycles, sizeof(double));
        if (!w->attach_ms || !w->detach_ms || !w->gone_ms)
            return 1;
        nworkers++;
    }
    pthread_barrier_init(&start_line, NULL, (unsigned)nworkers + 1);
    pthread_t th[MAX_SERVERS];
    for (int k = 0; k < nworkers; k++)
        pthread_create(&th[k], NULL, worker_main, &workers[k]);
    pthread_barrier_wait(&start_line);
    double t0 = now_ms();
    puts("go");                 /* the warm-up is over: the timed cycles start */
    fflush(stdout);
    for (int k = 0; k < nworkers; k++)
        pthread_join(th[k], NULL);
    double wall = (now_ms() - t0) / 1e3;
    int status = 0, done = 0;
    for (int k = 0; k < nworkers; k++) {
        struct worker *w = &workers[k];
        if (w->error) {
            status = 1;
            continue;
        }
        for (int c = 0; c < cycles; c++, done++)
            printf("cycle %s %d %.3f %.3f %.3f\n", w->server, c, w->attach_ms[c],
                   w->detach_ms[c], w->gone_ms[c]);
    }
    printf("wall %.6f %d\n", wall, done);
    return status;
}
