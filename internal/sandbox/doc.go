// Package sandbox confines one command by building its whole world: what a
// profile does not declare does not exist for the command.
//
// It owns the decision of what a profile can enforce on this host, and it
// fails closed: New refuses a profile the host cannot enforce (Landlock
// missing or too old, no user namespaces, no seccomp, a root relay without a
// command user), and the trampoline exits with ExitSetupFailed instead of
// running a command with weaker protection. It must never fall back to "best
// effort", never read its instructions from the environment, never add to or
// remove from the environment the caller gave, and never grant a path that
// is, or leads into, one of Options.Protected.
//
// # Namespaces
//
// Every command runs in fresh user, mount, pid, ipc, uts and cgroup
// namespaces, and a fresh network namespace unless the profile has network
// or connect_ports. The trampoline (the relay binary, re-executed) is pid 1
// of the pid namespace: it builds the view, then forks the command, forwards
// SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGUSR1/2 to every process of the
// namespace, reaps what is reparented to it, and exits when the command does,
// which makes the kernel kill everything else in the namespace: setsid and
// double-forked children die with the job, at its timeout, at /kill and
// /lock, and with the relay (the trampoline has SIGKILL as its parent-death
// signal). A namespace's init cannot die of most signals, so the trampoline
// reports the command's own wait status on descriptor 3 (see
// exec.Wrapped.ReportsStatus).
//
// # Filesystem view
//
// Built in the command's mount namespace before anything runs, from detached
// clones of the host's mount trees taken with their read-only, nosuid and
// nodev attributes already set (open_tree, mount_setattr, move_mount), then
// made the root with pivot_root:
//   - read-only /usr, /lib*, /bin, /sbin and /etc (merged-/usr symlinks are
//     recreated as symlinks);
//   - sandbox.read read-only and sandbox.write read-write, at their own
//     paths, a device node as a device; sandbox.sockets, each one pathname
//     unix socket; nothing else of the host;
//   - each protected path that lies inside a bound tree masked: an empty
//     read-only tmpfs over a directory, an empty read-only file over a file;
//   - a fresh /proc of the pid namespace, with /proc/sys read-only;
//   - /dev with null, zero, full, random and urandom, and a private devpts
//     with /dev/ptmx only with pty: true;
//   - private tmpfs at /tmp (shared with /var/tmp) and /dev/shm, each of
//     tmp_size, writable but not executable; an empty read-only /run that
//     holds only what is bound into it (declared sockets, the target of
//     /etc/resolv.conf for a command with network).
//
// So no host unix socket (session and system bus, keyrings, ssh and gpg
// agents, docker, systemd, the relay's control socket) is reachable unless a
// profile declares it. A host path under /tmp, /var/tmp or /dev/shm cannot
// be declared: those are private per command, and a Landlock rule for them
// would cover what is bound beneath. The working directory must lie in the
// view.
//
// # Landlock
//
// A second, independent layer over the same view: read and execute beneath
// the read-only trees and sandbox.read, read-write (never execute) beneath
// sandbox.write and the private scratch directories, the device nodes
// individually, and nothing at all on a protected path: a directory that
// contains one is granted child by child (a snapshot of its listing when the
// command starts). With network denied, TCP bind and connect are denied too
// (ABI 4); connect_ports allows TCP connect to those ports only; with the
// host's network, Landlock's scopes (ABI 6) keep the command off the host's
// abstract unix sockets and from signalling processes outside its domain.
// Landlock does not govern connecting to a pathname unix socket on kernels
// without LANDLOCK_ACCESS_FS_RESOLVE_UNIX: there the view alone keeps host
// sockets away.
//
// # System calls
//
// A seccomp-bpf filter (trampoline.NewFilter) is installed last, just before
// execve: ptrace, process_vm_*, kcmp, the keyring calls, bpf,
// perf_event_open, userfaultfd, io_uring, module and kexec loading, the
// mount family, unshare, setns and namespace flags to clone, personality
// changes, acct, swap, reboot, clock setting, open_by_handle_at, and the
// TIOCSTI and TIOCLINUX ioctls (compared on their low 32 bits) fail with
// EPERM; clone3 fails with ENOSYS so that libc falls back to clone, whose
// flags the filter can read; a foreign architecture's system calls kill the
// process. sandbox.allow_syscalls re-allows named plain calls.
//
// # Identity and capabilities
//
// A relay that is not root runs commands as itself: one uid is mapped in
// the user namespace, and the view is what keeps the relay's files away. A
// relay running as root runs every command as Options.CommandUser, never as
// root or the shared nobody, with no supplementary groups. The trampoline
// holds CAP_SYS_ADMIN and CAP_SETPCAP inside the command's user namespace
// only, to build the view; the command starts with no capabilities, an empty
// bounding set, no_new_privs, and the rlimits of the profile (cpu, nofile,
// fsize, core 0, nproc, as).
//
// # Job cgroups
//
// With Options.Cgroups (a delegated cgroup v2 subtree), each job is born in
// a cgroup of its own (clone3 CLONE_INTO_CGROUP), which its cgroup namespace
// makes its root, with memory.max, pids.max and cpu.max from the profile;
// its accounting goes into the job's result, and the cgroup is removed when
// the job ends. Without one, only the per-process rlimits bound it.
//
// # Trampoline
//
// Package sandbox/trampoline runs from its init, before the relay's heavier
// packages are initialised, so every binary that links this package (test
// binaries included) is a trampoline; IsTrampoline and Trampoline, first
// thing in main, are a second line. The profile travels on a sealed memfd
// (descriptor 4), not in argv, where the command could read it in
// /proc/1/cmdline.
package sandbox
