package trampoline

import (
	"errors"
	"path"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// System calls of the new mount API (Linux 5.2, mount_setattr 5.12); the
// numbers from 424 on are the same on every architecture.
const (
	sysOpenTree     = 428
	sysMoveMount    = 429
	sysFsopen       = 430
	sysFsconfig     = 431
	sysFsmount      = 432
	sysMountSetattr = 442

	openTreeClone       = 1
	atRecursive         = 0x8000
	atEmptyPath         = 0x1000
	moveMountFEmptyPath = 0x4
	fsopenCloexec       = 1
	fsmountCloexec      = 1
	fsconfigSetString   = 1
	fsconfigCmdCreate   = 6

	mountAttrRdonly = 0x1
	mountAttrNosuid = 0x2
	mountAttrNodev  = 0x4
	mountAttrNoexec = 0x8

	msRdonly  = syscall.MS_RDONLY
	msNosuid  = syscall.MS_NOSUID
	msNodev   = syscall.MS_NODEV
	msNoexec  = syscall.MS_NOEXEC
	msRemount = syscall.MS_REMOUNT
	msBind    = syscall.MS_BIND
	msRec     = syscall.MS_REC
	msPrivate = syscall.MS_PRIVATE
	mntDetach = syscall.MNT_DETACH
)

// fdcwd is AT_FDCWD as a variable, so it converts to uintptr.
var fdcwd = atFDCWD

type mountAttr struct {
	set, clr, propagation, usernsFD uint64
}

// DevNodes are the device nodes of the view's /dev, bound from the host's.
var DevNodes = []string{"null", "zero", "full", "random", "urandom"}

// stagingDirs are where the new root is assembled, in this order of
// preference: any directory works in the private mount namespace, and its
// host content is hidden only there.
var stagingDirs = []string{"/tmp", "/mnt", "/run", "/var/tmp"}

// view builds the command's filesystem from s and makes it the root of
// this mount namespace. Every host path is captured (as a detached clone of
// its mount tree, with its read-only and nosuid attributes already set)
// before the staging tmpfs hides anything, and is opened without following
// symlinks: the parent resolved them, so a symlink now was swapped in since.
func view(s *Spec) error {
	if err := syscall.Mount("", "/", "", msRec|msPrivate, ""); err != nil {
		return wrap("make the mount tree private", err)
	}
	trees := make([]int, len(s.Mounts))
	for i := range trees {
		trees[i] = -1
	}
	defer func() {
		for _, fd := range trees {
			if fd >= 0 {
				syscall.Close(fd)
			}
		}
	}()
	for i, m := range s.Mounts {
		fd, err := capture(m)
		if err != nil {
			return err
		}
		trees[i] = fd
	}
	devs := make([]int, len(DevNodes))
	for i, n := range DevNodes {
		fd, err := capture(Mount{Kind: BindDev, Path: "/dev/" + n})
		if err != nil {
			return err
		}
		devs[i] = fd
		defer syscall.Close(fd)
	}

	root := ""
	for _, d := range stagingDirs {
		var st syscall.Stat_t
		if syscall.Stat(d, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			root = d
			break
		}
	}
	if root == "" {
		return errors.New("no directory to build the sandbox's root in (tried " + strings.Join(stagingDirs, ", ") + ")")
	}
	if err := syscall.Mount("tmpfs", root, "tmpfs", msNosuid|msNodev, "mode=0755,size=1m,nr_inodes=4096"); err != nil {
		return wrap("mount the sandbox's root tmpfs", err)
	}
	at := func(p string) string { return root + p }

	// The fixed skeleton: /proc, /dev, and private temporary directories.
	size := "size=" + strconv.FormatUint(s.TmpSize, 10)
	for _, d := range []string{"/proc", "/dev", "/tmp", "/var", "/var/tmp", "/run"} {
		if err := syscall.Mkdir(at(d), 0o755); err != nil {
			return wrap("mkdir "+d, err)
		}
	}
	// A fresh procfs shows only this pid namespace. The kernel allows it
	// only while a procfs is fully visible in this mount namespace, which
	// is why it comes before pivot_root.
	if err := syscall.Mount("proc", at("/proc"), "proc", msNosuid|msNodev|msNoexec, ""); err != nil {
		return wrap("mount a fresh /proc (a container that masks parts of /proc forbids it)", err)
	}
	if err := remountTree(at("/proc/sys"), mountAttrRdonly|mountAttrNosuid|mountAttrNodev|mountAttrNoexec); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", at("/dev"), "tmpfs", msNosuid|msNoexec, "mode=0755,size=64k,nr_inodes=64"); err != nil {
		return wrap("mount /dev", err)
	}
	for i, n := range DevNodes {
		if err := mountpoint(at("/dev/"+n), false); err != nil {
			return err
		}
		if err := attach(devs[i], at("/dev/"+n)); err != nil {
			return err
		}
	}
	for _, l := range [][2]string{{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}} {
		if err := syscall.Symlink(l[0], at(l[1])); err != nil {
			return wrap("symlink "+l[1], err)
		}
	}
	if err := syscall.Mkdir(at("/dev/shm"), 0o755); err != nil {
		return wrap("mkdir /dev/shm", err)
	}
	if s.Pty {
		if err := syscall.Mkdir(at("/dev/pts"), 0o755); err != nil {
			return wrap("mkdir /dev/pts", err)
		}
		if err := syscall.Mount("devpts", at("/dev/pts"), "devpts", msNosuid|msNoexec, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
			return wrap("mount a private /dev/pts", err)
		}
		if err := syscall.Symlink("pts/ptmx", at("/dev/ptmx")); err != nil {
			return wrap("symlink /dev/ptmx", err)
		}
	}
	for _, d := range []string{"/tmp", "/dev/shm"} {
		if err := syscall.Mount("tmpfs", at(d), "tmpfs", msNosuid|msNodev|msNoexec, "mode=1777,"+size); err != nil {
			return wrap("mount a private "+d, err)
		}
	}
	// /run holds only what is bound into it (sockets, resolv.conf's
	// target); it is made read-only with the root, below.
	if err := syscall.Mount("tmpfs", at("/run"), "tmpfs", msNosuid|msNodev|msNoexec, "mode=0755,size=64k,nr_inodes=256"); err != nil {
		return wrap("mount a private /run", err)
	}
	// /var/tmp shares /tmp's tmpfs, and so its size.
	if err := bindSelf(at("/tmp"), at("/var/tmp"), mountAttrNosuid|mountAttrNodev|mountAttrNoexec); err != nil {
		return err
	}

	// The host paths, in order: a parent before what is mounted inside it.
	emptyFile := ""
	for i, m := range s.Mounts {
		p := at(m.Path)
		switch m.Kind {
		case Symlink:
			if err := mkdirAll(root, path.Dir(m.Path)); err != nil {
				return err
			}
			if err := syscall.Symlink(m.Target, p); err != nil {
				if t, rerr := readlink(p); rerr != nil || t != m.Target {
					return wrap("symlink "+m.Path, err)
				}
			}
			continue
		case Mask:
			var st syscall.Stat_t
			switch err := syscall.Lstat(p, &st); err {
			case nil:
			case syscall.ENOENT, syscall.EACCES:
				// Not there, or not reachable with the command's own
				// identity (the trampoline holds no capability that
				// overrides file permissions): nothing to hide.
				continue
			default:
				return wrap("stat "+m.Path+" to mask it", err)
			}
			if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
				if err := syscall.Mount("tmpfs", p, "tmpfs", msRdonly|msNosuid|msNodev|msNoexec, "mode=0555,size=4k,nr_inodes=1"); err != nil {
					return wrap("mask "+m.Path, err)
				}
				continue
			}
			if emptyFile == "" {
				emptyFile = at("/.relay-empty")
				if err := mountpoint(emptyFile, false); err != nil {
					return err
				}
			}
			if err := bindSelf(emptyFile, p, mountAttrRdonly|mountAttrNosuid|mountAttrNodev|mountAttrNoexec); err != nil {
				return wrap("mask "+m.Path, err)
			}
			continue
		}
		if trees[i] < 0 {
			continue // an optional path the host lacks
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(trees[i], &st); err != nil {
			return wrap("stat "+m.Path, err)
		}
		if err := mkdirAll(root, path.Dir(m.Path)); err != nil {
			return err
		}
		if err := mountpoint(p, st.Mode&syscall.S_IFMT == syscall.S_IFDIR); err != nil {
			return err
		}
		if err := attach(trees[i], p); err != nil {
			return err
		}
	}
	if emptyFile != "" {
		// The masks hold the inode; the name needs no place in the view.
		syscall.Unlink(emptyFile)
	}

	// The root and /run become read-only: nothing may be created beside
	// the mounts.
	if err := syscall.Mount("", at("/run"), "", msRemount|msBind|msRdonly|msNosuid|msNodev|msNoexec, ""); err != nil {
		return wrap("make /run read-only", err)
	}
	if err := syscall.Mount("", root, "", msRemount|msBind|msRdonly|msNosuid|msNodev, ""); err != nil {
		return wrap("make the sandbox's root read-only", err)
	}
	// pivot_root(".", ".") stacks the old root under the new one, so no
	// directory for it is needed; detaching it leaves only the view.
	if err := syscall.Chdir(root); err != nil {
		return wrap("chdir to the new root", err)
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return wrap("pivot_root", err)
	}
	if err := syscall.Unmount(".", mntDetach); err != nil {
		return wrap("detach the host's root", err)
	}
	if err := syscall.Chdir("/"); err != nil {
		return wrap("chdir /", err)
	}
	if err := syscall.Chdir(s.Workdir); err != nil {
		return wrap("enter the workdir "+s.Workdir+" (it must be inside the sandbox's view)", err)
	}
	return nil
}

