/* pyregex.c: whether Python's re.compile() takes a query's text.
 *
 * Nova's query schema gives its filters by regular expression (name,
 * key_name, ip, ...) the format "regex", which holds when the value is not
 * empty and Python's re.compile() raises no re.error on it. attachd does
 * not search by regular expression (docs/api.md), but it refuses what Nova
 * refuses. This is the parser of Python 3.11 (re/_parser.py: _parse_sub(),
 * _parse(), _escape(), _class_escape(), _parse_flags(); then the
 * compiler's checks: a look-behind of fixed width, no repeat under the
 * TEMPLATE flag), walked the same way with the same checks; of the
 * pattern it keeps only what those checks read: the width (least and most
 * characters matched) of each item, its kind, and the groups.
 *
 * Where Python raises something other than re.error (a repeat count of
 * 2^32 or more, the ASCII and UNICODE flags together, a look-behind of
 * 2^31 characters or more, nesting deep enough to exhaust its recursion),
 * Nova answers 500; here the text is no regular expression, and so is one
 * with groups nested more than MAX_NESTING deep (Python takes some 450).
 * Three things Python reads with Unicode's tables are read more simply: a
 * group's name is an identifier of ASCII letters, digits and '_', or any
 * character beyond ASCII; a condition's group number is ASCII digits;
 * \N{...} names any character whose name is letters, digits, spaces and
 * '-'. tests/api/test_servers.py compares it with Python's re on generated
 * patterns. The declaration is call.h's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "api/call.h"

#define MAXREPEAT UINT64_C(4294967295)
#define MAX_NESTING 200         /* groups within groups: deeper is refused */

enum {                          /* re's flags, as its parser keeps them */
    F_IGNORECASE = 2, F_LOCALE = 4, F_MULTILINE = 8, F_DOTALL = 16, F_UNICODE = 32,
    F_VERBOSE = 64, F_TEMPLATE = 1, F_ASCII = 256,
    F_TYPES = F_ASCII | F_LOCALE | F_UNICODE,
};

struct width {
    uint64_t lo, hi;
};

/* What a repeat after an item must know of it. */
enum kind { K_NONE, K_AT, K_REPEAT, K_OTHER };

struct rx {
    const uint32_t *c;          /* the pattern's characters */
    size_t n, i;                /* i: the next token's first character */
    int flags;
    size_t groups;              /* state.groups: 1 + the groups opened */
    struct width *gwidth;       /* each group's width, once it is closed */
    bool *closed;
    size_t *name_at, *name_len; /* a named group's name, in c[] */
    size_t *slots, mask;        /* the named groups by name: a hash, 0 empty */
    size_t lookbehind;          /* state.lookbehindgroups; 0: None */
    uint64_t max_condgroup;     /* the largest group number a condition names */
    bool repeats;               /* the pattern repeats something */
    int depth;                  /* how deep in groups the parse is */
};

/* ---- the tokenizer: a character, or '\\' and the one after it --------- */

static bool at_end(const struct rx *r)
{
    return r->i >= r->n;
}

static bool is_escape(const struct rx *r)
{
    return !at_end(r) && r->c[r->i] == '\\';
}

/* The next token is the single character ch. */
static bool next_is(const struct rx *r, uint32_t ch)
{
    return !at_end(r) && !is_escape(r) && r->c[r->i] == ch;
}

static void advance(struct rx *r)
{
    r->i += is_escape(r) ? 2 : 1;
}

static bool match(struct rx *r, uint32_t ch)
{
    if (!next_is(r, ch))
        return false;
    advance(r);
    return true;
}

