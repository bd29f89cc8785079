/*
 * opts.c — one option table drives flags, the config file, --help and the
 * man page option list (see opts.h).
 *
 * Order of application: defaults, then the config file, then the command
 * line. The command line is tokenized first (without applying anything) so
 * that --help, --version and --config are known before any value is set.
 */
#include "common/opts.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"

#define OPTS_FILE_MAX (1 << 20)

enum { CMD_NONE, CMD_HELP, CMD_VERSION };

/* One option occurrence on the command line, applied after the file. */
struct occ {
    const opt_def *def;
    const char *value;   /* points into argv, or a literal for booleans */
};

struct cmdline {
    struct occ *occ;
    size_t nocc;
    char **opts;         /* tokens that were options or their values */
    size_t nopts;
    char **pos;          /* positional arguments, in order */
    size_t npos;
    const char *config;  /* --config FILE when the table has no "config" */
    int cmd;
};

static const opt_def *find_long(const opts_spec *spec, const char *name, size_t len)
{
    const opt_def *d;

    for (d = spec->defs; d->name; d++)
        if (strlen(d->name) == len && strncmp(d->name, name, len) == 0)
            return d;
    return NULL;
}

static const opt_def *find_short(const opts_spec *spec, char c)
{
    const opt_def *d;

    for (d = spec->defs; d->name; d++)
        if (d->shortname && d->shortname == c)
            return d;
    return NULL;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    size_t i;

    for (i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!*s || isspace((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

/* min/max both 0 means no range; max below min means no upper bound (a
 * table that only wants "at least 1" need not invent a maximum). */
static int has_range(const opt_def *d)
{
    return d->min != 0 || d->max != 0;
}

/* Parse val for d and store it. where names the source for messages
 * ("--name" or "FILE:LINE: name"). */
static int set_value(const opts_spec *spec, const opt_def *d, const char *val,
                     const char *where)
{
    const char *why = "invalid value";
    int64_t i64;
    uint64_t u64;
    int b, rc;
    enum log_level lvl;

    switch (d->type) {
    case OPT_STR: {
        char **dst = d->dest;

        free(*dst);
        *dst = xstrdup(val);
        return 0;
    }
    case OPT_INT:
        rc = parse_i64(val, &i64);
        if (rc < 0) {
            why = "not an integer";
            goto bad;
        }
        if (has_range(d) && (i64 < d->min || (d->max >= d->min && i64 > d->max)))
            goto range;
        *(int64_t *)d->dest = i64;
        return 0;
    case OPT_SIZE:
    case OPT_MS:
        rc = d->type == OPT_SIZE ? parse_size(val, &u64) : parse_duration_ms(val, &u64);
        if (rc < 0) {
            why = d->type == OPT_SIZE ? "not a size (e.g. 4096, 64K, 4M, 1G)"
                                      : "not a duration (e.g. 250ms, 5s, 2m, 1h)";
            goto bad;
        }
        if (has_range(d) &&
            ((d->min > 0 && u64 < (uint64_t)d->min) ||
             (d->max >= d->min && (d->max < 0 || u64 > (uint64_t)d->max))))
            goto range;
        *(uint64_t *)d->dest = u64;
        return 0;
    case OPT_BOOL:
        rc = parse_bool(val, &b);
        if (rc < 0) {
            why = "not a boolean (true/false/yes/no/1/0)";
            goto bad;
        }
        *(int *)d->dest = b;
        return 0;
    case OPT_LEVEL:
        rc = log_parse_level(val, &lvl);
        if (rc < 0) {
            why = "not a log level (error, warn, info, debug)";
            goto bad;
        }
        *(enum log_level *)d->dest = lvl;
        return 0;
    }
    why = "option of unknown type";
bad:
    fprintf(stderr, "%s: %s: '%s' is %s\n", spec->prog, where, val, why);
    return -EINVAL;
range:
    fprintf(stderr, "%s: %s: '%s' is out of range [%lld, %lld]\n", spec->prog, where, val,
            (long long)d->min, (long long)d->max);
    return -ERANGE;
}

static int apply_defaults(const opts_spec *spec)
{
    const opt_def *d;
    char where[128];
    int rc;

    for (d = spec->defs; d->name; d++) {
        if (!d->def)
            continue;
        snprintf(where, sizeof(where), "default of --%s", d->name);
        rc = set_value(spec, d, d->def, where);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int load_file(const opts_spec *spec, const char *path, int missing_ok)
{
    uint8_t *data = NULL;
    char *line, *next, *eq, *name, *val, where[512];
    const opt_def *d;
    size_t len, vlen;
    int rc, lineno = 0;

    rc = read_file(path, OPTS_FILE_MAX, &data, &len);
    if (rc == -ENOENT && missing_ok)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "%s: cannot read config file %s: %s\n", spec->prog, path,
                strerror(-rc));
        return rc;
    }
    if (memchr(data, '\0', len)) {
        fprintf(stderr, "%s: %s: not a text file\n", spec->prog, path);
        rc = -EINVAL;
        goto out;
    }
    for (line = (char *)data; line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line = trim(line);
        if (*line == '\0' || *line == '#')
            continue;
        eq = strchr(line, '=');
        if (!eq) {
            fprintf(stderr, "%s: %s:%d: expected 'name = value'\n", spec->prog, path, lineno);
            rc = -EINVAL;
            goto out;
        }
        *eq = '\0';
        name = trim(line);
        val = trim(eq + 1);
        vlen = strlen(val);
        /* Quotes keep leading/trailing spaces or an empty string. */
        if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
            val[vlen - 1] = '\0';
            val++;
        }
        d = find_long(spec, name, strlen(name));
        if (!d) {
            fprintf(stderr, "%s: %s:%d: unknown option '%s'\n", spec->prog, path, lineno,
                    name);
            rc = -EINVAL;
            goto out;
        }
        snprintf(where, sizeof(where), "%s:%d: %s", path, lineno, name);
        rc = set_value(spec, d, val, where);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    free(data);
    return rc;
}

static void add_occ(struct cmdline *cl, const opt_def *d, const char *value)
{
    cl->occ[cl->nocc].def = d;
    cl->occ[cl->nocc].value = value;
    cl->nocc++;
}

static int is_help_short(const opts_spec *spec, char c)
{
    return c == 'h' && !find_short(spec, 'h');
}

/* Split argv into option occurrences and positionals without applying
 * anything. */
static int tokenize(const opts_spec *spec, int argc, char **argv, struct cmdline *cl)
{
    int i;

    for (i = 1; i < argc; i++) {
        char *a = argv[i];

        if (strcmp(a, "--") == 0) {
            cl->opts[cl->nopts++] = a;
            for (i++; i < argc; i++)
                cl->pos[cl->npos++] = argv[i];
            break;
        }
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            const opt_def *d = find_long(spec, name, nlen);
            int negated = 0;

            cl->opts[cl->nopts++] = a;
            if (!d && nlen > 3 && strncmp(name, "no-", 3) == 0) {
                d = find_long(spec, name + 3, nlen - 3);
                if (d && d->type == OPT_BOOL)
                    negated = 1;
                else
                    d = NULL;
            }
            if (!d) {
                if (!eq && strcmp(name, "help") == 0) {
                    cl->cmd = CMD_HELP;
                    return 0;
                }
                if (!eq && strcmp(name, "version") == 0) {
                    cl->cmd = CMD_VERSION;
                    return 0;
                }
                if (nlen == 6 && strncmp(name, "config", 6) == 0) {
                    if (eq) {
                        cl->config = eq + 1;
                    } else if (i + 1 < argc) {
                        cl->config = argv[++i];
                        cl->opts[cl->nopts++] = argv[i];
                    } else {
                        fprintf(stderr, "%s: option --config needs a value\n", spec->prog);
                        return -EINVAL;
                    }
                    continue;
                }
                fprintf(stderr, "%s: unknown option '--%.*s' (see --help)\n", spec->prog,
                        (int)nlen, name);
                return -EINVAL;
            }
            if (d->type == OPT_BOOL) {
                if (negated && eq) {
                    fprintf(stderr, "%s: option --%.*s takes no value\n", spec->prog,
                            (int)nlen, name);
                    return -EINVAL;
                }
                add_occ(cl, d, negated ? "0" : eq ? eq + 1 : "1");
            } else if (eq) {
                add_occ(cl, d, eq + 1);
            } else if (i + 1 < argc) {
                add_occ(cl, d, argv[++i]);
                cl->opts[cl->nopts++] = argv[i];
            } else {
                fprintf(stderr, "%s: option --%s needs a value\n", spec->prog, d->name);
                return -EINVAL;
            }
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            const char *c;

            cl->opts[cl->nopts++] = a;
            /* Grouped short flags (-vf) and attached values (-p8080). */
            for (c = a + 1; *c; c++) {
                const opt_def *d = find_short(spec, *c);

                if (!d) {
                    if (is_help_short(spec, *c)) {
                        cl->cmd = CMD_HELP;
                        return 0;
                    }
                    fprintf(stderr, "%s: unknown option '-%c' (see --help)\n", spec->prog,
                            *c);
                    return -EINVAL;
                }
                if (d->type == OPT_BOOL) {
                    add_occ(cl, d, "1");
                    continue;
                }
                if (c[1]) {
                    add_occ(cl, d, c + 1);
                } else if (i + 1 < argc) {
                    add_occ(cl, d, argv[++i]);
                    cl->opts[cl->nopts++] = argv[i];
                } else {
                    fprintf(stderr, "%s: option -%c needs a value\n", spec->prog, *c);
                    return -EINVAL;
                }
                break;
            }
            continue;
        }
        cl->pos[cl->npos++] = a;
    }
    return 0;
}

static void print_version(const opts_spec *spec)
{
    printf("%s %s\n", spec->prog, CAIRN_VERSION);
}

int opts_parse(const opts_spec *spec, int argc, char **argv)
{
    struct cmdline cl;
    const opt_def *cfg;
    char where[160];
    size_t i, n = argc > 0 ? (size_t)argc : 0;
    int rc;

    memset(&cl, 0, sizeof(cl));
    cl.occ = xcalloc(n + 1, sizeof(*cl.occ));
    cl.opts = xcalloc(n + 1, sizeof(*cl.opts));
    cl.pos = xcalloc(n + 1, sizeof(*cl.pos));

    rc = tokenize(spec, argc, argv, &cl);
    if (rc < 0)
        goto out;
    if (cl.cmd == CMD_HELP) {
        opts_print_help(spec, stdout);
        rc = OPTS_HELP;
        goto out;
    }
    if (cl.cmd == CMD_VERSION) {
        print_version(spec);
        rc = OPTS_VERSION;
        goto out;
    }

    rc = apply_defaults(spec);
    if (rc < 0)
        goto out;

    /* A table may declare its own "config" option (to give it a default
     * path or a short letter); its last command-line value wins, and a
     * missing file at the default path is not an error. */
    cfg = find_long(spec, "config", 6);
    if (cfg && cfg->type == OPT_STR) {
        const char *path = NULL;

        for (i = 0; i < cl.nocc; i++)
            if (cl.occ[i].def == cfg)
                path = cl.occ[i].value;
        if (path)
            rc = load_file(spec, path, 0);
        else if (*(char **)cfg->dest)
            rc = load_file(spec, *(char **)cfg->dest, 1);
    } else if (cl.config) {
        rc = load_file(spec, cl.config, 0);
    }
    if (rc < 0)
        goto out;

    for (i = 0; i < cl.nocc; i++) {
        snprintf(where, sizeof(where), "option --%s", cl.occ[i].def->name);
        rc = set_value(spec, cl.occ[i].def, cl.occ[i].value, where);
        if (rc < 0)
            goto out;
    }

    /* Options first, then positionals, so main can walk argv[rc..]. */
    for (i = 0; i < cl.nopts; i++)
        argv[1 + i] = cl.opts[i];
    for (i = 0; i < cl.npos; i++)
        argv[1 + cl.nopts + i] = cl.pos[i];
    rc = (int)(1 + cl.nopts);
    if (argc < 1)
        rc = 0;
out:
    free(cl.pos);
    free(cl.opts);
    free(cl.occ);
    return rc;
}

/* "-d, --data DIR" or "    --flag" */
static void format_flag(const opt_def *d, char *out, size_t outlen)
{
    char shortpart[8] = "    ";

    if (d->shortname)
        snprintf(shortpart, sizeof(shortpart), "-%c, ", d->shortname);
    if (d->type == OPT_BOOL)
        snprintf(out, outlen, "%s--[no-]%s", shortpart, d->name);
    else
        snprintf(out, outlen, "%s--%s %s", shortpart, d->name,
                 d->metavar ? d->metavar : "VALUE");
}

void opts_print_help(const opts_spec *spec, FILE *f)
{
    const opt_def *d;
    char flag[160];
    int width = 0, len;
    int has_config = find_long(spec, "config", 6) != NULL;
    int help_short = !find_short(spec, 'h');

    for (d = spec->defs; d->name; d++) {
        format_flag(d, flag, sizeof(flag));
        len = (int)strlen(flag);
        if (len > width)
            width = len;
    }
    if (width < 20)
        width = 20;
    if (width > 40)
        width = 40;

    fprintf(f, "Usage: %s %s\n", spec->prog, spec->usage ? spec->usage : "[OPTIONS]");
    if (spec->summary)
        fprintf(f, "\n%s\n", spec->summary);
    fprintf(f, "\nOptions:\n");
    for (d = spec->defs; d->name; d++) {
        format_flag(d, flag, sizeof(flag));
        fprintf(f, "  %-*s  %s", width, flag, d->help ? d->help : "");
        if (d->def) {
            if (d->type == OPT_BOOL) {
                int b = 0;

                parse_bool(d->def, &b);
                fprintf(f, " (default: %s)", b ? "on" : "off");
            } else {
                fprintf(f, " (default: %s)", d->def);
            }
        }
        fputc('\n', f);
    }
    if (!has_config)
        fprintf(f, "  %-*s  %s\n", width, "    --config FILE",
                "read options from FILE ('name = value' lines); flags override it");
    fprintf(f, "  %-*s  %s\n", width, help_short ? "-h, --help" : "    --help",
            "show this help and exit");
    fprintf(f, "  %-*s  %s\n", width, "    --version", "show the version and exit");
}

/* roff text: a leading '.' or '\'' would start a request, '-' should be a
 * minus sign, and '\' starts an escape. */
static void roff_text(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

void opts_print_man(const opts_spec *spec, FILE *f)
{
    const opt_def *d;

    for (d = spec->defs; d->name; d++) {
        fputs(".TP\n", f);
        if (d->shortname)
            fprintf(f, "\\fB\\-%c\\fR, ", d->shortname);
        fputs("\\fB\\-\\-", f);
        if (d->type == OPT_BOOL)
            fputs("\\fR[\\fBno\\-\\fR]\\fB", f);
        roff_text(f, d->name);
        fputs("\\fR", f);
        if (d->type != OPT_BOOL) {
            fputs(" \\fI", f);
            roff_text(f, d->metavar ? d->metavar : "VALUE");
            fputs("\\fR", f);
        }
        fputc('\n', f);
        roff_text(f, d->help ? d->help : "");
        if (d->def) {
            fputs(" Default: ", f);
            if (d->type == OPT_BOOL) {
                int b = 0;

                parse_bool(d->def, &b);
                fputs(b ? "on" : "off", f);
            } else {
                fputs("\\fB", f);
                roff_text(f, d->def);
                fputs("\\fR", f);
            }
            fputc('.', f);
        }
        fputc('\n', f);
    }
    if (!find_long(spec, "config", 6))
        fputs(".TP\n\\fB\\-\\-config\\fR \\fIFILE\\fR\n"
              "Read options from \\fIFILE\\fR, one \\fIname\\fR = \\fIvalue\\fR per line "
              "(names as the long options above, '#' starts a comment line). "
              "Command-line options override the file.\n",
              f);
    fprintf(f, ".TP\n%s\\fB\\-\\-help\\fR\nShow a summary of the options and exit.\n",
            find_short(spec, 'h') ? "" : "\\fB\\-h\\fR, ");
    fputs(".TP\n\\fB\\-\\-version\\fR\nShow the version and exit.\n", f);
}

void opts_free(const opts_spec *spec)
{
    const opt_def *d;

    for (d = spec->defs; d->name; d++) {
        if (d->type == OPT_STR) {
            char **dst = d->dest;

            free(*dst);
            *dst = NULL;
        }
    }
}
