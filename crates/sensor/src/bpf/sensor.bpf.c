// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// Palisade node sensor: kernel side.
//
// CO-RE BPF programs compiled by clang at build time (build.rs, libbpf-cargo). Every event is
// one ring-buffer record: a fixed `struct hdr` followed by a kind-specific body. The layout is
// described field by field in `src/event.rs`, which decodes it with bounds-checked reads; keep
// the two in step (bump EVENT_VERSION on any change).
//
// Attach points are tracepoints only (tp_btf, tp, raw_tp) plus one iter/task program: they
// are the kinds that work where kprobes, fentry and BPF LSM are not available.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EVENT_VERSION 1

#define TASK_COMM_LEN 16
#define CGNAME_LEN 128
#define PATH_LEN 256       // user-supplied paths (open, unlink, rename, chmod, mount, ...)
#define RPATH_LEN 512      // kernel-resolved paths (exe, cwd)
#define ARGS_LEN 1024
#define UNIX_PATH_LEN 108
#define RULE_LEN 64
#define MAX_RULES 64
#define MAX_COMPONENTS 32

#define PATH_HALF 2048
#define PATH_MASK (PATH_HALF - 1)

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_ISUID 04000
#define S_ISGID 02000

#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_TRUNC 00001000

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

enum kind {
	K_EXEC = 1,
	K_EXIT = 2,
	K_OPEN = 3,
	K_UNLINK = 4,
	K_RENAME = 5,
	K_CHMOD = 6,
	K_CONNECT = 7,
	K_SETID = 8,
	K_CAPSET = 9,
	K_PTRACE = 10,
	K_MODULE = 11,
	K_MOUNT = 12,
	K_UNSHARE = 13,
	K_SETNS = 14,
	K_MEMFD = 15,
};

// 200 bytes.
struct hdr {
	u16 kind;
	u16 version;
	u32 _pad;
	u64 ts;          // bpf_ktime_get_boot_ns
	u64 cgroup_id;   // cgroup v2 id
	u32 pid;         // tgid
	u32 tid;
	u32 ppid;        // real_parent->tgid
	u32 uid;
	u32 euid;
	u32 gid;
	u32 mntns;
	u32 pidns;
	char comm[TASK_COMM_LEN];
	char cgname[CGNAME_LEN];
};

#define EXEC_UPPER 1
#define EXEC_FILELESS 2
#define EXEC_STDIO_SOCK 4
#define EXEC_TTY 8

struct exec_body {
	u32 flags;
	u32 args_len;
	char pcomm[TASK_COMM_LEN];
	char filename[PATH_LEN];
	char exe[RPATH_LEN];
	char cwd[RPATH_LEN];
	char args[ARGS_LEN];
};

struct exit_body {
	s32 code;    // raw wait status (exit_code): status << 8 | signal
	u32 _pad;
};

// OPEN, UNLINK, RENAME, CHMOD
struct file_body {
	u32 flags;   // open flags
	u32 mode;    // chmod/open mode
	char path[PATH_LEN];
	char path2[PATH_LEN]; // RENAME only (new name); not sent for the others
};

struct connect_body {
	u16 family;
	u16 port;       // host order
	s32 sock_type;  // SOCK_STREAM = 1, SOCK_DGRAM = 2, ...; -1 unknown
	s32 fd;
	u32 _pad;
	u8 addr[16];    // IPv4 in the first 4 bytes
	char unix_path[UNIX_PATH_LEN];
};

enum setid_which { SETUID = 0, SETGID, SETREUID, SETREGID, SETRESUID, SETRESGID };

struct setid_body {
	u32 which;
	u32 _pad;
	s64 ids[3];
};

struct capset_body {
	u32 version;
	s32 target;
	u64 effective;
	u64 permitted;
	u64 inheritable;
};

struct ptrace_body {
	s64 request;
	s32 target;
	u32 _pad;
};

struct module_body {
	u32 syscall;   // 0 init_module, 1 finit_module
	s32 fd;
	char name[PATH_LEN];
};

struct mount_body {
	u64 flags;
	char source[PATH_LEN];
	char target[PATH_LEN];
	char fstype[64];
};

struct ns_body {
	u64 flags;   // unshare flags, or setns nstype
	s32 fd;      // setns fd
	u32 _pad;
};

struct memfd_body {
	u32 flags;
	u32 _pad;
	char name[PATH_LEN];
};

