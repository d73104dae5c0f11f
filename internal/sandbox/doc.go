// Package sandbox confines one command: a re-exec trampoline that sets
// no_new_privs, rlimits, Landlock filesystem, network and scope rules, marks
// stray descriptors close-on-exec, drops to an unprivileged identity when the
// relay runs as root, and only then execve's the target. Optional user,
// mount, pid, ipc, uts and net namespaces come from SysProcAttr.
//
// It owns the decision of what a sandbox profile can enforce on this kernel,
// and it fails closed: New refuses a profile the kernel cannot enforce
// (Landlock missing or too old, user namespaces unavailable), and the
// trampoline exits with ExitSetupFailed instead of running a command with
// weaker protection. It must never fall back to "best effort", never read its
// instructions from the environment, never add to or remove from the
// environment the caller gave, and never grant a path that is, or leads into,
// one of Options.Protected.
//
// # Filesystem
//
// Read-only (and executable): /usr, /lib, /lib32, /lib64, /bin, /sbin, /etc
// and sandbox.read. Read-write (never executable, so a command cannot drop
// and run a binary): sandbox.write and a private temp dir (Profile.TempDir)
// made for each invocation. Landlock rights add up along a path, so a
// directory that is both read (itself or through a parent such as /etc) and
// write is also executable. /proc is read-only (Landlock also forbids
// ptrace-style access to processes outside the sandbox, so
// /proc/<relay>/environ, mem and fd stay closed, but the host's process list
// and command lines are visible); /dev/null is read-write; /dev/zero,
// /dev/random and /dev/urandom are read-only. A command whose network is
// allowed may also read the target of /etc/resolv.conf.
//
// Landlock only allows, so a protected path under an allowed directory (the
// config dir /etc/relay under /etc) cannot be carved out by a deny rule.
// Instead the directory itself is not granted: each of its children is,
// except the one leading to the protected path, recursively down to it. That
// expansion is a snapshot of the directory listing taken at Wrap time: an
// entry created later in such a directory is not accessible to the command,
// and the directories on the way to a protected path get no rights at all
// (they cannot be listed, and nothing in them can be renamed).
// Symlinks are never granted themselves; Landlock checks the path a symlink
// resolves to, so they keep working where their target is allowed. Declared
// paths inside (or equal to) a protected path are an error from New. A hard
// link or bind mount of a protected file into an allowed tree cannot be
// detected and is the owner's responsibility.
//
// # Network
//
// A profile without network always runs in a fresh network namespace (as
// root directly, otherwise inside a user namespace), because Landlock before
// UDP support only governs TCP; where Landlock has network rules (ABI 4) TCP
// bind and connect are denied as well. connect_ports keeps the host network
// and allows TCP connect to the listed ports only (Landlock ABI 4); UDP
// stays reachable unless the kernel's Landlock can govern UDP, in which case
// it is denied. network: true leaves the network unrestricted.
//
// Connecting to a pathname unix socket is denied only where Landlock can
// govern it (LANDLOCK_ACCESS_FS_RESOLVE_UNIX); elsewhere file permissions
// alone decide, so the relay's user must not belong to groups such as
// docker. As root the command runs as nobody with no groups.
//
// # Identity
//
// RLIMIT_NPROC does not apply to root, so when the relay runs as root the
// command runs as nobody (uid and gid 65534, no supplementary groups): the
// trampoline starts as root, sets everything up and switches identity just
// before execve. Directories a command must write then have to be writable
// by 65534; the private temp dir is chowned to it. When the relay runs as an
// ordinary user the command keeps that uid, and Landlock's signal scope (ABI
// 6) or a pid namespace keeps it from signalling the relay.
//
// # Namespaces
//
// With namespaces: true the trampoline, and after execve the command, is pid
// 1 of a new pid namespace: when it dies the kernel kills everything left in
// the namespace, including double-forked setsid children. Signals other than
// SIGKILL and SIGSTOP sent from outside reach it only if it handles them, so
// a runner's SIGTERM may be ignored and the SIGKILL after the grace period
// does the work. The host /proc stays mounted.
//
// # Limits
//
// rlimits are per process: RLIMIT_NPROC bounds how many processes the
// command's uid may have (as root, every nobody process on the host counts
// without namespaces; in a user namespace only the command's own), but
// nothing here bounds the sum of their memory. Run the relay under a
// cgroup limit (systemd MemoryMax= and TasksMax=) for that.
//
// # Trampoline
//
// The wrapped command re-executes the relay binary. Package
// sandbox/trampoline runs the trampoline from its init, before the relay's
// heavier packages are initialised, so every binary that links this package
// (test binaries included) is a trampoline; IsTrampoline and Trampoline,
// first thing in main, are a second line. The trampoline's instructions
// travel in argv, never in the environment.
package sandbox
