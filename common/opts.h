/*
 * opts.h — one table of options per binary (CONVENTIONS.md 17).
 *
 * The same table drives the command line (--name VALUE, --name=VALUE, -x
 * VALUE for options with a short letter, --flag / --no-flag for booleans),
 * the config file (--config FILE; lines "name = value", '#' comments, blank
 * lines; every name must be in the table), --help, and the option list of
 * the man page (opts_print_man). Command-line values override the file.
 * Defaults are given as text and parsed like any other value, so --help
 * shows exactly what applies.
 *
 * Types and destination C types:
 *   OPT_STR   char *        (malloc'd copy; previous value freed unless it is
 *                            the initial NULL)
 *   OPT_INT   int64_t       decimal, range-checked against min/max
 *   OPT_SIZE  uint64_t      "4M", "1G", ... (util.h parse_size), range-checked
 *   OPT_MS    uint64_t      duration in milliseconds ("250ms", "5s", "2m")
 *   OPT_BOOL  int           flag; "true/false/yes/no/on/off/1/0" in the
 *                            file or as --flag=VALUE
 *   OPT_LEVEL enum log_level  "error|warn|info|debug"
 *
 * Ranges: min/max both 0 means none; max < min means no upper bound (only
 * "at least min"). Bounds are inclusive.
 *
 * --config FILE (or --config=FILE) is built in. A table may declare its own
 * OPT_STR "config" entry instead (for a default path or a short letter):
 * the file it names is then loaded the same way, and a missing file at the
 * default path is silently skipped. -h means --help unless the table uses
 * 'h'. Grouped short flags (-vf) and attached values (-p8080) work; "--"
 * ends the options.
 *
 * opts_parse returns the index of the first positional argument in argv
 * (argv is permuted so positionals come last), or a negative errno after
 * printing a one-line error naming the option to stderr: -EINVAL (unknown
 * option, missing or unparsable value, bad config line), -ERANGE (value
 * outside min/max), or the -errno of reading the config file. --help prints help
 * and returns OPTS_HELP; --version prints the version and returns
 * OPTS_VERSION. Called once from main before threads start.
 */
#ifndef CAIRN_OPTS_H
#define CAIRN_OPTS_H

#include <stdint.h>
#include <stdio.h>

enum opt_type { OPT_STR, OPT_INT, OPT_SIZE, OPT_MS, OPT_BOOL, OPT_LEVEL };

typedef struct opt_def {
    const char *name;       /* long name without dashes */
    char shortname;         /* 0 for none */
    enum opt_type type;
    void *dest;             /* typed per the table above */
    const char *def;        /* default as text, or NULL (no default) */
    const char *metavar;    /* e.g. "DIR"; NULL for OPT_BOOL */
    const char *help;       /* one line */
    int64_t min, max;       /* OPT_INT/OPT_SIZE/OPT_MS range; both 0 = none */
} opt_def;

#define OPTS_HELP (-100001)
#define OPTS_VERSION (-100002)
#define CAIRN_VERSION "0.1.0"

typedef struct opts_spec {
    const char *prog;       /* "cairn-metad" */
    const char *usage;      /* "[OPTIONS]" */
    const char *summary;    /* one paragraph shown by --help */
    const opt_def *defs;    /* table terminated by an entry with name NULL */
} opts_spec;

int opts_parse(const opts_spec *spec, int argc, char **argv);
void opts_print_help(const opts_spec *spec, FILE *f);
/* Roff ".TP" list of the options, for man/ pages. */
void opts_print_man(const opts_spec *spec, FILE *f);
/* Free OPT_STR values allocated by opts_parse. */
void opts_free(const opts_spec *spec);

#endif