struct exec_event { struct hdr h; struct exec_body b; };
struct exit_event { struct hdr h; struct exit_body b; };
struct file_event { struct hdr h; struct file_body b; };
struct connect_event { struct hdr h; struct connect_body b; };
struct setid_event { struct hdr h; struct setid_body b; };
struct capset_event { struct hdr h; struct capset_body b; };
struct ptrace_event { struct hdr h; struct ptrace_body b; };
struct module_event { struct hdr h; struct module_body b; };
struct mount_event { struct hdr h; struct mount_body b; };
struct ns_event { struct hdr h; struct ns_body b; };
struct memfd_event { struct hdr h; struct memfd_body b; };

// Snapshot record written by the iter/task program (not through the ring buffer).
struct snap_rec {
	u32 pid;
	u32 ppid;
	u32 uid;
	u32 mntns;
	u64 cgroup_id;
	char comm[TASK_COMM_LEN];
	char cgname[CGNAME_LEN];
	char exe[RPATH_LEN];
};

// Path rule table entry, filled from userspace.
#define RULE_PREFIX 1
#define RULE_SUFFIX 2
struct rule {
	u8 kind;        // 0 = end of table
	u8 write_only;
	u8 len;         // bytes in s (<= RULE_LEN)
	u8 _pad;
	char s[RULE_LEN];
};

_Static_assert(sizeof(struct hdr) == 200, "hdr layout");
_Static_assert(sizeof(struct exec_event) == 2528, "exec layout");
_Static_assert(sizeof(struct file_event) == 720, "file layout");
_Static_assert(sizeof(struct connect_event) == 344, "connect layout");
_Static_assert(sizeof(struct setid_event) == 232, "setid layout");
_Static_assert(sizeof(struct capset_event) == 232, "capset layout");
_Static_assert(sizeof(struct ptrace_event) == 216, "ptrace layout");
_Static_assert(sizeof(struct module_event) == 464, "module layout");
_Static_assert(sizeof(struct mount_event) == 784, "mount layout");
_Static_assert(sizeof(struct ns_event) == 216, "ns layout");
_Static_assert(sizeof(struct memfd_event) == 464, "memfd layout");
_Static_assert(sizeof(struct snap_rec) == 680, "snapshot layout");
_Static_assert(sizeof(struct rule) == 68, "rule layout");

// ---- configuration (set before load) ----
const volatile u32 self_tgid = 0;
/* Set by user space when every prefix rule is at least 8 bytes and every suffix rule at least 4:
 * then a path can only match if its first 8 bytes are a prefix rule's first 8 (prefix8) or its
 * last 4 bytes a suffix rule's last 4 (suffix4), two hash lookups that spare the table scan for
 * almost every open on a node. */
const volatile u32 prefilter = 0;

// Bytes in the ring buffer not yet consumed, sampled at each submit (for health reporting).
u64 rb_avail = 0;

// ---- maps ----
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

// key 0: events emitted, key 1: ring-buffer reserve failures.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, u32);
	__type(value, struct rule);
} path_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_RULES);
	__type(key, u64);
	__type(value, u8);
} prefix8 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_RULES);
	__type(key, u32);
	__type(value, u8);
} suffix4 SEC(".maps");

struct pathbuf { char b[PATH_HALF * 2]; };
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct pathbuf);
} pathbufs SEC(".maps");

// Scratch for a user path read before in-kernel filtering (two: rename has two paths).
struct upath { char b[PATH_LEN]; };
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct upath);
} upaths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct snap_rec);
} snapbuf SEC(".maps");

// ---- helpers ----

static __always_inline void count(u32 key)
{
	u64 *v = bpf_map_lookup_elem(&counters, &key);
	if (v)
		*v += 1;
}

static __always_inline void *reserve(u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e)
		count(1);
	return e;
}

/* Wake the consumer only when a batch is waiting (32 KiB, or an eighth of a small ring; it also
 * drains the buffer every poll interval): one wakeup per ~100 records instead of one per record
 * keeps an exec storm from paying a context switch per event. */
#define WAKEUP_BYTES (32 * 1024)

