/*
 * vv.c — version vectors (see vv.h).
 */
#include "common/vv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void vv_init(vv *v)
{
    memset(v, 0, sizeof(*v));
}

uint64_t vv_get(const vv *v, uint32_t replica)
{
    uint32_t i;

    for (i = 0; i < v->n && i < VV_MAX; i++)
        if (v->e[i].replica == replica)
            return v->e[i].counter;
    return 0;
}

int vv_bump(vv *v, uint32_t replica)
{
    uint32_t i;

    for (i = 0; i < v->n; i++) {
        if (v->e[i].replica == replica) {
            if (v->e[i].counter == UINT64_MAX)
                return -EOVERFLOW;
            v->e[i].counter++;
            return 0;
        }
        if (v->e[i].replica > replica)
            break;
    }
    if (v->n >= VV_MAX)
        return -E2BIG;
    memmove(&v->e[i + 1], &v->e[i], (v->n - i) * sizeof(v->e[0]));
    v->e[i].replica = replica;
    v->e[i].counter = 1;
    v->n++;
    return 0;
}

int vv_merge(vv *out, const vv *a, const vv *b)
{
    vv r;
    uint32_t i = 0, j = 0;

    /* Built in a temporary because out may alias a or b. */
    r.n = 0;
    while (i < a->n || j < b->n) {
        vv_entry e;

        if (j >= b->n || (i < a->n && a->e[i].replica < b->e[j].replica)) {
            e = a->e[i++];
        } else if (i >= a->n || b->e[j].replica < a->e[i].replica) {
            e = b->e[j++];
        } else {
            e.replica = a->e[i].replica;
            e.counter = a->e[i].counter > b->e[j].counter ? a->e[i].counter
                                                          : b->e[j].counter;
            i++;
            j++;
        }
        if (r.n >= VV_MAX)
            return -E2BIG;
        r.e[r.n++] = e;
    }
    memset(&r.e[r.n], 0, (VV_MAX - r.n) * sizeof(r.e[0]));
    *out = r;
    return 0;
}

enum vv_order vv_compare(const vv *a, const vv *b)
{
    uint32_t i = 0, j = 0;
    int a_more = 0, b_more = 0;

    while (i < a->n || j < b->n) {
        if (j >= b->n || (i < a->n && a->e[i].replica < b->e[j].replica)) {
            a_more = 1;
            i++;
        } else if (i >= a->n || b->e[j].replica < a->e[i].replica) {
            b_more = 1;
            j++;
        } else {
            if (a->e[i].counter > b->e[j].counter)
                a_more = 1;
            else if (a->e[i].counter < b->e[j].counter)
                b_more = 1;
            i++;
            j++;
        }
    }
    if (a_more && b_more)
        return VV_CONCURRENT;
    if (a_more)
        return VV_DOMINATES;
    if (b_more)
        return VV_DOMINATED;
    return VV_EQUAL;
}

int vv_equal(const vv *a, const vv *b)
{
    return vv_compare(a, b) == VV_EQUAL;
}

int vv_is_step(const vv *before, const vv *after)
{
    uint32_t i = 0, j = 0;
    int steps = 0;

    while (i < before->n || j < after->n) {
        if (j >= after->n || (i < before->n && before->e[i].replica < after->e[j].replica))
            return 0;                          /* a replica went missing */
        if (i >= before->n || after->e[j].replica < before->e[i].replica) {
            if (after->e[j].counter != 1)
                return 0;
            steps++;
            j++;
            continue;
        }
        if (after->e[j].counter != before->e[i].counter) {
            if (before->e[i].counter == UINT64_MAX ||
                after->e[j].counter != before->e[i].counter + 1)
                return 0;
            steps++;
        }
        i++;
        j++;
    }
    return steps == 1;
}

size_t vv_format(const vv *v, char *out, size_t outlen)
{
    size_t len = 0;
    uint32_t i;
    int n;

    if (outlen == 0)
        return 0;
    out[0] = '\0';
    if (v->n == 0) {
        n = snprintf(out, outlen, "0");
        return (size_t)n < outlen ? (size_t)n : outlen - 1;
    }
    for (i = 0; i < v->n && i < VV_MAX; i++) {
        n = snprintf(out + len, outlen - len, "%s%u:%llu", i ? "," : "",
                     (unsigned)v->e[i].replica, (unsigned long long)v->e[i].counter);
        if (n < 0 || (size_t)n >= outlen - len) {
            /* Truncated output would parse as a different vector. */
            out[0] = '\0';
            return 0;
        }
        len += (size_t)n;
    }
    return len;
}

/* Decimal without sign, spaces or leading zeros, so that one vector has
 * exactly one text form. */
static int parse_dec(const char **sp, uint64_t max, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    if (*s == '0' && s[1] >= '0' && s[1] <= '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    *sp = s;
    return 0;
}

int vv_parse(const char *s, vv *out)
{
    vv r;
    size_t len;

    if (!s)
        return -EINVAL;
    if (s[0] == 'W' && s[1] == '/')
        s += 2;
    len = strlen(s);
    if (len > 0 && s[0] == '"') {
        if (len < 2 || s[len - 1] != '"')
            return -EINVAL;
        s++;
        len -= 2;
    }
    r.n = 0;
    memset(r.e, 0, sizeof(r.e));
    if (len == 1 && s[0] == '0') {
        *out = r;
        return 0;
    }
    for (;;) {
        uint64_t rep, cnt;
        const char *p = s;

        if (parse_dec(&p, UINT32_MAX, &rep) < 0 || *p != ':')
            return -EINVAL;
        p++;
        if (parse_dec(&p, UINT64_MAX, &cnt) < 0 || cnt == 0)
            return -EINVAL;
        if (r.n >= VV_MAX)
            return -EINVAL;
        if (r.n > 0 && rep <= r.e[r.n - 1].replica)
            return -EINVAL;
        r.e[r.n].replica = (uint32_t)rep;
        r.e[r.n].counter = cnt;
        r.n++;
        len -= (size_t)(p - s);
        s = p;
        if (len == 0)
            break;
        if (*s != ',')
            return -EINVAL;
        s++;
        len--;
    }
    *out = r;
    return 0;
}
