// SPDX-License-Identifier: GPL-2.0
/* Kernel side of mez::bpf::Monitor: follows the process trees of tracked
 * sessions (fork inheritance in the kernel, so setsid, double forks and
 * cgroup moves do not escape) and reports their execs and exits (here),
 * TCP connects and listens (tcp.bpf.h), and file operations, accepts and
 * UDP sends (sys_exit.bpf.h) on a ring buffer. Only tp_btf attach points:
 * no tracefs, no BPF LSM needed. docs/enhanced-recording.md says what it
 * sees and what it cannot. */
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

/* Set by user space before load: the reader is woken once this many bytes
 * wait in the ring buffer, not for every record (a wakeup costs more than
 * an open's whole record, in the writer's context); Monitor::Poll reads
 * at least every few tens of milliseconds anyway. 0: the kernel's default
 * (wake when the reader has caught up). */
const volatile __u64 wakeup_bytes = 0;

static __always_inline __u64 wakeup_flag(void) {
  if (wakeup_bytes == 0) return 0;
  return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes
             ? BPF_RB_FORCE_WAKEUP
             : BPF_RB_NO_WAKEUP;
}

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
  /* The process group as the initial PID namespace numbers it: a shell
   * with job control puts each pipeline in a group of its own. */
  b->rec.pgid = BPF_CORE_READ(p, signal, pids[PIDTYPE_PGID], numbers[0].nr);
  b->rec.pad = 0;
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
  if (bpf_ringbuf_output(&events, b, size, wakeup_flag()) != 0)
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
  bpf_ringbuf_submit(r, wakeup_flag());
  return 0;
}

/* The network and system call programs, in parts by concern; tcp.bpf.h
 * first (sys_exit.bpf.h uses its emit_net). */
// clang-format off
#include "libmez/bpf/tcp.bpf.h"
#include "libmez/bpf/sys_exit.bpf.h"
// clang-format on
