package instances

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// resolveUser turns an image's User ("", "uid", "uid:gid", "name",
// "name:group", …) into ids, reading names from the rootfs's /etc/passwd and
// /etc/group as docker does. It also returns the user's home directory.
func resolveUser(rootfs, user string) (ociUser, string, error) {
	if user == "" {
		return ociUser{}, "/root", nil
	}
	name, group, hasGroup := strings.Cut(user, ":")
	passwd := readColonFile(rootfs, "etc/passwd")
	var u ociUser
	home := "/"
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(n)
		for _, f := range passwd {
			if len(f) >= 6 && f[2] == name {
				if g, err := strconv.ParseUint(f[3], 10, 32); err == nil {
					u.GID = uint32(g)
				}
				home = f[5]
				break
			}
		}
	} else {
		found := false
		for _, f := range passwd {
			if len(f) >= 6 && f[0] == name {
				uid, err1 := strconv.ParseUint(f[2], 10, 32)
				gid, err2 := strconv.ParseUint(f[3], 10, 32)
				if err1 != nil || err2 != nil {
					return ociUser{}, "", fmt.Errorf("user %q: bad /etc/passwd entry", name)
				}
				u.UID, u.GID, home, found = uint32(uid), uint32(gid), f[5], true
				break
			}
		}
		if !found {
			return ociUser{}, "", fmt.Errorf("unable to find user %s: no matching entries in passwd file", name)
		}
	}
	if hasGroup {
		if g, err := strconv.ParseUint(group, 10, 32); err == nil {
			u.GID = uint32(g)
		} else {
			found := false
			for _, f := range readColonFile(rootfs, "etc/group") {
				if len(f) >= 3 && f[0] == group {
					gid, err := strconv.ParseUint(f[2], 10, 32)
					if err != nil {
						return ociUser{}, "", fmt.Errorf("group %q: bad /etc/group entry", group)
					}
					u.GID, found = uint32(gid), true
					break
				}
			}
			if !found {
				return ociUser{}, "", fmt.Errorf("unable to find group %s: no matching entries in group file", group)
			}
		}
	}
	return u, home, nil
}

// readColonFile reads a passwd-style file as fields per line; a missing
// file reads as empty.
func readColonFile(rootfs, rel string) [][]string {
	path, err := securePath(rootfs, rel)
	if err != nil {
		return nil
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
