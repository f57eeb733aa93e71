// SPDX-License-Identifier: GPL-2.0
/* Kernel side of mez::bpf::Monitor: follows the process trees of tracked
 * sessions (fork inheritance in the kernel, so setsid, double forks and
 * cgroup moves do not escape) and reports their execs and exits on a ring
 * buffer. Only tp_btf attach points: no tracefs, no BPF LSM needed.
 * docs/enhanced-recording.md says what it sees and what it cannot. */
// clang-format off: vmlinux.h (the kernel's types) must come first.
#include "vmlinux.h"
// clang-format on

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "libmez/bpf/event_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Sized by user space before load (MonitorOptions). */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 23);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct mez_bpf_task);
} tracked SEC(".maps");

/* Sessions whose processes are followed; user space adds and removes. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, __u8);
} active SEC(".maps");

/* Counters per session; outlive `active` until user space has read them. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192);
  __type(key, __u64);
  __type(value, struct mez_bpf_session);
} sessions SEC(".maps");

/* Where exec and file records are assembled (too big for the BPF stack).
 * Per CPU is safe while the programs that use it cannot be preempted or
 * interrupted by one another: sched_process_exec and sys_exit both run in
 * process context with preemption disabled (for sys_exit, whose
 * tracepoint may fault since Linux 6.13, because BPF probes are still
 * called under preempt_disable; re-check if that changes). The connect
 * program, which can run in softirq, does not use it. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct mez_bpf_exec_buf);
} scratch SEC(".maps");

/* Both paths end below 2 * PATH_CAP, so offsets masked with this keep
 * every write inside the scratch area (how the verifier knows). */
#define DATA_MASK (2 * MEZ_BPF_PATH_CAP - 1)

/* The task entry of tgid when its session is still active, else NULL
 * (and a stale entry is dropped). */
static __always_inline struct mez_bpf_task *lookup_task(__u32 tgid) {
  struct mez_bpf_task *t = bpf_map_lookup_elem(&tracked, &tgid);
  if (!t) return 0;
  __u64 cookie = t->cookie;
  if (!bpf_map_lookup_elem(&active, &cookie)) {
    bpf_map_delete_elem(&tracked, &tgid);
    return 0;
  }
  return t;
}

/* Path walking keeps its running lengths in the scratch record (map
 * memory), not on the stack: the verifier does not track map values, so
 * the loop's states do not multiply with every possible length. */
struct walk_ctx {
  struct dentry *d;
  struct mount *mnt;
  __u32 cwd;    /* 0: the first path (exe_len), 1: the second (cwd_len) */
  __u32 origin; /* where in data the paths start: 0, or after a sub-header */
};

/* One step of a path walk (a bpf_loop callback, so the verifier checks the
 * body once): crosses a mount or writes one component. */
static long walk_step(__u32 index, void *arg) {
  struct walk_ctx *w = arg;
  __u32 zero = 0;
  struct mez_bpf_exec_buf *b = bpf_map_lookup_elem(&scratch, &zero);
  if (!b) return 1;
  /* Plain locals: BPF_CORE_READ would relocate walk_ctx's fields too. */
  struct dentry *d = w->d;
  struct mount *mnt = w->mnt;
  __u32 cut_flag = w->cwd ? MEZ_BPF_FLAG_CWD_CUT : MEZ_BPF_FLAG_EXE_CUT;
  struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
  struct dentry *parent = BPF_CORE_READ(d, d_parent);
  if (d == mnt_root) {
    struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
    if (up == mnt || !up) {
      b->rec.flags &= ~cut_flag; /* reached the root */
      return 1;
    }
    w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
    w->mnt = up;
    return 0;
  }
  __u32 base = w->cwd ? b->rec.exe_len : 0;
  __u32 len = w->cwd ? b->rec.cwd_len : b->rec.exe_len;
  if (len >= MEZ_BPF_PATH_KEEP) return 1;
  const unsigned char *name = BPF_CORE_READ(d, d_name.name);
  long n = bpf_probe_read_kernel_str(
      &b->data[(w->origin + base + len) & DATA_MASK], MEZ_BPF_NAME_MAX, name);
  if (n <= 0) return 1;
  if (w->cwd)
    b->rec.cwd_len = len + n;
  else
    b->rec.exe_len = len + n;
  if (d == parent) {
    /* A dentry that is its own parent outside a mount root: a pseudo file
     * (memfd) or a disconnected one. Its name is all there is. */
    b->rec.flags &= ~cut_flag;
    return 1;
  }
  w->d = parent;
  return 0;
}

