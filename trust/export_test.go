package trust

import "time"

// SetRefetchEvery shortens the unknown-kid refetch limit for a test.
func SetRefetchEvery(d time.Duration) (restore func()) {
	old := refetchEvery
	refetchEvery = d
	return func() { refetchEvery = old }
}