static bool is_digit(uint32_t ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_hex(uint32_t ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static bool is_letter(uint32_t ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* ch is one of the ASCII characters of set. */
static bool one_of(const char *set, uint32_t ch)
{
    return ch && ch < 128 && strchr(set, (int)ch);
}

/* getwhile(n, charset): up to n single characters that pass ok(). */
static size_t take_while(struct rx *r, size_t n, bool (*ok)(uint32_t))
{
    size_t got = 0;
    while (got < n && !at_end(r) && !is_escape(r) && ok(r->c[r->i])) {
        advance(r);
        got++;
    }
    return got;
}

/* getuntil(terminator): the tokens before it, as a span of c[]; false
 * when it is missing or nothing comes before it. */
static bool take_until(struct rx *r, uint32_t terminator, size_t *at, size_t *len)
{
    *at = r->i;
    while (!at_end(r) && !next_is(r, terminator))
        advance(r);
    *len = r->i - *at;
    return match(r, terminator) && *len > 0;
}

/* str.isidentifier(), ASCII's rules (and any character beyond ASCII). */
static bool identifier(const struct rx *r, size_t at, size_t len)
{
    if (!len || is_digit(r->c[at]))
        return false;
    for (size_t k = at; k < at + len; k++) {
        uint32_t ch = r->c[k];
        if (!(ch > 127 || is_letter(ch) || is_digit(ch) || ch == '_'))
            return false;
    }
    return true;
}

static bool same_name(const struct rx *r, size_t a, size_t alen, size_t b, size_t blen)
{
    return alen == blen && !memcmp(r->c + a, r->c + b, alen * sizeof *r->c);
}

static size_t name_hash(const struct rx *r, size_t at, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037);        /* FNV-1a */
    for (size_t k = at; k < at + len; k++)
        h = (h ^ r->c[k]) * UINT64_C(1099511628211);
    return (size_t)h;
}

/* The slot of that name: its group's, or the empty one it would take. */
static size_t *name_slot(const struct rx *r, size_t at, size_t len)
{
    for (size_t i = name_hash(r, at, len);; i++) {
        size_t *slot = &r->slots[i & r->mask];
        if (!*slot || same_name(r, r->name_at[*slot], r->name_len[*slot], at, len))
            return slot;
    }
}

/* The group of that name (0: none). */
static size_t group_named(const struct rx *r, size_t at, size_t len)
{
    return *name_slot(r, at, len);
}

/* state.checkgroup() and checklookbehindgroup(): a reference to group g. */
static bool group_ref_ok(const struct rx *r, size_t g)
{
    if (g >= r->groups || !r->closed[g])
        return false;
    return !r->lookbehind || g < r->lookbehind;
}

/* ---- widths -------------------------------------------------------------- */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* A SubPattern's getwidth(): its sum, capped. */
static struct width capped(struct width w)
{
    w.lo = w.lo < MAXREPEAT - 1 ? w.lo : MAXREPEAT - 1;
    w.hi = w.hi < MAXREPEAT ? w.hi : MAXREPEAT;
    return w;
}

/* ---- escapes ------------------------------------------------------------- */

static bool is_octal(uint32_t ch)
{
    return ch >= '0' && ch <= '7';
}

/* \N{name}: a name of letters, digits, spaces and '-'. */
static bool named_character(struct rx *r)
{
    size_t at, len;
    if (!match(r, '{') || !take_until(r, '}', &at, &len))
        return false;
    for (size_t k = at; k < at + len; k++)
        if (!(is_letter(r->c[k]) || is_digit(r->c[k]) || r->c[k] == ' ' || r->c[k] == '-'))
            return false;
    return true;
}

/* \x.., \u...., \U........ (at most 0x10FFFF), \N{...}; false if bad.
 * *handled: ch was one of them. */
static bool code_escape(struct rx *r, uint32_t ch, bool *handled, uint32_t *value)
{
    size_t want = ch == 'x' ? 2 : ch == 'u' ? 4 : ch == 'U' ? 8 : 0;
    *handled = want || ch == 'N';
    if (ch == 'N') {
        *value = 0x10FFFF;      /* some character; its value is unknown */
        return named_character(r);
    }
    if (!want)
        return true;
    size_t from = r->i;
    if (take_while(r, want, is_hex) != want)
        return false;
    uint64_t v = 0;
    for (size_t k = from; k < r->i; k++)
        v = v * 16 + (is_digit(r->c[k]) ? r->c[k] - '0' : (r->c[k] | 0x20) - 'a' + 10);
    *value = (uint32_t)v;
    return v <= 0x10FFFF;
}

/* _class_escape(): an escape in a character set; *literal: one character,
 * in *value (a category such as \d is not). */
static bool class_escape(struct rx *r, uint32_t ch, bool *literal, uint32_t *value)
{
    static const char plain[] = "abfnrtv\\";
    static const char categories[] = "dDsSwW";
    *literal = true;
    *value = ch;
    if (one_of(plain, ch))
        return true;
    if (one_of(categories, ch)) {
        *literal = false;
        return true;
    }
    bool handled;
    bool ok = code_escape(r, ch, &handled, value);
    if (handled)
        return ok;
    if (is_octal(ch)) {
        size_t from = r->i - 1;
        take_while(r, 2, is_octal);
        uint32_t v = 0;
        for (size_t k = from; k < r->i; k++)
            v = v * 8 + (r->c[k] - '0');
        *value = v;
        return v <= 0377;
    }
    return !is_digit(ch) && !is_letter(ch);
}

/* _escape(): an escape outside a set; *w its width, *kind what it is. */
static bool escape(struct rx *r, uint32_t ch, struct width *w, enum kind *kind)
{
    static const char categories[] = "dDsSwW", anchors[] = "AbBZ", plain[] = "afnrtv\\";
    *w = (struct width){1, 1};
    *kind = K_OTHER;
    if (one_of(anchors, ch)) {
        *w = (struct width){0, 0};
        *kind = K_AT;
        return true;
    }
    if (one_of(categories, ch) || one_of(plain, ch))
        return true;
    bool handled;
    uint32_t value;
    bool ok = code_escape(r, ch, &handled, &value);
    if (handled)
        return ok;
    if (ch == '0') {
        take_while(r, 2, is_octal);
        return true;
    }
    if (is_digit(ch)) {         /* an octal escape, or a group reference */
        uint64_t group = ch - '0';
        if (!is_escape(r) && !at_end(r) && is_digit(r->c[r->i])) {
            uint32_t second = r->c[r->i];
            advance(r);
            if (is_octal(ch) && is_octal(second) && !at_end(r) && !is_escape(r) &&
                is_octal(r->c[r->i])) {
                uint32_t third = r->c[r->i];
                advance(r);
                return (ch - '0') * 64 + (second - '0') * 8 + (third - '0') <= 0377;
            }
            group = group * 10 + (second - '0');
        }
        if (!group_ref_ok(r, group))
            return false;
        *w = r->gwidth[group];
        return true;
    }
    return !is_letter(ch);
}

/* ---- the parser -------------------------------------------------------- */

static bool parse_sub(struct rx *r, bool verbose, bool nested, struct width *out);

/* A character set, after its '['. */
static bool character_set(struct rx *r)
{
    bool any = false;
    match(r, '^');
    for (;;) {
        if (at_end(r))
            return false;
        bool esc = is_escape(r);
        uint32_t ch = r->c[r->i + esc];
        advance(r);
        if (!esc && ch == ']' && any)
            return true;
        bool literal1 = true, literal2 = true;
        uint32_t lo = ch, hi;
        if (esc && !class_escape(r, ch, &literal1, &lo))
            return false;
        any = true;
        if (!match(r, '-'))
            continue;
        if (at_end(r))
            return false;
        bool esc2 = is_escape(r);
        uint32_t ch2 = r->c[r->i + esc2];
        advance(r);
        if (!esc2 && ch2 == ']')
            return true;        /* "a-]": 'a' and '-' */
        hi = ch2;
        if (esc2 && !class_escape(r, ch2, &literal2, &hi))
            return false;
        if (!literal1 || !literal2 || hi < lo)
            return false;       /* bad character range */
    }
}

/* The digits of a repeat's count (a span of c[]): its value, or
 * MAXREPEAT when it is that or more (Python: OverflowError). */
static uint64_t count(const struct rx *r, size_t at, size_t len)
{
    uint64_t v = 0;
    for (size_t k = at; k < at + len && v < MAXREPEAT; k++)
        v = v * 10 + (r->c[k] - '0');
    return v < MAXREPEAT ? v : MAXREPEAT;
}

/* A repeat after '{' (Python seeks back and takes '{' as a character when
 * what follows is not "m}", "m,n}", ",n}" or ",}"). *is_repeat: it was
 * one, of min..max. */
static bool braces(struct rx *r, bool *is_repeat, uint64_t *min, uint64_t *max)
{
    size_t here = r->i;
    *is_repeat = false;
    if (next_is(r, '}'))
        return true;
    size_t lo_at = r->i, lo_len = take_while(r, SIZE_MAX, is_digit), hi_at, hi_len;
    if (match(r, ',')) {
        hi_at = r->i;
        hi_len = take_while(r, SIZE_MAX, is_digit);
    } else {
        hi_at = lo_at;
        hi_len = lo_len;
    }
    if (!match(r, '}')) {
        r->i = here;
        return true;
    }
    *is_repeat = true;
    *min = lo_len ? count(r, lo_at, lo_len) : 0;
    *max = hi_len ? count(r, hi_at, hi_len) : MAXREPEAT;
    if ((lo_len && *min >= MAXREPEAT) || (hi_len && *max >= MAXREPEAT))
        return false;
    return !hi_len || *max >= *min;
}

/* _parse_flags(), after "(?" and the first flag character (or '-');
 * *global: "(?flags)", which sets r->flags; else *add and *del. */
static bool flags(struct rx *r, uint32_t ch, bool *global, int *add, int *del)
{
    static const char names[] = "iLmsxatu";
    static const int values[] = {F_IGNORECASE, F_LOCALE, F_MULTILINE, F_DOTALL,
                                 F_VERBOSE,    F_ASCII,  F_TEMPLATE,  F_UNICODE};
#define FLAG_OF(ch) (one_of(names, ch) ? values[strchr(names, (int)(ch)) - names] : 0)
    *add = *del = 0;
    *global = false;
    if (ch != '-') {
        for (;;) {
            int flag = FLAG_OF(ch);
            if (ch == 'L')
                return false;   /* not with a str pattern */
            *add |= flag;
            if ((flag & F_TYPES) && (*add & F_TYPES) != flag)
                return false;
            if (at_end(r))
                return false;
            ch = is_escape(r) ? '\\' : r->c[r->i];
            advance(r);
            if (ch == ')' || ch == '-' || ch == ':')
                break;
            if (!FLAG_OF(ch))
                return false;
        }
    }
    if (ch == ')') {
        r->flags |= *add;
        *global = true;
        return true;
    }
    if (*add & F_TEMPLATE)
        return false;
    if (ch == '-') {
        if (at_end(r))
            return false;
        ch = is_escape(r) ? '\\' : r->c[r->i];
        advance(r);
        if (!FLAG_OF(ch))
            return false;
        for (;;) {
            int flag = FLAG_OF(ch);
            if (flag & F_TYPES)
                return false;
            *del |= flag;
            if (at_end(r))
                return false;
            ch = is_escape(r) ? '\\' : r->c[r->i];
            advance(r);
            if (ch == ':')
                break;
            if (!FLAG_OF(ch))
                return false;
        }
    }
#undef FLAG_OF
    return ch == ':' && !(*del & F_TEMPLATE) && !(*add & *del);
}

static bool parse_seq(struct rx *r, bool verbose, bool first, struct width *out);

static bool is_space(uint32_t ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* Python's int() of a span of c[] (ASCII's spaces and digits): spaces
 * around, a '+', digits with single '_' between them; false for anything
 * else, and for a '-' (a negative group number is refused too). */
static bool py_int(const struct rx *r, size_t at, size_t len, uint64_t *out)
{
    size_t end = at + len;
    while (at < end && is_space(r->c[at]))
        at++;
    while (end > at && is_space(r->c[end - 1]))
        end--;
    if (at < end && r->c[at] == '+')
        at++;
    *out = 0;
    if (at == end || !is_digit(r->c[at]) || !is_digit(r->c[end - 1]))
        return false;
    for (size_t k = at; k < end; k++) {
        if (r->c[k] == '_' && r->c[k - 1] != '_')
            continue;
        if (!is_digit(r->c[k]))
            return false;
        if (*out < MAXREPEAT)
            *out = *out * 10 + (r->c[k] - '0');
    }
    return true;
}

/* "(?(group)yes|no)", after the "(?(": Python's _parse() for each branch. */
static bool conditional(struct rx *r, bool verbose, struct width *w)
{
    size_t at, len, g;
    if (!take_until(r, ')', &at, &len))
        return false;
    if (identifier(r, at, len)) {
        if (!(g = group_named(r, at, len)))
            return false;
    } else {
        uint64_t number;
        if (!py_int(r, at, len, &number) || !number || number >= 1073741823)
            return false;       /* no number, 0, MAXGROUPS or more */
        if (number > r->max_condgroup)
            r->max_condgroup = number;
        g = (size_t)number;
    }
    if (r->lookbehind && !group_ref_ok(r, g))
        return false;
    struct width yes, no;
    if (!parse_seq(r, verbose, false, &yes))
        return false;
    *w = (struct width){0, yes.hi};
    if (match(r, '|')) {
        if (!parse_seq(r, verbose, false, &no) || next_is(r, '|'))
            return false;
        w->lo = yes.lo < no.lo ? yes.lo : no.lo;
        w->hi = yes.hi > no.hi ? yes.hi : no.hi;
    }
    return match(r, ')');
}

/* A look-ahead or look-behind, after its "(?=", "(?!", "(?<=" or "(?<!":
 * width 0; the compiler wants a look-behind's own width fixed, and _sre
 * below 2^31 (RuntimeError "invalid SRE code" past it). */
static bool assertion(struct rx *r, bool verbose, bool behind)
{
    size_t outer = r->lookbehind;
    if (behind && !outer)
        r->lookbehind = r->groups;
    struct width inner;
    if (!parse_sub(r, verbose, true, &inner))
        return false;
    if (behind && !outer)
        r->lookbehind = 0;
    return match(r, ')') && (!behind || (inner.lo == inner.hi && inner.lo < UINT64_C(1) << 31));
}

/* A group, after its '('. *w: its width; *skip: it adds nothing to the
 * pattern (a comment, global flags). `first` and `empty`: it may set the
 * global flags (the first branch of the pattern, nothing before it). */
static bool group(struct rx *r, bool *verbose, bool first, bool empty, struct width *w,
                  bool *skip)
{
    size_t name_at = 0, name_len = 0;
    bool capture = true;
    int add = 0, del = 0;
    *skip = false;
    *w = (struct width){0, 0};
    if (match(r, '?')) {
        if (at_end(r))
            return false;
        uint32_t ch = is_escape(r) ? '\\' : r->c[r->i];
        advance(r);
        if (ch == 'P' && match(r, '<')) {
            if (!take_until(r, '>', &name_at, &name_len) || !identifier(r, name_at, name_len))
                return false;
        } else if (ch == 'P' && match(r, '=')) {
            size_t at, len, g;
            if (!take_until(r, ')', &at, &len) || !identifier(r, at, len) ||
                !(g = group_named(r, at, len)) || !group_ref_ok(r, g))
                return false;
            *w = r->gwidth[g];
            return true;
        } else if (ch == ':' || ch == '>') {
            capture = false;
        } else if (ch == '#') {
            while (!at_end(r) && !next_is(r, ')'))
                advance(r);
            *skip = true;
            return match(r, ')');
        } else if (ch == '=' || ch == '!') {
            return assertion(r, *verbose, false);
        } else if (ch == '<') {
            return (match(r, '=') || match(r, '!')) && assertion(r, *verbose, true);
        } else if (ch == '(') {
            return conditional(r, *verbose, w);
        } else if (one_of("iLmsxatu", ch) || ch == '-') {
            bool global;
            if (!flags(r, ch, &global, &add, &del))
                return false;
            if (global) {
                *verbose = r->flags & F_VERBOSE;
                *skip = true;
                return first && empty;      /* else: not at the start */
            }
            capture = false;
        } else {
            return false;       /* unknown extension */
        }
    }
    size_t g = 0;
    if (capture) {
        size_t *slot = name_len ? name_slot(r, name_at, name_len) : NULL;
        if (slot && *slot)
            return false;       /* redefinition of group name */
        g = r->groups++;
        r->closed[g] = false;
        r->name_at[g] = name_at;
        r->name_len[g] = name_len;
        if (slot)
            *slot = g;
    }
    bool sub_verbose = (*verbose || (add & F_VERBOSE)) && !(del & F_VERBOSE);
    if (!parse_sub(r, sub_verbose, true, w) || !match(r, ')'))
        return false;
    if (capture) {
        r->gwidth[g] = *w;
        r->closed[g] = true;
    }
    return true;
}

/* _parse(): a sequence of items up to '|', ')' or the end; its width. */
static bool parse_seq(struct rx *r, bool verbose, bool first, struct width *out)
{
    struct width sum = {0, 0}, last = {0, 0};
    enum kind kind = K_NONE;    /* of the last item */
    bool empty = true;
    if (++r->depth > MAX_NESTING)
        return false;
    while (!at_end(r) && !next_is(r, '|') && !next_is(r, ')')) {
        bool esc = is_escape(r);
        uint32_t ch = r->c[r->i + esc];
        advance(r);
        if (verbose && !esc) {
            if (is_space(ch))
                continue;
            if (ch == '#') {
                while (!at_end(r)) {
                    bool newline = next_is(r, '\n');
                    advance(r);
                    if (newline)
                        break;
                }
                continue;
            }
        }
        struct width w = {1, 1};
        enum kind k = K_OTHER;
        bool is_repeat = !esc && (ch == '*' || ch == '+' || ch == '?' || ch == '{');
        uint64_t min = 0, max = MAXREPEAT;
        if (esc) {
            if (!escape(r, ch, &w, &k))
                return false;
        } else if (ch == '[') {
            if (!character_set(r))
                return false;
        } else if (ch == '(') {
            bool skip;
            if (!group(r, &verbose, first, empty, &w, &skip))
                return false;
            if (skip)
                continue;
        } else if (ch == '^' || ch == '$') {
            w = (struct width){0, 0};
            k = K_AT;
        } else if (ch == '{') {
            if (!braces(r, &is_repeat, &min, &max))
                return false;
        } else if (ch == '+') {
            min = 1;
        } else if (ch == '?') {
            max = 1;
        }
        if (is_repeat) {
            if (kind == K_NONE || kind == K_AT || kind == K_REPEAT)
                return false;   /* nothing to repeat; multiple repeat */
            if (!match(r, '?'))
                match(r, '+');  /* lazy, possessive */
            last = capped(last);
            last.lo = sat_mul(last.lo, min);
            last.hi = sat_mul(last.hi, max);
            kind = K_REPEAT;
            r->repeats = true;
            continue;
        }
        sum.lo = sat_add(sum.lo, last.lo);
        sum.hi = sat_add(sum.hi, last.hi);
        last = w;
        kind = k;
        empty = false;
    }
    r->depth--;
    sum.lo = sat_add(sum.lo, last.lo);
    sum.hi = sat_add(sum.hi, last.hi);
    *out = capped(sum);
    return true;
}

/* _parse_sub(): branches between '|'; the width of the least and the most. */
static bool parse_sub(struct rx *r, bool verbose, bool nested, struct width *out)
{
    struct width w;
    bool first = !nested;
    if (!parse_seq(r, verbose, first, out))
        return false;
    while (match(r, '|')) {
        if (!nested)
            verbose = r->flags & F_VERBOSE;
        if (!parse_seq(r, verbose, false, &w))
            return false;
        out->lo = w.lo < out->lo ? w.lo : out->lo;
        out->hi = w.hi > out->hi ? w.hi : out->hi;
    }
    return true;
}

/* The characters of UTF-8 text (a byte that starts none stands for
 * itself); their number. */
static size_t decode(const char *text, uint32_t *c)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = 0;
    while (*p) {
        int more = *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : *p >= 0xC0 ? 1 : 0;
        uint32_t cp = more ? *p & (0x3F >> more) : *p;
        int k = 1;
        for (; k <= more && (p[k] & 0xC0) == 0x80; k++)
            cp = cp << 6 | (p[k] & 0x3F);
        if (k <= more) {        /* cut short: the byte alone */
            cp = *p;
            k = 1;
        }
        c[n++] = cp;
        p += k;
    }
    return n;
}

bool py_regex(struct arena *ar, const char *text)
{
    size_t bytes = strlen(text), most = 2;     /* groups: 1 + one a '(' at most */
    if (!bytes)
        return false;           /* Nova's check: nothing to match on */
    for (const char *p = text; (p = strchr(p, '(')); p++)
        most++;
    size_t nslots = 4;          /* a power of two, at least twice the groups */
    while (nslots < 2 * most)
        nslots *= 2;
    uint32_t *c = arena_alloc(ar, (bytes + 1) * sizeof *c);
    size_t n = decode(text, c);
    size_t trailing = 0;        /* a last lone '\\' is a bad escape */
    while (trailing < n && c[n - 1 - trailing] == '\\')
        trailing++;
    struct rx r = {
        .c = c, .n = n, .groups = 1,
        .gwidth = arena_alloc(ar, most * sizeof *r.gwidth),
        .closed = arena_alloc(ar, most * sizeof *r.closed),
        .name_at = arena_alloc(ar, most * sizeof *r.name_at),
        .name_len = arena_alloc(ar, most * sizeof *r.name_len),
        .slots = arena_alloc(ar, nslots * sizeof *r.slots), .mask = nslots - 1,
        .depth = -1,            /* the pattern's own sequence is 0 deep */
    };
    struct width w;
    /* then parse()'s checks, fix_flags()'s, and the compiler's: it repeats
     * nothing under the TEMPLATE flag */
    return trailing % 2 == 0 && parse_sub(&r, false, false, &w) && at_end(&r) &&
           r.max_condgroup < r.groups && !((r.flags & F_ASCII) && (r.flags & F_UNICODE)) &&
           !((r.flags & F_TEMPLATE) && r.repeats);
}
