package engine

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// LogDetails is what `docker logs --details` puts before every line of c:
// the log attributes its --log-opt labels, labels-regex, env and env-regex
// select from its labels and environment, as key=value pairs (both
// query-escaped) sorted by key and joined by commas, then a space. With no
// attributes it is a single space, as docker prints.
func LogDetails(c *Container) string {
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
	pick := func(list, pattern string, from map[string]string) {
		for _, k := range strings.Split(list, ",") {
			if v, ok := from[k]; ok && k != "" {
				attrs[k] = v
			}
		}
		if pattern == "" {
			return
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		for k, v := range from {
			if re.MatchString(k) {
				attrs[k] = v
			}
		}
	}
	pick(opts["labels"], opts["labels-regex"], labels)
	pick(opts["env"], opts["env-regex"], envs)
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