static __always_inline void submit(void *e)
{
	u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	u64 eighth = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 8;
	u64 threshold = eighth < WAKEUP_BYTES ? eighth : WAKEUP_BYTES;

	bpf_ringbuf_submit(e, avail >= threshold ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	count(0);
	rb_avail = avail;
}

static __always_inline bool is_self(void)
{
	return self_tgid != 0 && (u32)(bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

static __always_inline const char *cgroup_leaf_name(struct task_struct *t)
{
	struct css_set *cgs = BPF_CORE_READ(t, cgroups);
	struct cgroup *cg;
	int id;

	// v1 "pids", then v1 "memory" (a non-root cgroup there names the container), then v2.
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, pids_cgrp_id)) {
		id = bpf_core_enum_value(enum cgroup_subsys_id, pids_cgrp_id);
		if (id >= 0 && id < 12) {
			cg = BPF_CORE_READ(cgs, subsys[id], cgroup);
			if (cg && BPF_CORE_READ(cg, level) > 0)
				return BPF_CORE_READ(cg, kn, name);
		}
	}
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (id >= 0 && id < 12) {
			cg = BPF_CORE_READ(cgs, subsys[id], cgroup);
			if (cg && BPF_CORE_READ(cg, level) > 0)
				return BPF_CORE_READ(cg, kn, name);
		}
	}
	cg = BPF_CORE_READ(cgs, dfl_cgrp);
	if (cg && BPF_CORE_READ(cg, level) > 0)
		return BPF_CORE_READ(cg, kn, name);
	return 0;
}

static __always_inline u32 task_mntns(struct task_struct *t)
{
	return BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
}

static __always_inline u32 task_pidns(struct task_struct *t)
{
	struct pid *p = BPF_CORE_READ(t, thread_pid);
	unsigned int level = BPF_CORE_READ(p, level);
	return BPF_CORE_READ(p, numbers[level].ns, ns.inum);
}

static __always_inline void fill_hdr_task(struct hdr *h, struct task_struct *t, u16 kind)
{
	const char *cgn;

	h->kind = kind;
	h->version = EVENT_VERSION;
	h->_pad = 0;
	h->ts = bpf_ktime_get_boot_ns();
	h->pid = BPF_CORE_READ(t, tgid);
	h->tid = BPF_CORE_READ(t, pid);
	h->ppid = BPF_CORE_READ(t, real_parent, tgid);
	h->uid = BPF_CORE_READ(t, cred, uid.val);
	h->euid = BPF_CORE_READ(t, cred, euid.val);
	h->gid = BPF_CORE_READ(t, cred, gid.val);
	h->mntns = task_mntns(t);
	h->pidns = task_pidns(t);
	BPF_CORE_READ_STR_INTO(&h->comm, t, comm);
	h->cgname[0] = 0;
	cgn = cgroup_leaf_name(t);
	if (cgn)
		bpf_probe_read_kernel_str(h->cgname, sizeof(h->cgname), cgn);
}

static __always_inline void fill_hdr(struct hdr *h, u16 kind)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	fill_hdr_task(h, t, kind);
	h->cgroup_id = bpf_get_current_cgroup_id();
}

// Resolve (dentry, vfsmount) to a path as seen from the root of `t`, into dst.
// Walks at most MAX_COMPONENTS steps (a step is one dentry or one mount crossing); a deeper
// path loses its top components. The loop body is a bpf_loop callback, so the verifier
// checks it once instead of once per iteration and branch.
struct walk_ctx {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	u64 mnt_off;
	u32 off;       // start of the path in pathbuf; the path ends at PATH_HALF - 1
};

static long walk_step(u64 i, struct walk_ctx *w)
{
	u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&pathbufs, &zero);
	struct dentry *dentry = w->dentry, *mnt_root, *parent;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	struct qstr dn;
	u32 len, off;

	if (!pb || !dentry)
		return 1;
	if (dentry == w->root_dentry && vfsmnt == w->root_mnt)
		return 1;
	mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	parent = BPF_CORE_READ(dentry, d_parent);
	if (dentry == mnt_root || dentry == parent) {
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (dentry != mnt_root || mp == mnt || !mp)
			return 1; // global root, or a detached mount
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mp;
		w->vfsmnt = (struct vfsmount *)((void *)mp + w->mnt_off);
		return 0;
	}
	dn = BPF_CORE_READ(dentry, d_name);
	len = dn.len & 255;
	off = w->off;
	if (off > PATH_HALF - 1 || len + 1 > off)
		return 1; // no room left
	off -= len + 1;
	bpf_probe_read_kernel(&pb->b[(off + 1) & PATH_MASK], len, dn.name);
	pb->b[off & PATH_MASK] = '/';
	w->off = off;
	w->dentry = parent;
	return 0;
}

