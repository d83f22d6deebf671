/* guard.h: the HTTP layer's connection guard (internal to src/http).
 *
 * libmicrohttpd 0.9.75 times a connection by inactivity only, so a client
 * sending a byte every few seconds keeps a request head, or a chunked body,
 * going for ever; and at its connection limit it refuses everyone, so a few
 * such clients hold the server. The guard keeps every open connection in a
 * table, follows each through its requests (waiting for a head, receiving a
 * body, being handled), and
 *
 * - closes a connection whose request head is not complete --header-timeout
 *   seconds after its first byte, or whose body is not complete --timeout
 *   seconds after its head, from a watchdog thread that reads how many bytes
 *   each socket has received (TCP_INFO) to see when a head begins;
 * - at the connection cap, makes room for a new connection by closing the
 *   oldest one that has not yet sent a whole request head: one that never
 *   completed a head, or a kept-alive one part-way through its next head;
 *   when there is none, the kept-alive connection idle longest (clients
 *   that send a request now and then would otherwise hold every slot).
 *   Requests being handled are never chosen.
 *
 * "Closing" is shutdown(SHUT_RDWR) on the socket: MHD sees the connection end
 * and cleans it up on its own thread, as for any client that went away. MHD
 * reports a connection closed (http_guard_closed) before it closes the
 * socket, and the entry leaves the table under the lock the shutdown() is
 * made under, so the guard never touches a descriptor that was reused.
 */
#ifndef ATTACHD_HTTP_GUARD_H
#define ATTACHD_HTTP_GUARD_H

#include <stdbool.h>

/* The least room over the cap for connections the guard closed that MHD
 * has not yet cleaned up (it does within a turn of their thread's event
 * loop); without any, every eviction would also refuse its newcomer. The
 * HTTP layer gives more when the open-files limit allows. */
#define HTTP_GUARD_SLACK_MIN 8

struct http_guard;
struct http_guard_conn;         /* one connection's entry */

/* Start the watchdog; NULL with a reason in err. Times are in seconds. At
 * most max_connections + slack connections are open at once: past the cap
 * only while the ones closed to make room are being cleaned up. */
struct http_guard *http_guard_new(unsigned max_connections, unsigned slack,
                                  unsigned header_timeout, unsigned body_timeout, char *err,
                                  int errlen);
/* Stop the watchdog and free; every connection must have been closed. */
void http_guard_free(struct http_guard *g);

/* The accept policy: count a new connection, making room if the cap is
 * reached. false: refuse it (nothing counted). */
bool http_guard_admit(struct http_guard *g);
/* For the metrics: connections open now (admitted and not yet closed), and
 * the cap. */
int http_guard_open(struct http_guard *g);
int http_guard_cap(struct http_guard *g);
/* MHD started the connection admitted last on this thread, on socket fd.
 * NULL when out of memory: the connection is then shut down. */
struct http_guard_conn *http_guard_opened(struct http_guard *g, int fd);
/* MHD closed it (c may be NULL, see above); its socket is still open. */
void http_guard_closed(struct http_guard *g, struct http_guard_conn *c);

/* The phases of a request, called on the connection's own thread (c may be
 * NULL): its head is complete (the access handler's first call); its body
 * is complete or no longer read (the request is being answered); MHD is
 * done with it (the connection now waits for the next head). The first two
 * return false if the guard has closed the connection meanwhile: the
 * request must then go no further, as its client will not see the answer. */
bool http_guard_head_done(struct http_guard *g, struct http_guard_conn *c);
bool http_guard_body_done(struct http_guard *g, struct http_guard_conn *c);
void http_guard_request_done(struct http_guard *g, struct http_guard_conn *c);

#endif
