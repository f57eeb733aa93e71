/* Part of exec_monitor.bpf.c (included once, at its end: one object, one
 * skeleton): TCP connects, from SYN_SENT to their outcome, and listens,
 * on the inet_sock_set_state tracepoint; emit_net is also what the
 * sys_exit program's accept uses. */
#ifndef MEZ_BPF_TCP_BPF_H_
#define MEZ_BPF_TCP_BPF_H_

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
  bpf_ringbuf_submit(r, wakeup_flag());
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
  bpf_ringbuf_submit(r, wakeup_flag());
  return 0;
}

#endif /* MEZ_BPF_TCP_BPF_H_ */
