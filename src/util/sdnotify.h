/* sdnotify.h: systemd's readiness protocol (sd_notify(3)), without
 * libsystemd: one datagram per state to the socket in $NOTIFY_SOCKET.
 *
 * Under Type=notify the unit is "started" when READY=1 arrives, and with
 * WatchdogSec= systemd expects WATCHDOG=1 more often than $WATCHDOG_USEC
 * (and kills and restarts the service otherwise): sdnotify_watchdog_usec()
 * says how often, half of it being the usual pace. Outside systemd (no
 * $NOTIFY_SOCKET) every call does nothing.
 */
#ifndef ATTACHD_SDNOTIFY_H
#define ATTACHD_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Send STATE ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...", or
 * several, newline-separated). false when there is no socket or it failed. */
bool sdnotify(const char *state);
/* The watchdog's period in microseconds, 0 when none is asked of this
 * process ($WATCHDOG_USEC, for $WATCHDOG_PID if set). */
uint64_t sdnotify_watchdog_usec(void);

#endif
