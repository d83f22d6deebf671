/* reconcile.c: the store and the hypervisor, compared.
 *
 * At start (before anything is served) and every reconcile_interval, and by
 * `attachd check`:
 *  - an intent that no task works on (a crash left it, or the hypervisor
 *    was gone) is finished or undone by a task of its own: an attach whose
 *    disk is there is recorded, one whose disk is not is undone; a detach is
 *    asked again until confirmed or given up; a volume's file is made or
 *    removed; a server's create, delete or power action is finished;
 *  - every other disagreement is reported (logged, and to `report`), never
 *    "fixed" in either direction: a disk attached as far as the store knows
 *    that the domain does not have, a disk with attachd's alias that the
 *    store does not know, a server whose domain is gone, a domain attachd
 *    defined that no server is;
 *  - a server's status follows its domain's state.
 * Tasks are queued only by a core whose workers run; `attachd check`
 * reports and changes nothing.
 */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

struct reconciler {
    struct core *c;
    struct arena *ar;
    void (*report)(void *cls, const struct core_disagreement *d);
    void *cls;
    int disagreements;
};

static void disagree(struct reconciler *r, const char *server, const char *volume,
                     const char *what)
{
    struct core_disagreement d = {server, volume, what};
    r->disagreements++;
    log_warn("reconcile: server %s%s%s: %s", server ? server : "-", volume ? " volume " : "",
             volume ? volume : "", what);
    if (r->report)
        r->report(r->cls, &d);
}

static void queue(struct core *c, struct task *t)
{
    if (t && !task_enqueue(c, t))
        task_free(t);
}

/* Tasks for intents nobody works on, decided on the store's writer thread.
 *
 * An intent and the queueing of its task are two steps: the intent's
 * commit, then its job's done(), which queues the task. A task's completion
 * and the end of the task are two steps likewise: the completion's commit,
 * then its done(), which takes the task off its lane. The writer runs every
 * done() of a transaction, in the order its jobs ran, before it begins the
 * next (store.h). So the intents are read by a job of the writer and judged
 * in that job's done() (store_write_then): each intent read either has its
 * task queued by then or has none, and a task that has ended by then had
 * its completion read.
 * Read anywhere else, an intent whose task was about to be queued would be
 * settled beside it (an attach undone while its disk was being plugged),
 * and one whose task had just finished would be worked on again (a detach
 * given up, then asked for again). */
struct settle {
    struct reconciler *r;
    struct arena ar;            /* what the latest run of the job read */
    struct attachment *at;
    struct server *at_server;   /* each attachment's server and volume, */
    struct volume *at_volume;
    bool *at_found;             /* ... if both were found and the server is a domain */
    struct volume *v;
    struct server *s;
    int na, nv, ns;
};

static int settle_read(struct store_conn *w, void *arg)
{
    struct settle *st = arg;
    struct arena *ar = &st->ar;
    arena_release(ar);          /* the job may run more than once */
    if (store_attachment_unsettled(w, ar, &st->at, &st->na) != STORE_OK ||
        store_volume_unsettled(w, ar, &st->v, &st->nv) != STORE_OK ||
        store_server_bound(w, ar, &st->s, &st->ns) != STORE_OK)
        return 1;
    st->at_server = arena_alloc(ar, (size_t)st->na * sizeof *st->at_server);
    st->at_volume = arena_alloc(ar, (size_t)st->na * sizeof *st->at_volume);
    st->at_found = arena_alloc(ar, (size_t)st->na * sizeof *st->at_found);
    for (int i = 0; i < st->na; i++) {
        const struct attachment *at = &st->at[i];
        enum store_rc s_rc = store_server_get(w, ar, NULL, at->server_id, &st->at_server[i]);
        enum store_rc v_rc = store_volume_get(w, ar, NULL, at->volume_id, &st->at_volume[i]);
        if ((s_rc != STORE_OK && s_rc != STORE_NOTFOUND) ||
            (v_rc != STORE_OK && v_rc != STORE_NOTFOUND))
            return 1;
        st->at_found[i] = s_rc == STORE_OK && v_rc == STORE_OK && st->at_server[i].domain;
    }
    return 0;
}

/* The job's outcome, judged in its done(): nothing when it failed. */
static void settle_decide(void *arg, int rc)
{
    struct settle *st = arg;
    if (rc != 0)
        return;
    struct reconciler *r = st->r;
    struct core *c = r->c;
    for (int i = 0; i < st->na; i++) {
        const struct attachment *at = &st->at[i];
        if (task_pending_for(c, at->id))
            continue;
        if (!st->at_found[i]) {
            disagree(r, at->server_id, at->volume_id,
                     "an attachment being changed whose server is not a domain");
            continue;
        }
        log_info("reconcile: server %s volume %s was left %s; settling it", at->server_id,
                 at->volume_id, at->status);
        queue(c, core_attachment_task(&st->at_server[i], at, &st->at_volume[i]));
    }
    for (int i = 0; i < st->nv; i++) {
        if (task_pending_for(c, st->v[i].id))
            continue;
        log_info("reconcile: volume %s was left %s; settling it", st->v[i].id, st->v[i].status);
        queue(c, core_volume_task(&st->v[i]));
    }
    for (int i = 0; i < st->ns; i++) {
        const struct server *s = &st->s[i];
        struct task *t;
        if (!s->task_state || task_pending_for(c, s->id) || !(t = core_server_task(s)))
            continue;
        log_info("reconcile: server %s was left %s; finishing it%s", s->id, s->task_state,
                 !strcmp(s->task_state, "deleting")
                     ? " (volumes that were to be deleted with it, if any, are kept)" : "");
        queue(c, t);
    }
}

