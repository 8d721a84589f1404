// Package storage serves the part of the Cloud Storage JSON API that the
// control plane's volume code calls (cloud.google.com/go/storage): get and
// insert a bucket, list objects by prefix, delete an object. A bucket is a
// host directory (instances.BucketDir), the same tree gcpsim mounts into
// function instances as a Cloud Storage volume, so what a container writes
// is what the API lists and deletes. Directories appear as gcsfuse shows
// them through the API: a zero-byte object "dir/".
package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sockerless/sockerless/services/internal/gcpsim/instances"
)

// Prefix is where the JSON API is served.
const Prefix = "/storage/v1/"

// Server serves the JSON API over StorageDir's buckets.
type Server struct {
	dir string
	log *slog.Logger
}

// New returns a server over the buckets under storageDir.
func New(storageDir string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{dir: storageDir, log: log}
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$`)

// ServeHTTP routes on the escaped path: object names are path-escaped
// ("a%2Fb") and must not be split on their slashes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), Prefix)
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && parts[0] == "b" && r.Method == http.MethodPost:
		s.insertBucket(w, r)
	case len(parts) == 2 && parts[0] == "b" && r.Method == http.MethodGet:
		s.getBucket(w, unescape(parts[1]))
	case len(parts) == 3 && parts[0] == "b" && parts[2] == "o" && r.Method == http.MethodGet:
		s.listObjects(w, r, unescape(parts[1]))
	case len(parts) == 4 && parts[0] == "b" && parts[2] == "o" && r.Method == http.MethodDelete:
		s.deleteObject(w, unescape(parts[1]), unescape(parts[3]))
	default:
		apiError(w, http.StatusNotImplemented, fmt.Sprintf("gcpsim: %s %s is not supported", r.Method, r.URL.Path))
	}
}

func unescape(s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// bucketDir returns the bucket's directory if it exists.
func (s *Server) bucketDir(w http.ResponseWriter, bucket string) (string, bool) {
	dir := instances.BucketDir(s.dir, bucket)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		apiError(w, http.StatusNotFound, "The specified bucket does not exist.")
		return "", false
	}
	return dir, true
}

type bucketJSON struct {
	Kind        string `json:"kind"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	TimeCreated string `json:"timeCreated"`
	Location    string `json:"location"`
}

func (s *Server) getBucket(w http.ResponseWriter, bucket string) {
	dir, ok := s.bucketDir(w, bucket)
	if !ok {
		return
	}
	st, _ := os.Stat(dir)
	writeJSON(w, http.StatusOK, bucketJSON{Kind: "storage#bucket", ID: bucket, Name: bucket, TimeCreated: st.ModTime().UTC().Format(time.RFC3339Nano), Location: "US"})
}

func (s *Server) insertBucket(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !bucketName.MatchString(in.Name) {
		apiError(w, http.StatusBadRequest, "Invalid bucket name: '"+in.Name+"'")
		return
	}
	dir := instances.BucketDir(s.dir, in.Name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := os.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
		apiError(w, http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it.")
		return
	} else if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Debug("bucket created", "bucket", in.Name)
	writeJSON(w, http.StatusOK, bucketJSON{Kind: "storage#bucket", ID: in.Name, Name: in.Name, TimeCreated: time.Now().UTC().Format(time.RFC3339Nano), Location: "US"})
}

type objectJSON struct {
	Kind           string `json:"kind"`
	ID             string `json:"id"`
	Name           string `json:"name"`
	Bucket         string `json:"bucket"`
	Size           string `json:"size"`
	Generation     string `json:"generation"`
	Metageneration string `json:"metageneration"`
	Updated        string `json:"updated"`
	TimeCreated    string `json:"timeCreated"`
	StorageClass   string `json:"storageClass"`
}

// maxPage is the most objects one list answer holds (as Google's).
const maxPage = 1000

// listObjects lists the objects whose names start with prefix, in name
// order, a page at a time (pageToken is the last name of the page before).
func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, bucket string) {
	dir, ok := s.bucketDir(w, bucket)
	if !ok {
		return
	}
	q := r.URL.Query()
	prefix, token := q.Get("prefix"), q.Get("pageToken")
	if q.Get("delimiter") != "" {
		apiError(w, http.StatusNotImplemented, "gcpsim: list with a delimiter is not supported")
		return
	}
	limit := maxPage
	if n, err := strconv.Atoi(q.Get("maxResults")); err == nil && n > 0 && n < limit {
		limit = n
	}
	var names []string
	sizes := map[string]int64{}
	times := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walk
			}
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			name += "/"
			// Skip subtrees that cannot hold a match.
			if !strings.HasPrefix(name, prefix) && !strings.HasPrefix(prefix, name) {
				return filepath.SkipDir
			}
		}
		if !strings.HasPrefix(name, prefix) || token != "" && name <= token {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		names = append(names, name)
		if info.Mode().IsRegular() {
			sizes[name] = info.Size()
		}
		times[name] = info.ModTime()
		return nil
	})
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	sort.Strings(names)
	out := struct {
		Kind          string       `json:"kind"`
		Items         []objectJSON `json:"items,omitempty"`
		NextPageToken string       `json:"nextPageToken,omitempty"`
	}{Kind: "storage#objects"}
	if len(names) > limit {
		names = names[:limit]
		out.NextPageToken = names[limit-1]
	}
	for _, n := range names {
		t := times[n].UTC().Format(time.RFC3339Nano)
		gen := strconv.FormatInt(times[n].UnixMicro(), 10)
		out.Items = append(out.Items, objectJSON{
			Kind: "storage#object", ID: bucket + "/" + n + "/" + gen, Name: n, Bucket: bucket,
			Size: strconv.FormatInt(sizes[n], 10), Generation: gen, Metageneration: "1",
			Updated: t, TimeCreated: t, StorageClass: "STANDARD",
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteObject deletes a file, a symlink, or the placeholder of an empty
// directory; a directory placeholder with objects below it goes away in
// name only (its objects stay, as in Cloud Storage).
func (s *Server) deleteObject(w http.ResponseWriter, bucket, name string) {
	dir, ok := s.bucketDir(w, bucket)
	if !ok {
		return
	}
	clean := filepath.Clean("/" + strings.TrimSuffix(name, "/"))
	if clean == "/" || strings.Contains(name, "\x00") {
		apiError(w, http.StatusBadRequest, "Invalid object name")
		return
	}
	p := filepath.Join(dir, clean)
	st, err := os.Lstat(p)
	if err != nil || st.IsDir() != strings.HasSuffix(name, "/") {
		apiError(w, http.StatusNotFound, "No such object: "+bucket+"/"+name)
		return
	}
	if err := os.Remove(p); err != nil && !st.IsDir() {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError writes Google's JSON error shape.
func apiError(w http.ResponseWriter, code int, msg string) {
	type detail struct {
		Message string `json:"message"`
		Reason  string `json:"reason"`
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"errors": []detail{{Message: msg, Reason: http.StatusText(code)}},
	}})
}
