package engine

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Decompressed returns r's tar stream: docker cp, PUT archive, load and import accept a
// tar compressed with gzip, bzip2, xz or zstd (testcontainers-go sends
// gzip), recognized by its first bytes, as Docker's DecompressStream does.
func Decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b, 0x08}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, badTar(err)
		}
		return zr, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, badTar(err)
		}
		return xr, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, badTar(err)
		}
		return zr.IOReadCloser(), nil
	}
	return br, nil
}

// badTar is docker's answer to an upload that is not a usable tar.
func badTar(err error) error {
	return Errorf(KindInvalid, "Error processing tar file(exit status 1): %v", err)
}
