/* The records the kernel side (exec_monitor.bpf.c) writes to the ring
 * buffer and the map values it shares with user space (monitor.cc). C, so
 * that the BPF program and the C++ library read one definition; only
 * event.cc decodes these bytes (docs/formats/enhanced-events.md). */
#ifndef MEZ_BPF_EVENT_ABI_H_
#define MEZ_BPF_EVENT_ABI_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* argv is captured up to this many bytes (the NUL-separated strings
 * between mm->arg_start and mm->arg_end); beyond it the record says how
 * many bytes were cut. A power of two (the BPF verifier bounds with it). */
#define MEZ_BPF_ARGV_CAP 16384
/* Bytes of path components (executable, then cwd) kept per path. */
#define MEZ_BPF_PATH_CAP 4096
/* Path components (and mount crossings) walked per path. */
#define MEZ_BPF_PATH_DEPTH 64
/* Longest component read (NAME_MAX + NUL). */
#define MEZ_BPF_NAME_MAX 256
/* A path's components are kept until they reach this many bytes (the
 * component that crosses it is kept whole): so two paths after a file
 * record's sub-header stay inside 2 * MEZ_BPF_PATH_CAP. */
#define MEZ_BPF_PATH_KEEP (MEZ_BPF_PATH_CAP - MEZ_BPF_NAME_MAX - 32)
/* Size of a file record's sub-header (struct mez_bpf_file). */
#define MEZ_BPF_FILE_HEADER 32
/* Longest name a file record keeps as the process gave it (PATH_MAX,
 * with its NUL: every name the kernel accepts). */
#define MEZ_BPF_NAME_CAP 4096
/* Room after the header in the per-CPU scratch area an exec record is
 * assembled in: both paths, then argv (a per-CPU value is at most 32 KiB). */
#define MEZ_BPF_DATA_SIZE (2 * MEZ_BPF_PATH_CAP + MEZ_BPF_ARGV_CAP)

enum mez_bpf_kind {
  MEZ_BPF_KIND_EXEC = 1,
  MEZ_BPF_KIND_EXIT = 2,
  MEZ_BPF_KIND_CONNECT = 3,
  MEZ_BPF_KIND_FILE = 4,
};

enum mez_bpf_net_op {
  MEZ_BPF_NET_CONNECT = 0, /* outcome of a connect() */
  MEZ_BPF_NET_LISTEN = 1,  /* listen() on a TCP socket */
  MEZ_BPF_NET_ACCEPT = 2,  /* a connection accept() returned */
  MEZ_BPF_NET_UDP = 3,     /* the session's first UDP send to a destination */
};

enum mez_bpf_file_op {
  MEZ_BPF_FILE_OPEN = 1,   /* open, openat, openat2, creat */
  MEZ_BPF_FILE_UNLINK = 2, /* unlink, unlinkat (also rmdir via AT_REMOVEDIR) */
  MEZ_BPF_FILE_RENAME = 3, /* rename, renameat, renameat2 */
};

enum mez_bpf_flags {
  MEZ_BPF_FLAG_EXE_CUT = 1,        /* executable path deeper/longer than kept */
  MEZ_BPF_FLAG_CWD_CUT = 2,        /* cwd deeper/longer than kept */
  MEZ_BPF_FLAG_ARGV_UNREADABLE = 4 /* argv pages could not be read */
};

/* Header of every ring buffer record. An exec record is followed by
 * exe_len bytes of executable path components, cwd_len bytes of cwd
 * components (each component NUL-terminated, from the leaf up to the root)
 * and argv_len bytes of argv. */
struct mez_bpf_record {
  __u32 kind;
  __u32 flags;
  __u64 cookie;
  __u64 seq;     /* per cookie, from 1, one for every record attempted */
  __u64 time_ns; /* CLOCK_MONOTONIC */
  __u32 pid;     /* tgid */
  __u32 ppid;    /* real parent's tgid */
  __u32 uid;
  __u32 euid;
  __u32 exit_code; /* exit: the kernel's wait status (code << 8 | signal) */
  __u32 exe_len;
  __u64 duration_ns; /* exit: since the process's last exec */
  __u32 cwd_len;
  __u32 argv_len;   /* bytes of argv in this record */
  __u64 argv_total; /* bytes of argv the process has */
  __u32 pgid;       /* exec: the process group's id (as its tgid) */
  __u32 pad;
};

/* What follows the header of a network (MEZ_BPF_KIND_CONNECT) record. Addresses
 * and ports in network byte order, as the kernel holds them; an IPv4 address in
 * the first 4 bytes. */
struct mez_bpf_connect {
  __u16 family; /* AF_INET or AF_INET6 */
  __u16 remote_port;
  __u16 local_port;
  __u16 op;     /* MEZ_BPF_NET_CONNECT, _LISTEN or _ACCEPT */
  __s32 result; /* connect: 0 established, or -errno; else 0 */
  __u32 pad2;
  __u8 remote_addr[16];
  __u8 local_addr[16];
};

/* The first MEZ_BPF_FILE_HEADER bytes after a file record's header. Then:
 * exe_len bytes of path components (the opened file's own path when
 * `resolved`, else the directory `name` is relative to; none for an
 * absolute name), cwd_len bytes of components of the directory `name2`
 * is relative to, name_len bytes of `name` and name2_len of `name2` as the
 * process passed them (with their NULs; none when resolved). */
struct mez_bpf_file {
  __u32 op;
  __s32 result; /* the system call's return: an fd, 0, or -errno */
  __u32 flags;  /* open flags; unlinkat's and renameat2's flags */
  __u32 mode;
  __u32 resolved;
  __u32 name_len;
  __u32 name2_len;
  __u32 pad;
};

/* The exec scratch area: a header and room for the variable part. */
struct mez_bpf_exec_buf {
  struct mez_bpf_record rec;
  char data[MEZ_BPF_DATA_SIZE];
};

/* tracked: tgid -> this. */
struct mez_bpf_task {
  __u64 cookie;
  __u64 exec_ns; /* 0 until the process execs */
};

/* sessions: cookie -> counters the kernel keeps for the session. */
struct mez_bpf_session {
  __u64 seq;        /* last sequence number handed out */
  __u64 lost_exec;  /* exec records the ring buffer had no room for */
  __u64 lost_exit;  /* exit records the ring buffer had no room for */
  __u64 lost_net;   /* network records the ring buffer had no room for */
  __u64 lost_file;  /* file records the ring buffer had no room for */
  __u64 lost_forks; /* children not tracked: the task map was full */
};

#endif /* MEZ_BPF_EVENT_ABI_H_ */
