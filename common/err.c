/*
 * err.c — error text, errno names and the HTTP status edge (see err.h).
 */
#include "common/err.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

struct errname {
    int num;
    const char *name;
};

/* Aliases (same value, second name) come after the canonical name so that
 * number -> name finds the canonical one while name -> number accepts both. */
static const struct errname errnames[] = {
    {EPERM, "EPERM"},
    {ENOENT, "ENOENT"},
    {ESRCH, "ESRCH"},
    {EINTR, "EINTR"},
    {EIO, "EIO"},
    {ENXIO, "ENXIO"},
    {E2BIG, "E2BIG"},
    {ENOEXEC, "ENOEXEC"},
    {EBADF, "EBADF"},
    {ECHILD, "ECHILD"},
    {EAGAIN, "EAGAIN"},
    {EWOULDBLOCK, "EWOULDBLOCK"},
    {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},
    {ENOTBLK, "ENOTBLK"},
    {EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},
    {EXDEV, "EXDEV"},
    {ENODEV, "ENODEV"},
    {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"},
    {EINVAL, "EINVAL"},
    {ENFILE, "ENFILE"},
    {EMFILE, "EMFILE"},
    {ENOTTY, "ENOTTY"},
    {ETXTBSY, "ETXTBSY"},
    {EFBIG, "EFBIG"},
    {ENOSPC, "ENOSPC"},
    {ESPIPE, "ESPIPE"},
    {EROFS, "EROFS"},
    {EMLINK, "EMLINK"},
    {EPIPE, "EPIPE"},
    {EDOM, "EDOM"},
    {ERANGE, "ERANGE"},
    {EDEADLK, "EDEADLK"},
    {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOLCK, "ENOLCK"},
    {ENOSYS, "ENOSYS"},
    {ENOTEMPTY, "ENOTEMPTY"},
    {ELOOP, "ELOOP"},
    {ENOMSG, "ENOMSG"},
    {EIDRM, "EIDRM"},
    {ENODATA, "ENODATA"},
#ifdef ENOATTR
    {ENOATTR, "ENOATTR"},
#endif
    {ETIME, "ETIME"},
    {ENOLINK, "ENOLINK"},
    {EPROTO, "EPROTO"},
    {EBADMSG, "EBADMSG"},
    {EOVERFLOW, "EOVERFLOW"},
    {EILSEQ, "EILSEQ"},
    {ENOTSOCK, "ENOTSOCK"},
    {EDESTADDRREQ, "EDESTADDRREQ"},
    {EMSGSIZE, "EMSGSIZE"},
    {EPROTOTYPE, "EPROTOTYPE"},
    {ENOPROTOOPT, "ENOPROTOOPT"},
    {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
    {EOPNOTSUPP, "EOPNOTSUPP"},
    {ENOTSUP, "ENOTSUP"},
    {EADDRINUSE, "EADDRINUSE"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
    {ENETDOWN, "ENETDOWN"},
    {ENETUNREACH, "ENETUNREACH"},
    {ENETRESET, "ENETRESET"},
    {ECONNABORTED, "ECONNABORTED"},
    {ECONNRESET, "ECONNRESET"},
    {ENOBUFS, "ENOBUFS"},
    {EISCONN, "EISCONN"},
    {ENOTCONN, "ENOTCONN"},
    {ETIMEDOUT, "ETIMEDOUT"},
    {ECONNREFUSED, "ECONNREFUSED"},
    {EHOSTDOWN, "EHOSTDOWN"},
    {EHOSTUNREACH, "EHOSTUNREACH"},
    {EALREADY, "EALREADY"},
    {EINPROGRESS, "EINPROGRESS"},
    {ESTALE, "ESTALE"},
    {EDQUOT, "EDQUOT"},
    {ECANCELED, "ECANCELED"},
    {EOWNERDEAD, "EOWNERDEAD"},
    {ENOTRECOVERABLE, "ENOTRECOVERABLE"},
    {ENOMEDIUM, "ENOMEDIUM"},
    {EKEYEXPIRED, "EKEYEXPIRED"},
};

/* cairn's own codes have names too, so a server can send any code in the
 * Cairn-Errno header and the client gets back exactly the same code. */
static const struct errname cairnnames[] = {
    {-CAIRN_ECONFLICT, "CAIRN_ECONFLICT"},
    {-CAIRN_ENOTMODIFIED, "CAIRN_ENOTMODIFIED"},
    {-CAIRN_ECORRUPT, "CAIRN_ECORRUPT"},
    {-CAIRN_EPROTO, "CAIRN_EPROTO"},
    {-CAIRN_EBADVERSION, "CAIRN_EBADVERSION"},
    {-CAIRN_EUNAVAIL, "CAIRN_EUNAVAIL"},
    {-CAIRN_EBUSY, "CAIRN_EBUSY"},
};

static const char *cairn_code_text(int err)
{
    switch (err) {
    case CAIRN_ECONFLICT: return "Version conflict (entry changed concurrently)";
    case CAIRN_ENOTMODIFIED: return "Not modified";
    case CAIRN_ECORRUPT: return "Data corrupt (checksum or structure check failed)";
    case CAIRN_EPROTO: return "Protocol error (malformed message from peer)";
    case CAIRN_EBADVERSION: return "Unsupported format version";
    case CAIRN_EUNAVAIL: return "No server reachable";
    case CAIRN_EBUSY: return "Server busy, retry later";
    default: return NULL;
    }
}

const char *cairn_strerror(int err)
{
    const char *s;

    if (err == 0)
        return "Success";
    s = cairn_code_text(err);
    if (s)
        return s;
    if (err < 0)
        err = -err;
    /* strerrordesc_np returns static text, unlike strerror which may use a
     * buffer shared between threads for unknown values. */
    s = strerrordesc_np(err);
    return s ? s : "Unknown error";
}

const char *cairn_errno_name(int errnum)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(errnames); i++)
        if (errnames[i].num == errnum)
            return errnames[i].name;
    for (i = 0; i < ARRAY_LEN(cairnnames); i++)
        if (cairnnames[i].num == errnum)
            return cairnnames[i].name;
    return NULL;
}

int cairn_errno_from_name(const char *name)
{
    size_t i;

    if (!name)
        return 0;
    for (i = 0; i < ARRAY_LEN(errnames); i++)
        if (strcasecmp(errnames[i].name, name) == 0)
            return errnames[i].num;
    for (i = 0; i < ARRAY_LEN(cairnnames); i++)
        if (strcasecmp(cairnnames[i].name, name) == 0)
            return cairnnames[i].num;
    return 0;
}

int cairn_err_to_http(int err)
{
    if (err > 0)
        err = -err;
    switch (err) {
    case 0: return 200;
    case CAIRN_ENOTMODIFIED: return 304;
    case CAIRN_ECONFLICT: return 412;
    case CAIRN_EBUSY: return 503;
    case CAIRN_EUNAVAIL: return 502;
    case CAIRN_EPROTO: return 400;
    case CAIRN_EBADVERSION: return 400;
    case CAIRN_ECORRUPT: return 500;
    case -EINVAL: return 400;
    case -EPERM: return 403;
    case -EACCES: return 403;
    case -ENOENT: return 404;
    case -EEXIST: return 409;
    case -ENOTEMPTY: return 409;
    case -EBUSY: return 409;
    case -EFBIG: return 413;
    case -E2BIG: return 413;
    case -ENOSPC: return 507;
    case -EDQUOT: return 507;
    case -EAGAIN: return 503;
    case -ENOSYS: return 501;
    case -ETIMEDOUT: return 504;
    case -EIO: return 500;
    case -ENOMEM: return 500;
    default:
        break;
    }
    /* An errno without a dedicated status: the Cairn-Errno header carries
     * the meaning. An unknown value is a server bug, not a client error. */
    if (err < 0 && err > -CAIRN_ERRBASE && cairn_errno_name(-err))
        return 422;
    return 500;
}

int cairn_http_to_err(int status, const char *errname)
{
    int e;

    if (status >= 200 && status <= 299)
        return 0;
    if (status >= 400 && status <= 599 && errname) {
        e = cairn_errno_from_name(errname);
        if (e > 0)
            return -e;
    }
    switch (status) {
    case 304: return CAIRN_ENOTMODIFIED;
    case 400: return -EINVAL;
    case 401: return -EACCES;
    case 403: return -EACCES;
    case 404: return -ENOENT;
    case 405: return -EOPNOTSUPP;
    case 408: return -ETIMEDOUT;
    case 409: return -EEXIST;
    case 410: return -ESTALE;
    case 411: return -EINVAL;
    case 412: return CAIRN_ECONFLICT;
    case 413: return -EFBIG;
    case 414: return -ENAMETOOLONG;
    case 422: return -EINVAL;
    case 429: return CAIRN_EBUSY;
    case 500: return -EIO;
    case 501: return -ENOSYS;
    case 502: return CAIRN_EUNAVAIL;
    case 503: return CAIRN_EBUSY;
    case 504: return -ETIMEDOUT;
    case 507: return -ENOSPC;
    default:
        break;
    }
    if (status >= 400 && status <= 499)
        return -EINVAL;
    if (status >= 500 && status <= 599)
        return -EIO;
    /* 1xx and unexpected 3xx (we never ask to be redirected). */
    return CAIRN_EPROTO;
}

int cairn_err_to_posix(int err)
{
    if (err < 0)
        err = -err;
    if (err >= CAIRN_ERRBASE)
        return EIO;
    return err;
}
