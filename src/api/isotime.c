/* isotime.c: the times a query gives, read as Nova reads them.
 *
 * Nova's query schema checks a "date-time" (changes-since, changes-before)
 * with oslo's parse_isotime(), which is the iso8601 library's parse_date():
 * a regular expression (iso8601.py's ISO8601_REGEX), then Python's
 * datetime with its range checks. Python's re tries each optional part and
 * each {1,2} greedily first and each alternative in order, and backs up
 * when the rest does not match; so does this matcher, one function per
 * optional part, each calling the next, so that the parts it keeps are the
 * ones Python's match keeps. The declarations are call.h's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/call.h"

/* The groups of a match; absent ones hold parse_date()'s defaults. */
struct parts {
    int year, month, day, hour, minute, second, micro;
    int tz;                     /* the offset from UTC, in minutes */
};

/* The value of n ASCII digits at s (n <= 6), or -1 if they are not. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Python's `$` without MULTILINE: the end, or a last "\n" before it. */
static bool at_end(const char *s)
{
    return !*s || (s[0] == '\n' && !s[1]);
}

/* (?P<timezone>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9]{2}):{0,1}
 * (?P<tz_minute>[0-9]{2}){0,1}){0,1}$ */
static bool zone(const char *s, struct parts *p)
{
    if (*s == 'Z' && at_end(s + 1)) {
        p->tz = 0;
        return true;
    }
    int hour = *s == '+' || *s == '-' ? digits(s + 1, 2) : -1;
    if (hour >= 0) {
        int sign = *s == '-' ? -1 : 1;
        for (int colon = s[3] == ':'; colon >= 0; colon--) {
            const char *m = s + 3 + colon;
            int minute = digits(m, 2);
            if (minute >= 0 && at_end(m + 2)) {
                p->tz = sign * (hour * 60 + minute);
                return true;
            }
            if (at_end(m)) {
                p->tz = sign * hour * 60;
                return true;
            }
        }
    }
    p->tz = 0;                  /* none: parse_date()'s default, UTC */
    return at_end(s);
}

/* (:{0,1}(?P<second>[0-9]{1,2})([.,](?P<second_fraction>[0-9]+)){0,1}){0,1}
 * then the zone. The fraction is Decimal("0." + digits) * 1000000, cut to
 * an integer: its first six digits. */
static bool second(const char *s, struct parts *p)
{
    for (int colon = *s == ':'; colon >= 0; colon--) {
        for (int n = 2; n >= 1; n--) {
            if ((p->second = digits(s + colon, n)) < 0)
                continue;
            const char *f = s + colon + n;
            int len = 0;
            if (*f == '.' || *f == ',')
                while (f[1 + len] >= '0' && f[1 + len] <= '9')
                    len++;
            for (; len > 0; len--) {
                p->micro = 0;
                for (int i = 0; i < 6; i++)
                    p->micro = p->micro * 10 + (i < len ? f[1 + i] - '0' : 0);
                if (zone(f + 1 + len, p))
                    return true;
            }
            p->micro = 0;
            if (zone(f, p))
                return true;
        }
    }
    p->second = p->micro = 0;
    return zone(s, p);
}

/* (:{0,1}(?P<minute>[0-9]{2})){0,1} then the second. */
static bool minute(const char *s, struct parts *p)
{
    for (int colon = *s == ':'; colon >= 0; colon--)
        if ((p->minute = digits(s + colon, 2)) >= 0 && second(s + colon + 2, p))
            return true;
    p->minute = 0;
    return second(s, p);
}

/* The match ends at s, without the parts from `level` on (1: the month,
 * 2: the day, 3: the time of day), which take their defaults. */
static bool ends(const char *s, struct parts *p, int level)
{
    if (level <= 1)
        p->month = 1;
    if (level <= 2)
        p->day = 1;
    p->hour = p->minute = p->second = p->micro = p->tz = 0;
    return at_end(s);
}

/* ((?P<separator>[ T])(?P<hour>[0-9]{2}) then the minute...){0,1}$ */
static bool time_of_day(const char *s, struct parts *p)
{
    if ((*s == ' ' || *s == 'T') && (p->hour = digits(s + 1, 2)) >= 0 && minute(s + 3, p))
        return true;
    return ends(s, p, 3);
}

/* ((-(?P<daydash>[0-9]{1,2})|(?P<day>[0-9]{2})) then the time){0,1}$ */
static bool day(const char *s, struct parts *p)
{
    if (*s == '-') {
        for (int n = 2; n >= 1; n--)
            if ((p->day = digits(s + 1, n)) >= 0 && time_of_day(s + 1 + n, p))
                return true;
    } else if ((p->day = digits(s, 2)) >= 0 && time_of_day(s + 2, p)) {
        return true;
    }
    return ends(s, p, 2);
}

/* ((-(?P<monthdash>[0-9]{1,2})|(?P<month>[0-9]{2})(?!$)) then the day){0,1}$
 * (the lookahead: YYYYMM is not a date). */
static bool month(const char *s, struct parts *p)
{
    if (*s == '-') {
        for (int n = 2; n >= 1; n--)
            if ((p->month = digits(s + 1, n)) >= 0 && day(s + 1 + n, p))
                return true;
    } else if ((p->month = digits(s, 2)) >= 0 && !at_end(s + 2) && day(s + 2, p)) {
        return true;
    }
    return ends(s, p, 1);
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

bool py_isotime(const char *s, int64_t *us)
{
    struct parts p = {0};
    if ((p.year = digits(s, 4)) < 0 || !month(s + 4, &p))
        return false;
    /* datetime()'s ranges, and timezone()'s: strictly within a day */
    if (p.year < 1 || p.month < 1 || p.month > 12 || p.day < 1 ||
        p.day > days_in_month(p.year, p.month) || p.hour > 23 || p.minute > 59 ||
        p.second > 59 || p.tz <= -24 * 60 || p.tz >= 24 * 60)
        return false;
    int64_t sec = days_from_civil(p.year, p.month, p.day) * 86400 + p.hour * 3600 +
                  p.minute * 60 + p.second - (int64_t)p.tz * 60;
    *us = sec * 1000000 + p.micro;
    return true;
}

void isotime_text(int64_t sec, char out[20])
{
    /* no stored time lies near either end: outside, the nearer end will do */
    const int64_t first = days_from_civil(1, 1, 1) * 86400;
    const int64_t last = days_from_civil(9999, 12, 31) * 86400 + 86399;
    sec = sec < first ? first : sec > last ? last : sec;
    int64_t days = sec / 86400, rest = sec % 86400;
    if (rest < 0) {
        rest += 86400;
        days--;
    }
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    char text[64];              /* room for what the compiler cannot tell y, m, d are not */
    snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, (int)(rest / 3600),
             (int)(rest / 60 % 60), (int)(rest % 60));
    memcpy(out, text, 20);
}
