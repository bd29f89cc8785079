/*
 * fsrec.h — record schemas of the filesystem data model (DESIGN.md §2),
 * shared by cairn-metad (WAL, snapshots, wire) and the client (wire).
 *
 * Every schema is a rec.h record; this header fixes the record types, the
 * field tags and the limits, and provides encoders/decoders for the pieces
 * both sides need (attributes, version vectors, chunk-map slots). Routes
 * and which fields each request carries are in docs/PROTOCOL.md.
 *
 * Decoders validate: a missing required field or a field of the wrong size
 * is CAIRN_EPROTO; values out of range (name too long, slot length above
 * the chunk size) are the caller's check against fsinfo. Thread-safe.
 */
#ifndef CAIRN_FSREC_H
#define CAIRN_FSREC_H

#include <stdint.h>

#include "common/hash.h"
#include "common/rec.h"
#include "common/vv.h"

/* Limits (Linux/ext4 values where one exists). */
#define FS_NAME_MAX 255
#define FS_SYMLINK_MAX 4095
#define FS_XATTR_NAME_MAX 255
#define FS_XATTR_VALUE_MAX 65536
#define FS_XATTR_LIST_MAX 65536   /* sum of (name + NUL) over an inode */
#define FS_ROOT_INO 1
#define FS_READDIR_MAX 4096       /* entries per readdir call */

/* Record types. Values 32..127 are private to cairn-metad's WAL. */
enum fsrec_type {
    FSREC_INODE = 1,      /* attributes (+ map/inline/xattrs when asked) */
    FSREC_REQ = 2,        /* a request body */
    FSREC_DIRLIST = 3,    /* readdir answer: FT_DIRENT* + FT_CURSOR + FT_EOF */
    FSREC_CLUSTER = 4,    /* cluster map: FT_EPOCH + FT_SERVER* */
    FSREC_SERVER = 5,     /* one chunk server */
    FSREC_FSINFO = 6,
    FSREC_STATFS = 7,
    FSREC_IDS = 8,        /* chunk id list query / answer */
    FSREC_XATTRS = 9,     /* xattr list: FT_NAME* */
    FSREC_REPLY = 10,     /* generic answer (e.g. rename: both parents) */
};

/* Field tags (one namespace for all record types). */
enum fsrec_tag {
    FT_INO = 1, FT_GEN = 2, FT_MODE = 3, FT_UID = 4, FT_GID = 5, FT_NLINK = 6,
    FT_RDEV = 7, FT_SIZE = 8, FT_ATIME = 9, FT_MTIME = 10, FT_CTIME = 11,
    FT_VV = 12,        /* bytes: n x (u32 replica, u64 counter) */
    FT_TARGET = 13,    /* symlink target */
    FT_INLINE = 14,    /* inline file data (<= inline_max bytes) */
    FT_SLOT = 15,      /* bytes[44]: u64 index, u32 len, id[32]; repeated */
    FT_XATTR = 16,     /* nested FSREC_REQ with FT_NAME + FT_VALUE; repeated */
    FT_HASMAP = 17,    /* u64 1: the record carries the whole chunk map */

    FT_PARENT = 20, FT_NAME = 21, FT_NEWPARENT = 22, FT_NEWNAME = 23,
    FT_FLAGS = 24,     /* per-op flags (rename, xattr, create excl) */
    FT_VALID = 25,     /* setattr mask, SA_* */
    FT_CURSOR = 26, FT_MAX = 27, FT_EOF = 28,
    FT_DIRENT = 29,    /* nested FSREC_INODE with FT_NAME; repeated */
    FT_VALUE = 30,
    FT_ID = 31,        /* chunk id (32 bytes); repeated */
    FT_BITS = 32,      /* bytes: one byte (0/1) per queried id */
    FT_EXISTED = 33,   /* u64 1: create found an existing file */
    FT_CLEAR_INLINE = 34, /* u64 1: commit drops inline data */
    FT_INODE = 35,     /* nested FSREC_INODE (in replies with several) */
    FT_UMASK = 36,

    FT_SERVER = 40,    /* nested FSREC_SERVER; repeated */
    FT_SID = 41, FT_ADDR = 42, FT_CAPACITY = 43, FT_USED = 44, FT_CHUNKS = 45,
    FT_STATE = 46,     /* SERVER_UP / SERVER_DOWN / SERVER_DRAINING */
    FT_EPOCH = 47, FT_LAST_SEEN = 48, FT_HB_INTERVAL = 49,