static bool settle_intents(struct reconciler *r)
{
    struct settle st = {.r = r};
    arena_init(&st.ar);
    int rc = store_write_then(r->c->store, settle_read, &st, settle_decide);
    arena_release(&st.ar);
    return rc == 0;
}

/* One server that is a domain, against its domain. False: the hypervisor
 * could not be asked. */
static bool compare_server(struct reconciler *r, struct store_conn *conn, const struct server *s)
{
    struct core *c = r->c;
    struct driver *d = c->driver;
    struct driver_domain dom;
    struct driver_error de;
    enum driver_rc rc = d->ops->domain_lookup(d, s->domain, &dom, &de);
    if (rc == DRIVER_NOT_FOUND) {
        disagree(r, s->id, NULL,
                 arena_printf(r->ar, "its domain %s is gone from the hypervisor", s->domain));
        return true;
    }
    if (rc != DRIVER_OK)
        return false;
    if (c->started)
        core_follow_domain(c, s->domain, dom.state);
    struct driver_present *p;
    struct attachment *at;
    int np, na;
    if (d->ops->disk_list(d, s->domain, r->ar, &p, &np, &de) != DRIVER_OK)
        return false;
    if (store_attachment_list(conn, r->ar, s->id, 0, -1, &at, &na) != STORE_OK)
        return false;
    bool live = dom.state == DOMAIN_RUNNING || dom.state == DOMAIN_PAUSED;
    for (int i = 0; i < na; i++) {
        if (strcmp(at[i].status, "attached") != 0 || at[i].boot_index == 0)
            continue;
        char alias[DRIVER_ALIAS_MAX + 1];
        driver_alias(at[i].id, alias);
        bool in_live = false, in_config = false;
        for (int k = 0; k < np; k++) {
            if (!strcmp(p[k].alias, alias)) {
                in_live |= p[k].live;
                in_config |= p[k].config;
            }
        }
        if ((live && !in_live) || (!live && !in_config) || (dom.persistent && !in_config))
            disagree(r, s->id, at[i].volume_id,
                     arena_printf(r->ar, "attached as %s in the store, but the domain %s has "
                                         "no disk %s%s", at[i].device, s->domain, alias,
                                  live && in_config ? " running" :
                                  !in_config && in_live ? " in its definition" : ""));
    }
    for (int k = 0; k < np; k++) {
        if (strncmp(p[k].alias, "ua-", 3) != 0)
            continue;           /* not one of attachd's */
        bool known = false;
        for (int i = 0; i < na && !known; i++) {
            char alias[DRIVER_ALIAS_MAX + 1];
            driver_alias(at[i].id, alias);
            known = !strcmp(alias, p[k].alias);
        }
        if (!known)
            disagree(r, s->id, NULL,
                     arena_printf(r->ar, "the domain has a disk %s (%s, serial %s) that the "
                                         "store does not know", p[k].alias, p[k].path,
                                  p[k].serial));
    }
    return true;
}

/* Domains this attachd defined (for POST /servers) that no server is: a
 * crash between a delete's undefine and its completion cannot leave one
 * (the server stays deleting until its domain is gone), so one is a
 * disagreement. False: the hypervisor could not be asked. */
static bool orphan_domains(struct reconciler *r, const struct server *s, int n)
{
    struct driver *d = r->c->driver;
    struct driver_domain *dom;
    struct driver_error de;
    int nd;
    if (!d->ops->domain_list)
        return true;
    if (d->ops->domain_list(d, r->ar, &dom, &nd, &de) != DRIVER_OK)
        return false;
    for (int i = 0; i < nd; i++) {
        bool named = false;
        for (int k = 0; k < n && !named; k++)
            named = s[k].domain && !strcmp(s[k].domain, dom[i].uuid);
        if (!named)
            disagree(r, NULL, NULL,
                     arena_printf(r->ar, "the domain %s (%s) that attachd defined is no "
                                         "server's", dom[i].name, dom[i].uuid));
    }
    return true;
}

bool core_reconcile(struct core *c, void (*report)(void *cls, const struct core_disagreement *d),
                    void *cls)
{
    if (!c->driver)
        return true;
    struct arena ar;
    arena_init(&ar);
    struct reconciler r = {c, &ar, report, cls, 0};
    struct store_conn *conn = store_reader(c->store);
    struct server *s;
    int n;
    bool ok = conn != NULL;
    if (ok && c->started)
        ok = settle_intents(&r);
    if (ok)
        ok = store_server_bound(conn, &ar, &s, &n) == STORE_OK;
    for (int i = 0; ok && i < n; i++) {
        if (s[i].task_state)
            continue;           /* its domain is being made, changed or removed */
        if (!compare_server(&r, conn, &s[i])) {
            log_warn("reconcile: the hypervisor cannot be asked now; trying again later");
            ok = false;
        }
    }
    if (ok && !orphan_domains(&r, s, n)) {
        log_warn("reconcile: the hypervisor cannot be asked now; trying again later");
        ok = false;
    }
    if (ok && r.disagreements == 0)
        log_info("reconcile: the store and the hypervisor agree (%d servers)", n);
    arena_release(&ar);
    return ok;
}