static __always_inline void resolve_path(struct dentry *dentry, struct vfsmount *vfsmnt,
					 struct task_struct *t, char *dst, u32 dst_len)
{
	u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&pathbufs, &zero);
	struct walk_ctx w = {};
	u32 off;

	if (!pb) {
		dst[0] = 0;
		return;
	}
	w.mnt_off = bpf_core_field_offset(struct mount, mnt);
	w.dentry = dentry;
	w.vfsmnt = vfsmnt;
	w.mnt = (struct mount *)((void *)vfsmnt - w.mnt_off);
	w.root_dentry = BPF_CORE_READ(t, fs, root.dentry);
	w.root_mnt = BPF_CORE_READ(t, fs, root.mnt);
	w.off = PATH_HALF - 1;
	pb->b[PATH_HALF - 1] = 0;
	bpf_loop(MAX_COMPONENTS + 8, walk_step, &w, 0);
	off = w.off;
	if (off >= PATH_HALF - 1) {
		off = PATH_HALF - 2;
		pb->b[off & PATH_MASK] = '/';
	}
	bpf_probe_read_kernel_str(dst, dst_len, &pb->b[off & PATH_MASK]);
}

static __always_inline struct file *task_fd(struct task_struct *t, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds;
	struct file *f = 0;

	if (!fdt || fd < 0)
		return 0;
	if ((unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_core_read(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline bool file_is_sock(struct file *f)
{
	umode_t mode;

	if (!f)
		return false;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	return (mode & S_IFMT) == S_IFSOCK;
}

// ---- 1. exec ----

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct exec_event *e;
	struct file *file;
	struct inode *inode;
	struct dentry *dentry;
	struct mm_struct *mm;
	unsigned long as, ae;
	u64 len;
	u32 flags = 0;
	char dname[8];

	if (is_self())
		return 0;
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_EXEC);
	BPF_CORE_READ_STR_INTO(&e->b.pcomm, t, real_parent, comm);
	bpf_probe_read_kernel_str(e->b.filename, sizeof(e->b.filename), BPF_CORE_READ(bprm, filename));

	file = BPF_CORE_READ(bprm, file);
	dentry = BPF_CORE_READ(file, f_path.dentry);
	resolve_path(dentry, BPF_CORE_READ(file, f_path.mnt), t, e->b.exe, sizeof(e->b.exe));
	resolve_path(BPF_CORE_READ(t, fs, pwd.dentry), BPF_CORE_READ(t, fs, pwd.mnt), t,
		     e->b.cwd, sizeof(e->b.cwd));

	inode = BPF_CORE_READ(file, f_inode);
	if (BPF_CORE_READ(inode, i_sb, s_magic) == OVERLAYFS_SUPER_MAGIC) {
		struct ovl_inode *oi = (struct ovl_inode *)((void *)inode -
			bpf_core_field_offset(struct ovl_inode, vfs_inode));
		if (BPF_CORE_READ(oi, __upperdentry))
			flags |= EXEC_UPPER;
	}
	__builtin_memset(dname, 0, sizeof(dname));
	bpf_probe_read_kernel_str(dname, sizeof(dname), BPF_CORE_READ(dentry, d_name.name));
	if ((dname[0] == 'm' && dname[1] == 'e' && dname[2] == 'm' && dname[3] == 'f' &&
	     dname[4] == 'd' && dname[5] == ':') ||
	    BPF_CORE_READ(inode, i_nlink) == 0)
		flags |= EXEC_FILELESS;
	if (file_is_sock(task_fd(t, 0)) || file_is_sock(task_fd(t, 1)) ||
	    file_is_sock(task_fd(t, 2)))
		flags |= EXEC_STDIO_SOCK;
	if (BPF_CORE_READ(t, signal, tty))
		flags |= EXEC_TTY;
	e->b.flags = flags;

	mm = BPF_CORE_READ(t, mm);
	as = BPF_CORE_READ(mm, arg_start);
	ae = BPF_CORE_READ(mm, arg_end);
	len = ae > as ? ae - as : 0;
	if (len > ARGS_LEN)
		len = ARGS_LEN;
	e->b.args_len = 0;
	// The mask restates the bound for the verifier (len <= ARGS_LEN already).
	if (len > 0 && bpf_probe_read_user(e->b.args, len & (2 * ARGS_LEN - 1), (void *)as) == 0)
		e->b.args_len = len;
	submit(e);
	return 0;
}

// ---- 2. exit ----

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct exit_event *e;

	if (is_self())
		return 0;
	// Only once per process: when the last thread of the group exits.
	if (BPF_CORE_READ(t, signal, live.counter) != 0)
		return 0;
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_EXIT);
	e->b.code = BPF_CORE_READ(t, exit_code);
	e->b._pad = 0;
	submit(e);
	return 0;
}

