package process

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Credential is who the process runs as.
type Credential struct {
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups
	Home   string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser turns a docker user spec ("", "name", "uid", "uid:gid",
// "name:group", …) into a Credential, reading the passwd and group files at
// the given paths, the way runc does: an empty user is uid 0; a name must
// exist in passwd; a numeric uid need not (its gid is then 0 and its home
// "/"); without an explicit group the supplementary groups are the primary
// group and those listing the user's name; an explicit group replaces the primary group and adds no
// supplementary ones. A missing file is treated as empty.
func ResolveUser(spec, passwdPath, groupPath string) (Credential, error) {
	userArg, groupArg, hasGroup := strings.Cut(spec, ":")
	users, err := readPasswd(passwdPath)
	if err != nil {
		return Credential{}, err
	}
	cred := Credential{Home: "/"}
	matched := ""
	found := false
	for _, u := range users {
		var ok bool
		switch {
		case userArg == "":
			ok = u.uid == 0
		default:
			ok = u.name == userArg || strconv.FormatUint(uint64(u.uid), 10) == userArg
		}
		if ok {
			cred.UID, cred.GID, matched, found = u.uid, u.gid, u.name, true
			if u.home != "" {
				cred.Home = u.home
			}
			break
		}
	}
	if !found && userArg != "" {
		uid, err := strconv.ParseUint(userArg, 10, 32)
		if err != nil {
			return Credential{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userArg)
		}
		cred.UID = uint32(uid)
	}
	if (!hasGroup || groupArg == "") && matched == "" {
		return cred, nil
	}
	groups, err := readGroup(groupPath)
	if err != nil {
		return Credential{}, err
	}
	if hasGroup && groupArg != "" {
		for _, g := range groups {
			if g.name == groupArg || strconv.FormatUint(uint64(g.gid), 10) == groupArg {
				cred.GID = g.gid
				return cred, nil
			}
		}
		gid, err := strconv.ParseUint(groupArg, 10, 32)
		if err != nil {
			return Credential{}, fmt.Errorf("unable to find group %s: no matching entries in group file", groupArg)
		}
		cred.GID = uint32(gid)
		return cred, nil
	}
	// As docker: the primary group is also a supplementary group.
	cred.Groups = append(cred.Groups, cred.GID)
	for _, g := range groups {
		if g.gid == cred.GID {
			continue
		}
		for _, m := range g.members {
			if m == matched {
				cred.Groups = append(cred.Groups, g.gid)
				break
			}
		}
	}
	return cred, nil
}

// readLines returns the colon-split fields of each non-comment line of path.
func readLines(path string) ([][]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

func readPasswd(path string) ([]passwdEntry, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []passwdEntry
	for _, f := range lines {
		if len(f) < 4 {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		e := passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	}
	return out, nil
}

func readGroup(path string) ([]groupEntry, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []groupEntry
	for _, f := range lines {
		if len(f) < 3 {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		e := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// AddGroups adds docker's --group-add groups to cred's supplementary
// groups: a name is looked up in the group file at groupPath, a number is
// taken as is.
func AddGroups(cred *Credential, extra []string, groupPath string) error {
	if len(extra) == 0 {
		return nil
	}
	groups, err := readGroup(groupPath)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, name := range extra {
		gid, found := uint64(0), false
		for _, g := range groups {
			if g.name == name {
				gid, found = uint64(g.gid), true
				break
			}
		}
		if !found {
			n, err := strconv.ParseUint(name, 10, 32)
			if err != nil {
				return fmt.Errorf("Unable to find group %s: no matching entries in group file", name)
			}
			gid = n
		}
		if !slices.Contains(cred.Groups, uint32(gid)) {
			cred.Groups = append(cred.Groups, uint32(gid))
		}
	}
	return nil
}
