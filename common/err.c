#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_buf[2048];

int err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return code;
}

int err_wrap(int code, const char *fmt, ...)
{
    char old[sizeof err_buf];
    memcpy(old, err_buf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    size_t used = strlen(err_buf);
    if (old[0] && used + 3 < sizeof err_buf) {
        memcpy(err_buf + used, ": ", 2);
        used += 2;
        size_t n = strnlen(old, sizeof err_buf - used - 1);
        memcpy(err_buf + used, old, n);
        err_buf[used + n] = '\0';
    }
    return code;
}

const char *err_msg(void) { return err_buf; }

void err_clear(void) { err_buf[0] = '\0'; }

const char *err_name(int code)
{
    switch (code) {
    case KF_OK: return "OK";
    case KF_EINVAL: return "EINVAL";
    case KF_ENOMEM: return "ENOMEM";
    case KF_EIO: return "EIO";
    case KF_ENOTFOUND: return "ENOTFOUND";
    case KF_ECONFLICT: return "ECONFLICT";
    case KF_EGONE: return "EGONE";
    case KF_ERETRY: return "ERETRY";
    case KF_EAUTH: return "EAUTH";
    case KF_EEXISTS: return "EEXISTS";
    case KF_EUNSUPPORTED: return "EUNSUPPORTED";
    default: return "EUNKNOWN";
    }
}