// ---- 3. sensitive paths ----

struct match_ctx {
	char *path;
	u32 plen;      // strlen(path)
	u32 is_write;
	int matched;   // rule index or -1
};

static long match_rule(u64 idx, struct match_ctx *m)
{
	u32 key = idx;
	struct rule *r = bpf_map_lookup_elem(&path_rules, &key);
	u32 rlen, start, j;

	if (!r || r->kind == 0)
		return 1; // end of table
	if (r->write_only && !m->is_write)
		return 0;
	rlen = r->len;
	if (rlen == 0 || rlen > RULE_LEN || rlen > m->plen)
		return 0;
	start = r->kind == RULE_SUFFIX ? m->plen - rlen : 0;
	for (j = 0; j < RULE_LEN; j++) {
		if (j >= rlen)
			break;
		if (m->path[(start + j) & (PATH_LEN - 1)] != r->s[j])
			return 0;
	}
	m->matched = idx;
	return 1;
}

// Read a user path into per-CPU scratch slot `slot`; return its length or -1.
static __always_inline long read_upath(u32 slot, const char *upath, char **out)
{
	struct upath *u = bpf_map_lookup_elem(&upaths, &slot);
	long n;

	if (!u)
		return -1;
	n = bpf_probe_read_user_str(u->b, sizeof(u->b), upath);
	if (n <= 0)
		return -1;
	*out = u->b;
	return n - 1;
}

static __always_inline bool path_matches(char *path, long plen, bool is_write)
{
	struct match_ctx m = { .path = path, .plen = plen, .is_write = is_write, .matched = -1 };

	if (plen <= 0)
		return false;
	if (prefilter) {
		u64 head = 0;
		u32 tail = 0;
		bool maybe = false;

		if (plen >= 8) {
			bpf_probe_read_kernel(&head, sizeof(head), path);
			maybe = bpf_map_lookup_elem(&prefix8, &head) != NULL;
		}
		if (!maybe && plen >= 4) {
			bpf_probe_read_kernel(&tail, sizeof(tail), path + ((plen - 4) & (PATH_LEN - 1)));
			maybe = bpf_map_lookup_elem(&suffix4, &tail) != NULL;
		}
		if (!maybe)
			return false;
	}
	bpf_loop(MAX_RULES, match_rule, &m, 0);
	return m.matched >= 0;
}

static __always_inline int emit_file(u16 kind, char *path, char *path2, u32 flags, u32 mode)
{
	struct file_event *e;
	u64 size = kind == K_RENAME ? sizeof(*e) : sizeof(*e) - PATH_LEN;

	e = reserve(size);
	if (!e)
		return 0;
	fill_hdr(&e->h, kind);
	e->b.flags = flags;
	e->b.mode = mode;
	bpf_probe_read_kernel_str(e->b.path, PATH_LEN, path);
	if (kind == K_RENAME)
		bpf_probe_read_kernel_str(e->b.path2, PATH_LEN, path2);
	submit(e);
	return 0;
}