/* Appends the components of (dentry, mount) to the scratch record, from
 * the leaf up to the root, each NUL-terminated; leaves the cut flag set
 * when the path was deeper or longer than kept. */
static __always_inline void walk_path(struct mez_bpf_exec_buf *b,
                                      struct dentry *d, struct vfsmount *vm,
                                      __u32 cwd, __u32 origin) {
  struct walk_ctx w = {
      .d = d,
      .mnt = container_of(vm, struct mount, mnt),
      .cwd = cwd,
      .origin = origin,
  };
  b->rec.flags |= cwd ? MEZ_BPF_FLAG_CWD_CUT : MEZ_BPF_FLAG_EXE_CUT;
  bpf_loop(MEZ_BPF_PATH_DEPTH, walk_step, &w, 0);
}

static __always_inline void count_loss(__u64 cookie, int kind) {
  struct mez_bpf_session *s = bpf_map_lookup_elem(&sessions, &cookie);
  if (!s) return;
  if (kind == MEZ_BPF_KIND_EXEC)
    __sync_fetch_and_add(&s->lost_exec, 1);
  else if (kind == MEZ_BPF_KIND_EXIT)
    __sync_fetch_and_add(&s->lost_exit, 1);
  else if (kind == MEZ_BPF_KIND_CONNECT)
    __sync_fetch_and_add(&s->lost_net, 1);
  else
    __sync_fetch_and_add(&s->lost_file, 1);
}

