package deploy

import (
	"os"
	"regexp"
	"sort"
)

// placeholderPattern matches the ${NAME} placeholders of
// cloudrun-service.yaml (envsubst's form).
const placeholderPattern = `\$\{([A-Z][A-Z0-9_]*)\}`

func hasPlaceholder(s string) bool {
	return regexp.MustCompile(placeholderPattern).MatchString(s)
}

// Placeholders returns the distinct ${NAME} placeholders in the file at
// path, sorted.
func Placeholders(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range regexp.MustCompile(placeholderPattern).FindAllStringSubmatch(string(data), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out, nil
}
