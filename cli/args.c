/* args: subcommand command lines (see args.h). */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j], sub = prev + (a[i - 1] != b[j - 1]);
            size_t ins = (row[j] < row[j - 1] ? row[j] : row[j - 1]) + 1;
            row[j] = sub < ins ? sub : ins;
            prev = cur;
        }
    }
    return row[lb];
}

static int find_long(const args_parsed *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->n_flags; i++)
        if (strlen(a->flags[i]->name) == len && strncmp(a->flags[i]->name, name, len) == 0)
            return (int)i;
    return -1;
}

static int find_short(const args_parsed *a, char c)
{
    for (size_t i = 0; i < a->n_flags; i++)
        if (a->flags[i]->short_name == c)
            return (int)i;
    return -1;
}

static int unknown(const args_parsed *a, const char *command, const char *arg, size_t len)
{
    const char *best = NULL;
    size_t best_d = 3;
    char name[80];
    snprintf(name, sizeof name, "%.*s", (int)(len < 70 ? len : 70), arg);
    for (size_t i = 0; i < a->n_flags; i++) {
        size_t d = distance(name, a->flags[i]->name);
        if (d < best_d)
            best = a->flags[i]->name, best_d = d;
    }
    if (best)
        return err_set(KF_EINVAL, "%s: unknown flag --%s (did you mean --%s?)", command, name, best);
    return err_set(KF_EINVAL, "%s: unknown flag --%s (%s --help lists the flags)", command, name, command);
}

static int push(char ***list, size_t *n, char *s)
{
    char **grown = realloc(*list, (*n + 2) * sizeof **list);
    if (!grown)
        return err_set(KF_ENOMEM, "out of memory");
    grown[(*n)++] = s;
    grown[*n] = NULL;
    *list = grown;
    return 0;
}

static int set_value(args_parsed *a, const char *command, int i, const char *value)
{
    const args_flag *f = a->flags[i];
    if (f->repeatable) {
        size_t n = 0;
        while (a->multi[i] && a->multi[i][n])
            n++;
        return push(&a->multi[i], &n, (char *)value);
    }
    if (a->values[i]) {
        if (!f->value)
            return err_set(KF_EINVAL, "%s: --%s given twice", command, f->name);
        return err_set(KF_EINVAL, "%s: --%s given twice (\"%s\", then \"%s\")", command, f->name, a->values[i], value);
    }
    a->values[i] = value;
    return 0;
}

int args_parse(args_parsed *out, const args_flag *const *tables, const char *command, char **argv)
{
    int argc = 0;
    while (argv && argv[argc])
        argc++;
    memset(out, 0, sizeof *out);
    for (const args_flag *const *t = tables; *t; t++)
        for (const args_flag *f = *t; f->name; f++) {
            if (out->n_flags == ARGS_MAX_FLAGS)
                return err_set(KF_EINVAL, "%s: too many flags (programming error)", command);
            out->flags[out->n_flags++] = f;
        }
    static char *empty[] = {NULL};
    out->pos = out->rest = NULL;
    int rc = 0;
    for (int k = 0; k < argc && rc == 0; k++) {
        char *arg = argv[k];
        if (strcmp(arg, "--") == 0) {
            for (k++; k < argc && rc == 0; k++)
                rc = push(&out->rest, &out->n_rest, argv[k]);
            break;
        }
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            out->help = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) == 0) {
            const char *name = arg + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            int i = find_long(out, name, len);
            if (i < 0) {
                rc = unknown(out, command, name, len);
                break;
            }
            const args_flag *f = out->flags[i];
            if (!f->value) {
                if (eq && strcmp(eq + 1, "true") != 0) {
                    rc = err_set(KF_EINVAL, "%s: --%s takes no value", command, f->name);
                    break;
                }
                rc = set_value(out, command, i, "true");
            } else if (eq) {
                rc = set_value(out, command, i, eq + 1);
            } else if (k + 1 < argc) {
                rc = set_value(out, command, i, argv[++k]);
            } else {
                rc = err_set(KF_EINVAL, "%s: --%s needs a value (%s)", command, f->name, f->value);
            }
            continue;
        }
        if (arg[0] == '-' && arg[1] && !isdigit((unsigned char)arg[1])) {
            int i = find_short(out, arg[1]);
            if (i < 0) {
                rc = err_set(KF_EINVAL, "%s: unknown flag -%c (%s --help lists the flags)", command, arg[1], command);
                break;
            }
            const args_flag *f = out->flags[i];
            if (!f->value) {
                if (arg[2]) {
                    rc = err_set(KF_EINVAL, "%s: -%c takes no value", command, arg[1]);
                    break;
                }
                rc = set_value(out, command, i, "true");
            } else if (arg[2]) {
                rc = set_value(out, command, i, arg[2] == '=' ? arg + 3 : arg + 2);
            } else if (k + 1 < argc) {
                rc = set_value(out, command, i, argv[++k]);
            } else {
                rc = err_set(KF_EINVAL, "%s: -%c needs a value (%s)", command, arg[1], f->value);
            }
            continue;
        }
        rc = push(&out->pos, &out->n_pos, arg);
    }
    if (rc == 0 && !out->pos)
        out->pos = empty;
    if (rc == 0 && !out->rest)
        out->rest = empty;
    if (rc < 0) {
        if (out->pos == empty)
            out->pos = NULL;
        if (out->rest == empty)
            out->rest = NULL;
        args_dispose(out);
    }
    return rc;
}

