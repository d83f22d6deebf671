/* oom.h: running out of memory fails the work at hand, not the daemon.
 *
 * A thread that does one unit of work (a request's step, a write job, a
 * password check) sets a recovery point around it:
 *
 *     struct oom_point p;
 *     oom_enter(&p);
 *     if (setjmp(p.jb) == 0)
 *         work();
 *     else
 *         recover();      // the work is abandoned: undo what it held
 *     oom_leave(&p);
 *
 * An arena that cannot get memory inside a recovery point unwinds to it
 * (oom_fail()); outside one the process aborts, as there is no sane way on.
 * Memory a unit of work allocates belongs to its arena, so unwinding leaks
 * nothing; what it must undo is what it holds besides: a statement in
 * progress, a read transaction. No lock may be held across an allocation
 * inside a recovery point.
 */
#ifndef ATTACHD_OOM_H
#define ATTACHD_OOM_H

#include <setjmp.h>

struct oom_point {
    jmp_buf jb;
    struct oom_point *outer;
};

void oom_enter(struct oom_point *p);
void oom_leave(struct oom_point *p);
/* Unwind to this thread's recovery point, or abort without one. */
_Noreturn void oom_fail(void);

/* Tests: make the n-th allocation from now on this thread fail (0: never). */
void oom_test_fail_after(int n);
/* For allocators: true when this allocation is to fail as a test asked. */
_Bool oom_test_should_fail(void);

#endif
