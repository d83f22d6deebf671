/* oom.c: see oom.h. */
#include "util/oom.h"

#include <stdio.h>
#include <stdlib.h>

static _Thread_local struct oom_point *current;
static _Thread_local int fail_after;

void oom_enter(struct oom_point *p)
{
    p->outer = current;
    current = p;
}

void oom_leave(struct oom_point *p)
{
    current = p->outer;
}

void oom_fail(void)
{
    struct oom_point *p = current;
    if (!p) {
        fputs("attachd: out of memory\n", stderr);
        abort();
    }
    current = p->outer;
    longjmp(p->jb, 1);
}

void oom_test_fail_after(int n)
{
    fail_after = n;
}

_Bool oom_test_should_fail(void)
{
    return fail_after > 0 && --fail_after == 0;
}