void args_dispose(args_parsed *a)
{
    if (!a)
        return;
    if (a->n_pos)
        free(a->pos);
    if (a->n_rest)
        free(a->rest);
    for (size_t i = 0; i < ARGS_MAX_FLAGS; i++)
        free(a->multi[i]);
    memset(a, 0, sizeof *a);
}

const char *args_get(const args_parsed *a, const char *name)
{
    int i = find_long(a, name, strlen(name));
    return i < 0 ? NULL : a->values[i];
}

char *const *args_get_all(const args_parsed *a, const char *name)
{
    static char *const none[] = {NULL};
    int i = find_long(a, name, strlen(name));
    return i < 0 || !a->multi[i] ? none : a->multi[i];
}

int args_has(const args_parsed *a, const char *name) { return args_get(a, name) != NULL; }

int args_long(long *out, const args_parsed *a, const char *name, long min, long max, long dflt)
{
    const char *v = args_get(a, name);
    *out = dflt;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max)
        return err_set(KF_EINVAL, "--%s: expected an integer in [%ld, %ld], got \"%s\"", name, min, max, v);
    *out = n;
    return 0;
}

int args_duration(double *out, const args_parsed *a, const char *name, double dflt)
{
    const char *v = args_get(a, name), *p = v;
    *out = dflt;
    if (!v)
        return 0;
    double total = 0;
    int parts = 0;
    while (*p) {
        char *end = NULL;
        errno = 0;
        double n = strtod(p, &end);
        if (end == p || errno || !isfinite(n) || n < 0)
            goto bad;
        double unit = 1;
        if (*end == 'h')
            unit = 3600, end++;
        else if (*end == 'm' && end[1] != 's')
            unit = 60, end++;
        else if (*end == 's')
            end++;
        else if (*end)
            goto bad;
        total += n * unit;
        parts++;
        p = end;
    }
    if (!parts)
        goto bad;
    *out = total;
    return 0;
bad:
    return err_set(KF_EINVAL, "--%s: expected a duration such as 90s, 5m or 1h30m, got \"%s\"", name, v);
}

char *args_help(const args_flag *const *tables)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    for (const args_flag *const *t = tables; *t; t++)
        for (const args_flag *fl = *t; fl->name; fl++) {
            char left[80];
            if (fl->short_name)
                snprintf(left, sizeof left, "-%c, --%s%s%s", fl->short_name, fl->name, fl->value ? " " : "",
                         fl->value ? fl->value : "");
            else
                snprintf(left, sizeof left, "    --%s%s%s", fl->name, fl->value ? " " : "", fl->value ? fl->value : "");
            fprintf(f, "  %-30s %s\n", left, fl->help ? fl->help : "");
        }
    fclose(f);
    return buf;
}
