/* args: the command line of one kubefit subcommand. Long flags as --name VALUE or --name=VALUE,
 * short ones as -n VALUE or -nVALUE, switches without a value, positional arguments anywhere,
 * and everything after "--" kept apart (kubefit submit passes it to the trainer). A flag given
 * twice is an error unless it is marked repeatable. Errors name the flag and the command. */
#ifndef KUBEFIT_ARGS_H
#define KUBEFIT_ARGS_H

#include <stddef.h>

typedef struct {
    const char *name;      /* long name without "--"; NULL ends a table */
    char short_name;       /* 0: none */
    const char *value;     /* metavar ("N", "FILE") when it takes a value; NULL for a switch */
    const char *help;
    int repeatable;
} args_flag;

#define ARGS_MAX_FLAGS 64

typedef struct {
    const args_flag *flags[ARGS_MAX_FLAGS]; /* every known flag, the command's then the global ones */
    size_t n_flags;
    const char *values[ARGS_MAX_FLAGS];     /* last value given (switches: "true") or NULL */
    char **multi[ARGS_MAX_FLAGS];           /* repeatable flags: every value, NULL-terminated */
    char **pos;                             /* positional arguments (borrowed), NULL-terminated */
    size_t n_pos;
    char **rest;                            /* after "--" (borrowed), NULL-terminated */
    size_t n_rest;
    int help;                               /* -h / --help seen */
} args_parsed;

/* Parses argv (NULL-terminated, without the command name) against tables (NULL-terminated list
 * of flag tables). command names the subcommand in errors ("kubefit submit"). KF_EINVAL with a
 * message such as "kubefit submit: unknown flag --epoch (did you mean --epochs?)". */
int args_parse(args_parsed *out, const args_flag *const *tables, const char *command, char **argv);
void args_dispose(args_parsed *a);

/* The value of a flag by long name, or NULL. */
const char *args_get(const args_parsed *a, const char *name);
/* A repeatable flag's values (NULL-terminated, possibly empty; never NULL after a parse). */
char *const *args_get_all(const args_parsed *a, const char *name);
int args_has(const args_parsed *a, const char *name);

/* Integer and duration values with a message naming the flag. Durations: 90, 90s, 5m, 1h30m. */
int args_long(long *out, const args_parsed *a, const char *name, long min, long max, long dflt);
int args_duration(double *out, const args_parsed *a, const char *name, double dflt);

/* The flags of tables as help text lines ("  -n, --namespace NS   help"). Caller frees. */
char *args_help(const args_flag *const *tables);

#endif
