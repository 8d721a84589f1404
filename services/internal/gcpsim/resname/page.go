package resname

import (
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxPageSize is the page size when a List request asks for none or more.
const maxPageSize = 1000

// Page cuts one page out of a sorted listing the way Google's List methods
// page: the page token is an offset into the listing. It returns the page
// and the next page's token ("" on the last page).
func Page[T any](all []T, size int32, token string) ([]T, string, error) {
	start := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > len(all) {
			return nil, "", status.Errorf(codes.InvalidArgument, "invalid page token %q", token)
		}
		start = n
	}
	if size <= 0 || size > maxPageSize {
		size = maxPageSize
	}
	end := min(start+int(size), len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[start:end], next, nil
}
