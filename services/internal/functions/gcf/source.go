package gcf

import (
	"archive/zip"
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// StubRuntime and StubEntryPoint describe the embedded stub source.
const (
	StubRuntime    = "nodejs20"
	StubEntryPoint = "stub"
)

// stubFiles holds the stub source. Files carry a ".txt" suffix so Go tools
// ignore them; it is removed in the archive.
//
//go:embed stub/*.txt
var stubFiles embed.FS

// stubZip returns the stub source as a zip archive with stable content.
func stubZip() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := fs.WalkDir(stubFiles, "stub", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := stubFiles.ReadFile(p)
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{
			Name:     strings.TrimSuffix(path.Base(p), ".txt"),
			Method:   zip.Deflate,
			Modified: time.Unix(1700000000, 0).UTC(),
		})
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("stub source: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("stub source: %w", err)
	}
	return buf.Bytes(), nil
}