    FT_FSID = 50,      /* bytes[16] */
    FT_CHUNK_SIZE = 51, FT_REPLICAS = 52, FT_INLINE_MAX = 53,
    FT_MIN_REPLICAS = 54,

    FT_TOTAL = 60, FT_FREE = 61, FT_FILES = 62, FT_FFREE = 63, FT_BSIZE = 64,

    FT_SESSION = 70,   /* client session id */
    FT_LEASE_MS = 71,  /* session lease length */
    FT_OPEN = 72,      /* u64 1: the request also marks the inode held open */
    FT_CLIENT = 73,    /* client description, e.g. "host:pid" */
    FT_RELEASED = 74,  /* u64 inode the requesting session stopped holding; repeated */
    FT_PARENT_ATTR = 75, /* nested FSREC_INODE: the directory a create or link changed */
    FT_STATUS = 76,    /* u64, per item of a batch answer: ATIMES_* */
    FT_FEED = 77,      /* change feed id (metad process) */
    FT_SEQ = 78,       /* change feed position: the next record wanted */
    FT_CHANGE = 79,    /* nested FSREC_REQ: FT_PARENT + FT_NAME, or FT_INO; repeated */
    FT_WAIT_MS = 80,   /* how long the change feed may wait for a record */
    FT_GAP = 81,       /* u64 1: records the reader needs are gone */
};

/* setattr FT_VALID bits. *_NOW: the server uses its own clock. */
enum {
    SA_MODE = 1, SA_UID = 2, SA_GID = 4, SA_SIZE = 8, SA_ATIME = 16,
    SA_MTIME = 32, SA_ATIME_NOW = 64, SA_MTIME_NOW = 128, SA_CTIME = 256,
};

/* POST /v1/atimes: items per request, and each item's FT_STATUS. */
#define ATIMES_MAX 256
enum { ATIMES_DONE = 0, ATIMES_CONFLICT = 1, ATIMES_GONE = 2 };

/* POST /v1/changes FT_FLAGS: answer the session's waiting requests now. */
enum { CHANGES_KICK = 1 };

/* create FT_FLAGS bits. */
enum { FSC_EXCL = 1 };

/* SERVER_FULL: up and serving reads, but its free space is below the
 * metad's --full-reserve, so writers place new chunks elsewhere. */
enum { SERVER_UP = 1, SERVER_DOWN = 2, SERVER_DRAINING = 3, SERVER_FULL = 4 };

#define FS_SLOT_LEN 44

/* One chunk-map slot: bytes [index*C, index*C + len) of the file are the
 * first len bytes of chunk id; bytes of the slot past len read as zeros.
 * The chunk itself may be longer than len (a truncate shortens len without
 * rewriting the chunk). In a commit, len == 0 means "make this slot a hole". */
typedef struct fs_slot {
    uint64_t index;
    uint32_t len;
    uint8_t id[CHUNK_ID_LEN];
} fs_slot;

typedef struct fs_attr {
    uint64_t ino, gen;
    uint32_t mode, uid, gid, nlink;
    uint64_t rdev, size;
    int64_t atime, mtime, ctime;   /* ns since the Unix epoch */
    vv vv;
} fs_attr;

void fsrec_put_vv(recw *w, uint16_t tag, const vv *v);
/* -ENOENT if the tag is absent; CAIRN_EPROTO if the value is not a valid
 * vector (length not a multiple of 12, more than VV_MAX entries, ids not
 * strictly ascending, a zero counter). */
int fsrec_get_vv(const recr *r, uint16_t tag, vv *out);
int fsrec_vv_decode(const uint8_t *p, size_t n, vv *out);

/* Writes FT_INO..FT_CTIME and FT_VV. */
void fsrec_put_attr(recw *w, const fs_attr *a);
/* Requires FT_INO, FT_MODE, FT_VV; others default to 0. A field of the
 * wrong size or a 32-bit field (mode, uid, gid, nlink) above UINT32_MAX is
 * CAIRN_EPROTO; *a is only written on success. */
int fsrec_get_attr(const recr *r, fs_attr *a);

void fsrec_put_slot(recw *w, const fs_slot *s);
int fsrec_slot_decode(const uint8_t *p, size_t n, fs_slot *out);

#endif