// capture takes a detached clone of the mount tree at m.Path with the
// attributes m asks for, or returns -1 for a missing optional path.
func capture(m Mount) (int, error) {
	switch m.Kind {
	case Symlink, Mask:
		return -1, nil
	}
	fd, e := openPath(m.Path)
	if e != 0 {
		if m.Optional && e == syscall.ENOENT {
			return -1, nil
		}
		return -1, errno("open "+strconv.Quote(m.Path)+" to bind it", e)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return -1, wrap("stat "+m.Path, err)
	}
	attr := uint64(mountAttrNosuid | mountAttrNodev)
	switch m.Kind {
	case BindRO:
		attr |= mountAttrRdonly
	case BindDev:
		if t := st.Mode & syscall.S_IFMT; t != syscall.S_IFCHR && t != syscall.S_IFBLK {
			return -1, errors.New(strconv.Quote(m.Path) + " is not a device")
		}
		attr = mountAttrNosuid
	case BindSocket:
		if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
			return -1, errors.New(strconv.Quote(m.Path) + " is not a unix socket")
		}
	}
	t, err := openTree(fd)
	if err != nil {
		return -1, wrap("clone the mount at "+m.Path, err)
	}
	if err := setAttr(t, attr); err != nil {
		syscall.Close(t)
		return -1, wrap("set the attributes of "+m.Path, err)
	}
	return t, nil
}

