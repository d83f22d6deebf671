/* floor.c: the baseline for bench/run. The least a libmicrohttpd server set
 * up like attachd can do per request: the same daemon flags and options as
 * src/http/server.c (epoll thread pool of the same size, connection limits,
 * timeout, 16 KiB connection memory, suspend/resume allowed), the same
 * two-call pattern (answer on the final call, so keep-alive stays on), and a
 * response built per request from a fixed buffer. No routing, no auth, no
 * JSON, no database, no log.
 *
 *   GET (any path)     200, a fixed 155-byte JSON body
 *   DELETE (any path)  204, no body
 *   anything else      405
 *
 * Usage: floor PORT [THREADS]. Listens on 127.0.0.1; THREADS defaults to
 * the number of cores, as attachd's --threads does. Runs until SIGINT or
 * SIGTERM.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 155 bytes: a volumeAttachment as the research's tiny servers answered it */
static const char body[] =
    "{\"volumeAttachment\":{\"id\":\"a26887c6-c47b-4654-abb5-dfadf7d3f803\","
    "\"serverId\":\"test-server-000013\",\"volumeId\":\"hbs2012May03_0OxRg0Jz7\","
    "\"device\":\"/dev/vdzz\"}}";
_Static_assert(sizeof body - 1 == 155, "the floor answers 155 bytes");

static int first_call_marker;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    (void)upload_data;
    if (!*con_cls) {                /* first call: headers only */
        *con_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_size) {             /* a body: read and drop it */
        *upload_size = 0;
        return MHD_YES;
    }
    unsigned status;
    struct MHD_Response *r;
    if (!strcmp(method, "GET")) {
        status = MHD_HTTP_OK;
        r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
                                            MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    } else if (!strcmp(method, "DELETE")) {
        status = MHD_HTTP_NO_CONTENT;
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, "Allow", "GET, DELETE");
    }
    if (!r)
        return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: floor PORT [THREADS]\n");
        return 2;
    }
    unsigned port = (unsigned)atoi(argv[1]);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : (cores > 0 ? (unsigned)cores : 1);
    /* what attachd's defaults give: --max-connections 1024, --max-per-ip 64,
     * --timeout 30; MHD's own limit set as http_start() sets it */
    unsigned max_connections = 1024, max_per_ip = 64, timeout = 30;
    unsigned mhd_limit = max_connections * threads + threads;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* MHD's threads inherit the mask */

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);     /* 127.0.0.1, as bench/run's attachd */

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, max_per_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "floor: cannot listen on port %u\n", port);
        return 1;
    }
    fprintf(stderr, "floor: listening on port %u (%u threads)\n", port, threads);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
