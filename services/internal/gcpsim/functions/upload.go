package functions

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxUploadBytes is the largest source archive accepted, as Google's limit.
const MaxUploadBytes = 100 << 20

// upload is a source archive slot made by GenerateUploadUrl.
type upload struct {
	bucket, object string
	data           []byte
	created        time.Time
}

// uploads holds source archives by upload id.
type uploads struct {
	mu   sync.Mutex
	byID map[string]*upload
}

func (u *uploads) add(id string, up *upload) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.byID[id] = up
}

// find returns the archive stored as bucket/object, or an error saying why
// the build cannot use it.
func (u *uploads) find(bucket, object string) ([]byte, string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, up := range u.byID {
		if up.bucket == bucket && up.object == object {
			if up.data == nil {
				return nil, "", fmt.Errorf("storage object gs://%s/%s was never uploaded", bucket, object)
			}
			return up.data, id, nil
		}
	}
	return nil, "", fmt.Errorf("storage object gs://%s/%s does not exist", bucket, object)
}

// checkZip is the sim's "build": the source must be a zip with a file.
func checkZip(data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("source is not a zip archive: %w", err)
	}
	if len(zr.File) == 0 {
		return fmt.Errorf("source archive is empty")
	}
	return nil
}

// UploadHandler serves the URLs GenerateUploadUrl and GenerateDownloadUrl
// return: PUT stores a source archive (Content-Type must be
// application/zip, as the signed URL requires), GET reads it back. The
// upload id is the request path's last element.
func (s *Server) UploadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		s.uploads.mu.Lock()
		up, ok := s.uploads.byID[id]
		s.uploads.mu.Unlock()
		if !ok {
			http.Error(w, "NoSuchUpload: the upload URL is unknown or expired", http.StatusNotFound)
			return
		}
		switch r.Method {
		case http.MethodPut:
			if ct := r.Header.Get("Content-Type"); ct != "application/zip" {
				http.Error(w, "SignatureDoesNotMatch: the upload URL is signed for Content-Type application/zip, got "+ct, http.StatusForbidden)
				return
			}
			data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxUploadBytes))
			if err != nil {
				http.Error(w, "EntityTooLarge or read error: "+err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			s.uploads.mu.Lock()
			up.data = data
			s.uploads.mu.Unlock()
			s.cfg.Logger.Debug("source uploaded", "bucket", up.bucket, "object", up.object, "bytes", len(data))
			w.WriteHeader(http.StatusOK)
		case http.MethodGet:
			s.uploads.mu.Lock()
			data := up.data
			s.uploads.mu.Unlock()
			if data == nil {
				http.Error(w, "NoSuchKey: nothing was uploaded", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/zip")
			_, _ = w.Write(data)
		default:
			w.Header().Set("Allow", "GET, PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}
