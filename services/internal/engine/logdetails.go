package engine

import (
	"bytes"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/docker/cli/templates"
)

// LogDetails is what `docker logs --details` puts before every line of c:
// the log attributes its --log-opt labels, labels-regex, env and env-regex
// select from its labels and environment, and "tag" (--log-opt tag, a
// template as docker's), as key=value pairs (both query-escaped) sorted by
// key and joined by commas, then a space. With no attributes it is a single
// space, as docker prints.
func LogDetails(c *Container) string {
	attrs, _ := logAttributes(c) // checked when it started
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = url.QueryEscape(k) + "=" + url.QueryEscape(attrs[k])
	}
	return strings.Join(pairs, ",") + " "
}

// checkLogConfig refuses to start a container whose log options docker's
// json-file driver refuses: a regex that does not compile, a tag template
// that does not parse or run. Docker's wording.
func checkLogConfig(c *Container) error {
	if _, err := logAttributes(c); err != nil {
		return Errorf(KindInvalid, "failed to initialize logging driver: %v", err)
	}
	return nil
}

// logAttributes are the attributes docker's json-file driver keeps with
// each line of c's output, selected by its --log-opt options.
func logAttributes(c *Container) (map[string]string, error) {
	attrs := map[string]string{}
	var opts map[string]string
	if c.HostConfig != nil {
		opts = c.HostConfig.LogConfig.Config
	}
	var labels map[string]string
	var env []string
	if c.Config != nil {
		labels, env = c.Config.Labels, c.Config.Env
	}
	envs := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envs[k] = v
		}
	}
	pick := func(list, pattern string, from map[string]string) error {
		for _, k := range strings.Split(list, ",") {
			if v, ok := from[k]; ok && k != "" {
				attrs[k] = v
			}
		}
		if pattern == "" {
			return nil
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return err
		}
		for k, v := range from {
			if re.MatchString(k) {
				attrs[k] = v
			}
		}
		return nil
	}
	if err := pick(opts["labels"], opts["labels-regex"], labels); err != nil {
		return nil, err
	}
	if err := pick(opts["env"], opts["env-regex"], envs); err != nil {
		return nil, err
	}
	tag, err := logTag(c, opts["tag"])
	if err != nil {
		return nil, err
	}
	if tag != "" {
		attrs["tag"] = tag
	}
	return attrs, nil
}

// logTag renders c's --log-opt tag template as docker's json-file driver
// does ("" without one).
func logTag(c *Container, tmpl string) (string, error) {
	if tmpl == "" {
		return "", nil
	}
	t, err := templates.New("log-tag").Parse(tmpl)
	if err != nil {
		return "", err
	}
	info := LogInfo{
		ContainerID: c.ID, ContainerName: "/" + c.Name, ContainerCreated: c.Created,
		ContainerImageID: c.ImageID, ContainerImageName: c.ImageRef,
		ContainerLabels: map[string]string{}, DaemonName: "docker",
	}
	if c.HostConfig != nil {
		info.Config = c.HostConfig.LogConfig.Config
	}
	if c.Config != nil {
		args := append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...)
		if len(args) > 0 {
			info.ContainerEntrypoint, info.ContainerArgs = args[0], args[1:]
		}
		if c.Config.Image != "" {
			info.ContainerImageName = c.Config.Image
		}
		info.ContainerEnv = c.Config.Env
		for k, v := range c.Config.Labels {
			info.ContainerLabels[k] = v
		}
	}
	var b bytes.Buffer
	if err := t.Execute(&b, &info); err != nil {
		return "", err
	}
	return b.String(), nil
}

// LogInfo is what a --log-opt tag template sees: the fields and methods of
// docker's logger.Info ({{.Name}}, {{.ID}}, {{.ImageName}}, …).
type LogInfo struct {
	Config              map[string]string
	ContainerID         string
	ContainerName       string // with docker's leading "/"
	ContainerEntrypoint string // the process's path
	ContainerArgs       []string
	ContainerImageID    string
	ContainerImageName  string
	ContainerCreated    time.Time
	ContainerEnv        []string
	ContainerLabels     map[string]string
	LogPath             string
	DaemonName          string
}

// Hostname is the control plane's host name.
func (info *LogInfo) Hostname() (string, error) { return os.Hostname() }

// Command is the path and arguments of the process, joined by spaces.
func (info *LogInfo) Command() string {
	return strings.Join(append([]string{info.ContainerEntrypoint}, info.ContainerArgs...), " ")
}

// ID is the container ID shortened to 12 characters.
func (info *LogInfo) ID() string { return first12(info.ContainerID) }

// FullID is the container ID.
func (info *LogInfo) FullID() string { return info.ContainerID }

// Name is the container name without its leading "/".
func (info *LogInfo) Name() string { return strings.TrimPrefix(info.ContainerName, "/") }

// ImageID is the image ID ("sha256:…") cut to 12 characters, as docker
// cuts it.
func (info *LogInfo) ImageID() string { return first12(info.ContainerImageID) }

// ImageFullID is the image ID.
func (info *LogInfo) ImageFullID() string { return info.ContainerImageID }

// ImageName is the image as the container's config names it.
func (info *LogInfo) ImageName() string { return info.ContainerImageName }

// first12 cuts s to 12 characters.
func first12(s string) string { return s[:min(len(s), 12)] }