static __always_inline bool open_is_write(u64 flags)
{
	return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

static __always_inline int on_open(const char *upath, u64 flags, u32 mode)
{
	char *p;
	long n;

	if (is_self())
		return 0;
	n = read_upath(0, upath, &p);
	if (n <= 0 || !path_matches(p, n, open_is_write(flags)))
		return 0;
	return emit_file(K_OPEN, p, 0, flags, mode);
}

SEC("tp/syscalls/sys_enter_openat")
int handle_openat(struct trace_event_raw_sys_enter *ctx)
{
	return on_open((const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tp/syscalls/sys_enter_open")
int handle_open(struct trace_event_raw_sys_enter *ctx)
{
	return on_open((const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_openat2")
int handle_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return on_open((const char *)ctx->args[1], how.flags, how.mode);
}

static __always_inline int on_unlink(const char *upath)
{
	char *p;
	long n;

	if (is_self())
		return 0;
	n = read_upath(0, upath, &p);
	if (n <= 0 || !path_matches(p, n, true))
		return 0;
	return emit_file(K_UNLINK, p, 0, 0, 0);
}

SEC("tp/syscalls/sys_enter_unlinkat")
int handle_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return on_unlink((const char *)ctx->args[1]);
}

SEC("tp/syscalls/sys_enter_unlink")
int handle_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return on_unlink((const char *)ctx->args[0]);
}

static __always_inline int on_rename(const char *from, const char *to)
{
	char *p1 = 0, *p2 = 0;
	long n1, n2;
	bool hit = false;

	if (is_self())
		return 0;
	n1 = read_upath(0, from, &p1);
	n2 = read_upath(1, to, &p2);
	if (n1 > 0 && path_matches(p1, n1, true))
		hit = true;
	else if (n2 > 0 && path_matches(p2, n2, true))
		hit = true;
	if (!hit || !p1 || !p2)
		return 0;
	return emit_file(K_RENAME, p1, p2, 0, 0);
}

SEC("tp/syscalls/sys_enter_renameat2")
int handle_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	return on_rename((const char *)ctx->args[1], (const char *)ctx->args[3]);
}

SEC("tp/syscalls/sys_enter_renameat")
int handle_renameat(struct trace_event_raw_sys_enter *ctx)
{
	return on_rename((const char *)ctx->args[1], (const char *)ctx->args[3]);
}

SEC("tp/syscalls/sys_enter_rename")
int handle_rename(struct trace_event_raw_sys_enter *ctx)
{
	return on_rename((const char *)ctx->args[0], (const char *)ctx->args[1]);
}

static __always_inline int on_chmod(const char *upath, u32 mode)
{
	char *p;
	long n;

	if (is_self())
		return 0;
	if (!(mode & (S_ISUID | S_ISGID | 0111)))
		return 0;
	n = read_upath(0, upath, &p);
	if (n < 0)
		return 0;
	return emit_file(K_CHMOD, p, 0, 0, mode);
}

SEC("tp/syscalls/sys_enter_fchmodat")
int handle_fchmodat(struct trace_event_raw_sys_enter *ctx)
{
	return on_chmod((const char *)ctx->args[1], ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_fchmodat2")
int handle_fchmodat2(struct trace_event_raw_sys_enter *ctx)
{
	return on_chmod((const char *)ctx->args[1], ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_chmod")
int handle_chmod(struct trace_event_raw_sys_enter *ctx)
{
	return on_chmod((const char *)ctx->args[0], ctx->args[1]);
}

// ---- 4. connect ----

SEC("tp/syscalls/sys_enter_connect")
int handle_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	const void *uaddr = (const void *)ctx->args[1];
	int fd = ctx->args[0];
	struct connect_event *e;
	struct file *f;
	u16 family = 0;

	if (is_self())
		return 0;
	if (bpf_probe_read_user(&family, sizeof(family), uaddr))
		return 0;
	if (family != AF_INET && family != AF_INET6 && family != AF_UNIX)
		return 0;
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_CONNECT);
	e->b.family = family;
	e->b.port = 0;
	e->b.fd = fd;
	e->b._pad = 0;
	__builtin_memset(e->b.addr, 0, sizeof(e->b.addr));
	e->b.unix_path[0] = 0;
	e->b.sock_type = -1;
	f = task_fd(t, fd);
	if (file_is_sock(f)) {
		struct socket *s = BPF_CORE_READ(f, private_data);
		if (s)
			e->b.sock_type = BPF_CORE_READ(s, type);
	}
	if (family == AF_INET) {
		struct sockaddr_in sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), uaddr);
		e->b.port = bpf_ntohs(sa.sin_port);
		__builtin_memcpy(e->b.addr, &sa.sin_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), uaddr);
		e->b.port = bpf_ntohs(sa.sin6_port);
		__builtin_memcpy(e->b.addr, &sa.sin6_addr, 16);
	} else {
		// Abstract sockets start with a NUL byte: keep the raw 108 bytes.
		bpf_probe_read_user(e->b.unix_path, sizeof(e->b.unix_path),
				    (const char *)uaddr + 2);
	}
	submit(e);
	return 0;
}

// ---- 5. privilege and escape syscalls ----

static __always_inline int emit_setid(u32 which, s64 a, s64 b, s64 c)
{
	struct setid_event *e;

	if (is_self())
		return 0;
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_SETID);
	e->b.which = which;
	e->b._pad = 0;
	e->b.ids[0] = a;
	e->b.ids[1] = b;
	e->b.ids[2] = c;
	submit(e);
	return 0;
}

#define ID(x) ((s64)(s32)(x))

SEC("tp/syscalls/sys_enter_setuid")
int handle_setuid(struct trace_event_raw_sys_enter *ctx)
{
	return emit_setid(SETUID, ID(ctx->args[0]), -1, -1);
}

SEC("tp/syscalls/sys_enter_setgid")
int handle_setgid(struct trace_event_raw_sys_enter *ctx)
{
	return emit_setid(SETGID, ID(ctx->args[0]), -1, -1);
}

SEC("tp/syscalls/sys_enter_setreuid")
int handle_setreuid(struct trace_event_raw_sys_enter *ctx)
{
	return emit_setid(SETREUID, ID(ctx->args[0]), ID(ctx->args[1]), -1);
}

SEC("tp/syscalls/sys_enter_setregid")
int handle_setregid(struct trace_event_raw_sys_enter *ctx)
{
	return emit_setid(SETREGID, ID(ctx->args[0]), ID(ctx->args[1]), -1);
}

SEC("tp/syscalls/sys_enter_setresuid")
int handle_setresuid(struct trace_event_raw_sys_enter *ctx)
{
	return emit_setid(SETRESUID, ID(ctx->args[0]), ID(ctx->args[1]), ID(ctx->args[2]));
}

SEC("tp/syscalls/sys_enter_setresgid")
int handle_setresgid(struct trace_event_raw_sys_enter *ctx)
{
	return emit_setid(SETRESGID, ID(ctx->args[0]), ID(ctx->args[1]), ID(ctx->args[2]));
}

SEC("tp/syscalls/sys_enter_capset")
int handle_capset(struct trace_event_raw_sys_enter *ctx)
{
	struct capset_event *e;
	struct { u32 version; s32 pid; } hdr = {};
	struct { u32 eff, perm, inh; } data[2] = {};

	if (is_self())
		return 0;
	bpf_probe_read_user(&hdr, sizeof(hdr), (void *)ctx->args[0]);
	// _LINUX_CAPABILITY_VERSION_1 has one data element; v2 and v3 have two.
	if (hdr.version == 0x19980330)
		bpf_probe_read_user(&data[0], sizeof(data[0]), (void *)ctx->args[1]);
	else
		bpf_probe_read_user(&data, sizeof(data), (void *)ctx->args[1]);
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_CAPSET);
	e->b.version = hdr.version;
	e->b.target = hdr.pid;
	e->b.effective = (u64)data[1].eff << 32 | data[0].eff;
	e->b.permitted = (u64)data[1].perm << 32 | data[0].perm;
	e->b.inheritable = (u64)data[1].inh << 32 | data[0].inh;
	submit(e);
	return 0;
}