static __always_inline __u64 next_seq(__u64 cookie) {
  struct mez_bpf_session *s = bpf_map_lookup_elem(&sessions, &cookie);
  if (!s) return 0;
  return __sync_fetch_and_add(&s->seq, 1) + 1;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(mez_fork, struct task_struct *parent, struct task_struct *child) {
  __u32 child_pid = BPF_CORE_READ(child, pid);
  if (child_pid != BPF_CORE_READ(child, tgid)) return 0; /* a thread */
  struct mez_bpf_task *t = lookup_task(BPF_CORE_READ(parent, tgid));
  if (!t) return 0;
  struct mez_bpf_task c = {.cookie = t->cookie, .exec_ns = 0};
  if (bpf_map_update_elem(&tracked, &child_pid, &c, BPF_ANY) != 0) {
    struct mez_bpf_session *s = bpf_map_lookup_elem(&sessions, &c.cookie);
    if (s) __sync_fetch_and_add(&s->lost_forks, 1);
  }
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(mez_exec, struct task_struct *p, pid_t old_pid,
             struct linux_binprm *bprm) {
  __u32 tgid = BPF_CORE_READ(p, tgid);
  struct mez_bpf_task *t = lookup_task(tgid);
  if (!t) return 0;
  __u64 now = bpf_ktime_get_ns();
  t->exec_ns = now;
  __u64 cookie = t->cookie;
  __u32 zero = 0;
  struct mez_bpf_exec_buf *b = bpf_map_lookup_elem(&scratch, &zero);
  if (!b) return 0;

  b->rec.kind = MEZ_BPF_KIND_EXEC;
  b->rec.flags = 0;
  b->rec.cookie = cookie;
  b->rec.time_ns = now;
  b->rec.pid = tgid;
  b->rec.ppid = BPF_CORE_READ(p, real_parent, tgid);
  b->rec.uid = BPF_CORE_READ(p, cred, uid.val);
  b->rec.euid = BPF_CORE_READ(p, cred, euid.val);
  b->rec.exit_code = 0;
  b->rec.duration_ns = 0;

  b->rec.exe_len = 0;
  b->rec.cwd_len = 0;
  struct file *exe = BPF_CORE_READ(bprm, file);
  walk_path(b, BPF_CORE_READ(exe, f_path.dentry),
            BPF_CORE_READ(exe, f_path.mnt), 0, 0);
  walk_path(b, BPF_CORE_READ(p, fs, pwd.dentry), BPF_CORE_READ(p, fs, pwd.mnt),
            1, 0);
  __u32 off = (b->rec.exe_len + b->rec.cwd_len) & DATA_MASK;

  __u64 arg_start = BPF_CORE_READ(p, mm, arg_start);
  __u64 arg_end = BPF_CORE_READ(p, mm, arg_end);
  __u64 total = arg_end > arg_start ? arg_end - arg_start : 0;
  __u32 len = total > MEZ_BPF_ARGV_CAP ? MEZ_BPF_ARGV_CAP : (__u32)total;
  if (len > MEZ_BPF_ARGV_CAP) len = MEZ_BPF_ARGV_CAP; /* for the verifier */
  if (len > 0 &&
      bpf_probe_read_user(&b->data[off], len, (const void *)arg_start) != 0) {
    b->rec.flags |= MEZ_BPF_FLAG_ARGV_UNREADABLE;
    len = 0;
  }
  b->rec.argv_len = len;
  b->rec.argv_total = total;
  b->rec.seq = next_seq(cookie);

  __u64 size = sizeof(b->rec) + (__u64)off + len;
  if (size > sizeof(*b)) size = sizeof(*b);
  if (bpf_ringbuf_output(&events, b, size, 0) != 0)
    count_loss(cookie, MEZ_BPF_KIND_EXEC);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(mez_exit, struct task_struct *p) {
  /* Only the last thread out ends the process. */
  if (BPF_CORE_READ(p, signal, live.counter) != 0) return 0;
  __u32 tgid = BPF_CORE_READ(p, tgid);
  struct mez_bpf_task *t = bpf_map_lookup_elem(&tracked, &tgid);
  if (!t) return 0;
  __u64 cookie = t->cookie;
  __u64 exec_ns = t->exec_ns;
  bpf_map_delete_elem(&tracked, &tgid);
  if (exec_ns == 0 || !bpf_map_lookup_elem(&active, &cookie)) return 0;

  __u64 seq = next_seq(cookie);
  struct mez_bpf_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
  if (!r) {
    count_loss(cookie, MEZ_BPF_KIND_EXIT);
    return 0;
  }
  __u64 now = bpf_ktime_get_ns();
  __builtin_memset(r, 0, sizeof(*r));
  r->kind = MEZ_BPF_KIND_EXIT;
  r->cookie = cookie;
  r->seq = seq;
  r->time_ns = now;
  r->pid = tgid;
  r->ppid = BPF_CORE_READ(p, real_parent, tgid);
  r->uid = BPF_CORE_READ(p, cred, uid.val);
  r->euid = BPF_CORE_READ(p, cred, euid.val);
  r->exit_code = BPF_CORE_READ(p, exit_code);
  r->duration_ns = now - exec_ns;
  bpf_ringbuf_submit(r, 0);
  return 0;
}

#define MEZ_AF_INET 2
#define MEZ_AF_INET6 10
#define MEZ_IPPROTO_TCP 6
#define MEZ_TCP_ESTABLISHED 1
#define MEZ_TCP_SYN_SENT 2
#define MEZ_TCP_CLOSE 7
#define MEZ_TCP_LISTEN 10

/* Sockets of tracked processes with a connect in flight: set when connect()
 * moves the socket to SYN_SENT (in the connecting process), read when it
 * leaves SYN_SENT (established, refused, timed out or closed; often in
 * softirq, where `current` is anyone). LRU: an entry the kernel never
 * resolves cannot fill the map. */
struct connecting {
  __u64 cookie;
  __u64 start_ns;
  __u32 pid;
  __u32 ppid;
  __u32 uid;
  __u32 euid;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct connecting);
} connects SEC(".maps");

/* Writes a listen or accept record for sk, by the current process. */
static __always_inline void emit_net(__u64 cookie, __u32 tgid,
                                     const struct sock *sk, __u16 op,
                                     __s32 result, __u64 duration) {
  if (BPF_CORE_READ(sk, sk_protocol) != MEZ_IPPROTO_TCP) return;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != MEZ_AF_INET && family != MEZ_AF_INET6) return;
  __u64 seq = next_seq(cookie);
  struct {
    struct mez_bpf_record rec;
    struct mez_bpf_connect c;
  } *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
  if (!r) {
    count_loss(cookie, MEZ_BPF_KIND_CONNECT);
    return;
  }
  __builtin_memset(r, 0, sizeof(*r));
  struct task_struct *p = bpf_get_current_task_btf();
  r->rec.kind = MEZ_BPF_KIND_CONNECT;
  r->rec.cookie = cookie;
  r->rec.seq = seq;
  r->rec.time_ns = bpf_ktime_get_ns();
  r->rec.pid = tgid;
  r->rec.ppid = BPF_CORE_READ(p, real_parent, tgid);
  r->rec.uid = BPF_CORE_READ(p, cred, uid.val);
  r->rec.euid = BPF_CORE_READ(p, cred, euid.val);
  r->rec.duration_ns = duration;
  r->c.family = family;
  r->c.op = op;
  r->c.result = result;
  r->c.remote_port = BPF_CORE_READ(sk, __sk_common.skc_dport);
  r->c.local_port = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
  if (family == MEZ_AF_INET6) {
    BPF_CORE_READ_INTO(&r->c.remote_addr, sk, __sk_common.skc_v6_daddr);
    BPF_CORE_READ_INTO(&r->c.local_addr, sk, __sk_common.skc_v6_rcv_saddr);
  } else {
    BPF_CORE_READ_INTO((__u32 *)r->c.remote_addr, sk, __sk_common.skc_daddr);
    BPF_CORE_READ_INTO((__u32 *)r->c.local_addr, sk, __sk_common.skc_rcv_saddr);
  }
  bpf_ringbuf_submit(r, 0);
}

/* A TCP connect (IPv4 or IPv6) by a tracked process, reported once its
 * outcome is known: established, or the error that ended it. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(mez_tcp_state, struct sock *sk, int oldstate, int newstate) {
  if (BPF_CORE_READ(sk, sk_protocol) != MEZ_IPPROTO_TCP) return 0;
  __u64 key = (__u64)sk;
  if (newstate == MEZ_TCP_SYN_SENT) {
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct mez_bpf_task *t = lookup_task(tgid);
    if (!t) return 0;
    struct task_struct *p = bpf_get_current_task_btf();
    struct connecting c = {
        .cookie = t->cookie,
        .start_ns = bpf_ktime_get_ns(),
        .pid = tgid,
        .ppid = BPF_CORE_READ(p, real_parent, tgid),
        .uid = BPF_CORE_READ(p, cred, uid.val),
        .euid = BPF_CORE_READ(p, cred, euid.val),
    };
    bpf_map_update_elem(&connects, &key, &c, BPF_ANY);
    return 0;
  }
  if (newstate == MEZ_TCP_LISTEN) {
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct mez_bpf_task *t = lookup_task(tgid);
    if (t) emit_net(t->cookie, tgid, sk, MEZ_BPF_NET_LISTEN, 0, 0);
    return 0;
  }
  if (oldstate != MEZ_TCP_SYN_SENT) return 0;
  struct connecting *c = bpf_map_lookup_elem(&connects, &key);
  if (!c) return 0;
  struct connecting info = *c;
  bpf_map_delete_elem(&connects, &key);
  if (!bpf_map_lookup_elem(&active, &info.cookie)) return 0;

  __u64 seq = next_seq(info.cookie);
  struct {
    struct mez_bpf_record rec;
    struct mez_bpf_connect c;
  } *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
  if (!r) {
    count_loss(info.cookie, MEZ_BPF_KIND_CONNECT);
    return 0;
  }
  __builtin_memset(r, 0, sizeof(*r));
  __u64 now = bpf_ktime_get_ns();
  r->rec.kind = MEZ_BPF_KIND_CONNECT;
  r->rec.cookie = info.cookie;
  r->rec.seq = seq;
  r->rec.time_ns = now;
  r->rec.pid = info.pid;
  r->rec.ppid = info.ppid;
  r->rec.uid = info.uid;
  r->rec.euid = info.euid;
  r->rec.duration_ns = now - info.start_ns;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  r->c.family = family;
  r->c.result =
      newstate == MEZ_TCP_ESTABLISHED ? 0 : -(int)BPF_CORE_READ(sk, sk_err);
  r->c.remote_port = BPF_CORE_READ(sk, __sk_common.skc_dport);
  r->c.local_port = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
  if (family == MEZ_AF_INET6) {
    BPF_CORE_READ_INTO(&r->c.remote_addr, sk, __sk_common.skc_v6_daddr);
    BPF_CORE_READ_INTO(&r->c.local_addr, sk, __sk_common.skc_v6_rcv_saddr);
  } else {
    BPF_CORE_READ_INTO((__u32 *)r->c.remote_addr, sk, __sk_common.skc_daddr);
    BPF_CORE_READ_INTO((__u32 *)r->c.local_addr, sk, __sk_common.skc_rcv_saddr);
  }
  bpf_ringbuf_submit(r, 0);
  return 0;
}

#if defined(__TARGET_ARCH_x86)
/* x86_64 system call numbers of the file operations reported. */
#define NR_OPEN 2
#define NR_ACCEPT 43
#define NR_SENDTO 44
#define NR_SENDMSG 46
#define NR_SENDMMSG 307
#define MEZ_IPPROTO_UDP 17
#define NR_ACCEPT4 288
#define NR_RENAME 82
#define NR_CREAT 85
#define NR_UNLINK 87
#define NR_OPENAT 257
#define NR_UNLINKAT 263
#define NR_RENAMEAT 264
#define NR_RENAMEAT2 316
#define NR_OPENAT2 437
#define MEZ_AT_FDCWD -100
#define MEZ_O_WRONLY 01
#define MEZ_O_CREAT 0100
#define MEZ_O_TRUNC 01000

/* UDP destinations each session has sent to: only the first send to a
 * destination is reported. LRU: a session spraying destinations evicts
 * old ones (they are then reported again), never fills the map. */
struct udp_dest {
  __u64 cookie;
  __u8 addr[16];
  __u16 port;
  __u16 family;
  __u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct udp_dest);
  __type(value, __u8);
} udp_seen SEC(".maps");

