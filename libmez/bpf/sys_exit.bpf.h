/* Part of exec_monitor.bpf.c (included once, at its end, after tcp.bpf.h:
 * one object, one skeleton): what the tp_btf/sys_exit program reports
 * when a system call of a tracked process returns: opens, unlinks and
 * renames (file events), accepts and first UDP sends to a destination.
 * x86_64 only for now (system call numbers and registers). */
#ifndef MEZ_BPF_SYS_EXIT_BPF_H_
#define MEZ_BPF_SYS_EXIT_BPF_H_

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
  bpf_ringbuf_submit(r, wakeup_flag());
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
  if (bpf_ringbuf_output(&events, b, size, wakeup_flag()) != 0)
    count_loss(cookie, MEZ_BPF_KIND_FILE);
  return 0;
}
#endif /* __TARGET_ARCH_x86 */

#endif /* MEZ_BPF_SYS_EXIT_BPF_H_ */