#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206

SEC("tp/syscalls/sys_enter_ptrace")
int handle_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	struct ptrace_event *e;
	s64 req = ctx->args[0];

	if (req != PTRACE_ATTACH && req != PTRACE_SEIZE && req != PTRACE_POKETEXT &&
	    req != PTRACE_POKEDATA && req != PTRACE_POKEUSR)
		return 0;
	if (is_self())
		return 0;
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_PTRACE);
	e->b.request = req;
	e->b.target = ctx->args[1];
	e->b._pad = 0;
	submit(e);
	return 0;
}

// Module loading: neither init_module nor finit_module has a syscall tracepoint on every
// kernel (without CONFIG_MODULES they are absent), so watch raw sys_enter for their numbers.
#if defined(__TARGET_ARCH_x86)
#define NR_INIT_MODULE 175
#define NR_FINIT_MODULE 313
#elif defined(__TARGET_ARCH_arm64)
#define NR_INIT_MODULE 105
#define NR_FINIT_MODULE 273
#else
#define NR_INIT_MODULE -1
#define NR_FINIT_MODULE -1
#endif

SEC("raw_tp/sys_enter")
int handle_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	long id = ctx->args[1];
	struct pt_regs *regs;
	struct module_event *e;

	if (id != NR_INIT_MODULE && id != NR_FINIT_MODULE)
		return 0;
	if (is_self())
		return 0;
	regs = (struct pt_regs *)ctx->args[0];
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_MODULE);
	e->b.name[0] = 0;
	if (id == NR_FINIT_MODULE) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();
		int fd = PT_REGS_PARM1_CORE_SYSCALL(regs);
		struct file *f = task_fd(t, fd);
		e->b.syscall = 1;
		e->b.fd = fd;
		if (f)
			resolve_path(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt),
				     t, e->b.name, sizeof(e->b.name));
	} else {
		e->b.syscall = 0;
		e->b.fd = -1;
		// The module image is in user memory; its parameters are the third argument.
		bpf_probe_read_user_str(e->b.name, sizeof(e->b.name),
					(const char *)PT_REGS_PARM3_CORE_SYSCALL(regs));
	}
	submit(e);
	return 0;
}