/* The file an fd of the current process refers to, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *p, long fd) {
  if (fd < 0) return 0;
  struct fdtable *fdt = BPF_CORE_READ(p, files, fdt);
  if ((unsigned long)fd >= BPF_CORE_READ(fdt, max_fds)) return 0;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = 0;
  bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
  return f;
}

/* Puts the directory a relative name is resolved from (dfd's, or the
 * cwd) in path slot `slot`; nothing for an absolute name. */
static __always_inline void walk_base(struct mez_bpf_exec_buf *b,
                                      struct task_struct *p, long dfd,
                                      const char *name, __u32 slot) {
  char first = 0;
  bpf_probe_read_user(&first, 1, name);
  if (first == '/') return;
  if (dfd == MEZ_AT_FDCWD) {
    walk_path(b, BPF_CORE_READ(p, fs, pwd.dentry),
              BPF_CORE_READ(p, fs, pwd.mnt), slot, MEZ_BPF_FILE_HEADER);
    return;
  }
  struct file *f = fd_file(p, dfd);
  if (f)
    walk_path(b, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt),
              slot, MEZ_BPF_FILE_HEADER);
}

/* The first UDP send of a session to a destination: the destination from
 * the call (sendto's address, the first message's msg_name), else the
 * connected peer. */
static __always_inline void udp_send(__u64 cookie, __u32 tgid,
                                     struct pt_regs *regs, long nr) {
  struct task_struct *p = bpf_get_current_task_btf();
  struct file *f = fd_file(p, BPF_CORE_READ(regs, di));
  if (!f) return;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  struct sock *sk = BPF_CORE_READ(sock, sk);
  if (!sk || BPF_CORE_READ(sk, sk_protocol) != MEZ_IPPROTO_UDP) return;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != MEZ_AF_INET && family != MEZ_AF_INET6) return;

  const void *name = 0;
  if (nr == NR_SENDTO) {
    name = (const void *)BPF_CORE_READ(regs, r8);
  } else { /* msghdr (sendmmsg: the first mmsghdr starts with one) */
    const struct user_msghdr *msg = (const void *)BPF_CORE_READ(regs, si);
    bpf_probe_read_user(&name, sizeof(name), &msg->msg_name);
  }
  struct udp_dest key = {.cookie = cookie, .family = family};
  if (name) {
    __u16 user_family = 0;
    bpf_probe_read_user(&user_family, sizeof(user_family), name);
    if (user_family == MEZ_AF_INET) {
      const struct sockaddr_in *in = name;
      bpf_probe_read_user(&key.port, 2, &in->sin_port);
      bpf_probe_read_user(key.addr, 4, &in->sin_addr);
      key.family = MEZ_AF_INET;
    } else if (user_family == MEZ_AF_INET6) {
      const struct sockaddr_in6 *in6 = name;
      bpf_probe_read_user(&key.port, 2, &in6->sin6_port);
      bpf_probe_read_user(key.addr, 16, &in6->sin6_addr);
      key.family = MEZ_AF_INET6;
    } else {
      return;
    }
  } else {
    key.port = BPF_CORE_READ(sk, __sk_common.skc_dport);
    if (family == MEZ_AF_INET6)
      BPF_CORE_READ_INTO(&key.addr, sk, __sk_common.skc_v6_daddr);
    else
      BPF_CORE_READ_INTO((__u32 *)key.addr, sk, __sk_common.skc_daddr);
  }
  __u8 one = 1;
  if (bpf_map_update_elem(&udp_seen, &key, &one, BPF_NOEXIST) != 0) return;

  __u64 seq = next_seq(cookie);
  struct {
    struct mez_bpf_record rec;
    struct mez_bpf_connect c;
  } *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
  if (!r) {
    count_loss(cookie, MEZ_BPF_KIND_CONNECT);
    return;
  }
  __builtin_memset(r, 0, sizeof(*r));
  r->rec.kind = MEZ_BPF_KIND_CONNECT;
  r->rec.cookie = cookie;
  r->rec.seq = seq;
  r->rec.time_ns = bpf_ktime_get_ns();
  r->rec.pid = tgid;
  r->rec.ppid = BPF_CORE_READ(p, real_parent, tgid);
  r->rec.uid = BPF_CORE_READ(p, cred, uid.val);
  r->rec.euid = BPF_CORE_READ(p, cred, euid.val);
  r->c.family = key.family;
  r->c.op = MEZ_BPF_NET_UDP;
  r->c.remote_port = key.port;
  __builtin_memcpy(r->c.remote_addr, key.addr, 16);
  r->c.local_port = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
  if (key.family == MEZ_AF_INET6 && family == MEZ_AF_INET6)
    BPF_CORE_READ_INTO(&r->c.local_addr, sk, __sk_common.skc_v6_rcv_saddr);
  else if (family == MEZ_AF_INET)
    BPF_CORE_READ_INTO((__u32 *)r->c.local_addr, sk, __sk_common.skc_rcv_saddr);
  bpf_ringbuf_submit(r, 0);
}