// openTree clones the mount tree at fd (an O_PATH descriptor) into a
// detached tree, recursively: a submount hidden by the host (a masked
// path) stays hidden, and is never revealed by a partial clone.
func openTree(fd int) (int, error) {
	empty := [1]byte{}
	r, _, e := syscall.Syscall(sysOpenTree, uintptr(fd), uintptr(unsafe.Pointer(&empty[0])), openTreeClone|syscall.O_CLOEXEC|atRecursive|atEmptyPath)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// setAttr sets attr on every mount of the detached tree fd. Adding
// read-only, nosuid or nodev is allowed even on mounts the user namespace
// inherited locked.
func setAttr(fd int, attr uint64) error {
	empty := [1]byte{}
	a := mountAttr{set: attr}
	_, _, e := syscall.Syscall6(sysMountSetattr, uintptr(fd), uintptr(unsafe.Pointer(&empty[0])), atEmptyPath|atRecursive, uintptr(unsafe.Pointer(&a)), unsafe.Sizeof(a), 0)
	if e != 0 {
		return e
	}
	return nil
}

// attach moves the detached tree fd onto target.
func attach(fd int, target string) error {
	empty := [1]byte{}
	t, err := syscall.BytePtrFromString(target)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(sysMoveMount, uintptr(fd), uintptr(unsafe.Pointer(&empty[0])), uintptr(fdcwd), uintptr(unsafe.Pointer(t)), moveMountFEmptyPath, 0)
	if e != 0 {
		return wrap("mount at "+target, e)
	}
	return nil
}

// bindSelf binds src at dst, adding attr.
func bindSelf(src, dst string, attr uint64) error {
	fd, e := openPath(src)
	if e != 0 {
		return errno("open "+src, e)
	}
	defer syscall.Close(fd)
	t, err := openTree(fd)
	if err != nil {
		return wrap("clone "+src, err)
	}
	defer syscall.Close(t)
	if err := setAttr(t, attr); err != nil {
		return wrap("set the attributes of "+dst, err)
	}
	return attach(t, dst)
}

// remountTree sets attr on the mount tree at p, in place.
func remountTree(p string, attr uint64) error { return bindSelf(p, p, attr) }

// mountpoint makes an empty directory or file at p if nothing is there.
func mountpoint(p string, dir bool) error {
	var st syscall.Stat_t
	if syscall.Lstat(p, &st) == nil {
		return nil
	}
	if dir {
		if err := syscall.Mkdir(p, 0o755); err != nil {
			return wrap("mkdir "+p, err)
		}
		return nil
	}
	fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o444)
	if err != nil {
		return wrap("create "+p, err)
	}
	return syscall.Close(fd)
}

// mkdirAll makes dir and its parents under root, where they are missing.
// A directory inside a read-only bind that does not exist cannot be made
// and is an error.
func mkdirAll(root, dir string) error {
	if dir == "/" {
		return nil
	}
	p := root
	for _, c := range strings.Split(dir[1:], "/") {
		p += "/" + c
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err == nil {
			if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
				return errors.New(strconv.Quote(p[len(root):]) + " is not a directory")
			}
			continue
		}
		if err := syscall.Mkdir(p, 0o755); err != nil && err != syscall.EEXIST {
			return wrap("mkdir "+p[len(root):], err)
		}
	}
	return nil
}

func readlink(p string) (string, error) {
	buf := make([]byte, 4096)
	n, err := syscall.Readlink(p, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func wrap(what string, err error) error { return errors.New(what + ": " + err.Error()) }
