/* libvirt_loop.c: libvirt's event loop, one per process (libvirt has one
 * default event implementation per process), shared by every open libvirt
 * driver: started by the first lv_loop_start() and stopped by the last
 * lv_loop_stop() (libvirt_int.h). libvirt runs keepalive pings,
 * connection-close detection and domain-event dispatch on it.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "driver/libvirt_int.h"

static pthread_mutex_t loop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t loop_cond = PTHREAD_COND_INITIALIZER;
static int loop_users;
static bool loop_registered;
static pthread_t loop_thread;
static atomic_bool loop_quit;
static int loop_barrier_seen;

static void *loop_main(void *arg)
{
    pthread_setname_np(pthread_self(), "lv-events");
    (void)arg;
    while (!atomic_load(&loop_quit))
        if (virEventRunDefaultImpl() < 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);           /* never spin on a broken loop */
        }
    return NULL;
}

static void loop_wake(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

static void loop_barrier_cb(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
    pthread_mutex_lock(&loop_mu);
    loop_barrier_seen++;
    pthread_cond_broadcast(&loop_cond);
    pthread_mutex_unlock(&loop_mu);
}

bool lv_loop_start(char *err, size_t errlen)
{
    bool ok = true;
    pthread_mutex_lock(&loop_mu);
    if (loop_users == 0) {
        if (!loop_registered && virEventRegisterDefaultImpl() < 0) {
            snprintf(err, errlen, "cannot start libvirt's event loop: %s",
                     virGetLastErrorMessage());
            ok = false;
        } else {
            loop_registered = true;
            atomic_store(&loop_quit, false);
            int e = pthread_create(&loop_thread, NULL, loop_main, NULL);
            if (e) {
                snprintf(err, errlen, "cannot start libvirt's event loop: %s", strerror(e));
                ok = false;
            }
        }
    }
    if (ok)
        loop_users++;
    pthread_mutex_unlock(&loop_mu);
    return ok;
}

void lv_loop_stop(void)
{
    pthread_mutex_lock(&loop_mu);
    if (--loop_users == 0) {
        atomic_store(&loop_quit, true);
        virEventAddTimeout(0, loop_wake, NULL, NULL);
        pthread_join(loop_thread, NULL);    /* it never takes loop_mu now */
        pthread_mutex_unlock(&loop_mu);
        return;
    }
    int want = loop_barrier_seen + 1;
    if (virEventAddTimeout(0, loop_barrier_cb, NULL, NULL) >= 0)
        while (loop_barrier_seen < want)
            pthread_cond_wait(&loop_cond, &loop_mu);
    pthread_mutex_unlock(&loop_mu);
}