SEC("tp/syscalls/sys_enter_mount")
int handle_mount(struct trace_event_raw_sys_enter *ctx)
{
	struct mount_event *e;

	if (is_self())
		return 0;
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_MOUNT);
	e->b.flags = ctx->args[3];
	e->b.source[0] = 0;
	e->b.target[0] = 0;
	e->b.fstype[0] = 0;
	bpf_probe_read_user_str(e->b.source, sizeof(e->b.source), (const char *)ctx->args[0]);
	bpf_probe_read_user_str(e->b.target, sizeof(e->b.target), (const char *)ctx->args[1]);
	bpf_probe_read_user_str(e->b.fstype, sizeof(e->b.fstype), (const char *)ctx->args[2]);
	submit(e);
	return 0;
}

static __always_inline int emit_ns(u16 kind, u64 flags, s32 fd)
{
	struct ns_event *e;

	if (is_self())
		return 0;
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, kind);
	e->b.flags = flags;
	e->b.fd = fd;
	e->b._pad = 0;
	submit(e);
	return 0;
}

SEC("tp/syscalls/sys_enter_unshare")
int handle_unshare(struct trace_event_raw_sys_enter *ctx)
{
	return emit_ns(K_UNSHARE, ctx->args[0], -1);
}

SEC("tp/syscalls/sys_enter_setns")
int handle_setns(struct trace_event_raw_sys_enter *ctx)
{
	return emit_ns(K_SETNS, ctx->args[1], ctx->args[0]);
}

SEC("tp/syscalls/sys_enter_memfd_create")
int handle_memfd_create(struct trace_event_raw_sys_enter *ctx)
{
	struct memfd_event *e;

	if (is_self())
		return 0;
	e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, K_MEMFD);
	e->b.flags = ctx->args[1];
	e->b._pad = 0;
	e->b.name[0] = 0;
	bpf_probe_read_user_str(e->b.name, sizeof(e->b.name), (const char *)ctx->args[0]);
	submit(e);
	return 0;
}

// ---- 6. start-up snapshot ----

SEC("iter/task")
int snapshot_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *t = ctx->task;
	struct snap_rec *r;
	struct file *exe;
	const char *cgn;
	u32 zero = 0;

	if (!t)
		return 0;
	if (BPF_CORE_READ(t, pid) != BPF_CORE_READ(t, tgid))
		return 0; // one record per process
	r = bpf_map_lookup_elem(&snapbuf, &zero);
	if (!r)
		return 0;
	r->pid = BPF_CORE_READ(t, tgid);
	r->ppid = BPF_CORE_READ(t, real_parent, tgid);
	r->uid = BPF_CORE_READ(t, cred, uid.val);
	r->mntns = task_mntns(t);
	r->cgroup_id = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	BPF_CORE_READ_STR_INTO(&r->comm, t, comm);
	r->cgname[0] = 0;
	cgn = cgroup_leaf_name(t);
	if (cgn)
		bpf_probe_read_kernel_str(r->cgname, sizeof(r->cgname), cgn);
	r->exe[0] = 0;
	exe = BPF_CORE_READ(t, mm, exe_file);
	if (exe)
		resolve_path(BPF_CORE_READ(exe, f_path.dentry), BPF_CORE_READ(exe, f_path.mnt), t,
			     r->exe, sizeof(r->exe));
	bpf_seq_write(seq, r, sizeof(*r));
	return 0;
}