/* Opens, creates, unlinks and renames by tracked processes, successful or
 * not, when the system call returns (its arguments are still in regs). */
SEC("tp_btf/sys_exit")
int BPF_PROG(mez_sys_exit, struct pt_regs *regs, long ret) {
  long nr = BPF_CORE_READ(regs, orig_ax);
  if (nr == NR_ACCEPT || nr == NR_ACCEPT4) {
    if (ret < 0) return 0;
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct mez_bpf_task *t = lookup_task(tgid);
    if (!t) return 0;
    struct file *f = fd_file(bpf_get_current_task_btf(), ret);
    if (!f) return 0;
    struct socket *sock = BPF_CORE_READ(f, private_data);
    struct sock *sk = BPF_CORE_READ(sock, sk);
    if (sk) emit_net(t->cookie, tgid, sk, MEZ_BPF_NET_ACCEPT, 0, 0);
    return 0;
  }
  if (nr == NR_SENDTO || nr == NR_SENDMSG || nr == NR_SENDMMSG) {
    if (ret < 0) return 0;
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct mez_bpf_task *t = lookup_task(tgid);
    if (!t) return 0;
    udp_send(t->cookie, tgid, regs, nr);
    return 0;
  }
  __u32 op;
  switch (nr) {
    case NR_OPEN:
    case NR_CREAT:
    case NR_OPENAT:
    case NR_OPENAT2:
      op = MEZ_BPF_FILE_OPEN;
      break;
    case NR_UNLINK:
    case NR_UNLINKAT:
      op = MEZ_BPF_FILE_UNLINK;
      break;
    case NR_RENAME:
    case NR_RENAMEAT:
    case NR_RENAMEAT2:
      op = MEZ_BPF_FILE_RENAME;
      break;
    default:
      return 0;
  }
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  struct mez_bpf_task *t = lookup_task(tgid);
  if (!t) return 0;
  __u64 cookie = t->cookie;
  __u32 zero = 0;
  struct mez_bpf_exec_buf *b = bpf_map_lookup_elem(&scratch, &zero);
  if (!b) return 0;
  struct task_struct *p = bpf_get_current_task_btf();

  long a0 = BPF_CORE_READ(regs, di), a1 = BPF_CORE_READ(regs, si);
  long a2 = BPF_CORE_READ(regs, dx), a3 = BPF_CORE_READ(regs, r10);
  long a4 = BPF_CORE_READ(regs, r8);
  long dfd = MEZ_AT_FDCWD, dfd2 = MEZ_AT_FDCWD;
  const char *name = 0, *name2 = 0;
  __u64 flags = 0, mode = 0;
  switch (nr) {
    case NR_OPEN:
      name = (const char *)a0, flags = a1, mode = a2;
      break;
    case NR_CREAT:
      name = (const char *)a0, mode = a1;
      flags = MEZ_O_CREAT | MEZ_O_WRONLY | MEZ_O_TRUNC;
      break;
    case NR_OPENAT:
      dfd = (int)a0, name = (const char *)a1, flags = a2, mode = a3;
      break;
    case NR_OPENAT2: { /* struct open_how { u64 flags, mode, resolve; } */
      __u64 how[2] = {};
      bpf_probe_read_user(how, sizeof(how), (const void *)a2);
      dfd = (int)a0, name = (const char *)a1, flags = how[0], mode = how[1];
      break;
    }
    case NR_UNLINK:
      name = (const char *)a0;
      break;
    case NR_UNLINKAT:
      dfd = (int)a0, name = (const char *)a1, flags = a2;
      break;
    case NR_RENAME:
      name = (const char *)a0, name2 = (const char *)a1;
      break;
    case NR_RENAMEAT:
    case NR_RENAMEAT2:
      dfd = (int)a0, name = (const char *)a1;
      dfd2 = (int)a2, name2 = (const char *)a3;
      flags = nr == NR_RENAMEAT2 ? a4 : 0;
      break;
  }

  struct mez_bpf_file *fh = (struct mez_bpf_file *)b->data;
  __builtin_memset(fh, 0, sizeof(*fh));
  b->rec.kind = MEZ_BPF_KIND_FILE;
  b->rec.flags = 0;
  b->rec.cookie = cookie;
  b->rec.time_ns = bpf_ktime_get_ns();
  b->rec.pid = tgid;
  b->rec.ppid = BPF_CORE_READ(p, real_parent, tgid);
  b->rec.uid = BPF_CORE_READ(p, cred, uid.val);
  b->rec.euid = BPF_CORE_READ(p, cred, euid.val);
  b->rec.exit_code = 0;
  b->rec.duration_ns = 0;
  b->rec.exe_len = 0;
  b->rec.cwd_len = 0;
  b->rec.argv_len = 0;
  b->rec.argv_total = 0;
  fh->op = op;
  fh->result = ret;
  fh->flags = flags;
  fh->mode = mode;

  struct file *opened = op == MEZ_BPF_FILE_OPEN ? fd_file(p, ret) : 0;
  if (opened) {
    /* The file itself: its real path, whatever name reached it. */
    walk_path(b, BPF_CORE_READ(opened, f_path.dentry),
              BPF_CORE_READ(opened, f_path.mnt), 0, MEZ_BPF_FILE_HEADER);
    fh->resolved = 1;
  } else {
    walk_base(b, p, dfd, name, 0);
  }
  if (name2) walk_base(b, p, dfd2, name2, 1);

  __u32 off =
      (MEZ_BPF_FILE_HEADER + b->rec.exe_len + b->rec.cwd_len) & DATA_MASK;
  long n1 = 0, n2 = 0;
  if (!opened) {
    n1 = bpf_probe_read_user_str(&b->data[off], MEZ_BPF_NAME_CAP, name);
    if (n1 < 0) n1 = 0;
  }
  /* n1 <= NAME_CAP; the masks only show the verifier the bounds. */
  __u32 off2 = off + (n1 & (2 * MEZ_BPF_NAME_CAP - 1));
  if (name2) {
    n2 = bpf_probe_read_user_str(&b->data[off2], MEZ_BPF_NAME_CAP, name2);
    if (n2 < 0) n2 = 0;
  }
  fh->name_len = n1 & (2 * MEZ_BPF_NAME_CAP - 1);
  fh->name2_len = n2 & (2 * MEZ_BPF_NAME_CAP - 1);
  b->rec.seq = next_seq(cookie);

  __u64 size = sizeof(b->rec) + (__u64)off2 + fh->name2_len;
  if (size > sizeof(*b)) size = sizeof(*b);
  if (bpf_ringbuf_output(&events, b, size, 0) != 0)
    count_loss(cookie, MEZ_BPF_KIND_FILE);
  return 0;
}
#endif /* __TARGET_ARCH_x86 */
